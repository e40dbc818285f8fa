"""Load and validate spec files, reporting every error at once as `file: key.path: message`.

Loading is: YAML (safe_load) → one level of `defaults:` merged underneath → the pydantic schema →
checks against the outside world: the method registry (did-you-mean), the builder's signature, the
model file, the invariant vocabulary, and finally the method built on the meta device (so an n that
does not divide the bottleneck, or a glob that matches nothing, is a validation error too).
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Strict, ValidationError, create_model

from harness.errors import SpecError, did_you_mean
from harness.spec.model_files import ModelFile, models_dir
from harness.spec.schema import InitRule, Spec

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


def format_loc(loc: tuple) -> str:
    """('trainable', 2) -> 'trainable[2]'; ('method', 'args', 'n') -> 'method.args.n'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def clean_loc(loc: tuple) -> tuple:
    """Drop pydantic's bookkeeping from a location: the tag of a tagged union (`init[0].normal.std` ->
    `init[0].std`) and the `[key]` marker of an invalid mapping key."""
    kept = []
    for index, part in enumerate(loc):
        after_init_index = index >= 2 and loc[index - 2] == "init" and isinstance(loc[index - 1], int)
        if (after_init_index and part in _INIT_TAGS) or part == "[key]":
            continue
        kept.append(part)
    return tuple(kept)


_INIT_TAGS = {  # the init union's discriminator values: pydantic puts the tag in an error's location
    tag
    for rule in typing.get_args(typing.get_args(InitRule)[0])
    for tag in typing.get_args(rule.model_fields["distribution"].annotation)
}


def pydantic_errors(path: Path, error: ValidationError, prefix: tuple = ()) -> list[str]:
    lines = []
    for item in error.errors():
        loc = prefix + clean_loc(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif "[key]" in item["loc"]:
            message = f"invalid key {item['input']!r}: {message}"
        lines.append(f"{path}: {format_loc(loc)}: {message}")
    return lines


class SpecLoader(yaml.SafeLoader):
    """yaml.SafeLoader (nothing but plain data), reading `1e-4` as a float as YAML 1.2 does, and refusing a
    key written twice in one mapping (PyYAML would silently keep the last).

    PyYAML follows YAML 1.1, where a float needs a dot (`1.0e-4`) and `1e-4` is a string.
    """

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key]}, again on line {line})",
                    key_node.start_mark,
                )  # fmt: skip
            if isinstance(key, str | int | float | bool):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


MAX_SPEC_BYTES = 1_000_000  # a spec is a page of YAML; anything larger is a mistake, and slow to parse
MAX_NESTING = 50  # deeper YAML would exhaust the parser's recursion


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from `path`, or SpecError naming the file (and line) for anything else."""
    if path.is_dir():
        raise SpecError([f"{path}: (top level): is a folder, expected a YAML file"])
    if not path.is_file():
        raise SpecError([f"{path}: (top level): file not found"])
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecError([f"{path}: (top level): {size:,} bytes; a spec file is at most {MAX_SPEC_BYTES:,}"])
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        byte = f"byte {raw[error.start]:#04x} on line {line}"
        raise SpecError([f"{path}: (top level): not UTF-8 text ({byte}); save the spec as UTF-8"]) from None
    depth = nesting_depth(text)
    if depth > MAX_NESTING:
        raise SpecError([f"{path}: (top level): nested {depth} levels deep; a spec nests at most {MAX_NESTING}"])
    try:
        data = yaml.load(text, Loader=SpecLoader)  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown position)"
        raise SpecError([f"{path}: {where}: invalid YAML: {error.problem}"]) from None
    except yaml.reader.ReaderError as error:  # a character YAML does not allow (a NUL, a control character)
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        character = f"#x{error.character:04x}" if isinstance(error.character, int) else repr(error.character)
        raise SpecError(
            [f"{path}: line {line}, column {column}: invalid YAML: character {character}: {error.reason}"]
        ) from None
    except yaml.YAMLError as error:
        raise SpecError([f"{path}: (top level): invalid YAML: {' '.join(str(error).split())}"]) from None
    if data is None:
        raise SpecError([f"{path}: (top level): the file is empty; expected a mapping of keys"])
    if not isinstance(data, dict):
        raise SpecError([f"{path}: (top level): expected a mapping of keys, got {type(data).__name__}"])
    return data


def nesting_depth(text: str) -> int:
    """An upper bound of the YAML nesting: the deepest run of open flow brackets or block indentation levels."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    indents = {len(line) - len(line.lstrip(" ")) for line in text.splitlines() if line.strip()}
    return max(deepest, len(indents))


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


def check_invariants(path: Path, invariants: Any) -> list[str]:
    """Names against the closed vocabulary (did-you-mean), options against each invariant's options."""
    from harness.spec.invariant_catalog import DECLARED

    if not isinstance(invariants, dict):
        return []  # the schema reports the shape
    errors = []
    for name, options in invariants.items():
        if name not in DECLARED:
            errors.append(f"{path}: invariants.{name}: unknown invariant{did_you_mean(str(name), sorted(DECLARED))}")
            continue
        try:
            DECLARED[name].options.model_validate(options or {})
        except ValidationError as error:
            errors += pydantic_errors(path, error, prefix=("invariants", name))
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


def apply_overrides(path: Path, data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`key.path=value` assignments (value in YAML: `3e-3`, `[mrpc, rte]`, `true`) applied to the spec data.

    The result is validated like any spec, so a typo in a key or a wrong type is reported as usual.
    """
    data = deep_merge(data, {})
    for override in overrides:
        key, (_, sep, text) = override_key(override), override.partition("=")
        if not sep or not key:
            raise SpecError([f"{path}: --set {override}: expected KEY.PATH=VALUE"])
        try:
            value = yaml.load(text, Loader=SpecLoader)
        except yaml.YAMLError as error:
            why = getattr(error, "problem", None) or " ".join(str(error).split())
            raise SpecError([f"{path}: --set {key}: invalid value {text!r}: {why}"]) from None
        parts = key.split(".")
        target = data
        for part in parts[:-1]:
            child = target.get(part)
            if child is None:
                child = target[part] = {}
            elif not isinstance(child, dict):
                raise SpecError([f"{path}: --set {key}: {part} is not a mapping"])
            else:
                child = target[part] = dict(child)
            target = child
        target[parts[-1]] = value
    return data


def read_spec(path: str | Path, model: str | None = None, overrides: list[str] | None = None) -> LoadedSpec:
    """Load, merge defaults, validate everything a spec says as data; raise SpecError with every problem.

    `harness.model.checked.load_spec` also builds the method (dimension and glob errors).

    Args:
        model: a model-file name to use instead of the spec's (e.g. `t5_small` for a budget).
        overrides: `key.path=value` assignments applied after the defaults (`harness run --set`).
    """
    path = Path(path)
    data = apply_overrides(path, resolve_defaults(path, read_yaml(path)), overrides or [])
    errors, spec, model_file, check_model_file = [], None, None, None
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
            model_file = model_file_for(path, model_name, "--model" if model else "model")
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
    errors += check_invariants(path, data.get("invariants"))
    if spec is not None:
        errors += check_published(path, spec)
    if errors:
        raise SpecError(errors)
    merged = deep_merge(data, {"method": {"args": arguments}})
    resolved = {key: merged[key] for key in Spec.model_fields if key in merged}  # the schema's order
    return LoadedSpec(path=path, spec=spec, model_file=model_file, check_model_file=check_model_file, resolved=resolved)
