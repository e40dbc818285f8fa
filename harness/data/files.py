"""A task's original splits from a local folder, one file per split (or hub shards).

`DIR/<split>.<ext>` or `DIR/<task>/<split>.<ext>`, ext one of parquet, jsonl (or json lines as .json), csv,
tsv; the hub's shard names (`train-00000-of-00001.parquet`) work too, so a downloaded copy of the hub
repository's folder can be pointed at as is. Columns carry the hub's names. In csv/tsv files a list or
mapping column (ReCoRD `entities`/`answers`, MultiRC `idx`) holds JSON text. What is wrong with a file Arrow
refuses is `harness.data.file_checks`'s to say; the hub is `harness.data.hub`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from harness.data.file_checks import check_readable, check_table, nesting_problem, text_problem
from harness.errors import DataError, InputError
from harness.inputs import parse_json
from harness.spec.tasks import Task

EXTENSIONS = ("parquet", "jsonl", "json", "csv", "tsv")
DEFAULT_BLOCK = 1 << 20  # Arrow's default block (1 MiB): a row longer than one block would be refused
MAX_BLOCK = 2**31 - 1  # Arrow's block size is a 32-bit int


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
