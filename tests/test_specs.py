"""Generic tests over every spec file: each validates and passes every invariant it names."""

from __future__ import annotations

import pytest
import yaml

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


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_a_paper_value_the_spec_states_and_the_builder_defaults_to_agree(path):
    """The spec is where the paper's value is declared; a builder's default (for callers of impl/ without a
    spec) may repeat it, but never differ from it."""
    from impl.registry import get

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    defaults = get(data["method"]["name"]).defaults()
    stated = data["method"].get("args") or {}
    differ = {
        name: (value, defaults[name])
        for name, value in stated.items()
        if name in defaults and (list(defaults[name]) if isinstance(defaults[name], tuple) else defaults[name]) != value
    }
    assert differ == {}
