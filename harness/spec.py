"""Load and validate spec files, reporting every error at once as `file: key.path: message`.

Loading is: YAML (safe_load) → one level of `defaults:` merged underneath → the pydantic schema →
checks against the outside world: the method registry (did-you-mean), the builder's signature, the
model file, the invariant vocabulary, and finally the method built on the meta device (so an n that
does not divide the bottleneck, or a glob that matches nothing, is a validation error too).
"""

from __future__ import annotations

import difflib
import inspect
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from harness.models import ModelFile, models_dir
from harness.schema import Spec

DEFAULTS_DIR = "_defaults"


class SpecError(Exception):
    """One or more problems with a spec; `errors` are complete `file: key.path: message` lines."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class LoadedSpec:
    path: Path
    spec: Spec
    model_file: ModelFile
    resolved: dict[str, Any]  # the merged YAML after defaults, with the method's default arguments filled in

    @property
    def name(self) -> str:
        return self.spec.name


def default_spec_dir() -> Path:
    """`spec/` of a source checkout (pip install -e .), else `./spec`."""
    checkout = Path(__file__).resolve().parent.parent / "spec"
    return checkout if checkout.is_dir() else Path.cwd() / "spec"


def spec_files(spec_dir: Path | None = None) -> list[Path]:
    """The method specs: `*.yaml` directly in the spec folder (not `_defaults/`, `models/`, ...)."""
    return sorted((spec_dir or default_spec_dir()).glob("*.yaml"))


def format_loc(loc: tuple) -> str:
    """('trainable', 2) -> 'trainable[2]'; ('method', 'args', 'n') -> 'method.args.n'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def pydantic_errors(path: Path, error: ValidationError, prefix: tuple = ()) -> list[str]:
    lines = []
    for item in error.errors():
        loc = prefix + tuple(p for p in item["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        lines.append(f"{path}: {format_loc(loc)}: {message}")
    return lines


# pydantic puts the discriminator value of a tagged union into error locations; drop it from key paths.
_UNION_TAGS = {"normal", "uniform", "glorot_uniform", "zeros", "ones"}


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from `path`, or SpecError naming the file (and line) for anything else."""
    if not path.is_file():
        raise SpecError([f"{path}: file not found"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown position)"
        raise SpecError([f"{path}: {where}: invalid YAML: {error.problem}"]) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise SpecError([f"{path}: (top level): invalid YAML: {error}"]) from None
    if not isinstance(data, dict):
        raise SpecError([f"{path}: (top level): expected a mapping of keys, got {type(data).__name__}"])
    return data


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
    defaults_path = path.resolve().parent / DEFAULTS_DIR / f"{name}.yaml"
    if not defaults_path.is_file():
        known = sorted(p.stem for p in defaults_path.parent.glob("*.yaml"))
        raise SpecError([f"{path}: defaults: no file {defaults_path}{did_you_mean(name, known)}"])
    base = read_yaml(defaults_path)
    if "defaults" in base:
        raise SpecError([f"{defaults_path}: defaults: only one level of defaults is allowed"])
    body = {k: v for k, v in data.items() if k != "defaults"}
    return deep_merge(base, body)


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"


def load_model_file(path: Path) -> ModelFile:
    data = read_yaml(path)
    try:
        model_file = ModelFile.model_validate(data)
    except ValidationError as error:
        raise SpecError(pydantic_errors(path, error)) from None
    if model_file.name != path.stem:
        raise SpecError([f"{path}: name: {model_file.name!r} must equal the file name {path.stem!r}"])
    return model_file


def model_file_for(spec_path: Path, name: str, key: str = "model") -> ModelFile:
    """`models/<name>.yaml` beside the spec; SpecError naming `key` (the spec's `model`, or `--model`)."""
    folder = models_dir(spec_path)
    candidate = folder / f"{name}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise SpecError([f"{spec_path}: {key}: no model file {candidate}{did_you_mean(name, known)}"])
    return load_model_file(candidate)


def arguments_model(method) -> type[BaseModel]:
    """A pydantic model of the builder's keyword arguments (types from its annotations, extra forbidden)."""
    hints = typing.get_type_hints(method.build)
    fields = {}
    for name, parameter in method.parameters().items():
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (hints.get(name, Any), default)
    return create_model(f"{method.name}_arguments", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


def check_method(path: Path, spec: Spec) -> tuple[dict[str, Any] | None, list[str]]:
    """The method's full arguments (defaults filled in) or the errors against registry and signature."""
    from impl.registry import UnknownMethodError, get

    try:
        method = get(spec.method.name)
    except UnknownMethodError as error:
        return None, [f"{path}: method.name: {error.message}"]
    try:
        arguments = arguments_model(method).model_validate(spec.method.args)
    except ValidationError as error:
        accepted = ", ".join(method.parameters())
        lines = pydantic_errors(path, error, prefix=("method", "args"))
        return None, [
            line.replace(": unknown key", f": unexpected argument for {method.name} (accepts: {accepted})")
            for line in lines
        ]
    return arguments.model_dump(mode="json"), []


def check_invariants(path: Path, spec: Spec) -> list[str]:
    from harness.invariants import INVARIANTS

    errors = []
    for name, options in spec.invariants.items():
        if name not in INVARIANTS:
            errors.append(f"{path}: invariants.{name}: unknown invariant{did_you_mean(name, sorted(INVARIANTS))}")
            continue
        try:
            INVARIANTS[name].options.model_validate(options or {})
        except ValidationError as error:
            errors += pydantic_errors(path, error, prefix=("invariants", name))
    return errors


def check_built(path: Path, spec: Spec, model_file: ModelFile, arguments: dict[str, Any]) -> list[str]:
    """Build the method on the meta device: argument/model mismatches and globs that match nothing."""
    from harness.build import build_method_model
    from impl.inject import GlobMatchesNothingError, matching_names
    from impl.registry import MethodArgumentError

    try:
        built = build_method_model(spec.method.name, arguments, spec.trainable, model_file, device="meta")
    except MethodArgumentError as error:
        return [f"{path}: method.args.{error.argument}: {error.message} (model {model_file.name})"]
    except GlobMatchesNothingError as error:
        return [f"{path}: trainable[{error.index}]: {error} of model {model_file.name} with this method"]
    names = [name for name, _ in built.model.named_parameters()]
    return [
        f"{path}: init[{index}].params: glob {rule.params!r} matches no parameter"
        for index, rule in enumerate(spec.init)
        if not matching_names(names, [rule.params])
    ]


def load_spec(path: str | Path, model: str | None = None, build: bool = True) -> LoadedSpec:
    """Load, merge defaults, validate everything; raise SpecError with every problem found.

    Args:
        model: a model-file name to use instead of the spec's (e.g. `t5_small` for a budget).
        build: also build the method on the meta device (catches dimension and glob errors).
    """
    path = Path(path)
    data = resolve_defaults(path, read_yaml(path))
    try:
        spec = Spec.model_validate(data)
    except ValidationError as error:
        raise SpecError(pydantic_errors(path, error)) from None
    errors = []
    if spec.name != path.stem:
        errors.append(f"{path}: name: {spec.name!r} must equal the file name {path.stem!r}")
    model_file = None
    try:
        model_file = model_file_for(path, model or spec.model, "--model" if model else "model")
    except SpecError as error:
        errors += error.errors
    arguments, method_errors = check_method(path, spec)
    errors += method_errors
    errors += check_invariants(path, spec)
    if build and not errors:
        errors += check_built(path, spec, model_file, arguments)
    if errors:
        raise SpecError(errors)
    merged = deep_merge(data, {"method": {"args": arguments}})
    resolved = {key: merged[key] for key in Spec.model_fields if key in merged}  # the schema's order
    return LoadedSpec(path=path, spec=spec, model_file=model_file, resolved=resolved)


def validate_paths(paths: list[Path]) -> list[str]:
    """Every error of every spec (empty when all are valid)."""
    errors = []
    for path in paths:
        try:
            load_spec(path)
        except SpecError as error:
            errors += error.errors
    return errors
