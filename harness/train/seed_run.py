"""One training run: one seed of one task, from a fresh copy of the backbone with the method applied to its
`Run` record (the best epoch by the validation average, its test scores, each epoch's history), with the best
trainable weights and the predictions written in `<output>/<task>/seed<k>/`."""

from __future__ import annotations

import logging
import resource
import shutil
import time

import torch

from harness.model.record import ADAPTER_FILE
from harness.results.model_card import CARD_FILE
from harness.results.results_model import Epoch, Run
from harness.train.batching import steps_per_epoch
from harness.train.checkpoint_eval import write_predictions
from harness.train.context import RunContext, load_backbone
from harness.train.dataset import TokenizedDataset
from harness.train.devices import is_main_process
from harness.train.evaluation import EvaluationStopped
from harness.train.recipe import batch_plan, checkpoint_record, recipe_for
from harness.train.resume import resumable_checkpoint
from harness.train.run_model import prepare_model
from harness.train.signals import Interrupted
from harness.train.trainer import make_trainer, metrics_function, training_arguments

log = logging.getLogger("harness.run")


def run_seed(ctx: RunContext, data, task: str, seed: int) -> Run:
    """Train `task` from `seed`, pick the best epoch, test it; `Interrupted` after a signal (resumable)."""
    from harness.data.protocol import metric_inputs

    spec = ctx.loaded.spec
    base, _ = load_backbone(ctx)
    tokenizer = ctx.tokenizer
    recipe, epochs = recipe_for(ctx, task)
    plan = batch_plan(recipe)
    folder = ctx.output_dir / task / f"seed{seed}"
    torch.manual_seed(seed)
    model = prepare_model(base, spec.method.name, ctx.loaded.resolved["method"]["args"], spec.trainable, recipe.dropout)

    splits = {name: data.examples(name) for name in ("train", "validation", "test")}
    datasets = {
        name: TokenizedDataset([e.source for e in ex], [e.target for e in ex], tokenizer, recipe.source_length)
        for name, ex in splits.items()
    }
    scorers = {
        name: metrics_function(task, [e.target for e in splits[name]], metric_inputs(task, splits[name]), ctx.fidelity)
        for name in ("validation", "test")
    }
    args = training_arguments(
        folder, recipe, plan, epochs, seed, ctx.deepspeed, ctx.bf16, use_cpu=ctx.device == "cpu",
        report_to=[] if ctx.options.report_to == "none" else [ctx.options.report_to],
        logging_steps=ctx.options.logging_steps,
    )  # fmt: skip
    eval_batch = recipe.batch_size // recipe.gradient_accumulation_steps  # the same batches at any world size
    trainer = make_trainer(
        model, tokenizer, args, plan, eval_batch, datasets["train"], datasets["validation"], scorers["validation"],
        checkpoint_record(ctx, task, recipe, eval_batch),
    )  # fmt: skip
    checkpoint = resumable_checkpoint(folder) if ctx.options.resume else None  # verified just before it is read
    log.info(
        "%s / seed %d: %d train, %d validation, %d test examples; %d epochs × %d steps; global batch %d = "
        "%d process%s × %d accumulation × %d per device; learning rate %g, warm-up %d, dropout %g; fidelity %s%s",
        task, seed, len(datasets["train"]), len(datasets["validation"]), len(datasets["test"]), epochs,
        steps_per_epoch(len(datasets["train"]), plan.global_batch), plan.global_batch, plan.world_size,
        "es" if plan.world_size != 1 else "", plan.accumulation, plan.per_device, recipe.learning_rate,
        recipe.warmup_steps, recipe.dropout, ctx.fidelity.label(spec.method.name, task),
        f"; resuming from {checkpoint}" if checkpoint else "",
    )  # fmt: skip
    started = time.perf_counter()
    signals = trainer.signals
    signals.install()
    try:  # a signal stops training after the step, an evaluation after the batch: the checkpoint is resumable
        output = trainer.train(resume_from_checkpoint=checkpoint)
        train_seconds = time.perf_counter() - started
        test_predictions = None if signals.received else trainer.predictions(datasets["test"])
    except EvaluationStopped:
        pass
    finally:
        signals.uninstall()
    if signals.received is not None:
        raise Interrupted(f"signal {signals.received}: checkpoint saved in {folder}; continue with --resume")
    test = scorers["test"](test_predictions)
    best = folder / "best"
    if is_main_process():  # a card from before (a finished seed trained again) would describe other weights
        (best / CARD_FILE).unlink(missing_ok=True)  # the results write this run's (`run_results.write_cards`)
    trainer._save(str(best))  # the best epoch's trainable tensors (load_best_model_at_end restored them)
    history = epoch_history(trainer.state.log_history)
    best_epoch = max(history, key=lambda h: h["validation"]["average"])["epoch"] if history else epochs
    validation = next((h["validation"] for h in history if h["epoch"] == best_epoch), {})
    if is_main_process():
        write_predictions(folder / "test_predictions.jsonl", splits["test"], test_predictions)
        if best_epoch in trainer.validation_predictions:
            chosen = trainer.validation_predictions[best_epoch]
            write_predictions(folder / "validation_predictions.jsonl", splits["validation"], chosen)
        if not ctx.options.keep_checkpoints:
            for stale in folder.glob("checkpoint-*"):
                shutil.rmtree(stale)
    tokens = datasets["train"].token_count() * epochs
    return Run(
        seed=seed,
        best_epoch=int(best_epoch),
        best_checkpoint=str((best / ADAPTER_FILE).relative_to(ctx.output_dir)),
        validation=validation,
        test=test,
        history=[Epoch(**entry) for entry in history],
        wall_time_s=round(time.perf_counter() - started, 3),
        peak_memory_bytes=peak_memory_bytes(),
        tokens_per_second=round(tokens / max(output.metrics.get("train_runtime", train_seconds), 1e-9), 2),
        max_train_samples=ctx.options.max_train_samples,
        recipe={
            **recipe.model_dump(mode="json", exclude={"epochs"}),
            "precision": "bf16" if ctx.bf16 else "fp32",  # what the hardware gave, not only what the spec asked
            "epochs": epochs,
            "fidelity": ctx.fidelity.relevant(spec.method.name, task),  # the quirks that can change this run
            **plan.describe(),
        },
    )


BOOKKEEPING = {"runtime", "samples_per_second", "steps_per_second", "loss", "epoch", "model_preparation_time"}


def scores(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """The task's scores in a Trainer metrics dict (`eval_accuracy` -> `accuracy`), without bookkeeping."""
    start = f"{prefix}_"
    named = {key.removeprefix(start): value for key, value in metrics.items() if key.startswith(start)}
    return {key: value for key, value in named.items() if key not in BOOKKEEPING}


def epoch_history(log_history: list[dict]) -> list[dict]:
    """One entry per evaluated epoch: its validation scores and the mean training loss logged in it."""
    history, losses = [], []
    for entry in log_history:
        if "loss" in entry:
            losses.append(entry["loss"])
        if "eval_average" in entry:
            history.append(
                {
                    "epoch": round(entry["epoch"]),
                    "train_loss": sum(losses) / len(losses) if losses else None,
                    "validation": scores(entry, "eval"),
                }
            )
            losses = []
    return history


def peak_memory_bytes() -> int:
    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB
