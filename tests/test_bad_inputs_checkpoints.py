"""The bad-input corpus of the commands on a saved checkpoint: `eval`, `predict`, `export --merged` and
`harness.load`. Each broken checkpoint, input file, option or output location is one line on stderr naming
the file, key or option and what was expected, exit 2, no traceback, nothing written, changed or removed.

Every case breaks a copy of the shared smoke run's `best/` checkpoint (`tiny_run`), or a Full fine-tuning
checkpoint made from it without training (the only methods `export --merged` folds); none trains anything.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import harness
from harness.cli import EXIT_OK, main
from harness.errors import ModelError
from harness.model.record import ADAPTER_FILE, RECORD_FILE
from tests.conftest import SPEC_DIR
from tests.run_helpers import full_finetune_copy
from tests.test_bad_inputs import one_line, one_line_unchanged

# --- checkpoints to break ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tiny_run, tmp_path_factory) -> Path:
    """A copy of the smoke run's best checkpoint shared by the cases that only read it."""
    folder = tmp_path_factory.mktemp("checkpoint") / "best"
    shutil.copytree(tiny_run / "rte" / "seed42" / "best", folder)
    return folder


@pytest.fixture
def broken(tiny_run, tmp_path) -> Path:
    """A copy of the smoke run's best checkpoint of this test's own, to break."""
    folder = tmp_path / "best"
    shutil.copytree(tiny_run / "rte" / "seed42" / "best", folder)
    return folder


@pytest.fixture(scope="module")
def full_checkpoint(tiny_run, tmp_path_factory) -> Path:
    """A Full fine-tuning checkpoint of the smoke run's random backbone (`full_finetune_copy`)."""
    return full_finetune_copy(tiny_run / "rte" / "seed42" / "best", tmp_path_factory.mktemp("full") / "best")


@pytest.fixture
def broken_full(full_checkpoint, tmp_path) -> Path:
    folder = tmp_path / "full"
    shutil.copytree(full_checkpoint, folder)
    return folder


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def setting(dotted: str, value) -> Callable[[Path], None]:
    """harness.json with `dotted` (a.b.c) set to `value`."""

    def change(folder: Path) -> None:
        record = read_json(folder / RECORD_FILE)
        *parents, last = dotted.split(".")
        holder = record
        for part in parents:
            holder = holder[part]
        holder[last] = value
        (folder / RECORD_FILE).write_text(json.dumps(record), encoding="utf-8")

    return change


def writing(name: str, content: bytes) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / name).write_bytes(content)

    return change


def removing(name: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / name).unlink()

    return change


def device_link(name: str) -> Callable[[Path], None]:
    """`name` replaced by a link to /dev/zero: a read that never ends."""

    def change(folder: Path) -> None:
        (folder / name).unlink()
        (folder / name).symlink_to("/dev/zero")

    return change


def fifo(name: str) -> Callable[[Path], None]:
    """`name` replaced by a named pipe: opening it to read would block forever."""

    def change(folder: Path) -> None:
        (folder / name).unlink()
        os.mkfifo(folder / name)

    return change


def folder_instead(name: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / name).unlink()
        (folder / name).mkdir()

    return change


def truncated(name: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        raw = (folder / name).read_bytes()
        (folder / name).write_bytes(raw[: len(raw) // 2])

    return change


def tensors(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    """adapter.safetensors rewritten with `edit` applied to its name -> tensor mapping (metadata kept)."""

    def change(folder: Path) -> None:
        from safetensors import safe_open

        path = folder / ADAPTER_FILE
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
        state = load_file(str(path))
        edit(state)
        path.unlink()
        save_file(state, str(path), metadata=metadata)

    return change


def first_name(state: dict) -> str:
    return sorted(state)[0]


def reshaped(state: dict) -> None:
    name = first_name(state)
    state[name] = torch.zeros(state[name].numel() + 1)


def dropped(state: dict) -> None:
    del state[first_name(state)]


def extra(state: dict) -> None:
    state["encoder.block.0.layer.0.stray.weight"] = torch.zeros(2)


def integers(state: dict) -> None:
    name = first_name(state)
    state[name] = torch.zeros(state[name].shape, dtype=torch.int64)


DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_HEADER = len(DEEP).to_bytes(8, "little") + DEEP  # a safetensors header of deeply nested JSON
# an architecture inside every field's bound but of about 3.5e10 parameters: more than any checkpoint loads
HUGE = {"d_model": 16_384, "d_ff": 262_144, "num_layers": 2, "num_decoder_layers": 2}


def architecture(**fields) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        record = read_json(folder / RECORD_FILE)
        record["model"]["architecture"].update(fields)
        (folder / RECORD_FILE).write_text(json.dumps(record), encoding="utf-8")

    return change


# (case, how the checkpoint is broken, the file or key the line starts with (relative to the checkpoint
# folder: "harness.json: key"), and what it says). Every case is run through eval, predict and harness.load.
RECORD_CASES = [
    ("record-latin-1", writing(RECORD_FILE, b'{"format": "caf\xe9"}'), "harness.json: (top level)", "not UTF-8"),
    ("record-utf-16", writing(RECORD_FILE, "{}".encode("utf-16")), "harness.json: (top level)", "UTF-16"),
    ("record-gzip", writing(RECORD_FILE, gzip.compress(b"{}")), "harness.json: (top level)", "gzip"),
    ("record-invalid-json", writing(RECORD_FILE, b"{not json"), "harness.json: line 1, column 2", "invalid JSON"),
    ("record-empty", writing(RECORD_FILE, b""), "harness.json: line 1, column 1", "invalid JSON"),
    ("record-deep", writing(RECORD_FILE, DEEP), "harness.json: (top level)", "nested"),
    ("record-a-list", writing(RECORD_FILE, b"[]"), "harness.json: (top level)", "dictionary"),
    ("record-nan", setting("arguments.phm_rule_init_std", float("nan")), "harness.json: arguments.phm_rule_init_std",
     "not a finite number"),
    ("record-fifo", fifo(RECORD_FILE), "harness.json: (top level)", "not a regular file"),
    ("record-dev-zero", device_link(RECORD_FILE), "harness.json: (top level)", "not a regular file"),
    ("record-too-large", writing(RECORD_FILE, b" " * (1 << 20) + b"{}"), "harness.json: (top level)",
     "larger than 1,048,576 bytes"),
    ("record-folder", folder_instead(RECORD_FILE), "harness.json: (top level)", "is a folder"),
    ("record-missing", removing(RECORD_FILE), ": (top level)", "no harness.json"),
    ("n-not-dividing", setting("arguments.n", 5), "harness.json: arguments.n", "must divide d_model"),
    ("glob-matching-nothing", setting("trainable", ["*.compacter.*", "nothing.*"]), "harness.json: trainable[1]",
     "matches no parameter"),
    ("no-glob", setting("trainable", []), "harness.json: trainable", "at least 1 item"),
    ("d-model-absurd", architecture(d_model=10**9), "harness.json: model.architecture", ""),
    ("layers-absurd", architecture(num_layers=10**6, num_decoder_layers=10**6), "harness.json: model.architecture",
     ""),
    ("parameters-absurd", architecture(**HUGE), "harness.json: model.architecture", "parameters"),
    ("random-seed-negative", setting("random_seed", -1), "harness.json: random_seed", "greater than or equal to 0"),
    ("random-seed-too-large", setting("random_seed", 2**32), "harness.json: random_seed", "less than or equal to"),
    ("data-seed-negative", setting("data.data_seed", -1), "harness.json: data.data_seed", "greater than or equal"),
    ("data-seed-too-large", setting("data.data_seed", 2**64), "harness.json: data.data_seed", "less than or equal"),
    ("source-length-zero", setting("data.source_length", 0), "harness.json: data.source_length", "greater than"),
    ("generation-length-negative", setting("data.generation_max_length", -4),
     "harness.json: data.generation_max_length", "greater than"),
    ("generation-length-absurd", setting("data.generation_max_length", 10**9),
     "harness.json: data.generation_max_length", "less than or equal to 100000"),
    ("eval-batch-zero", setting("data.eval_batch_size", 0), "harness.json: data.eval_batch_size", "greater than"),
    ("eval-batch-absurd", setting("data.eval_batch_size", 10**12), "harness.json: data.eval_batch_size", "less than"),
    ("train-samples-zero", setting("data.max_train_samples", 0), "harness.json: data.max_train_samples",
     "greater than"),
    ("task-unknown", setting("data.task", "rtf"), "harness.json: data.task", "unknown task 'rtf'"),
    ("fidelity-unknown-quirk", setting("data.fidelity.said_bakward", "paper"),
     "harness.json: data.fidelity.said_bakward", "unknown quirk"),
    ("files-without-folder", setting("data.origin", "files"), "harness.json: data.data_dir", "--data-dir folder"),
    ("pretrained-empty", setting("pretrained", ""), "harness.json: pretrained", "at least 1 character"),
]  # fmt: skip
FILE_CASES = [
    ("tokenizer-missing", removing("tokenizer.json"), ": tokenizer", "cannot load it"),
    ("tokenizer-garbage", writing("tokenizer.json", b"garbage"), "tokenizer.json: line 1, column 1", "invalid JSON"),
    ("tokenizer-fifo", fifo("tokenizer.json"), "tokenizer.json: (top level)", "not a regular file"),
    ("tokenizer-a-list", writing("tokenizer.json", b"[1, 2]"), "tokenizer.json: (top level)", "a JSON object"),
    ("tokenizer-empty-object", writing("tokenizer.json", b"{}"), ": tokenizer", "cannot load it"),
    ("tokenizer-larger-than-the-vocabulary", architecture(vocab_size=8), "tokenizer.json: (top level)",
     "entries do not fit the recorded vocabulary of 8"),
    ("tokenizer-config-garbage", writing("tokenizer_config.json", b"\x00garbage"), "tokenizer_config.json: line 1",
     "invalid JSON"),
    ("tokenizer-config-deep", writing("tokenizer_config.json", DEEP), "tokenizer_config.json: (top level)", "nested"),
    ("tokenizer-config-a-list", writing("tokenizer_config.json", b"[]"), "tokenizer_config.json: (top level)",
     "a JSON object"),
    ("tokenizer-config-missing", removing("tokenizer_config.json"), ": tokenizer", "no pad token"),
    ("adapter-truncated", truncated(ADAPTER_FILE), "adapter.safetensors", "not a readable safetensors file"),
    ("adapter-garbage", writing(ADAPTER_FILE, b"garbage, not tensors"), "adapter.safetensors",
     "not a readable safetensors file"),
    ("adapter-empty", writing(ADAPTER_FILE, b""), "adapter.safetensors", "not a readable safetensors file"),
    ("adapter-deep-header", writing(ADAPTER_FILE, DEEP_HEADER), "adapter.safetensors",
     "not a readable safetensors file"),
    ("adapter-huge-header", writing(ADAPTER_FILE, (10**15).to_bytes(8, "little") + b"{}"), "adapter.safetensors",
     "not a readable safetensors file"),
    ("adapter-wrong-shape", tensors(reshaped), "adapter.safetensors", "model expects"),
    ("adapter-missing-tensor", tensors(dropped), "adapter.safetensors", "1 trainable parameter(s) missing"),
    ("adapter-extra-tensor", tensors(extra), "adapter.safetensors", "1 unexpected"),
    ("adapter-integers", tensors(integers), "adapter.safetensors", "torch.int64 values"),
    ("adapter-missing", removing(ADAPTER_FILE), ": (top level)", "no adapter.safetensors"),
    ("adapter-fifo", fifo(ADAPTER_FILE), "adapter.safetensors: (top level)", "not a regular file"),
    ("adapter-dev-zero", device_link(ADAPTER_FILE), "adapter.safetensors: (top level)", "not a regular file"),
    ("tokenizer-config-dev-zero", device_link("tokenizer_config.json"), "tokenizer_config.json: (top level)",
     "not a regular file"),
    ("adapter-folder", folder_instead(ADAPTER_FILE), "adapter.safetensors: (top level)", "is a folder"),
]  # fmt: skip
CASES = RECORD_CASES + FILE_CASES
COMMANDS = {
    "eval": lambda folder: ["eval", folder],
    "predict": lambda folder: ["predict", folder, "--text", "rte premise: a cat sat. hypothesis: a cat sat."],
}


def expect(line: str, folder: Path, where: str, says: str) -> None:
    """The line starts with the checkpoint's file (or the folder itself) and key, and says what was expected."""
    name, _, key = where.partition(":")
    start = f"{folder}:{key}" if not name else f"{folder / name}:{key}"
    assert line.startswith(start), f"{line!r} does not start with {start!r}"
    assert says in line, f"{says!r} not in {line!r}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case, breaking, where, says", CASES, ids=[case[0] for case in CASES])
def test_a_broken_checkpoint_is_one_line_and_nothing_changes(broken, capsys, command, case, breaking, where, says):
    breaking(broken)
    line = one_line_unchanged(capsys, [broken], *COMMANDS[command](broken))
    expect(line, broken, where, says)


@pytest.mark.parametrize("case, breaking, where, says", CASES, ids=[case[0] for case in CASES])
def test_load_of_a_broken_checkpoint_raises_one_model_error_line(broken, case, breaking, where, says):
    breaking(broken)
    with pytest.raises(ModelError) as raised:
        harness.load(broken)
    assert len(raised.value.errors) == 1, raised.value.errors
    expect(raised.value.errors[0], broken, where, says)


# export reads the record before anything else, and loads the checkpoint's files only for a method it can fold:
# the record cases on any checkpoint, the file cases on the Full fine-tuning one.
EXPORT_CASES = [case for case in RECORD_CASES if case[0] not in ("n-not-dividing", "glob-matching-nothing")] + [
    case for case in FILE_CASES if not case[0].startswith(("adapter-wrong", "adapter-missing-", "adapter-extra",
                                                           "adapter-integers"))
]  # fmt: skip


@pytest.mark.parametrize("case, breaking, where, says", EXPORT_CASES, ids=[case[0] for case in EXPORT_CASES])
def test_export_of_a_broken_checkpoint_is_one_line_and_writes_nothing(
    broken_full, tmp_path, capsys, case, breaking, where, says
):
    breaking(broken_full)
    merged = tmp_path / "merged"
    line = one_line_unchanged(capsys, [broken_full, merged], "export", broken_full, "--merged", merged)
    expect(line, broken_full, where, says)


def test_export_of_a_full_checkpoint_whose_tensors_do_not_match_is_one_line(broken_full, tmp_path, capsys):
    tensors(reshaped)(broken_full)
    merged = tmp_path / "merged"
    line = one_line_unchanged(capsys, [broken_full, merged], "export", broken_full, "--merged", merged)
    assert line.startswith(f"{broken_full / ADAPTER_FILE}: ") and "model expects" in line


# --- predict's inputs -----------------------------------------------------------------------------------------


def input_file(tmp_path: Path, kind: str) -> Path:
    """A `predict --file` of this kind, made under tmp_path/inputs."""
    folder = tmp_path / "inputs"
    folder.mkdir(exist_ok=True)
    path = folder / kind
    text = "rte premise: a cat sat. hypothesis: a cat sat.\n"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
        (path / "inputs.txt").write_text(text)
    elif kind == "dangling":
        path.symlink_to(folder / "nowhere")
    elif kind == "gzip":
        path.write_bytes(gzip.compress(text.encode()))
    elif kind == "utf-16":
        path.write_bytes(text.encode("utf-16"))
    elif kind == "latin-1":
        path.write_bytes("premise: un café\n".encode("latin-1"))
    elif kind == "long-line":
        path.write_text(text + "a" * 100_001 + "\n")
    elif kind == "too-large":
        path.write_text((text * 300_000)[:10_000_001])
    elif kind == "too-many":
        path.write_text("a\n" * 100_001)
    elif kind == "empty":
        path.write_text("")
    elif kind == "blank":
        path.write_text("\n   \n\t\n\n")
    elif kind == "missing":
        pass
    return path


PREDICT_FILES = [
    ("fifo", "(top level): not a regular file"),
    ("folder", "(top level): is a folder"),
    ("dangling", "dangling symbolic link"),
    ("missing", "(top level): file not found"),
    ("gzip", "(top level): a gzip-compressed file"),
    ("utf-16", "(top level): UTF-16 text"),
    ("latin-1", "(top level): not UTF-8 text (byte 0xe9 on line 1)"),
    ("long-line", "line 2: 100,001 characters; an input is at most 100,000"),
    ("too-large", "(top level): larger than 10,000,000 bytes"),
    ("empty", "(top level): holds no input"),
    ("blank", "(top level): holds no input"),
]


@pytest.mark.parametrize("kind, says", PREDICT_FILES, ids=[kind for kind, _ in PREDICT_FILES])
def test_a_bad_predict_file_is_one_line_and_never_blocks(checkpoint, tmp_path, capsys, kind, says):
    path = input_file(tmp_path, kind)
    line = one_line_unchanged(capsys, [checkpoint, tmp_path / "inputs"], "predict", checkpoint, "--file", path)
    assert line.startswith(f"{path}: ") and says in line, line


def test_more_inputs_than_predict_takes_at_once_is_one_line(checkpoint, tmp_path, capsys):
    path = input_file(tmp_path, "too-many")
    line = one_line_unchanged(capsys, [checkpoint, path], "predict", checkpoint, "--file", path)
    assert line == "predict: 100,001 inputs; at most 100,000 at once (split the file)"


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--text", ""], "argument --text: an empty input"),
        (["--text", "   "], "argument --text: an empty input"),
        (["--text", "a" * 100_001], "argument --text: 100,001 characters; an input is at most 100,000"),
        (["--file", ""], "argument --file: an empty path"),
        (["--text", "x", "--max-length", "0"], "argument --max-length: 0 out of range: expected an integer in 1..100,"),
        (["--text", "x", "--max-length", "-3"], "argument --max-length: -3 out of range"),
        (["--text", "x", "--max-length", "100001"], "argument --max-length: 100001 out of range"),
        (["--text", "x", "--max-length", "10000000000"], "argument --max-length: 10000000000 out of range"),
        ([], "predict: pass --text TEXT (repeatable) or --file FILE"),
    ],
    ids=["text-empty", "text-blank", "text-enormous", "file-empty-path", "max-length-0", "max-length-negative",
         "max-length-above-the-schema", "max-length-huge", "no-input"],
)  # fmt: skip
def test_predicts_bad_options_are_one_line(checkpoint, capsys, argv, says):
    line = one_line_unchanged(capsys, [checkpoint], "predict", checkpoint, *argv)
    assert says in line, line


# --- --device ----------------------------------------------------------------------------------------------------

BENCH = ["bench", str(SPEC_DIR / "compacter.yaml"), "--model", "t5_tiny"]


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "", "CUDA", "cuda:", "cuda:-1", " cpu"])
@pytest.mark.parametrize("command", ["eval", "predict", "bench"])
def test_an_unknown_device_is_refused_when_parsed(checkpoint, capsys, command, device):
    argv = BENCH if command == "bench" else COMMANDS[command](checkpoint)
    line = one_line_unchanged(capsys, [checkpoint], *argv, "--device", device)
    assert f"argument --device: invalid device {device!r}: expected cpu, cuda, cuda:N" in line, line


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_one_line_before_the_model_is_built(checkpoint, capsys, monkeypatch, command, device):
    import harness.train.checkpoint_eval

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(harness.train.checkpoint_eval, "read_record", pytest.fail)  # refused before anything loads
    line = one_line_unchanged(capsys, [checkpoint], *COMMANDS[command](checkpoint), "--device", device)
    assert line == f"--device: {device}: no CUDA device is available here (torch.cuda.is_available() is false); " \
                   "pass --device cpu"  # fmt: skip


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_cuda_index_past_the_devices_is_one_line(checkpoint, capsys, monkeypatch, command):
    import harness.train.checkpoint_eval

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(harness.train.checkpoint_eval, "read_record", pytest.fail)  # refused before it is read
    line = one_line_unchanged(capsys, [checkpoint], *COMMANDS[command](checkpoint), "--device", "cuda:2")
    assert line == "--device: cuda:2: this machine has 2 CUDA device(s), cuda:0 to cuda:1"


# --- output locations ----------------------------------------------------------------------------------------------


def location(tmp_path: Path, kind: str) -> tuple[Path, list[Path]]:
    """(the path to pass, the roots that must stay unchanged) for an output location of this kind."""
    place = tmp_path / "out"
    place.mkdir()
    if kind == "file":
        (place / "target").write_text("keep me\n")
        return place / "target", [place]
    if kind == "dangling":
        (place / "target").symlink_to(place / "nowhere")
        return place / "target", [place]
    if kind == "parent-file":
        (place / "file").write_text("keep me\n")
        return place / "file" / "target", [place]
    if kind == "non-empty":
        (place / "target").mkdir()
        (place / "target" / "config.json").write_text("{}\n")
        return place / "target", [place]
    if kind == "fifo":
        os.mkfifo(place / "target")
        return place / "target", [place]
    raise ValueError(kind)


EXPORT_LOCATIONS = [
    ("file", "--merged: {out} is a file, not a folder"),
    ("dangling", "--merged: {out} is a dangling symbolic link"),
    ("parent-file", "--merged: {parent} is a file, not a folder"),
    ("non-empty", "--merged: the folder exists and is not empty; choose a new one"),
    ("fifo", "--merged: {out} is a pipe, socket or device, not a folder"),
]


@pytest.mark.parametrize("kind, says", EXPORT_LOCATIONS, ids=[kind for kind, _ in EXPORT_LOCATIONS])
def test_export_onto_a_used_or_impossible_location_is_one_line(full_checkpoint, tmp_path, capsys, kind, says):
    out, roots = location(tmp_path, kind)
    line = one_line_unchanged(capsys, [full_checkpoint, *roots], "export", full_checkpoint, "--merged", out)
    assert line == f"{out}: " + says.format(out=out, parent=out.parent), line


def test_export_onto_an_empty_path_is_refused_when_parsed(full_checkpoint, tmp_path, capsys):
    line = one_line_unchanged(capsys, [full_checkpoint], "export", full_checkpoint, "--merged", "")
    assert "argument --merged: an empty path" in line


EVAL_LOCATIONS = [
    ("file", [], "{out}: --output-dir: {out} is a file, not a folder"),
    ("dangling", [], "{out}: --output-dir: {out} is a dangling symbolic link"),
    ("parent-file", [], "{out}: --output-dir: {parent} is a file, not a folder"),
    ("eval-json-folder", [], "{out}/eval.json: --output-dir: a folder, where eval writes eval.json as a file"),
    ("eval-json-folder", ["--overwrite"], "{out}/eval.json: --output-dir: a folder, where eval writes eval.json"),
    ("predictions-fifo", ["--overwrite"], "{out}/predictions.jsonl: --output-dir: a pipe, socket or device"),
    ("eval-json-link", ["--overwrite"], "{out}/eval.json: --output-dir: a symbolic link; eval writes eval.json"),
    ("eval-json-exists", [], "{out}/eval.json: (top level): already exists; pass --overwrite to replace it"),
]


@pytest.mark.parametrize("kind, extra_argv, says", EVAL_LOCATIONS,
                         ids=[kind + ("-overwrite" if extra else "") for kind, extra, _ in EVAL_LOCATIONS])  # fmt: skip
def test_eval_into_an_impossible_output_dir_is_refused_before_evaluating(
    checkpoint, tmp_path, capsys, monkeypatch, kind, extra_argv, says
):
    import harness.train.checkpoint_eval

    if kind in ("file", "dangling", "parent-file"):
        out, roots = location(tmp_path, kind)
    else:
        out = tmp_path / "out"
        out.mkdir()
        roots = [out, tmp_path / "elsewhere"]
        (tmp_path / "elsewhere").write_text("a file outside the output folder\n")
        if kind == "eval-json-folder":
            (out / "eval.json").mkdir()
        elif kind == "predictions-fifo":
            os.mkfifo(out / "predictions.jsonl")
        elif kind == "eval-json-link":
            (out / "eval.json").symlink_to(tmp_path / "elsewhere")  # --overwrite would write through it
        else:
            (out / "eval.json").write_text("{}\n")
    monkeypatch.setattr(harness.train.checkpoint_eval, "evaluate", pytest.fail)  # refused before evaluating
    line = one_line_unchanged(capsys, [checkpoint, *roots], "eval", checkpoint, "--output-dir", out, *extra_argv)
    assert line.startswith(says.format(out=out, parent=out.parent)), line


def test_eval_into_an_empty_output_dir_path_is_refused_when_parsed(checkpoint, capsys):
    line = one_line_unchanged(capsys, [checkpoint], "eval", checkpoint, "--output-dir", "")
    assert "argument --output-dir: an empty path" in line


@pytest.mark.parametrize("command", ["eval", "predict", "export"])
def test_an_empty_checkpoint_path_is_refused_when_parsed(capsys, command):
    argv = {"eval": ["eval", ""], "predict": ["predict", "", "--text", "x"], "export": ["export", "", "--merged", "m"]}
    assert "argument CHECKPOINT: an empty path" in one_line(capsys, *argv[command])


@pytest.mark.parametrize("kind", ["file", "fifo", "missing"])
def test_a_checkpoint_that_is_no_folder_is_one_line(tmp_path, capsys, kind):
    path = tmp_path / "best"
    if kind == "file":
        path.write_text("not a folder\n")
    elif kind == "fifo":
        os.mkfifo(path)
    line = one_line_unchanged(capsys, [tmp_path], "eval", path)
    says = "no such checkpoint folder" if kind == "missing" else "not a folder; a checkpoint is a folder"
    assert line.startswith(f"{path}: (top level): {says}"), line


# --- --model and --base-model ---------------------------------------------------------------------------------------

MODEL_COMMANDS = {
    "budget": ["budget", str(SPEC_DIR / "compacter.yaml")],
    "check": ["check", str(SPEC_DIR / "compacter.yaml")],
    "ls": ["ls"],
    "show": ["show", str(SPEC_DIR / "compacter.yaml")],
    "run": ["run", str(SPEC_DIR / "compacter.yaml")],
    "data": ["data", "rte"],
    "bench": BENCH[:2],
}


@pytest.mark.parametrize("command", sorted(MODEL_COMMANDS))
def test_an_empty_model_is_refused_when_parsed(capsys, tmp_path, command):
    line = one_line_unchanged(capsys, [tmp_path], *MODEL_COMMANDS[command], "--model", "")
    assert "argument --model: an empty value" in line, line


@pytest.mark.parametrize("command", ["eval", "predict", "export"])
def test_an_empty_base_model_is_refused_when_parsed(checkpoint, tmp_path, capsys, command):
    argv = {**COMMANDS, "export": lambda folder: ["export", folder, "--merged", tmp_path / "merged"]}[command]
    line = one_line_unchanged(capsys, [checkpoint, tmp_path], *argv(checkpoint), "--base-model", "")
    assert "argument --base-model: an empty value" in line, line


def base_model(tmp_path: Path, kind: str) -> str:
    """A `--base-model` of this kind under tmp_path/base."""
    folder = tmp_path / "base"
    folder.mkdir()
    config = {"model_type": "t5", "vocab_size": 512, "d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2,
              "num_heads": 2}  # fmt: skip
    if kind == "other-architecture":
        (folder / "config.json").write_text(json.dumps(config))
        return str(folder)
    if kind == "same-architecture-no-weights":
        from harness.spec.model_choice import load_model_file

        architecture = load_model_file(SPEC_DIR / "models" / "t5_tiny.yaml").architecture.model_dump()
        (folder / "config.json").write_text(json.dumps(architecture))
        return str(folder)
    if kind == "file":
        (folder / "model.bin").write_bytes(b"weights")
        return str(folder / "model.bin")
    if kind == "missing":
        return str(folder / "nowhere")
    if kind == "no-config":
        return str(folder)
    if kind == "config-garbage":
        (folder / "config.json").write_text("{garbage")
        return str(folder)
    if kind == "config-fifo":
        os.mkfifo(folder / "config.json")
        return str(folder)
    if kind == "relative-missing":
        return "./no-such-base-model"
    if kind == "hub-id-not-cached":
        return "nobody-here/no-such-t5"
    raise ValueError(kind)


BASE_MODELS = [
    ("other-architecture", "{base}: config.json: differs from t5_tiny in d_model (64; t5_tiny has 384)"),
    ("same-architecture-no-weights", "{base}: --base-model: the folder lacks the weights (model.safetensors)"),
    ("file", "{base}: --base-model: a file, not a folder holding config.json"),
    ("missing", "{base}: --base-model: no such folder, and not a hub id"),
    ("relative-missing", "{base}: --base-model: no such folder, and not a hub id"),
    ("no-config", "{base}: --base-model: the folder holds no config.json"),
    ("config-garbage", "{base}/config.json: line 1, column 2: invalid JSON"),
    ("config-fifo", "{base}/config.json: (top level): not a regular file"),
    ("hub-id-not-cached", "{base}: --base-model: 'nobody-here/no-such-t5' is no local folder, and as a hub id"),
]


@pytest.mark.parametrize("command", ["eval", "predict", "export"])
@pytest.mark.parametrize("kind, says", BASE_MODELS, ids=[kind for kind, _ in BASE_MODELS])
def test_a_base_model_that_is_not_the_recorded_one_is_one_line(
    checkpoint, full_checkpoint, tmp_path, capsys, command, kind, says
):
    base = base_model(tmp_path, kind)
    if command == "export":
        merged = tmp_path / "merged"
        argv = ["export", full_checkpoint, "--merged", merged]
        roots = [full_checkpoint, tmp_path]
    else:
        argv, roots = COMMANDS[command](checkpoint), [checkpoint, tmp_path / "base"]
    line = one_line_unchanged(capsys, roots, *argv, "--base-model", base)
    assert line.startswith(says.format(base=base)), line


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_recorded_base_model_that_is_gone_is_one_line_naming_the_record(broken, capsys, command):
    setting("pretrained", "/no/such/t5-base")(broken)
    line = one_line_unchanged(capsys, [broken], *COMMANDS[command](broken))
    assert line.startswith(f"/no/such/t5-base: pretrained (recorded in {broken / RECORD_FILE}): no such folder"), line
    assert line.endswith("expected a folder written by save_pretrained (config.json, weights, tokenizer) or a hub id")


# --- valid inputs still work ---------------------------------------------------------------------------------------


def test_eval_and_predict_of_the_unbroken_copy_still_succeed(checkpoint, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", str(checkpoint), "--device", "cpu", "--output-dir", str(out), "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "rte" and (out / "predictions.jsonl").is_file()
    inputs = tmp_path / "inputs.txt"
    inputs.write_bytes("\ufeffrte premise: a cat sat. hypothesis: a cat sat.\r\n\r\n  \nsst2 sentence: fine\n".encode())
    argv = ["predict", str(checkpoint), "--file", str(inputs), "--text", "rte premise: x. hypothesis: y.",
            "--max-length", "8", "--device", "cpu", "--json"]  # fmt: skip
    assert main(argv) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    assert [row["input"] for row in rows] == [
        "rte premise: x. hypothesis: y.", "rte premise: a cat sat. hypothesis: a cat sat.", "sst2 sentence: fine"
    ]  # fmt: skip


def test_export_of_a_full_checkpoint_into_an_empty_folder_still_works(full_checkpoint, tmp_path, capsys):
    from transformers import T5ForConditionalGeneration

    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "new" / "merged", tmp_path / "empty"):
        assert main(["export", str(full_checkpoint), "--merged", str(out)]) == EXIT_OK, capsys.readouterr().err
        merged = T5ForConditionalGeneration.from_pretrained(out)
        model, _ = harness.load(full_checkpoint)
        assert all(torch.equal(merged.state_dict()[k], v) for k, v in model.state_dict().items())
