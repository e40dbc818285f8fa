"""Shared fixtures: the spec folder, a copy of it to break on purpose, the tiny T5, hypothesis profiles.

Hub access is switched off before anything imports transformers: a test must never wait on the network.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")  # else accelerate warns (warnings are errors here)

import pytest

from harness.invariants import CheckContext
from harness.invariants.profiles import load_profile
from harness.model.checked import load_spec
from harness.spec.loader import load_model_file, spec_files

load_profile("dev")  # HYPOTHESIS_PROFILE=ci (tox) selects the deterministic profile

REPO = Path(__file__).resolve().parent.parent
SPEC_DIR = REPO / "spec"
SPEC_FILES = spec_files(SPEC_DIR)


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    return SPEC_DIR


@pytest.fixture
def spec_copy(tmp_path: Path) -> Path:
    """A writable copy of spec/ (models and defaults included) to break on purpose."""
    target = tmp_path / "spec"
    shutil.copytree(SPEC_DIR, target)
    return target


@pytest.fixture(scope="session")
def tiny_model_file():
    return load_model_file(SPEC_DIR / "models" / "t5_tiny.yaml")


@pytest.fixture(scope="session")
def check_context():
    """check_context(name) -> a CheckContext for spec/<name>.yaml on its check model (cached per spec)."""
    cache = {}

    def make(name: str) -> CheckContext:
        if name not in cache:
            loaded = load_spec(SPEC_DIR / f"{name}.yaml")
            cache[name] = CheckContext(loaded, loaded.check_model_file)
        return cache[name]

    return make


@pytest.fixture(scope="session")
def holds(check_context):
    """holds(spec, invariant) -> the invariant's result on the unbroken spec (computed once per session)."""
    from harness.invariants import run_invariant

    results = {}

    def check(spec_name: str, invariant: str):
        if (spec_name, invariant) not in results:
            results[spec_name, invariant] = run_invariant(invariant, check_context(spec_name))
        return results[spec_name, invariant]

    return check
