"""Invariants: named properties a spec requires of its method, shared by pytest and `harness check`.

Their names, summaries and options are plain data in `harness.invariants.catalog` (no torch); the checks
themselves load, and register, on first use of anything below.
"""

from __future__ import annotations

import importlib

CHECK_MODULES = (
    "budget", "fastfood", "hadamard", "identity", "init_distribution", "kron_sum", "near_identity", "placement",
    "projection", "prompt", "rank", "shared_rule", "skipping", "state_roundtrip", "trainable",
)  # fmt: skip
_EXPORTS = {
    "INVARIANTS": "registry", "Result": "registry", "run_invariant": "registry",
    "CheckContext": "context", "InvariantViolation": "context",
}  # fmt: skip


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harness.invariants' has no attribute {name!r}")
    for module in CHECK_MODULES:  # importing registers them
        importlib.import_module(f"harness.invariants.{module}")
    return getattr(importlib.import_module(f"harness.invariants.{_EXPORTS[name]}"), name)


__all__ = ["INVARIANTS", "CheckContext", "InvariantViolation", "Result", "run_invariant"]
