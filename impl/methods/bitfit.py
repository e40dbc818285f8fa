"""BitFit (Ben Zaken et al., 2021) on T5, which has no biases: add them, zero-initialised, and train only them.

    y = x W + b   for every q, k, v, o of self- and cross-attention and every wi (wi_0, wi_1), wo,
    y = LN(x) + b for every sub-layer layer norm (not the two final ones),
    logits = h E^T + b over the vocabulary (the lm_head),

with b = 0 at init, so the model's function is bit-identical to T5's until the first update. Each bias is
an `AddBias` registered as `<module>.bitfit` and added by a forward hook: T5's modules are not replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from impl.inject import PROJECTIONS, attach_after, sublayer_sites
from impl.registry import register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    from torch import nn

NAME = "bitfit"
NOT_MERGEABLE = "its biases have no slot: T5's projections, layer norms and lm_head have no bias"


def bias_targets(model: nn.Module) -> list[tuple[str, nn.Module, int]]:
    """(path, module, bias size) of every place BitFit adds a bias, in model order."""
    from torch import nn

    targets = []
    for stack in ("encoder", "decoder"):
        for block_index, block in enumerate(getattr(model, stack).block):
            for layer_index, layer in enumerate(block.layer):  # self-attn, [cross-attn,] feed-forward
                prefix = f"{stack}.block.{block_index}.layer.{layer_index}"
                for name, module in layer.named_modules():
                    leaf = name.rsplit(".", 1)[-1]
                    if isinstance(module, nn.Linear) and leaf in PROJECTIONS:
                        targets.append((f"{prefix}.{name}", module, module.out_features))
                targets.append((f"{prefix}.layer_norm", layer.layer_norm, layer.layer_norm.weight.shape[0]))
    targets.append(("lm_head", model.lm_head, model.lm_head.out_features))
    return targets


@register(NAME, merge=NOT_MERGEABLE)
def build(model: nn.Module) -> None:
    """BitFit: zero-initialised biases on every attention/FF projection, sub-layer layer norm and the lm_head."""
    from impl.layers.bias import AddBias

    sublayer_sites(model)  # fails early on a model that is not a T5 encoder-decoder
    for path, module, size in bias_targets(model):
        attach_after(module, module, NAME, AddBias(size), where=path)
