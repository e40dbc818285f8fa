"""A small valid results.json mapping to test loading, comparison and reports against."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from harness.results.comparability import paper_epochs
from harness.results.regression import with_regression
from harness.results.results_model import FORMAT, spec_hash
from harness.spec.loader import default_spec_dir, read_spec


def example_results(
    test_averages: Mapping[str, float] | None = None,
    *,
    resolved: Mapping[str, Any] | None = None,
    profile: Literal["smoke", "paper"] = "paper",
    architecture: str | None = None,
    trainable_params: int | None = None,
    base_params: int = 222_882_048,
    peak_memory_bytes: int = 2**30,
    seeds: tuple[int, ...] = (42,),
) -> dict[str, Any]:
    """A small valid results mapping (regression included) with the given test average per task.

    Each task's metrics are {"accuracy": a, "average": a} (validation: a + 1). `resolved` defaults to
    `spec/adapter.yaml` resolved; `architecture` to the spec's model (comparable iff it is that and the
    profile is paper); `trainable_params` to the spec's counted budget.
    """
    if resolved is None:
        resolved = read_spec(default_spec_dir() / "adapter.yaml").resolved
    resolved = json.loads(json.dumps(resolved))  # a JSON-clean copy
    test_averages = dict(test_averages if test_averages is not None else {"rte": 70.0})
    spec_model = resolved["model"]
    architecture = architecture or spec_model
    comparable = profile == "paper" and architecture == spec_model
    reason = None
    if profile != "paper":
        reason = f"{profile} profile"
    elif not comparable:
        reason = f"model {architecture} is not the spec's {spec_model}"
    if trainable_params is None:
        trainable_params = resolved["budget"].get("trainable_params") or 1000

    def recipe(task: str) -> dict[str, Any]:
        """The spec's recipe as the run trained it (the paper's, unless the spec was changed)."""
        training = resolved["training"]
        return {**{key: value for key, value in training.items() if key != "epochs"},
                "epochs": paper_epochs(training, task), "world_size": 1}  # fmt: skip

    def run(task: str, seed: int, average: float) -> dict[str, Any]:
        validation = {"accuracy": average + 1.0, "average": average + 1.0}
        return {
            "seed": seed, "best_epoch": 2, "best_checkpoint": f"checkpoints/seed{seed}/epoch-2",
            "validation": validation, "test": {"accuracy": average, "average": average},
            "history": [
                {"epoch": 1, "train_loss": 1.5, "validation": {"accuracy": average - 4.0, "average": average - 4.0}},
                {"epoch": 2, "train_loss": 0.5, "validation": validation},
            ],
            "wall_time_s": 10.0, "peak_memory_bytes": peak_memory_bytes, "tokens_per_second": 1000.0,
            "max_train_samples": None, "recipe": recipe(task),
        }  # fmt: skip

    tasks = {
        name: {
            "runs": [run(name, seed, average) for seed in seeds],
            "test_mean": {"accuracy": average, "average": average},
            "validation_mean": {"accuracy": average + 1.0, "average": average + 1.0},
        }
        for name, average in test_averages.items()
    }
    data = {
        "format": FORMAT,
        "spec": {"name": resolved["name"], "path": f"spec/{resolved['name']}.yaml", "hash": spec_hash(resolved),
                 "resolved": resolved},
        "method": resolved["method"]["name"], "profile": profile,
        "model": {"source": "t5-base" if architecture == "t5_base" else architecture, "architecture": architecture,
                  "spec_model": spec_model},
        "comparable": comparable, "not_comparable_reason": reason, "differences": [],
        "environment": {"git_commit": None, "packages": {"torch": "2.13.0"}, "device": "cpu", "precision": "fp32",
                        "deepspeed_stage": None, "world_size": 1},
        "budget": {"trainable_params": trainable_params, "base_params": base_params,
                   "trainable_percent": 100.0 * trainable_params / base_params,
                   "published_percent": resolved["budget"].get("published_percent") if comparable else None},
        "seeds": list(seeds),
        "tasks": tasks,
        "wall_time_s": 10.0 * len(tasks) * len(seeds), "peak_memory_bytes": peak_memory_bytes,
        "tokens_per_second": 1000.0,
    }  # fmt: skip
    return with_regression(data)
