"""(IA)³'s learned rescaling (Liu et al. 2022, arXiv 2205.05638, §4.3).

    Attention = softmax(Q (l_k ⊙ K)ᵀ / √d_k) (l_v ⊙ V),     FF(x) = (l_ff ⊙ γ(W₁ x)) W₂,

l_k, l_v ∈ R^{d_k} and l_ff ∈ R^{d_ff}, all ones at init, so the model starts exactly at T5. Each vector is a
`Rescale`: an elementwise product with a trained vector, applied to the output of the key and value
projections (`impl.inject.attach_after`) and to the input of the feed-forward's output projection W₂
(`impl.inject.attach_before`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class Rescale(nn.Module):
    """y = l ⊙ x, l ∈ R^{size} (ones at init): (..., size) -> (..., size). `side` records which of its host
    layer's tensors it rescales ("output" or "input"), so the merge knows W ← diag(l) W or W ← W diag(l)."""

    def __init__(self, size: int, side: Literal["output", "input"]) -> None:
        super().__init__()
        if side not in ("output", "input"):
            raise ValueError(f"side must be 'output' or 'input', got {side!r}")
        self.side = side
        self.scale = nn.Parameter(torch.ones(size))  # (size,): l

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    def extra_repr(self) -> str:
        return f"size={self.scale.shape[0]}, side={self.side}"
