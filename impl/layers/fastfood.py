"""Fastfood random projections (Intrinsic-SAID), reproducible from seeds, with an exact fused gradient.

Fastfood (Le, Sarlós & Smola 2013), as the intrinsic-dimension code of Li et al. (2018) and Aghajanyan et
al. (2021) — and the Compacter paper's Intrinsic-SAID baseline — uses it: for z ∈ R^n and D outputs,
L = 2^⌈log2 D⌉,

    P(z) = [H G Π H B pad_L(z)]_{1..D} / (‖G‖ √D),

with H the unnormalised Walsh–Hadamard transform (H H = L·I), B a random ±1 diagonal, Π a random
permutation, G a diagonal of N(0, 1) samples; pad_L zero-pads z to L entries, or truncates it when L < n.

A `FastfoodBank` holds k independent projections R^n → R^D (one seed each) as stacked buffers and applies
them together, so a whole group of same-sized tensors costs a handful of large kernels. It computes the
formula exactly, with less work than its two transforms of size L:
- B pad_L(z) is non-zero only in its first d = min(n, L) entries, so H B pad_L(z) is periodic with period
  p = min(2^⌈log2 n⌉, L) (H_L = H_{L/p} ⊗ H_p, and the first column of H_{L/p} is all ones): a transform of
  size p gives one period w, and (Π H B pad z)_j = w[π(j) mod p]. Only `index` = π mod p is kept, in int16
  when p ≤ 2^15 (0.8 GB on t5-base, half of int32), widened row by row into a reused int32 buffer for the
  gather and the scatter (flattening the rows instead cost a per-call offset pass over all k·L entries, more
  than the gather itself). The scale 1/(‖G‖ √D), and λ, multiply the small period w, not the (k, D) output.
- Of the final transform only the D first outputs are computed (`hadamard_head`).
- The backward uses Pᵀ: for base + λ·P(z), ∂z = λ Pᵀg, ∂λ = ⟨Pᵀg, z⟩ (= ⟨g, P z⟩), ∂base = g, so the
  D-sized P(z) is never kept for the backward. `scaled_backward` gives the released code's ∂z = λ Pᵀg / L
  (its Hadamard backward is scaled by 1/√L, twice); ∂λ stays exact, as there.

The random B, Π, G of each projection come from a private CPU `torch.Generator` seeded with its seed, never
the global RNG: a projection is a function of (seed, n, D) and of the torch version's generator. G is stored
in float16 — N(0, 1) samples rounded to 11 significant bits, ‖G‖ computed from the stored values, so the
projection is exactly the formula's for that G — which halves its memory (0.8 GB on t5-base).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from impl.layers.hadamard import fwht_raw, hadamard_head, hadamard_of_head, next_power_of_two

GAUSSIAN_DTYPE = torch.float16  # how G is stored (computations run in z's dtype)


def derive_seed(seed: int, key: str) -> int:
    """A 63-bit seed for one projection from a method's seed and a stable key (e.g. the tensor's name)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def draw_fastfood(in_features: int, out_features: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The random (B, π, G) of one projection R^n → R^D, drawn in this order from one seeded CPU generator.

    Returns sign (d,) int8 ±1 (the part of B that meets z, d = min(n, L)), perm (L,) int64 and gaussian (L,):
    N(0, 1) samples drawn in float32 and stored in float16.
    """
    size = next_power_of_two(out_features)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    sign = torch.randint(0, 2, (min(in_features, size),), generator=generator, dtype=torch.int8) * 2 - 1  # (d,)
    perm = torch.randperm(size, generator=generator)  # (L,)
    gaussian = torch.randn(size, generator=generator, dtype=torch.float32).to(GAUSSIAN_DTYPE)  # (L,)
    return sign.to(torch.int8), perm, gaussian


class Workspace:
    """Named scratch buffers reused from call to call.

    A large CPU tensor allocated afresh is paged in again at every step (slow on virtual machines); the
    projections take their (k, L) temporaries from here instead. A copy of a model starts with none.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def take(self, name: str, numel: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
        """A flat, uninitialised tensor of `numel` elements: the buffer `name`, grown when too small."""
        nbytes = numel * dtype.itemsize
        buffer = self._buffers.get(name)
        if buffer is None or buffer.numel() < nbytes or buffer.device != torch.device(device):
            buffer = torch.empty(nbytes, dtype=torch.uint8, device=device)
            self._buffers[name] = buffer
        return buffer[:nbytes].view(dtype)

    def clear(self) -> None:
        self._buffers.clear()

    def __deepcopy__(self, memo: dict) -> Workspace:
        return Workspace()


class FastfoodBank(nn.Module):
    """k Fastfood projections R^n → R^D, one per seed: P_i(z) = [H G_i Π_i H B_i pad_L(z)]_{1..D} / (‖G_i‖ √D).

    The random parts are non-persistent buffers, regenerated from the seeds and never saved. Built on the
    meta device they stay undrawn until `generate()` is called for a real device.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        seeds: Sequence[int],
        device: torch.device | str | None = None,
        scaled_backward: bool = False,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1 or not seeds:
            raise ValueError(f"need n ≥ 1, D ≥ 1 and a seed, got n={in_features}, D={out_features}, {len(seeds)} seeds")
        self.in_features, self.out_features, self.seeds = in_features, out_features, tuple(int(s) for s in seeds)
        self.size = next_power_of_two(out_features)  # L
        self.used = min(in_features, self.size)  # d: the entries of z that reach the output
        self.period = min(next_power_of_two(in_features), self.size)  # p
        self.z_gradient_scale = 1.0 / self.size if scaled_backward else 1.0  # the released code's 1/L, or exact
        k, meta = len(self.seeds), torch.device("meta")
        self.register_buffer("sign", torch.empty(k, self.used, dtype=torch.int8, device=meta), persistent=False)
        index_dtype = torch.int16 if self.period <= 1 << 15 else torch.int32
        self.register_buffer("index", torch.empty(k, self.size, dtype=index_dtype, device=meta), persistent=False)
        self.register_buffer("gaussian", torch.empty(k, self.size, dtype=GAUSSIAN_DTYPE, device=meta), persistent=False)
        self.register_buffer("scale", torch.empty(k, dtype=torch.float64, device=meta), persistent=False)
        self._fingerprint: str | None = None  # of the draws, set by generate()
        device = torch.device(device if device is not None else "cpu")
        if device.type != "meta":
            self.generate(device)

    @property
    def rows(self) -> int:
        return len(self.seeds)

    @property
    def generated(self) -> bool:
        return not self.gaussian.is_meta

    def generate(self, device: torch.device | str | None = None) -> None:
        """Draw every projection's B, π, G from its seed on the CPU, then move them to `device`."""
        device = torch.device(device) if device is not None else self.gaussian.device
        device = torch.device("cpu") if device.type == "meta" else device
        sign = torch.empty(self.rows, self.used, dtype=torch.int8)
        index = torch.empty(self.rows, self.size, dtype=self.index.dtype)
        gaussian = torch.empty(self.rows, self.size, dtype=GAUSSIAN_DTYPE)
        for row, seed in enumerate(self.seeds):
            sign[row], perm, gaussian[row] = draw_fastfood(self.in_features, self.out_features, seed)
            index[row] = perm % self.period  # π(j) mod p
        norms = gaussian.double().norm(dim=1)  # (k,) ‖G_i‖ of the stored values
        digest = hashlib.sha256(repr((self.in_features, self.out_features, self.seeds)).encode())
        for tensor in (sign[:, :16], index[:, :16], gaussian[:, :16].float()):
            digest.update(tensor.contiguous().numpy().tobytes())
        self._fingerprint = digest.hexdigest()[:16]  # of the draws, before any cast of the buffers
        self.sign, self.index = sign.to(device), index.to(device)
        self.gaussian = gaussian.to(device=device, dtype=self.gaussian.dtype)
        self.scale = (1.0 / (norms * self.out_features**0.5)).to(device=device, dtype=self.scale.dtype)  # (k,)

    def fingerprint(self) -> str:
        """A short hash of the drawn values (taken when drawn: a later dtype cast of the model leaves it), to tell
        whether a generator reproduced the same projections."""
        if self._fingerprint is None:
            self.generate()
        return self._fingerprint

    def _row_index(self, row: int, workspace: Workspace) -> torch.Tensor:
        """π_row mod p as an int32 (L,) tensor (index_select and index_add_ take int32 or int64, not int16)."""
        if self.index.dtype == torch.int32:
            return self.index[row]
        return workspace.take("i", self.size, torch.int32, self.index.device).copy_(self.index[row])

    def _gaussian(self, dtype: torch.dtype, workspace: Workspace) -> torch.Tensor:
        """G in the computation's dtype: (k, L). A float16 G is converted into a reused buffer, since a
        mixed-dtype in-place product runs several times slower than a conversion and a same-dtype product."""
        if self.gaussian.dtype == dtype:
            return self.gaussian
        buffer = workspace.take("G", self.rows * self.size, dtype, self.gaussian.device).view(self.rows, self.size)
        return buffer.copy_(self.gaussian)

    def project(
        self,
        z: torch.Tensor,
        factors: torch.Tensor | None = None,
        out: torch.Tensor | None = None,
        workspace: Workspace | None = None,
    ) -> torch.Tensor:
        """Every factor_i · P_i(z), no autograd graph: (n,) -> (k, D), into `out` when given."""
        if not self.generated:
            raise RuntimeError("this Fastfood bank was built on the meta device: call generate(device) first")
        if z.shape != (self.in_features,):
            raise ValueError(f"expected z of shape ({self.in_features},), got {tuple(z.shape)}")
        workspace = Workspace() if workspace is None else workspace
        k, size, dtype, device = self.rows, self.size, z.dtype, z.device
        x = workspace.take("x", k * self.period, dtype, device).view(k, self.period).zero_()  # (k, p)
        torch.mul(z[: self.used], self.sign, out=x[:, : self.used])  # B pad(z)
        w = fwht_raw(x, out=workspace.take("w", k * self.period, dtype, device), scratch=x)  # (k, p): a period
        scale = self.scale.to(dtype) if factors is None else self.scale.to(dtype) * factors  # (k,)
        w.mul_(scale[:, None])  # (k, p): the scale, on the period rather than on the (k, D) output (P is linear)
        u = workspace.take("b", k * size, dtype, device).view(k, size)
        for row in range(k):
            torch.index_select(w[row], 0, self._row_index(row, workspace), out=u[row])  # (L,) = Π H B pad(z)
        u.mul_(self._gaussian(dtype, workspace))  # (k, L) = G Π H B pad(z)
        out = z.new_empty(k, self.out_features) if out is None else out
        return hadamard_head(u, self.out_features, out=out, work=workspace.take("a", k * size, dtype, device))

    def project_transpose(self, g: torch.Tensor, workspace: Workspace | None = None) -> torch.Tensor:
        """Every P_iᵀ g_i, no autograd graph: (k, D) -> (k, n)."""
        if g.shape != (self.rows, self.out_features):
            raise ValueError(f"expected g of shape ({self.rows}, {self.out_features}), got {tuple(g.shape)}")
        workspace = Workspace() if workspace is None else workspace
        k, size, dtype, device = self.rows, self.size, g.dtype, g.device
        h = workspace.take("b", k * size, dtype, device).view(k, size)
        hadamard_of_head(g, size, out=h, work=workspace.take("a", k * size, dtype, device))  # (k, L) = H pad_L(g)
        h.mul_(self._gaussian(dtype, workspace))  # (k, L) = G H pad_L(g)
        w = g.new_zeros(k, self.period)  # (k, p)
        for row in range(k):
            w[row].index_add_(0, self._row_index(row, workspace), h[row])  # Πᵀ, folded modulo p
        x = fwht_raw(w, out=w)  # (k, p)
        out = g.new_zeros(k, self.in_features)  # (k, n): entries of z beyond d never reach the output
        out[:, : self.used] = x[:, : self.used] * self.sign * self.scale.to(dtype)[:, None]
        return out

    def forward(
        self,
        z: torch.Tensor,
        scales: torch.Tensor | None = None,
        bases: Sequence[torch.Tensor] | None = None,
        out: torch.Tensor | None = None,
        workspace: Workspace | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """(base_i + scale_i · P_i(z))_i, differentiable in z, scales (k,) and bases; each (D,) or base_i's shape.

        The results are views of one (k, D) tensor: `out` when given (overwritten), else a new one.
        """
        if scales is not None and scales.shape != (self.rows,):
            raise ValueError(f"expected scales of shape ({self.rows},), got {tuple(scales.shape)}")
        bases = tuple(bases or ())
        if bases and (len(bases) != self.rows or any(b.numel() != self.out_features for b in bases)):
            raise ValueError(f"expected {self.rows} bases of {self.out_features} entries each")
        if out is not None and out.shape != (self.rows, self.out_features):
            raise ValueError(f"expected out of shape ({self.rows}, {self.out_features}), got {tuple(out.shape)}")
        workspace = Workspace() if workspace is None else workspace
        return _BankUpdate.apply(self, workspace, out, z, scales, *bases)

    def extra_repr(self) -> str:
        scaled = ", backward z-gradient × 1/L (released)" if self.z_gradient_scale != 1.0 else ""
        shape = f"rows={self.rows}, in_features={self.in_features}, out_features={self.out_features}"
        return f"{shape}, L={self.size}{scaled}"


class _BankUpdate(torch.autograd.Function):
    """θ_i = base_i + λ_i · P_i(z) for every row; the outputs are views of one (k, D) tensor."""

    @staticmethod
    def forward(ctx, bank: FastfoodBank, workspace: Workspace, out, z, scales, *bases):
        ctx.bank, ctx.workspace, ctx.has_scales, ctx.shapes = (
            bank,
            workspace,
            scales is not None,
            [b.shape for b in bases],
        )
        ctx.save_for_backward(z, scales)
        ctx.set_materialize_grads(False)
        theta = bank.project(z, scales, out=out, workspace=workspace)  # (k, D) = λ_i P_i(z)
        if bases:
            for row, base in enumerate(bases):
                theta[row].add_(base.reshape(-1))  # (D,) = θ⁰_i + λ_i P_i(z), no stacked copy of θ⁰
            return tuple(theta[row].view(shape) for row, shape in enumerate(ctx.shapes))
        return tuple(theta.unbind(0))

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        z, scales = ctx.saved_tensors
        bank, needs = ctx.bank, ctx.needs_input_grad
        grad_z = grad_scales = None
        if (needs[3] or needs[4]) and any(g is not None for g in grads):
            zero = z.new_zeros(bank.out_features)
            stacked = ctx.workspace.take("g", bank.rows * bank.out_features, z.dtype, z.device)
            g = torch.stack([zero if g is None else g.reshape(-1) for g in grads], out=stacked.view(bank.rows, -1))
            pt_g = bank.project_transpose(g, ctx.workspace)  # (k, n): P_iᵀ g_i
            if needs[3]:
                grad_z = scales @ pt_g if ctx.has_scales else pt_g.sum(0)  # (n,) = Σ_i λ_i P_iᵀ g_i
                if bank.z_gradient_scale != 1.0:
                    grad_z = grad_z * bank.z_gradient_scale  # (n,): the released code's Σ_i λ_i P_iᵀ g_i / L
            if needs[4]:
                grad_scales = pt_g @ z  # (k,): ⟨P_iᵀ g_i, z⟩
        grad_bases = [g if need else None for g, need in zip(grads, needs[5:], strict=True)] if ctx.shapes else []
        return None, None, None, grad_z, grad_scales, *grad_bases
