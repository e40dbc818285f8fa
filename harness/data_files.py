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

from harness.spec import SpecError
from harness.tasks import Task

EXTENSIONS = ("parquet", "jsonl", "json", "csv", "tsv")
HUB_PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "ON", "YES", "TRUE"}


class DataError(SpecError):
    """Bad data input; `errors` are complete one-line messages naming the file, row and column."""


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
        raise DataError([f"{directory}: no file for split {split!r} (looked for {names})"])
    if len(found) > 1:
        listed = ", ".join(str(p.name) for paths in found.values() for p in paths)
        raise DataError([f"{directory}: split {split!r} is in more than one format ({listed}); keep one"])
    return next(iter(found.values()))


def task_dir(task: Task, data_dir: Path) -> Path:
    """`DIR/<task>` when it exists, else DIR itself."""
    if not data_dir.is_dir():
        raise DataError([f"{data_dir}: no such data folder"])
    nested = data_dir / task.name
    return nested if nested.is_dir() else data_dir


def _read_csv(path: Path, task: Task) -> pa.Table:
    from pyarrow import csv

    text_columns = {col: pa.string() for col, kind in task.columns.items() if kind != "label" and kind != "score"}
    tsv = path.suffix == ".tsv"
    table = csv.read_csv(
        path,
        parse_options=csv.ParseOptions(delimiter="\t" if tsv else ",", quote_char=False if tsv else '"',
                                       newlines_in_values=not tsv),
        convert_options=csv.ConvertOptions(column_types=text_columns, strings_can_be_null=False),
    )  # fmt: skip
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


def read_file(path: Path, task: Task) -> pa.Table:
    """One split file as an Arrow table; an unreadable or empty file is a DataError naming it."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        elif path.suffix in (".jsonl", ".json"):
            from pyarrow import json as pa_json

            table = pa_json.read_json(path)
        else:
            table = _read_csv(path, task)
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError) as error:
        message = " ".join(str(error).split())
        raise DataError([f"{path}: cannot read as {path.suffix.lstrip('.')}: {message}"]) from None
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
