"""`fastfood_linear`: a Fastfood projection is the linear map of its formula, with an exact transpose and gradient.

For z ∈ R^n, D outputs, L = 2^⌈log2 D⌉ and the draws (B, π, G) of a projection's seed,

    P(z) = [H G Π H B pad_L(z)]_{1..D} / (‖G‖ √D),     (Π v)_j = v[π(j)],

with H scipy's Sylvester Hadamard matrix (unnormalised), B = diag(sign), G = diag(gaussian), and pad_L(z) z
zero-padded to L entries, or truncated to its first L when n > L. Π gathers: `FastfoodBank` documents
(Π H B pad z)_j = w[π(j) mod p] with w one period of the p-periodic H B pad z, i.e. v[π(j)], the
intrinsic-dimension code's `mul_2[Pi]`. For hypothesis-drawn n, D, seeds and dtypes a `FastfoodBank`

- is linear: P(a z₁ + b z₂) = a P(z₁) + b P(z₂);
- equals the formula, computed densely in float64 (no code shared with the bank) from draws made here, by
  the documented recipe — one CPU generator seeded with the seed draws B's signs uniformly from {−1, +1}
  (d = min(n, L) of them), then π uniformly among the permutations of 0..L−1, then G's L entries N(0, 1)
  in float32, stored rounded to float16 — so a wrong law in the implementation's draws is not shared
  by the reference (`projection_draws` tests the laws themselves);
- has `project_transpose` = Pᵀ: ⟨P z_a, g_b⟩ = ⟨z_a, Pᵀ g_b⟩ for several z_a, g_b (float64);
- has an exact autograd Function: `torch.autograd.gradcheck` of bank(z, scales, bases) w.r.t. z, scales and
  bases, and of bank(z), in float64 on small sizes.

Every bank of the spec's model (`model.intrinsic_said` on the check model) is then checked the same way,
densely where L ≤ `max_dense_size`.
"""

from __future__ import annotations

import math

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch.autograd.gradcheck import GradcheckError

from harness.invariants.context import CheckContext, InvariantViolation, relative_error
from harness.invariants.fwht import TOLERANCE, reference_hadamard
from harness.invariants.registry import invariant
from harness.invariants.strategies import FastfoodCase, fastfood_cases
from harness.spec.invariant_catalog import FastfoodOptions
from impl.layers.fastfood import FastfoodBank
from impl.layers.intrinsic_said import IntrinsicSAID

VECTORS = 3  # z_a and g_b per check
ADJOINT_TOLERANCE = 1e-10  # |⟨P z, g⟩ − ⟨z, Pᵀ g⟩| / Σ_d |(P z)_d g_d|, in float64
GRADCHECK_MAX_IN, GRADCHECK_MAX_OUT = 12, 20  # the small bank gradcheck runs on: n ≤ 12, D ≤ 20


def reference_draws(used: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """B's d signs, π and G by the documented recipe, from a CPU generator seeded with `seed`: (d,), (L,), (L,)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    sign = 2.0 * torch.randint(0, 2, (used,), generator=generator).double() - 1.0  # uniform on {−1, +1}
    perm = torch.randperm(size, generator=generator)  # uniform among permutations of 0..L−1
    gaussian = torch.randn(size, generator=generator, dtype=torch.float32).half().double()  # N(0, 1), float16
    return sign, perm, gaussian


def reference_projection(z: torch.Tensor, out_features: int, seed: int) -> torch.Tensor:
    """[H G Π H B pad_L(z)]_{1..D} / (‖G‖ √D) for each row of z, densely in float64: (r, n) -> (r, D)."""
    rows, length = z.shape
    size = 1
    while size < out_features:  # L = 2^⌈log2 D⌉
        size *= 2
    used = min(length, size)  # pad_L keeps z's first min(n, L) entries
    sign, perm, gaussian = reference_draws(used, size, seed)
    h = reference_hadamard(size)  # (L, L), symmetric: H x is x H for a row x
    x = z.new_zeros(rows, size, dtype=torch.float64)
    x[:, :used] = z[:, :used].double() * sign  # (r, L) = B pad_L(z)
    v = x @ h  # (r, L) = H B pad_L(z)
    u = v[:, perm] * gaussian  # (r, L) = G Π v with (Π v)_j = v[π(j)]
    y = u @ h[:, :out_features]  # (r, D) = [H u]_{1..D}
    return y / (gaussian.norm() * math.sqrt(out_features))


def projections(bank: FastfoodBank, z: torch.Tensor) -> torch.Tensor:
    """The bank's P_i(z_a) for every row z_a of z: (r, n) -> (r, k, D)."""
    return torch.stack([bank.project(row) for row in z])


def tolerance(bank: FastfoodBank, dtype: torch.dtype) -> float:
    """The float32 or float64 tolerance: float32 if z or the bank's stored 1/(‖G‖ √D) is (`model.float()`)."""
    exact = dtype == torch.float64 and bank.scale.dtype == torch.float64
    return 10 * TOLERANCE[torch.float64 if exact else torch.float32]


def check_linear(bank: FastfoodBank, z: torch.Tensor, generator: torch.Generator, what: str) -> None:
    """P(a z₁ + b z₂) = a P(z₁) + b P(z₂) in z's dtype, a and b drawn."""
    a, b = torch.randn(2, generator=generator, dtype=torch.float64).tolist()
    combined = bank.project(a * z[0] + b * z[1])  # (k, D)
    want = a * bank.project(z[0]).double() + b * bank.project(z[1]).double()  # (k, D)
    error = relative_error(combined, want)
    if not error <= tolerance(bank, z.dtype):
        raise InvariantViolation(f"{what}: P(a z₁ + b z₂) ≠ a P(z₁) + b P(z₂), off by {error:.3g} (relative)")


def check_formula(bank: FastfoodBank, z: torch.Tensor, what: str) -> None:
    """Every row's P_i(z_a) equals the dense formula with the draws of seed_i."""
    got = projections(bank, z)  # (r, k, D)
    for row, seed in enumerate(bank.seeds):
        want = reference_projection(z, bank.out_features, seed)  # (r, D)
        error = relative_error(got[:, row], want)
        if not error <= tolerance(bank, z.dtype):
            raise InvariantViolation(
                f"{what}, seed {seed}: P(z) differs from [H G Π H B pad(z)]_{{1..D}} / (‖G‖ √D) with "
                f"(Π v)_j = v[π(j)] by {error:.3g} (relative)"
            )


def check_transpose(bank: FastfoodBank, generator: torch.Generator, what: str) -> None:
    """⟨P_i z_a, g_b⟩ = ⟨z_a, P_iᵀ g_b⟩ for every row i and every pair (a, b), in float64."""
    z = torch.randn(VECTORS, bank.in_features, generator=generator, dtype=torch.float64)  # (r, n)
    g = torch.randn(VECTORS, bank.rows, bank.out_features, generator=generator, dtype=torch.float64)  # (r, k, D)
    pz = projections(bank, z)  # (r, k, D)
    ptg = torch.stack([bank.project_transpose(g_b) for g_b in g])  # (r, k, n)
    if ptg.shape != (VECTORS, bank.rows, bank.in_features):
        raise InvariantViolation(f"{what}: project_transpose gave {tuple(ptg.shape[1:])}, expected (k, n)")
    left = torch.einsum("akd,bkd->abk", pz, g)  # ⟨P_i z_a, g_b⟩
    right = torch.einsum("an,bkn->abk", z, ptg)  # ⟨z_a, P_iᵀ g_b⟩
    scale = torch.einsum("akd,bkd->abk", pz.abs(), g.abs()).clamp_min(torch.finfo(torch.float64).tiny)
    error = ((left - right).abs() / scale).max().item()
    if not error <= ADJOINT_TOLERANCE:
        raise InvariantViolation(f"{what}: project_transpose is not Pᵀ: ⟨P z, g⟩ − ⟨z, Pᵀ g⟩ is {error:.3g} (relative)")


def check_gradient(bank: FastfoodBank, generator: torch.Generator, what: str) -> None:
    """gradcheck of bank(z, scales, bases) w.r.t. all three, and of bank(z), in float64."""
    k, n, d = bank.rows, bank.in_features, bank.out_features
    z = torch.randn(n, generator=generator, dtype=torch.float64, requires_grad=True)  # (n,)
    scales = torch.randn(k, generator=generator, dtype=torch.float64, requires_grad=True)  # (k,)
    bases = [torch.randn(d, generator=generator, dtype=torch.float64, requires_grad=True) for _ in range(k)]
    for inputs, function in (
        ((z, scales, *bases), lambda z, scales, *bases: bank(z, scales, list(bases))),
        ((z,), lambda z: bank(z)),
    ):
        try:
            torch.autograd.gradcheck(function, inputs, fast_mode=True)
        except GradcheckError as error:
            first = str(error).strip().splitlines()[0]
            raise InvariantViolation(f"{what}: the autograd Function's gradient is not exact ({first})") from None


def check_bank(bank: FastfoodBank, dtype: torch.dtype, generator: torch.Generator, dense: bool, what: str) -> None:
    z = torch.randn(VECTORS, bank.in_features, generator=generator, dtype=dtype)  # (r, n)
    check_linear(bank, z, generator, what)
    if dense:
        check_formula(bank, z, what)
    check_transpose(bank, generator, what)


def check_case(case: FastfoodCase, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    bank = FastfoodBank(case.in_features, case.out_features, case.seeds)
    check_bank(bank, case.dtype, generator, dense=True, what=f"FastfoodBank for {case}")
    small = FastfoodBank(min(case.in_features, GRADCHECK_MAX_IN), min(case.out_features, GRADCHECK_MAX_OUT), case.seeds)
    check_gradient(small, generator, f"FastfoodBank(n={small.in_features}, D={small.out_features}, {case.seeds})")


def said_module(model: torch.nn.Module) -> IntrinsicSAID:
    found = [module for module in model.modules() if isinstance(module, IntrinsicSAID)]
    if len(found) != 1:
        raise InvariantViolation(f"expected one IntrinsicSAID module in the model, found {len(found)}")
    return found[0]


@invariant("fastfood_linear")
def fastfood_linear(ctx: CheckContext, options: FastfoodOptions) -> str:
    f32, f64 = torch.float32, torch.float64

    @settings(deadline=None)
    @given(case=fastfood_cases(), seed=st.integers(0, 2**16))
    @example(case=FastfoodCase(1, 1, (0,), f64), seed=0)  # n = D = L = 1
    @example(case=FastfoodCase(50, 5, (1, 2), f64), seed=1)  # n > L = 8: z truncated
    @example(case=FastfoodCase(3, 1000, (3,), f32), seed=2)  # period p = 4 ≪ L = 1024
    @example(case=FastfoodCase(64, 64, (4, 5, 6), f32), seed=3)  # n = D = L
    def property_holds(case: FastfoodCase, seed: int) -> None:
        check_case(case, seed)

    property_holds()

    said = said_module(ctx.method_model().model)
    generator = torch.Generator().manual_seed(0)
    dense = 0
    for index, bank in enumerate(said.banks):
        checked = bank.size <= options.max_dense_size
        check_bank(bank, f64, generator, dense=checked, what=f"{ctx.method_name}.banks.{index} ({bank.extra_repr()})")
        dense += checked
    rows = sum(bank.rows for bank in said.banks)
    return (
        "hypothesis-drawn banks are linear, equal [H G Π H B pad(z)]_{1..D} / (‖G‖ √D) with (Π v)_j = v[π(j)] "
        f"(scipy's H), have project_transpose = Pᵀ and exact gradients; the model's {len(said.banks)} banks "
        f"({rows} projections of z ∈ R^{said.z.numel()}) are linear with exact transposes, {dense} of them "
        f"(L ≤ {options.max_dense_size}) equal the dense formula"
    )
