"""Invariants: named properties a spec requires of its method, shared by pytest and `harness check`."""

from harness.invariants import (  # noqa: F401  (importing registers them)
    budget,
    fastfood,
    hadamard,
    identity,
    init_distribution,
    kron_sum,
    near_identity,
    placement,
    projection,
    prompt,
    rank,
    shared_rule,
    skipping,
    state_roundtrip,
    trainable,
)
from harness.invariants.context import CheckContext, InvariantViolation
from harness.invariants.registry import INVARIANTS, Result, run_invariant

__all__ = ["INVARIANTS", "CheckContext", "InvariantViolation", "Result", "run_invariant"]
