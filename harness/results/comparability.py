"""When a run may be compared with the paper's numbers: only when what it *effectively* trained is the paper's.

The reference is the spec's recipe as written (the paper's setting, docs/paper.md); a run differs from it by
what a profile or the command line changed (`--set`, `--epochs`, `--max-train-samples`), and by a precision
the hardware could not give. Each difference is one line; a run with any is "not comparable", and
`results.json` and `compare` list them all.

Fidelity (`harness.spec.fidelity`): the published numbers came from the released code, so a task run whose
applicable quirks are all `paper` (the spec's default) or all `released` (the released code's own behaviour)
is comparable; a mix — an ablation — is a difference. At `rte_epochs: released` RTE's paper epochs are 3.

Not differences: the number of processes, the accumulation steps and DeepSpeed, which never change the
maths (the global batch is the recipe's `batch_size` at any scale), and the training seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.spec.fidelity import PAPER, Fidelity

# The recipe fields that define what is trained (the schema's `Training`, less the memory choice and seed).
RECIPE_KEYS = (
    "optimizer", "learning_rate", "weight_decay", "adam_epsilon", "lr_scheduler", "warmup_steps", "max_grad_norm",
    "batch_size", "dropout", "data_seed", "precision", "source_length", "generation_max_length",
)  # fmt: skip
# Overrides that change nothing the paper's numbers depend on.
NEUTRAL_OVERRIDES = ("training.gradient_accumulation_steps", "training.seed")


def paper_epochs(training: Mapping[str, Any], task: str, fidelity: Fidelity = PAPER) -> int:
    """The task's epochs in the spec's recipe (the released scripts' 3 for RTE at `rte_epochs: released`)."""
    return fidelity.task_epochs(task, training["epochs"]["per_task"].get(task, training["epochs"]["default"]))


def recipe_differences(
    paper: Mapping[str, Any], recipe: Mapping[str, Any], task: str, fidelity: Fidelity = PAPER
) -> list[str]:
    """One line per field where a task run's effective recipe differs from the paper's training section."""
    # a key the recorded recipe lacks is a difference too: a hand-made file cannot claim comparability by omission
    lines = [
        f"{task}: training.{key} not recorded (paper {paper[key]!r})"
        if key not in recipe
        else f"{task}: training.{key} {recipe[key]!r} (paper {paper[key]!r})"
        for key in RECIPE_KEYS
        if key not in recipe or recipe[key] != paper[key]
    ]
    expected = paper_epochs(paper, task, fidelity)
    if recipe.get("epochs") != expected:
        lines.append(f"{task}: epochs {recipe.get('epochs', 'not recorded')} (paper {expected})")
    return lines


def is_fidelity_override(key: str) -> bool:
    return key == "fidelity" or key.startswith("fidelity.")


def override_differences(overrides: Iterable[str]) -> list[str]:
    """The `--set` overrides that change the paper's setting (a method argument, the recipe, the tasks); the
    fidelity's are judged by `fidelity_differences`."""
    from harness.spec.loader import override_key

    return [
        f"--set {override}"
        for override in overrides
        if override_key(override) not in NEUTRAL_OVERRIDES and not is_fidelity_override(override_key(override))
    ]


def fidelity_differences(fidelity: Fidelity, method: str, task: str) -> list[str]:
    """A line when the quirks that apply to this method and task are not all paper or all released."""
    mixed = fidelity.mixed(method, task)
    if not mixed:
        return []
    return [f"{task}: fidelity mixes paper and released ({', '.join(mixed)} released, the rest paper)"]


def run_differences(
    paper: Mapping[str, Any], task: str, recipe: Mapping[str, Any] | None, train_size, fidelity: Fidelity = PAPER
) -> list[str]:
    """A task run's differences: its recipe, and a low-resource training set."""
    lines = (
        recipe_differences(paper, recipe, task, fidelity) if recipe is not None else [f"{task}: recipe not recorded"]
    )
    if train_size is not None:
        lines.append(f"{task}: training set cut to {train_size} examples (paper: the whole set)")
    return lines


def differences(
    training: Mapping[str, Any],
    overrides: Iterable[str],
    runs: Iterable[tuple[str, Mapping | None, int | None]],
    fidelity: Fidelity = PAPER,
    method: str = "",
) -> list[str]:
    """Every difference of a whole invocation, each once: its overrides, then each (task, recipe, train size)."""
    lines = override_differences(overrides)
    for task, recipe, train_size in runs:
        lines += fidelity_differences(fidelity, method, task)
        lines += run_differences(training, task, recipe, train_size, fidelity)
    return list(dict.fromkeys(lines))
