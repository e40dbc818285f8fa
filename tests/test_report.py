"""`python -m harness report`: report.md (runs, per-task scores against the published numbers, one section
per run) and the Figure-1-like PNG, written into tmp_path; never over an existing report without
--overwrite; without matplotlib the report is still written and says how to get the plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.cli import EXIT_BAD_INPUT, EXIT_OK, main
from harness.results.report import PLOT_NAME, REPORT_NAME
from harness.results.report_format import fmt_bytes, fmt_seconds, run_labels
from harness.results.results_json import load_results
from harness.spec.loader import default_spec_dir, read_spec
from tests.results_helpers import example_results

GLUE = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MATPLOTLIB = ("matplotlib", "matplotlib.figure", "matplotlib.ticker", "matplotlib.backends.backend_agg")


@pytest.fixture(scope="module")
def adapter() -> dict[str, Any]:
    return json.loads(json.dumps(read_spec(default_spec_dir() / "adapter.yaml").resolved))


@pytest.fixture
def runs(tmp_path, adapter) -> Path:
    """runs/paper/results.json (GLUE, averages 80…88 → 85.5) and runs/smoke/nested/results.json (toy, 2 seeds)."""
    paper = example_results(dict(zip(GLUE, (80, 82, 84, 86, 88, 90, 86, 88), strict=True)), resolved=adapter)
    smoke = example_results(
        {"rte": 60.0, "cb": 70.0}, resolved=adapter, profile="smoke", architecture="t5_tiny",
        trainable_params=5000, base_params=400_000, peak_memory_bytes=2**28, seeds=(1, 2),
    )  # fmt: skip
    for path, data in ((tmp_path / "runs" / "paper", paper), (tmp_path / "runs" / "smoke" / "nested", smoke)):
        path.mkdir(parents=True)
        (path / "results.json").write_text(json.dumps(data), encoding="utf-8")
    return tmp_path / "runs"


def run_cli(capsys, *argv: str | Path) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_report_and_plot(runs, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_dir = tmp_path / "out"
    rc, out, err = run_cli(capsys, "report", runs, "--output-dir", out_dir)
    assert rc == EXIT_OK, err
    assert out.splitlines() == [f"{out_dir / REPORT_NAME}: report of 2 runs", f"{out_dir / PLOT_NAME}: plot"]
    png = (out_dir / PLOT_NAME).read_bytes()
    assert png.startswith(PNG_MAGIC)
    assert len(png) > 10_000  # a drawn figure, not an empty file
    report = (out_dir / REPORT_NAME).read_text(encoding="utf-8")
    assert f"![Average test score against trainable parameters]({PLOT_NAME})" in report
    # the per-task table: tasks in the paper's order, the GLUE average (684 / 8 = 85.5), the published row
    assert "| run | cola | sst2 | mrpc | qqp | stsb | mnli | qnli | rte | cb | GLUE avg |" in report
    assert "| adapter (paper) | 80.00 | 82.00 | 84.00 | 86.00 | 88.00 | 90.00 | 86.00 | 88.00 | — | 85.50 |" in report
    assert "| ↳ published (adapter) | — | — | — | — | — | — | — | — | — | 85.78 ± 1.0 (pass) |" in report
    assert "| adapter (smoke) | — | — | — | — | — | — | — | 60.00 | 70.00 | — |" in report
    assert "85.78 ± 1.0 (not comparable) |" in report
    # one section per run, with every metric, the seeds and the chosen checkpoint
    assert "## adapter (paper)" in report
    assert "## adapter (smoke)" in report
    assert "- comparable with the paper: **no** — smoke profile" in report
    assert "- budget: 5,000 trainable of 400,000 = 1.2500 % (published: 0.83 % on t5_base)" in report
    assert "| rte | 2 | 2 | accuracy 61.00 · average 61.00 | accuracy 60.00 · average 60.00 | 1.500 → 0.500 |" in report
    assert "| rte | mean | | accuracy 61.00 · average 61.00 | accuracy 60.00 · average 60.00 |" in report
    assert "`checkpoints/seed1/epoch-2`" in report
    assert "- results: `../runs/smoke/nested/results.json`" in report
    # the regression table: the published numbers, and nothing else
    assert "| adapter (paper) | glue average | 85.50 | 85.78 | 1.0 | pass |" in report
    assert "| adapter (paper) | trainable % | 0.8323 | 0.83 | rounded | pass | rounds to 0.83 |" in report
    assert "| adapter (smoke) | trainable % | 1.2500 | 0.83 | rounded | not comparable |" in report


def test_default_output_dir_is_the_one_folder_given(runs, capsys):
    pytest.importorskip("matplotlib")
    rc, _, err = run_cli(capsys, "report", runs)
    assert rc == EXIT_OK, err
    assert (runs / REPORT_NAME).is_file()
    assert (runs / PLOT_NAME).read_bytes().startswith(PNG_MAGIC)
    rc, _, err = run_cli(capsys, "report", runs / "paper" / "results.json")  # a file: its folder
    assert rc == EXIT_OK, err
    assert (runs / "paper" / REPORT_NAME).is_file()


def test_several_inputs_need_an_output_dir(runs, capsys):
    rc, out, err = run_cli(capsys, "report", runs / "paper", runs / "smoke")
    assert (rc, out) == (EXIT_BAD_INPUT, "")
    assert err.strip() == "--output-dir: required when reporting on several inputs"


def test_no_overwrite_without_the_flag(runs, tmp_path, capsys, monkeypatch):
    for name in MATPLOTLIB:  # the plot is not what this test is about: keep it fast
        monkeypatch.setitem(sys.modules, name, None)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / REPORT_NAME).write_text("mine", encoding="utf-8")
    (out_dir / PLOT_NAME).write_bytes(b"old plot")
    rc, out, err = run_cli(capsys, "report", runs, "--output-dir", out_dir)
    assert (rc, out) == (EXIT_BAD_INPUT, "")
    assert err.splitlines() == [
        f"{out_dir / REPORT_NAME}: (top level): already exists; pass --overwrite to replace it",
        f"{out_dir / PLOT_NAME}: (top level): already exists; pass --overwrite to replace it",
    ]
    assert (out_dir / REPORT_NAME).read_text(encoding="utf-8") == "mine"
    rc, _, _ = run_cli(capsys, "report", runs, "--output-dir", out_dir, "--overwrite")
    assert rc == EXIT_OK
    assert (out_dir / REPORT_NAME).read_text(encoding="utf-8").startswith("# Results report")
    assert not (out_dir / PLOT_NAME).exists()  # no stale plot beside a new report


def test_without_matplotlib_the_report_is_still_written(runs, tmp_path, capsys, monkeypatch):
    for name in MATPLOTLIB:
        monkeypatch.setitem(sys.modules, name, None)
    rc, out, err = run_cli(capsys, "report", runs, "--output-dir", tmp_path / "out")
    assert rc == EXIT_OK
    assert out.strip() == f"{tmp_path / 'out' / REPORT_NAME}: report of 2 runs"
    assert "pip install matplotlib" in err
    assert not (tmp_path / "out" / PLOT_NAME).exists()
    report = (tmp_path / "out" / REPORT_NAME).read_text(encoding="utf-8")
    assert "No plot: matplotlib is not installed: `pip install matplotlib`" in report
    assert "| ↳ published (adapter) |" in report


def test_invalid_results_write_nothing(runs, tmp_path, capsys):
    (runs / "paper" / "results.json").write_text("{", encoding="utf-8")
    rc, out, err = run_cli(capsys, "report", runs, "--output-dir", tmp_path / "out")
    assert (rc, out) == (EXIT_BAD_INPUT, "")
    message = "line 1, column 2: invalid JSON: Expecting property name enclosed in double quotes"
    assert err.strip() == f"{runs / 'paper' / 'results.json'}: {message}"
    assert not (tmp_path / "out").exists()


def test_labels_are_unique(adapter, tmp_path):
    paths = []
    for folder in ("x", "y"):
        path = tmp_path / folder / "results.json"
        path.parent.mkdir()
        path.write_text(json.dumps(example_results({"rte": 70.0}, resolved=adapter)), encoding="utf-8")
        paths.append(path)
    loaded = [load_results(p) for p in (*paths, paths[0])]
    assert run_labels(loaded) == ["adapter (paper) [x]", "adapter (paper) [y]", "adapter (paper) [x] #2"]


def test_formatting():
    assert fmt_bytes(3 * 2**30) == "3.00 GiB"
    assert fmt_bytes(512 * 2**20) == "512.00 MiB"
    assert fmt_bytes(100) == "100 B"
    assert fmt_seconds(12.34) == "12.3 s"
    assert fmt_seconds(125) == "2 min 05 s"
    assert fmt_seconds(3 * 3600 + 7 * 60) == "3 h 07 min"


def test_the_report_shows_means_over_seeds_and_the_average_over_tasks(adapter, tmp_path):
    from harness.results.report import render_report
    from harness.results.results_json import validate_results

    # rte: seeds at 60 and 71 -> mean 65.5; cb: 80 and 80 -> 80; the run's average score (65.5 + 80) / 2 = 72.75
    data = example_results({"rte": 65.5, "cb": 80.0}, resolved=adapter, seeds=(1, 2))
    for run, score in zip(data["tasks"]["rte"]["runs"], (60.0, 71.0), strict=True):
        run["test"] = {"accuracy": score, "average": score}
    loaded = validate_results(data, tmp_path / "results.json")
    report = render_report([loaded], tmp_path, None, "not drawn")
    assert "| rte | mean | | accuracy 66.50 · average 66.50 | accuracy 65.50 · average 65.50 |" in report
    assert "| rte | 2 | 2 | accuracy 66.50 · average 66.50 | accuracy 71.00 · average 71.00 |" in report
    row = next(line for line in report.splitlines() if line.startswith("| adapter (paper) | adapter | paper |"))
    assert row.split(" | ")[8] == "72.75"  # the "average score" column: test averages, not validation (+1)
