"""What `python -m harness run` asks, as the library takes it (`RunOptions`), and its checks before anything is
loaded or written: the run profile, the counts, task names and seeds, the trackers, and inputs `--overwrite`
would remove."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import OptionError, OutputDirError
from harness.limits import MAX_EPOCHS, MAX_LOGGING_STEPS, MAX_TRAIN_SAMPLES, SEED_MAX
from harness.spec.fidelity import Position
from harness.spec.loader import LoadedSpec
from harness.train.profiles import PROFILES, Profile
from harness.train.trackers import tracker_errors


@dataclass
class RunOptions:
    profile: str = "smoke"  # the run profile: smoke | paper
    tasks: list[str] | None = None
    seeds: list[int] | None = None
    max_train_samples: int | None = None
    model: str | None = None  # `--model`: a model file, a local folder or a hub id (default: the profile's)
    pretrained: str | None = None  # paper: where the model file's weights come from (default: its `pretrained`)
    data_dir: Path | None = None
    output_dir: Path | None = None
    epochs: int | None = None
    overrides: list[str] = field(default_factory=list)  # `--set KEY=VALUE`
    # `--fidelity` then `--mnli-split`, read once (`harness.spec.fidelity.parse_arguments`): (quirk or "preset",
    # position) in order, written into the spec's `fidelity:` before `overrides`
    fidelity: list[tuple[str, Position]] = field(default_factory=list)
    resume: bool = False
    overwrite: bool = False
    deepspeed: str = "auto"  # auto | none | zero1 | zero2 | a JSON file
    keep_checkpoints: bool = False
    report_to: str = "none"  # none | tensorboard | wandb: where the Trainer logs the loss
    logging_steps: int | None = None  # None: one mean loss per epoch
    check_only: bool = False  # every check of a run (spec, options, model, data), then stop: nothing written


def profile_of(options: RunOptions) -> Profile:
    """The `--profile` named, or an OptionError listing the known ones."""
    if options.profile not in PROFILES:
        raise OptionError([f"--profile: unknown profile {options.profile!r} (known: {', '.join(PROFILES)})"])
    return PROFILES[options.profile]


def chosen_tasks(options: RunOptions, profile: Profile, loaded: LoadedSpec) -> list[str]:
    """`--tasks`, else the profile's (smoke: rte), else the spec's."""
    return options.tasks or list(profile.default_tasks or loaded.spec.tasks.names)


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
        raise OptionError(errors[:1])  # one line: the first mistake (fixing it shows the next)


def check_inputs_outside(output_dir: Path, spec_path: Path, options: RunOptions) -> None:
    """With --overwrite, the folder is removed after the run's inputs were read: a spec or data folder inside it
    would be lost with it (and the run could not be made again)."""
    if not options.overwrite:
        return
    for option, source in (("--data-dir", options.data_dir), ("SPEC", spec_path)):
        if source is not None and source.resolve().is_relative_to(output_dir.resolve()):
            raise OutputDirError([f"{output_dir}: --overwrite: refused: {option} {source} lies inside the folder it "
                                  "would remove"])  # fmt: skip
