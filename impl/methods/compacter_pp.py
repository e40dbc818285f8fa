"""Compacter++: Compacter adapters after the feed-forward sub-layer only.

Same layers and inits as Compacter, y = x (Σ_i A_i ⊗ s_i t_iᵀ) + b with one shared A, but only on the
output of T5LayerFF (24 adapters, 48 PHM layers on t5-base), following Pfeiffer et al. (2021), who found
the feed-forward position enough.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from impl.inject import FEED_FORWARD
from impl.methods._bottleneck import NOT_MERGEABLE
from impl.methods._hypercomplex import attach_phm_adapters
from impl.registry import register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    from torch import nn


@register("compacter_pp", merge=NOT_MERGEABLE)
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
    encoder_blocks: tuple[int, ...] | None = None,
    decoder_blocks: tuple[int, ...] | None = None,
) -> None:
    """Compacter++: low-rank PHM adapters (shared rule A) after the feed-forward sub-layer only."""
    attach_phm_adapters(
        model,
        "compacter_pp",
        sublayers=[FEED_FORWARD],
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
