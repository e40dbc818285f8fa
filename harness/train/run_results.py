"""A spec run's `Results`, assembled from its task runs: the environment it ran in, whether it is comparable
with the paper (and how its recipe differs), the means over seeds; written as results.json, report.md and the
plot."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from harness.results.regression import with_regression
from harness.results.results_model import (
    FORMAT,
    BudgetInfo,
    EmbeddedSpec,
    Environment,
    ModelInfo,
    Results,
    Run,
    TaskResult,
    spec_hash,
)
from harness.train.context import RunContext
from harness.train.devices import launch

log = logging.getLogger("harness.run")


def assemble(
    ctx: RunContext, budget: dict[str, Any], runs: dict[str, list[Run]], seeds: list[int], seconds: float
) -> Results:
    """The run's Results (its `regression` compared with the spec's published numbers)."""
    reasons, differences = comparability(ctx, runs)
    comparable, reason = not reasons, "; ".join(reasons) or None
    all_runs = [run for task_runs in runs.values() for run in task_runs]
    source = ctx.model_file.name
    expected = ctx.loaded.model_file.name  # the spec's architecture: what a comparable run trained
    architecture = source if ctx.profile.name == "smoke" else (expected if comparable else "custom")
    results = Results(
        format=FORMAT,
        spec=EmbeddedSpec(
            name=ctx.loaded.name,
            path=str(ctx.loaded.path),
            hash=spec_hash(ctx.loaded.resolved),
            resolved=ctx.loaded.resolved,
            overrides=list(ctx.options.overrides),
        ),
        method=ctx.loaded.spec.method.name,
        profile=ctx.profile.name,
        model=ModelInfo(
            source=source,
            architecture=architecture,
            spec_model=ctx.loaded.spec.model,
        ),
        comparable=comparable,
        not_comparable_reason=reason,
        differences=differences,
        fidelity=ctx.fidelity.to_json(),
        environment=Environment(**environment(ctx)),
        budget=BudgetInfo(**budget),
        seeds=seeds,
        tasks={
            task: TaskResult(
                runs=task_runs,
                test_mean=mean_scores(task_runs, "test"),
                validation_mean=mean_scores(task_runs, "validation"),
            )
            for task, task_runs in runs.items()
        },
        wall_time_s=round(seconds, 3),
        peak_memory_bytes=max(run.peak_memory_bytes for run in all_runs),
        tokens_per_second=round(sum(run.tokens_per_second for run in all_runs) / len(all_runs), 2),
    )
    return with_regression(results)


def comparability(ctx: RunContext, runs: dict[str, list[Run]]) -> tuple[list[str], list[str]]:
    """(why not comparable, the effective recipe's differences from the paper's): comparable iff both empty.

    Only a paper-profile run on the spec's architecture whose effective recipe is the spec's as written
    (`harness.results.comparability`) is compared with the published numbers.
    """
    from harness.results.comparability import differences

    reasons = []
    if ctx.profile.name != "paper":
        reasons.append(f"{ctx.profile.name} profile: a tiny random model on toy data")
    else:
        trained, expected = ctx.model_file.architecture, ctx.loaded.model_file.architecture
        differing = [
            f"{key} ({getattr(trained, key)!r}, not {value!r})"
            for key, value in expected.model_dump().items()
            if key != "dropout_rate" and getattr(trained, key) != value
        ]
        if differing:
            reasons.append(f"the model differs from {ctx.loaded.model_file.name} in {', '.join(differing)}")
    training = ctx.loaded.resolved["training"]
    triples = [(task, run.recipe, run.max_train_samples) for task, task_runs in runs.items() for run in task_runs]
    found = differences(training, ctx.options.overrides, triples, ctx.fidelity, ctx.loaded.spec.method.name)
    return reasons + found, found


def mean_scores(runs: list[Run], split: str) -> dict[str, float]:
    """Each score's mean over the seeds' runs (the scores every run has)."""
    scores_of = [getattr(run, split) for run in runs]
    keys = set.intersection(*(set(scores) for scores in scores_of)) if runs else set()
    return {key: sum(scores[key] for scores in scores_of) / len(runs) for key in sorted(keys)}


def environment(ctx: RunContext) -> dict[str, Any]:
    """Where the run ran: the commit, the packages' versions, the device, the precision, DeepSpeed, processes."""
    import importlib.metadata
    import subprocess

    packages = {}
    for name in ("torch", "transformers", "deepspeed", "accelerate", "datasets", "compacter-harness"):
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "git_commit": commit,
        "packages": packages,
        "device": ctx.device,
        "precision": "bf16" if ctx.bf16 else "fp32",
        "deepspeed_stage": ctx.deepspeed["zero_optimization"]["stage"] if ctx.deepspeed else None,
        "world_size": launch().world_size,
    }


def write_outputs(results: Results, output_dir: Path) -> None:
    """results.json first, then each run's model card, then report.md and the plot: a failing card or report is
    logged, never raised, and never loses the finished training."""
    from harness.results.report import write_report
    from harness.results.results_json import save_results

    path = output_dir / "results.json"
    path.unlink(missing_ok=True)
    loaded = save_results(results, path)
    write_cards(loaded.results, output_dir)
    try:
        files = write_report([loaded], output_dir, overwrite=True)
    except Exception as error:  # the results and checkpoints are kept; the report can be rebuilt
        log.error("wrote %s; the report failed (%s: %s): rebuild it with `python -m harness report %s --overwrite`",
                  path, type(error).__name__, error, output_dir)  # fmt: skip
        return
    log.info("wrote %s, %s%s", path, files.report, f", {files.plot}" if files.plot else f" ({files.message})")


def write_cards(results: Results, output_dir: Path) -> None:
    """Each run's `best/README.md`, its model card (`harness.results.model_card`), written by the main process
    only (the only one that writes the results). A card that cannot be written is logged, and any earlier card
    in its folder removed (it would describe other weights); the results and the checkpoints are kept."""
    from harness.results.model_card import CARD_FILE, checkpoint_card, write_card

    for task, result in results.tasks.items():
        for run in result.runs:
            folder = output_dir / Path(run.best_checkpoint).parent
            try:
                write_card(folder, checkpoint_card(folder, run, results))
            except Exception as error:  # the training is done: a card is never worth losing it
                with contextlib.suppress(OSError):
                    (folder / CARD_FILE).unlink(missing_ok=True)
                log.error("%s / seed %d: no model card in %s (%s: %s); results.json and the checkpoint are kept",
                          task, run.seed, folder, type(error).__name__, " ".join(str(error).split()))  # fmt: skip
