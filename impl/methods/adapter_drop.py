"""AdapterDrop (Rücklé et al., 2021): Houlsby adapters without the lower blocks, plus inference-time dropping.

Static variant (the Compacter paper's): A(y) = y + U(gelu_new(D y + b_D)) + b_U after self-attention and
feed-forward of blocks 5–11 of both the encoder and the decoder only (28 adapters on t5-base).

`skip_layers` is what AdapterDrop's authors proposed for inference: disable the adapters of chosen
blocks (A(y) = y there) to trade accuracy for speed; the result equals a model built without them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from impl.inject import FEED_FORWARD, SELF_ATTENTION, Sublayer
from impl.methods._bottleneck import (
    NOT_MERGEABLE,
    adapters_in_blocks,
    attach_bottleneck_adapters,
    normal_linear,
    positive_std,
)
from impl.registry import register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    from torch import nn

NAME = "adapter_drop"
PAPER_BLOCKS = (5, 6, 7, 8, 9, 10, 11)


@register(NAME, merge=NOT_MERGEABLE)
def build(
    model: nn.Module,
    *,
    reduction_factor: int = 32,
    init_std: float = 0.01,
    non_linearity: str = "gelu_new",
    sublayers: tuple[Sublayer, ...] = (SELF_ATTENTION, FEED_FORWARD),
    encoder_blocks: tuple[int, ...] = PAPER_BLOCKS,
    decoder_blocks: tuple[int, ...] = PAPER_BLOCKS,
) -> None:
    """AdapterDrop: Linear adapters after self-attention and FF, only in blocks 5–11 of each stack."""
    attach_bottleneck_adapters(
        model,
        NAME,
        normal_linear(positive_std(init_std)),
        sublayers=sublayers,
        reduction_factor=reduction_factor,
        non_linearity=non_linearity,
        encoder_blocks=encoder_blocks,
        decoder_blocks=decoder_blocks,
    )


def skip_layers(model: nn.Module, encoder: Iterable[int] = (), decoder: Iterable[int] = ()) -> int:
    """Drop the adapters of exactly these blocks (re-enable all others); returns how many are skipped.

    `skip_layers(model)` restores every adapter. A block without an AdapterDrop adapter is an error.
    """
    from impl.layers.bottleneck import BottleneckAdapter

    chosen = {"encoder": sorted(set(encoder)), "decoder": sorted(set(decoder))}
    for stack, indices in chosen.items():
        for index in indices:
            if not adapters_in_blocks(model, NAME, {stack: [index]}):
                raise ValueError(f"{stack} block {index} has no {NAME} adapter to skip")
    skipped = {id(a) for a in adapters_in_blocks(model, NAME, chosen)}
    for module in model.modules():
        for child_name, child in module.named_children():
            if child_name == NAME and isinstance(child, BottleneckAdapter):
                child.enabled = id(child) not in skipped
    return len(skipped)
