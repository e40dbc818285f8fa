"""Checks of a local split file, around Arrow's reading: a regular file of bounded size, JSON lines nested no
deeper than Arrow survives, the row and line at fault when Arrow refuses a file (its own row numbers are wrong
past the first block), and the columns of the table read (each name once, valid UTF-8).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from harness.errors import DataError, InputError
from harness.inputs import MAX_JSON_DEPTH, regular_file

MAX_SPLIT_BYTES = 4 * 2**30  # QQP's, MNLI's and ReCoRD's train splits are 40-150 MB as JSON lines; shards for more
BRACKET_STEP = np.zeros(256, dtype=np.int64)  # byte -> +1 opening a JSON level, -1 closing one, else 0
BRACKET_STEP[list(b"[{")], BRACKET_STEP[list(b"]}")] = 1, -1


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {str: "text", list: "a list", dict: "a mapping"}[type(value)]


def text_problem(path: Path) -> str | None:
    """Where a jsonl/csv/tsv file that Arrow refused goes wrong, as `row R (line L): what` (R 0-based as
    `dataset[R]`, L 1-based as in an editor); None when no line is at fault. Arrow's own row numbers count
    from the start of its current block, so they are wrong past the first megabyte."""
    import csv
    import io

    raw = path.read_bytes()
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            return f"line {number}: invalid UTF-8 (byte {line[error.start]:#04x} at column {error.start + 1})"
    if path.suffix in (".csv", ".tsv"):
        tsv = path.suffix == ".tsv"
        quoting = csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL
        reader = csv.reader(
            io.StringIO(raw.decode("utf-8"), newline=""), delimiter="\t" if tsv else ",", quoting=quoting
        )
        try:
            header = next(reader, None)
            for row, fields in enumerate(reader):
                if header is not None and len(fields) != len(header):
                    count = f"{len(fields)} field{'s' if len(fields) != 1 else ''}"
                    return (
                        f"row {row} (line {reader.line_num}): {count}, the header has {len(header)} "
                        f"({', '.join(header)})"
                    )
        except csv.Error:  # a field past the csv module's limit (128 KiB): Arrow's own message says more
            return None
        return None
    kinds: dict[str, tuple[str, int]] = {}
    row = -1
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row += 1
        where = f"row {row} (line {number})"
        try:
            value = json.loads(line)
        except RecursionError:
            return f"{where}: nested too deeply; a row nests at most {MAX_JSON_DEPTH} levels"
        except json.JSONDecodeError as error:
            return f"{where}: invalid JSON: {error.msg} at column {error.colno}"
        except ValueError as error:
            return f"{where}: invalid JSON: {error}"
        if not isinstance(value, dict):
            return f"{where}: {_kind(value)}, expected one JSON object per line (JSON Lines)"
        for column, cell in value.items():
            if cell is None:
                continue
            first = kinds.setdefault(column, (_kind(cell), row))
            if first[0] != _kind(cell):
                return (
                    f"{where}: column {column}: {_kind(cell)}, but row {first[1]} holds {first[0]}; one type per column"
                )
    return None


def check_table(path: Path, table: pa.Table) -> None:
    """Each column name once, and all text valid UTF-8 (Arrow reads invalid bytes without complaint)."""
    names = table.column_names
    for name in dict.fromkeys(names):
        if names.count(name) > 1:
            positions = ", ".join(str(i + 1) for i, n in enumerate(names) if n == name)
            raise DataError([f"{path}: column {name}: appears {names.count(name)} times (columns {positions})"
                             "; each column name once"])  # fmt: skip
    for index, name in enumerate(names):
        column = table.column(index)
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                for row, cell in enumerate(column.cast(pa.large_binary()).to_pylist()):
                    try:
                        if cell is not None:
                            cell.decode("utf-8")
                    except UnicodeDecodeError as error:
                        bad = f"byte {cell[error.start]:#04x} at offset {error.start}"
                        raise DataError([f"{path}: row {row}: column {name}: invalid UTF-8 text ({bad})"]) from None
            raise DataError([f"{path}: column {name}: invalid UTF-8 text"]) from None


def check_readable(path: Path) -> None:
    """A regular file (a named pipe would block the read forever, a folder is no split) of at most
    MAX_SPLIT_BYTES; else a DataError line starting `PATH: cannot read as EXT:` or naming the size."""
    kind = path.suffix.lstrip(".")
    try:
        regular_file(path, "split file")
    except InputError as error:
        why = error.errors[0].removeprefix(f"{path}: (top level): ")
        raise DataError([f"{path}: cannot read as {kind}: {why}"]) from None
    size = path.stat().st_size
    if size > MAX_SPLIT_BYTES:
        raise DataError([f"{path}: {size:,} bytes; a split file is at most {MAX_SPLIT_BYTES:,} (cut it into hub "
                         f"shards: <split>-00000-of-00002.{kind}, <split>-00001-of-00002.{kind})"])  # fmt: skip


def nesting_problem(path: Path) -> str | None:
    """`row R (line L): nested more than N levels…` for the first JSON line nesting deeper than MAX_JSON_DEPTH,
    else None. Arrow's JSON parser recurses once per level and kills the process (a segmentation fault, no
    message) on a line nested some ten thousand levels deep, so the depth is measured first, without parsing:
    the brackets outside strings, line by line, a few megabytes at a time."""
    import re

    raw = path.read_bytes()
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return None  # too few brackets to nest that deep
    strings = re.compile(rb'"[^"\\\n]*(?:\\.[^"\\\n]*)*"')  # a JSON string never spans lines
    start, lines_before = 0, 0
    while start < len(raw):
        end = raw.find(b"\n", min(start + (4 << 20), len(raw)))  # whole lines: a chunk ends after a newline
        end = len(raw) if end < 0 else end + 1
        codes = np.frombuffer(strings.sub(b'""', raw[start:end]), dtype=np.uint8)  # (chunk,)
        level = np.cumsum(BRACKET_STEP[codes])  # (chunk,)
        newlines = codes == ord("\n")
        last = np.maximum.accumulate(np.where(newlines, np.arange(len(codes)), -1))  # last newline at or before
        depth = level - np.where(last >= 0, level[np.maximum(last, 0)], 0)  # the level within its own line
        deep = np.flatnonzero(depth > MAX_JSON_DEPTH)
        if deep.size:
            line = lines_before + int(np.count_nonzero(newlines[: deep[0]])) + 1
            row = sum(1 for text in raw.split(b"\n", line - 1)[: line - 1] if text.strip())
            return f"row {row} (line {line}): nested more than {MAX_JSON_DEPTH} levels; a row nests at most that"
        lines_before += int(np.count_nonzero(newlines))
        start = end
    return None
