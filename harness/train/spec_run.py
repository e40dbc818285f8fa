"""`python -m harness run`: train a spec's method on its tasks, pick the best epoch, test it, write results.

For every task and seed: a fresh model (the profile's backbone, the method applied, the spec's trainable
set), the paper's splits and text-to-text formats, the spec's recipe through the HF Trainer (DeepSpeed
ZeRO when available), evaluation by generation every epoch, the best checkpoint by the task's average
metric, and its test scores. Everything lands in the output directory: results.json, report.md, the plot,
and per run the best trainable weights (`<task>/seed<k>/best/adapter.safetensors`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import torch

from harness.errors import SpecError
from harness.model.checked import argument_error_line
from harness.model.record import RECORD_FILE
from harness.results.results_model import Results
from harness.train.context import RunContext, count_budget_of, load_backbone, load_data, set_up, smoke_tokenizer
from harness.train.devices import is_main_process
from harness.train.output_dir import held, prepare_output_dir
from harness.train.process_group import single_process_group
from harness.train.recipe import batch_plan, recipe_for
from harness.train.resume import check_same_setting, resumable_checkpoint
from harness.train.run_options import RunOptions
from harness.train.run_results import assemble, write_outputs
from harness.train.seed_run import run_seed
from impl.registry import MethodArgumentError

log = logging.getLogger("harness.run")


def run_spec(spec_path: Path, options: RunOptions) -> tuple[Results | None, Path]:
    """One setting of the spec: every task and seed; returns the results (None with `check_only`) and the
    output folder."""
    ctx, tasks, seeds = set_up(spec_path, options)
    # DeepSpeed needs a process group; a plain process uses one GPU, never DataParallel
    needs_group = ctx.deepspeed is not None or torch.cuda.device_count() > 1
    with single_process_group() if needs_group else contextlib.nullcontext():
        return run_tasks(ctx, tasks, seeds), ctx.output_dir


def run_tasks(ctx: RunContext, tasks: list[str], seeds: list[int]) -> Results | None:
    """Check what remains (batches, budget, data, checkpoints to resume), then train every task's seeds and write
    the results; None with `check_only`, once everything is checked."""
    from harness.data.protocol import check_splits

    loaded, profile, options, output_dir = ctx.loaded, ctx.profile, ctx.options, ctx.output_dir
    for task in tasks:  # every task's batch splits over this launch before anything touches the disk
        batch_plan(recipe_for(ctx, task)[0])

    try:
        budget = count_budget_of(ctx)
    except MethodArgumentError as error:
        raise SpecError([argument_error_line(loaded.path, error, f"model {ctx.model_file.name}")]) from error
    log.info(
        "%s on %s (%s profile): %s trainable = %.4f%% of %s; device %s, %s, %s",
        loaded.spec.method.name, ctx.model_file.name, profile.name,
        f"{budget['trainable_params']:,}", budget["trainable_percent"], f"{budget['base_params']:,}", ctx.device,
        "bf16" if ctx.bf16 else "fp32",
        f"DeepSpeed ZeRO-{ctx.deepspeed['zero_optimization']['stage']}" if ctx.deepspeed else "no DeepSpeed",
    )  # fmt: skip
    started = time.perf_counter()
    data = {task: load_data(ctx, task) for task in tasks}
    for task, task_data in data.items():
        check_splits(task, task_data)
    if options.check_only:
        return None
    if options.resume:  # every checkpoint this run would read, before anything runs
        for task in tasks:
            for seed in seeds:
                folder = output_dir / task / f"seed{seed}"
                checkpoint = resumable_checkpoint(folder)
                if checkpoint is not None:
                    check_same_setting(ctx, task, Path(checkpoint))
                elif (folder / "best" / RECORD_FILE).is_file():  # a finished seed trains again: its result
                    check_same_setting(ctx, task, folder / "best")  # is replaced only by the same setting's
    if profile.name == "smoke":
        smoke_tokenizer(ctx, list(data.values()))
    load_backbone(ctx)  # a checkpoint that cannot load, or does not fit the architecture, fails here
    # Everything is known to start: only now is the output folder created (or the harness's own replaced).
    if not is_main_process():
        runs = {task: [run_seed(ctx, data[task], task, seed) for seed in seeds] for task in tasks}
        return assemble(ctx, budget, runs, seeds, time.perf_counter() - started)
    prepare_output_dir(output_dir, options.resume, options.overwrite)
    with held(output_dir, log=log.warning):
        runs = {task: [run_seed(ctx, data[task], task, seed) for seed in seeds] for task in tasks}
        results = assemble(ctx, budget, runs, seeds, time.perf_counter() - started)
        write_outputs(results, output_dir)
    return results
