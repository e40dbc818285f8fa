"""The trust boundary of `--resume`: a checkpoint is read only if it is exactly what the harness sealed; the
harness's own files are safetensors and JSON; DeepSpeed's engine files are read weights-only and hold no
frozen tensor; a planted pickle is refused and never run; a corrupted checkpoint is one line and loses
nothing; a signal during an evaluation stops it after the current batch, and the resumed run equals an
uninterrupted one."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import harness.train.evaluation
import harness.train.seed_run
from harness.cli import EXIT_BAD_INPUT, EXIT_OK
from harness.errors import OutputDirError
from harness.train.checkpoint import MANIFEST, seal, verify
from tests.run_helpers import INTERRUPTED, adapter, last_step, run_cli

pytestmark = pytest.mark.slow  # trains and resumes runs, DeepSpeed among them

SEED = Path("rte") / "seed42"


class Exploit:
    """A pickle that runs a shell command when it is unpickled."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` → its sha256 (computed here, not by the harness)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def one_line(code: int, err: str, expected: int = EXIT_BAD_INPUT) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == expected and "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def sealed_folder(root: Path) -> Path:
    """A checkpoint-like folder with a nested engine file, sealed."""
    folder = root / "checkpoint-4"
    (folder / "global_step4").mkdir(parents=True)
    (folder / "adapter.safetensors").write_bytes(b"top-level tensors")
    (folder / "global_step4" / "mp_rank_00_model_states.pt").write_bytes(b"nested engine state" * 10)
    seal(folder)
    return folder


def refusal(folder: Path) -> str:
    with pytest.raises(OutputDirError) as raised:
        verify(folder)
    (line,) = raised.value.errors
    assert "nothing was loaded or removed" in line
    return line


def test_the_manifest_seals_every_file_nested_ones_too_by_size_and_sha256(tmp_path):
    folder = sealed_folder(tmp_path)
    listed = json.loads((folder / MANIFEST).read_text())["files"]
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST]
    expected = {
        str(p.relative_to(folder)): {"bytes": len(p.read_bytes()), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in files
    }
    assert "global_step4/mp_rank_00_model_states.pt" in expected
    assert listed == expected
    verify(folder)  # exactly as sealed: accepted


def test_a_nested_file_changed_in_place_is_refused(tmp_path):
    folder = sealed_folder(tmp_path)
    path = folder / "global_step4" / "mp_rank_00_model_states.pt"
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01  # the same size, one bit changed
    path.write_bytes(bytes(data))
    assert "global_step4/mp_rank_00_model_states.pt changed since it was saved (sha256 differs)" in refusal(folder)


def test_an_unlisted_file_and_a_missing_one_are_refused(tmp_path):
    folder = sealed_folder(tmp_path)
    (folder / "global_step4" / "extra.pt").write_bytes(b"planted")
    assert "global_step4/extra.pt was not written by the harness" in refusal(folder)
    (folder / "global_step4" / "extra.pt").unlink()
    (folder / "adapter.safetensors").unlink()
    assert "adapter.safetensors is missing" in refusal(folder)


def test_a_folder_without_a_manifest_is_refused(tmp_path):
    folder = sealed_folder(tmp_path)
    (folder / MANIFEST).unlink()
    assert f"no {MANIFEST}" in refusal(folder)


@pytest.fixture
def stopped(plain_runs, tmp_path) -> Path:
    """A copy of the stopped run, to tamper with."""
    copy = tmp_path / "stopped"
    shutil.copytree(plain_runs[1], copy)
    return copy


def resume(capsys, output_dir: Path, *args: str) -> tuple[int, str]:
    code, _, err = run_cli(capsys, "--deepspeed", "none", *args, "--output-dir", str(output_dir), "--resume")
    return code, err


def test_a_checkpoint_holds_only_safetensors_and_json_each_sealed_by_its_sha256(plain_runs):
    checkpoint = plain_runs[1] / SEED / "checkpoint-4"
    files = snapshot(checkpoint)
    assert {Path(name).suffix for name in files} == {".safetensors", ".json"}, sorted(files)
    assert {"adapter.safetensors", "optimizer.safetensors", "rng_state.safetensors", "scheduler.json"} <= set(files)
    listed = json.loads((checkpoint / MANIFEST).read_text())["files"]
    assert {name: entry["sha256"] for name, entry in listed.items()} == {
        n: d for n, d in files.items() if n != MANIFEST
    }


@pytest.mark.parametrize("name", ["rng_state.pth", "optimizer.pt", "scheduler.pt", "training_args.bin"])
def test_a_planted_pickle_is_refused_before_anything_is_read(stopped, capsys, tmp_path, name):
    sentinel = tmp_path / "ran"
    torch.save({"python": Exploit(sentinel)}, stopped / SEED / "checkpoint-4" / name)
    before = snapshot(stopped)
    line = one_line(*resume(capsys, stopped))
    assert f"{name} was not written by the harness" in line and "checkpoint-4" in line
    assert not sentinel.exists() and snapshot(stopped) == before


def test_a_planted_pickle_under_a_forged_manifest_is_never_unpickled(stopped, capsys, tmp_path):
    live = tmp_path / "live"
    torch.save(Exploit(live), tmp_path / "probe.pt")
    torch.load(tmp_path / "probe.pt", weights_only=False)  # the unbroken case: the file really runs code
    assert live.exists()
    sentinel = tmp_path / "ran"
    checkpoint = stopped / SEED / "checkpoint-4"
    for name in ("rng_state.pth", "optimizer.pt", "scheduler.pt"):  # where a stock Trainer would look
        torch.save(Exploit(sentinel), checkpoint / name)
    seal(checkpoint)
    assert resume(capsys, stopped)[0] == EXIT_OK
    assert not sentinel.exists()


@pytest.mark.parametrize(
    "name", ["adapter.safetensors", "optimizer.safetensors", "rng_state.json", "trainer_state.json", "scheduler.json"]
)
def test_a_corrupted_checkpoint_is_one_line_and_nothing_is_lost(stopped, capsys, name):
    path = stopped / SEED / "checkpoint-4" / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    before = snapshot(stopped)
    line = one_line(*resume(capsys, stopped))
    assert f"{name} changed since it was saved" in line and "nothing was loaded or removed" in line
    assert snapshot(stopped) == before


def test_a_checkpoint_whose_save_was_cut_short_is_refused(stopped, capsys):
    (stopped / SEED / "checkpoint-4" / MANIFEST).unlink()
    line = one_line(*resume(capsys, stopped))
    assert f"no {MANIFEST}" in line and "checkpoint-4" in line and "remove this checkpoint folder" in line


def test_a_missing_file_is_refused(stopped, capsys):
    (stopped / SEED / "checkpoint-4" / "optimizer.safetensors").unlink()
    assert "optimizer.safetensors is missing" in one_line(*resume(capsys, stopped))


def test_garbage_under_a_forged_manifest_is_one_line(stopped, capsys):
    checkpoint = stopped / SEED / "checkpoint-4"
    (checkpoint / "optimizer.safetensors").write_bytes(b"not a safetensors file")
    seal(checkpoint)
    assert "cannot read the checkpoint" in one_line(*resume(capsys, stopped))


def engine_files(checkpoint: Path) -> list[Path]:
    return sorted(checkpoint.glob("global_step*/*.pt"))


def test_deepspeed_engine_files_hold_the_trainable_tensors_and_no_frozen_one(zero2_runs):
    checkpoint = zero2_runs[1] / SEED / "checkpoint-4"
    trainable = {name: t.numel() for name, t in adapter(zero2_runs[0]).items()}  # the straight run's best/
    (model_states,) = checkpoint.glob("global_step*/mp_rank_00_model_states.pt")
    module = torch.load(model_states, weights_only=True)["module"]  # this file names no class at all
    assert {name: t.numel() for name, t in module.items()} == trainable


def test_deepspeed_resumes_weights_only_to_the_uninterrupted_weights(zero2_runs, tmp_path, capsys):
    stopped = tmp_path / "stopped"
    shutil.copytree(zero2_runs[1], stopped)
    code, _, _ = run_cli(capsys, "--deepspeed", "zero2", "--keep-checkpoints", "--output-dir", str(stopped), "--resume")
    assert code == EXIT_OK
    a, b = adapter(zero2_runs[0]), adapter(stopped)
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    # after the last step (2 epochs × 3): the engine restored Adam's moments and the schedule, not only weights
    last = [last_step(run) for run in (zero2_runs[0], stopped)]
    assert all(torch.equal(last[0][name], last[1][name]) for name in a)
    before = load_file(str(zero2_runs[1] / SEED / "checkpoint-4" / "adapter.safetensors"))
    assert any(not torch.equal(before[name], last[0][name]) for name in before)  # the resumed steps moved them


def test_a_pickle_in_deepspeed_engine_files_under_a_forged_manifest_runs_nothing(zero2_runs, tmp_path, capsys):
    stopped = tmp_path / "stopped"
    shutil.copytree(zero2_runs[1], stopped)
    checkpoint = stopped / SEED / "checkpoint-4"
    sentinel = tmp_path / "ran"
    for path in engine_files(checkpoint):
        state = torch.load(path, weights_only=False)  # the harness's own file, read here to keep its layout
        state["ds_version"] = Exploit(sentinel)
        torch.save(state, path)
    seal(checkpoint)
    code, _, err = run_cli(capsys, "--deepspeed", "zero2", "--output-dir", str(stopped), "--resume")
    assert "a DeepSpeed file asks to run code" in one_line(code, err)
    assert not sentinel.exists()


def count_batches(monkeypatch, signal_at: int) -> list[int]:
    """Counts the generated batches (harness.train.evaluation.decoded calls); sends SIGTERM during batch `signal_at`."""
    calls = []
    original = harness.train.evaluation.decoded

    def counting(tokenizer, ids):
        calls.append(len(ids))
        if len(calls) == signal_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(tokenizer, ids)

    monkeypatch.setattr(harness.train.evaluation, "decoded", counting)
    return calls


@pytest.mark.parametrize(
    "signal_at, phase",
    [(2, "validation of epoch 1"), (7 + 7 + 3, "the test set")],  # 100 validation examples: 7 batches of 16
)
def test_a_signal_during_an_evaluation_stops_after_the_batch_and_the_resumed_run_is_the_same(
    plain_runs, tmp_path, capsys, monkeypatch, signal_at, phase
):
    # after the DeepSpeed tests: a run leaves no process group or environment behind that changes the next
    output_dir = tmp_path / "stopped"
    with monkeypatch.context() as patch:
        calls = count_batches(patch, signal_at)
        code, _, err = run_cli(capsys, "--deepspeed", "none", "--output-dir", str(output_dir))
    assert code == INTERRUPTED and "--resume" in err
    assert len(calls) == signal_at  # not one batch more
    checkpoint = "checkpoint-3" if phase.startswith("validation") else "checkpoint-6"
    assert (output_dir / SEED / checkpoint / MANIFEST).is_file()

    assert resume(capsys, output_dir)[0] == EXIT_OK
    a, b = adapter(plain_runs[0]), adapter(output_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    straight, resumed = (
        json.loads((d / "results.json").read_text())["tasks"]["rte"] for d in (plain_runs[0], output_dir)
    )
    assert [h["validation"] for h in resumed["runs"][0]["history"]] == [
        h["validation"] for h in straight["runs"][0]["history"]
    ]
    assert resumed["test_mean"] == straight["test_mean"]
