"""Shared construction of the hypercomplex adapter family (PHM-Adapter, Compacter, Compacter++).

Each adapter is `A(y) = y + U(gelu_new(D(y)))` with D: k → d and U: d → k both PHM layers
(`y = x Σ A_i ⊗ B_i + b`), d = d_model / reduction_factor, placed on the chosen sub-layers' outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn
from transformers.activations import ACT2FN

from impl.inject import attach_everywhere, sublayer_sites
from impl.layers.bottleneck import BottleneckAdapter
from impl.layers.phm import PHMLinear, PHMRule
from impl.registry import MethodArgumentError


def bottleneck_size(model: nn.Module, reduction_factor: int) -> int:
    """d = d_model / reduction_factor, which must be a whole number."""
    d_model = model.config.d_model
    if reduction_factor < 1 or d_model % reduction_factor:
        raise MethodArgumentError(
            "reduction_factor", f"{reduction_factor} must be a positive divisor of d_model={d_model}"
        )
    return d_model // reduction_factor


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
    d_model = model.config.d_model
    d = bottleneck_size(model, reduction_factor)
    if n < 1 or d_model % n or d % n:
        raise MethodArgumentError(
            "n", f"{n} must divide d_model={d_model} and the bottleneck d={d} (d_model / reduction_factor)"
        )
    if rank is not None and rank < 1:
        raise MethodArgumentError("rank", f"must be a positive integer, got {rank}")
    if phm_rule_init_std <= 0:
        raise MethodArgumentError("phm_rule_init_std", f"must be positive, got {phm_rule_init_std}")
    if non_linearity not in ACT2FN:
        raise MethodArgumentError("non_linearity", f"unknown activation {non_linearity!r}")
    try:
        sites = sublayer_sites(model, sublayers)
    except ValueError as error:
        raise MethodArgumentError("sublayers", str(error)) from error
    if not sites:
        raise MethodArgumentError("sublayers", "must name at least one sub-layer")
    for stack, chosen in (("encoder", encoder_blocks), ("decoder", decoder_blocks)):
        try:
            sublayer_sites(model, sublayers, {stack: chosen})
        except ValueError as error:
            raise MethodArgumentError(f"{stack}_blocks", str(error)) from error
    shared = None
    if shared_phm_rule:
        if hasattr(model, name):
            raise MethodArgumentError("shared_phm_rule", f"the model already has an attribute {name!r}")
        shared = PHMRule(n, phm_rule_init_std)
        model.add_module(name, shared)

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

    def adapter(_site) -> BottleneckAdapter:
        return BottleneckAdapter(phm(d_model, d), phm(d, d_model), non_linearity)

    attach_everywhere(model, name, adapter, sublayers, {"encoder": encoder_blocks, "decoder": decoder_blocks})
