"""`fwht`: the fast Walsh–Hadamard transform equals a product with the Sylvester matrix, gradient included.

H_L (L = 2^K) is the unnormalised Sylvester Hadamard matrix, H_1 = [1], H_2L = [[H_L, H_L], [H_L, −H_L]],
here taken from `scipy.linalg.hadamard`, so the reference shares no code with `impl.layers.hadamard`.
For hypothesis-drawn L = 1 … 2^12, batch shapes, float32/float64 and contiguous or strided inputs:

    fwht(x) = x H_L,   fwht(fwht(x)) = L·x,   hadamard_head(u, D) = (u H_L)[:, :D],
    hadamard_of_head(g, L) = pad_L(g) H_L   (D ≤ L),

none of them overwriting its input, and fwht's backward is the exact gradient ∂⟨x H, g⟩/∂x = g H
(`torch.autograd.gradcheck` in float64, L ≤ 64). The released code's backward multiplies by 1/√L:
gradcheck sees it for every L ≥ 2.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.linalg
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch.autograd.gradcheck import GradcheckError

from harness.invariants.context import CheckContext, InvariantViolation
from harness.invariants.registry import NoOptions, invariant
from harness.invariants.strategies import MAX_HADAMARD_BITS, HadamardCase, hadamard_cases
from impl.layers.hadamard import fwht, hadamard_head, hadamard_of_head

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}  # max |error| / max(1, max |reference|)
MAX_GRADCHECK_SIZE = 64


@functools.lru_cache(maxsize=MAX_HADAMARD_BITS + 1)
def reference_hadamard(size: int) -> torch.Tensor:
    """scipy's Sylvester H_size in float64, (L, L): the reference, independent of the code under test."""
    return torch.from_numpy(scipy.linalg.hadamard(size, dtype=np.float64))


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got − want| / max(1, max |want|), computed in float64 (want is the float64 reference)."""
    return ((got.double() - want).abs().max() / want.abs().max().clamp_min(1.0)).item()


def assert_close(got: torch.Tensor, want: torch.Tensor, tolerance: float, what: str) -> None:
    if got.shape != want.shape:
        raise InvariantViolation(f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    error = relative_error(got, want)
    if not error <= tolerance:
        raise InvariantViolation(f"{what}: differs from the reference by {error:.3g} (relative, > {tolerance:g})")


def assert_untouched(tensor: torch.Tensor, snapshot: torch.Tensor, what: str) -> None:
    if not torch.equal(tensor, snapshot):
        raise InvariantViolation(f"{what} overwrote its input")


def zero_pad(g: torch.Tensor, size: int) -> torch.Tensor:
    """pad_L(g): (k, D) -> (k, L), float64, zeros after the D given entries."""
    padded = g.new_zeros(g.shape[0], size, dtype=torch.float64)
    padded[:, : g.shape[1]] = g.double()
    return padded


def check_transforms(case: HadamardCase, generator: torch.Generator) -> None:
    """fwht, fwht∘fwht, hadamard_head and hadamard_of_head of one drawn case against scipy's H_L."""
    size, tolerance, h = case.size, TOLERANCE[case.dtype], reference_hadamard(case.size)  # h: (L, L)
    width = 2 * size if case.strided else size
    wide = torch.randn((*case.batch_shape, width), generator=generator, dtype=case.dtype)
    x = wide[..., ::2] if case.strided else wide  # (..., L), a strided view when case.strided
    snapshot = x.clone()
    assert_close(fwht(x), x.double() @ h, tolerance, f"fwht for {case}")
    assert_untouched(x, snapshot, f"fwht for {case}")
    assert_close(fwht(fwht(x)), size * x.double(), tolerance, f"fwht(fwht(x)) = L·x for {case}")
    u = x.reshape(-1, size)  # (k, L)
    snapshot = u.clone()
    assert_close(hadamard_head(u, case.head), (u.double() @ h)[:, : case.head], tolerance, f"hadamard_head for {case}")
    assert_untouched(u, snapshot, f"hadamard_head for {case}")
    g = u[:, : case.head]  # (k, D): a non-contiguous slice when D < L
    snapshot = g.clone()
    want = zero_pad(g, size) @ h  # (k, L)
    assert_close(hadamard_of_head(g, size), want, tolerance, f"hadamard_of_head for {case}")
    assert_untouched(g, snapshot, f"hadamard_of_head for {case}")


def check_gradient(size: int, generator: torch.Generator) -> None:
    """gradcheck of fwht in float64; on failure, say how the backward compares with the exact g H."""
    x = torch.randn(2, size, generator=generator, dtype=torch.float64, requires_grad=True)  # (B, L)
    try:
        torch.autograd.gradcheck(fwht, (x,))
    except GradcheckError:
        g = torch.randn(2, size, generator=generator, dtype=torch.float64)  # (B, L)
        (fwht(x) * g).sum().backward()
        exact = g @ reference_hadamard(size)  # (B, L): ∂⟨x H, g⟩/∂x = g Hᵀ = g H
        ratio = ((x.grad * exact).sum() / (exact * exact).sum()).item()
        raise InvariantViolation(
            f"fwht's backward is not the exact gradient g H for L={size} (gradcheck fails; "
            f"backward ≈ {ratio:.4g} × g H{', i.e. 1/√L' if math.isclose(ratio, size**-0.5, rel_tol=1e-6) else ''})"
        ) from None


def check_case(case: HadamardCase, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    check_transforms(case, generator)
    if case.size <= MAX_GRADCHECK_SIZE:
        check_gradient(case.size, generator)


@invariant("fwht")
def fwht_invariant(ctx: CheckContext, options: NoOptions) -> str:
    @settings(deadline=None)
    @given(case=hadamard_cases(), seed=st.integers(0, 2**16))
    @example(case=HadamardCase(0, (2,), torch.float64, 1, False), seed=0)  # L = 1
    @example(case=HadamardCase(1, (3,), torch.float32, 1, True), seed=1)  # L = 2: 1/√L is visible already
    @example(case=HadamardCase(4, (2, 3), torch.float64, 9, False), seed=2)  # L = 16: one dense block
    @example(case=HadamardCase(5, (), torch.float32, 17, True), seed=3)  # L = 32: two passes
    @example(case=HadamardCase(MAX_HADAMARD_BITS, (2,), torch.float32, 2049, False), seed=4)  # L = 4096
    def property_holds(case: HadamardCase, seed: int) -> None:
        check_case(case, seed)

    property_holds()
    return (
        f"fwht = x H, fwht∘fwht = L·x, hadamard_head = (u H)[:, :D], hadamard_of_head = pad(g) H against scipy's "
        f"Sylvester H for hypothesis-drawn L = 1 … {1 << MAX_HADAMARD_BITS}, batches, dtypes, strides; "
        f"gradcheck exact for L ≤ {MAX_GRADCHECK_SIZE}"
    )
