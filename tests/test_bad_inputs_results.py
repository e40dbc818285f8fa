"""The bad-input corpus of `compare` and `report`: a results.json (or a folder of them) made or changed by hand.

Each case is one line naming the file and the key, exit 2, and every file under the folder byte-identical
afterwards: a results file never hangs a command (a pipe), never exhausts its parser (deep nesting), and never
claims more than its runs show (a mean that is not theirs, a seed twice, a recipe key left out).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cli import EXIT_OK, main
from tests.results_helpers import example_results
from tests.test_bad_inputs import one_line_unchanged


def nested(depth: int) -> str:
    return '{"format": ' + "[" * depth + "]" * depth + "}"


def edited(edit: Callable[[dict[str, Any]], None], **options) -> Callable[[], str]:
    def make() -> str:
        data = example_results({"rte": 70.0}, **options)
        edit(data)
        return json.dumps(data)

    return make


def raw(content: str | bytes) -> Callable[[], str | bytes]:
    return lambda: content


def dropping_recipe_key(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["tasks"]["rte"]["runs"][0]["recipe"].pop(key)


@dataclass(frozen=True)
class ResultsCase:
    id: str
    make: Callable[[], str | bytes]
    expected: str  # the line after `{path}: `


# fmt: off
RESULTS_CASES = [
    ResultsCase("nested 100 deep", raw(nested(100)), "(top level): nested 101 levels deep; a results.json nests at"),
    ResultsCase("nested 100,000 deep", raw(nested(100_000)), "(top level): nested too deeply"),
    ResultsCase("NaN in a test mean", edited(lambda d: d["tasks"]["rte"]["test_mean"].update(accuracy=float("nan"))),
                "tasks.rte.test_mean.accuracy: not a finite number"),
    ResultsCase("Infinity in the wall time", edited(lambda d: d.update(wall_time_s=float("inf"))),
                "wall_time_s: not a finite number"),
    ResultsCase("gzip-compressed", raw(b"\x1f\x8b\x08\x00" + bytes(20)), "(top level): a gzip-compressed file"),
    ResultsCase("UTF-16", raw('{"format": 1}'.encode("utf-16")), "(top level): UTF-16 text"),
    ResultsCase("Latin-1", raw('{"format": "r\xe9sultats"}'.encode("latin-1")),
                "(top level): not UTF-8 text (byte 0xe9 on line 1)"),
    ResultsCase("empty", raw(""), "line 1, column 1: invalid JSON"),
    ResultsCase("a list", raw("[1, 2]"), "(top level): expected a JSON object, got list"),
    ResultsCase("a test mean that is not the runs'",
                edited(lambda d: d["tasks"]["rte"]["test_mean"].update(accuracy=99.0, average=99.0), seeds=(1, 2)),
                "tasks.rte.test_mean.accuracy: 99.0 is not the mean of the runs' accuracy, 70.0"),
    ResultsCase("a validation mean with a metric no run has",
                edited(lambda d: d["tasks"]["rte"]["validation_mean"].update(f1=50.0)),
                "tasks.rte.validation_mean: has ['accuracy', 'average', 'f1'], but the runs' scores are"),
    ResultsCase("a seed run twice",
                edited(lambda d: d["tasks"]["rte"]["runs"].append(d["tasks"]["rte"]["runs"][0])),
                "tasks.rte.runs: seed 42 appears twice"),
    ResultsCase("comparable without the recorded learning rate", edited(dropping_recipe_key("learning_rate")),
                "comparable: true, but the effective recipe is not the paper's: rte: training.learning_rate not "
                "recorded"),
    ResultsCase("comparable without the recorded epochs", edited(dropping_recipe_key("epochs")),
                "comparable: true, but the effective recipe is not the paper's: rte: epochs not recorded"),
    ResultsCase("comparable without the recorded precision", edited(dropping_recipe_key("precision")),
                "comparable: true, but the effective recipe is not the paper's: rte: training.precision not "
                "recorded (paper 'fp32')"),
]
# fmt: on


@pytest.mark.parametrize("command", ["compare", "report"])
@pytest.mark.parametrize("case", RESULTS_CASES, ids=[case.id for case in RESULTS_CASES])
def test_a_hand_made_results_file_is_one_line(tmp_path, capsys, case, command):
    path = tmp_path / "results.json"
    content = case.make()
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    line = one_line_unchanged(capsys, [tmp_path], command, path)
    assert line.startswith(f"{path}: {case.expected}"), line


def test_the_unbroken_file_is_accepted_by_both(tmp_path, capsys):
    """The cases above are each one change away from a file both commands accept."""
    path = tmp_path / "results.json"
    path.write_text(json.dumps(example_results({"rte": 70.0}, seeds=(1, 2))))
    assert main(["compare", str(path)]) in (EXIT_OK, 1)
    assert main(["report", str(path)]) == EXIT_OK
    assert "results.json: adapter, paper profile" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["compare", "report"])
def test_a_results_file_that_is_a_pipe_is_refused_without_reading(tmp_path, capsys, command):
    path = tmp_path / "results.json"
    os.mkfifo(path)  # opening it to read would block until a writer comes: it must never be opened
    line = one_line_unchanged(capsys, [tmp_path], command, path)
    assert line == f"{path}: (top level): not a regular file (a pipe, socket or device); expected a results.json"


@pytest.mark.parametrize("command", ["compare", "report"])
def test_a_dangling_link_as_results_file(tmp_path, capsys, command):
    path = tmp_path / "results.json"
    path.symlink_to(tmp_path / "gone.json")
    line = one_line_unchanged(capsys, [tmp_path], command, path)
    assert line == f"{path}: (top level): results.json a dangling symbolic link"


@pytest.mark.parametrize("argv", [("compare", ""), ("report", ""), ("report", "{results}", "--output-dir", "")],
                         ids=["compare", "report", "report --output-dir"])  # fmt: skip
def test_an_empty_path_is_not_the_current_folder(tmp_path, capsys, argv):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(example_results({"rte": 70.0})))
    line = one_line_unchanged(capsys, [tmp_path], *(a.format(results=results) for a in argv))
    assert "an empty path; pass a file or folder name" in line, line


def report_folder(tmp_path: Path) -> Path:
    results = tmp_path / "run" / "results.json"
    results.parent.mkdir()
    results.write_text(json.dumps(example_results({"rte": 70.0})))
    return results.parent


@pytest.mark.parametrize("name", ["report.md", "score_vs_params.png"])
def test_report_never_writes_through_a_link(tmp_path, capsys, name):
    """A report.md (or plot) planted as a link would make `report` write wherever it points."""
    folder = report_folder(tmp_path)
    (folder / name).symlink_to(tmp_path / "elsewhere.md")
    line = one_line_unchanged(capsys, [tmp_path], "report", folder, "--overwrite")
    assert line == f"{folder / name}: (top level): a symbolic link; the report writes a file here: remove it first"
    assert not (tmp_path / "elsewhere.md").exists()


def test_report_onto_a_folder_named_like_its_file(tmp_path, capsys):
    folder = report_folder(tmp_path)
    (folder / "report.md").mkdir()
    line = one_line_unchanged(capsys, [tmp_path], "report", folder, "--overwrite")
    assert (
        line
        == f"{folder / 'report.md'}: (top level): not a regular file; the report writes a file here: remove it first"
    )


@pytest.mark.parametrize(
    "predictions",
    ["[" * 5000 + "]" * 5000, '{"source": 1, "target": 2, "prediction": 3}', "\udcff"],
    ids=["nested rows", "numbers for text", "not UTF-8"],
)
def test_a_hand_edited_predictions_file_only_hides_the_errors_section(tmp_path, capsys, predictions):
    """The report is still written, saying the file is not readable, instead of a traceback."""
    folder = report_folder(tmp_path)
    seed = folder / "rte" / "seed42"
    seed.mkdir(parents=True)
    (seed / "test_predictions.jsonl").write_bytes(predictions.encode("utf-8", "surrogateescape") + b"\n")
    assert main(["report", str(folder)]) == EXIT_OK
    assert "`test_predictions.jsonl` is not readable JSON lines" in (folder / "report.md").read_text()


def test_compare_of_a_folder_holding_a_pipe_named_results(tmp_path, capsys):
    folder = tmp_path / "runs"
    folder.mkdir()
    os.mkfifo(folder / "results.json")
    line = one_line_unchanged(capsys, [tmp_path], "compare", folder)
    assert line.startswith(f"{folder / 'results.json'}: (top level): not a regular file"), line
