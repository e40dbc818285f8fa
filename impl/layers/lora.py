"""LoRA's low-rank update of a frozen dense layer (Hu et al. 2021, arXiv 2106.09685, §4.1).

    h = W₀ x + ΔW x = W₀ x + (α / r) B A x,   A ∈ R^{r×in}, B ∈ R^{out×r},

W₀ frozen, A and B trained. B = 0 at init, so ΔW = 0 and the model starts exactly at W₀. A is drawn as
`peft` draws it, kaiming-uniform with a = √5, i.e. U(−1/√in, 1/√in); the paper says only "a random
Gaussian" (no scale) and `peft` offers N(0, 1/r²) as `init_lora_weights="gaussian"`. There is no LoRA
dropout (`peft`'s default `lora_dropout=0`): every dropout of a run is T5's, at the recipe's rate. This
module computes the update ΔW x alone; `impl.inject.attach_beside` adds it to W₀'s output.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class LoRAUpdate(nn.Module):
    """ΔW x = (α / r) · (x Aᵀ) Bᵀ: (..., in) -> (..., r) -> (..., out); A, B stored like nn.Linear's weights,
    A (r, in) and B (out, r)."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be a positive integer, got {rank}")
        self.in_features, self.out_features, self.rank, self.alpha = in_features, out_features, rank, alpha
        self.scaling = alpha / rank  # α / r
        self.weight_a = nn.Parameter(torch.empty(rank, in_features))  # (r, in): A
        self.weight_b = nn.Parameter(torch.zeros(out_features, rank))  # (out, r): B = 0
        nn.init.kaiming_uniform_(self.weight_a, a=math.sqrt(5.0))  # U(−1/√in, 1/√in), as peft

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        down = F.linear(x, self.weight_a)  # (..., r): x Aᵀ
        return F.linear(down, self.weight_b) * self.scaling  # (..., out): (x Aᵀ) Bᵀ · α/r

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, r={self.rank}, alpha={self.alpha:g}"
