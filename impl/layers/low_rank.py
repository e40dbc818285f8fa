"""A low-rank linear layer (the paper's Adapter-LowRank baseline).

    y = x W + b,     W = w_l w_r,   w_l ∈ R^{in×r}, w_r ∈ R^{r×out},

so rank(W) ≤ r. The paper uses r = 1. The released code forms W as the broadcast product
`W_left * W_right`, which equals w_l w_r only for r = 1 (and fails for r > 1); here W is the matrix
product for every r, and the forward pass never materialises W: x w_l then (·) w_r.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from impl.layers.init import glorot_uniform_


class LowRankLinear(nn.Module):
    """y = (x w_l) w_r + b: (..., in) -> (..., r) -> (..., out)."""

    def __init__(self, in_features: int, out_features: int, rank: int = 1, weight_init_gain: float = math.sqrt(2.0)):
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be a positive integer, got {rank}")
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.weight_init_gain = weight_init_gain
        self.weight_left = nn.Parameter(torch.empty(in_features, rank))  # (in, r): w_l
        self.weight_right = nn.Parameter(torch.empty(rank, out_features))  # (r, out): w_r
        self.bias = nn.Parameter(torch.empty(out_features))  # (out,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_uniform_(self.weight_left, self.weight_init_gain)
        glorot_uniform_(self.weight_right, self.weight_init_gain)
        with torch.no_grad():
            self.bias.zero_()

    def weight(self) -> torch.Tensor:
        """W = w_l w_r: (in, out), of rank ≤ r."""
        return self.weight_left @ self.weight_right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.weight_left) @ self.weight_right + self.bias  # (..., in) -> (..., r) -> (..., out)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"
