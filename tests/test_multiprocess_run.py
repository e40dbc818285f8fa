"""Scale does not change the maths, end to end: the global batch 16 as 1 × 16, as 1 process × 2 accumulated
micro-batches of 8, as 2 processes × 8 under torchrun with DeepSpeed ZeRO-2 (gloo on the CPU; the plain
Trainer's 2 processes are the `world_size` recipe invariant's), and a 2-process run stopped by a signal on one
rank and resumed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harness.cli import EXIT_OK, main
from harness.invariants.world_size import launch_env
from tests.conftest import SPEC_DIR

pytestmark = pytest.mark.slow  # torchrun: 2 processes

SPEC = str(SPEC_DIR / "compacter_pp.yaml")
# --keep-checkpoints: the weights after the last step are compared too, not only the best epoch's (the first
# epoch's when the tiny model's scores tie: the second epoch would then be compared by nothing)
RUN = ["--tasks", "rte", "--max-train-samples", "50", "--epochs", "2", "--keep-checkpoints",
       "--set", "training.dropout=0", "--set", "training.warmup_steps=0"]  # fmt: skip
TOLERANCE = 1e-4  # the bound; measured: 1.2e-7 (float32 sums in another order)


def torchrun(output_dir: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "harness",
               "run", SPEC, *RUN, "--output-dir", str(output_dir), *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env or launch_env(), timeout=900, check=False)


def outputs(output_dir: Path) -> tuple[list[dict[str, torch.Tensor]], dict, list[str]]:
    """([the best epoch's weights, the weights after the last step (2 epochs × 4 steps)], results, predictions)."""
    folder = output_dir / "rte" / "seed42"
    results = json.loads((output_dir / "results.json").read_text())
    predictions = [json.loads(line)["prediction"] for line in (folder / "test_predictions.jsonl").open()]
    weights = [load_file(str(folder / name / "adapter.safetensors")) for name in ("best", "checkpoint-8")]
    return weights, results, predictions


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys() and a
    return max((a[name] - b[name]).abs().max().item() for name in a)


def trained_as(output_dir: Path, reference_outputs) -> dict:
    """The run in `output_dir` ended with the reference's weights, test predictions and test scores."""
    weights, results, predictions = outputs(output_dir)
    reference, reference_results, reference_predictions = reference_outputs
    assert all(max_difference(w, r) <= TOLERANCE for w, r in zip(weights, reference, strict=True))
    assert predictions == reference_predictions
    assert results["tasks"]["rte"]["test_mean"] == reference_results["tasks"]["rte"]["test_mean"]
    return results


@pytest.fixture(scope="module")
def one_by_sixteen(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("world") / "1x16"
    assert main(["run", SPEC, *RUN, "--deepspeed", "none", "--output-dir", str(output_dir)]) == EXIT_OK
    return outputs(output_dir)


def test_two_accumulated_micro_batches_train_as_one_batch(one_by_sixteen, tmp_path):
    output_dir = tmp_path / "1x2x8"
    extra = ["--set", "training.gradient_accumulation_steps=2"]
    assert main(["run", SPEC, *RUN, *extra, "--deepspeed", "none", "--output-dir", str(output_dir)]) == EXIT_OK
    results = trained_as(output_dir, one_by_sixteen)
    recipe = results["tasks"]["rte"]["runs"][0]["recipe"]
    assert (recipe["world_size"], recipe["per_device_batch_size"], recipe["gradient_accumulation_steps"],
            recipe["global_batch_size"]) == (1, 8, 2, 16)  # fmt: skip


def test_two_processes_under_deepspeed_zero2_train_as_one(one_by_sixteen, tmp_path):
    """The plain Trainer's 2 processes are the `world_size` recipe invariant's (tests/test_recipe_invariants.py);
    here DeepSpeed's: its engine, not the Trainer, reduces the gradients and steps."""
    pytest.importorskip("deepspeed")
    output_dir = tmp_path / "2x8-zero2"
    done = torchrun(output_dir, "--deepspeed", "zero2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("results.json") == 1  # one summary line, from rank 0
    results = trained_as(output_dir, one_by_sixteen)
    assert results["environment"]["world_size"] == 2
    recipe = results["tasks"]["rte"]["runs"][0]["recipe"]
    assert (recipe["world_size"], recipe["per_device_batch_size"], recipe["global_batch_size"]) == (2, 8, 16)


SIGNAL_ON_RANK_0 = """\
import os, signal
import harness.train.signals as signals
_on_step_end = signals.SignalCheckpoint.on_step_end
def on_step_end(self, args, state, control, **kwargs):
    if state.global_step == 4 and os.environ.get("RANK") == "0":
        self.received = signal.SIGTERM  # a scheduler's signal that reached one process only
    return _on_step_end(self, args, state, control, **kwargs)
signals.SignalCheckpoint.on_step_end = on_step_end
"""


def test_two_processes_stop_together_and_resume_to_the_same_weights(one_by_sixteen, tmp_path):
    (tmp_path / "patch").mkdir()
    (tmp_path / "patch" / "sitecustomize.py").write_text(SIGNAL_ON_RANK_0, encoding="utf-8")
    output_dir = tmp_path / "resumed"
    patched = {**launch_env(), "PYTHONPATH": str(tmp_path / "patch")}
    stopped = torchrun(output_dir, "--deepspeed", "none", env=patched)
    assert stopped.returncode != 0 and stopped.stderr.count("continue with --resume") == 2  # both ranks stopped
    folder = output_dir / "rte" / "seed42"
    assert [p.name for p in folder.glob("checkpoint-*")] == ["checkpoint-4"]  # after the same step on both
    assert not (output_dir / "results.json").exists()
    resumed = torchrun(output_dir, "--deepspeed", "none", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trained_as(output_dir, one_by_sixteen)
