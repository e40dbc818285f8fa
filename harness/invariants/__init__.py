"""Invariants: named properties a spec requires of its method (module invariants) and of the run that trains it
(recipe invariants), shared by pytest and `harness check`.

Their names, summaries and options are plain data in `harness.spec.invariant_catalog` (no torch); the checks
themselves load, and register, on first use of anything below.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "INVARIANTS": "registry", "Result": "registry", "run_invariant": "registry",
    "CheckContext": "context", "InvariantViolation": "context",
}  # fmt: skip


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harness.invariants' has no attribute {name!r}")
    from harness.spec.invariant_catalog import DECLARED, RECIPE

    for module in [*DECLARED, *RECIPE]:  # each check lives in a module named after it; importing it registers it
        importlib.import_module(f"harness.invariants.{module}")
    return getattr(importlib.import_module(f"harness.invariants.{_EXPORTS[name]}"), name)


__all__ = ["INVARIANTS", "CheckContext", "InvariantViolation", "Result", "run_invariant"]
