"""The model card in every `best/` folder (`harness.results.model_card`), read back by huggingface_hub's own
model-card parser: its `model-index` holds the run's task, metrics and test scores, its metadata the spec hash and
the comparability, and a broken card is caught. The expected values are written here, never taken from the
renderer; the trained card is checked against the run's results.json and harness.json."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

import harness
import harness.results.model_card as model_card
from harness.model.record import ADAPTER_FILE, RECORD_FILE, RECORD_FORMAT, CheckpointRecord, DataRecord
from harness.results.model_card import hub_base_model, render_card
from harness.results.results_model import Run
from harness.spec.fidelity import PAPER
from harness.spec.loader import read_spec
from harness.spec.model_choice import load_model_file
from tests.conftest import SPEC_DIR

HASH = "sha256:" + "3f" * 32
MRPC_TEST = {"f1": 91.25, "accuracy": 88.0, "average": 89.625}


def record(method: str = "compacter_pp", pretrained: str | None = "google-t5/t5-base", **data) -> CheckpointRecord:
    """A checkpoint record of `method` (its spec's arguments and globs) on MRPC from the hub; `data` changes its
    DataRecord fields. A random backbone (`pretrained=None`) is the smoke run's tiny T5."""
    resolved = read_spec(SPEC_DIR / f"{method}.yaml").resolved
    fields = {
        "task": "mrpc", "origin": "hub", "data_dir": None, "prefix_task_name": False, "data_seed": 42,
        "fidelity": PAPER.to_json(), "max_train_samples": None, "source_length": 128, "generation_max_length": 20,
        "eval_batch_size": 100, **data,
    }  # fmt: skip
    model = "t5_base" if pretrained is not None else "t5_tiny"
    return CheckpointRecord(
        format=RECORD_FORMAT, harness_version="test", method=method, arguments=resolved["method"]["args"],
        trainable=list(resolved["trainable"]), spec=method, spec_hash=HASH,
        model=load_model_file(SPEC_DIR / "models" / f"{model}.yaml"), pretrained=pretrained,
        random_seed=None if pretrained else 42, data=DataRecord(**fields),
    )  # fmt: skip


def run(test: dict[str, float] = MRPC_TEST, seed: int = 43) -> Run:
    return Run(
        seed=seed, best_epoch=7, best_checkpoint=f"mrpc/seed{seed}/best/{ADAPTER_FILE}",
        validation={"f1": 90.5, "accuracy": 86.0, "average": 88.25}, test=test, history=[], wall_time_s=1.0,
        peak_memory_bytes=1, tokens_per_second=1.0, max_train_samples=None,
        recipe={"learning_rate": 0.0003, "global_batch_size": 100, "epochs": 20, "warmup_steps": 500, "dropout": 0.1,
                "precision": "bf16", "fidelity": {"invalid_predictions": "paper"}},
    )  # fmt: skip


def results_of(card: ModelCard) -> list[tuple]:
    """(task type, dataset type, config, split, metric type, value) of each model-index result, as the Hub reads
    them."""
    return [
        (r.task_type, r.dataset_type, r.dataset_config, r.dataset_split, r.metric_type, r.metric_value)
        for r in card.data.eval_results
    ]


def check_card(text: str, scores: dict[str, float], spec_hash: str, comparable: bool) -> ModelCard:
    """The card parsed by huggingface_hub, with these test scores, spec hash and comparability (AssertionError
    otherwise; the parser's own ValueError for metadata it cannot read)."""
    card = ModelCard(text)
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == scores
    assert all(r.dataset_split is not None and r.task_type == "text2text-generation" for r in card.data.eval_results)
    assert card.data.compacter_harness["spec_hash"] == spec_hash
    assert card.data.compacter_harness["comparable"] is comparable
    return card


def test_a_paper_runs_card_holds_its_task_metrics_scores_and_hash():
    text = render_card(record(), run(), comparable=True, not_comparable_reason=None)
    card = check_card(text, MRPC_TEST, HASH, comparable=True)
    assert results_of(card) == [
        ("text2text-generation", "nyu-mll/glue", "mrpc", "validation", "f1", 91.25),
        ("text2text-generation", "nyu-mll/glue", "mrpc", "validation", "accuracy", 88.0),
        ("text2text-generation", "nyu-mll/glue", "mrpc", "validation", "average", 89.625),
    ]
    assert card.data.library_name == "compacter-harness"
    assert card.data.base_model == "google-t5/t5-base"
    assert card.data.datasets == ["nyu-mll/glue"]
    assert card.data.metrics == ["f1", "accuracy"]
    assert {"compacter-harness", "compacter_pp", "peft", "t5", "glue", "mrpc"} <= set(card.data.tags)
    own = card.data.compacter_harness
    assert (own["method"], own["spec"], own["task"], own["seed"], own["best_epoch"]) == (
        "compacter_pp", "compacter_pp", "mrpc", 43, 7
    )  # fmt: skip
    assert own["not_comparable_reason"] is None
    assert card.text.lstrip().startswith("# compacter_pp on MRPC, seed 43")
    shown = [
        HASH, "**Comparable with the paper**", "| `learning_rate` | `0.0003` |", "| `reduction_factor` | `32` |",
        '| `precision` | `"bf16"` |', "best epoch by the validation average: 7", "| `f1` | `91.25` | `90.5` |",
        'harness.load("FOLDER")', "python -m harness eval FOLDER --split test --json",
    ]  # fmt: skip
    assert [text for text in shown if text not in card.text] == []


def test_a_smoke_cards_base_model_and_data_are_in_prose_not_in_the_metadata():
    reason = "smoke profile: a tiny random model on toy data"
    text = render_card(record(pretrained=None, origin="smoke", task="rte"), run({"accuracy": 62.5, "average": 62.5}),
                       comparable=False, not_comparable_reason=reason)  # fmt: skip
    card = check_card(text, {"accuracy": 62.5, "average": 62.5}, HASH, comparable=False)
    assert card.data.base_model is None and card.data.datasets is None
    smoke = ("compacter-harness-smoke", "rte")
    assert [(r.dataset_type, r.dataset_config) for r in card.data.eval_results] == [smoke, smoke]
    assert not {"glue", "rte"} & set(card.data.tags)
    assert card.data.compacter_harness["not_comparable_reason"] == reason
    assert "Random weights drawn from seed 42" in card.text and "**A smoke run**" in card.text
    assert f"**Not comparable with the paper**: {reason}." in card.text


def test_a_local_folder_is_named_in_prose_not_as_base_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("t5-base").mkdir()  # a folder whose name could be a hub id: the folder is what the run read
    card = ModelCard(render_card(record(pretrained="t5-base"), run(), comparable=False, not_comparable_reason="x"))
    assert card.data.base_model is None
    assert "the local folder `t5-base`: not a hub id" in card.text
    assert 'harness.load("FOLDER", base_model="T5 FOLDER")' in card.text


@pytest.mark.parametrize(
    "pretrained, expected",
    [
        ("google-t5/t5-base", "google-t5/t5-base"),
        ("t5-base", "t5-base"),
        (None, None),
        ("/models/t5-base", None),
        ("./t5-base", None),
        ("~/t5-base", None),
        ("models/t5 base", None),
        ("a/b/c", None),
    ],
)
def test_only_a_hub_id_is_a_base_model(pretrained, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing of these names exists here
    assert hub_base_model(pretrained) == expected


def test_full_fine_tuning_is_not_tagged_peft_and_says_how_to_export():
    card = ModelCard(render_card(record("full_finetune"), run(), comparable=True, not_comparable_reason=None))
    assert "peft" not in card.data.tags and "full_finetune" in card.data.tags
    assert "python -m harness export FOLDER --merged OUT" in card.text
    compacter = ModelCard(render_card(record(), run(), comparable=True, not_comparable_reason=None))
    assert "# export --merged: refused for compacter_pp: its adapters" in compacter.text


def test_text_yaml_would_read_as_syntax_comes_back_exactly():
    """A reason or spec name with a colon, a comment, a document marker, quotes and newlines is data, never
    YAML: the parser gives it back as it was, and the body starts where it should."""
    tricky = "model: t5 # not a comment\n---\n- 'quoted' \"twice\"\nkey: {a: [1]}"
    made = record().model_copy(update={"spec": tricky})
    card = ModelCard(render_card(made, run(), comparable=False, not_comparable_reason=tricky))
    assert card.data.compacter_harness["not_comparable_reason"] == tricky
    assert card.data.compacter_harness["spec"] == tricky
    assert card.data.eval_results[0].metric_value == 91.25
    assert card.text.lstrip().startswith("# compacter_pp on MRPC")


# --- the check catches a broken card --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_card() -> str:
    return render_card(record(), run(), comparable=True, not_comparable_reason=None)


def test_the_check_passes_the_card_as_rendered(good_card):
    check_card(good_card, MRPC_TEST, HASH, comparable=True)


def test_a_model_index_metric_without_its_value_is_refused_by_the_parser(good_card):
    assert good_card.count("      value: 88.0\n") == 1
    with pytest.raises(ValueError, match="Invalid `model_index`"):
        check_card(good_card.replace("      value: 88.0\n", ""), MRPC_TEST, HASH, comparable=True)


@pytest.mark.parametrize(
    "find, replace",
    [
        ("      value: 88.0\n", "      value: 89.0\n"),  # a wrong score
        ("    - type: accuracy\n", "    - type: mcc\n"),  # another task's metric
        (f"spec_hash: {HASH}", f"spec_hash: sha256:{'0' * 64}"),  # another spec
        ("comparable: true", "comparable: false"),
    ],
    ids=["wrong-score", "wrong-metric", "wrong-hash", "wrong-comparable"],
)
def test_a_card_with_a_wrong_value_fails_the_check(good_card, find, replace):
    assert good_card.count(find) == 1
    with pytest.raises(AssertionError):
        check_card(good_card.replace(find, replace), MRPC_TEST, HASH, comparable=True)


# --- a trained run's card -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_trained_runs_card_parses_with_the_scores_of_its_results_json(plain_runs):
    run_dir = plain_runs[0]
    best = run_dir / "rte" / "seed42" / "best"
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    saved = json.loads((best / RECORD_FILE).read_text(encoding="utf-8"))
    (trained,) = results["tasks"]["rte"]["runs"]
    assert trained["best_checkpoint"] == f"rte/seed42/best/{ADAPTER_FILE}"
    card = ModelCard.load(best / "README.md")
    check_card(str(card), trained["test"], results["spec"]["hash"], comparable=results["comparable"])
    assert saved["spec_hash"] == results["spec"]["hash"] and results["comparable"] is False
    assert card.data.compacter_harness["not_comparable_reason"] == results["not_comparable_reason"]
    assert card.data.compacter_harness["seed"] == 42 and card.data.base_model is None
    assert [r.dataset_config for r in card.data.eval_results] == ["rte"] * len(trained["test"])
    assert not list(best.glob(".README.md*"))  # no temporary left
    model, _ = harness.load(best)  # the card is no obstacle to loading
    assert not model.training


@pytest.mark.slow
def test_export_of_a_folder_with_a_card_writes_the_stock_t5_only(plain_runs, tmp_path):
    """The card describes the harness's checkpoint; the merged stock T5 loads without the harness, so the card
    (its `harness.load` instructions) stays behind. The checkpoint is made Full fine-tuning of the smoke run's
    random backbone, untrained, to have one that folds."""
    from harness.cli import EXIT_OK, main
    from tests.run_helpers import full_finetune_copy

    folder = full_finetune_copy(plain_runs[0] / "rte" / "seed42" / "best", tmp_path / "best")
    assert (folder / "README.md").is_file()
    assert main(["export", str(folder), "--merged", str(tmp_path / "merged")]) == EXIT_OK
    assert (tmp_path / "merged" / "config.json").is_file() and not (tmp_path / "merged" / "README.md").exists()


@pytest.mark.slow
def test_a_card_that_fails_is_logged_and_keeps_the_results(plain_runs, tmp_path, monkeypatch, caplog):
    """A card written after the results: when it fails, results.json and the checkpoint stay, the failure is one
    logged line, and an earlier card (which would describe other weights) is gone."""
    from harness.results.results_json import load_results
    from harness.train.run_results import write_outputs

    run_dir = tmp_path / "run"
    shutil.copytree(plain_runs[0], run_dir)
    before = (run_dir / "results.json").read_text(encoding="utf-8")
    card = run_dir / "rte" / "seed42" / "best" / "README.md"
    assert card.is_file()

    def failing(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(model_card, "render_card", failing)
    caplog.set_level(logging.ERROR, logger="harness.run")
    write_outputs(load_results(run_dir / "results.json").results, run_dir)
    assert (run_dir / "results.json").read_text(encoding="utf-8") == before
    assert (run_dir / "rte" / "seed42" / "best" / ADAPTER_FILE).is_file() and not card.exists()
    assert "rte / seed 42: no model card in" in caplog.text and "OSError: disk full" in caplog.text
