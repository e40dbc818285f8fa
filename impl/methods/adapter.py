"""Adapter (Houlsby et al., 2019), the paper's baseline: a bottleneck after self-attention and feed-forward.

    A(y) = y + U(gelu_new(D y + b_D)) + b_U,   D ∈ R^{d×k}, U ∈ R^{k×d},

on the output of both sub-layers of every block (48 adapters on t5-base), weights N(0, 0.01²) and zero
biases as in the released code; d = k / reduction_factor = 24. Each adapter has 2kd + d + k parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from impl.inject import FEED_FORWARD, SELF_ATTENTION
from impl.methods._bottleneck import attach_bottleneck_adapters, normal_linear
from impl.registry import MethodArgumentError, register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    from torch import nn

Sublayer = Literal["self_attention", "feed_forward"]


def positive_std(init_std: float) -> float:
    if not init_std > 0:
        raise MethodArgumentError("init_std", f"must be positive, got {init_std}")
    return init_std


@register("adapter")
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
