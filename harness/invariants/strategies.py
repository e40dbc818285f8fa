"""Hypothesis strategies shared by the invariants and the tests."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st


@dataclass(frozen=True)
class PHMCase:
    n: int
    in_per_n: int  # in_features = n · in_per_n
    out_per_n: int  # out_features = n · out_per_n
    rank: int | None  # None: full B_i
    shared: bool
    batch_shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def in_features(self) -> int:
        return self.n * self.in_per_n

    @property
    def out_features(self) -> int:
        return self.n * self.out_per_n


@st.composite
def phm_cases(draw, n=None) -> PHMCase:
    """A PHM layer configuration: any n, sizes divisible by n, full or rank-r B, any batch shape."""
    return PHMCase(
        n=draw(st.integers(1, 8)) if n is None else n,
        in_per_n=draw(st.integers(1, 6)),
        out_per_n=draw(st.integers(1, 6)),
        rank=draw(st.none() | st.integers(1, 4)),
        shared=draw(st.booleans()),
        batch_shape=tuple(draw(st.lists(st.integers(1, 3), max_size=3))),
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
    )
