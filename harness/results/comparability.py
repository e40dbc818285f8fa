"""When a run may be compared with the paper's numbers: only when what it *effectively* trained is the paper's.

The reference is the spec's recipe as written (the paper's setting, FACTS.md); a run differs from it by
what a profile or the command line changed (`--set`, `--epochs`, `--max-train-samples`, `--mnli-split`),
and by a precision the hardware could not give. Each difference is one line; a run with any is "not
comparable", and `results.json` and `compare` list them all.

Not differences: the number of processes, the accumulation steps and DeepSpeed, which never change the
maths (the global batch is the recipe's `batch_size` at any scale), and the training seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# The recipe fields that define what is trained (the schema's `Training`, less the memory choice and seed).
RECIPE_KEYS = (
    "optimizer", "learning_rate", "weight_decay", "adam_epsilon", "lr_scheduler", "warmup_steps", "max_grad_norm",
    "batch_size", "dropout", "data_seed", "precision", "source_length", "generation_max_length",
)  # fmt: skip
# Overrides that change nothing the paper's numbers depend on.
NEUTRAL_OVERRIDES = ("training.gradient_accumulation_steps", "training.seed")


def paper_epochs(training: Mapping[str, Any], task: str) -> int:
    return training["epochs"]["per_task"].get(task, training["epochs"]["default"])


def recipe_differences(paper: Mapping[str, Any], recipe: Mapping[str, Any], task: str) -> list[str]:
    """One line per field where a task run's effective recipe differs from the paper's training section."""
    lines = [
        f"{task}: training.{key} {recipe[key]!r} (paper {paper[key]!r})"
        for key in RECIPE_KEYS
        if key in recipe and recipe[key] != paper[key]
    ]
    if recipe.get("epochs") is not None and recipe["epochs"] != paper_epochs(paper, task):
        lines.append(f"{task}: epochs {recipe['epochs']} (paper {paper_epochs(paper, task)})")
    if recipe.get("mnli_split", "paper") != "paper" and task == "mnli":
        lines.append(f"{task}: split {recipe['mnli_split']!r} (paper 'paper')")
    return lines


def override_differences(overrides: Iterable[str]) -> list[str]:
    """The `--set` overrides that change the paper's setting (a method argument, the recipe, the tasks)."""
    from harness.spec.loader import override_key

    return [f"--set {override}" for override in overrides if override_key(override) not in NEUTRAL_OVERRIDES]


def run_differences(paper: Mapping[str, Any], task: str, recipe: Mapping[str, Any] | None, train_size) -> list[str]:
    """A task run's differences: its recipe, and a low-resource training set."""
    lines = recipe_differences(paper, recipe, task) if recipe is not None else [f"{task}: recipe not recorded"]
    if train_size is not None:
        lines.append(f"{task}: training set cut to {train_size} examples (paper: the whole set)")
    return lines


def differences(
    training: Mapping[str, Any], overrides: Iterable[str], runs: Iterable[tuple[str, Mapping | None, int | None]]
) -> list[str]:
    """Every difference of a whole invocation, each once: its overrides, then each (task, recipe, train size)."""
    lines = override_differences(overrides)
    for task, recipe, train_size in runs:
        lines += run_differences(training, task, recipe, train_size)
    return list(dict.fromkeys(lines))
