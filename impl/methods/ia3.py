"""(IA)³ (Liu et al. 2022, arXiv 2205.05638), a reference method beyond the Compacter paper.

Three trained vectors per block rescale T5's activations,

    K ← l_k ⊙ K,   V ← l_v ⊙ V   (self-attention and cross-attention),   FF(x) = (l_ff ⊙ γ(W₁ x)) W₂,

all ones at init (the model starts exactly at T5): l_k, l_v on the outputs of k and v, l_ff on the input of
the feed-forward's output projection wo (γ(W₁ x), or gelu(W₀ x) ⊙ W₁ x in a gated feed-forward). This is the
paper's placement and `peft`'s default for T5 (target modules k, v, wo; wo a feed-forward module). Only
the vectors train: 129,024 on t5-base. They fold into the dense weights exactly: W_k ← diag(l_k) W_k,
W_v ← diag(l_v) W_v, W₂ ← W₂ diag(l_ff). Each vector is a `Rescale` registered as `<projection>.ia3`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from impl.inject import ProjectionName
from impl.registry import MethodArgumentError, register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    import torch
    from torch import nn

NAME = "ia3"


def merged_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The stock T5's parameters with W ← diag(l) W where l rescales the output, W ← W diag(l) where the input."""
    from impl.methods._dense import folded_state

    def fold(rescale: nn.Module, weight: torch.Tensor) -> torch.Tensor:  # (out, in)
        scale = rescale.scale.double()
        return weight * (scale[None, :] if rescale.side == "input" else scale[:, None])  # (1, in) or (out, 1)

    return folded_state(model, NAME, fold)


@register(NAME, merge=merged_state)
def build(
    model: nn.Module,
    *,
    targets: tuple[ProjectionName, ...] = ("k", "v", "wo"),
    scale_inputs_of: tuple[ProjectionName, ...] = ("wo",),
) -> None:
    """(IA)³: ones-initialised vectors rescale k's and v's outputs and wo's input (l_k, l_v, l_ff)."""
    from impl.inject import attach_after, attach_before, named_projections
    from impl.layers.rescale import Rescale

    try:
        projections = named_projections(model, targets)
    except ValueError as error:
        raise MethodArgumentError("targets", str(error)) from error
    outside = sorted(set(scale_inputs_of) - set(targets))
    if outside:
        raise MethodArgumentError("scale_inputs_of", f"{outside} are not among the targets {list(targets)}")
    for path, linear in projections:
        if path.rsplit(".", 1)[-1] in scale_inputs_of:  # l_ff: on γ(W₁ x), the input of W₂
            attach_before(linear, linear, NAME, Rescale(linear.in_features, "input"), where=path)
        else:  # l_k, l_v: on the projection's output
            attach_after(linear, linear, NAME, Rescale(linear.out_features, "output"), where=path)
