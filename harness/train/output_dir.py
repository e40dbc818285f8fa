"""The run's output folder: created with a marker, replaced only if the harness wrote it, held by one run.

- `.compacter-harness-run.json` (the marker) says that the harness created the folder: `--overwrite`
  removes a folder only when it carries one; any other non-empty folder is refused with the reason.
- `.compacter-harness-lock.json` holds the pid, host and start time of the run writing the folder. It is
  taken with O_EXCL, so a second run into the same folder is refused with who holds it. A lock whose
  process no longer exists on this host is stale: it is reported and replaced. A lock that cannot be read as
  one (empty while its run is still writing it, edited by hand, a pipe) is refused, never taken for stale.

Both are read as JSON a user may have changed (`harness.inputs.read_json`: regular, bounded, finite).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

from harness.errors import InputError, OutputDirError
from harness.inputs import folder_problem, foreign_entry, present, read_json

MARKER = ".compacter-harness-run.json"
LOCK = ".compacter-harness-lock.json"


MAX_RECORD_BYTES = 64 * 1024  # the marker and the lock hold a few numbers and a host name


def check_output_dir(path: Path, resume: bool, overwrite: bool) -> None:
    """Refuse, before anything is written anywhere, a folder this run may not use (one line each)."""
    why = folder_problem(path)  # before anything is written anywhere
    if why:
        raise OutputDirError([f"{path}: --output-dir: {why}"])
    try:
        empty = not path.exists() or not any(path.iterdir())
    except OSError as error:
        raise OutputDirError([f"{path}: --output-dir: cannot list the folder ({error.strerror or error})"]) from None
    if empty:
        if resume:
            raise OutputDirError([f"{path}: (output dir): nothing to resume"])
        return
    if resume:
        if not has_marker(path):
            raise OutputDirError(
                [f"{path}: (output dir): not a folder the harness wrote (no {MARKER}): nothing to resume"]
            )
        planted_link(path)
        live = live_holder(path)  # before anything is loaded: the same line `held` would give after
        if live:
            raise OutputDirError([f"{path}: (output dir): another run, {live}, is writing this folder"])
        return
    if not overwrite:
        raise OutputDirError(
            [
                f"{path}: (output dir): exists and is not empty; pass --resume to continue that run, "
                "--overwrite to replace it, or choose another --output-dir"
            ]
        )
    if not has_marker(path):
        raise OutputDirError(
            [
                f"{path}: --overwrite: refused: the folder was not written by the harness (no {MARKER}); "
                "remove it yourself or choose another --output-dir"
            ]
        )
    if path.is_symlink():  # the folder it names is the harness's, the link is the user's: rmtree takes no link
        raise OutputDirError([f"{path}: --overwrite: refused: a symbolic link (to {os.readlink(path)}); pass the "
                              "folder itself"])  # fmt: skip


def planted_link(path: Path) -> None:
    """Refuse a run folder to resume that holds a symbolic link, a pipe, a socket or a device: the harness writes
    none, and the run would read through a link (a checkpoint from elsewhere) or write through one (results.json,
    report.md, best/ landing outside the folder), or block on a pipe."""
    found = foreign_entry(path)
    if found is None:
        return
    entry, target = found
    if target is not None:
        raise OutputDirError([f"{path}: --resume: refused: {entry.relative_to(path)} is a symbolic link (to "
                              f"{target}); the harness writes none"])  # fmt: skip
    raise OutputDirError([f"{path}: --resume: refused: {entry.relative_to(path)} is a pipe, socket or device; the "
                          "harness writes none"])  # fmt: skip


def has_marker(path: Path) -> bool:
    """Whether `path` carries the harness's marker. It decides whether `--overwrite` may remove the folder, so
    only a regular file holding a JSON object counts; a marker that is a link, a pipe or not JSON is one line."""
    marker = path / MARKER
    if not present(marker):
        return False
    if marker.is_symlink():
        raise OutputDirError([f"{marker}: (top level): a symbolic link; the harness writes its marker as a file "
                              "(remove the link, or choose another --output-dir)"])  # fmt: skip
    if not isinstance(read_json(marker, MAX_RECORD_BYTES, "run marker"), dict):
        raise OutputDirError([f"{marker}: (top level): not a marker the harness wrote (expected a JSON object)"])
    return True


def prepare_output_dir(path: Path, resume: bool, overwrite: bool) -> None:
    """Check, then (with --overwrite) remove the harness's own earlier folder, then create it with a marker."""
    check_output_dir(path, resume, overwrite)
    if overwrite and has_marker(path):
        holder = live_holder(path)
        if holder:
            raise OutputDirError([f"{path}: --overwrite: refused: {holder} is writing this folder"])
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    if not has_marker(path):
        (path / MARKER).write_text(json.dumps({"created": time.time(), "by": "compacter-harness run"}) + "\n")


def _read_lock(path: Path) -> dict | None:
    """The folder's lock (None if there is none), or one line: a lock that cannot be read is never taken for
    stale, since another run may be writing it this instant (it is created empty, then filled)."""
    lock = path / LOCK
    if not present(lock):
        return None
    unreadable = (f"{lock}: (top level): a lock this harness cannot read{{}}; if no run is writing "
                  f"{path}, remove the lock")  # fmt: skip
    try:
        record = read_json(lock, MAX_RECORD_BYTES, "lock file")
    except InputError as error:
        raise OutputDirError([unreadable.format(f" ({error.errors[0].removeprefix(f'{lock}: ')})")]) from None
    record = record if isinstance(record, dict) else {}
    pid, host, started = (record.get(key) for key in ("pid", "host", "started"))
    if not (isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 1 << 31):
        raise OutputDirError([unreadable.format(f" (pid {pid!r} is not a process id)")])
    if not isinstance(host, str):
        raise OutputDirError([unreadable.format(f" (host {host!r} is not a host name)")])
    if not (isinstance(started, int | float) and not isinstance(started, bool) and 0 <= started < 1e11):
        raise OutputDirError([unreadable.format(f" (started {started!r} is not a time)")])
    return record


def _alive(pid: int) -> bool:
    """Whether process `pid` (> 0: never 0 or -1, which would address a process group or every process) exists."""
    if pid <= 0:
        raise ValueError(f"not a process id: {pid}")
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
    if lock["host"] == socket.gethostname() and not _alive(lock["pid"]):
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
            stale = _read_lock(path)
            holder = live_holder(path)
            if holder:
                raise OutputDirError([f"{path}: (output dir): another run, {holder}, is writing this folder"]) from None
            if log is not None and stale is not None:
                log(f"{path}: a stale lock from {_describe(stale)} (no such process) was replaced")
            (path / LOCK).unlink(missing_ok=True)
            continue
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(record, out)
        break
    else:  # replaced twice and taken again each time: another run is starting here right now
        raise OutputDirError([f"{path}: (output dir): another run is taking this folder at the same time"])
    try:
        yield
    finally:
        try:
            ours = (_read_lock(path) or {}).get("pid") == record["pid"]
        except OutputDirError:  # changed by hand meanwhile: not provably ours, left for its owner
            ours = False
        if ours:
            (path / LOCK).unlink(missing_ok=True)
