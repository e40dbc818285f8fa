"""Shared fixtures: the spec folder, a copy of it to break on purpose, the tiny T5, hypothesis settings.

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
from harness.invariants.hypothesis_settings import load_settings
from harness.model.checked import read_buildable_spec
from harness.spec.loader import spec_files
from harness.spec.model_choice import load_model_file
from harness.spec.model_files import ModelFile, T5Architecture

load_settings("dev")  # HYPOTHESIS_PROFILE=ci (tox) selects the deterministic settings

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


# The T5 families every invariant runs on: a spec's check model (T5 v1.0) as it is, and changed into
# T5 v1.1 / Flan-T5 (gated-GELU feed-forward, untied lm_head) and into mT5 (transformers' MT5 classes).
FAMILIES = {
    "t5_v1_0": {},
    "t5_v1_1": {"feed_forward_proj": "gated-gelu", "tie_word_embeddings": False},
    "mt5": {"model_type": "mt5", "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False},
}


def in_family(model_file: ModelFile, family: str) -> ModelFile:
    """The model file's sizes in another T5 family (the same file for t5_v1_0)."""
    if not FAMILIES[family]:
        return model_file
    architecture = T5Architecture.model_validate({**model_file.architecture.model_dump(), **FAMILIES[family]})
    return model_file.model_copy(update={"name": f"{model_file.name}_{family}", "architecture": architecture})


@pytest.fixture(scope="session")
def check_context():
    """check_context(name, family) -> a CheckContext for spec/<name>.yaml on its check model in that T5
    family (default T5 v1.0, the spec's own), cached per spec and family."""
    cache = {}

    def make(name: str, family: str = "t5_v1_0") -> CheckContext:
        if (name, family) not in cache:
            loaded = read_buildable_spec(SPEC_DIR / f"{name}.yaml")
            cache[name, family] = CheckContext(loaded, in_family(loaded.check_model_file, family))
        return cache[name, family]

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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One small smoke run of Compacter on RTE (8 examples, 1 epoch, seed 42), shared by the tests that only
    read it; a test that changes it works on a copy (`shutil.copytree`)."""
    from harness.cli import EXIT_OK, main

    output_dir = tmp_path_factory.mktemp("tiny_run") / "run"
    argv = ["run", str(SPEC_DIR / "compacter.yaml"), "--tasks", "rte", "--max-train-samples", "8", "--epochs", "1",
            "--deepspeed", "none", "--output-dir", str(output_dir)]  # fmt: skip
    assert main(argv) == EXIT_OK
    return output_dir


# The small runs several test files read (tests/run_helpers.py), each trained once per session. A test that
# changes a run's folder works on a copy (`shutil.copytree`).
@pytest.fixture(scope="session")
def plain_runs(tmp_path_factory) -> tuple[Path, Path]:
    """The plain Trainer's (uninterrupted run, run stopped in step 4), every checkpoint kept."""
    from tests.run_helpers import run_pair

    return run_pair(tmp_path_factory.mktemp("plain_runs"), "none")


@pytest.fixture(scope="session")
def zero2_runs(tmp_path_factory) -> tuple[Path, Path]:
    """DeepSpeed ZeRO-2's (uninterrupted run, run stopped in step 4) on the CPU, every checkpoint kept."""
    pytest.importorskip("deepspeed")
    from tests.run_helpers import run_pair

    return run_pair(tmp_path_factory.mktemp("zero2_runs"), "zero2")
