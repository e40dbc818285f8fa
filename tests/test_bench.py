"""`harness bench` and `harness bench-layers` run end to end on the tiny model and report every field.

Benchmarks are not timed tests: nothing here asserts a speed. What is checked is that the command works,
that its JSON has the fields other tools read, and that the numbers in it are consistent with each other
and with counts made elsewhere.
"""

from __future__ import annotations

import json
import statistics

import pytest

import impl.layers.phm
from harness.bench.run import CONFIG_FIELDS, ENVIRONMENT_FIELDS, METHOD_FIELDS, SPREAD_FIELDS, TOP_FIELDS
from harness.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main
from harness.model.budget import count_budget
from harness.model.checked import read_buildable_spec
from tests.conftest import SPEC_DIR

pytestmark = pytest.mark.slow  # starts a process per method to time it

TINY = ["--model", "t5_tiny", "--batch", "2", "--source-len", "16", "--target-len", "2"]
QUICK = ["--steps", "2", "--warmup", "1", "--rounds", "1"]


@pytest.fixture(scope="module")
def bench_report(tmp_path_factory):
    """One bench invocation on the tiny T5: the two references and Compacter, their op times, outputs written."""
    folder = tmp_path_factory.mktemp("bench")
    argv = ["bench", str(SPEC_DIR / "compacter.yaml"), *TINY, *QUICK, "--op-times", "3", "--output-dir", str(folder)]
    code = main([*argv, "--json"])
    return code, folder, json.loads((folder / "bench.json").read_text())


def test_bench_json_has_every_field(bench_report):
    code, _, report = bench_report
    assert code == EXIT_OK
    assert set(TOP_FIELDS) <= set(report)
    assert set(CONFIG_FIELDS) <= set(report["config"])
    assert set(ENVIRONMENT_FIELDS) <= set(report["environment"])
    assert [row["name"] for row in report["methods"]] == ["floor", "full_finetune", "compacter"]
    for row in report["methods"]:
        assert set(METHOD_FIELDS) <= set(row), row["name"]
        for key in ("step_s", "peak_memory_bytes", "time_vs_floor", "memory_vs_full_finetune"):
            assert set(SPREAD_FIELDS) <= set(row[key]), (row["name"], key)
        assert row["peak_memory_bytes"]["median"] > 0 and row["step_s"]["median"] > 0
        assert len(row["step_s"]["all"]) == 2  # --steps 2, --rounds 1


def test_bench_counts_agree_with_the_budget_and_the_layer_norms(bench_report):
    rows = {row["name"]: row for row in bench_report[2]["methods"]}
    tiny = read_buildable_spec(SPEC_DIR / "compacter.yaml", model="t5_tiny")
    assert rows["compacter"]["trainable_params"] == count_budget(tiny).trainable_params  # meta-device count
    # the floor trains T5's layer norms only: t5_tiny has 2 + 2 blocks, so 2·2 + 2·3 + 2 final = 12 norms of 384
    assert rows["floor"]["trainable_params"] == 12 * 384
    assert rows["full_finetune"]["trainable_params"] == rows["floor"]["rounds"][0]["total_params"]


def test_bench_ratios_are_same_round_ratios(bench_report):
    rows = {row["name"]: row for row in bench_report[2]["methods"]}
    assert rows["floor"]["time_vs_floor"]["median"] == 1.0
    assert rows["full_finetune"]["memory_vs_full_finetune"]["median"] == 1.0
    method, floor = rows["compacter"]["rounds"][0], rows["floor"]["rounds"][0]
    expected = statistics.median(method["step_s"]) / statistics.median(floor["step_s"])
    assert rows["compacter"]["time_vs_floor"]["median"] == pytest.approx(expected)
    assert rows["compacter"]["memory_vs_floor"]["median"] == pytest.approx(
        method["peak_memory_bytes"] / floor["peak_memory_bytes"]
    )


def test_bench_writes_the_table_and_the_plot(bench_report):
    _, folder, _ = bench_report
    table = (folder / "bench.md").read_text()
    assert "| compacter |" in table and "| floor (reference) |" in table and "time ÷ floor" in table
    assert (folder / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_op_times_are_one_extra_step_per_op_against_the_floor(bench_report):
    _, folder, report = bench_report
    assert report["config"]["op_rows"] == 3
    for row in report["methods"]:
        times = row["rounds"][-1]["op_times"]
        assert times and {"op", "self_ms", "calls"} <= set(times[0]), row["name"]
        assert [t["self_ms"] for t in times] == sorted((t["self_ms"] for t in times), reverse=True)  # largest first
    table = (folder / "bench.md").read_text()
    assert "Where the time goes" in table and "- **compacter**:" in table and "- **floor**" not in table
    line = next(line for line in table.splitlines() if line.startswith("- **compacter**:"))
    assert line.count(" calls)") == 3  # --op-times 3: the three ops with the largest Δ


def test_bench_never_replaces_earlier_results_silently(bench_report, capsys):
    _, folder, _ = bench_report
    before = (folder / "bench.json").read_bytes()
    code = main(["bench", str(SPEC_DIR / "compacter.yaml"), *TINY, *QUICK, "--output-dir", str(folder)])
    assert code == EXIT_BAD_INPUT
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (folder / "bench.json").read_bytes() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "--steps: 0 must be at least 1"),
        (["--model", "t5_huge"], "t5_huge"),
        (["--deepspeed", "missing.json"], "missing.json: (top level): file not found"),
    ],
)
def test_bench_bad_input_is_one_line_and_exit_2(args, message, capsys):
    code = main(["bench", str(SPEC_DIR / "compacter.yaml"), *TINY, *QUICK, *args])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert message in err and "Traceback" not in err


LAYERS = ["bench-layers", "--k", "48", "--d", "12", "--n", "4", "--rows", "32", "--repeats", "1", "--json"]


def test_bench_layers_checks_every_algorithm_against_the_kronecker_sum(capsys):
    assert main(LAYERS) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["exact"] is True
    # LPHM (r = 1) and PHM, down (48 → 12) and up (12 → 48)
    assert {(r["layer"], r["direction"]) for r in report["results"]} == {
        ("LPHM", "down"), ("LPHM", "up"), ("PHM", "down"), ("PHM", "up")
    }  # fmt: skip
    lphm = next(r for r in report["results"] if r["layer"] == "LPHM")
    assert set(lphm["ms"]) == {"linear", "materialise", "factored_in", "factored_out"}


def test_bench_layers_fails_when_an_algorithm_is_wrong(monkeypatch, capsys):
    original = impl.layers.phm.factored_out
    monkeypatch.setattr(impl.layers.phm, "factored_out", lambda x, a, s, t, b: original(x, a, s, t, b) + 1.0)
    assert main(LAYERS) == EXIT_FAILED
    report = json.loads(capsys.readouterr().out)
    assert report["exact"] is False
