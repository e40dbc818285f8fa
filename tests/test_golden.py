"""Golden results (tests/golden/golden.py): every pinned smoke run reruns to its pinned numbers, within a
tolerance derived from the seeds' spread, and the check fails on a one-line change of the loss reduction or
of the learning-rate schedule."""

from __future__ import annotations

import pytest

from harness.train import batching, seed_run
from tests.golden.golden import (
    EPOCHS,
    METHODS,
    OVERRIDES,
    RATIO,
    SEEDS,
    TASK,
    THREAD_SENSITIVE,
    THREADS,
    deviations,
    environment,
    kind,
    load,
    measure,
    tolerances,
)

pytestmark = pytest.mark.slow  # trains seven methods three times each


@pytest.fixture(scope="module")
def golden():
    return load()


@pytest.fixture(scope="module")
def measured():
    """Method -> its golden runs measured now, each once per test session (the fail tests reuse Compacter's)."""
    cache: dict[str, dict] = {}

    def get(method: str) -> dict:
        if method not in cache:
            cache[method] = measure(method)
        return cache[method]

    return get


@pytest.mark.parametrize("method", METHODS)
def test_a_golden_run_reproduces_its_pinned_numbers(golden, measured, method):
    here = {**environment(), "threads": THREADS}
    assert deviations(method, golden, measured(method)) == [], f"measured with {golden['environment']}, here {here}"


def test_the_golden_file_pins_every_method_and_seed_with_tolerances_from_their_spread(golden):
    assert golden["setting"] == {"task": TASK, "epochs": EPOCHS, "seeds": list(SEEDS), "overrides": list(OVERRIDES)}
    assert golden["ratio"] == RATIO and set(golden["methods"]) == set(METHODS)
    for pinned in golden["methods"].values():
        seeds = pinned["seeds"]
        assert sorted(seeds) == [str(s) for s in SEEDS]
        names = set(seeds["1"])
        assert {f"train_loss[{e}]" for e in range(1, EPOCHS + 1)} | {"best_epoch", "test.average"} <= names
        for name in names:  # the tolerance is the ratio times the range over the three seeds, recomputed here
            values = [seeds[s][name] for s in seeds]
            assert pinned["tolerance"][name] == pytest.approx(RATIO * (max(values) - min(values)), abs=1e-15)
            assert kind(name) in ("train_loss", "validation", "test", "best_epoch")


def test_the_thread_insensitive_methods_hold_across_thread_counts(golden):
    """For every method but THREAD_SENSITIVE, a tenth of the seed spread of each loss is more than five times
    what measuring on one thread moved it, and a number the seeds leave unchanged did not move either; the
    sensitive ones are recorded, and they are sensitive (else they belong with the others)."""
    drift = golden["thread_drift"]["methods"]
    assert golden["environment"]["threads"] == THREADS and set(drift) == set(METHODS)
    for method, pinned in golden["methods"].items():
        losses = {n: t for n, t in pinned["tolerance"].items() if kind(n) == "train_loss"}
        if method in THREAD_SENSITIVE:
            assert drift[method]["train_loss"] > min(losses.values()), (method, drift[method])
            continue
        assert all(t > 5 * drift[method]["train_loss"] for t in losses.values()), (method, losses, drift[method])
        still = {kind(n) for n, t in pinned["tolerance"].items() if t == 0}
        assert all(drift[method][k] == 0 for k in still), (method, drift[method])


def test_tolerances_and_deviations_against_numbers_worked_by_hand():
    seeds = {"1": {"a": 1.0, "b": 3.0}, "2": {"a": 1.5, "b": 3.0}, "3": {"a": 2.0, "b": 3.0}}
    assert tolerances(seeds, ratio=0.1) == {"a": pytest.approx(0.1), "b": 0.0}
    golden = {"ratio": 0.1, "methods": {"m": {"seeds": seeds, "tolerance": {"a": 0.1, "b": 0.0}}}}
    assert deviations("m", golden, {"1": {"a": 1.09, "b": 3.0}}) == []
    assert deviations("m", golden, {"1": {"a": 1.11, "b": 3.0}}) == [
        "m seed 1: a 1.11, golden 1 (tolerance ±0.1 = 0.1 × the seed spread)"
    ]
    assert deviations("m", golden, {"2": {"a": 1.5, "b": 3.01}})[0].startswith("m seed 2: b 3.01, golden 3")
    assert deviations("m", golden, {"3": {"a": 2.0}}) == ["m seed 3: b only in the golden file"]
    assert deviations("m", golden, {"4": {"a": 2.0, "b": 3.0}}) == ["m seed 4: no golden numbers for this seed"]


def test_a_loss_averaged_per_micro_batch_moves_the_golden_numbers(golden, measured, monkeypatch):
    """The loss of each micro-batch divided by its own target tokens, not the global batch's: one line."""
    assert deviations("compacter", golden, measured("compacter")) == []

    def per_micro_batch(outputs, labels, num_items_in_batch=None):
        return batching.token_mean_loss(outputs, labels)  # the global token count dropped

    monkeypatch.setattr("harness.train.trainer.token_mean_loss", per_micro_batch)
    moved = deviations("compacter", golden, measure("compacter", seeds=(1,)))
    assert any("train_loss[1]" in line for line in moved), moved


def test_a_schedule_without_warm_up_moves_the_golden_numbers(golden, measured, monkeypatch):
    """The learning rate decays from the first step (the warm-up dropped): one line."""
    assert deviations("compacter", golden, measured("compacter")) == []
    original = seed_run.training_arguments

    def no_warm_up(*args, **kwargs):
        arguments = original(*args, **kwargs)
        arguments.warmup_steps = 0
        return arguments

    monkeypatch.setattr(seed_run, "training_arguments", no_warm_up)
    moved = deviations("compacter", golden, measure("compacter", seeds=(1,)))
    assert any("train_loss[1]" in line for line in moved), moved
