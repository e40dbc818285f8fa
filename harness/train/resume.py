"""`--resume`: the checkpoint a seed's run continues from (verified as the harness's own, complete and unchanged),
and the refusal of one made by another setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import InputError, OutputDirError
from harness.model.record import RECORD_FILE
from harness.train.context import RunContext
from harness.train.recipe import checkpoint_record, recipe_for


def resumable_checkpoint(folder: Path) -> str | None:
    """The last checkpoint in `folder`, verified against its manifest (one line, if it is not the harness's own,
    complete and unchanged); None if there is none."""
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
    except InputError as error:  # the record's first problem, of its own kind
        raise type(error)(error.errors[:1]) from None
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
