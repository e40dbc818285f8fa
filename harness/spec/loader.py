"""Read a spec file and resolve it: YAML (`harness.spec.reading`: safe_load, bounded) → one level of
`defaults:` merged underneath → `--set` overrides → validated, every error at once as `file: key.path:
message` (`harness.spec.validation`) → the resolved spec, the method's default arguments filled in.

`harness.model.checked.read_buildable_spec` also builds the method on the meta device (so an n that does not
divide the bottleneck, or a glob that matches nothing, is refused too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import SpecError, did_you_mean
from harness.spec.model_files import ModelFile
from harness.spec.reading import MAX_NESTING, SpecLoader, nesting_depth, read_yaml
from harness.spec.schema import Spec
from harness.spec.validation import validate_spec

DEFAULTS_DIR = "_defaults"


@dataclass(frozen=True)
class LoadedSpec:
    path: Path
    spec: Spec
    model_file: ModelFile
    check_model_file: ModelFile
    resolved: dict[str, Any]  # the merged YAML after defaults, with the method's default arguments filled in

    @property
    def name(self) -> str:
        return self.spec.name


def default_spec_dir() -> Path:
    """`spec/` of a source checkout (pip install -e .), else `./spec`."""
    checkout = Path(__file__).resolve().parents[2] / "spec"
    return checkout if checkout.is_dir() else Path.cwd() / "spec"


def spec_files(spec_dir: Path | None = None) -> list[Path]:
    """The method specs: `*.yaml` directly in the spec folder (not `_defaults/`, `models/`, ...)."""
    return sorted((spec_dir or default_spec_dir()).glob("*.yaml"))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; any other value (lists included) in `override` replaces the base."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_defaults(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Merge `defaults: NAME` (the file `_defaults/NAME.yaml` beside the spec) under the spec."""
    if "defaults" not in data:
        return data
    name = data["defaults"]
    if not isinstance(name, str) or not name:
        raise SpecError([f"{path}: defaults: expected the name of a file in {DEFAULTS_DIR}/"])
    if "/" in name or "\\" in name or name.startswith("."):  # a name in _defaults/, never a path out of it
        raise SpecError([f"{path}: defaults: {name!r} is a path; expected the name of a file in {DEFAULTS_DIR}/"])
    defaults_path = path.resolve().parent / DEFAULTS_DIR / f"{name}.yaml"
    if not defaults_path.exists():  # a pipe or a folder of that name is refused by read_yaml, not taken for absent
        known = sorted(p.stem for p in defaults_path.parent.glob("*.yaml"))
        raise SpecError([f"{path}: defaults: no file {defaults_path}{did_you_mean(name, known)}"])
    base = read_yaml(defaults_path)
    if "defaults" in base:
        raise SpecError([f"{defaults_path}: defaults: only one level of defaults is allowed"])
    body = {k: v for k, v in data.items() if k != "defaults"}
    return deep_merge(base, body)


def override_key(override: str) -> str:
    """The KEY.PATH of a `KEY.PATH=VALUE` override ("" when there is none)."""
    return override.partition("=")[0].strip()


MAX_OVERRIDE_BYTES = 100_000  # a --set value is a number, a word or a short list; a spec file is the place for more
MAX_OVERRIDE_KEY = 200  # `invariants.counted_once.reparameterised_tensors` is 46 characters


def apply_overrides(path: Path, data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`key.path=value` assignments (value in YAML: `3e-3`, `[mrpc, rte]`, `true`) applied to the spec data.

    The result is validated like any spec, so a typo in a key or a wrong type is reported as usual. What a
    spec file may not hold, an override may not either: nesting (the key's parts and the value's) beyond
    MAX_NESTING, a value larger than MAX_OVERRIDE_BYTES, a YAML alias; and a key part that is empty
    (`a..b`, `.a`) or that would step into a list or a value is refused, naming the override.
    """
    data = deep_merge(data, {})
    for override in overrides:
        key, (_, sep, text) = override_key(override), override.partition("=")
        if not sep or not key:
            raise SpecError([f"{path}: --set {override}: expected KEY.PATH=VALUE"])
        if len(key) > MAX_OVERRIDE_KEY:  # no spec key is longer: one line that stays readable
            raise SpecError([f"{path}: --set {key[:60]}…: a key of {len(key):,} characters; no spec key path is "
                             f"longer than {MAX_OVERRIDE_KEY}"])  # fmt: skip
        parts = key.split(".")
        if not all(part.strip() for part in parts):
            raise SpecError([f"{path}: --set {key}: an empty part in the key; expected KEY.PATH=VALUE (a.b.c)"])
        if len(text) > MAX_OVERRIDE_BYTES:
            raise SpecError([f"{path}: --set {key}: a value of {len(text):,} characters; at most "
                             f"{MAX_OVERRIDE_BYTES:,} (put larger values in the spec file)"])  # fmt: skip
        depth = len(parts) - 1 + nesting_depth(text)
        if depth > MAX_NESTING:
            raise SpecError([f"{path}: --set {key}: nested {depth} levels deep (key and value); a spec nests at "
                             f"most {MAX_NESTING}"])  # fmt: skip
        try:
            value = yaml.load(text, Loader=SpecLoader)
        except yaml.YAMLError as error:
            why = getattr(error, "problem", None) or " ".join(str(error).split())
            shown = text if len(text) <= 60 else f"{text[:60]}…"  # the line stays one readable line
            raise SpecError([f"{path}: --set {key}: invalid value {shown!r}: {why}"]) from None
        target = data
        for index, part in enumerate(parts[:-1]):
            child = target.get(part)
            if child is None:
                child = target[part] = {}
            elif not isinstance(child, dict):
                whole = ".".join(parts[: index + 1])
                kind = "a list" if isinstance(child, list) else "a single value"
                raise SpecError([f"{path}: --set {key}: {part} is not a mapping ({kind}); set it whole: "
                                 f"--set {whole}=VALUE"])  # fmt: skip
            else:
                child = target[part] = dict(child)
            target = child
        target[parts[-1]] = value
    return data


def read_spec(
    path: str | Path,
    model: str | None = None,
    overrides: list[str] | None = None,
    fidelity: list[tuple[str, str]] | None = None,
) -> LoadedSpec:
    """Read, merge defaults, apply overrides, validate everything a spec says as data (every problem at once:
    `harness.spec.validation.validate_spec`), fill in the method's default arguments.

    `harness.model.checked.read_buildable_spec` also builds the method (dimension and glob errors).

    Args:
        model: `--model`, instead of the spec's: a model-file name, a local folder or a hub id
            (`harness.spec.model_choice`).
        overrides: `key.path=value` assignments applied after the defaults (`harness run --set`).
        fidelity: `harness run --fidelity` settings (`harness.spec.fidelity.parse_arguments`), before `overrides`.
    """
    from harness.spec.fidelity import in_spec

    path = Path(path)
    data = apply_overrides(path, in_spec(resolve_defaults(path, read_yaml(path)), fidelity or []), overrides or [])
    valid = validate_spec(path, data, model)
    merged = deep_merge(valid.data, {"method": {"args": valid.arguments}})
    resolved = {key: merged[key] for key in Spec.model_fields if key in merged}  # the schema's order
    return LoadedSpec(path, valid.spec, valid.model_file, valid.check_model_file, resolved)
