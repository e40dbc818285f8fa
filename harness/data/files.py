"""Reading a task's original splits: from a local folder (one file per split) or from the hub.

Local: `DIR/<split>.<ext>` or `DIR/<task>/<split>.<ext>`, ext one of parquet, jsonl (or json lines as
.json), csv, tsv; the hub's shard names (`train-00000-of-00001.parquet`) work too, so a downloaded copy of
the hub repository's folder can be pointed at as is. Columns carry the hub's names. In csv/tsv files a
list or mapping column (ReCoRD `entities`/`answers`, MultiRC `idx`) holds JSON text.

Hub: `datasets.load_dataset(repo, config)` on the parquet repositories (no loading scripts). With
`HF_HUB_OFFLINE`/`HF_DATASETS_OFFLINE` set only the local cache is tried; without it, an unreachable hub
is detected by a short connection probe, so neither case waits on the network.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa

from harness.errors import DataError, InputError
from harness.inputs import MAX_JSON_DEPTH, parse_json, regular_file
from harness.spec.tasks import Task

EXTENSIONS = ("parquet", "jsonl", "json", "csv", "tsv")
MAX_SPLIT_BYTES = 4 * 2**30  # QQP's, MNLI's and ReCoRD's train splits are 40-150 MB as JSON lines; shards for more
DEFAULT_BLOCK = 1 << 20  # Arrow's default block (1 MiB): a row longer than one block would be refused
MAX_BLOCK = 2**31 - 1  # Arrow's block size is a 32-bit int
BRACKET_STEP = np.zeros(256, dtype=np.int64)  # byte -> +1 opening a JSON level, -1 closing one, else 0
BRACKET_STEP[list(b"[{")], BRACKET_STEP[list(b"]}")] = 1, -1
HUB_PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class RawSplit:
    """One original split: where it came from (a file or the hub) and its rows, in the hub's columns."""

    name: str
    origin: str
    table: pa.Table


def split_files(directory: Path, split: str) -> list[Path]:
    """The file(s) holding `split` in `directory`: `<split>.<ext>` or hub shards `<split>-*.<ext>`."""
    found: dict[str, list[Path]] = {}
    for ext in EXTENSIONS:
        paths = sorted({*directory.glob(f"{split}.{ext}"), *directory.glob(f"{split}-*.{ext}")})
        if paths:
            found[ext] = paths
    candidates = sorted({*directory.glob(f"{split}.*"), *directory.glob(f"{split}-*.*")})
    dangling = [p for p in candidates if p.is_symlink() and not p.exists()]  # a literal glob skips them silently
    if dangling:
        kind = dangling[0].suffix.lstrip(".")
        raise DataError([f"{dangling[0]}: cannot read as {kind}: a dangling symbolic link (to "
                         f"{dangling[0].readlink()})"])  # fmt: skip
    if not found:
        names = ", ".join(f"{split}.{ext}" for ext in ("parquet", "jsonl", "csv", "tsv"))
        others = [p.name for p in candidates]
        found_else = f"; found {', '.join(others)}, not one of these formats" if others else ""
        raise DataError([f"{directory}: no file for split {split!r} (looked for {names}{found_else})"])
    if len(found) > 1:
        listed = ", ".join(str(p.name) for paths in found.values() for p in paths)
        raise DataError([f"{directory}: split {split!r} is in more than one format ({listed}); keep one"])
    return next(iter(found.values()))


def task_dir(task: Task, data_dir: Path) -> Path:
    """`DIR/<task>` when it exists, else DIR itself."""
    if data_dir.is_file():
        raise DataError([f"{data_dir}: is a file, expected a data folder"])
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError([f"{data_dir}: not a folder (a pipe, socket or device), expected a data folder"])
    if not data_dir.is_dir():
        raise DataError([f"{data_dir}: no such data folder"])
    nested = data_dir / task.name
    return nested if nested.is_dir() else data_dir


def block_size(path: Path) -> int:
    """A block that holds the whole file (so any row, however long, fits in one: Arrow refuses a row that
    straddles two blocks), never below Arrow's default."""
    return min(max(path.stat().st_size + 1, DEFAULT_BLOCK), MAX_BLOCK)


def _read_csv(path: Path, task: Task) -> pa.Table:
    from pyarrow import csv

    text_columns = {col: pa.string() for col, kind in task.columns.items() if kind != "label" and kind != "score"}
    tsv = path.suffix == ".tsv"
    return csv.read_csv(
        path,
        read_options=csv.ReadOptions(block_size=block_size(path)),
        parse_options=csv.ParseOptions(delimiter="\t" if tsv else ",", quote_char=False if tsv else '"',
                                       newlines_in_values=not tsv),
        convert_options=csv.ConvertOptions(column_types=text_columns, strings_can_be_null=False),
    )  # fmt: skip


JSON_SHAPES = {"strings": "a list of strings", "multirc_idx": "a mapping with integer paragraph and question"}


def _shaped(kind: str, value: object) -> bool:
    """Whether a parsed JSON cell has the shape its column kind needs (`harness.data.protocol` checks the rest)."""
    if kind == "strings":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return isinstance(value, dict) and all(isinstance(value.get(k), int) for k in ("paragraph", "question"))


def _json_columns(path: Path, table: pa.Table, task: Task) -> pa.Table:
    """csv/tsv: the list and mapping columns (ReCoRD's entities/answers, MultiRC's idx) parsed from JSON text:
    bounded nesting and finite numbers (`harness.inputs.parse_json`); cells Arrow cannot hold in one column
    (a list in one row, a number in another) are a DataError naming the first row of the wrong shape."""
    for col, kind in task.columns.items():
        if kind in ("strings", "multirc_idx") and col in table.column_names:
            values = []
            for row, cell in enumerate(table.column(col).to_pylist()):
                try:
                    if not isinstance(cell, str):
                        raise InputError(["invalid JSON"])
                    values.append(parse_json(cell, path, f"JSON cell of column {col}"))  # bounded, finite
                except InputError as error:
                    why = error.errors[0].removeprefix(f"{path}: ").removeprefix("(top level): ")
                    if "invalid JSON" in why:
                        why = f"expected JSON text, got {cell!r}"
                    raise DataError([f"{path}: row {row}: column {col}: {why}"]) from None
            try:
                column = pa.array(values, from_pandas=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
                row = next((r for r, value in enumerate(values) if not _shaped(kind, value)), None)
                where = (
                    f"row {row}: column {col}: expected {JSON_SHAPES[kind]}, got {values[row]!r:.100}"
                    if row is not None
                    else f"column {col}: the JSON cells do not form one column ({error})"
                )
                raise DataError([f"{path}: {where}"]) from None
            table = table.set_column(table.column_names.index(col), col, column)
    return table


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


def read_file(path: Path, task: Task) -> pa.Table:
    """One split file as an Arrow table; an unreadable or empty file is a DataError naming it (and the row)."""
    check_readable(path)
    if path.suffix in (".jsonl", ".json"):
        problem = nesting_problem(path)
        if problem:
            raise DataError([f"{path}: {problem}"])
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(path) as parquet:  # read_table fails obscurely on a column name used twice
                table = parquet.read()
        elif path.suffix in (".jsonl", ".json"):
            from pyarrow import json as pa_json

            table = pa_json.read_json(path, read_options=pa_json.ReadOptions(block_size=block_size(path)))
        else:
            table = _read_csv(path, task)
    except (pa.ArrowException, OSError, ValueError) as error:
        problem = text_problem(path) if path.suffix != ".parquet" and path.is_file() else None
        message = problem or f"cannot read as {path.suffix.lstrip('.')}: {' '.join(str(error).split())}"
        raise DataError([f"{path}: {message}"]) from None
    check_table(path, table)
    if path.suffix in (".csv", ".tsv"):
        table = _json_columns(path, table, task)
    if table.num_rows == 0:
        raise DataError([f"{path}: (no rows): the file holds no examples"])
    return table


def read_local(task: Task, data_dir: Path) -> dict[str, list[RawSplit]]:
    """Every original split the task needs, one RawSplit per file (shards stay separate for row numbers)."""
    directory = task_dir(task, data_dir)
    return {
        split: [RawSplit(split, str(path), read_file(path, task)) for path in split_files(directory, split)]
        for split in task.splits
    }


def hub_offline() -> bool:
    """HF_DATASETS_OFFLINE when set, else HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), as `datasets` reads them."""
    value = os.environ.get("HF_DATASETS_OFFLINE")
    if value is None:
        value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in _TRUE


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def hub_reachable(endpoint: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub opens within `timeout` seconds (name lookup included)."""
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((url.hostname, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def read_hub(task: Task) -> dict[str, list[RawSplit]]:
    """The task's original splits from the hub (or the local `datasets` cache when offline)."""
    repo, config = task.hub
    where = f"hub {repo} ({config})"
    local = (
        f"download the split files ({', '.join(task.splits)}) and pass --data-dir DIR with DIR/{task.name}/"
        f"<split>.parquet (or .jsonl, .csv, .tsv), or --toy for generated data"
    )
    if not hub_offline() and not hub_reachable(hub_endpoint()):
        raise DataError([f"{where}: {hub_endpoint()} is unreachable (HF_HUB_OFFLINE=1 uses a cached copy); {local}"])
    try:
        import datasets

        loaded = datasets.load_dataset(repo, config)
    except Exception as error:  # the datasets library raises many kinds; all mean "not loadable"
        if hub_offline():
            reason = "offline (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set) and not in the local datasets cache"
        else:
            reason = " ".join(str(error).split())
        raise DataError([f"{where}: {reason}; {local}"]) from None
    missing = [split for split in task.splits if split not in loaded]
    if missing:
        raise DataError([f"{where}: no split {', '.join(missing)} (the hub has {', '.join(loaded)})"])
    return {
        split: [RawSplit(split, f"{where} split {split}", loaded[split].with_format("arrow")[:])]
        for split in task.splits
    }
