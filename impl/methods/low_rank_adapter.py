"""Adapter-LowRank: the Houlsby adapter with every weight of rank r (the paper's r = 1).

    A(y) = y + U(gelu_new(D y + b_D)) + b_U,   D = w_l^D w_r^D,  U = w_l^U w_r^U,

w_l ∈ R^{in×r}, w_r ∈ R^{r×out} Glorot-uniform (gain √2), biases 0, after self-attention and
feed-forward (48 adapters on t5-base): (k + d + d) + (d + k + k) parameters per adapter at r = 1.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from impl.inject import FEED_FORWARD, SELF_ATTENTION, Sublayer
from impl.methods._bottleneck import NOT_MERGEABLE, attach_bottleneck_adapters
from impl.registry import MethodArgumentError, register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    from torch import nn

    from impl.layers.low_rank import LowRankLinear


@register("low_rank_adapter", merge=NOT_MERGEABLE)
def build(
    model: nn.Module,
    *,
    reduction_factor: int = 32,
    rank: int = 1,
    weight_init_gain: float = math.sqrt(2.0),
    non_linearity: str = "gelu_new",
    sublayers: tuple[Sublayer, ...] = (SELF_ATTENTION, FEED_FORWARD),
    encoder_blocks: tuple[int, ...] | None = None,
    decoder_blocks: tuple[int, ...] | None = None,
) -> None:
    """Adapter-LowRank: bottleneck adapters whose weights are rank-r products w_l w_r."""
    if rank < 1:
        raise MethodArgumentError("rank", f"must be a positive integer, got {rank}")
    if not weight_init_gain > 0:
        raise MethodArgumentError("weight_init_gain", f"the Glorot gain must be positive, got {weight_init_gain}")

    def low_rank(in_features: int, out_features: int) -> LowRankLinear:
        from impl.layers.low_rank import LowRankLinear

        return LowRankLinear(in_features, out_features, rank=rank, weight_init_gain=weight_init_gain)

    attach_bottleneck_adapters(
        model,
        "low_rank_adapter",
        low_rank,
        sublayers=sublayers,
        reduction_factor=reduction_factor,
        non_linearity=non_linearity,
        encoder_blocks=encoder_blocks,
        decoder_blocks=decoder_blocks,
    )
