"""The small end-to-end run the run, resume and checkpoint tests share: Compacter++ on 48 RTE examples of the
smoke data, 2 epochs of 3 steps, and what they read from its folder."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

import harness.train.seed_run
from harness.cli import EXIT_OK, main
from tests.conftest import SPEC_DIR

SPEC = str(SPEC_DIR / "compacter_pp.yaml")
SMALL = ["--tasks", "rte", "--max-train-samples", "48", "--epochs", "2"]
INTERRUPTED = 130  # the exit status of a run stopped by a signal


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["run", SPEC, *SMALL, *args])
    out, err = capsys.readouterr()
    return code, out, err


def adapter(output_dir: Path) -> dict[str, torch.Tensor]:
    """The best epoch's trainable tensors."""
    return load_file(str(output_dir / "rte" / "seed42" / "best" / "adapter.safetensors"))


def last_step(output_dir: Path) -> dict[str, torch.Tensor]:
    """The trainable weights after the last optimizer step (2 epochs × 3 steps), kept by --keep-checkpoints."""
    return load_file(str(output_dir / "rte" / "seed42" / "checkpoint-6" / "adapter.safetensors"))


class InterruptAt(TrainerCallback):
    """Sends this process SIGTERM during a given global step (1-based), as a scheduler would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step + 1 == self.step:
            os.kill(os.getpid(), signal.SIGTERM)
        return control


def interrupted_run(output_dir: Path, step: int, *args: str) -> None:
    """A run that receives SIGTERM during global step `step`."""
    original = harness.train.seed_run.make_trainer

    def make_interrupted_trainer(*a, **kw):
        trainer = original(*a, **kw)
        trainer.add_callback(InterruptAt(step=step))
        return trainer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(harness.train.seed_run, "make_trainer", make_interrupted_trainer)
        assert main(["run", SPEC, *SMALL, *args, "--output-dir", str(output_dir)]) == INTERRUPTED


def run_pair(root: Path, deepspeed: str) -> tuple[Path, Path]:
    """(an uninterrupted run, the same run stopped by SIGTERM in step 4 of 6), every checkpoint kept: the
    stopped one holds checkpoint-3 (the end of epoch 1) and checkpoint-4 (what --resume reads)."""
    keep = ("--deepspeed", deepspeed, "--keep-checkpoints")
    assert main(["run", SPEC, *SMALL, *keep, "--output-dir", str(root / "straight")]) == EXIT_OK
    interrupted_run(root / "stopped", 4, *keep)
    return root / "straight", root / "stopped"


def full_finetune_copy(best: Path, folder: Path) -> Path:
    """`best` (a smoke run's checkpoint) copied to `folder` as a Full fine-tuning checkpoint of the same random
    backbone, its tensors as drawn, untrained: a checkpoint `export --merged` folds, made in a second rather than
    trained. Every other file of `best` (tokenizer, model card) comes along."""
    import json
    import shutil

    from harness.model.backbone import build_t5
    from harness.model.build import apply_to
    from harness.model.record import ADAPTER_FILE, RECORD_FILE, read_record
    from impl.state import save_trainable

    shutil.copytree(best, folder)
    record = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))
    record.update(method="full_finetune", arguments={}, trainable=["*"], spec="full_finetune")
    (folder / RECORD_FILE).write_text(json.dumps(record), encoding="utf-8")
    made = read_record(folder)
    model = build_t5(made.model, device="cpu", seed=made.random_seed)
    apply_to(model, made.method, made.arguments, made.trainable)
    (folder / ADAPTER_FILE).unlink()
    save_trainable(model, folder / ADAPTER_FILE)
    return folder
