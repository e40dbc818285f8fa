"""The bad-input corpus of `run`: the launch environment, the command line's counts and repeats, the optional
trackers, the output folder and its lock, and every file `--resume` reads back. Each is one line on stderr naming
the variable, option or file and what was expected, exit 2, no traceback, and nothing on disk changed.

Every refusal comes before training, so each case takes about a second (the spec is loaded, nothing trained);
the checkpoints come from one interrupted run, shared by the session (`plain_runs`, tests/conftest.py) and
copied before a test breaks it.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import socket
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from transformers import TrainerCallback

import harness.train.recipe
import harness.train.seed_run
import harness.train.spec_run
from harness.cli import EXIT_OK, main
from harness.errors import OutputDirError
from harness.limits import SEED_MAX
from harness.train import output_dir
from harness.train.checkpoint import MANIFEST, best_checkpoint, seal
from harness.train.output_dir import LOCK, MARKER, held, live_holder
from harness.train.trackers import wandb_can_log
from tests.conftest import SPEC_DIR
from tests.run_helpers import SMALL, SPEC
from tests.test_bad_inputs import one_line_unchanged

PROG = "python -m harness"
LAUNCH = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def run_argv(tmp: Path, *extra: str) -> list[str]:
    return ["run", SPEC, "--tasks", "rte", "--deepspeed", "none", "--output-dir", str(tmp / "out"), *extra]


@pytest.fixture
def clean_launch(monkeypatch):
    """No launch variable from the calling shell; each case sets its own."""
    for name in LAUNCH:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- the launch environment --------------------------------------------------------------------------------------

# fmt: off
LAUNCH_CASES = [
    ("RANK a word", {"RANK": "abc"}, "environment variable RANK='abc': expected an integer in 0..WORLD_SIZE-1"),
    ("RANK negative", {"RANK": "-1"}, "environment variable RANK='-1': expected an integer in 0..WORLD_SIZE-1"),
    ("RANK with spaces", {"RANK": " 0"}, "environment variable RANK=' 0': expected an integer"),
    ("RANK 1 without WORLD_SIZE", {"RANK": "1"},
     "environment variable RANK=1: expected an integer in 0..WORLD_SIZE-1 (WORLD_SIZE is unset)"),
    ("RANK = WORLD_SIZE", {"RANK": "2", "WORLD_SIZE": "2"},
     "environment variable RANK=2: expected an integer in 0..WORLD_SIZE-1 (WORLD_SIZE is 2)"),
    ("WORLD_SIZE 0", {"WORLD_SIZE": "0"}, "environment variable WORLD_SIZE='0': expected a number of processes"),
    ("WORLD_SIZE huge", {"WORLD_SIZE": "99999999999"}, "environment variable WORLD_SIZE='99999999999': expected"),
    ("WORLD_SIZE 2 without RANK", {"WORLD_SIZE": "2"}, "environment variable WORLD_SIZE=2: RANK is not set"),
    ("LOCAL_RANK a word", {"LOCAL_RANK": "x"}, "environment variable LOCAL_RANK='x': expected an integer"),
    ("LOCAL_RANK = LOCAL_WORLD_SIZE", {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "1",
                                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"},
     "environment variable LOCAL_RANK=1: expected an integer in 0..0 (below LOCAL_WORLD_SIZE)"),
    ("LOCAL_RANK alone", {"LOCAL_RANK": "3"}, "environment variable LOCAL_RANK=3: expected an integer in 0..0"),
    ("LOCAL_WORLD_SIZE above WORLD_SIZE", {"LOCAL_WORLD_SIZE": "4"},
     "environment variable LOCAL_WORLD_SIZE=4: expected at most WORLD_SIZE (unset)"),
    ("MASTER_PORT out of range", {"MASTER_PORT": "99999"},
     "environment variable MASTER_PORT='99999': expected a TCP port in 1..65535"),
    ("MASTER_PORT of 5000 digits", {"MASTER_PORT": "9" * 5000}, "environment variable MASTER_PORT='999"),
    ("two processes without MASTER_ADDR", {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_PORT": "29500"},
     "environment variable MASTER_ADDR: not set, and a launch of WORLD_SIZE=2 process(es) needs it"),
    ("RANK 0 without WORLD_SIZE", {"RANK": "0"}, "environment variable RANK=0: WORLD_SIZE is not set"),
    ("two processes without LOCAL_RANK", {"RANK": "1", "WORLD_SIZE": "2"},
     "environment variable LOCAL_RANK: not set, and WORLD_SIZE=2 processes need it"),
]
# fmt: on


@pytest.mark.parametrize("variables, expected", [c[1:] for c in LAUNCH_CASES], ids=[c[0] for c in LAUNCH_CASES])
def test_a_bad_launch_environment_is_one_line(tmp_path, capsys, clean_launch, variables, expected):
    for name, value in variables.items():
        clean_launch.setenv(name, value)
    line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path))
    assert line.startswith(expected), line


# --- the command line ----------------------------------------------------------------------------------------------

# fmt: off
OPTION_CASES = [
    ("--seeds repeated", ("--seeds", "42", "7", "42"), "--seeds: 42 is given twice; name each once"),
    ("--seeds repeated as written otherwise", ("--seeds", "42", "042"), "--seeds: 42 is given twice"),
    ("--tasks repeated", ("--tasks", "rte", "cola", "rte"), "--tasks: rte is given twice; name each once"),
    ("--seeds above 2**32-1", ("--seeds", str(SEED_MAX + 1)),
     f"{PROG} run: argument --seeds: seed {SEED_MAX + 1} out of range: expected an integer in 0..{SEED_MAX}"),
    ("--seeds negative", ("--seeds", "-1"), f"{PROG} run: argument --seeds: seed -1 out of range"),
    ("--epochs absurd", ("--epochs", "1000000"), "--epochs: 1000000 is not a valid count (at most 1,000)"),
    ("--max-train-samples absurd", ("--max-train-samples", str(10**12)),
     f"--max-train-samples: {10**12} is not a valid count (at most 1,000,000,000)"),
    ("--logging-steps absurd", ("--logging-steps", str(10**15)), f"--logging-steps: {10**15} is not a valid count"),
    ("--output-dir empty", ("--output-dir", ""), f"{PROG} run: argument --output-dir: an empty path"),
    ("--data-dir empty", ("--data-dir", " "), f"{PROG} run: argument --data-dir: an empty path"),
    ("--tasks empty", ("--tasks", ""), f"{PROG} run: argument --tasks: an empty value"),
    ("--model empty", ("--model", ""), f"{PROG} run: argument --model: an empty value"),
]
# fmt: on


@pytest.mark.parametrize("extra, expected", [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES])
def test_a_bad_option_of_run_is_one_line(tmp_path, capsys, extra, expected):
    line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path), *extra)
    assert line.startswith(expected), line


def test_an_empty_spec_path_is_one_line(tmp_path, capsys):
    line = one_line_unchanged(capsys, [tmp_path], "run", "", "--output-dir", tmp_path / "out")
    assert line.startswith(f"{PROG} run: argument SPEC: an empty path"), line


def test_a_repeated_seed_is_refused_by_the_sweep_too(tmp_path, capsys):
    line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path), "--sweep", "--seeds", "1", "1")
    assert line == "--seeds: 1 is given twice; name each once"


def test_run_help_says_a_repeat_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert " ".join(capsys.readouterr().out.split()).count("a repeat is refused") == 2


# --- the output folder -----------------------------------------------------------------------------------------------


def test_an_output_dir_that_is_a_pipe_or_a_dangling_link_is_one_line(tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe")
    line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path), "--output-dir", tmp_path / "pipe")
    assert line == f"{tmp_path / 'pipe'}: --output-dir: {tmp_path / 'pipe'} is a pipe, socket or device, not a folder"
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path), "--output-dir", tmp_path / "link" / "out")
    assert line.endswith(f"--output-dir: {tmp_path / 'link'} is a dangling symbolic link"), line


def test_an_output_dir_below_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "deeper" / "out"
    line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path), "--output-dir", target)
    assert line == f"{target}: --output-dir: {tmp_path / 'afile'} is a file, not a folder"


# --- DeepSpeed's config ----------------------------------------------------------------------------------------------

# fmt: off
DEEPSPEED_CASES = [
    ("nested too deep", "[" * 5000 + "]" * 5000, "(top level): nested too deeply"),
    ("NaN", '{"zero_optimization": {"stage": 2}, "gradient_clipping": NaN}', "NaN"),
    ("a list", "[1, 2]", "(top level): --deepspeed: expected a JSON object, got list"),
    ("zero_optimization a list", '{"zero_optimization": [2]}',
     "zero_optimization.stage: --deepspeed: expected 0, 1 or 2, got None"),
    ("stage true", '{"zero_optimization": {"stage": true}}', "zero_optimization.stage: --deepspeed: expected 0, 1"),
    ("its own optimizer", '{"zero_optimization": {"stage": 2}, "optimizer": {"type": "Adam"}}',
     "optimizer: --deepspeed: the spec's recipe chooses the optimizer"),
    ("a fixed batch", '{"zero_optimization": {"stage": 2}, "train_batch_size": 7}',
     'train_batch_size: --deepspeed: expected "auto" (the spec\'s recipe sets it), got 7'),
    ("fp16", '{"zero_optimization": {"stage": 2}, "fp16": {"enabled": true}}', "fp16.enabled: --deepspeed: expected"),
]
# fmt: on


@pytest.mark.parametrize("text, expected", [c[1:] for c in DEEPSPEED_CASES], ids=[c[0] for c in DEEPSPEED_CASES])
def test_a_bad_deepspeed_config_is_one_line(tmp_path, capsys, text, expected):
    config = tmp_path / "ds.json"
    config.write_text(text)
    argv = [a if a != "none" else str(config) for a in run_argv(tmp_path)]
    line = one_line_unchanged(capsys, [tmp_path], *argv)
    assert line.startswith(f"{config}: ") and expected in line, line


def test_a_deepspeed_config_that_is_a_pipe_never_blocks(tmp_path, capsys):
    os.mkfifo(tmp_path / "ds.json")
    argv = [a if a != "none" else str(tmp_path / "ds.json") for a in run_argv(tmp_path)]
    line = one_line_unchanged(capsys, [tmp_path], *argv)
    assert line.startswith(f"{tmp_path / 'ds.json'}: (top level): not a regular file"), line


# --- optional trackers -----------------------------------------------------------------------------------------------


def fake_module(name: str, **attributes) -> types.ModuleType:
    """A module `import name` finds (and importlib.util.find_spec too), without the package installed."""
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


@pytest.fixture
def no_wandb_login(monkeypatch, tmp_path):
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine example.org login me password secret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    return monkeypatch


# fmt: off
TRACKER_CASES = [
    ("wandb missing", "wandb", None, {}, "--report-to wandb: the wandb package is not installed (pip install wandb)"),
    ("wandb without a login", "wandb", {"run": None}, {}, "--report-to wandb: no W&B login (no WANDB_API_KEY"),
    ("wandb online without a login", "wandb", {"run": None}, {"WANDB_MODE": "online"}, "--report-to wandb: no W&B"),
    ("wandb an empty key", "wandb", {"run": None}, {"WANDB_API_KEY": " "}, "--report-to wandb: no W&B login"),
    ("wandb leftover files", "wandb", {}, {}, "--report-to wandb: the wandb package is incomplete (no wandb.run)"),
    ("tensorboard missing", "tensorboard", None, {},
     "--report-to tensorboard: the tensorboard package is not installed (pip install tensorboard)"),
    ("tensorboard log folder below a file", "tensorboard", {}, {"TENSORBOARD_LOGGING_DIR": "{tmp}/afile/logs"},
     "environment variable TENSORBOARD_LOGGING_DIR='{tmp}/afile/logs': --report-to tensorboard: {tmp}/afile is a "
     "file, not a folder"),
    ("tensorboard log folder empty", "tensorboard", {}, {"TENSORBOARD_LOGGING_DIR": ""},
     "environment variable TENSORBOARD_LOGGING_DIR='': --report-to tensorboard: empty"),
]
# fmt: on


@pytest.mark.parametrize("tracker, module, env, expected", [c[1:] for c in TRACKER_CASES],
                         ids=[c[0] for c in TRACKER_CASES])  # fmt: skip
def test_a_tracker_that_cannot_start_is_one_line_before_training(
    tmp_path, capsys, no_wandb_login, tracker, module, env, expected
):
    (tmp_path / "afile").write_text("x")
    if module is None:  # absent, whether or not it is installed here
        no_wandb_login.setitem(sys.modules, tracker, None)
        no_wandb_login.setitem(sys.modules, "tensorboardX", None)
    else:
        no_wandb_login.setitem(sys.modules, tracker, fake_module(tracker, **module))
    for name, value in env.items():
        no_wandb_login.setenv(name, value.format(tmp=tmp_path))
    line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path), "--report-to", tracker)
    assert line == expected.format(tmp=tmp_path) or line.startswith(expected.format(tmp=tmp_path)), line


def test_wandb_counts_a_key_an_offline_mode_or_a_netrc_entry_as_a_login(no_wandb_login, tmp_path):
    assert not wandb_can_log()
    no_wandb_login.setenv("WANDB_MODE", "offline")
    assert wandb_can_log()
    no_wandb_login.delenv("WANDB_MODE")
    no_wandb_login.setenv("WANDB_API_KEY", "k" * 40)
    assert wandb_can_log()
    no_wandb_login.delenv("WANDB_API_KEY")
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password k\n")
    assert wandb_can_log()
    (tmp_path / "netrc").unlink()
    os.mkfifo(tmp_path / "netrc")  # a pipe: never read (it would block), so no login
    assert not wandb_can_log()


# --- the lock and the marker -----------------------------------------------------------------------------------------


def locked_folder(root: Path, lock: str | bytes | None, marker: str = "{}") -> Path:
    folder = root / "run"
    (folder / "rte").mkdir(parents=True)
    (folder / MARKER).write_text(marker)
    if isinstance(lock, bytes):
        (folder / LOCK).write_bytes(lock)
    elif lock is not None:
        (folder / LOCK).write_text(lock)
    return folder


HOST = socket.gethostname()
# fmt: off
LOCK_CASES = [
    ("no pid", json.dumps({"host": HOST, "started": 1.0}), "(pid None is not a process id)"),
    ("pid -1", json.dumps({"pid": -1, "host": HOST, "started": 1.0}), "(pid -1 is not a process id)"),
    ("pid a word", json.dumps({"pid": "12", "host": HOST, "started": 1.0}), "(pid '12' is not a process id)"),
    ("pid true", json.dumps({"pid": True, "host": HOST, "started": 1.0}), "(pid True is not a process id)"),
    ("started absurd", json.dumps({"pid": 1, "host": HOST, "started": 1e300}), "(started 1e+300 is not a time)"),
    ("empty: being created", "", "(line 1, column 1: invalid JSON"),
    ("not UTF-8", b'{"pid": "\xff"}', "not UTF-8 text"),
    ("nested deep", "[" * 100 + "]" * 100, "nested 100 levels deep"),
    ("NaN", '{"pid": 1, "host": "h", "started": NaN}', "NaN"),
]
# fmt: on


@pytest.mark.parametrize("lock, expected", [c[1:] for c in LOCK_CASES], ids=[c[0] for c in LOCK_CASES])
def test_a_lock_the_harness_cannot_read_is_never_taken_for_stale(tmp_path, capsys, monkeypatch, lock, expected):
    signalled = []
    monkeypatch.setattr(output_dir.os, "kill", lambda pid, sig: signalled.append(pid))
    folder = locked_folder(tmp_path, lock)
    line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path), "--output-dir", folder, "--resume")
    assert line.startswith(f"{folder / LOCK}: (top level): a lock this harness cannot read ("), line
    assert expected in line, line
    assert line.endswith(f"if no run is writing {folder}, remove the lock"), line
    assert not signalled  # never os.kill(-1, 0), nor any pid read from a lock it could not read


def test_a_lock_that_is_a_pipe_never_blocks(tmp_path, capsys):
    folder = locked_folder(tmp_path, None)
    os.mkfifo(folder / LOCK)
    line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path), "--output-dir", folder, "--resume")
    assert line == f"{folder}: --resume: refused: {LOCK} is a pipe, socket or device; the harness writes none"
    with pytest.raises(OutputDirError, match=r"a lock this harness cannot read .*not a regular file"):
        live_holder(folder)  # what --overwrite and a second run's `held` ask


def test_a_lock_being_written_by_another_run_is_not_replaced(tmp_path):
    folder = locked_folder(tmp_path, "")  # created with O_EXCL a moment ago, not yet filled
    with pytest.raises(OutputDirError, match="a lock this harness cannot read"), held(folder):
        pass
    assert (folder / LOCK).read_text() == ""


# fmt: off
MARKER_CASES = [
    ("not JSON", "created by hand", f"{MARKER}: line 1, column 1: invalid JSON"),
    ("a list", "[]", f"{MARKER}: (top level): not a marker the harness wrote (expected a JSON object)"),
    ("not UTF-8", "\udcff", f"{MARKER}: (top level): not UTF-8 text"),
]
# fmt: on


@pytest.mark.parametrize("marker, expected", [c[1:] for c in MARKER_CASES], ids=[c[0] for c in MARKER_CASES])
def test_a_marker_the_harness_cannot_read_is_one_line(tmp_path, capsys, marker, expected):
    folder = locked_folder(tmp_path, None)
    (folder / MARKER).write_bytes(marker.encode("utf-8", "surrogateescape"))
    for flag in ("--resume", "--overwrite"):
        line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path), "--output-dir", folder, flag)
        assert line.startswith(f"{folder / expected}"), line


def test_a_marker_that_is_a_link_never_vouches_for_overwrite(tmp_path, capsys):
    folder = locked_folder(tmp_path, None)
    (tmp_path / "elsewhere.json").write_text("{}")
    (folder / MARKER).unlink()
    (folder / MARKER).symlink_to(tmp_path / "elsewhere.json")
    line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path), "--output-dir", folder, "--overwrite")
    assert line.startswith(f"{folder / MARKER}: (top level): a symbolic link"), line


def test_overwrite_through_a_link_is_one_line(tmp_path, capsys):
    folder = locked_folder(tmp_path, None)
    alias = tmp_path / "alias"
    alias.symlink_to(folder, target_is_directory=True)
    line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path), "--output-dir", alias, "--overwrite")
    assert line == f"{alias}: --overwrite: refused: a symbolic link (to {folder}); pass the folder itself"


def test_overwrite_never_removes_the_data_or_spec_it_reads(tmp_path, capsys):
    folder = locked_folder(tmp_path, None)
    shutil.copytree(Path(SPEC).parent, folder / "spec")
    argv = [*run_argv(tmp_path), "--output-dir", folder, "--overwrite"]
    inside = "lies inside the folder it would remove"
    line = one_line_unchanged(capsys, [tmp_path], *argv, "--data-dir", folder / "data")
    assert line == f"{folder}: --overwrite: refused: --data-dir {folder / 'data'} {inside}"
    argv[1] = str(folder / "spec" / "compacter_pp.yaml")
    line = one_line_unchanged(capsys, [tmp_path], *argv)
    assert line == f"{folder}: --overwrite: refused: SPEC {argv[1]} {inside}"


def test_a_live_lock_refuses_resume_before_anything_is_read(tmp_path, capsys):
    lock = json.dumps({"pid": os.getppid(), "host": HOST, "started": time.time()})
    folder = locked_folder(tmp_path, lock)
    line = one_line_unchanged(capsys, [tmp_path], *run_argv(tmp_path), "--output-dir", folder, "--resume")
    assert line.startswith(f"{folder}: (output dir): another run, pid {os.getppid()} on {HOST}"), line


# --- checkpoints --resume reads ------------------------------------------------------------------------------------


@pytest.fixture
def interrupted(plain_runs) -> Path:
    """The shared run stopped by SIGTERM in step 4 of 6 with --keep-checkpoints: checkpoint-3 (the end of epoch 1,
    the best so far) and checkpoint-4 (the one --resume reads). Tests change copies only."""
    return plain_runs[1]


@pytest.fixture
def run_copy(interrupted, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(interrupted, target, symlinks=True)
    return target


def resume_argv(folder: Path) -> list[str]:
    return ["run", SPEC, *SMALL, "--deepspeed", "none", "--keep-checkpoints", "--output-dir", str(folder), "--resume"]


LAST = Path("rte") / "seed42" / "checkpoint-4"


def edited(name: str, change) -> Callable[[Path], None]:
    """A checkpoint file changed by `change(data)` (JSON data, or the text to write) and sealed again: the
    manifest vouches for it, as it would for a file edited by hand and sealed by someone who read this code."""

    def apply(run: Path) -> None:
        path = run / LAST / name
        changed = change(json.loads(path.read_text()))
        path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
        seal(run / LAST)

    return apply


def float_rng_state(run: Path) -> None:
    """The CPU generator's state as floats (torch.random.set_rng_state would raise a RuntimeError), sealed again."""
    from safetensors.torch import load_file, save_file

    path = run / LAST / "rng_state.safetensors"
    tensors = load_file(str(path))
    save_file({**tensors, "cpu": tensors["cpu"].float()}, str(path))
    seal(run / LAST)


def planted_link(run: Path) -> None:
    (run / "outside.txt").write_text("not the harness's")
    (run / LAST / "notes.txt").symlink_to(run / "outside.txt")


def replaced_by_link(run: Path) -> None:
    """A listed file replaced by a link to an identical copy outside: the sha256 matches, the link is refused."""
    shutil.copy(run / LAST / "scheduler.json", run / "scheduler.json")
    (run / LAST / "scheduler.json").unlink()
    (run / LAST / "scheduler.json").symlink_to(run / "scheduler.json")


def linked_folder(run: Path) -> None:
    (run / "outside").mkdir()
    (run / LAST / "global_step4").symlink_to(run / "outside", target_is_directory=True)


def planted_pipe(run: Path) -> None:
    os.mkfifo(run / LAST / "extra.bin")


def manifest_text(text: bytes) -> Callable[[Path], None]:
    return lambda run: (run / LAST / MANIFEST).write_bytes(text)


def best_removed(run: Path) -> None:
    shutil.rmtree(run / "rte" / "seed42" / "checkpoint-3")


def seed_folder_a_file(run: Path) -> None:
    shutil.rmtree(run / "rte" / "seed42")
    (run / "rte" / "seed42").write_text("x")


# fmt: off
RESUME_CASES = [
    ("a planted link", planted_link, "notes.txt is a symbolic link"),
    ("a listed file replaced by a link", replaced_by_link, "scheduler.json is a symbolic link"),
    ("a linked folder", linked_folder, "global_step4 is a symbolic link"),
    ("a planted pipe", planted_pipe, "extra.bin is a pipe, socket or device"),
    ("a manifest nested deep", manifest_text(b"[" * 10000 + b"]" * 10000), f"{MANIFEST} is unreadable"),
    ("a manifest with NaN", manifest_text(b'{"format": NaN}'), f"{MANIFEST} is unreadable"),
    ("a manifest not UTF-8", manifest_text(b'{"format": "\xff"}'), f"{MANIFEST} is unreadable"),
    ("trainer state: a string step", edited("trainer_state.json", lambda d: {**d, "global_step": "4"}),
     "trainer_state.json: global_step: expected an integer ≥ 0, got '4'"),
    ("trainer state: an unknown key", edited("trainer_state.json", lambda d: {**d, "hack": 1}),
     "trainer_state.json: hack: not a field of the Trainer's state"),
    ("trainer state: NaN", edited("trainer_state.json", lambda d: json.dumps({**d, "total_flos": float("nan")})),
     "NaN"),
    ("trainer state: best elsewhere", edited("trainer_state.json", lambda d: {**d, "best_model_checkpoint": "/etc"}),
     "trainer_state.json: best_model_checkpoint: expected a checkpoint-N folder of this run, got '/etc'"),
    ("trainer state: a log entry without its epoch",
     edited("trainer_state.json", lambda d: {**d, "log_history": [{"eval_average": 1.0, "step": 3}]}),
     "trainer_state.json: log_history[0].epoch: expected a number ≥ 0, got None"),
    ("the best checkpoint removed", best_removed, "trainer_state.json: best_model_checkpoint: checkpoint-3 is not in"),
    ("scheduler: a string position", edited("scheduler.json", lambda d: {**d, "last_epoch": "4"}),
     "scheduler.json: last_epoch: expected an integer, got '4'"),
    ("scheduler: a planted function", edited("scheduler.json", lambda d: {**d, "lr_lambdas": [{"x": 1}]}),
     "scheduler.json: lr_lambdas: expected a list of empty objects"),
    ("rng: a short state", edited("rng_state.json", lambda d: {**d, "python": [3, [1, 2], None]}),
     "rng_state.json: python: expected Python's generator state"),
    ("rng: a float state", float_rng_state, "rng_state.safetensors: cpu: expected a torch.uint8 tensor, got"),
    ("optimizer: a named index", edited("optimizer.json", lambda d: {**d, "scalars": {"first": {}}}),
     "optimizer.json: scalars: expected an object of parameter index"),
    ("the seed folder a file", seed_folder_a_file, "seed42: --resume: refused: not a folder the harness wrote"),
    ("results.json a link out", lambda run: (run / "results.json").symlink_to(run.parent / "elsewhere.json"),
     "--resume: refused: results.json is a symbolic link"),
    ("best/ a link out", lambda run: (run / "rte" / "seed42" / "best").symlink_to(run.parent),
     "--resume: refused: rte/seed42/best is a symbolic link"),
]
# fmt: on


@pytest.mark.parametrize("damage, expected", [c[1:] for c in RESUME_CASES], ids=[c[0] for c in RESUME_CASES])
def test_a_checkpoint_resume_cannot_trust_is_one_line_and_untouched(run_copy, capsys, damage, expected):
    damage(run_copy)
    line = one_line_unchanged(capsys, [run_copy.parent], *resume_argv(run_copy))
    assert expected in line, line
    assert not (run_copy / LOCK).exists()


# fmt: off
SETTING_CASES = [
    ("--max-train-samples changed", ("--max-train-samples", "40"),
     "harness.json: data.max_train_samples: --resume: the checkpoint was made with 48, this run would continue with "
     "40"),
    ("--epochs changed", ("--epochs", "3"), "--resume: the run was started for 2 epochs, this one would train 3"),
    ("the recipe changed", ("--set", "training.learning_rate=1e-3"),
     "harness.json: spec_hash: --resume: the checkpoint was made with"),
]
# fmt: on


@pytest.mark.parametrize("extra, expected", [c[1:] for c in SETTING_CASES], ids=[c[0] for c in SETTING_CASES])
def test_resuming_with_another_setting_is_one_line(run_copy, capsys, extra, expected):
    """The Trainer would only warn, and continue a mix of two runs reported as one."""
    line = one_line_unchanged(capsys, [run_copy.parent], *resume_argv(run_copy), *extra)
    assert expected in line, line


@pytest.mark.parametrize("extra", [("--max-train-samples", "9"), ("--set", "training.learning_rate=1e-3")],
                         ids=["samples", "recipe"])  # fmt: skip
def test_resuming_a_finished_seed_with_another_setting_is_one_line(tiny_run, tmp_path, capsys, extra):
    """A finished seed keeps no checkpoint, so --resume trains it again: never under another setting, whose
    result would replace the one recorded."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    argv = ["run", str(SPEC_DIR / "compacter.yaml"), "--tasks", "rte", "--max-train-samples", "8", "--epochs", "1",
            "--deepspeed", "none",
            "--output-dir", str(run), "--resume", *extra]  # fmt: skip
    line = one_line_unchanged(capsys, [run], *argv)
    assert line.startswith(f"{run / 'rte' / 'seed42' / 'best' / 'harness.json'}: "), line
    assert "--resume: the checkpoint was made with" in line, line


def test_a_moved_run_resumes_from_its_own_folder(interrupted, tmp_path, monkeypatch):
    """trainer_state.json names the best checkpoint by its absolute path at save time: after a move, --resume
    takes the one in the run's new folder (not the old place, gone or, for a copy, another run's)."""
    moved = tmp_path / "moved" / "run"
    moved.parent.mkdir()
    shutil.copytree(interrupted, moved)
    recorded = json.loads((moved / LAST / "trainer_state.json").read_text())["best_model_checkpoint"]
    assert recorded == str(interrupted / "rte" / "seed42" / "checkpoint-3")  # the absolute path at save time
    assert best_checkpoint(moved / LAST) == moved / "rte" / "seed42" / "checkpoint-3"
    seen = []

    class Watch(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen.append(state.best_model_checkpoint)  # as resumed, before any new epoch can change it

    original = harness.train.seed_run.make_trainer

    def watching(*args, **kwargs):
        trainer = original(*args, **kwargs)
        trainer.add_callback(Watch())
        return trainer

    monkeypatch.setattr(harness.train.seed_run, "make_trainer", watching)
    assert main(resume_argv(moved)) == EXIT_OK
    assert seen == [str(moved / "rte" / "seed42" / "checkpoint-3")]
    assert (moved / "results.json").is_file()


def test_a_relative_data_dir_is_recorded_resolved(tmp_path, monkeypatch):
    """The checkpoint record names the data a run trained on: `eval` from another folder must read the same."""
    seen = {}

    def stop(ctx, tasks, seeds):
        seen["ctx"] = ctx
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(harness.train.spec_run, "run_tasks", stop)
    with pytest.raises(KeyboardInterrupt):
        main(run_argv(tmp_path, "--data-dir", "data"))
    ctx = seen["ctx"]
    record = harness.train.recipe.checkpoint_record(ctx, "rte", harness.train.recipe.recipe_for(ctx, "rte")[0], 8)
    assert record.data.data_dir == str(tmp_path.resolve() / "data")
