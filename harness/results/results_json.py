"""results.json on disk: loading and validation against format v1 (`harness.results.results_model`) with one
`file: key.path: message` line per problem, finding the files under folders, and saving.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import InputError, ResultsError, did_you_mean
from harness.inputs import present, read_json
from harness.results.results_model import BENCHMARKS, FORMAT, Results, spec_hash
from harness.spec.reading import pydantic_errors
from harness.spec.schema import GLUE_TASKS, SUPERGLUE_TASKS, Spec

FORMAT_FAMILY = "compacter-harness/results/"
RESULTS_NAME = "results.json"
MAX_RESULTS_BYTES = 100_000_000  # 14 tasks x 10 seeds x 100 epochs of scores is a few megabytes
PERCENT_RTOL = 1e-9  # trainable_percent must be 100 · trainable / base up to float noise


@dataclass(frozen=True)
class LoadedResults:
    path: Path
    results: Results
    spec: Spec  # the embedded resolved spec, validated


def _spec_errors(where: str, results: Results) -> tuple[Spec | None, list[str]]:
    """The embedded spec against the schema, its hash, and the fields of the file that restate it."""
    resolved = results.spec.resolved
    errors = []
    try:
        computed = spec_hash(resolved)
    except ValueError as error:
        return None, [f"{where}: spec.resolved: not JSON data: {error}"]
    if computed != results.spec.hash:
        errors.append(
            f"{where}: spec.hash: {results.spec.hash} does not match the embedded resolved spec ({computed}): "
            "the spec was edited after the run"
        )
    try:
        spec = Spec.model_validate(resolved)
    except ValidationError as error:
        return None, errors + pydantic_errors(Path(where), error, prefix=("spec", "resolved"))
    known = [*BENCHMARKS, *GLUE_TASKS, *SUPERGLUE_TASKS]
    for index, entry in enumerate(spec.published):
        key = f"{where}: spec.resolved.published[{index}]"
        if entry.task not in known:
            errors.append(f"{key}.task: unknown task {entry.task!r}{did_you_mean(entry.task, known)}")
        elif entry.task in BENCHMARKS and entry.metric != "average":
            errors.append(f"{key}.metric: the {entry.task} aggregate has only 'average', not {entry.metric!r}")
    for key, value, expected in (
        ("spec.name", results.spec.name, spec.name),
        ("method", results.method, spec.method.name),
        ("model.spec_model", results.model.spec_model, spec.model),
    ):
        if value != expected:
            errors.append(f"{where}: {key}: {value!r} differs from the embedded spec's {expected!r}")
    published = results.budget.published_percent
    if published is not None and published != spec.budget.published_percent:
        errors.append(
            f"{where}: budget.published_percent: {published} differs from the embedded spec's "
            f"{spec.budget.published_percent}"
        )
    return spec, errors


def _consistency_errors(where: str, results: Results) -> list[str]:
    errors = []
    if results.comparable:
        if results.profile != "paper":
            errors.append(f"{where}: comparable: true, but the {results.profile} profile is never comparable")
        if results.model.architecture != results.model.spec_model:
            errors.append(
                f"{where}: comparable: true, but the model ({results.model.architecture}) is not the spec's "
                f"({results.model.spec_model})"
            )
        if results.not_comparable_reason is not None:
            errors.append(f"{where}: not_comparable_reason: must be null when comparable is true")
        differences = results.recipe_differences()
        if differences:
            errors.append(f"{where}: comparable: true, but the effective recipe is not the paper's: "
                          f"{'; '.join(differences)}")  # fmt: skip
    elif not results.not_comparable_reason:
        errors.append(f"{where}: not_comparable_reason: required when comparable is false")
    if results.fidelity is not None and results.fidelity != results.resolved_fidelity().to_json():
        errors.append(f"{where}: fidelity: {results.fidelity} is not the embedded spec's fidelity section, resolved")
    budget = results.budget
    counted = 100.0 * budget.trainable_params / budget.base_params
    if not math.isclose(budget.trainable_percent, counted, rel_tol=PERCENT_RTOL, abs_tol=1e-12):
        errors.append(
            f"{where}: budget.trainable_percent: {budget.trainable_percent} is not 100 · trainable_params / "
            f"base_params = {counted}"
        )
    for task, result in results.tasks.items():
        seeds = [run.seed for run in result.runs]
        repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        if repeated:
            errors.append(f"{where}: tasks.{task}.runs: seed {repeated[0]} appears twice; each seed is run once")
        for split in ("test", "validation"):
            errors += _mean_errors(f"{where}: tasks.{task}.{split}_mean", getattr(result, f"{split}_mean"),
                                   [getattr(run, split) for run in result.runs])  # fmt: skip
        for index, run in enumerate(result.runs):
            key = f"{where}: tasks.{task}.runs[{index}]"
            if run.seed not in results.seeds:
                errors.append(f"{key}.seed: {run.seed} is not one of the file's seeds {results.seeds}")
            epochs = [entry.epoch for entry in run.history]
            if epochs and run.best_epoch not in epochs:
                errors.append(f"{key}.best_epoch: {run.best_epoch} is not an epoch of its history {epochs}")
    return errors


def _mean_errors(key: str, mean: dict[str, float], runs: list[dict[str, float]]) -> list[str]:
    """A task's stored mean is the mean over its runs of each score they all have (what the run wrote): a
    hand-edited mean cannot stand in for the runs it claims to average."""
    common = set.intersection(*(set(scores) for scores in runs)) if runs else set()
    if set(mean) != common:
        return [f"{key}: has {sorted(mean)}, but the runs' scores are {sorted(common)}"]
    for metric in sorted(common):
        expected = math.fsum(scores[metric] for scores in runs) / len(runs)
        if not math.isclose(mean[metric], expected, rel_tol=1e-9, abs_tol=1e-9):
            return [f"{key}.{metric}: {mean[metric]} is not the mean of the runs' {metric}, {expected}"]
    return []


def validate_results(data: Any, where: str | Path = "results", require_regression: bool = True) -> LoadedResults:
    """A results mapping checked against format v1; ResultsError with every problem found, each on one line."""
    where = str(where)
    if not isinstance(data, Mapping):
        raise ResultsError([f"{where}: (top level): expected a JSON object, got {type(data).__name__}"])
    found = data.get("format")
    if found != FORMAT:
        if isinstance(found, str) and found.startswith(FORMAT_FAMILY):
            message = f"unsupported results format {found!r}: this harness reads {FORMAT!r}"
        elif found is None:
            message = f"required key is missing: not a compacter-harness results file (expected {FORMAT!r})"
        else:
            message = f"{found!r} is not a compacter-harness results format (expected {FORMAT!r})"
        raise ResultsError([f"{where}: format: {message}"])
    try:
        results = Results.model_validate(data)
    except ValidationError as error:
        raise ResultsError(pydantic_errors(Path(where), error)) from None
    spec, errors = _spec_errors(where, results)
    errors += _consistency_errors(where, results)
    if require_regression and results.regression is None:
        errors.append(f"{where}: regression: required key is missing")
    if errors:
        raise ResultsError(errors)
    return LoadedResults(path=Path(where), results=results, spec=spec)


def load_results(path: str | Path) -> LoadedResults:
    """Read and validate a results.json; ResultsError lines name the file and the key path."""
    path = Path(path)
    if path.is_dir():
        raise ResultsError([f"{path}: (top level): is a folder, expected a {RESULTS_NAME} file"])
    if not present(path):
        raise ResultsError([f"{path}: (top level): file not found"])
    try:  # a regular file, bounded in size and nesting, finite numbers (the harness writes allow_nan=False)
        data = read_json(path, MAX_RESULTS_BYTES, what=RESULTS_NAME)
    except InputError as error:
        raise ResultsError(error.errors) from None
    return validate_results(data, path)


def find_results(paths: list[Path]) -> list[Path]:
    """Files as given; folders give their results.json and those of every subfolder (sorted)."""
    found: list[Path] = []
    errors = []
    for path in paths:
        if path.is_dir():
            inside = sorted(path.rglob(RESULTS_NAME))
            if not inside:
                errors.append(f"{path}: (top level): no {RESULTS_NAME} in this folder or its subfolders")
            found += inside
        else:
            found.append(path)
    if errors:
        raise ResultsError(errors)
    unique = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def save_results(results: Results | Mapping[str, Any], path: str | Path) -> LoadedResults:
    """Validate (regression included) and write `path` as indented JSON; returns the loaded results."""
    data = results.model_dump(mode="json") if isinstance(results, Results) else results
    loaded = validate_results(data, path)
    Path(path).write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return loaded
