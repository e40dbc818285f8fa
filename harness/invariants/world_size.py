"""`world_size`: 2 processes (`torchrun`, gloo on the CPU) train to the trainable weights and the
validation/test predictions of 1 process at the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from harness.invariants.context import InvariantViolation
from harness.invariants.recipe_context import TASK, RecipeContext, max_difference
from harness.invariants.registry import NoOptions, invariant


def launch_env() -> dict[str, str]:
    """The environment of the launched runs: offline, two threads between two processes."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


# The same micro-batches of 8 on both sides: only the order of the float32 sums differs (local accumulation
# against the all-reduce). A 1 × 16 reference would also change the padding of each micro-batch, and Adam
# amplifies that rounding where a gradient is tiny (Intrinsic-SAID at lr 3e-2: 2e-2 after 8 steps, while
# its float64 gradients agree to 1e-15); `accumulated_step` checks the batch split itself in float64.
WORLD_TOLERANCE = 1e-4
# 51 examples: the last global batch holds 3, cut into chunks of 2 and 1, so the two processes hold unequal
# target-token counts and only a loss divided by the whole global batch's count trains as one process does
# (every smoke target is one token: with equal chunks, a per-process mean would agree by accident).
# --keep-checkpoints: the weights after the last step are compared too, not only the best epoch's (which may be
# the first: then the second epoch would be compared by nothing).
WORLD_RUN = ["--tasks", TASK, "--max-train-samples", "51", "--epochs", "2", "--deepspeed", "none",
             "--keep-checkpoints", "--set", "training.dropout=0", "--set", "training.warmup_steps=0"]  # fmt: skip


def launch(spec: Path, model: str, processes: int, output_dir: Path) -> subprocess.CompletedProcess:
    """`harness run` in a fresh process: `python -m harness` or `torchrun --nproc_per_node N -m harness`."""
    if processes == 1:
        command = [sys.executable, "-m", "harness"]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   "-m", "harness"]  # fmt: skip
    accumulation = 2 // processes  # the global batch 16 as 8 per micro-step on both sides
    command += ["run", str(spec.resolve()), "--model", model, *WORLD_RUN, "--output-dir", str(output_dir),
                "--set", f"training.gradient_accumulation_steps={accumulation}"]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=launch_env(), timeout=900, check=False)


def run_outputs(output_dir: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, list[str]]]:
    """({"best": the restored weights, "last step": the weights after the last step}, the predictions per split)."""
    from safetensors.torch import load_file

    folder = output_dir / TASK / "seed42"
    predictions = {
        split: [json.loads(line)["prediction"] for line in (folder / f"{split}_predictions.jsonl").open()]
        for split in ("validation", "test")
    }
    last = max(folder.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    weights = {name: load_file(str(path / "adapter.safetensors")) for name, path in (("best", folder / "best"),
                                                                                     ("last step", last))}  # fmt: skip
    return weights, predictions


@invariant("world_size")
def world_size(ctx: RecipeContext, options: NoOptions) -> str:
    outputs = {}
    with tempfile.TemporaryDirectory() as folder:
        for processes in (1, 2):
            done = launch(ctx.loaded.path, ctx.check_model.name, processes, Path(folder) / f"world{processes}")
            if done.returncode != 0:
                tail = " | ".join(done.stderr.strip().splitlines()[-3:])
                raise InvariantViolation(f"the {processes}-process run failed (exit {done.returncode}): {tail}")
            outputs[processes] = run_outputs(Path(folder) / f"world{processes}")
    (one, one_predictions), (two, two_predictions) = outputs[1], outputs[2]
    largest = 0.0
    for weights in ("best", "last step"):
        difference, where = max_difference(two[weights], one[weights])
        largest = max(largest, difference)
        if difference > WORLD_TOLERANCE:
            raise InvariantViolation(
                f"2 processes × 8 end {difference:.3e} from 1 process × 2 × 8 at {where} ({weights} weights)"
            )
    for split in ("validation", "test"):
        if two_predictions[split] != one_predictions[split]:
            changed = sum(a != b for a, b in zip(two_predictions[split], one_predictions[split], strict=False))
            raise InvariantViolation(f"{split}: {changed} of {len(one_predictions[split])} predictions differ")
    return (
        f"global batch 16 as 1 process × 2 × 8 and 2 processes × 8: max |Δ| {largest:.1e} over {len(one['best'])} "
        "tensors, the best epoch's and the last step's, the same predictions"
    )
