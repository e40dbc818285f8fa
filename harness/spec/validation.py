"""Validate a spec: every problem of its data at once, as `file: key.path: message` lines (one SpecError).

The data comes resolved from `harness.spec.loader` (its `defaults:` merged underneath, `--fidelity` and `--set`
applied). Checked here, in this order: the `fidelity:` section (what it asks must hold; then applied), the
pydantic schema (`harness.spec.schema`), the name against the file name, the model files (or `--model`), the
method against the registry (did-you-mean) and its builder's signature, the invariants against their
vocabulary and the method, the published numbers against the paper's tasks. What only a built model can say
(an `n` that does not divide the bottleneck, a glob that matches nothing) is `harness.model.checked`'s.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Strict, ValidationError, create_model

from harness.errors import InputError, SpecError, did_you_mean
from harness.spec.model_choice import model_file_for, resolve_model
from harness.spec.model_files import ModelFile
from harness.spec.reading import pydantic_errors
from harness.spec.schema import Spec


@dataclass(frozen=True)
class Validated:
    """A valid spec's parts: the schema's object, its model files, the method's full arguments (defaults
    filled in), and its data with the `fidelity:` section applied."""

    spec: Spec
    model_file: ModelFile
    check_model_file: ModelFile
    arguments: dict[str, Any]
    data: dict[str, Any]


def validate_spec(path: Path, data: dict[str, Any], model: str | None = None) -> Validated:
    """The spec data's parts, or every problem at once: a SpecError, or, when `--model` alone is wrong, its
    own OptionError or ModelError.

    Args:
        model: `--model`, instead of the spec's: a model-file name, a local folder or a hub id
            (`harness.spec.model_choice`).
    """
    errors, data = apply_fidelity(path, data)
    spec, model_file, check_model_file, refused_model = None, None, None, None
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
        except InputError as error:  # the spec's `model` (a SpecError), or `--model` (an OptionError, a ModelError)
            errors += error.errors
            refused_model = error
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
    if refused_model is not None and errors == refused_model.errors:
        raise refused_model
    if errors:
        raise SpecError(errors)
    return Validated(spec, model_file, check_model_file, arguments, data)


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
