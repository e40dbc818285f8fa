"""A spec read and shown buildable: `read_spec`'s checks, then the method built on the meta device
(argument/model mismatches, trainable and init globs that match nothing). torch loads only when a spec is
valid as data, so a schema error is reported without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import SpecError
from harness.spec.loader import LoadedSpec, read_spec
from harness.spec.model_files import ModelFile
from harness.spec.schema import Spec


def read_buildable_spec(path: str | Path, model: str | None = None, overrides: list[str] | None = None) -> LoadedSpec:
    """`read_spec`, then the method built on the spec's model and on its check model, or only on `model` when
    one is given (`--model`: a budget or check on it needs nothing of the others); a SpecError with what fails."""
    loaded = read_spec(path, model=model, overrides=overrides)
    arguments = loaded.resolved["method"]["args"]
    errors = check_built(loaded.path, loaded.spec, loaded.model_file, arguments)
    if not errors and model is None and loaded.check_model_file != loaded.model_file:
        errors += check_built(loaded.path, loaded.spec, loaded.check_model_file, arguments, key="check_model")
    if errors:
        raise SpecError(errors)
    return loaded


def check_built(
    path: Path, spec: Spec, model_file: ModelFile, arguments: dict[str, Any], key: str = "model"
) -> list[str]:
    """Build the method on the meta device: argument/model mismatches and globs that match nothing.

    `key` names the spec key that chose the model (`model`, or `check_model` for the invariants' model).
    """
    from harness.model.build import build_method_model
    from impl.inject import GlobMatchesNothingError, matching_names
    from impl.registry import MethodArgumentError

    try:
        built = build_method_model(spec.method.name, arguments, spec.trainable, model_file, device="meta")
    except MethodArgumentError as error:
        return [argument_error_line(path, error, f"{key} {model_file.name}")]
    except GlobMatchesNothingError as error:
        return [f"{path}: trainable[{error.index}]: {error} of {key} {model_file.name} with this method"]
    names = [name for name, _ in built.model.named_parameters()]
    return [
        f"{path}: init[{index}].params: glob {rule.params!r} matches no parameter"
        for index, rule in enumerate(spec.init)
        if not matching_names(names, [rule.params])
    ]


def argument_error_line(path: Path, error, model: str) -> str:
    """A method argument the model cannot take, with where to set another (`model` says which model)."""
    argument = error.argument
    return (
        f"{path}: method.args.{argument}: {error.message} ({model}); set another value in the spec "
        f"or with --set method.args.{argument}=VALUE"
    )


def validate_paths(paths: list[Path]) -> list[str]:
    """Every error of every spec (empty when all are valid)."""
    errors = []
    for path in paths:
        try:
            read_buildable_spec(path)
        except SpecError as error:
            errors += error.errors
    return errors
