"""What a resumable checkpoint holds beside the trainable tensors, written and read back without pickle.

- the harness's own state is never pickled: the optimizer's moments and the random generators' states are
  safetensors; the scheduler and the optimizer's hyper-parameters are JSON, each checked as
  `harness.train.checkpoint` checks it before it is read. No `torch.load` on this path;
- DeepSpeed's engine files (`global_step*/*.pt`, its own format) are read with `torch.load(weights_only=True)`
  and only the three DeepSpeed classes they contain allowed (`deepspeed_checkpoint_classes`): a pickle that
  asks for anything else fails to load and runs nothing. They hold the trainable tensors, their fp32 masters
  and the optimizer moments, never the frozen backbone (`exclude_frozen_parameters`).
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from harness.errors import OutputDirError
from harness.train.checkpoint import (
    OPTIMIZER,
    SCHEDULER,
    check_optimizer,
    check_rng,
    check_scheduler,
    read_checkpoint_json,
)


def _tensors_and_scalars(state: dict[int, dict[str, Any]]) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    tensors, scalars = {}, {}
    for index, entries in state.items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, scalars


def save_optimizer(optimizer, folder: Path) -> None:
    """optimizer.safetensors (each parameter's moments and step) + optimizer.json (groups, scalars)."""
    state = optimizer.state_dict()  # {"state": {param index: {name: tensor}}, "param_groups": [...]}
    tensors, scalars = _tensors_and_scalars(state["state"])
    save_file(tensors, str(folder / f"{OPTIMIZER}.safetensors"))
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in group.items()} for group in state["param_groups"]]
    (folder / f"{OPTIMIZER}.json").write_text(json.dumps({"param_groups": groups, "scalars": scalars}), "utf-8")


def load_optimizer(optimizer, folder: Path) -> None:
    """The inverse of save_optimizer (tuples where the optimizer's own groups hold tuples, e.g. betas)."""
    meta = read_checkpoint_json(folder / f"{OPTIMIZER}.json")
    check_optimizer(folder / f"{OPTIMIZER}.json", meta)
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in load_file(str(folder / f"{OPTIMIZER}.safetensors")).items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = tensor
    for index, entries in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    current = optimizer.state_dict()["param_groups"]
    if len(current) != len(meta["param_groups"]):
        raise OutputDirError([f"{folder}: --resume: the optimizer has {len(current)} parameter groups, "
                         f"the checkpoint {len(meta['param_groups'])}"])  # fmt: skip
    groups = [{k: tuple(v) if isinstance(mine.get(k), tuple) else v for k, v in saved.items()}
              for mine, saved in zip(current, meta["param_groups"], strict=True)]  # fmt: skip
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_scheduler(scheduler, folder: Path) -> None:
    (folder / SCHEDULER).write_text(json.dumps(scheduler.state_dict()), encoding="utf-8")


def load_scheduler(scheduler, folder: Path) -> None:
    """The schedule's position. `load_state_dict` sets every key as an attribute: only the keys this scheduler
    has are taken (a planted key would change how it computes the learning rate)."""
    state = read_checkpoint_json(folder / SCHEDULER)
    check_scheduler(folder / SCHEDULER, state)
    unknown = sorted(set(state) - set(scheduler.state_dict()))
    if unknown:
        raise OutputDirError([f"{folder / SCHEDULER}: {unknown[0]}: not a field of the learning-rate schedule"])
    scheduler.load_state_dict(state)


def rng_name(rank: int | None) -> str:
    return "rng_state" if rank is None else f"rng_state_{rank}"


def save_rng(folder: Path, rank: int | None) -> None:
    """This process's generators: Python's and NumPy's Mersenne Twisters, torch's CPU and CUDA states."""
    version, python_state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    tensors = {"numpy_keys": torch.from_numpy(keys.astype(np.int64)), "cpu": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.random.get_rng_state_all())})
    meta = {"python": [version, list(python_state), gauss], "numpy": [kind, position, has_gauss, cached]}
    save_file(tensors, str(folder / f"{rng_name(rank)}.safetensors"))
    (folder / f"{rng_name(rank)}.json").write_text(json.dumps(meta), encoding="utf-8")


def load_rng(folder: Path, rank: int | None) -> bool:
    """Restore what save_rng wrote; False if this process has no file there (another world size)."""
    if not (folder / f"{rng_name(rank)}.json").is_file():
        return False
    meta = read_checkpoint_json(folder / f"{rng_name(rank)}.json")
    check_rng(folder / f"{rng_name(rank)}.json", meta)
    tensors = load_file(str(folder / f"{rng_name(rank)}.safetensors"))
    version, python_state, gauss = meta["python"]
    random.setstate((version, tuple(python_state), gauss))
    kind, position, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["numpy_keys"].numpy().astype(np.uint32), position, has_gauss, cached))
    torch.random.set_rng_state(tensors["cpu"])
    cuda = [tensors[f"cuda.{i}"] for i in range(torch.cuda.device_count()) if f"cuda.{i}" in tensors]
    if cuda:
        torch.cuda.random.set_rng_state_all(cuda)
    return True


def deepspeed_checkpoint_classes() -> list[type]:
    """The only classes DeepSpeed's ZeRO-1/2 engine files may name (found with
    `torch.serialization.get_unsafe_globals_in_checkpoint` on its optimizer-state file)."""
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [ZeroStageEnum, fragment_address, LossScaler]


@contextlib.contextmanager
def trainable_engine_state(engine) -> Iterator[None]:
    """Within: `engine` (a DeepSpeedEngine) saves no frozen tensor in its module file. Its own
    `exclude_frozen_parameters` misses the tied aliases of a frozen tensor (T5's embeddings under three names)."""
    module_state_dict = engine.module_state_dict

    def trainable_only(*args, **kwargs):
        state = module_state_dict(*args, **kwargs)
        for name, parameter in engine.module.named_parameters(remove_duplicate=False):
            if not parameter.requires_grad:
                state.pop(name, None)
        return state

    engine.module_state_dict = trainable_only
    try:
        yield
    finally:
        del engine.module_state_dict  # the class's own method again


@contextlib.contextmanager
def weights_only_engine(engine) -> Iterator[None]:
    """Within: `engine` (a DeepSpeedEngine) reads its files with `torch.load(weights_only=True)`."""
    checkpoint_engine = engine.checkpoint_engine
    allowed = deepspeed_checkpoint_classes()

    def load(path: str, map_location=None):
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location=map_location, weights_only=True)

    checkpoint_engine.load = load
    try:
        yield
    finally:
        del checkpoint_engine.load  # the class's own method again
