"""Hypothesis settings by name (hypothesis's "profiles"); the HYPOTHESIS_PROFILE environment variable picks one
over the caller's default.

- `dev` (default for pytest): 100 random examples per property, failures remembered in `.hypothesis/`;
- `ci` (selected by tox): 30 examples, derandomised, no database: the same examples on every machine;
- `thorough` (for long runs, `HYPOTHESIS_PROFILE=thorough pytest`): 2,000 random examples per property;
- `check` (for `python -m harness check`): 50 examples, derandomised.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


def register_settings() -> None:
    settings.register_profile("dev", max_examples=100, **_COMMON)
    settings.register_profile("ci", max_examples=30, derandomize=True, database=None, print_blob=True, **_COMMON)
    settings.register_profile("thorough", max_examples=2000, **_COMMON)
    settings.register_profile("check", max_examples=50, derandomize=True, database=None, **_COMMON)


def load_settings(default: str) -> str:
    """Load the settings HYPOTHESIS_PROFILE names, else `default`; returns the name loaded."""
    register_settings()
    name = os.environ.get("HYPOTHESIS_PROFILE", default)
    settings.load_profile(name)
    return name
