"""LoRA (Hu et al. 2021, arXiv 2106.09685), a reference method beyond the Compacter paper.

Each chosen dense layer W₀ of T5 (frozen) gains a trained low-rank update,

    h = W₀ x + (α / r) B A x,   A ∈ R^{r×in} ~ U(−1/√in, 1/√in),   B ∈ R^{out×r} = 0,

on q and v of every self-attention and cross-attention (the paper's choice in §7.1 and `peft`'s default for
T5), r = α = 8 (`peft`'s defaults; the paper sets α to the first r it tries and does not tune it), no LoRA
dropout (`peft`'s default: a run's dropouts are T5's, at the recipe's rate). Only A and B train: r·(in + out)
per layer, 884,736 on t5-base. The update folds into W₀ exactly: W = W₀ + (α/r) B A. Each update is a
`LoRAUpdate` registered as `<projection>.lora` and added by a forward hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from impl.inject import ProjectionName
from impl.registry import MethodArgumentError, register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    import torch
    from torch import nn

NAME = "lora"


def merged_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The stock T5's parameters with every adapted W₀ replaced by W₀ + (α/r) B A (computed in float64)."""
    from impl.methods._dense import folded_state

    def fold(update: nn.Module, weight: torch.Tensor) -> torch.Tensor:  # (out, in)
        return weight + update.weight_b.double() @ update.weight_a.double() * update.scaling  # (out, r) @ (r, in)

    return folded_state(model, NAME, fold)


@register(NAME, merge=merged_state)
def build(
    model: nn.Module,
    *,
    rank: int = 8,
    alpha: float = 8.0,
    targets: tuple[ProjectionName, ...] = ("q", "v"),
) -> None:
    """LoRA: h = W₀ x + (α/r) B A x on the target projections (q, v of every attention), B = 0 at init."""
    from impl.inject import attach_beside, named_projections
    from impl.layers.lora import LoRAUpdate

    if rank < 1:
        raise MethodArgumentError("rank", f"must be a positive integer, got {rank}")
    if not alpha > 0:
        raise MethodArgumentError("alpha", f"must be positive, got {alpha}")
    try:
        projections = named_projections(model, targets)
    except ValueError as error:
        raise MethodArgumentError("targets", str(error)) from error
    for path, linear in projections:
        update = LoRAUpdate(linear.in_features, linear.out_features, rank, alpha)
        attach_beside(linear, linear, NAME, update, where=path)
