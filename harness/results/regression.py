"""The regression verdict of a results.json: every published number of the spec embedded in the file against
the run (`compare`), one check each; what `harness run` writes under `regression` and `harness compare` prints.

- the budget: the counted trainable percentage against the spec's `budget.published_percent`; it passes
  when it rounds to the published precision (`harness.model.budget.percent_matches`). Counted on another
  architecture than the spec's (the smoke profile's tiny T5) it is `not_comparable`.
- each `published` entry of the spec: the run's test score (the task's `test_mean[metric]`; for "glue" /
  "superglue" and "average", the mean of the 8 GLUE / 6 SuperGLUE tasks' test averages, all of them
  needed) passes iff `actual >= value - tolerance`. A run that is not comparable (smoke profile, another
  model) marks every score check `not_comparable`, which is never a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.model.budget import decimals, percent_matches
from harness.results.results_json import LoadedResults, validate_results
from harness.results.results_model import BENCHMARKS, Check, Comparison, Results
from harness.spec.schema import Spec

# Scores are means of ×100 metrics: a value equal to the threshold up to float noise passes.
SCORE_SLACK = 1e-9


def _actual_score(results: Results, task: str, metric: str) -> tuple[float | None, str]:
    if task in BENCHMARKS:
        value, absent = results.benchmark_average(task)
        if value is None:
            members = len(BENCHMARKS[task])
            return None, f"the {task} average needs all {members} tasks; the run lacks {', '.join(absent)}"
        return value, ""
    if task not in results.tasks:
        return None, f"the run has no {task}"
    scores = results.tasks[task].test_mean
    if metric not in scores:
        return None, f"the {task} test scores have no {metric!r} (they have {', '.join(scores)})"
    return scores[metric], ""


def _budget_check(results: Results, spec: Spec) -> Check:
    published = spec.budget.published_percent
    actual = results.budget.trainable_percent
    fields = {"kind": "budget", "task": None, "metric": "trainable_percent", "published": published}
    fields |= {"tolerance": None, "actual": actual, "source": spec.budget.source}
    if results.model.architecture != results.model.spec_model:
        note = f"counted on {results.model.architecture}, not the spec's {results.model.spec_model}"
        return Check(**fields, status="not_comparable", note=note)
    places = decimals(published)
    rounded = f"{round(actual, places):.{places}f}"
    if percent_matches(actual, published):
        return Check(**fields, status="pass", note=f"rounds to {rounded}")
    return Check(**fields, status="fail", note=f"rounds to {rounded}, not the published {published}")


def _score_check(results: Results, entry) -> Check:
    actual, missing = _actual_score(results, entry.task, entry.metric)
    fields = {"kind": "score", "task": entry.task, "metric": entry.metric, "published": entry.value}
    fields |= {"tolerance": entry.tolerance, "actual": actual, "source": entry.source}
    if not results.comparable:
        note = f"{results.not_comparable_reason}" + (f" ({missing})" if missing else "")
        return Check(**fields, status="not_comparable", note=note)
    if actual is None:
        return Check(**fields, status="missing", note=missing)
    threshold = entry.value - entry.tolerance
    if actual >= threshold - SCORE_SLACK:
        above = actual > entry.value + entry.tolerance + SCORE_SLACK
        note = f"above the published value by {actual - entry.value:.2f}, more than the tolerance" if above else ""
        return Check(**fields, status="pass", note=note)
    return Check(**fields, status="fail", note=f"below {threshold:.2f} (published − tolerance)")


def compare(results: Results | LoadedResults | Mapping[str, Any]) -> Comparison:
    """Every published number of the embedded spec against the run (see the module docstring)."""
    if isinstance(results, LoadedResults):
        loaded = results
    elif isinstance(results, Results):
        loaded = validate_results(results.model_dump(mode="json"), require_regression=False)
    else:
        loaded = validate_results(results, require_regression=False)
    run, spec = loaded.results, loaded.spec
    checks = [_budget_check(run, spec)] if spec.budget.published_percent is not None else []
    checks += [_score_check(run, entry) for entry in spec.published]
    return Comparison(
        ok=all(check.status != "fail" for check in checks),
        comparable=run.comparable,
        not_comparable_reason=run.not_comparable_reason,
        checks=checks,
        differences=run.recipe_differences(),
    )


def with_regression(results: Results | Mapping[str, Any]) -> Results | dict[str, Any]:
    """The results with `regression` filled in by `compare` (what `harness run` writes): a Results for a
    Results, a mapping (a results file's content) for a mapping."""
    if isinstance(results, Results):
        return results.model_copy(update={"regression": compare(results.model_copy(update={"regression": None}))})
    data = {key: value for key, value in results.items() if key != "regression"}
    return {**data, "regression": compare(data).to_json()}
