"""`projection_draws`: every random draw of Intrinsic-SAID's Fastfood projections follows its law.

Read from the built model's own banks (never from the draw function): for the projection
θ_i = θ_i⁰ + λ_i P_i(z) with P_i(z) = [H G_i Π_i H B_i pad(z)]_{1..D_i} / (‖G_i‖ √D_i) (docs/paper.md: B_i random
±1, Π_i a random permutation, G_i ~ N(0, 1)), each projection's
- B: signs exactly ±1, balanced (two-sided binomial test at the spec's alpha, pooled over the model);
- Π: a permutation of 0..L-1, stored as π(j) mod p: every residue exactly L/p times, and not the identity;
- G: N(0, 1) samples (KS test at alpha, pooled);
- and no two projections drew the same B, Π, G (each has its own seed).
"""

from __future__ import annotations

import torch
from scipy import stats

from harness.invariants.context import CheckContext, InvariantViolation
from harness.invariants.fastfood_linear import said_module
from harness.invariants.registry import invariant
from harness.spec.invariant_catalog import KSOptions


@invariant("projection_draws")
def projection_draws(ctx: CheckContext, options: KSOptions) -> str:
    banks = said_module(ctx.method_model().model).banks
    signs, gaussians, rows = [], [], 0
    for number, bank in enumerate(banks):
        if not bank.generated:
            bank.generate()
        sign, index, gaussian = bank.sign.long(), bank.index.long(), bank.gaussian.double()  # (k, d), (k, L), (k, L)
        if not torch.all((sign == 1) | (sign == -1)):
            raise InvariantViolation(f"bank {number}: a sign of B is not ±1 ({sorted(set(sign.unique().tolist()))})")
        counts = torch.stack([torch.bincount(row, minlength=bank.period) for row in index])  # (k, p)
        if index.min() < 0 or index.max() >= bank.period or not torch.all(counts == bank.size // bank.period):
            raise InvariantViolation(f"bank {number}: Π mod {bank.period} is not uniform over the residues: "
                                     "Π is not a permutation of 0..L-1")  # fmt: skip
        identity = torch.arange(bank.size) % bank.period
        if bank.size > bank.period and any(torch.equal(row, identity) for row in index):
            raise InvariantViolation(f"bank {number}: Π is the identity")
        for name, draws in (("B", sign), ("Π", index), ("G", gaussian)):
            if len(draws) > 1 and len({tuple(row.tolist()) for row in draws}) < len(draws):
                raise InvariantViolation(f"bank {number}: two projections drew the same {name}")
        signs.append(sign.flatten())
        gaussians.append(gaussian.flatten())
        rows += len(sign)
    signs_all, gaussians_all = torch.cat(signs), torch.cat(gaussians).numpy()
    positive = int((signs_all == 1).sum())
    p_sign = stats.binomtest(positive, signs_all.numel(), 0.5).pvalue
    if p_sign < options.alpha:
        raise InvariantViolation(f"B's signs are not balanced: {positive} of {signs_all.numel()} are +1 "
                                 f"(binomial p = {p_sign:.2e} < {options.alpha:g})")  # fmt: skip
    p_gauss = stats.kstest(gaussians_all, stats.norm.cdf).pvalue
    if p_gauss < options.alpha:
        raise InvariantViolation(f"G does not follow N(0, 1): KS p = {p_gauss:.2e} < {options.alpha:g} over "
                                 f"{gaussians_all.size} samples (mean {gaussians_all.mean():.3f}, "
                                 f"std {gaussians_all.std():.3f})")  # fmt: skip
    return (f"{rows} projections in {len(banks)} banks: B ±1 balanced (p = {p_sign:.2f}), Π permutations "
            f"(none the identity), G ~ N(0, 1) (KS p = {p_gauss:.2f} over {gaussians_all.size}), "
            "all distinct")  # fmt: skip
