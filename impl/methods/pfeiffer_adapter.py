"""Pfeiffer-Adapter: the Houlsby adapter on one sub-layer per block, as the Compacter paper placed it.

    A(y) = y + U(gelu_new(D y + b_D)) + b_U

after the self-attention sub-layer only (the paper's choice; 24 adapters on t5-base), weights
N(0, 0.01²), zero biases. Pfeiffer et al. (2021) proposed one adapter per block; the Compacter paper's
configuration (and released code) puts it after self-attention, which is what this method reproduces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from impl.inject import SELF_ATTENTION
from impl.methods._bottleneck import NOT_MERGEABLE, attach_bottleneck_adapters, normal_linear, positive_std
from impl.registry import register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    from torch import nn


@register("pfeiffer_adapter", merge=NOT_MERGEABLE)
def build(
    model: nn.Module,
    *,
    reduction_factor: int = 32,
    init_std: float = 0.01,
    non_linearity: str = "gelu_new",
    encoder_blocks: tuple[int, ...] | None = None,
    decoder_blocks: tuple[int, ...] | None = None,
) -> None:
    """Pfeiffer-Adapter: Linear bottleneck adapters after self-attention only."""
    attach_bottleneck_adapters(
        model,
        "pfeiffer_adapter",
        normal_linear(positive_std(init_std)),
        sublayers=(SELF_ATTENTION,),
        reduction_factor=reduction_factor,
        non_linearity=non_linearity,
        encoder_blocks=encoder_blocks,
        decoder_blocks=decoder_blocks,
    )
