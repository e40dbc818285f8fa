"""`python -m harness run`: train a spec's method on its tasks, pick the best epoch, test it, write results.

For every task and seed: a fresh model (the profile's backbone, the method applied, the spec's trainable
set), the paper's splits and text-to-text formats, the spec's recipe through the HF Trainer (DeepSpeed
ZeRO when available), evaluation by generation every epoch, the best checkpoint by the task's average
metric, and its test scores. Everything lands in the output directory: results.json, report.md, the plot,
and per run the best trainable weights (`<task>/seed<k>/best/adapter.safetensors`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.errors import DataError, ModelError, OutputDirError, SpecError
from harness.limits import MAX_EPOCHS, MAX_LOGGING_STEPS, MAX_TRAIN_SAMPLES, SEED_MAX
from harness.model.checked import argument_error_line, check_built
from harness.model.record import ADAPTER_FILE, RECORD_FILE, RECORD_FORMAT, CheckpointRecord, DataRecord, harness_version
from harness.results.comparability import paper_epochs
from harness.results.record import (
    FORMAT,
    BudgetInfo,
    EmbeddedSpec,
    Environment,
    Epoch,
    ModelInfo,
    Results,
    Run,
    TaskResult,
    spec_hash,
    with_regression,
)
from harness.spec.fidelity import PAPER, Fidelity
from harness.spec.loader import LoadedSpec, override_key, read_spec
from harness.spec.model_choice import resolve_model
from harness.spec.model_files import ModelFile
from harness.train.batching import BatchPlan, steps_per_epoch
from harness.train.checkpoint_eval import write_predictions
from harness.train.devices import check_deepspeed_build, deepspeed_config, device_and_precision, is_main_process
from harness.train.evaluation import EvaluationStopped
from harness.train.output_dir import check_output_dir, held, prepare_output_dir
from harness.train.profiles import PROFILES, Profile, check_paper_sources
from harness.train.trackers import tracker_errors
from harness.train.trainer import (
    Interrupted,
    NonFiniteLossError,
    TokenizedDataset,
    make_trainer,
    metrics_function,
    prepare_model,
    single_process_group,
    training_arguments,
    world_size,
)
from impl.registry import MethodArgumentError

log = logging.getLogger("harness.run")


@dataclass
class RunOptions:
    profile: str = "smoke"
    tasks: list[str] | None = None
    seeds: list[int] | None = None
    max_train_samples: int | None = None
    model: str | None = None  # `--model`: a model file, a local folder or a hub id (default: the profile's)
    pretrained: str | None = None  # paper: where the model file's weights come from (default: its `pretrained`)
    data_dir: Path | None = None
    output_dir: Path | None = None
    epochs: int | None = None
    overrides: list[str] = field(default_factory=list)
    resume: bool = False
    overwrite: bool = False
    deepspeed: str = "auto"  # auto | none | zero1 | zero2 | a JSON file
    keep_checkpoints: bool = False
    report_to: str = "none"  # none | tensorboard | wandb: where the Trainer logs the loss
    logging_steps: int | None = None  # None: one mean loss per epoch
    check_only: bool = False  # every check of a run (spec, options, model, data), then stop: nothing written


@dataclass
class RunContext:
    """What every task run of one invocation shares."""

    loaded: LoadedSpec
    model_file: ModelFile  # the architecture this run builds, counts and trains (`--model`, resolved)
    profile: Profile
    options: RunOptions
    output_dir: Path
    deepspeed: dict | None
    device: str
    bf16: bool
    base_model: Any = None  # loaded once, copied per run
    tokenizer: Any = None

    @property
    def fidelity(self) -> Fidelity:
        """Every quirk's position: the spec's `fidelity:` after `--fidelity` and `--set fidelity.…`."""
        return self.loaded.spec.fidelity.resolved()


# --- set-up ----------------------------------------------------------------------------------------------------


def load_backbone(ctx: RunContext):
    """The run's backbone (random for smoke, pretrained and fitted to the architecture for paper), loaded once."""
    from harness.model.backbone import build_t5, load_pretrained

    if ctx.base_model is None and ctx.profile.name == "smoke":
        ctx.base_model = build_t5(ctx.model_file, device="cpu", seed=ctx.loaded.spec.training.seed)
    elif ctx.base_model is None:
        ctx.base_model, ctx.tokenizer = load_pretrained(ctx.model_file, ctx.options.pretrained)
    return ctx.base_model, ctx.tokenizer


def smoke_tokenizer(ctx: RunContext, task_data: list) -> Any:
    from harness.data.tokenizer import train_tokenizer

    if ctx.tokenizer is None:
        texts = [e.source for data in task_data for s in ("train", "validation") for e in data.examples(s)]
        texts += [e.target for data in task_data for e in data.examples("train")]
        ctx.tokenizer = train_tokenizer(texts, ctx.profile.tokenizer_vocab)
    return ctx.tokenizer


# --- one task, one seed ----------------------------------------------------------------------------------------


def recipe_for(ctx: RunContext, task: str):
    """The spec's recipe with the profile's and the command line's changes; and the epochs for `task`.

    What the user sets explicitly (`--set training.…`, `--epochs`) always wins over the profile's defaults.
    """
    training, profile = ctx.loaded.spec.training, ctx.profile
    user_set = {override_key(o) for o in ctx.options.overrides}
    updates = {
        key: value
        for key, value in {
            "batch_size": profile.batch_size,
            "warmup_steps": profile.warmup_steps,
            "source_length": profile.source_length,
            "generation_max_length": profile.generation_max_length,
        }.items()
        if value is not None and f"training.{key}" not in user_set
    }
    if profile.min_learning_rate is not None and "training.learning_rate" not in user_set:
        updates["learning_rate"] = max(training.learning_rate, profile.min_learning_rate)
    recipe = training.model_copy(update=updates)
    epochs_set = any(key.startswith("training.epochs") for key in user_set)
    profile_epochs = None if epochs_set else profile.epochs
    # the spec's epochs, or at `rte_epochs: released` the released scripts' 3 for RTE (unless set explicitly)
    recipe_epochs = paper_epochs({"epochs": training.epochs.model_dump()}, task, PAPER if epochs_set else ctx.fidelity)
    epochs = ctx.options.epochs or profile_epochs or recipe_epochs
    return recipe, epochs


def checkpoint_record(ctx: RunContext, task: str, recipe, eval_batch: int) -> CheckpointRecord:
    """What every checkpoint of this run records beside its tensors, to be rebuilt by `harness.load` and
    evaluated again by `harness eval`."""
    spec, paper, options = ctx.loaded.spec, ctx.profile.name == "paper", ctx.options
    origin = "files" if options.data_dir is not None else ("hub" if paper else "smoke")
    data = DataRecord(
        task=task, origin=origin, data_dir=str(options.data_dir) if options.data_dir else None,
        prefix_task_name=spec.tasks.prefix_task_name, data_seed=spec.training.data_seed,
        fidelity=ctx.fidelity.to_json(), max_train_samples=options.max_train_samples,
        source_length=recipe.source_length, generation_max_length=recipe.generation_max_length,
        eval_batch_size=eval_batch,
    )  # fmt: skip
    return CheckpointRecord(
        format=RECORD_FORMAT, harness_version=harness_version(), method=spec.method.name,
        arguments=ctx.loaded.resolved["method"]["args"], trainable=list(spec.trainable), spec=ctx.loaded.name,
        spec_hash=spec_hash(ctx.loaded.resolved), model=ctx.model_file,
        pretrained=(ctx.options.pretrained or ctx.model_file.pretrained) if paper else None,
        random_seed=None if paper else spec.training.seed,  # smoke: the random backbone, drawn again from it
        data=data,
    )  # fmt: skip


def batch_plan(recipe) -> BatchPlan:
    """The recipe's global batch over this launch's processes and the recipe's accumulation steps."""
    return BatchPlan(recipe.batch_size, world_size(), recipe.gradient_accumulation_steps)


def run_one(ctx: RunContext, data, task: str, seed: int) -> Run:
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


def resumable_checkpoint(folder: Path) -> str | None:
    """The last checkpoint in `folder`, verified against its manifest (SpecError, one line, if it is not the
    harness's own, complete and unchanged); None if there is none."""
    from transformers.trainer_utils import get_last_checkpoint

    from harness.train.checkpoint import check_resumable, verify

    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise OutputDirError([f"{folder}: --resume: refused: not a folder the harness wrote (a link or a file)"])
    checkpoint = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    if checkpoint is not None:
        verify(Path(checkpoint))
        check_resumable(Path(checkpoint))
    return checkpoint


def check_same_setting(ctx: RunContext, task: str, checkpoint: Path) -> None:
    """Refuse to resume a checkpoint made by another setting (spec, model, data, --max-train-samples, --epochs):
    the Trainer would only warn, and the run would continue as a mix of two runs reported as one."""
    from harness.model.record import read_record
    from harness.train.checkpoint import TRAINER_STATE, read_trainer_state

    recipe, epochs = recipe_for(ctx, task)
    expected = checkpoint_record(ctx, task, recipe, recipe.batch_size // recipe.gradient_accumulation_steps)
    try:
        found = read_record(checkpoint)
    except ModelError as error:
        raise ModelError(error.errors[:1]) from None
    mine, theirs = expected.model_dump(mode="json"), found.model_dump(mode="json")
    for key in ("method", "arguments", "trainable", "spec_hash", "model", "pretrained", "random_seed", "data"):
        path, a, b = first_difference(mine[key], theirs[key], key)
        if path is not None:
            raise OutputDirError([f"{checkpoint / RECORD_FILE}: {path}: --resume: the checkpoint was made with "
                                  f"{b!r:.80}, this run would continue with {a!r:.80}; resume with the same spec "
                                  "and options, or start afresh (--overwrite)"])  # fmt: skip
    if not (checkpoint / TRAINER_STATE).exists():  # a finished seed's best/: its record says all (verified ones
        return  # have a trainer state, `check_resumable`)
    saved = read_trainer_state(checkpoint).get("num_train_epochs")
    if saved is not None and saved != epochs:
        started = f"the run was started for {saved} epochs, this one would train {epochs} (--epochs or the spec)"
        raise OutputDirError([f"{checkpoint}: --resume: {started}; resume with the same, or --overwrite"])


def first_difference(a: Any, b: Any, path: str) -> tuple[str | None, Any, Any]:
    """The first key path where `a` and `b` (JSON data) differ, with both values there; (None, a, b) if equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            found = first_difference(a.get(key), b.get(key), f"{path}.{key}")
            if found[0] is not None:
                return found
        return None, a, b
    return (None, a, b) if a == b else (path, a, b)


def peak_memory_bytes() -> int:
    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def count_budget_of(ctx: RunContext) -> dict[str, Any]:
    """The trainable-parameter budget of the model this run trains, counted on the meta device."""
    from harness.model.budget import count_budget

    report = count_budget(ctx.loaded, ctx.model_file)
    return {
        "trainable_params": report.trainable_params,
        "base_params": report.base_params,
        "trainable_percent": report.trainable_percent,
        "published_percent": ctx.loaded.spec.budget.published_percent,
    }


# --- the whole invocation --------------------------------------------------------------------------------------


def load_data(ctx: RunContext, task: str):
    from harness.data.protocol import load_task

    spec, options = ctx.loaded.spec, ctx.options
    if ctx.profile.name == "smoke" and options.data_dir is None:
        from harness.data.smoke import smoke_task

        return smoke_task(
            task, spec.tasks.prefix_task_name, spec.training.data_seed, options.max_train_samples, ctx.fidelity
        )
    return load_task(
        task,
        options.data_dir,
        prefix_task_name=spec.tasks.prefix_task_name,
        seed=spec.training.data_seed,
        fidelity=ctx.fidelity,
        train_size=options.max_train_samples,
    )


def run_single(spec_path: Path, options: RunOptions) -> tuple[dict[str, Any], Path]:
    """One setting of the spec: every task and seed; returns the results and the output folder."""
    profile = profile_of(options)
    if options.data_dir is not None:  # recorded in every checkpoint: `eval` from another folder reads the same data
        options = dataclasses.replace(options, data_dir=options.data_dir.resolve())
    loaded = read_spec(spec_path, overrides=options.overrides)
    # smoke: the spec's tiny check model (AdapterDrop: 12 + 12 blocks); paper: the spec's model
    default_model = loaded.check_model_file.name if profile.name == "smoke" else loaded.spec.model
    model_file = resolve_model(loaded.path, options.model or default_model)
    errors = check_built(loaded.path, loaded.spec, model_file, loaded.resolved["method"]["args"])
    if errors:  # the method on the model this run trains: an n that does not divide, a glob matching nothing
        raise SpecError(errors)
    if profile.name == "paper":
        check_paper_sources(model_file, options.pretrained, options.data_dir)
    elif options.pretrained is not None:
        raise SpecError(["--pretrained: the smoke profile builds a random model; weights need --profile paper"])
    tasks = chosen_tasks(options, profile, loaded)
    check_options(options, tasks)
    seeds = options.seeds or [loaded.spec.training.seed]
    output_dir = Path(options.output_dir or Path("runs") / f"{loaded.name}-{profile.name}")
    if is_main_process() and not options.check_only:  # the other processes would see the folder rank 0 creates
        check_output_dir(output_dir, options.resume, options.overwrite)
    check_inputs_outside(output_dir, spec_path, options)
    deepspeed = deepspeed_config(options.deepspeed)
    if deepspeed is not None and not torch.cuda.is_available():
        check_deepspeed_build()
    device, bf16 = device_and_precision(loaded.spec.training.precision)
    ctx = RunContext(loaded, model_file, profile, options, output_dir, deepspeed, device, bf16)
    # DeepSpeed needs a process group; a plain process uses one GPU, never DataParallel
    needs_group = deepspeed is not None or torch.cuda.device_count() > 1
    with single_process_group() if needs_group else contextlib.nullcontext():
        return run_context(ctx, tasks, seeds)


def check_inputs_outside(output_dir: Path, spec_path: Path, options: RunOptions) -> None:
    """With --overwrite, the folder is removed after the run's inputs were read: a spec or data folder inside it
    would be lost with it (and the run could not be made again)."""
    if not options.overwrite:
        return
    for option, source in (("--data-dir", options.data_dir), ("SPEC", spec_path)):
        if source is not None and source.resolve().is_relative_to(output_dir.resolve()):
            raise OutputDirError([f"{output_dir}: --overwrite: refused: {option} {source} lies inside the folder it "
                                  "would remove"])  # fmt: skip


def profile_of(options: RunOptions) -> Profile:
    """The `--profile` named, or a SpecError listing the known ones."""
    if options.profile not in PROFILES:
        raise SpecError([f"--profile: unknown profile {options.profile!r} (known: {', '.join(PROFILES)})"])
    return PROFILES[options.profile]


def chosen_tasks(options: RunOptions, profile: Profile, loaded: LoadedSpec) -> list[str]:
    """`--tasks`, else the profile's (smoke: rte), else the spec's."""
    return options.tasks or list(profile.default_tasks or loaded.spec.tasks.names)


def run_context(ctx: RunContext, tasks: list[str], seeds: list[int]) -> tuple[dict[str, Any], Path]:
    """Check what remains (batches, budget, data, checkpoints to resume), then train and write."""
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
        return {}, output_dir
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
        runs = {task: [run_one(ctx, data[task], task, seed) for seed in seeds] for task in tasks}
        return assemble(ctx, budget, runs, seeds, time.perf_counter() - started), output_dir
    prepare_output_dir(output_dir, options.resume, options.overwrite)
    with held(output_dir, log=log.warning):
        runs = {task: [run_one(ctx, data[task], task, seed) for seed in seeds] for task in tasks}
        results = assemble(ctx, budget, runs, seeds, time.perf_counter() - started)
        write_outputs(results, output_dir)
    return results, output_dir


def check_options(options: RunOptions, tasks: list[str]) -> None:
    """The command line's counts, task names and seeds, and the trackers of `--report-to`, before anything is
    loaded or written."""
    from harness.spec.tasks import get_task

    errors = []
    counts = (("--epochs", options.epochs, MAX_EPOCHS), ("--max-train-samples", options.max_train_samples,
              MAX_TRAIN_SAMPLES), ("--logging-steps", options.logging_steps, MAX_LOGGING_STEPS))  # fmt: skip
    for option, value, most in counts:
        if value is not None and value < 1:
            errors.append(f"{option}: {value} is not a valid count (at least 1)")
        elif value is not None and value > most:
            errors.append(f"{option}: {value} is not a valid count (at most {most:,})")
    # the same work twice would train twice into one folder (the second run overwriting the first) and count
    # twice in every mean: refused rather than silently deduplicated, so the command line means what it says
    for option, values in (("--tasks", options.tasks or []), ("--seeds", options.seeds or [])):
        repeated = next((value for i, value in enumerate(values) if value in values[:i]), None)
        if repeated is not None:
            errors.append(f"{option}: {repeated} is given twice; name each once")
    for seed in options.seeds or []:
        if not 0 <= seed <= SEED_MAX:
            errors.append(f"--seeds: {seed} is not a valid seed (0..{SEED_MAX})")
    for task in tasks:
        try:
            get_task(task)
        except ValueError as error:
            errors.append(f"--tasks: {error}")
    if options.report_to != "none" and not errors:  # last: it may import the tracker's package
        errors += tracker_errors(options.report_to)
    if errors:
        raise SpecError(errors[:1])  # one line: the first mistake (fixing it shows the next)


def check_splits(task: str, data) -> None:
    """Every split has examples after the paper's protocol: a best epoch chosen on nothing is refused."""
    empty = [split for split in ("train", "validation", "test") if not data.examples(split, 1)]
    if empty:
        sizes = ", ".join(f"{split} {n}" for split, n in data.sizes().items())
        raise DataError([f"{data.origin}: {task}: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'}"
                         f" empty after the paper's split rule ({sizes}); give the task more rows"])  # fmt: skip


def write_outputs(results: Results, output_dir: Path) -> None:
    """results.json first, then report.md and the plot: a failing report never loses the finished training."""
    from harness.results.record import save_results
    from harness.results.report import write_report

    path = output_dir / "results.json"
    path.unlink(missing_ok=True)
    loaded = save_results(results, path)
    try:
        files = write_report([loaded], output_dir, overwrite=True)
    except Exception as error:  # the results and checkpoints are kept; the report can be rebuilt
        log.error("wrote %s; the report failed (%s: %s): rebuild it with `python -m harness report %s --overwrite`",
                  path, type(error).__name__, error, output_dir)  # fmt: skip
        return
    log.info("wrote %s, %s%s", path, files.report, f", {files.plot}" if files.plot else f" ({files.message})")


def mean_scores(runs: list[Run], split: str) -> dict[str, float]:
    scores_of = [getattr(run, split) for run in runs]
    keys = set.intersection(*(set(scores) for scores in scores_of)) if runs else set()
    return {key: sum(scores[key] for scores in scores_of) / len(runs) for key in sorted(keys)}


def environment(ctx: RunContext) -> dict[str, Any]:
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
        "world_size": world_size(),
    }


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
            reasons.append(f"the model differs from {expected_name(ctx)} in {', '.join(differing)}")
    training = ctx.loaded.resolved["training"]
    triples = [(task, run.recipe, run.max_train_samples) for task, task_runs in runs.items() for run in task_runs]
    found = differences(training, ctx.options.overrides, triples, ctx.fidelity, ctx.loaded.spec.method.name)
    return reasons + found, found


def expected_name(ctx: RunContext) -> str:
    return ctx.loaded.model_file.name


def assemble(
    ctx: RunContext, budget: dict[str, Any], runs: dict[str, list[Run]], seeds: list[int], seconds: float
) -> Results:
    """The run's Results (its `regression` compared with the spec's published numbers)."""
    reasons, differences = comparability(ctx, runs)
    comparable, reason = not reasons, "; ".join(reasons) or None
    all_runs = [run for task_runs in runs.values() for run in task_runs]
    source = ctx.model_file.name
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
            architecture=source if ctx.profile.name == "smoke" else (expected_name(ctx) if comparable else "custom"),
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


__all__ = ["Interrupted", "NonFiniteLossError", "RunOptions", "run_single"]
