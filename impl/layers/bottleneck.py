"""The bottleneck adapter shared by the adapter family (Houlsby et al. 2019, as used in the Compacter paper).

    A(y) = y + U(act(D(y))),

with a down projection D: R^k → R^d, a non-linearity (the paper's `gelu_new`) and an up projection
U: R^d → R^k. D and U are any modules with that shape contract: `nn.Linear` for Adapter, `PHMLinear`
for PHM-Adapter and Compacter. The inner residual is the adapter's own; T5's dropout and residual
around the sub-layer stay where they are (see `impl.inject`).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN


class BottleneckAdapter(nn.Module):
    """A(y) = y + up(act(down(y))): (..., k) -> (..., k)."""

    def __init__(self, down: nn.Module, up: nn.Module, activation: str = "gelu_new") -> None:
        super().__init__()
        if activation not in ACT2FN:
            raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACT2FN)}")
        self.down = down
        self.activation_name = activation
        self.activation = ACT2FN[activation]
        self.up = up
        self.enabled = True  # False skips the adapter (AdapterDrop at inference): A(y) = y

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return y
        return y + self.up(self.activation(self.down(y)))  # (..., k) -> (..., d) -> (..., k)

    def extra_repr(self) -> str:
        return f"activation={self.activation_name}, enabled={self.enabled}"
