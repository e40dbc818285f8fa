"""Adapter (Houlsby et al., 2019), the paper's baseline: a bottleneck after self-attention and feed-forward.

    A(y) = y + U(gelu_new(D y + b_D)) + b_U,   D ∈ R^{d×k}, U ∈ R^{k×d},

on the output of both sub-layers of every block (48 adapters on t5-base), weights N(0, 0.01²) and zero
biases as in the released code; d = k / reduction_factor = 24. Each adapter has 2kd + d + k parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from impl.inject import FEED_FORWARD, SELF_ATTENTION, Sublayer
from impl.methods._bottleneck import NOT_MERGEABLE, attach_bottleneck_adapters, normal_linear, positive_std
from impl.registry import register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    from torch import nn


@register("adapter", merge=NOT_MERGEABLE)
def build(
    model: nn.Module,
    *,
    reduction_factor: int = 32,
    init_std: float = 0.01,
    non_linearity: str = "gelu_new",
    sublayers: tuple[Sublayer, ...] = (SELF_ATTENTION, FEED_FORWARD),
    encoder_blocks: tuple[int, ...] | None = None,
    decoder_blocks: tuple[int, ...] | None = None,
) -> None:
    """Adapter (Houlsby): Linear bottleneck adapters after self-attention and feed-forward."""
    attach_bottleneck_adapters(
        model,
        "adapter",
        normal_linear(positive_std(init_std)),
        sublayers=sublayers,
        reduction_factor=reduction_factor,
        non_linearity=non_linearity,
        encoder_blocks=encoder_blocks,
        decoder_blocks=decoder_blocks,
    )
