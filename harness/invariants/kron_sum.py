"""`kron_sum`: a PHM layer computes exactly y = x (Σ_i A_i ⊗ B_i) + b, checked against torch.kron.

Every algorithm the layer can run (`PHMLinear.algorithms()`: materialising H, or the factored LPHM
products) is checked, not only the one its "auto" rule picks for the drawn shape.
"""

from __future__ import annotations

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.invariants.context import CheckContext, InvariantViolation
from harness.invariants.registry import NoOptions, invariant
from harness.invariants.strategies import PHMCase, phm_cases
from impl.layers.phm import PHMLinear, PHMRule

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}


def explicit_kron_sum(layer: PHMLinear, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Σ_i torch.kron(A_i, B_i) with B_i = s_i t_iᵀ spelled out, in `dtype` (default the layer's): the reference,
    independent of the layer's algorithm."""
    dtype = dtype or layer.rule.dtype
    a = layer.rule.to(dtype)
    if layer.rank is None:
        b = layer.phm_weight.to(dtype)
    else:
        s, t = layer.phm_weight_left.to(dtype), layer.phm_weight_right.to(dtype)
        b = torch.stack([s[i] @ t[i] for i in range(layer.n)])
    return sum(torch.kron(a[i], b[i]) for i in range(layer.n))


def randomise(layer: PHMLinear, generator: torch.Generator) -> None:
    """Unit-scale values everywhere (A included, bias non-zero), so no term can vanish by its init."""
    with torch.no_grad():
        for p in [*layer.parameters(), layer.rule]:
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype))


def assert_matches(layer: PHMLinear, x: torch.Tensor, what: str) -> None:
    """The layer's output under each of its algorithms equals x Σ kron(A_i, B_i) + b."""
    with torch.no_grad():
        want = x @ explicit_kron_sum(layer) + layer.bias
    scale = want.abs().max().clamp_min(1.0)
    chosen = layer.algorithm
    try:
        for algorithm in layer.algorithms():
            layer.algorithm = algorithm
            with torch.no_grad():
                got = layer(x)
            error = ((got - want).abs().max() / scale).item() if got.shape == want.shape else float("inf")
            if error > TOLERANCE[x.dtype]:
                raise InvariantViolation(
                    f"{what} ({algorithm}): output differs from x Σ kron(A_i, B_i) + b by {error:.3g} (relative)"
                )
    finally:
        layer.algorithm = chosen


def check_case(case: PHMCase, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    shared = PHMRule(case.n, init_std=0.01) if case.shared else None
    layer = PHMLinear(case.in_features, case.out_features, case.n, rank=case.rank, shared_rule=shared)
    layer = layer.to(case.dtype)
    if shared is not None:
        shared.to(case.dtype)
    randomise(layer, generator)
    x = torch.randn((*case.batch_shape, case.in_features), generator=generator, dtype=case.dtype)
    assert_matches(layer, x, f"PHMLinear {case}")


@invariant("kron_sum")
def kron_sum(ctx: CheckContext, options: NoOptions) -> str:
    spec_n = ctx.method_args["n"]
    spec_rank = ctx.method_args.get("rank")
    spec_case = PHMCase(spec_n, 3, 2, spec_rank, ctx.method_args["shared_phm_rule"], (2, 3), torch.float32)

    @settings(deadline=None)
    @given(case=phm_cases() | phm_cases(n=spec_n), seed=st.integers(0, 2**16))
    @example(case=spec_case, seed=0)
    def property_holds(case: PHMCase, seed: int) -> None:
        check_case(case, seed)

    property_holds()

    model = ctx.method_model().model.to(torch.float64)
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, PHMLinear)]
    if not layers:
        raise InvariantViolation(f"{ctx.method_name} built no PHM layer")
    generator = torch.Generator().manual_seed(0)
    for name, layer in layers:
        randomise(layer, generator)
        x = torch.randn(2, 3, layer.in_features, generator=generator, dtype=torch.float64)
        assert_matches(layer, x, name)
    chosen = sorted({layer.chosen_algorithm() for _, layer in layers})
    return (
        f"hypothesis-drawn layers and all {len(layers)} PHM layers of the model equal Σ kron(A_i, B_i) under every "
        f"algorithm (auto runs {', '.join(chosen)})"
    )
