"""Reading a file a user controls without trusting it: a regular file (never a pipe or a device that would
block), of bounded size, UTF-8, and JSON of bounded nesting with finite numbers only. Every refusal is one
`file: (top level): why` line (an `InputError`), never a hang or a traceback.

Used by every reader of JSON the harness did not just write in this process (config.json, safetensors
headers, checkpoint records and manifests, results.json, trainer state, locks) and by the text inputs of
`predict --file`.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from harness.errors import InputError

MAX_JSON_DEPTH = 64  # the deepest file the harness writes nests 6 levels; a config.json about 4


def where(path: Path | str, detail: str) -> str:
    """`file: (top level): detail`, the line of a problem with the file as a whole."""
    return f"{path}: (top level): {detail}"


def present(path: Path) -> bool:
    """Whether anything is at `path` (a file, a folder, a pipe, a dangling link): what is there is then read
    and refused by `regular_file` when it is no regular file, rather than taken for absent."""
    return os.path.lexists(path)


def regular_file(path: Path, what: str = "file") -> Path:
    """`path` if it is a regular file (or a link to one); otherwise one line: missing, a folder, or a pipe,
    socket or device (reading one could block forever)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        kind = "a dangling symbolic link" if path.is_symlink() else "not found"
        raise InputError([where(path, f"{what} {kind}")]) from None
    except OSError as error:
        raise InputError([where(path, f"cannot read the {what}: {error.strerror or error}")]) from None
    if stat.S_ISDIR(mode):
        raise InputError([where(path, f"is a folder, expected a {what}")])
    if not stat.S_ISREG(mode):
        raise InputError([where(path, f"not a regular file (a pipe, socket or device); expected a {what}")])
    return path


def read_bytes(path: Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes (checked before and while reading)."""
    regular_file(path, what)
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as error:
        raise InputError([where(path, f"cannot read the {what}: {error.strerror or error}")]) from None
    if len(raw) > limit:
        raise InputError([where(path, f"larger than {limit:,} bytes; a {what} is at most that")])
    return raw


def decode_utf8(raw: bytes, path: Path | str, what: str = "file") -> str:
    """`raw` as UTF-8 text, or one line naming the first bad byte and its line (and gzip, UTF-16 by name)."""
    if raw[:2] == b"\x1f\x8b":
        raise InputError([where(path, f"a gzip-compressed file; expected the {what} as UTF-8 text (gunzip it)")])
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError([where(path, f"UTF-16 text; expected the {what} as UTF-8 text (save it as UTF-8)")])
    try:
        return raw.decode("utf-8-sig" if raw[:3] == b"\xef\xbb\xbf" else "utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        byte = f"byte {raw[error.start]:#04x} on line {line}"
        raise InputError([where(path, f"not UTF-8 text ({byte}); expected the {what} as UTF-8 text")]) from None


def json_depth(value: Any) -> int:
    """How deeply `value` nests lists and mappings (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json(
    text: str | bytes, path: Path | str, what: str = "JSON file", allow_nan: bool = False, option: str = ""
) -> Any:
    """JSON text parsed, nesting at most MAX_JSON_DEPTH and (unless `allow_nan`) without NaN or Infinity;
    one line naming `path` (and the line and column, or the key holding a non-finite number) otherwise; an
    invalid-JSON line also names `option`, the command-line option that chose the file, when given."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise InputError([where(path, f"nested too deeply; a {what} nests at most {MAX_JSON_DEPTH} levels")]) from None
    except json.JSONDecodeError as error:
        at = f"{path}: line {error.lineno}, column {error.colno}: {f'{option}: ' if option else ''}"
        raise InputError([f"{at}invalid JSON: {error.msg}"]) from None
    except UnicodeDecodeError:
        raise InputError([where(path, f"not UTF-8 text; expected a {what}")]) from None
    depth = json_depth(value)
    if depth > MAX_JSON_DEPTH:
        raise InputError([where(path, f"nested {depth} levels deep; a {what} nests at most {MAX_JSON_DEPTH}")])
    key = None if allow_nan else non_finite_key(value)
    if key is not None:
        raise InputError([f"{path}: {key}: not a finite number (NaN or Infinity); a {what} holds finite numbers"])
    return value


def non_finite_key(value: Any) -> str | None:
    """The key path (`a.b[0].c`) of the first NaN or infinity in parsed JSON, or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, key = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return key or "(top level)"
        if isinstance(node, dict):
            stack.extend((child, f"{key}.{name}" if key else str(name)) for name, child in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((child, f"{key}[{index}]") for index, child in reversed(list(enumerate(node))))
    return None


def read_json(path: Path, limit: int, what: str = "JSON file", allow_nan: bool = False, option: str = "") -> Any:
    """A JSON file a user may have made or changed: regular, at most `limit` bytes, UTF-8, bounded nesting,
    finite numbers (unless `allow_nan`)."""
    text = decode_utf8(read_bytes(path, limit, what), path, what)
    return parse_json(text, path, what, allow_nan, option)


def folder_problem(folder: Path) -> str | None:
    """Why `folder` could not be created or written into, or None; nothing is created. Its nearest existing
    ancestor (itself included) must be a writable folder, and no dangling link may stand on the way."""
    for parent in [folder, *folder.parents]:
        if parent.is_symlink() and not parent.exists():
            return f"{parent} is a dangling symbolic link"
        if parent.exists():
            if not parent.is_dir():
                kind = "a file" if parent.is_file() else "a pipe, socket or device"
                return f"{parent} is {kind}, not a folder"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"{parent} is not writable"
            return None
    return None


def foreign_entry(folder: Path) -> tuple[Path, str | None] | None:
    """The first entry under `folder` that is neither a folder nor a regular file, with its link target (None
    for a pipe, socket or device); None when every entry is one the harness could have written. Links are not
    followed: a link would let a folder vouch for a file outside it, a pipe block whatever reads it."""
    for root, folders, names in os.walk(folder):
        for name in sorted(folders + names):
            entry = Path(root) / name
            if entry.is_symlink():
                return entry, os.readlink(entry)
            if not (entry.is_dir() or entry.is_file()):
                return entry, None
    return None
