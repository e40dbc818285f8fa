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


MAX_HADAMARD_BITS = 12  # L ≤ 2^12 = 4096: a dense reference H_L is 128 MiB in float64


@dataclass(frozen=True)
class HadamardCase:
    bits: int  # L = 2^bits
    batch_shape: tuple[int, ...]
    dtype: torch.dtype
    head: int  # D ∈ 1..L: the kept (hadamard_head) or given (hadamard_of_head) entries
    strided: bool  # x is a non-contiguous view (every other element of a wider tensor)

    @property
    def size(self) -> int:
        return 1 << self.bits


@st.composite
def hadamard_cases(draw) -> HadamardCase:
    """A transform size L = 2^0 … 2^12, a batch shape, a dtype, a head length D ≤ L, contiguous or not."""
    bits = draw(st.integers(0, MAX_HADAMARD_BITS))
    return HadamardCase(
        bits=bits,
        batch_shape=tuple(draw(st.lists(st.integers(1, 3), max_size=3))),
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        head=draw(st.integers(1, 1 << bits)),
        strided=draw(st.booleans()),
    )


@dataclass(frozen=True)
class FastfoodCase:
    in_features: int  # n = len(z)
    out_features: int  # D
    seeds: tuple[int, ...]  # one projection per seed (a bank of k = len(seeds) rows)
    dtype: torch.dtype


@st.composite
def fastfood_cases(draw) -> FastfoodCase:
    """n and D with L = 2^⌈log2 D⌉ ≤ 2048 (n > L truncates z, n < L makes H B pad(z) periodic), 1–3 seeds."""
    return FastfoodCase(
        in_features=draw(st.integers(1, 300)),
        out_features=draw(st.integers(1, 1500)),
        seeds=tuple(draw(st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=3, unique=True))),
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
    )
