"""Parameterised hypercomplex multiplication (PHM) layers, as defined in the Compacter paper.

A PHM layer is a linear map whose weight is a sum of Kronecker products (the paper's PHM layer):

    y = x H + b,     H = Σ_{i=1..n} A_i ⊗ B_i,

with A_i ∈ R^{n×n} (the "rule"), B_i ∈ R^{(in/n)×(out/n)} and b ∈ R^{out}. The LPHM variant
(Compacter's low-rank PHM) factorises every B_i = s_i t_iᵀ with s_i ∈ R^{(in/n)×r}, t_i ∈ R^{r×(out/n)}.

The rule A may belong to the layer or be shared by many layers (Compacter shares one A across all
layers of a model): a shared rule is held by a `PHMRule` module registered once, elsewhere in the
model, and each layer keeps an unregistered reference to that module, so the parameter is one object,
listed and counted once, and receives gradient from every layer that uses it.

How y is computed is a choice, not part of the definition (any computation equal to x H + b is faithful):

- `materialise` (the released code): H by one einsum, then one matmul, T·in·out multiply-adds for T rows;
- `factored_in` (LPHM only): u = x reshaped (T·n, in/n) times s, then u (T, n²r) times K = (A ⊗ t) rearranged,
  T·r·n·(in + n·out) multiply-adds: cheaper when in ≫ out (the down projection, 768 → 24);
- `factored_out` (LPHM only): z = x times J = (A ⊗ s) rearranged (in, n²r), then z (T·n, n·r) times t,
  T·r·n·(n·in + out) multiply-adds: cheaper when out ≫ in (the up projection, 24 → 768).

`PHMLinear.algorithm = "auto"` takes the one with the fewest multiply-adds for the layer's shape (what
`python -m harness bench-layers` measured to be the fastest on the paper's sizes); every algorithm is checked
against Σ torch.kron(A_i, B_i) by the `kron_sum` invariant and the tests. The factored algorithms are exact
rewrites of *this class's* definition: a subclass or patch that redefines `kronecker_weight` or `blocks`
changes the definition, and the layer then computes that definition by materialising it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from impl.layers.init import glorot_uniform_

AUTO, MATERIALISE, FACTORED_IN, FACTORED_OUT = "auto", "materialise", "factored_in", "factored_out"
ALGORITHMS = (MATERIALISE, FACTORED_IN, FACTORED_OUT)  # ties go to the earlier one


class PHMRule(nn.Module):
    """The rule tensor A = (A_1, …, A_n), A_i ∈ R^{n×n}, initialised A ~ N(0, std²)."""

    def __init__(self, n: int, init_std: float) -> None:
        super().__init__()
        self.n = n
        self.init_std = init_std
        self.phm_rule = nn.Parameter(torch.empty(n, n, n))  # (n, n, n): A_i = phm_rule[i]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.phm_rule.normal_(mean=0.0, std=self.init_std)

    def extra_repr(self) -> str:
        return f"n={self.n}, init_std={self.init_std}"


class PHMLinear(nn.Module):
    """y = x (Σ_i A_i ⊗ B_i) + b, with B_i full (rank=None) or B_i = s_i t_iᵀ of rank r.

    Args:
        in_features, out_features: both must be divisible by n.
        n: number of Kronecker summands (the hypercomplex dimension).
        rank: None for a full B (PHM-Adapter), or r ≥ 1 for the factorised LPHM (Compacter).
        shared_rule: a `PHMRule` registered elsewhere whose A this layer uses; None gives the layer
            its own A, initialised N(0, rule_init_std²).
        rule_init_std: std of a per-layer rule (ignored when shared_rule is given).
        weight_init_gain: the Glorot-uniform gain for B (or s and t).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n: int,
        rank: int | None = None,
        shared_rule: PHMRule | None = None,
        rule_init_std: float = 0.01,
        weight_init_gain: float = math.sqrt(2.0),
    ) -> None:
        super().__init__()
        if n < 1 or in_features % n or out_features % n:
            raise ValueError(f"n={n} must divide in_features={in_features} and out_features={out_features}")
        if rank is not None and rank < 1:
            raise ValueError(f"rank must be a positive integer or None, got {rank}")
        if shared_rule is not None and shared_rule.n != n:
            raise ValueError(f"shared rule has n={shared_rule.n}, layer has n={n}")
        self.in_features, self.out_features, self.n, self.rank = in_features, out_features, n, rank
        self.algorithm = AUTO  # or one of ALGORITHMS (the factored ones need rank, i.e. the LPHM layer)
        self.weight_init_gain = weight_init_gain
        p, q = in_features // n, out_features // n
        if shared_rule is None:
            self.own_rule = PHMRule(n, rule_init_std)
            self._shared_rule: tuple[PHMRule, ...] = ()
        else:
            self.own_rule = None
            # A tuple keeps the module out of self._modules: it is registered (and counted) once, by its owner.
            self._shared_rule = (shared_rule,)
        if rank is None:
            self.phm_weight = nn.Parameter(torch.empty(n, p, q))  # (n, in/n, out/n): B_i
        else:
            self.phm_weight_left = nn.Parameter(torch.empty(n, p, rank))  # (n, in/n, r): s_i
            self.phm_weight_right = nn.Parameter(torch.empty(n, rank, q))  # (n, r, out/n): t_i
        self.bias = nn.Parameter(torch.empty(out_features))  # (out,)
        self.reset_parameters()

    @property
    def rule_module(self) -> PHMRule:
        """The PHMRule this layer uses: its own or the shared one."""
        return self.own_rule if self.own_rule is not None else self._shared_rule[0]

    @property
    def rule(self) -> torch.Tensor:
        """A: (n, n, n)."""
        return self.rule_module.phm_rule

    @property
    def rule_is_shared(self) -> bool:
        return self.own_rule is None

    def share_rule(self, rule: PHMRule) -> None:
        """Use `rule`, registered elsewhere, as A from now on (the layer's own rule, if any, is dropped)."""
        if rule.n != self.n:
            raise ValueError(f"rule has n={rule.n}, layer has n={self.n}")
        self.own_rule = None
        self._shared_rule = (rule,)

    def reset_parameters(self) -> None:
        if self.rank is None:
            glorot_uniform_(self.phm_weight, self.weight_init_gain)
        else:
            glorot_uniform_(self.phm_weight_left, self.weight_init_gain)
            glorot_uniform_(self.phm_weight_right, self.weight_init_gain)
        with torch.no_grad():
            self.bias.zero_()

    def blocks(self) -> torch.Tensor:
        """B: (n, in/n, out/n), materialised from s tᵀ for the factorised layer."""
        if self.rank is None:
            return self.phm_weight
        return self.phm_weight_left @ self.phm_weight_right  # (n, p, r) @ (n, r, q) -> (n, p, q)

    def kronecker_weight(self) -> torch.Tensor:
        """H = Σ_i A_i ⊗ B_i: (in, out).

        (A_i ⊗ B_i)[a·p + u, c·q + v] = A_i[a, c] · B_i[u, v], so H is the (a, u, c, v) tensor
        Σ_i A_i[a, c] B_i[u, v] laid out as (n·p, n·q).
        """
        a, b = self.rule, self.blocks()  # (n, n, n), (n, p, q)
        n, p, q = b.shape
        return torch.einsum("iac,iuv->aucv", a, b).reshape(n * p, n * q)

    def algorithms(self) -> tuple[str, ...]:
        """The algorithms this layer can compute with: all for an LPHM layer (rank r), materialising for a full B."""
        return ALGORITHMS if self.rank is not None else (MATERIALISE,)

    def chosen_algorithm(self) -> str:
        """The algorithm `forward` uses: `self.algorithm`, or for "auto" the one with the fewest multiply-adds."""
        redefined = type(self).kronecker_weight is not _KRONECKER_WEIGHT or type(self).blocks is not _BLOCKS
        if self.rank is None or redefined:
            return MATERIALISE
        if self.algorithm != AUTO:
            return self.algorithm
        costs = multiply_adds(self.in_features, self.out_features, self.n, self.rank)
        return min(ALGORITHMS, key=lambda name: (costs[name], ALGORITHMS.index(name)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        algorithm = self.chosen_algorithm()
        if algorithm == FACTORED_IN:
            return factored_in(x, self.rule, self.phm_weight_left, self.phm_weight_right, self.bias)
        if algorithm == FACTORED_OUT:
            return factored_out(x, self.rule, self.phm_weight_left, self.phm_weight_right, self.bias)
        # x: (..., in) -> (..., out); F.linear computes x Wᵀ + b, so pass Hᵀ: (out, in).
        return F.linear(x, self.kronecker_weight().t(), self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, n={self.n}, "
            f"rank={self.rank}, shared_rule={self.rule_is_shared}, algorithm={self.algorithm}"
        )


_KRONECKER_WEIGHT, _BLOCKS = PHMLinear.kronecker_weight, PHMLinear.blocks  # the definition the rewrites equal


def multiply_adds(in_features: int, out_features: int, n: int, rank: int | None) -> dict[str, int]:
    """Multiply-adds per input row of each algorithm (building H, K or J is per call, not per row: left out)."""
    costs = {MATERIALISE: in_features * out_features}
    if rank is not None:
        costs[FACTORED_IN] = rank * n * (in_features + n * out_features)
        costs[FACTORED_OUT] = rank * n * (n * in_features + out_features)
    return costs


def factored_in(x: torch.Tensor, a: torch.Tensor, s: torch.Tensor, t: torch.Tensor, bias: torch.Tensor):
    """x Σ_i A_i ⊗ (s_i t_i) + b without H: contract x with s first (best when in ≫ out).

    y[c·q + v] = Σ_{a,i,r} (Σ_u x[a·p + u] s_i[u, r]) · A_i[a, c] t_i[r, v].
    """
    n, p, r = s.shape  # s: (n, p, r) = (i, u, r); a: (n, n, n) = (i, a, c); t: (n, r, q) = (i, r, v)
    q = t.shape[2]
    s_cols = s.permute(1, 0, 2).reshape(p, n * r)  # (p, i·r)
    k = torch.einsum("iac,irv->aircv", a, t).reshape(n * n * r, n * q)  # (a·i·r, c·v)
    u = x.reshape(-1, p) @ s_cols  # (T·n, p) @ (p, i·r) -> (T·n, i·r), rows (t, a)
    y = torch.addmm(bias, u.reshape(-1, n * n * r), k)  # (T, a·i·r) @ (a·i·r, out) + b -> (T, out)
    return y.reshape(*x.shape[:-1], n * q)


def factored_out(x: torch.Tensor, a: torch.Tensor, s: torch.Tensor, t: torch.Tensor, bias: torch.Tensor):
    """x Σ_i A_i ⊗ (s_i t_i) + b without H: contract A and s first, t last (best when out ≫ in).

    y[c·q + v] = Σ_{i,r} (Σ_{a,u} x[a·p + u] A_i[a, c] s_i[u, r]) · t_i[r, v].
    """
    n, p, r = s.shape
    q = t.shape[2]
    j = torch.einsum("iac,iur->aucir", a, s).reshape(n * p, n * n * r)  # (a·u, c·i·r)
    z = x.reshape(-1, n * p) @ j  # (T, in) @ (in, c·i·r) -> (T, c·i·r)
    y = z.reshape(-1, n * r) @ t.reshape(n * r, q)  # (T·c, i·r) @ (i·r, v) -> (T·c, q)
    return y.reshape(*x.shape[:-1], n * q) + bias  # (..., out)
