"""Load and validate spec files, reporting every error at once as `file: key.path: message`.

Loading is: YAML (safe_load) → one level of `defaults:` merged underneath → the pydantic schema →
checks against the outside world: the method registry (did-you-mean), the builder's signature, the
model file, the invariant vocabulary, and finally the method built on the meta device (so an n that
does not divide the bottleneck, or a glob that matches nothing, is a validation error too).
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Strict, ValidationError, create_model

from harness.errors import SpecError, did_you_mean
from harness.spec.model_choice import model_file_for, resolve_model
from harness.spec.model_files import ModelFile
from harness.spec.reading import MAX_NESTING, SpecLoader, nesting_depth, pydantic_errors, read_yaml
from harness.spec.schema import Spec

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


def strict_scalars(annotation: Any) -> Any:
    """The annotation with every int/float/bool/str made strict (so `n: true` is not 1 and `n: 4.5` is
    refused); containers stay lax so a YAML list fills a tuple."""
    if annotation in (int, float, bool, str):
        return Annotated[annotation, Strict()]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(strict_scalars(a) for a in args)]  # noqa: UP007 (built from a tuple)
    if origin in (tuple, list) and args:
        return origin[tuple(a if a is Ellipsis else strict_scalars(a) for a in args)]
    return annotation


def arguments_model(method) -> type[BaseModel]:
    """A pydantic model of the builder's keyword arguments (types from its annotations, extra forbidden)."""
    hints = method.argument_types()
    fields = {}
    for name, parameter in method.parameters().items():
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (strict_scalars(hints.get(name, Any)), default)
    config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # `.inf` would train, then fail late
    return create_model(f"{method.name}_arguments", __config__=config, **fields)


def check_method(path: Path, method_data: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """The method's full arguments (defaults filled in), or the errors against registry and signature.

    Works on the raw `method:` mapping, so these errors are reported even when the schema found others.
    """
    from impl.registry import UnknownMethodError, get

    if not isinstance(method_data, dict) or not isinstance(method_data.get("name"), str):
        return None, []  # the schema reports the shape
    try:
        method = get(method_data["name"])
    except UnknownMethodError as error:
        return None, [f"{path}: method.name: {error.message}"]
    args = method_data.get("args") or {}
    if not isinstance(args, dict):
        return None, []
    try:
        arguments = arguments_model(method).model_validate(args)
    except ValidationError as error:
        accepted = ", ".join(method.parameters())
        lines = pydantic_errors(path, error, prefix=("method", "args"))
        return None, [
            line.replace(": unknown key", f": unexpected argument for {method.name} (accepts: {accepted})")
            for line in lines
        ]
    return arguments.model_dump(mode="json"), []


def check_invariants(path: Path, invariants: Any, method: Any = None) -> list[str]:
    """Names against the closed vocabulary (did-you-mean), options against each invariant's options, and each
    invariant (and option) against the spec's `method`: one whose check reads what this method does not
    build (PHM layers on an adapter, a prompt on Compacter) is refused here rather than failing in `check`."""
    from harness.spec.invariant_catalog import DECLARED
    from impl.registry import names

    if not isinstance(invariants, dict):
        return []  # the schema reports the shape
    if method not in names():
        method = None  # an unknown method is reported once, by check_method, not once per invariant
    errors = []
    for name, options in invariants.items():
        if name not in DECLARED:
            errors.append(f"{path}: invariants.{name}: unknown invariant{did_you_mean(str(name), sorted(DECLARED))}")
            continue
        declared = DECLARED[name]
        if isinstance(method, str) and not declared.applies_to(method):
            errors.append(f"{path}: invariants.{name}: applies only to {', '.join(declared.methods)} (it needs "
                          f"{declared.needs}), not {method}")  # fmt: skip
            continue
        try:
            validated = declared.options.model_validate(options or {})
        except ValidationError as error:
            errors += pydantic_errors(path, error, prefix=("invariants", name))
            continue
        for option, (methods, needs) in declared.option_methods.items():
            default = type(validated).model_fields[option].default
            if isinstance(method, str) and method not in methods and getattr(validated, option) != default:
                errors.append(f"{path}: invariants.{name}.{option}: applies only to {', '.join(methods)} (it needs "
                              f"{needs}), not {method}")  # fmt: skip
    return errors


def check_published(path: Path, spec) -> list[str]:
    """Each published number names a task of the paper (or glue/superglue) and one of its metrics."""
    from harness.spec.tasks import TASKS

    errors = []
    for index, entry in enumerate(spec.published):
        key = f"{path}: published[{index}]"
        if entry.task in ("glue", "superglue"):
            if entry.metric != "average":
                errors.append(f"{key}.metric: the {entry.task} aggregate has only 'average', not {entry.metric!r}")
        elif entry.task not in TASKS:
            errors.append(
                f"{key}.task: unknown task {entry.task!r}{did_you_mean(entry.task, [*TASKS, 'glue', 'superglue'])}"
            )
        elif entry.metric not in (*TASKS[entry.task].metrics, "average"):
            known = [*TASKS[entry.task].metrics, "average"]
            errors.append(f"{key}.metric: {entry.task} has no metric {entry.metric!r} (it has {', '.join(known)})")
    return errors


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


def apply_fidelity(path: Path, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The spec data with what its `fidelity:` section sets (method arguments, init rules) and the section in
    canonical form; the errors of a section asking what cannot hold. A section the schema refuses is left
    for the schema to report."""
    from harness.spec.fidelity import apply_to_spec, section_errors
    from harness.spec.schema import FidelitySection

    method = data.get("method")
    try:
        section = FidelitySection.model_validate(data.get("fidelity", {}))
    except ValidationError:
        return [], data
    shaped = isinstance(method, dict) and isinstance(method.get("name"), str)
    if not shaped or not isinstance(method.get("args", {}), dict) or not isinstance(data.get("init", []), list):
        return [], data  # the schema reports the shape
    args = method.get("args") or {}
    explicit = section.model_dump(exclude_none=True)
    errors = [f"{path}: {line}" for line in section_errors(explicit, method["name"], args)]
    return errors, {**apply_to_spec(data, section.resolved()), "fidelity": explicit}


def read_spec(path: str | Path, model: str | None = None, overrides: list[str] | None = None) -> LoadedSpec:
    """Load, merge defaults, validate everything a spec says as data; raise SpecError with every problem.

    `harness.model.checked.load_spec` also builds the method (dimension and glob errors).

    Args:
        model: `--model`, instead of the spec's: a model-file name, a local folder or a hub id
            (`harness.spec.model_choice`).
        overrides: `key.path=value` assignments applied after the defaults (`harness run --set`).
    """
    path = Path(path)
    data = apply_overrides(path, resolve_defaults(path, read_yaml(path)), overrides or [])
    errors, data = apply_fidelity(path, data)
    spec, model_file, check_model_file = None, None, None
    try:
        spec = Spec.model_validate(data)
    except ValidationError as error:
        errors += pydantic_errors(path, error)
    name = data.get("name")
    if isinstance(name, str) and name != path.stem:
        errors.append(f"{path}: name: {name!r} must equal the file name {path.stem!r}")
    model_name = model or data.get("model")
    if isinstance(model_name, str):
        try:
            model_file = resolve_model(path, model) if model else model_file_for(path, model_name, "model")
        except SpecError as error:
            errors += error.errors
    check_model_name = data.get("check_model", Spec.model_fields["check_model"].default)
    if isinstance(check_model_name, str):
        try:
            check_model_file = model_file_for(path, check_model_name, "check_model")
        except SpecError as error:
            errors += error.errors
    arguments, method_errors = check_method(path, data.get("method"))
    errors += method_errors
    method_name = data["method"].get("name") if isinstance(data.get("method"), dict) else None
    errors += check_invariants(path, data.get("invariants"), method_name)
    if spec is not None:
        errors += check_published(path, spec)
    if errors:
        raise SpecError(errors)
    merged = deep_merge(data, {"method": {"args": arguments}})
    resolved = {key: merged[key] for key in Spec.model_fields if key in merged}  # the schema's order
    return LoadedSpec(path=path, spec=spec, model_file=model_file, check_model_file=check_model_file, resolved=resolved)
