"""Compacter: LPHM bottleneck adapters after self-attention and feed-forward.

Each adapter is A(y) = y + U(gelu_new(D(y))) with D, U low-rank PHM layers

    y = x (Σ_{i=1..n} A_i ⊗ (s_i t_iᵀ)) + b,

one rule A ∈ R^{n×n×n} shared by every PHM layer of the model (registered once as `compacter.phm_rule`),
A ~ N(0, 1e-4²), s_i, t_i Glorot-uniform (gain √2), b = 0. The paper's t5-base setting is n = 4,
r = 1, d = 768 / 32 = 24: 4L(k + d) + n³ adapter weights plus biases (the paper's count).
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


@register("compacter", merge=NOT_MERGEABLE)
def build(
    model: nn.Module,
    *,
    reduction_factor: int = 32,
    n: int = 4,
    rank: int = 1,
    shared_phm_rule: bool = True,
    phm_rule_init_std: float = 1e-4,
    weight_init_gain: float = math.sqrt(2.0),
    non_linearity: str = "gelu_new",
    sublayers: tuple[Sublayer, ...] = (SELF_ATTENTION, FEED_FORWARD),
    encoder_blocks: tuple[int, ...] | None = None,
    decoder_blocks: tuple[int, ...] | None = None,
) -> None:
    """Compacter: low-rank PHM adapters (shared rule A, B_i = s_i t_iᵀ) after self-attention and FF."""
    attach_phm_adapters(
        model,
        "compacter",
        sublayers=sublayers,
        reduction_factor=reduction_factor,
        n=n,
        rank=rank,
        shared_phm_rule=shared_phm_rule,
        phm_rule_init_std=phm_rule_init_std,
        weight_init_gain=weight_init_gain,
        non_linearity=non_linearity,
        encoder_blocks=encoder_blocks,
        decoder_blocks=decoder_blocks,
    )
