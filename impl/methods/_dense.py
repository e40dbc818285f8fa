"""What the methods that act on T5's dense layers (LoRA, (IA)³) share: folding a module held by a dense layer
into that layer's weight, W ← fold(M, W), to give the stock T5's parameters (their merge rule)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads when a model is merged: listing and validating methods never import it
    import torch
    from torch import nn


def folded_state(
    model: nn.Module, name: str, fold: Callable[[nn.Module, torch.Tensor], torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The stock T5's parameters of `model`: every dense weight W (out, in) holding a module `<layer>.<name>` M
    replaced by fold(M, W) computed in float64 and rounded once to W's dtype, every other parameter copied, and
    the method's own parameters left out."""
    import torch

    suffix = f".{name}"
    held = {path.removesuffix(suffix): module for path, module in model.named_modules() if path.endswith(suffix)}
    state = {}
    with torch.no_grad():
        for path, parameter in model.named_parameters():
            if name in path.split("."):
                continue
            owner, _, leaf = path.rpartition(".")
            if owner in held and leaf == "weight":
                state[path] = fold(held[owner], parameter.double()).to(parameter.dtype)  # (out, in)
            else:
                state[path] = parameter.detach().clone()
    return state
