"""An added bias (BitFit): y = x + b with b initialised to zero, so the base model is unchanged at init."""

from __future__ import annotations

import torch
from torch import nn


class AddBias(nn.Module):
    """y = x + b, b ∈ R^{size} (zeros at init): (..., size) -> (..., size)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(size))  # (size,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias

    def extra_repr(self) -> str:
        return f"size={self.bias.shape[0]}"
