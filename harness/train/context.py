"""What every task run of one `run` invocation shares (`RunContext`), set up and checked once: the spec, the
model it trains, the run profile's sources, the devices and DeepSpeed; and what is loaded once for all of
them (the backbone, the tokenizer, each task's data, the trainable budget)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.errors import ModelError, OptionError, SpecError
from harness.model.checked import check_built
from harness.spec.fidelity import Fidelity
from harness.spec.loader import LoadedSpec, read_spec
from harness.spec.model_choice import resolve_model
from harness.spec.model_files import ModelFile
from harness.train.devices import check_deepspeed_build, deepspeed_config, device_and_precision, is_main_process
from harness.train.output_dir import check_output_dir
from harness.train.profiles import Profile, paper_data_problems, pretrained_source
from harness.train.run_options import RunOptions, check_inputs_outside, check_options, chosen_tasks, profile_of


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


def set_up(spec_path: Path, options: RunOptions) -> tuple[RunContext, list[str], list[int]]:
    """(the context, the tasks, the seeds) of `run SPEC`: the spec, the model, the profile's sources, the options
    and the output folder checked, nothing loaded that is large and nothing written."""
    profile = profile_of(options)
    if options.data_dir is not None:  # recorded in every checkpoint: `eval` from another folder reads the same data
        options = dataclasses.replace(options, data_dir=options.data_dir.resolve())
    loaded = read_spec(spec_path, overrides=options.overrides, fidelity=options.fidelity)
    # smoke: the spec's tiny check model (AdapterDrop: 12 + 12 blocks); paper: the spec's model
    default_model = loaded.check_model_file.name if profile.name == "smoke" else loaded.spec.model
    model_file = resolve_model(loaded.path, options.model or default_model)
    errors = check_built(loaded.path, loaded.spec, model_file, loaded.resolved["method"]["args"])
    if errors:  # the method on the model this run trains: an n that does not divide, a glob matching nothing
        raise SpecError(errors)
    if profile.name == "paper":
        from harness.model.backbone import pretrained_source_problems

        problems = pretrained_source_problems(*pretrained_source(model_file, options.pretrained, options.model))
        data_problems = paper_data_problems(options.data_dir)
        if problems or data_problems:  # at once: offline, the weights and the data may both need local copies
            raise (ModelError if problems else OptionError)(problems + data_problems)
    elif options.pretrained is not None:
        raise OptionError(["--pretrained: the smoke profile builds a random model; weights need --profile paper"])
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
    return RunContext(loaded, model_file, profile, options, output_dir, deepspeed, device, bf16), tasks, seeds


def load_backbone(ctx: RunContext):
    """The run's backbone (random for smoke, pretrained and fitted to the architecture for paper), loaded once."""
    from harness.model.backbone import build_t5, load_pretrained

    if ctx.base_model is None and ctx.profile.name == "smoke":
        ctx.base_model = build_t5(ctx.model_file, device="cpu", seed=ctx.loaded.spec.training.seed)
    elif ctx.base_model is None:
        pretrained, option = pretrained_source(ctx.model_file, ctx.options.pretrained, ctx.options.model)
        ctx.base_model, ctx.tokenizer = load_pretrained(ctx.model_file, pretrained, option)
    return ctx.base_model, ctx.tokenizer


def smoke_tokenizer(ctx: RunContext, task_data: list) -> Any:
    """The smoke profile's tokenizer, trained once on the texts of every task of the run."""
    from harness.data.tokenizer import train_tokenizer

    if ctx.tokenizer is None:
        texts = [e.source for data in task_data for s in ("train", "validation") for e in data.examples(s)]
        texts += [e.target for data in task_data for e in data.examples("train")]
        ctx.tokenizer = train_tokenizer(texts, ctx.profile.tokenizer_vocab)
    return ctx.tokenizer


def load_data(ctx: RunContext, task: str):
    """The task's splits in the paper's protocol: the smoke data, a `--data-dir` folder, or the hub."""
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
