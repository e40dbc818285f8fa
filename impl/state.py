"""Save and load only the trainable tensors (the adapter, plus e.g. layer norms) in safetensors.

A checkpoint holds exactly the parameters with `requires_grad`, under their `named_parameters()` names
(a shared tensor once). Loading checks the names and shapes match the model's trainable set exactly,
so a checkpoint from another method or another configuration is refused, never half-applied.

A module may add to the file's metadata what its tensors mean only together with something not saved
(Intrinsic-SAID: the seed its random projections are drawn from) by defining `checkpoint_metadata() ->
dict[str, str]`, and refuse a checkpoint by defining `checkpoint_mismatch(metadata) -> str | None`.
"""

from __future__ import annotations

import stat
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn


class CheckpointMismatchError(ValueError):
    """The checkpoint's tensors do not match the model's trainable parameters."""


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """name -> tensor for every trainable parameter (contiguous CPU copies)."""
    return {name: p.detach().to("cpu").contiguous() for name, p in model.named_parameters() if p.requires_grad}


def module_metadata(model: nn.Module) -> dict[str, str]:
    """What the model's modules ask to store beside their tensors (their `checkpoint_metadata()`)."""
    metadata: dict[str, str] = {}
    for module in model.modules():
        provide = getattr(module, "checkpoint_metadata", None)
        if callable(provide):
            metadata.update(provide())
    return metadata


def save_trainable(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write the trainable tensors to `path` (safetensors); refuses to overwrite an existing file."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; remove it or choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(model), str(path), metadata={**module_metadata(model), **(metadata or {})})
    return path


def load_trainable(model: nn.Module, path: str | Path) -> dict[str, str]:
    """Copy the tensors of `path` into the model's trainable parameters; returns the file's metadata.

    Nothing is copied until every check passed: the names, the modules' metadata, each tensor's shape and
    kind (a floating-point tensor for a floating-point parameter: `copy_` would silently cast integers or
    booleans). A file that is no safetensors file (truncated, garbage, a header of bad JSON) or no regular
    file (a pipe would block) is a CheckpointMismatchError too, in one line.
    """
    path = Path(path)
    parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
    try:
        mode = path.stat().st_mode
    except OSError as error:
        why = error.strerror or error
        raise CheckpointMismatchError(f"{path}: cannot read the checkpoint's tensors: {why}") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a pipe, socket or device"
        raise CheckpointMismatchError(f"{path}: {kind}, not a safetensors file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            keys = set(handle.keys())
            missing, unexpected = sorted(parameters.keys() - keys), sorted(keys - parameters.keys())
            if missing or unexpected:
                raise CheckpointMismatchError(
                    f"{path}: {len(missing)} trainable parameter(s) missing (e.g. {missing[:3]}), "
                    f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"
                )
            metadata = handle.metadata() or {}
            for module in model.modules():
                check = getattr(module, "checkpoint_mismatch", None)
                problem = check(metadata) if callable(check) else None
                if problem:
                    raise CheckpointMismatchError(f"{path}: {problem}")
            tensors = {name: handle.get_tensor(name) for name in sorted(keys)}  # each bounded by the file's size
    except CheckpointMismatchError:
        raise
    except Exception as error:  # safetensors' SafetensorError (not exported), OSError, a dtype torch lacks
        why = " ".join(str(error).split())[:300] or type(error).__name__
        raise CheckpointMismatchError(f"{path}: not a readable safetensors file ({why})") from None
    for name, tensor in tensors.items():
        if tensor.shape != parameters[name].shape:
            raise CheckpointMismatchError(
                f"{path}: {name} has shape {tuple(tensor.shape)}, model expects {tuple(parameters[name].shape)}"
            )
        if parameters[name].is_floating_point() and not tensor.is_floating_point():
            raise CheckpointMismatchError(
                f"{path}: {name} holds {tensor.dtype} values, model expects floating-point ({parameters[name].dtype})"
            )
    with torch.no_grad():
        for name, tensor in tensors.items():
            parameters[name].copy_(tensor)
    return metadata
