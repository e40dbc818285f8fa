"""The run's output folder: created with a marker, replaced only if the harness wrote it, held by one run.

- `.compacter-harness-run.json` (the marker) says that the harness created the folder: `--overwrite`
  removes a folder only when it carries one; any other non-empty folder is refused with the reason.
- `.compacter-harness-lock.json` holds the pid, host and start time of the run writing the folder. It is
  taken with O_EXCL, so a second run into the same folder is refused with who holds it. A lock whose
  process no longer exists on this host is stale: it is reported and replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

from harness.errors import OutputDirError

MARKER = ".compacter-harness-run.json"
LOCK = ".compacter-harness-lock.json"


def check_output_dir(path: Path, resume: bool, overwrite: bool) -> None:
    """Refuse, before anything is written anywhere, a folder this run may not use (one line each)."""
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise OutputDirError([f"{path}: --output-dir: {parent} is a file, not a folder"])
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputDirError([f"{path}: --output-dir: {parent} is not writable"])
            break
    if not path.exists() or not any(path.iterdir()):
        if resume:
            raise OutputDirError([f"{path}: (output dir): nothing to resume"])
        return
    if resume:
        if not (path / MARKER).is_file():
            raise OutputDirError(
                [f"{path}: (output dir): not a folder the harness wrote (no {MARKER}): nothing to resume"]
            )
        return
    if not overwrite:
        raise OutputDirError(
            [
                f"{path}: (output dir): exists and is not empty; pass --resume to continue that run, "
                "--overwrite to replace it, or choose another --output-dir"
            ]
        )
    if not (path / MARKER).is_file():
        raise OutputDirError(
            [
                f"{path}: --overwrite: refused: the folder was not written by the harness (no {MARKER}); "
                "remove it yourself or choose another --output-dir"
            ]
        )


def prepare_output_dir(path: Path, resume: bool, overwrite: bool) -> None:
    """Check, then (with --overwrite) remove the harness's own earlier folder, then create it with a marker."""
    check_output_dir(path, resume, overwrite)
    if overwrite and (path / MARKER).is_file():
        holder = live_holder(path)
        if holder:
            raise OutputDirError([f"{path}: --overwrite: refused: {holder} is writing this folder"])
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    if not (path / MARKER).is_file():
        (path / MARKER).write_text(json.dumps({"created": time.time(), "by": "compacter-harness run"}) + "\n")


def _read_lock(path: Path) -> dict | None:
    try:
        return json.loads((path / LOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(lock: dict) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lock.get("started", 0)))
    return f"pid {lock.get('pid')} on {lock.get('host')} (since {started})"


def live_holder(path: Path) -> str | None:
    """Who holds the folder's lock, if that process still runs (always assumed to, on another host)."""
    lock = _read_lock(path)
    if lock is None:
        return None
    if lock.get("host") == socket.gethostname() and not _alive(int(lock.get("pid", -1))):
        return None
    return _describe(lock)


@contextlib.contextmanager
def held(path: Path, log=None):
    """Hold the folder's lock for the duration of a run; a stale lock is reported and replaced."""
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    for _ in range(2):
        try:
            descriptor = os.open(path / LOCK, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = live_holder(path)
            if holder:
                raise OutputDirError([f"{path}: (output dir): another run, {holder}, is writing this folder"]) from None
            stale = _read_lock(path) or {}
            if log is not None:
                log(f"{path}: a stale lock from {_describe(stale)} (no such process) was replaced")
            (path / LOCK).unlink(missing_ok=True)
            continue
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(record, out)
        break
    try:
        yield
    finally:
        if (_read_lock(path) or {}).get("pid") == record["pid"]:
            (path / LOCK).unlink(missing_ok=True)
