"""PHM-Adapter: PHM bottleneck adapters, full B_i and a rule A per layer.

Each adapter is A(y) = y + U(gelu_new(D(y))) with D, U PHM layers

    y = x (Σ_{i=1..n} A_i ⊗ B_i) + b,

every PHM layer with its own A ~ N(0, 0.01²), B_i Glorot-uniform (gain √2), b = 0, after self-attention
and feed-forward. The paper's t5-base setting is n = 12, d = 24: each PHM layer has kd/n + n³ weights.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from impl.inject import FEED_FORWARD, SELF_ATTENTION, Sublayer
from impl.methods._bottleneck import NOT_MERGEABLE
from impl.methods._hypercomplex import attach_phm_adapters
from impl.registry import register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    from torch import nn


@register("phm_adapter", merge=NOT_MERGEABLE)
def build(
    model: nn.Module,
    *,
    reduction_factor: int = 32,
    n: int = 12,
    shared_phm_rule: bool = False,
    phm_rule_init_std: float = 0.01,
    weight_init_gain: float = math.sqrt(2.0),
    non_linearity: str = "gelu_new",
    sublayers: tuple[Sublayer, ...] = (SELF_ATTENTION, FEED_FORWARD),
    encoder_blocks: tuple[int, ...] | None = None,
    decoder_blocks: tuple[int, ...] | None = None,
) -> None:
    """PHM-Adapter: PHM adapters (full B_i, a rule A per layer) after self-attention and FF."""
    attach_phm_adapters(
        model,
        "phm_adapter",
        sublayers=sublayers,
        reduction_factor=reduction_factor,
        n=n,
        rank=None,
        shared_phm_rule=shared_phm_rule,
        phm_rule_init_std=phm_rule_init_std,
        weight_init_gain=weight_init_gain,
        non_linearity=non_linearity,
        encoder_blocks=encoder_blocks,
        decoder_blocks=decoder_blocks,
    )
