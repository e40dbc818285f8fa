"""compacter-harness: specify, verify, train and evaluate the Compacter paper's PEFT methods on T5.

The command line is `python -m harness`; every command is a thin layer over these library modules.
In Python, `harness.load(checkpoint_dir)` gives back a trained method's model and tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load(checkpoint_dir: str | Path, base_model: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of a checkpoint folder a run wrote (`<task>/seed<k>/best`, or an epoch's), in eval
    mode and ready for `model.generate`: the recorded base model (or `base_model`, a local folder or
    hub id of the same architecture), the method applied with its recorded arguments, the trained tensors.
    Bad input raises a `harness.errors.InputError` (a `ModelError` for the folder, an `OptionError` for
    `base_model`) with one line per problem."""
    from harness.model.record import load_checkpoint

    return load_checkpoint(checkpoint_dir, base_model)
