"""Shared construction of the hypercomplex adapter family (PHM-Adapter, Compacter, Compacter++).

Each adapter is `A(y) = y + U(gelu_new(D(y)))` with D: k → d and U: d → k both PHM layers
(`y = x Σ A_i ⊗ B_i + b`), d = d_model / reduction_factor, placed on the chosen sub-layers' outputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from impl.methods._bottleneck import attach_bottleneck_adapters, bottleneck_size, divisors
from impl.registry import MethodArgumentError

if TYPE_CHECKING:  # torch and the PHM layers load when a model is built
    from torch import nn

    from impl.layers.phm import PHMLinear


def attach_phm_adapters(
    model: nn.Module,
    name: str,
    *,
    sublayers: Sequence[str],
    reduction_factor: int,
    n: int,
    rank: int | None,
    shared_phm_rule: bool,
    phm_rule_init_std: float,
    weight_init_gain: float,
    non_linearity: str,
    encoder_blocks: Sequence[int] | None = None,
    decoder_blocks: Sequence[int] | None = None,
) -> None:
    """Attach PHM bottleneck adapters named `name` at every chosen sub-layer of `model`.

    With `shared_phm_rule`, one `PHMRule` is registered as `model.<name>` and used by every PHM layer.
    """
    from impl.layers.phm import PHMLinear, PHMRule

    d_model = model.config.d_model
    d = bottleneck_size(model, reduction_factor)
    if n < 1 or d_model % n or d % n:
        raise MethodArgumentError(
            "n",
            f"{n} must divide d_model={d_model} and the bottleneck d={d} (d_model / reduction_factor); "
            f"the n that divide both: {divisors(math.gcd(d_model, d))}",
        )
    if rank is not None and rank < 1:
        raise MethodArgumentError("rank", f"must be a positive integer, got {rank}")
    if phm_rule_init_std <= 0:
        raise MethodArgumentError("phm_rule_init_std", f"must be positive, got {phm_rule_init_std}")
    if not weight_init_gain > 0:
        raise MethodArgumentError("weight_init_gain", f"the Glorot gain must be positive, got {weight_init_gain}")
    shared = None
    if shared_phm_rule:
        if hasattr(model, name):
            raise MethodArgumentError("shared_phm_rule", f"the model already has an attribute {name!r}")
        shared = PHMRule(n, phm_rule_init_std)

    def phm(in_features: int, out_features: int) -> PHMLinear:
        return PHMLinear(
            in_features,
            out_features,
            n,
            rank=rank,
            shared_rule=shared,
            rule_init_std=phm_rule_init_std,
            weight_init_gain=weight_init_gain,
        )

    attach_bottleneck_adapters(
        model,
        name,
        phm,
        sublayers=sublayers,
        reduction_factor=reduction_factor,
        non_linearity=non_linearity,
        encoder_blocks=encoder_blocks,
        decoder_blocks=decoder_blocks,
    )
    if shared is not None:  # registered once, after the adapters are in place
        model.add_module(name, shared)
