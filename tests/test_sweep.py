"""`harness run --sweep`: the paper's grid, one run per valid point, chosen per task by validation."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import harness.train.spec_run
from harness.errors import DataError, OutputDirError, SpecError
from harness.train.run_options import RunOptions
from harness.train.sweep import grid_points, sweep
from tests.conftest import SPEC_DIR


def test_the_grid_covers_the_arguments_the_method_accepts():
    compacter = grid_points(SPEC_DIR / "compacter.yaml", RunOptions())
    assert len(compacter) == 9 and {"reduction_factor": 8, "n": 12} in compacter
    adapter = grid_points(SPEC_DIR / "adapter.yaml", RunOptions())  # no n: only the reduction factor
    assert adapter == [{"reduction_factor": 32}, {"reduction_factor": 16}, {"reduction_factor": 8}]
    with pytest.raises(SpecError, match="grid"):
        grid_points(SPEC_DIR / "bitfit.yaml", RunOptions())


def fake_results(validation: dict[str, float], test: dict[str, float], percent: float) -> SimpleNamespace:
    """What the sweep reads of a run's Results: per task the mean scores, and the budget."""
    return SimpleNamespace(
        budget=SimpleNamespace(trainable_percent=percent),
        tasks={
            task: SimpleNamespace(validation_mean={"average": validation[task]}, test_mean={"average": test[task]})
            for task in validation
        },
    )


def test_each_task_takes_the_point_with_the_best_validation_and_reports_its_test(tmp_path, monkeypatch):
    # Hand-made scores per (reduction factor, n): rte is best on validation at (16, 4), cola at (8, 8).
    table = {
        (32, 4): ({"rte": 60.0, "cola": 10.0}, {"rte": 59.0, "cola": 11.0}),
        (16, 4): ({"rte": 70.0, "cola": 12.0}, {"rte": 65.0, "cola": 13.0}),
        (8, 8): ({"rte": 55.0, "cola": 30.0}, {"rte": 80.0, "cola": 25.0}),
    }
    calls = []

    def run_spec(spec_path, options):
        if options.check_only:  # the sweep's check of its first point before it prepares the folder
            return {}, options.output_dir
        point = {o.split("=")[0].rsplit(".", 1)[1]: int(o.split("=")[1]) for o in options.overrides}
        calls.append(point)
        key = (point["reduction_factor"], point["n"])
        if key not in table:  # stands for a point the model cannot take
            raise SpecError([f"{spec_path}: method.args.n: {key[1]} must divide the bottleneck"])
        return fake_results(*table[key], percent=0.07), options.output_dir

    monkeypatch.setattr(harness.train.spec_run, "run_spec", run_spec)
    out = tmp_path / "sweep"
    _, folder = sweep(SPEC_DIR / "compacter.yaml", RunOptions(output_dir=out))
    assert folder == out and len(calls) == 9
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["chosen"]["rte"]["point"] == {"reduction_factor": 16, "n": 4}
    assert summary["chosen"]["rte"]["test"] == 65.0  # the chosen point's test, not the best test (80)
    assert summary["chosen"]["cola"]["point"] == {"reduction_factor": 8, "n": 8}
    assert len(summary["skipped"]) == 6
    assert "**(chosen)**" in (out / "sweep.md").read_text()


def test_a_sweep_refuses_an_existing_folder(tmp_path):
    (tmp_path / "x").write_text("results")
    with pytest.raises(OutputDirError, match="--overwrite"):
        sweep(SPEC_DIR / "compacter.yaml", RunOptions(output_dir=tmp_path))


def test_a_sweep_with_overwrite_and_bad_data_removes_nothing(tmp_path):
    from harness.train.output_dir import MARKER, prepare_output_dir

    earlier = tmp_path / "earlier"
    prepare_output_dir(earlier, resume=False, overwrite=False)  # a sweep folder the harness wrote
    (earlier / "sweep.json").write_text("the earlier sweep")
    (tmp_path / "data").mkdir()  # no rte in it
    data = tmp_path / "data"
    options = RunOptions(output_dir=earlier, overwrite=True, data_dir=data, tasks=["rte"], deepspeed="none")
    with pytest.raises(DataError, match="no file for split 'train'"):
        sweep(SPEC_DIR / "compacter.yaml", options)
    assert (earlier / "sweep.json").read_text() == "the earlier sweep" and (earlier / MARKER).is_file()
