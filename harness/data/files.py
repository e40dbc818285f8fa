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

import pyarrow as pa

from harness.errors import DataError
from harness.spec.tasks import Task

EXTENSIONS = ("parquet", "jsonl", "json", "csv", "tsv")
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
    if not found:
        names = ", ".join(f"{split}.{ext}" for ext in ("parquet", "jsonl", "csv", "tsv"))
        others = sorted(p.name for p in {*directory.glob(f"{split}.*"), *directory.glob(f"{split}-*.*")})
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
    if not data_dir.is_dir():
        raise DataError([f"{data_dir}: no such data folder"])
    nested = data_dir / task.name
    return nested if nested.is_dir() else data_dir


def _read_csv(path: Path, task: Task) -> pa.Table:
    from pyarrow import csv

    text_columns = {col: pa.string() for col, kind in task.columns.items() if kind != "label" and kind != "score"}
    tsv = path.suffix == ".tsv"
    return csv.read_csv(
        path,
        parse_options=csv.ParseOptions(delimiter="\t" if tsv else ",", quote_char=False if tsv else '"',
                                       newlines_in_values=not tsv),
        convert_options=csv.ConvertOptions(column_types=text_columns, strings_can_be_null=False),
    )  # fmt: skip


def _json_columns(path: Path, table: pa.Table, task: Task) -> pa.Table:
    """csv/tsv: the list and mapping columns (ReCoRD's entities/answers, MultiRC's idx) parsed from JSON text."""
    for col, kind in task.columns.items():
        if kind in ("strings", "multirc_idx") and col in table.column_names:
            values = []
            for row, cell in enumerate(table.column(col).to_pylist()):
                try:
                    values.append(json.loads(cell))
                except (TypeError, ValueError):
                    raise DataError([f"{path}: row {row}: column {col}: expected JSON text, got {cell!r}"]) from None
            table = table.set_column(table.column_names.index(col), col, pa.array(values, from_pandas=False))
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
        header = next(reader, None)
        for row, fields in enumerate(reader):
            if header is not None and len(fields) != len(header):
                count = f"{len(fields)} field{'s' if len(fields) != 1 else ''}"
                return (
                    f"row {row} (line {reader.line_num}): {count}, the header has {len(header)} ({', '.join(header)})"
                )
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
        except ValueError as error:
            return f"{where}: invalid JSON: {error.msg} at column {error.colno}"
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


def read_file(path: Path, task: Task) -> pa.Table:
    """One split file as an Arrow table; an unreadable or empty file is a DataError naming it (and the row)."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(path) as parquet:  # read_table fails obscurely on a column name used twice
                table = parquet.read()
        elif path.suffix in (".jsonl", ".json"):
            from pyarrow import json as pa_json

            table = pa_json.read_json(path)
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
