"""results.json v1: strict loading with one clear line per problem, and the regression comparison against
the published numbers of the embedded spec (`harness.results.regression.compare`, `python -m harness compare`).

Expected values are worked out by hand in the comments: the adapter spec publishes a GLUE average of
85.78 with tolerance 1.0 (threshold 84.78) and 0.83 % trainable on t5-base (222,882,048 parameters).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main
from harness.errors import ResultsError
from harness.results.regression import compare
from harness.results.results_json import load_results, validate_results
from harness.results.results_model import spec_hash
from harness.spec.loader import default_spec_dir, read_spec
from tests.results_helpers import example_results

GLUE = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")
T5_BASE = 222_882_048


@pytest.fixture(scope="module")
def adapter() -> dict[str, Any]:
    """spec/adapter.yaml resolved: published GLUE average 85.78 ± 1.0, 0.83 % trainable."""
    return json.loads(json.dumps(read_spec(default_spec_dir() / "adapter.yaml").resolved))


def glue(*averages: float) -> dict[str, float]:
    return dict(zip(GLUE, averages, strict=True))


def with_published(resolved: dict[str, Any], *entries: dict[str, Any], percent: float | None = 0.83) -> dict:
    resolved = copy.deepcopy(resolved)
    resolved["published"] = [{"tolerance": 0.5, "source": "test", **entry} for entry in entries]
    resolved["budget"]["published_percent"] = percent
    if percent is None:
        resolved["budget"]["source"] = None
    return resolved


def statuses(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(check.label, check.status) for check in compare(data).checks]


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def run_cli(capsys, *argv: str | Path) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# --- the comparison ------------------------------------------------------------------------------------------


def test_glue_average_passes(adapter):
    # (80 + 82 + 84 + 86 + 88 + 90 + 86 + 88) / 8 = 684 / 8 = 85.5 >= 84.78
    comparison = compare(example_results(glue(80, 82, 84, 86, 88, 90, 86, 88), resolved=adapter))
    budget, score = comparison.checks
    assert (score.task, score.metric, score.published, score.tolerance) == ("glue", "average", 85.78, 1.0)
    assert score.actual == pytest.approx(85.5, abs=1e-12)
    assert score.status == "pass"
    assert score.note == ""
    assert budget.status == "pass"
    assert comparison.ok is True


def test_glue_average_below_the_tolerance_fails(adapter):
    comparison = compare(example_results(glue(*[84.0] * 8), resolved=adapter))  # 84.0 < 84.78
    assert [(c.label, c.status) for c in comparison.checks] == [("trainable %", "pass"), ("glue average", "fail")]
    assert comparison.ok is False


def test_tolerance_edge_is_inclusive(adapter):
    assert statuses(example_results(glue(*[84.78] * 8), resolved=adapter))[1] == ("glue average", "pass")
    assert statuses(example_results(glue(*[84.77] * 8), resolved=adapter))[1] == ("glue average", "fail")


def test_per_task_tolerance_edge(adapter):
    resolved = with_published(adapter, {"task": "rte", "metric": "accuracy", "value": 70.0})  # threshold 69.5
    assert statuses(example_results({"rte": 69.5}, resolved=resolved))[1] == ("rte accuracy", "pass")
    assert statuses(example_results({"rte": 69.49}, resolved=resolved))[1] == ("rte accuracy", "fail")


def test_above_the_tolerance_passes_with_a_note(adapter):
    (_, score) = compare(example_results(glue(*[87.0] * 8), resolved=adapter)).checks  # 87.0 > 85.78 + 1.0
    assert score.status == "pass"
    assert "above" in score.note
    (_, score) = compare(example_results(glue(*[86.78] * 8), resolved=adapter)).checks  # exactly value + tolerance
    assert score.status == "pass"
    assert score.note == ""


def test_glue_average_needs_all_eight_tasks(adapter):
    seven = dict(list(glue(*[90.0] * 8).items())[:7])  # no rte
    (_, score) = compare(example_results(seven, resolved=adapter)).checks
    assert score.status == "missing"
    assert score.actual is None
    assert "rte" in score.note
    assert compare(example_results(seven, resolved=adapter)).ok is True


def test_superglue_average_over_six_tasks(adapter):
    resolved = with_published(adapter, {"task": "superglue", "metric": "average", "value": 74.0, "tolerance": 1.0})
    superglue = {"boolq": 70.0, "cb": 80.0, "copa": 60.0, "multirc": 70.0, "record": 75.0, "wic": 65.0}
    (_, score) = compare(example_results(superglue, resolved=resolved)).checks
    assert score.actual == pytest.approx(70.0, abs=1e-12)  # 420 / 6 = 70.0 < 73.0
    assert score.status == "fail"
    (_, score) = compare(example_results({**superglue, "wic": 95.0}, resolved=resolved)).checks
    assert score.actual == pytest.approx(75.0, abs=1e-12)  # 450 / 6 = 75.0 >= 73.0
    assert score.status == "pass"


def test_missing_task_and_missing_metric(adapter):
    resolved = with_published(
        adapter, {"task": "rte", "metric": "accuracy", "value": 70.0}, {"task": "cola", "metric": "mcc", "value": 60.0}
    )
    checks = compare(example_results({"cola": 61.0}, resolved=resolved)).checks  # cola has accuracy, not mcc
    assert [(c.label, c.status) for c in checks] == [
        ("trainable %", "pass"),
        ("rte accuracy", "missing"),
        ("cola mcc", "missing"),
    ]
    assert "no rte" in checks[1].note
    assert "'mcc'" in checks[2].note


def test_smoke_profile_is_not_comparable_never_failed(adapter):
    data = example_results(glue(*[10.0] * 8), resolved=adapter, profile="smoke", architecture="t5_tiny")
    comparison = compare(data)
    assert [c.status for c in comparison.checks] == ["not_comparable", "not_comparable"]
    assert comparison.checks[1].actual == pytest.approx(10.0)
    assert comparison.ok is True
    assert comparison.comparable is False
    assert comparison.not_comparable_reason == "smoke profile"


def test_another_model_is_not_comparable(adapter):
    data = example_results(glue(*[10.0] * 8), resolved=adapter, architecture="custom")
    assert data["comparable"] is False
    assert [c.status for c in compare(data).checks] == ["not_comparable", "not_comparable"]


def test_paper_profile_on_tiny_model_budget_not_comparable(adapter):
    # the budget depends on the architecture only: counted on t5_tiny, 0.83 % means nothing
    data = example_results({"rte": 70.0}, resolved=adapter, architecture="t5_tiny", trainable_params=5000,
                           base_params=400_000)  # fmt: skip
    budget = compare(data).checks[0]
    assert (budget.status, budget.actual) == ("not_comparable", pytest.approx(1.25))


def test_trainable_percent_rounds_to_the_published_precision(adapter):
    # 1,855,104 / 222,882,048 = 0.8323 % -> 0.83: pass; 1,900,000 / 222,882,048 = 0.8525 % -> 0.85: fail
    ok = compare(example_results({"rte": 70.0}, resolved=adapter, trainable_params=1_855_104)).checks[0]
    assert (ok.status, ok.published, ok.actual) == ("pass", 0.83, pytest.approx(0.8323, abs=1e-4))
    bad = compare(example_results({"rte": 70.0}, resolved=adapter, trainable_params=1_900_000)).checks[0]
    assert (bad.status, bad.actual) == ("fail", pytest.approx(0.8525, abs=1e-4))
    assert "0.85" in bad.note


@pytest.mark.parametrize(
    ("trainable", "status"),
    [
        (1_839_000, "pass"),  # 1,839,000 / 222,882,048 = 0.82510 % -> 0.83
        (1_867_752, "fail"),  # 0.83800 % -> 0.84: within 0.01 of 0.83, but printed as 0.84
        (1_838_000, "fail"),  # 0.82465 % -> 0.82
    ],
)
def test_trainable_percent_passes_only_when_it_rounds_to_the_printed_digits(adapter, trainable, status):
    budget = compare(example_results({"rte": 70.0}, resolved=adapter, trainable_params=trainable)).checks[0]
    assert budget.actual == pytest.approx(100 * trainable / T5_BASE, rel=1e-12)
    assert budget.status == status


def test_the_task_score_is_the_mean_over_seeds():
    from harness.results.results_model import Run
    from harness.train.run_results import mean_scores

    # three seeds: accuracy 60, 70, 95 -> 225 / 3 = 75; f1 50, 50, 80 -> 60; average (accuracy + f1) / 2 by seed
    runs = []
    for seed, accuracy, f1 in ((1, 60.0, 50.0), (2, 70.0, 50.0), (3, 95.0, 80.0)):
        test = {"accuracy": accuracy, "f1": f1, "average": (accuracy + f1) / 2}
        runs.append(Run.model_validate({
            "seed": seed, "best_epoch": 1, "best_checkpoint": "best", "validation": test, "test": test,
            "history": [], "wall_time_s": 1.0, "peak_memory_bytes": 1, "tokens_per_second": 1.0,
            "max_train_samples": None,
        }))  # fmt: skip
    assert mean_scores(runs, "test") == pytest.approx({"accuracy": 75.0, "f1": 60.0, "average": 67.5}, abs=1e-12)


def test_no_published_numbers_means_no_checks(adapter):
    resolved = with_published(adapter, percent=None)
    comparison = compare(example_results({"rte": 70.0}, resolved=resolved))
    assert comparison.checks == []
    assert comparison.ok is True
    assert "nothing to compare" in comparison.summary()


def test_example_has_exactly_the_documented_keys(adapter, tmp_path):
    data = example_results({"rte": 70.0, "cb": 80.0}, resolved=adapter, seeds=(1, 2))
    assert list(data) == [
        "format", "spec", "method", "profile", "model", "comparable", "not_comparable_reason", "differences",
        "environment",
        "budget", "seeds", "tasks", "wall_time_s", "peak_memory_bytes", "tokens_per_second", "regression",
    ]  # fmt: skip
    assert set(data["tasks"]["rte"]) == {"runs", "test_mean", "validation_mean"}
    assert set(data["tasks"]["rte"]["runs"][0]) == {
        "seed", "best_epoch", "best_checkpoint", "validation", "test", "history", "wall_time_s",
        "peak_memory_bytes", "tokens_per_second", "max_train_samples", "recipe",
    }  # fmt: skip
    loaded = load_results(write(tmp_path / "results.json", data))
    assert loaded.results.regression == compare(loaded)
    assert loaded.results.spec.hash == data["spec"]["hash"]


def test_an_epoch_without_a_logged_loss_is_null(adapter):
    data = example_results({"rte": 70.0}, resolved=adapter)
    data["tasks"]["rte"]["runs"][0]["history"][0]["train_loss"] = None
    assert validate_results(data).results.tasks["rte"].runs[0].history[0].train_loss is None


def test_spec_hash_is_sha256_of_canonical_json():
    # sorted keys, no whitespace, UTF-8 (not \u escapes)
    expected = hashlib.sha256('{"a":1,"b":[1.5,"é"]}'.encode()).hexdigest()
    assert spec_hash({"b": [1.5, "é"], "a": 1}) == f"sha256:{expected}"


# --- invalid files -------------------------------------------------------------------------------------------


def one_error(capsys, path: Path) -> str:
    rc, out, err = run_cli(capsys, "compare", path)
    assert rc == EXIT_BAD_INPUT, out + err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: ")
    return lines[0]


def test_bad_json(capsys, tmp_path):
    line = one_error(capsys, write(tmp_path / "results.json", '{"format": "compacter-harness/results/v1",\n oops'))
    assert "line 2" in line
    assert "invalid JSON" in line


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d.update(extra=1), "extra: unknown key"),
        (lambda d: d["tasks"]["rte"]["runs"][0].update(foo=1), "tasks.rte.runs[0].foo: unknown key"),
        (lambda d: d["budget"].update(trainable_params="12"), "budget.trainable_params: "),
        (lambda d: d["tasks"]["rte"]["runs"][0]["test"].pop("average"), "tasks.rte.runs[0].test: "),
        (lambda d: d["tasks"]["rte"]["test_mean"].update(accuracy=float("nan")), "tasks.rte.test_mean.accuracy: "),
        (lambda d: d["tasks"].update(foo=d["tasks"]["rte"]), "tasks.foo: invalid key 'foo'"),
        (lambda d: d.pop("regression"), "regression: required key is missing"),
        (lambda d: d.update(comparable=False), "not_comparable_reason: required when comparable is false"),
        (lambda d: d["budget"].update(trainable_params=1_900_000), "budget.trainable_percent: "),
        (lambda d: d["tasks"]["rte"]["runs"][0].update(seed=7), "tasks.rte.runs[0].seed: 7 is not one of"),
        (lambda d: d["tasks"]["rte"]["runs"][0].update(best_epoch=9), "tasks.rte.runs[0].best_epoch: 9 is not"),
        (lambda d: d.update(method="compacter"), "method: 'compacter' differs from the embedded spec's 'adapter'"),
    ],
    ids=["unknown-key", "nested-unknown-key", "string-for-int", "no-average", "nan", "unknown-task",
         "no-regression", "no-reason", "percent-inconsistent", "unknown-seed", "best-epoch", "method"],
)  # fmt: skip
def test_invalid_file_is_one_clear_line(adapter, capsys, tmp_path, edit, key):
    data = example_results({"rte": 70.0}, resolved=adapter)
    edit(data)
    line = one_error(capsys, write(tmp_path / "results.json", data))
    assert f": {key}" in line, line


def test_smoke_profile_cannot_claim_comparable(adapter, capsys, tmp_path):
    data = example_results({"rte": 70.0}, resolved=adapter, profile="smoke", architecture="t5_tiny")
    data.update(comparable=True, not_comparable_reason=None)
    rc, _, err = run_cli(capsys, "compare", write(tmp_path / "results.json", data))
    assert rc == EXIT_BAD_INPUT
    assert "comparable: true, but the smoke profile is never comparable" in err
    assert "comparable: true, but the model (t5_tiny) is not the spec's (t5_base)" in err


@pytest.mark.parametrize(
    ("found", "message"),
    [
        ("compacter-harness/results/v2", "format: unsupported results format 'compacter-harness/results/v2'"),
        ("something/else", "format: 'something/else' is not a compacter-harness results format"),
        (None, "format: required key is missing"),
    ],
)
def test_wrong_format_version(adapter, capsys, tmp_path, found, message):
    data = example_results({"rte": 70.0}, resolved=adapter)
    data["format"] = found
    if found is None:
        del data["format"]
    assert message in one_error(capsys, write(tmp_path / "results.json", data))


def test_hash_mismatch_is_reported(adapter, capsys, tmp_path):
    data = example_results({"rte": 70.0}, resolved=adapter)
    data["spec"]["resolved"]["published"][0]["value"] = 50.0  # a tampered published number
    line = one_error(capsys, write(tmp_path / "results.json", data))
    assert ": spec.hash: sha256:" in line
    assert "does not match the embedded resolved spec" in line


def test_embedded_spec_is_validated(adapter, capsys, tmp_path):
    data = example_results({"rte": 70.0}, resolved=adapter)
    data["spec"]["resolved"]["published"][0]["task"] = "glu"
    data["spec"]["hash"] = spec_hash(data["spec"]["resolved"])  # consistent hash, invalid spec
    line = one_error(capsys, write(tmp_path / "results.json", data))
    assert line.endswith(": spec.resolved.published[0].task: unknown task 'glu'; did you mean 'glue'?")
    with pytest.raises(ResultsError) as error:
        compare(data)
    assert error.value.errors == ["results: spec.resolved.published[0].task: unknown task 'glu'; did you mean 'glue'?"]


def test_not_a_file(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli(capsys, "compare", tmp_path / "empty")
    assert rc == EXIT_BAD_INPUT
    assert err.strip() == f"{tmp_path / 'empty'}: (top level): no results.json in this folder or its subfolders"
    rc, _, err = run_cli(capsys, "compare", tmp_path / "nope.json")
    assert rc == EXIT_BAD_INPUT
    assert err.strip() == f"{tmp_path / 'nope.json'}: (top level): file not found"


def test_validate_results_accepts_a_run_without_regression(adapter):
    data = example_results({"rte": 70.0}, resolved=adapter)
    del data["regression"]
    assert validate_results(data, require_regression=False).results.regression is None
    with pytest.raises(ResultsError, match="regression: required key is missing"):
        validate_results(data)


# --- the compare command -------------------------------------------------------------------------------------


def test_compare_pass_exits_0(adapter, capsys, tmp_path):
    path = write(tmp_path / "results.json", example_results(glue(*[86.0] * 8), resolved=adapter))
    rc, out, err = run_cli(capsys, "compare", path)
    assert (rc, err) == (EXIT_OK, "")
    lines = out.splitlines()
    assert (
        lines[0]
        == f"{path}: adapter, paper profile, model t5-base (t5_base): 2 pass, 0 fail, 0 missing, 0 not comparable"
    )
    assert lines[1].split() == ["pass", "trainable", "%:", "0.8323", "(published", "0.83):", "rounds", "to", "0.83"]
    assert lines[2].split()[:4] == ["pass", "glue", "average:", "86.00"]
    assert len(lines) == 3


def test_compare_regression_exits_1(adapter, capsys, tmp_path):
    path = write(tmp_path / "results.json", example_results(glue(*[80.0] * 8), resolved=adapter))
    rc, out, _ = run_cli(capsys, "compare", path)
    assert rc == EXIT_FAILED
    assert "1 pass, 1 fail" in out
    assert any(line.split()[0] == "FAIL" and "glue average: 80.00" in line for line in out.splitlines())


def test_compare_not_comparable_exits_0(adapter, capsys, tmp_path):
    data = example_results(glue(*[10.0] * 8), resolved=adapter, profile="smoke", architecture="t5_tiny")
    rc, out, _ = run_cli(capsys, "compare", write(tmp_path / "results.json", data))
    assert rc == EXIT_OK
    assert "not comparable: smoke profile: 0 pass, 0 fail, 0 missing, 2 not comparable" in out


def test_compare_json(adapter, capsys, tmp_path):
    good = write(tmp_path / "a" / "results.json", example_results(glue(*[86.0] * 8), resolved=adapter))
    bad = write(tmp_path / "b" / "results.json", example_results(glue(*[80.0] * 8), resolved=adapter))
    rc, out, _ = run_cli(capsys, "compare", tmp_path, "--json")  # a folder: every results.json below it
    assert rc == EXIT_FAILED
    report = json.loads(out)
    assert report["ok"] is False
    assert [f["path"] for f in report["files"]] == [str(good), str(bad)]
    assert [[c["status"] for c in f["checks"]] for f in report["files"]] == [["pass", "pass"], ["pass", "fail"]]
    assert report["files"][1]["checks"][1]["actual"] == 80.0
    assert report["files"][0]["stored_regression_differs"] is False


def test_compare_bad_input_wins_over_a_regression(adapter, capsys, tmp_path):
    bad = write(tmp_path / "a.json", example_results(glue(*[80.0] * 8), resolved=adapter))
    broken = write(tmp_path / "b.json", "[]")
    rc, out, err = run_cli(capsys, "compare", bad, broken)
    assert rc == EXIT_BAD_INPUT
    assert "1 fail" in out  # the readable file is still checked
    assert err.strip() == f"{broken}: (top level): expected a JSON object, got list"


def test_compare_notes_a_stale_stored_regression(adapter, capsys, tmp_path):
    data = example_results(glue(*[86.0] * 8), resolved=adapter)
    data["regression"]["checks"][1]["note"] = "edited"
    rc, out, _ = run_cli(capsys, "compare", write(tmp_path / "results.json", data))
    assert rc == EXIT_OK
    assert "the regression stored at run time differs" in out
