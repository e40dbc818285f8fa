"""Generic tests over every spec file: each validates and passes every invariant it names."""

from __future__ import annotations

import pytest

from harness.invariants import INVARIANTS, run_invariant
from harness.model.checked import load_spec
from impl.registry import names as method_names
from tests.conftest import SPEC_DIR, SPEC_FILES

PAIRS = [(path.stem, name) for path in SPEC_FILES for name in load_spec(path, build=False).spec.invariants]


def test_spec_folder_is_not_empty():
    assert SPEC_FILES, f"no spec files in {SPEC_DIR}"


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_spec_validates(path):
    loaded = load_spec(path)  # raises SpecError listing every problem
    assert loaded.name == path.stem
    assert loaded.spec.method.name in method_names()


@pytest.mark.parametrize("spec_name, invariant", PAIRS, ids=[f"{s}-{i}" for s, i in PAIRS])
def test_invariant_holds(check_context, spec_name, invariant):
    result = run_invariant(invariant, check_context(spec_name))
    assert result.ok, result.line()


def test_every_registered_method_has_its_spec():
    missing = [name for name in method_names() if not (SPEC_DIR / f"{name}.yaml").is_file()]
    assert not missing, f"registered methods without spec/<name>.yaml: {missing}"


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_every_spec_names_only_known_invariants(path):
    unknown = set(load_spec(path, build=False).spec.invariants) - set(INVARIANTS)
    assert not unknown
