"""`rank_at_most`: a low-rank layer's weight W = w_l w_r has rank ≤ r, and the layer computes x W + b."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.invariants.context import CheckContext, InvariantViolation
from harness.invariants.registry import NoOptions, invariant
from impl.layers.low_rank import LowRankLinear


def check_layer(layer: LowRankLinear, rank: int, what: str, generator: torch.Generator) -> None:
    layer = layer.double()  # float64 products of float32 values are exact: no rounding noise in the rank
    weight = layer.weight().detach()  # (in, out)
    if weight.shape != (layer.in_features, layer.out_features):
        raise InvariantViolation(f"{what}: W has shape {tuple(weight.shape)}")
    found = int(torch.linalg.matrix_rank(weight))
    if found > rank:
        raise InvariantViolation(f"{what}: rank(W) = {found} > r = {rank}")
    x = torch.randn(3, layer.in_features, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        layer.bias.copy_(torch.randn(layer.out_features, generator=generator, dtype=torch.float64))  # not 0
        got = layer(x)
        want = x @ (layer.weight_left @ layer.weight_right) + layer.bias
    if not torch.allclose(got, want, rtol=1e-10, atol=1e-12):
        raise InvariantViolation(f"{what}: output differs from x w_l w_r + b")


@invariant("rank_at_most")
def rank_at_most(ctx: CheckContext, options: NoOptions) -> str:
    @settings(deadline=None)
    @given(
        in_features=st.integers(1, 40),
        out_features=st.integers(1, 40),
        rank=st.integers(1, 6),
        seed=st.integers(0, 2**16),
    )
    def property_holds(in_features: int, out_features: int, rank: int, seed: int) -> None:
        torch.manual_seed(seed)
        layer = LowRankLinear(in_features, out_features, rank=rank)
        check_layer(layer, rank, f"LowRankLinear({in_features}, {out_features}, r={rank})", torch.Generator())

    property_holds()
    rank = ctx.method_args["rank"]
    layers = [(n, m) for n, m in ctx.method_model().model.named_modules() if isinstance(m, LowRankLinear)]
    if not layers:
        raise InvariantViolation(f"{ctx.method_name} built no low-rank layer")
    generator = torch.Generator().manual_seed(0)
    for name, layer in layers:
        check_layer(layer, rank, name, generator)
    return f"hypothesis-drawn layers and all {len(layers)} low-rank layers of the model have rank(W) ≤ {rank}"
