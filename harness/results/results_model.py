"""results.json format v1: its strict pydantic model (the `regression` verdict included:
`harness.results.regression` computes it) and the hash that binds a file to its resolved spec.

Reading, validating, finding and saving a file are `harness.results.results_json`'s.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    model_validator,
)

from harness.results.comparability import differences
from harness.spec.fidelity import Fidelity, Position
from harness.spec.schema import GLUE_TASKS, SUPERGLUE_TASKS, TaskName

FORMAT = "compacter-harness/results/v1"
BENCHMARKS: dict[str, tuple[str, ...]] = {"glue": GLUE_TASKS, "superglue": SUPERGLUE_TASKS}


def canonical_json(data: Any) -> bytes:
    """The bytes the spec hash is taken over: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def spec_hash(resolved: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the canonical JSON of a resolved spec (what `harness show --json` prints)."""
    return "sha256:" + hashlib.sha256(canonical_json(resolved)).hexdigest()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _has_average(scores: dict[str, float]) -> dict[str, float]:
    if "average" not in scores:
        raise ValueError("needs an 'average' key (the mean of the task's metrics)")
    return scores


Scores = Annotated[dict[str, float], AfterValidator(_has_average)]
Status = Literal["pass", "fail", "missing", "not_comparable"]


class EmbeddedSpec(_Strict):
    name: str
    path: str
    hash: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
    resolved: dict[str, Any]
    overrides: list[str] = Field(default_factory=list)  # the run's `--set KEY=VALUE`s (already in `resolved`)


class ModelInfo(_Strict):
    source: str  # hub name, local path or model-file name
    architecture: str  # the model file it matches, or "custom"
    spec_model: str  # the spec's `model`


class Environment(_Strict):
    git_commit: str | None
    packages: dict[str, str]
    device: str
    precision: Literal["fp32", "bf16"]
    deepspeed_stage: Literal[0, 1, 2, 3] | None
    world_size: PositiveInt


class BudgetInfo(_Strict):
    trainable_params: NonNegativeInt
    base_params: PositiveInt
    trainable_percent: Annotated[float, Field(ge=0.0, le=100.0)]
    published_percent: float | None


class Epoch(_Strict):
    epoch: NonNegativeInt
    train_loss: float | None  # null when no training loss was logged in the epoch (fewer steps than logging_steps)
    validation: Scores


class Run(_Strict):
    seed: int
    best_epoch: NonNegativeInt
    best_checkpoint: str
    validation: Scores
    test: Scores
    history: list[Epoch]
    wall_time_s: NonNegativeFloat
    peak_memory_bytes: NonNegativeInt
    tokens_per_second: NonNegativeFloat
    max_train_samples: PositiveInt | None
    recipe: dict[str, Any] | None = None  # what this run trained with: the spec's recipe after profile and flags


class TaskResult(_Strict):
    runs: Annotated[list[Run], Field(min_length=1)]
    test_mean: Scores
    validation_mean: Scores


class Check(_Strict):
    """One published number against the run's value."""

    kind: Literal["budget", "score"]
    task: str | None  # None for the budget
    metric: str  # "trainable_percent" for the budget
    published: float
    tolerance: float | None  # None for the budget: it is rounded to the published precision instead
    actual: float | None
    status: Status
    note: str = ""
    source: str | None = None

    @property
    def label(self) -> str:
        return "trainable %" if self.kind == "budget" else f"{self.task} {self.metric}"

    def line(self) -> str:
        word = {"pass": "pass", "fail": "FAIL", "missing": "missing", "not_comparable": "not comparable"}
        value = (
            "n/a" if self.actual is None else f"{self.actual:.4f}" if self.kind == "budget" else f"{self.actual:.2f}"
        )
        if self.kind == "budget":
            published = f"published {self.published}"
        else:
            published = f"published {self.published}, tolerance {self.tolerance}"
        text = f"{word[self.status]:<15} {self.label}: {value} ({published})"
        return f"{text}: {self.note}" if self.note else text


class Comparison(_Strict):
    ok: bool  # no check failed
    comparable: bool
    not_comparable_reason: str | None
    checks: list[Check]
    differences: list[str] = Field(default_factory=list)  # where the effective recipe is not the paper's

    @model_validator(mode="after")
    def _ok_matches_checks(self) -> Comparison:
        if self.ok != all(check.status != "fail" for check in self.checks):
            raise ValueError(f"ok is {self.ok} but {'a check failed' if not self.ok else 'no check failed'}")
        return self

    def counts(self) -> dict[str, int]:
        return {status: sum(c.status == status for c in self.checks) for status in get_args(Status)}

    def summary(self) -> str:
        if not self.checks:
            return "no published numbers in the spec: nothing to compare"
        counts = self.counts()
        return ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items())

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Results(_Strict):
    """The whole of results.json. `regression` may be absent only while the run is building the file."""

    format: Literal["compacter-harness/results/v1"]
    spec: EmbeddedSpec
    method: str
    profile: Literal["smoke", "paper"]
    model: ModelInfo
    comparable: bool
    not_comparable_reason: str | None
    environment: Environment
    budget: BudgetInfo
    seeds: Annotated[list[int], Field(min_length=1)]
    tasks: Annotated[dict[TaskName, TaskResult], Field(min_length=1)]
    wall_time_s: NonNegativeFloat
    peak_memory_bytes: NonNegativeInt
    tokens_per_second: NonNegativeFloat
    regression: Comparison | None = None
    differences: list[str] = Field(default_factory=list)  # the effective recipe against the paper's, one per line
    fidelity: dict[str, Position] | None = None  # every quirk's position (the embedded spec's `fidelity:`, resolved)

    def recipe_differences(self) -> list[str]:
        """Recomputed from the file: the overrides, the fidelity, and each run's recipe against the embedded
        spec's."""
        runs = [(task, run.recipe, run.max_train_samples) for task, r in self.tasks.items() for run in r.runs]
        training = self.spec.resolved.get("training", {})
        return differences(training, self.spec.overrides, runs, self.resolved_fidelity(), self.method)

    def resolved_fidelity(self) -> Fidelity:
        """Every quirk's position, from the embedded spec's `fidelity:` section (absent: all paper)."""
        return Fidelity.from_section(self.spec.resolved.get("fidelity"))

    def average_score(self) -> float:
        """The mean over the run's tasks of each task's test average (the plot's y)."""
        return _mean([task.test_mean["average"] for task in self.tasks.values()])

    def benchmark_average(self, benchmark: str) -> tuple[float | None, list[str]]:
        """The mean test average over every task of "glue" / "superglue", or None and the absent tasks."""
        absent = [name for name in BENCHMARKS[benchmark] if name not in self.tasks]
        if absent:
            return None, absent
        return _mean([self.tasks[name].test_mean["average"] for name in BENCHMARKS[benchmark]]), []


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)
