"""`harness run` never loses or deletes what it did not write, and refuses bad input before touching the disk:
the overwrite guard, the output-folder lock, non-finite and absurd recipe values, bad counts, empty splits,
a broken DeepSpeed file, and a report failure that keeps the finished training."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness.results.report
from harness.cli import EXIT_BAD_INPUT, EXIT_OK, main
from harness.data.toy import toy_rows
from harness.errors import OutputDirError
from harness.train import output_dir
from harness.train.output_dir import LOCK, MARKER, held, live_holder, prepare_output_dir
from tests.conftest import SPEC_DIR

pytestmark = pytest.mark.slow  # trains runs to check their output folders

SPEC = str(SPEC_DIR / "compacter_pp.yaml")
TINY = ["--tasks", "rte", "--max-train-samples", "16", "--epochs", "1", "--deepspeed", "none"]


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(["run", SPEC, *args])
    err = capsys.readouterr().err
    return code, err


def one_line_refusal(code: int, err: str, *expected: str) -> None:
    assert code == EXIT_BAD_INPUT and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for text in expected:
        assert text in err, err


@pytest.fixture(scope="module")
def harness_folder(tmp_path_factory) -> Path:
    """A folder a finished run wrote (it carries the marker)."""
    output_dir = tmp_path_factory.mktemp("safety") / "done"
    assert main(["run", SPEC, *TINY, "--output-dir", str(output_dir)]) == EXIT_OK
    return output_dir


def test_a_finished_run_leaves_its_marker_and_no_lock(harness_folder):
    assert (harness_folder / MARKER).is_file() and (harness_folder / "results.json").is_file()
    assert not (harness_folder / LOCK).exists()


def test_overwrite_never_removes_a_folder_the_harness_did_not_write(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    code, err = run(capsys, *TINY, "--output-dir", str(folder), "--overwrite")
    one_line_refusal(code, err, "--overwrite: refused: the folder was not written by the harness")
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_overwrite_with_a_bad_argument_touches_nothing(harness_folder, capsys):
    before = sorted(p.name for p in harness_folder.iterdir())
    code, err = run(capsys, "--tasks", "foo", "--output-dir", str(harness_folder), "--overwrite", "--deepspeed", "none")
    one_line_refusal(code, err, "--tasks: unknown task 'foo'")
    assert sorted(p.name for p in harness_folder.iterdir()) == before


def test_overwrite_replaces_the_harness_own_folder(tmp_path, capsys):
    folder = tmp_path / "again"
    assert run(capsys, *TINY, "--output-dir", str(folder))[0] == EXIT_OK
    (folder / "stale.txt").write_text("from the first run")
    assert run(capsys, *TINY, "--output-dir", str(folder), "--overwrite")[0] == EXIT_OK
    assert not (folder / "stale.txt").exists() and (folder / "results.json").is_file()


def test_resume_refuses_a_folder_the_harness_did_not_write(tmp_path, capsys):
    folder = tmp_path / "foreign"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    code, err = run(capsys, *TINY, "--output-dir", str(folder), "--resume")
    one_line_refusal(code, err, "not a folder the harness wrote")


def write_lock(folder: Path, pid: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("{}")
    (folder / LOCK).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": time.time()}))


def test_a_second_run_into_a_folder_being_written_is_refused(tmp_path, capsys):
    folder = tmp_path / "busy"
    write_lock(folder, os.getppid())  # a live process on this host
    code, err = run(capsys, *TINY, "--output-dir", str(folder), "--resume")
    one_line_refusal(code, err, f"another run, pid {os.getppid()} on {socket.gethostname()}", "is writing")
    code, err = run(capsys, *TINY, "--output-dir", str(folder), "--overwrite")
    one_line_refusal(code, err, "--overwrite: refused", f"pid {os.getppid()}")
    assert (folder / LOCK).is_file()


def dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid names no process any more
    return dead.pid


def test_a_lock_held_on_another_host_is_never_taken_as_stale(tmp_path):
    folder = tmp_path / "shared"
    write_lock(folder, dead_pid())  # no such process here, but the lock is another machine's
    lock = json.loads((folder / LOCK).read_text())
    (folder / LOCK).write_text(json.dumps({**lock, "host": f"not-{socket.gethostname()}"}))
    assert f"on not-{socket.gethostname()}" in (live_holder(folder) or "")
    with pytest.raises(OutputDirError, match="another run"), held(folder):
        pass
    with pytest.raises(OutputDirError, match="--overwrite: refused"):
        prepare_output_dir(folder, resume=False, overwrite=True)
    assert (folder / LOCK).is_file() and (folder / MARKER).is_file()


def test_a_dead_local_pid_is_stale_and_replaced_by_this_run(tmp_path):
    folder = tmp_path / "stale"
    pid = dead_pid()
    write_lock(folder, pid)
    assert live_holder(folder) is None
    logged = []
    with held(folder, log=logged.append):
        assert json.loads((folder / LOCK).read_text())["pid"] == os.getpid()
    assert len(logged) == 1 and f"pid {pid} on {socket.gethostname()}" in logged[0]
    assert not (folder / LOCK).exists()


def test_a_live_process_of_another_user_holds_its_lock(tmp_path, monkeypatch):
    def not_permitted(pid, signal):
        raise PermissionError(1, "Operation not permitted")  # what os.kill(pid, 0) says of another user's process

    folder = tmp_path / "theirs"
    write_lock(folder, 12345)
    monkeypatch.setattr(output_dir.os, "kill", not_permitted)
    assert "pid 12345" in (live_holder(folder) or "")


def test_a_stale_lock_is_reported_and_replaced(tmp_path, capsys, caplog):
    pid = dead_pid()
    folder = tmp_path / "stale"
    write_lock(folder, pid)
    (folder / "rte").mkdir()
    code = main(["run", SPEC, *TINY, "--output-dir", str(folder), "--resume"])
    assert code == EXIT_OK
    assert not (folder / LOCK).exists()
    assert f"a stale lock from pid {pid} on {socket.gethostname()}" in caplog.text
    assert "was replaced" in caplog.text


@pytest.mark.parametrize(
    "override, key",
    [
        ("training.learning_rate=.inf", "training.learning_rate"),
        ("training.learning_rate=.nan", "training.learning_rate"),
        ("training.max_grad_norm=.inf", "training.max_grad_norm"),
        ("training.weight_decay=.inf", "training.weight_decay"),
        ("training.batch_size=100000000000000000000000000000000000", "training.batch_size"),
        ("training.warmup_steps=1000000000000000000000", "training.warmup_steps"),
        ("training.source_length=100000000000000000000", "training.source_length"),
        ("training.epochs.default=0", "training.epochs.default"),
    ],
)
def test_non_finite_and_absurd_recipe_values_are_refused(tmp_path, capsys, override, key):
    code, err = run(capsys, *TINY, "--output-dir", str(tmp_path / "o"), "--set", override)
    one_line_refusal(code, err, f"compacter_pp.yaml: {key}:")
    assert not (tmp_path / "o").exists()


def test_a_non_finite_published_tolerance_is_refused(spec_copy, capsys):
    path = spec_copy / "compacter_pp.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "published: []", 'published: [{task: rte, metric: accuracy, value: 70.0, tolerance: .inf, source: "x"}]'
    )
    if "published: [{" not in text:
        text += '\npublished: [{task: rte, metric: accuracy, value: 70.0, tolerance: .inf, source: "x"}]\n'
    path.write_text(text, encoding="utf-8")
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    assert "published.0.tolerance" in capsys.readouterr().err.replace("[0]", ".0")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--epochs", "0"], "--epochs: 0 is not a valid count"),
        (["--epochs", "-1"], "--epochs: -1 is not a valid count"),
        (["--max-train-samples", "0"], "--max-train-samples: 0 is not a valid count"),
    ],
)
def test_bad_counts_are_refused(tmp_path, capsys, args, expected):
    code, err = run(capsys, "--deepspeed", "none", "--output-dir", str(tmp_path / "o"), *args)
    one_line_refusal(code, err, expected)
    assert not (tmp_path / "o").exists()


def test_an_empty_split_after_the_protocol_is_refused(tmp_path, capsys):
    data_dir = tmp_path / "data" / "rte"
    data_dir.mkdir(parents=True)
    for split, n in (("train", 20), ("validation", 1)):  # one row: ⌊1/2⌋ = 0 validation examples
        with (data_dir / f"{split}.jsonl").open("w") as out:
            for row in toy_rows("rte", split, n):
                out.write(json.dumps(row) + "\n")
    output_dir = tmp_path / "o"
    code, err = run(capsys, "--tasks", "rte", "--data-dir", str(tmp_path / "data"), "--deepspeed", "none",
                    "--output-dir", str(output_dir))  # fmt: skip
    one_line_refusal(code, err, "rte: the validation split is empty after the paper's split rule")
    assert not output_dir.exists()


def test_a_broken_deepspeed_file_is_one_line(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text('{"zero_optimization": {"stage": 2,}')
    code, err = run(capsys, *TINY[:-2], "--deepspeed", str(broken), "--output-dir", str(tmp_path / "o"))
    one_line_refusal(code, err, f"{broken}: line 1", "--deepspeed: invalid JSON")
    stage3 = tmp_path / "stage3.json"
    stage3.write_text('{"zero_optimization": {"stage": 3}}')
    code, err = run(capsys, *TINY[:-2], "--deepspeed", str(stage3), "--output-dir", str(tmp_path / "o"))
    one_line_refusal(code, err, "zero_optimization.stage: --deepspeed: expected 0, 1 or 2, got 3")
    assert not (tmp_path / "o").exists()


def test_an_output_dir_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, err = run(capsys, *TINY, "--output-dir", str(tmp_path / "afile" / "out"))
    one_line_refusal(code, err, "is a file, not a folder")


def test_a_failing_report_keeps_the_finished_training(tmp_path, capsys, monkeypatch, caplog):
    def broken_report(*args, **kwargs):
        raise RuntimeError("the plotting backend died")

    monkeypatch.setattr(harness.results.report, "write_report", broken_report)
    output_dir = tmp_path / "o"
    code, _ = run(capsys, *TINY, "--output-dir", str(output_dir))
    assert code == EXIT_OK
    assert (output_dir / "results.json").is_file()
    assert (output_dir / "rte" / "seed42" / "best" / "adapter.safetensors").is_file()
    assert f"python -m harness report {output_dir} --overwrite" in caplog.text


def validate_text(spec_copy: Path, capsys, text: str, name: str = "compacter_pp") -> tuple[int, str]:
    path = spec_copy / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err


def test_a_key_written_twice_is_refused_with_both_lines(spec_copy, capsys):
    original = (spec_copy / "compacter_pp.yaml").read_text(encoding="utf-8")
    first = next(i for i, line in enumerate(original.splitlines(), 1) if line.startswith("method:"))
    code, err = validate_text(spec_copy, capsys, original.rstrip("\n") + "\nmethod:\n  name: adapter\n")
    last = len(original.rstrip("\n").splitlines()) + 1
    one_line_refusal(code, err, f"duplicate key 'method' (first on line {first}, again on line {last})")


def test_a_spec_nested_absurdly_deep_is_one_line(spec_copy, capsys):
    code, err = validate_text(spec_copy, capsys, "name: " + "[" * 100_000 + "]" * 100_000 + "\n")
    one_line_refusal(code, err, "nested 100000 levels deep; a spec nests at most 50")


def test_a_huge_spec_is_refused_before_it_is_parsed(spec_copy, capsys):
    code, err = validate_text(spec_copy, capsys, "description: " + "x" * 2_000_000 + "\n")
    one_line_refusal(code, err, "2,000,014 bytes; a spec file is at most 1,000,000")


@pytest.mark.parametrize(
    "entry, expected",
    [
        ({"task": "rtee", "metric": "accuracy"}, "published[0].task: unknown task 'rtee'"),
        ({"task": "rte", "metric": "f1"}, "published[0].metric: rte has no metric 'f1' (it has accuracy, average)"),
        ({"task": "glue", "metric": "accuracy"}, "published[0].metric: the glue aggregate has only 'average'"),
    ],
)
def test_a_published_number_must_name_a_real_task_and_metric(spec_copy, capsys, entry, expected):
    import yaml

    path = spec_copy / "compacter_pp.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["published"] = [{**entry, "value": 70.0, "tolerance": 1.0, "source": "test"}]
    code, err = validate_text(spec_copy, capsys, yaml.safe_dump(data, sort_keys=False))
    one_line_refusal(code, err, expected)


def test_deepspeed_auto_is_the_plain_trainer_on_the_cpu(monkeypatch):
    import harness.train.devices

    monkeypatch.setattr(harness.train.devices.torch.cuda, "is_available", lambda: False)
    assert harness.train.devices.deepspeed_config("auto") is None
    assert harness.train.devices.deepspeed_config("zero2")["zero_optimization"]["stage"] == 2  # asked for: kept


def build_folder(root: Path, monkeypatch) -> Path:
    """A private TORCH_EXTENSIONS_DIR and the folder DeepSpeed's CPU op builds in."""
    from torch.utils.cpp_extension import _get_build_directory

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(root))
    return Path(_get_build_directory("deepspeed_shm_comm", verbose=False))


def test_a_lock_left_by_a_killed_deepspeed_build_is_refused_with_its_path(tmp_path, monkeypatch, capsys):
    from harness.train.devices import STALE_BUILD_S

    folder = build_folder(tmp_path, monkeypatch)
    lock = folder / "lock"
    lock.touch()
    os.utime(lock, (time.time() - STALE_BUILD_S - 60,) * 2)
    os.utime(folder, (time.time() - STALE_BUILD_S - 60,) * 2)
    code, err = run(capsys, *TINY[:-2], "--deepspeed", "zero2", "--output-dir", str(tmp_path / "o"))
    one_line_refusal(code, err, f"{lock}: --deepspeed: left by a build", "remove it")
    assert lock.exists() and not (tmp_path / "o").exists()  # reported, never removed by the harness


def test_a_deepspeed_build_in_progress_or_to_come_is_announced(tmp_path, monkeypatch, caplog):
    from harness.train.devices import check_deepspeed_build

    folder = build_folder(tmp_path, monkeypatch)
    with caplog.at_level("WARNING", logger="harness.run"):
        check_deepspeed_build()
    assert "builds its deepspeed_shm_comm op for the CPU on first use" in caplog.text
    (folder / "lock").touch()  # fresh: another process is building
    caplog.clear()
    with caplog.at_level("WARNING", logger="harness.run"):
        check_deepspeed_build()
    assert "another process is building" in caplog.text and str(folder / "lock") in caplog.text
