"""Processes and devices of a run: which process writes, the device and precision, DeepSpeed's config, and
its CPU op build (announced, and a stale lock refused)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from harness.errors import SpecError

log = logging.getLogger("harness.run")
DEEPSPEED_DIR = Path(__file__).resolve().parents[2] / "spec" / "deepspeed"


def is_main_process() -> bool:
    """Rank 0 of a `deepspeed`/`torchrun` launch (or a single process) writes the run's files."""
    import os

    return int(os.environ.get("RANK", "0")) == 0


def deepspeed_config(choice: str) -> dict | None:
    """The ZeRO config as data (`spec/deepspeed/<name>.json` or a file), or None for a plain Trainer run."""
    import json

    if choice == "none":
        return None
    if choice == "auto":
        if not torch.cuda.is_available():  # DeepSpeed on the CPU changes no number and first compiles an op
            log.info("no GPU: training with the plain HF Trainer (--deepspeed zero2 to use DeepSpeed anyway)")
            return None
        try:
            import deepspeed  # noqa: F401
        except ImportError:
            log.warning("DeepSpeed is not installed: training with the plain HF Trainer (pip install '.[train]')")
            return None
        choice = "zero2"
    path = Path(choice) if choice.endswith(".json") else DEEPSPEED_DIR / f"{choice}.json"
    if not path.is_file():
        known = sorted(p.stem for p in DEEPSPEED_DIR.glob("*.json"))
        raise SpecError([f"{path}: --deepspeed: no such config (known: {', '.join(known)}, none, or a .json file)"])
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        where = f"{path}: line {error.lineno}, column {error.colno}"
        raise SpecError([f"{where}: --deepspeed: invalid JSON: {error.msg}"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError([f"{path}: --deepspeed: cannot read the file: {error}"]) from None
    stage = config.get("zero_optimization", {}).get("stage") if isinstance(config, dict) else None
    if stage not in (0, 1, 2):
        raise SpecError([f"{path}: zero_optimization.stage: --deepspeed: expected 0, 1 or 2, got {stage!r}"])
    return {k: v for k, v in config.items() if not k.startswith("_")}


STALE_BUILD_S = 15 * 60  # a build of DeepSpeed's CPU op takes minutes; a lock idle this long has no builder


def check_deepspeed_build(name: str = "deepspeed_shm_comm") -> None:
    """On the CPU, DeepSpeed compiles its shared-memory op at first use, under a lock file that a killed
    build leaves behind (every later run would then wait forever): say so, and refuse a stale lock."""
    from torch.utils.cpp_extension import _get_build_directory

    folder = Path(_get_build_directory(name, verbose=False))
    lock = folder / "lock"
    if lock.exists():
        idle = time.time() - max(p.stat().st_mtime for p in [lock, *folder.rglob("*")] if p.exists())
        if idle > STALE_BUILD_S:
            raise SpecError([f"{lock}: --deepspeed: left by a build of DeepSpeed's {name} op that stopped "
                             f"(nothing in {folder} changed for {idle / 60:.0f} min): remove it, or run with "
                             "--deepspeed none"])  # fmt: skip
        log.warning("another process is building DeepSpeed's %s op (lock %s): waiting for it", name, lock)
    elif not any(folder.glob("*.so")):
        log.warning("DeepSpeed builds its %s op for the CPU on first use (once, cached in %s; "
                    "TORCH_EXTENSIONS_DIR moves it): this takes minutes", name, folder)  # fmt: skip


def device_and_precision(requested: str) -> tuple[str, bool]:
    """cuda if present, else cpu; bf16 where the hardware supports it and the spec allows, never fp16."""
    if torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported() and requested == "bf16"
        return f"cuda ({torch.cuda.get_device_name(0)})", bf16
    return "cpu", False
