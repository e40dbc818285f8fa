"""Resumable checkpoints the harness can prove it wrote: safetensors and JSON, sealed by a sha256 manifest.

The trust boundary of `--resume`:
- every checkpoint folder is sealed when it is complete: `checkpoint-manifest.json` lists each file's size
  and sha256. Before anything in it is read, the folder must match its manifest exactly: a file missing,
  changed, or present but not listed (a planted file) is refused with one line, and nothing is loaded or
  deleted. A folder without a manifest (a save that was cut short) is refused the same way, and so is a
  symbolic link, a pipe or a device anywhere in it (a link would make the manifest vouch for a file outside);
- every JSON file of a checkpoint is read bounded, finite and of the shape the harness writes
  (`check_resumable`, before the run writes anything): the manifest proves a file unchanged, not well-formed;
- the harness's own state is never pickled, and DeepSpeed's engine files are read weights-only
  (`harness.train.checkpoint_state`, which writes and reads them).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from harness.errors import InputError, OutputDirError
from harness.inputs import foreign_entry, read_json

MANIFEST = "checkpoint-manifest.json"
FORMAT = "compacter-harness checkpoint"
OPTIMIZER, SCHEDULER = "optimizer", "scheduler.json"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_files(folder: Path) -> list[Path]:
    """Every file under `folder` but the manifest, as sorted relative paths."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def seal(folder: Path) -> Path:
    """Write the manifest of the complete checkpoint `folder` (atomically: a cut save leaves no manifest)."""
    files = {str(rel): {"bytes": (folder / rel).stat().st_size, "sha256": sha256(folder / rel)}
             for rel in folder_files(folder)}  # fmt: skip
    temporary = folder / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps({"format": FORMAT, "files": files}, indent=1), encoding="utf-8")
    os.replace(temporary, folder / MANIFEST)
    return folder / MANIFEST


def refuse_links(folder: Path, refuse: str) -> None:
    """Refuse a symbolic link anywhere in `folder` (the folder itself included), and anything but folders and
    regular files: a link would let the manifest vouch for a file outside the checkpoint (its sha256 matched
    today, its target changed tomorrow), and a pipe or device would block the hashing."""
    if folder.is_symlink():
        raise OutputDirError([f"{refuse} the checkpoint folder is a symbolic link (to {os.readlink(folder)})"])
    found = foreign_entry(folder)
    if found is None:
        return
    entry, target = found
    rel = entry.relative_to(folder)
    if target is not None:
        raise OutputDirError([f"{refuse} {rel} is a symbolic link (to {target}); a checkpoint holds only the files "
                              "the harness wrote"])  # fmt: skip
    raise OutputDirError([f"{refuse} {rel} is a pipe, socket or device, not a file the harness wrote"])


def verify(folder: Path) -> None:
    """Refuse (OutputDirError, one line) a checkpoint folder that is not exactly what the harness sealed."""
    refuse = f"{folder}: --resume: refused, nothing was loaded or removed:"
    refuse_links(folder, refuse)
    if not (folder / MANIFEST).exists():
        raise OutputDirError([f"{refuse} no {MANIFEST} (not written by the harness, or its save was cut short); "
                         "remove this checkpoint folder to resume from the one before"])  # fmt: skip
    try:
        manifest = read_json(folder / MANIFEST, MAX_JSON_BYTES, "checkpoint manifest")
    except InputError as error:
        raise OutputDirError([f"{refuse} {MANIFEST} is unreadable ({error.errors[0]})"]) from None
    listed = manifest.get("files") if isinstance(manifest, dict) and manifest.get("format") == FORMAT else None
    if not isinstance(listed, dict):
        raise OutputDirError([f"{refuse} {MANIFEST} is not a {FORMAT} manifest"])
    present = {str(rel) for rel in folder_files(folder)}
    planted = sorted(present - listed.keys())
    if planted:
        raise OutputDirError([f"{refuse} {planted[0]} was not written by the harness (not in {MANIFEST})"])
    for name, expected in sorted(listed.items()):
        path = folder / name
        if name not in present:
            raise OutputDirError([f"{refuse} {name} is missing"])
        if not isinstance(expected, dict) or path.stat().st_size != expected.get("bytes"):
            raise OutputDirError([f"{refuse} {name} changed since it was saved (size differs): corrupted or replaced"])
        if sha256(path) != expected.get("sha256"):
            raise OutputDirError(
                [f"{refuse} {name} changed since it was saved (sha256 differs): corrupted or replaced"]
            )


# --- the JSON of a checkpoint, checked before anything is loaded ---------------------------------------------------
# The manifest proves a file unchanged, not well-formed: a file edited by hand and sealed again must still be one
# line, found before the run writes anything (`check_resumable`), never a traceback in the middle of training.

MAX_JSON_BYTES = 64 << 20  # optimizer.json lists every trainable tensor's scalars: kilobytes for the paper's runs
MAX_STATE_BYTES = 256 << 20  # trainer_state.json grows by one entry per logged step
TRAINER_STATE = "trainer_state.json"
CHECKPOINT_NAME = re.compile(r"checkpoint-[0-9]{1,12}")


def read_checkpoint_json(path: Path, limit: int = MAX_JSON_BYTES) -> Any:
    return read_json(path, limit, "checkpoint file")


def _number(value: Any, low: float = 0) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= low


def _integer(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _bad(path: Path, key: str, expected: str, value: Any) -> OutputDirError:
    shown = repr(value) if len(repr(value)) <= 60 else f"{repr(value)[:57]}..."
    return OutputDirError([f"{path}: {key}: expected {expected}, got {shown} (not as the harness wrote it)"])


STATE_FIELDS: dict[str, tuple[Any, str]] = {
    "epoch": (_number, "a number ≥ 0"), "global_step": (_integer, "an integer ≥ 0"),
    "max_steps": (_integer, "an integer ≥ 0"), "logging_steps": (_number, "a number ≥ 0"),
    "eval_steps": (_number, "a number ≥ 0"), "save_steps": (_number, "a number ≥ 0"),
    "train_batch_size": (lambda v: v is None or _integer(v, 1), "null or an integer ≥ 1"),
    "num_train_epochs": (_number, "a number ≥ 0"), "num_input_tokens_seen": (_integer, "an integer ≥ 0"),
    "total_flos": (_number, "a number ≥ 0"), "log_history": (lambda v: isinstance(v, list), "a list"),
    "best_metric": (lambda v: v is None or _number(v, -math.inf), "null or a number"),
    "best_global_step": (lambda v: v is None or _integer(v), "null or an integer ≥ 0"),
    "best_model_checkpoint": (lambda v: v is None or isinstance(v, str), "null or a checkpoint folder"),
    "is_local_process_zero": (lambda v: isinstance(v, bool), "true or false"),
    "is_world_process_zero": (lambda v: isinstance(v, bool), "true or false"),
    "is_hyper_param_search": (lambda v: isinstance(v, bool), "true or false"),
    "trial_name": (lambda v: v is None or isinstance(v, str), "null or a name"),
    "trial_params": (lambda v: v is None or isinstance(v, dict), "null or an object"),
    "stateful_callbacks": (lambda v: v is None or isinstance(v, dict), "null or an object"),
}  # fmt: skip


def read_trainer_state(folder: Path) -> dict[str, Any]:
    """The checkpoint's trainer_state.json, every field the Trainer and the harness compute with of the type they
    expect (a string step would be a TypeError at the first step)."""
    path = folder / TRAINER_STATE
    state = read_checkpoint_json(path, MAX_STATE_BYTES)
    if not isinstance(state, dict):
        raise _bad(path, "(top level)", "a JSON object", state)
    for key, value in state.items():
        if key not in STATE_FIELDS:
            raise OutputDirError([f"{path}: {key}: not a field of the Trainer's state (not as the harness wrote it)"])
        valid, expected = STATE_FIELDS[key]
        if not valid(value):
            raise _bad(path, key, expected, value)
    for index, entry in enumerate(state.get("log_history") or []):
        if not isinstance(entry, dict):
            raise _bad(path, f"log_history[{index}]", "an object", entry)
        for key, value in entry.items():
            if not (_number(value, -math.inf) or isinstance(value, str) or value is None):
                raise _bad(path, f"log_history[{index}].{key}", "a number", value)
        for key in ("epoch", "step") if "eval_average" in entry or "loss" in entry else ():
            if not _number(entry.get(key)):
                raise _bad(path, f"log_history[{index}].{key}", "a number ≥ 0", entry.get(key))
        for key in ("loss", "eval_average"):
            if key in entry and not _number(entry[key], -math.inf):
                raise _bad(path, f"log_history[{index}].{key}", "a number", entry[key])
    best = state.get("best_model_checkpoint")
    if best is not None and not CHECKPOINT_NAME.fullmatch(Path(best).name):
        raise _bad(path, "best_model_checkpoint", "a checkpoint-N folder of this run", best)
    return state


def best_checkpoint(folder: Path) -> Path | None:
    """The best checkpoint that `folder`'s trainer state names, in the run folder that holds `folder` now.

    The Trainer records it as an absolute path: a run folder moved or copied elsewhere would name the old place
    (gone, or worse still there, and read instead of this run's own). The harness always saves into one folder
    per task and seed, so the recorded folder's name is all that identifies it.
    """
    best = read_trainer_state(folder).get("best_model_checkpoint")
    return None if best is None else folder.parent / Path(best).name


def check_scheduler(path: Path, state: Any) -> None:
    if not isinstance(state, dict):
        raise _bad(path, "(top level)", "a JSON object", state)
    for key in ("last_epoch", "_step_count"):
        if key in state and not _integer(state[key], -1):
            raise _bad(path, key, "an integer", state[key])
    for key in ("base_lrs", "_last_lr"):
        if key in state and not (isinstance(state[key], list) and all(_number(v) for v in state[key])):
            raise _bad(path, key, "a list of learning rates", state[key])
    # torch saves each schedule function's attributes (none for the Trainer's partials) and loads them back onto
    # the function: a planted one would change how the learning rate is computed
    lambdas = state.get("lr_lambdas", [])
    if not (isinstance(lambdas, list) and all(v is None or v == {} for v in lambdas)):
        raise _bad(
            path, "lr_lambdas", "a list of empty objects (the schedule's functions are the Trainer's own)", lambdas
        )


def check_optimizer(path: Path, meta: Any) -> None:
    if not isinstance(meta, dict) or not isinstance(meta.get("param_groups"), list):
        raise _bad(path, "param_groups", "a list of parameter groups", meta)
    if not all(isinstance(group, dict) for group in meta["param_groups"]):
        raise _bad(path, "param_groups", "a list of objects", meta["param_groups"])
    scalars = meta.get("scalars")
    if not isinstance(scalars, dict) or not all(k.isascii() and k.isdigit() and isinstance(v, dict)
                                                for k, v in scalars.items()):  # fmt: skip
        raise _bad(path, "scalars", "an object of parameter index → scalars", scalars)


def check_rng(path: Path, meta: Any) -> None:
    python = meta.get("python") if isinstance(meta, dict) else None
    numpy = meta.get("numpy") if isinstance(meta, dict) else None
    if not (isinstance(python, list) and len(python) == 3 and _integer(python[0]) and isinstance(python[1], list)
            and len(python[1]) == 625 and all(_integer(v) for v in python[1])
            and (python[2] is None or _number(python[2], -math.inf))):  # fmt: skip
        raise _bad(path, "python", "Python's generator state [version, 625 integers, gauss]", python)
    if not (isinstance(numpy, list) and len(numpy) == 4 and numpy[0] == "MT19937" and _integer(numpy[1])
            and _integer(numpy[2]) and _number(numpy[3], -math.inf)):  # fmt: skip
        raise _bad(path, "numpy", 'NumPy\'s generator state ["MT19937", position, has_gauss, cached]', numpy)


def check_resumable(folder: Path) -> None:
    """Every JSON file `--resume` will read from the verified checkpoint `folder`, checked before anything is
    written; and the best checkpoint its state names, found in this run folder and verified too."""
    refuse = f"{folder}: --resume: refused, nothing was loaded or removed:"
    for name in (TRAINER_STATE, SCHEDULER):
        if not (folder / name).exists():
            raise OutputDirError([f"{refuse} {name} is missing (not a checkpoint the harness wrote)"])
    best = best_checkpoint(folder)
    if best is not None and best != folder:
        if not best.is_dir():
            gone = f"{best.name} is not in {folder.parent}: the best epoch's weights are gone; resume is impossible"
            raise OutputDirError([f"{folder / TRAINER_STATE}: best_model_checkpoint: {gone}"])
        verify(best)
    check_scheduler(folder / SCHEDULER, read_checkpoint_json(folder / SCHEDULER))
    if (folder / f"{OPTIMIZER}.json").exists():
        check_optimizer(folder / f"{OPTIMIZER}.json", read_checkpoint_json(folder / f"{OPTIMIZER}.json"))
    for path in sorted(folder.glob("rng_state*.json")):
        check_rng(path, read_checkpoint_json(path))
    with reading(folder):  # the random states' tensors: small, and torch takes a wrong dtype with a RuntimeError
        for path in sorted(folder.glob("rng_state*.safetensors")):
            _check_rng_tensors(path, load_file(str(path)))


def _check_rng_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    expected = {"numpy_keys": (torch.int64, (624,)), "cpu": (torch.uint8, None)}
    for key, (dtype, shape) in expected.items():
        tensor = tensors.get(key)
        if tensor is None or tensor.dtype != dtype or (shape is not None and tuple(tensor.shape) != shape):
            found = "nothing" if tensor is None else f"{tensor.dtype} {tuple(tensor.shape)}"
            raise OutputDirError([f"{path}: {key}: expected a {dtype} tensor{'' if shape is None else f' {shape}'}, "
                                  f"got {found} (not as the harness wrote it)"])  # fmt: skip


@contextlib.contextmanager
def reading(folder: Path) -> Iterator[None]:
    """Within: a file of `folder` that cannot be read as what the harness writes is one line (SpecError)."""
    from safetensors import SafetensorError

    try:
        yield
    # RuntimeError: torch's refusal of a tensor of the wrong shape or dtype (load_state_dict, set_rng_state)
    except (OSError, SafetensorError, UnicodeDecodeError, ValueError, KeyError, TypeError, RuntimeError) as error:
        message = " ".join(str(error).split())[:300]
        raise OutputDirError(
            [f"{folder}: --resume: cannot read the checkpoint ({type(error).__name__}: {message})"]
        ) from None
