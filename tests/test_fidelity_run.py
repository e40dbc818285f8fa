"""`--fidelity` end to end: every method trains at `released` on the smoke profile, the positions are recorded
in results.json and harness.json, judged by comparability, read back by `eval`, and `--sweep-fidelity`
reports each quirk's effect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import EXIT_BAD_INPUT, EXIT_OK, main
from harness.model.backbone import build_t5
from harness.model.checked import read_buildable_spec
from harness.results.results_json import load_results
from harness.spec.fidelity import BY_NAME, QUIRKS
from harness.train.context import RunContext
from harness.train.profiles import PROFILES
from harness.train.recipe import recipe_for
from harness.train.run_options import RunOptions
from harness.train.run_results import comparability
from tests.conftest import SPEC_DIR

pytestmark = pytest.mark.slow  # trains every method at the released fidelity

METHODS = sorted(path.stem for path in SPEC_DIR.glob("*.yaml"))
SMALL = ["--tasks", "copa", "--max-train-samples", "16", "--epochs", "1", "--deepspeed", "none"]
ARGUMENTS = {q.methods[0]: q.argument for q in QUIRKS if q.argument}  # the method quirks and what they set


@pytest.fixture(scope="module")
def released_runs(tmp_path_factory):
    """One smoke run per method at --fidelity released (COPA: its question and prefix quirks)."""
    folder = tmp_path_factory.mktemp("released")
    codes = {}
    for method in METHODS:
        codes[method] = main(["run", str(SPEC_DIR / f"{method}.yaml"), *SMALL, "--fidelity", "released",
                              "--output-dir", str(folder / method)])  # fmt: skip
    return folder, codes


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_at_released_and_records_it(released_runs, method):
    folder, codes = released_runs
    assert codes[method] == EXIT_OK
    results = load_results(folder / method / "results.json").results
    assert results.fidelity == dict.fromkeys(BY_NAME, "released")
    run = results.tasks["copa"].runs[0]
    expected = {q.name for q in QUIRKS if q.applies_to(method, "copa")}
    assert run.recipe["fidelity"] == dict.fromkeys(expected, "released")
    record = json.loads((folder / method / run.best_checkpoint).with_name("harness.json").read_text())
    assert record["data"]["fidelity"] == dict.fromkeys(BY_NAME, "released")
    if method in ARGUMENTS:  # the method's quirk reached its builder
        argument, _, released = ARGUMENTS[method]
        assert record["arguments"][argument] == released
    predictions = (folder / method / "copa" / "seed42" / "test_predictions.jsonl").read_text().splitlines()
    source = json.loads(predictions[0])["source"]
    prefix = results.spec.resolved["tasks"]["prefix_task_name"]
    assert source.startswith("superglue-copa premise:" if prefix else "premise:")
    assert "question:" not in source  # the released COPA input has no cause/effect question


def test_eval_reads_the_recorded_fidelity_and_can_change_it(released_runs, capsys):
    folder, _ = released_runs
    results = load_results(folder / "compacter_pp" / "results.json").results
    run = results.tasks["copa"].runs[0]
    checkpoint = str((folder / "compacter_pp" / run.best_checkpoint).parent)
    assert main(["eval", checkpoint, "--json"]) == EXIT_OK
    recorded = json.loads(capsys.readouterr().out)
    assert recorded["fidelity"] == "released" and recorded["scores"] == run.test  # the run's own test scores
    assert main(["eval", checkpoint, "--fidelity", "copa_question=paper", "--json", "--output-dir",
                 str(folder / "eval")]) == EXIT_OK  # fmt: skip
    changed = json.loads(capsys.readouterr().out)
    assert changed["fidelity"] == "paper, released: task_prefix"
    lines = (folder / "eval" / "predictions.jsonl").read_text().splitlines()
    assert all(" question: " in json.loads(line)["source"] for line in lines)
    assert main(["eval", checkpoint, "--fidelity", "copa_questoin=paper"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "--fidelity: 'copa_questoin=paper': no fidelity option 'copa_questoin'" in err and "copa_question" in err


def paper_context(tmp_path: Path, spec: str, overrides: list[str]) -> RunContext:
    loaded = read_buildable_spec(SPEC_DIR / f"{spec}.yaml", overrides=overrides)
    options = RunOptions(profile="paper", overrides=overrides)
    ctx = RunContext(loaded, loaded.model_file, PROFILES["paper"], options, tmp_path, None, "cpu", False)
    ctx.base_model = build_t5(loaded.model_file, device="meta")
    return ctx


def recorded(ctx: RunContext, task: str):
    from types import SimpleNamespace

    recipe, epochs = recipe_for(ctx, task)
    record = {**recipe.model_dump(mode="json", exclude={"epochs"}), "epochs": epochs}
    return SimpleNamespace(recipe=record, max_train_samples=None)


def test_rte_trains_3_epochs_at_released_20_at_paper_and_what_the_user_sets_wins(tmp_path):
    assert recipe_for(paper_context(tmp_path, "compacter", []), "rte")[1] == 20  # the paper's rule (< 10k)
    assert recipe_for(paper_context(tmp_path, "compacter", ["fidelity.preset=released"]), "rte")[1] == 3
    assert recipe_for(paper_context(tmp_path, "compacter", ["fidelity.rte_epochs=released"]), "mrpc")[1] == 20
    explicit = paper_context(tmp_path, "compacter", ["fidelity.preset=released", "training.epochs.per_task.rte=7"])
    assert recipe_for(explicit, "rte")[1] == 7


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([], []),
        (["fidelity.preset=released"], []),  # the released code's own setting: compared with its numbers
        (["fidelity.rte_epochs=released"], []),  # RTE's only quirk for compacter: all of RTE's are released
        (
            ["fidelity.mnli_split=released"],
            ["mnli: fidelity mixes paper and released (mnli_split released, the rest paper)"],
        ),
        (
            ["fidelity.preset=released", "fidelity.copa_question=paper"],
            ["copa: fidelity mixes paper and released (task_prefix released, the rest paper)"],
        ),
    ],
)
def test_all_paper_or_all_released_is_comparable_and_a_mix_is_not(tmp_path, overrides, expected):
    ctx = paper_context(tmp_path, "compacter", overrides)
    runs = {task: [recorded(ctx, task)] for task in ("rte", "mnli", "copa")}
    reasons, found = comparability(ctx, runs)
    assert found == expected and reasons == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "fidelity.said_backward=released"],
            "fidelity.said_backward: changes only intrinsic_said, not compacter_pp",
        ),
        (["--fidelity", "relesed"], "fidelity.preset: Input should be 'paper' or 'released'"),
        (["--sweep-fidelity", "--fidelity", "released"], "--sweep-fidelity: sets the fidelity of every run itself"),
    ],
)
def test_bad_fidelity_options_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    output_dir = tmp_path / "out"
    code = main(["run", str(SPEC_DIR / "compacter_pp.yaml"), *SMALL, "--output-dir", str(output_dir), *args])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and message in err and "Traceback" not in err
    assert not output_dir.exists()


def test_sweep_fidelity_reports_each_quirks_difference_on_the_same_seeds(tmp_path, capsys):
    output_dir = tmp_path / "sweep"
    code = main(["run", str(SPEC_DIR / "compacter_pp.yaml"), *SMALL, "--sweep-fidelity",
                 "--output-dir", str(output_dir)])  # fmt: skip
    assert code == EXIT_OK, capsys.readouterr().err[-2000:]
    summary = json.loads((output_dir / "fidelity.json").read_text())
    settings = [row["setting"] for row in summary["tasks"]["copa"]]
    assert settings == ["paper", "released", "copa_question", "task_prefix"]  # COPA's quirks for compacter_pp
    scores = {}
    for row in summary["tasks"]["copa"]:
        results = load_results(output_dir / row["folder"] / "results.json").results
        scores[row["setting"]] = results.tasks["copa"].test_mean["average"]
        assert results.seeds == [42]
    for row in summary["tasks"]["copa"]:
        assert row["delta"] == pytest.approx(scores[row["setting"]] - scores["paper"], abs=1e-12)
    # compacter_pp does not prefix the task name: task_prefix alone leaves COPA's data, hence its score, as is
    assert scores["task_prefix"] == scores["paper"]
    report = (output_dir / "report.md").read_text()
    assert "| `copa_question` |" in report and "fidelity/copa_question/report.md" in report


def test_the_sweep_runs_rte_epochs_alone_only_where_the_recipe_chooses_the_epochs():
    from harness.train.fidelity_sweep import settings

    spec = "compacter"
    paper = settings(spec, RunOptions(profile="paper"), ["rte", "mrpc"])
    assert [(name, trained, changed) for name, _, trained, changed in paper] == [
        ("paper", ["rte", "mrpc"], ["rte", "mrpc"]), ("released", ["rte", "mrpc"], ["rte", "mrpc"]),
        ("rte_epochs", ["rte"], ["rte"]),
    ]  # fmt: skip
    assert paper[2][1] == [("preset", "paper"), ("rte_epochs", "released")]
    for options in (RunOptions(profile="smoke"), RunOptions(profile="paper", epochs=3),
                    RunOptions(profile="paper", overrides=["training.epochs.default=2"])):  # fmt: skip
        assert [name for name, *_ in settings(spec, options, ["rte"])] == ["paper", "released"]
    # the smoke tokenizer is trained on every task of a run: a quirk's run there trains them all
    smoke = settings("intrinsic_said", RunOptions(profile="smoke"), ["copa", "stsb"])
    assert ("stsb_target", ["copa", "stsb"], ["stsb"]) in [(n, t, c) for n, _, t, c in smoke]
