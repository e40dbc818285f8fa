"""A task's original splits from the hub: `datasets.load_dataset(repo, config)` on the parquet repositories (no
loading scripts). With `HF_HUB_OFFLINE`/`HF_DATASETS_OFFLINE` set only the local cache is tried; without it,
an unreachable hub is detected by a short connection probe, so neither case waits on the network.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

from harness.data.files import RawSplit
from harness.errors import DataError
from harness.spec.tasks import Task

HUB_PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "ON", "YES", "TRUE"}


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
