"""Initialisers of the released code, written once for every layer that uses them:

glorot_uniform_:  W ~ U(−b, b),   b = gain · √(6 / (rows + cols)).
"""

from __future__ import annotations

import math

import torch


def glorot_uniform_(tensor: torch.Tensor, gain: float = math.sqrt(2.0)) -> torch.Tensor:
    """Glorot/Xavier-uniform, U(−b, b) with b = gain · √(6 / (rows + cols)) over the last two dims.

    Applied independently to every (rows, cols) slice, as the released code applies its
    `glorot_uniform` (gain √2) to each B_i, s_i, t_i of a PHM layer and to w_l, w_r of a low-rank layer.
    """
    rows, cols = tensor.shape[-2], tensor.shape[-1]
    bound = gain * math.sqrt(6.0 / (rows + cols))
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)
