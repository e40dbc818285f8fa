"""Hypothesis strategies for the tests (the PHM-layer strategies are shared with the invariants)."""

from __future__ import annotations

from hypothesis import strategies as st

from harness.invariants.strategies import PHMCase, phm_cases

__all__ = ["PHMCase", "not_multiples_of", "phm_cases"]


def not_multiples_of(n: int) -> st.SearchStrategy[int]:
    """A positive size that n does not divide."""
    return st.integers(1, 10 * n).filter(lambda size: size % n != 0)
