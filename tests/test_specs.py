"""Generic tests over every spec file: each validates and passes every invariant it names."""

from __future__ import annotations

import pytest
import yaml

from harness.invariants import INVARIANTS, run_invariant
from harness.model.checked import read_buildable_spec
from harness.spec.loader import read_spec
from harness.spec.model_choice import load_model_file
from impl.registry import names as method_names
from tests.conftest import FAMILIES, SPEC_DIR, SPEC_FILES, in_family

PAIRS = [(path.stem, name) for path in SPEC_FILES for name in read_spec(path).spec.invariants]


def test_spec_folder_is_not_empty():
    assert SPEC_FILES, f"no spec files in {SPEC_DIR}"


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_spec_validates(path):
    loaded = read_buildable_spec(path)  # raises SpecError listing every problem
    assert loaded.name == path.stem
    assert loaded.spec.method.name in method_names()


# Invariants that never read the check model, so its family cannot change them: run once, on T5 v1.0.
FAMILY_FREE = {
    "budget": "counted on the spec's `model` (t5-base), not on the check model",
    "fwht": "a transform of random tensors against scipy's Hadamard matrix",
}
FAMILY_CASES = [
    (spec, name, family)
    for spec, name in PAIRS
    for family in FAMILIES
    if family == "t5_v1_0" or name not in FAMILY_FREE
]


@pytest.mark.parametrize("spec_name, invariant, family", FAMILY_CASES, ids=["-".join(c) for c in FAMILY_CASES])
def test_invariant_holds(check_context, spec_name, invariant, family):
    """Every invariant on the spec's check model, as T5 v1.0, as T5 v1.1 / Flan-T5 and as mT5 (those that read
    no model, `FAMILY_FREE`, once)."""
    result = run_invariant(invariant, check_context(spec_name, family))
    assert result.ok, result.line()


@pytest.mark.parametrize("family, bundled", [("t5_v1_1", "t5_tiny_v1_1"), ("mt5", "mt5_tiny")])
def test_the_bundled_tiny_families_are_the_ones_the_invariants_run_on(family, bundled):
    """`harness check --model t5_tiny_v1_1` (or mt5_tiny) checks what CI checks."""
    tiny = load_model_file(SPEC_DIR / "models" / "t5_tiny.yaml")
    assert load_model_file(SPEC_DIR / "models" / f"{bundled}.yaml").architecture == in_family(tiny, family).architecture


def test_every_registered_method_has_its_spec():
    missing = [name for name in method_names() if not (SPEC_DIR / f"{name}.yaml").is_file()]
    assert not missing, f"registered methods without spec/<name>.yaml: {missing}"


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_every_spec_names_only_known_invariants(path):
    unknown = set(read_spec(path).spec.invariants) - set(INVARIANTS)
    assert not unknown


def builder_and_spec_disagreements(path, get_method=None) -> dict[str, object]:
    """Where the spec at `path` and its method builder's defaults are two sources of a paper value.

    The spec declares every setting of the paper; a builder's default (for callers of impl/ without a
    spec) may repeat it but never differ from it, and every defaulted argument must be stated in the
    spec (None, "everywhere", excepted), so no check can pass by using the builder's value instead of
    the spec's; an argument a fidelity quirk sets is stated by the spec's `fidelity:` section. Returns
    {argument: (spec's value, builder's default)}, "unstated" for a missing one.
    """
    from harness.spec.fidelity import QUIRKS
    from impl.registry import get

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    defaults = (get_method or get)(data["method"]["name"]).defaults()
    stated = data["method"].get("args") or {}
    by_fidelity = {q.argument[0] for q in QUIRKS if q.argument and q.applies_to(data["method"]["name"])}
    as_yaml = {name: list(value) if isinstance(value, tuple) else value for name, value in defaults.items()}
    differ = {
        name: (value, as_yaml[name]) for name, value in stated.items() if name in as_yaml and as_yaml[name] != value
    }
    unstated = {
        name: ("unstated", value)
        for name, value in as_yaml.items()
        if name not in stated and name not in by_fidelity and value is not None
    }
    return {**differ, **unstated}


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_a_paper_value_the_spec_states_and_the_builder_defaults_to_agree(path):
    assert builder_and_spec_disagreements(path) == {}


def test_a_spec_value_that_drifts_from_the_builder_default_is_caught(spec_copy):
    path = spec_copy / "compacter.yaml"
    assert builder_and_spec_disagreements(path) == {}
    path.write_text(path.read_text(encoding="utf-8").replace("phm_rule_init_std: 1.0e-4", "phm_rule_init_std: 1.0e-2"))
    assert builder_and_spec_disagreements(path) == {"phm_rule_init_std": (1.0e-2, 1.0e-4)}


def test_a_builder_default_the_spec_leaves_unstated_is_caught(spec_copy):
    path = spec_copy / "adapter.yaml"
    assert builder_and_spec_disagreements(path) == {}
    path.write_text(path.read_text(encoding="utf-8").replace("    init_std: 0.01", "", 1))
    assert builder_and_spec_disagreements(path) == {"init_std": ("unstated", 0.01)}


def test_a_builder_default_that_drifts_from_the_spec_is_caught():
    from impl.registry import get

    class Drifted:  # low_rank_adapter's builder with `rank: int = 2`
        def defaults(self):
            return {**get("low_rank_adapter").defaults(), "rank": 2}

    path = SPEC_DIR / "low_rank_adapter.yaml"
    assert builder_and_spec_disagreements(path) == {}
    assert builder_and_spec_disagreements(path, get_method=lambda name: Drifted()) == {"rank": (1, 2)}


PAPER_ACTIVATION = "gelu_new"  # docs/paper.md, "Where the adapter-family modules go": A(y) = y + up(act(down(y)))


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_every_paper_adapter_names_the_papers_activation(path):
    """The activation the formula invariant checks against is the spec's: the spec's is the paper's."""
    from impl.registry import get

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    args = data["method"].get("args") or {}
    if data.get("defaults") == "paper" and "non_linearity" in get(data["method"]["name"]).defaults():
        assert args.get("non_linearity") == PAPER_ACTIVATION
