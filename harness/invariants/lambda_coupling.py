"""`lambda_coupling`: each λ_i scales exactly its own tensor's offset, and the last λ is unused.

Intrinsic-SAID (Aghajanyan et al., as the paper runs it) trains θ_i = θ_i⁰ + λ_i P_i(z) with one scalar λ_i
per base tensor; λ has m + 1 entries and the released code leaves the last one unused (docs/paper.md).
With z ≠ 0, for the first, a middle and the last tensor i: λ_i = 0 gives back θ_i⁰ bit for bit and leaves
every other θ_j bit-identical; λ_i = 2 doubles θ_i's offset. One backward pass gives the unused
λ_m exactly zero gradient and the used ones a non-zero one.
"""

from __future__ import annotations

import torch

from harness.invariants.context import CheckContext, InvariantViolation
from harness.invariants.fastfood_linear import said_module
from harness.invariants.registry import NoOptions, invariant


def materialised(said) -> list[torch.Tensor]:
    with torch.no_grad():
        return [weight.detach().clone() for weight in said.materialise()]


@invariant("lambda_coupling")
def lambda_coupling(ctx: CheckContext, options: NoOptions) -> str:
    model = ctx.method_model().model
    said = said_module(model)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        said.z.copy_(torch.randn(said.z.shape, generator=generator, dtype=said.z.dtype))  # z ≠ 0
        lambdas = said.lambdas.detach().clone()
    bases = [base.detach().clone() for base in said.base_parameters()]
    full = materialised(said)
    offsets = [weight - base for weight, base in zip(full, bases, strict=True)]
    if any(not offset.any() for offset in offsets):
        raise InvariantViolation("with z ≠ 0 a tensor has no offset: the check would be vacuous")
    m = said.tensors
    chosen = sorted({0, m // 2, m - 1})
    for i in chosen:
        with torch.no_grad():
            said.lambdas[i] = 0.0
        weights = materialised(said)
        if not torch.equal(weights[i], bases[i]):
            raise InvariantViolation(f"λ_{i} = 0 does not give back θ_{i}⁰ ({said.names[i]}) bit for bit")
        moved = [said.names[j] for j in range(m) if j != i and not torch.equal(weights[j], full[j])]
        if moved:
            raise InvariantViolation(f"λ_{i} = 0 changed other tensors, e.g. {moved[:3]}")
        with torch.no_grad():
            said.lambdas[i] = 2.0 * lambdas[i]
        doubled = materialised(said)[i] - bases[i]
        if not torch.allclose(doubled, 2.0 * offsets[i], rtol=1e-4, atol=1e-6 * offsets[i].abs().max().item()):
            raise InvariantViolation(f"λ_{i} = 2 λ_{i} does not double θ_{i}'s offset ({said.names[i]})")
        with torch.no_grad():
            said.lambdas[i] = lambdas[i]
    said.lambdas.grad = None
    model.train()
    model(**ctx.batch()).loss.backward()
    grad = said.lambdas.grad
    if grad is None or grad.shape != (m + 1,):
        raise InvariantViolation(f"λ has no gradient of shape ({m + 1},)")
    if grad[-1].item() != 0.0:
        raise InvariantViolation(f"the unused λ_{m} gets gradient {grad[-1].item():.3e}, not exactly 0")
    if not grad[:-1].any():
        raise InvariantViolation("no used λ gets a gradient")
    return (f"λ_i = 0 gives back θ_i⁰ exactly and only θ_i (i in {chosen} of {m}), λ_i doubled doubles its offset; "
            f"the unused λ_{m} gets gradient 0, {int((grad[:-1] != 0).sum())} of {m} used ones non-zero")  # fmt: skip
