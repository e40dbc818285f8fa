"""Processes and devices of a run: which process writes, the device and precision, DeepSpeed's config, and
its CPU op build (announced, and a stale lock refused)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.errors import OptionError
from harness.inputs import read_json

log = logging.getLogger("harness.run")
DEEPSPEED_DIR = Path(__file__).resolve().parents[2] / "spec" / "deepspeed"


MAX_PROCESSES = 1 << 20  # far beyond any launch; keeps the arithmetic of a typo (WORLD_SIZE=1e9) out of torch


@dataclass(frozen=True)
class Launch:
    """This process's place in its launch: torchrun and deepspeed set RANK, WORLD_SIZE and LOCAL_RANK (torchrun
    LOCAL_WORLD_SIZE too); a plain `python -m harness run` sets none and is rank 0 of 1."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int | None


def shown(text: str) -> str:
    """`text` quoted for a message, cut to 40 characters (an environment variable can be megabytes)."""
    return repr(text) if len(text) <= 40 else f"{text[:37]!r}..."


def _launch_variable(name: str, low: int, expected: str) -> int | None:
    """The integer in environment variable `name` (None if unset), or one line naming it."""
    import os
    import re

    text = os.environ.get(name)
    if text is None:
        return None
    # digits only: int() would also take " 1", "1_0" and non-ASCII digits, which torch and accelerate do not
    if not re.fullmatch(r"[0-9]{1,7}", text) or not low <= int(text) <= MAX_PROCESSES:
        raise OptionError([f"environment variable {name}={shown(text)}: expected {expected} (set by torchrun or "
                           "deepspeed; unset it for a single process)"])  # fmt: skip
    return int(text)


def launch() -> Launch:
    """The launch environment, checked before anything is read or written: a malformed or inconsistent RANK,
    WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE or MASTER_PORT is one line naming it. A process that believed a
    bad RANK would train without writing (RANK ≠ 0) or wait forever for processes that do not exist."""
    import os
    import re

    rank = _launch_variable("RANK", 0, "an integer in 0..WORLD_SIZE-1")
    world = _launch_variable("WORLD_SIZE", 1, "a number of processes, at least 1")
    local_rank = _launch_variable("LOCAL_RANK", 0, "an integer in 0..LOCAL_WORLD_SIZE-1")
    local_world = _launch_variable("LOCAL_WORLD_SIZE", 1, "a number of processes on this machine, at least 1")
    unset = "unset" if world is None else str(world)
    if rank is not None and rank >= (world or 1):
        raise OptionError([f"environment variable RANK={rank}: expected an integer in 0..WORLD_SIZE-1 (WORLD_SIZE is "
                           f"{unset}); launch several processes with torchrun, or unset RANK"])  # fmt: skip
    if rank is not None and world is None:  # DeepSpeed would take RANK alone for a launch and find no group
        raise OptionError([f"environment variable RANK={rank}: WORLD_SIZE is not set; torchrun and deepspeed set "
                           "both, a single process neither (unset RANK)"])  # fmt: skip
    if world is not None and world > 1 and rank is None:
        raise OptionError([f"environment variable WORLD_SIZE={world}: RANK is not set; launch several processes "
                           "with torchrun, or unset WORLD_SIZE"])  # fmt: skip
    if world is not None and world > 1 and local_rank is None:  # on GPUs each process would take the first one
        raise OptionError([f"environment variable LOCAL_RANK: not set, and WORLD_SIZE={world} processes need it "
                           "(torchrun sets it)"])  # fmt: skip
    if local_world is not None and local_world > (world or 1):
        raise OptionError([f"environment variable LOCAL_WORLD_SIZE={local_world}: expected at most WORLD_SIZE "
                           f"({unset})"])  # fmt: skip
    if local_rank is not None:
        bound, name = (local_world, "LOCAL_WORLD_SIZE") if local_world is not None else ((rank or 0) + 1, "RANK + 1")
        if local_rank >= bound:
            raise OptionError([f"environment variable LOCAL_RANK={local_rank}: expected an integer in "
                               f"0..{bound - 1} (below {name})"])  # fmt: skip
        if torch.cuda.is_available() and local_rank >= torch.cuda.device_count():
            raise OptionError([f"environment variable LOCAL_RANK={local_rank}: this machine has "
                               f"{torch.cuda.device_count()} visible GPU(s) (CUDA_VISIBLE_DEVICES)"])  # fmt: skip
    port = os.environ.get("MASTER_PORT")
    if port and not (re.fullmatch(r"[0-9]{1,5}", port) and 1 <= int(port) <= 65535):
        raise OptionError([f"environment variable MASTER_PORT={shown(port)}: expected a TCP port in 1..65535"])
    if rank is not None:  # a launch: its processes meet at MASTER_ADDR:MASTER_PORT (the harness makes no group)
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
        if missing:
            raise OptionError([f"environment variable {missing[0]}: not set, and a launch of WORLD_SIZE={world} "
                               "process(es) needs it to meet (torchrun sets it)"])  # fmt: skip
    return Launch(rank or 0, world or 1, local_rank or 0, local_world)


def is_main_process() -> bool:
    """Rank 0 of a `deepspeed`/`torchrun` launch (or a single process) writes the run's files."""
    return launch().rank == 0


def deepspeed_config(choice: str) -> dict | None:
    """The ZeRO config as data (`spec/deepspeed/<name>.json` or a file), or None for a plain Trainer run."""
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
    if not path.exists():
        known = sorted(p.stem for p in DEEPSPEED_DIR.glob("*.json"))
        raise OptionError([f"{path}: --deepspeed: no such config (known: {', '.join(known)}, none, or a .json file)"])
    # bounded, regular, UTF-8, parsed once: a config that is a pipe would block, a huge one fill the memory
    config = read_json(path, MAX_CONFIG_BYTES, "DeepSpeed config", option="--deepspeed")
    if not isinstance(config, dict):
        raise OptionError([f"{path}: (top level): --deepspeed: expected a JSON object, got {type(config).__name__}"])
    zero = config.get("zero_optimization", {})
    stage = zero.get("stage") if isinstance(zero, dict) else None
    if stage not in (0, 1, 2) or isinstance(stage, bool):
        raise OptionError([f"{path}: zero_optimization.stage: --deepspeed: expected 0, 1 or 2, got {stage!r}"])
    check_recipe_keys(path, config)
    return {k: v for k, v in config.items() if not k.startswith("_")}


# What the spec's recipe decides: a config may only leave them to it ("auto"). Another value would either stop
# the Trainer after the output folder exists (a mismatch it refuses) or, for an optimizer or scheduler section,
# silently train with DeepSpeed's instead of the recipe's AdamW and schedule.
RECIPE_KEYS = ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
               "gradient_clipping")  # fmt: skip
MAX_CONFIG_BYTES = 1 << 20


def check_recipe_keys(path: Path, config: dict) -> None:
    for key in ("optimizer", "scheduler"):
        if key in config:
            raise OptionError([f"{path}: {key}: --deepspeed: the spec's recipe chooses the {key} (the Trainer's own); "
                               "remove this section"])  # fmt: skip
    for key in RECIPE_KEYS:
        if key in config and config[key] != "auto":
            raise OptionError([f"{path}: {key}: --deepspeed: expected \"auto\" (the spec's recipe sets it), "
                               f"got {config[key]!r}"])  # fmt: skip
    for section, allowed in (("bf16", ("auto",)), ("fp16", (False, "auto"))):
        value = config.get(section, {})
        enabled = value.get("enabled", allowed[0]) if isinstance(value, dict) else value
        if enabled not in allowed or (isinstance(enabled, int | float) and not isinstance(enabled, bool)):
            choices = " or ".join(json.dumps(a) for a in allowed)
            raise OptionError([f"{path}: {section}.enabled: --deepspeed: expected {choices} (the run sets the "
                               f"precision from the spec and the hardware; never fp16 for T5), "
                               f"got {enabled!r}"])  # fmt: skip


STALE_BUILD_S = 15 * 60  # a build of DeepSpeed's CPU op takes minutes; a lock idle this long has no builder


def check_deepspeed_build(name: str = "deepspeed_shm_comm") -> None:
    """On the CPU, DeepSpeed compiles its shared-memory op at first use, under a lock file that a killed
    build leaves behind (every later run would then wait forever): say so, and refuse a stale lock."""
    from torch.utils.cpp_extension import _get_build_directory

    folder = Path(_get_build_directory(name, verbose=False))
    lock = folder / "lock"
    if lock.exists():
        idle = time.time() - max([modified(p) for p in [lock, *folder.rglob("*")]])
        if idle > STALE_BUILD_S:
            raise OptionError([f"{lock}: --deepspeed: left by a build of DeepSpeed's {name} op that stopped "
                               f"(nothing in {folder} changed for {idle / 60:.0f} min): remove it, or run with "
                               "--deepspeed none"])  # fmt: skip
        log.warning("another process is building DeepSpeed's %s op (lock %s): waiting for it", name, lock)
    elif not any(folder.glob("*.so")):
        log.warning("DeepSpeed builds its %s op for the CPU on first use (once, cached in %s; "
                    "TORCH_EXTENSIONS_DIR moves it): this takes minutes", name, folder)  # fmt: skip


def modified(path: Path) -> float:
    """When `path` last changed; 0 for a file the build removed meanwhile (it then says nothing of idleness)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def device_of(name: str | None) -> str:
    """The device to run on: `name`, checked against this machine before anything is read or built (torch would
    say `Torch not compiled with CUDA enabled` only when the model moves), or cuda when there is one."""
    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise OptionError([f"--device: invalid device {name!r}: expected cpu, cuda, cuda:N (N = 0, 1, …) or mps"])
    if kind == "cuda" and not torch.cuda.is_available():
        raise OptionError([f"--device: {name}: no CUDA device is available here (torch.cuda.is_available() is "
                           "false); pass --device cpu"])  # fmt: skip
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise OptionError([f"--device: {name}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"])
    if kind == "mps" and not torch.backends.mps.is_available():
        raise OptionError([f"--device: {name}: no MPS device is available here; pass --device cpu"])
    return name


def device_and_precision(requested: str) -> tuple[str, bool]:
    """cuda if present, else cpu; bf16 where the hardware supports it and the spec allows, never fp16."""
    if torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported() and requested == "bf16"
        return f"cuda ({torch.cuda.get_device_name(0)})", bf16
    return "cpu", False
