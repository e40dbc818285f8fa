"""Self-describing checkpoints and `harness.load`: a smoke run's best checkpoint rebuilt from its record
generates exactly the test predictions the run recorded; the README's Python example runs; bad records
are one line each."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import harness
import harness.model.checked
from harness.cli import EXIT_OK, main
from harness.errors import ModelError
from harness.model.record import RECORD_FILE
from tests.conftest import REPO, SPEC_DIR

SMALL = ["--tasks", "rte", "--max-train-samples", "48", "--epochs", "2", "--deepspeed", "none"]


TRAINED: dict = {}  # the model as the run left it (its best epoch restored), kept by the fixture


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    import harness.train.seed_run

    output_dir = tmp_path_factory.mktemp("load") / "out"
    original = harness.train.seed_run.make_trainer

    def keeping(*args, **kwargs):
        trainer = original(*args, **kwargs)
        TRAINED["model"] = trainer.model
        return trainer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(harness.train.seed_run, "make_trainer", keeping)
        assert main(["run", str(SPEC_DIR / "compacter.yaml"), *SMALL, "--output-dir", str(output_dir)]) == EXIT_OK
    return output_dir


def test_the_loaded_model_gives_the_trained_models_logits_bit_for_bit(smoke_run):
    model, tokenizer = harness.load(smoke_run / "rte" / "seed42" / "best")
    trained = TRAINED["model"].eval()
    batch = tokenizer(["rte premise: a cat sat on the mat. hypothesis: a cat sat.", "sst2 sentence: fine"],
                      padding=True, return_tensors="pt")  # fmt: skip
    labels = tokenizer(["entailment", "positive"], padding=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(model(**batch, labels=labels).logits, trained(**batch, labels=labels).logits)


def test_every_checkpoint_records_what_it_was_trained_as(smoke_run):
    best = smoke_run / "rte" / "seed42" / "best"
    record = json.loads((best / RECORD_FILE).read_text())
    results = json.loads((smoke_run / "results.json").read_text())
    assert record["method"] == "compacter" and record["spec"] == "compacter"
    assert record["arguments"] == results["spec"]["resolved"]["method"]["args"]
    assert record["spec_hash"] == results["spec"]["hash"]
    assert record["model"]["name"] == "t5_tiny" and record["pretrained"] is None
    assert record["random_seed"] == results["spec"]["resolved"]["training"]["seed"]


def test_the_loaded_best_checkpoint_generates_the_recorded_test_predictions(smoke_run):
    """The rebuilt model (base drawn again from its seed, method applied, tensors loaded) is the trained one:
    greedy generation on the test sources gives back, example for example, what the run wrote."""
    folder = smoke_run / "rte" / "seed42"
    model, tokenizer = harness.load(folder / "best")
    rows = [json.loads(line) for line in (folder / "test_predictions.jsonl").read_text().splitlines()]
    recipe = json.loads((smoke_run / "results.json").read_text())["tasks"]["rte"]["runs"][0]["recipe"]
    batch = tokenizer([row["source"] for row in rows], max_length=recipe["source_length"], truncation=True,
                      padding=True, return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        generated = model.generate(**batch, max_length=recipe["generation_max_length"])
    predictions = [text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True)]
    assert predictions == [row["prediction"] for row in rows]
    assert not model.training


def test_the_readme_python_example_runs(smoke_run, capsys):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- python-example[^>]*-->\n```python\n(.*?)```", readme, re.S).group(1)
    assert "runs/compacter-smoke/rte/seed42/best" in block
    exec(block.replace("runs/compacter-smoke", str(smoke_run)), {})
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("[") and printed.endswith("]")


def broken_copy(smoke_run: Path, tmp_path: Path, **changes) -> Path:
    import shutil

    folder = tmp_path / "best"
    shutil.copytree(smoke_run / "rte" / "seed42" / "best", folder)
    record = json.loads((folder / RECORD_FILE).read_text())
    for key, value in changes.items():
        target, *path = key.split("__")
        holder = record
        for part in [target, *path][:-1]:
            holder = holder[part]
        holder[[target, *path][-1]] = value
    (folder / RECORD_FILE).write_text(json.dumps(record))
    return folder


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"method": "compactor"}, "harness.json: method: unknown method 'compactor'"),
        ({"arguments__n": 4.5}, "harness.json: arguments.n: Input should be a valid integer"),
        ({"arguments__reduktion": 2}, "harness.json: arguments.reduktion: unknown key"),
        ({"format": "something else"}, "harness.json: format: Input should be"),
    ],
)  # fmt: skip
def test_a_bad_record_is_one_line(smoke_run, tmp_path, changes, expected):
    folder = broken_copy(smoke_run, tmp_path, **changes)
    with pytest.raises(ModelError) as raised:
        harness.load(folder)
    assert len(raised.value.errors) == 1 and expected in raised.value.errors[0], raised.value.errors


def test_a_folder_without_a_record_is_refused(tmp_path):
    with pytest.raises(ModelError) as raised:
        harness.load(tmp_path)
    assert raised.value.errors == [f"{tmp_path}: (top level): no harness.json: not a checkpoint the harness wrote"]


def test_a_base_model_of_another_architecture_is_refused(smoke_run, tmp_path):
    config = {"model_type": "t5", "vocab_size": 512, "d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2,
              "num_heads": 2}  # fmt: skip
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError) as raised:
        harness.load(smoke_run / "rte" / "seed42" / "best", base_model=str(tmp_path / "other"))
    assert raised.value.errors[0].startswith(f"{tmp_path / 'other'}: config.json: differs from t5_tiny in d_model")
    assert "d_model (64; t5_tiny has 384)" in raised.value.errors[0]


def test_eval_of_the_best_checkpoint_gives_back_the_runs_test_scores(smoke_run, tmp_path, capsys):
    best = smoke_run / "rte" / "seed42" / "best"
    out = tmp_path / "eval"
    assert main(["eval", str(best), "--split", "test", "--json", "--output-dir", str(out)]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    run = json.loads((smoke_run / "results.json").read_text())["tasks"]["rte"]["runs"][0]
    assert report["scores"] == run["test"] and report["task"] == "rte" and report["data"] == "learnable smoke data"
    recorded = (smoke_run / "rte" / "seed42" / "test_predictions.jsonl").read_text()
    assert (out / "predictions.jsonl").read_text() == recorded
    assert json.loads((out / "eval.json").read_text()) == report
    assert main(["eval", str(best), "--output-dir", str(out)]) == 2  # an earlier evaluation is never replaced
    assert "already exists; pass --overwrite" in capsys.readouterr().err


def test_predict_generates_what_eval_predicted(smoke_run, tmp_path, capsys):
    folder = smoke_run / "rte" / "seed42"
    rows = [json.loads(line) for line in (folder / "test_predictions.jsonl").read_text().splitlines()]
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join(row["source"] for row in rows) + "\n")
    assert main(["predict", str(folder / "best"), "--file", str(inputs)]) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == [row["prediction"] for row in rows]
    assert main(["predict", str(folder / "best")]) == 2
    assert capsys.readouterr().err.startswith("predict: pass --text TEXT")


def test_report_to_and_logging_steps_reach_the_trainer_and_change_no_number():
    from harness.train.batching import BatchPlan
    from harness.train.trainer import training_arguments

    recipe = harness.model.checked.read_buildable_spec(SPEC_DIR / "compacter.yaml").spec.training
    plan = BatchPlan(recipe.batch_size, 1, recipe.gradient_accumulation_steps)
    default = training_arguments(Path("o"), recipe, plan, 1, 42, None, False, True)
    tracked = training_arguments(Path("o"), recipe, plan, 1, 42, None, False, True, report_to=["tensorboard"],
                                 logging_steps=7)  # fmt: skip
    assert (default.report_to, default.logging_strategy) == ([], "epoch")
    assert (tracked.report_to, tracked.logging_strategy, tracked.logging_steps) == (["tensorboard"], "steps", 7)
    same = {"learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "warmup_steps", "seed",
            "max_grad_norm", "lr_scheduler_type", "num_train_epochs", "weight_decay"}  # fmt: skip
    assert {k: getattr(default, k) for k in same} == {k: getattr(tracked, k) for k in same}


def test_every_method_declares_its_merge_rule_beside_its_builder():
    """A function giving the stock T5's parameters, or the reason it cannot merge (one sentence, one line); the
    `merged_export` invariant applies to exactly the mergeable methods."""
    from harness.spec.invariant_catalog import DECLARED
    from impl.registry import get, names

    rules = {name: get(name).merge for name in names()}
    reasons = {name: rule for name, rule in rules.items() if not callable(rule)}
    assert all(isinstance(why, str) and why.strip() and "\n" not in why for why in reasons.values()), reasons
    mergeable = {name for name in rules if get(name).mergeable}
    assert mergeable == set(rules) - set(reasons) == set(DECLARED["merged_export"].methods)
    assert mergeable == {"full_finetune", "intrinsic_said", "lora", "ia3"}


def test_export_refuses_a_method_that_does_not_fold_into_t5(smoke_run, tmp_path, capsys):
    best = smoke_run / "rte" / "seed42" / "best"
    assert main(["export", str(best), "--merged", str(tmp_path / "merged")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("export --merged: compacter cannot be merged: its adapters y + U(f(D(y))) are non-linear")
    assert not (tmp_path / "merged").exists()


@pytest.mark.slow
def test_an_exported_intrinsic_said_generates_as_the_trained_checkpoint(tmp_path, capsys):
    from transformers import T5ForConditionalGeneration

    out = tmp_path / "said"
    argv = ["run", str(SPEC_DIR / "intrinsic_said.yaml"), *SMALL, "--epochs", "1", "--output-dir", str(out)]
    assert main(argv) == EXIT_OK
    best = out / "rte" / "seed42" / "best"
    record = json.loads((best / RECORD_FILE).read_text())
    assert record["metadata"]["intrinsic_said.projection_seed"] == str(record["arguments"]["projection_seed"])
    assert len(record["metadata"]["intrinsic_said.projection_fingerprint"]) > 0
    assert main(["export", str(best), "--merged", str(tmp_path / "merged")]) == EXIT_OK
    merged = T5ForConditionalGeneration.from_pretrained(tmp_path / "merged").eval()
    model, tokenizer = harness.load(best)
    batch = tokenizer(["rte premise: a cat sat. hypothesis: a cat sat."] * 2, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(merged(**batch, labels=batch["input_ids"]).logits,
                           model(**batch, labels=batch["input_ids"]).logits)  # fmt: skip
    assert not any("intrinsic_said" in name for name, _ in merged.named_parameters())
    assert main(["export", str(best), "--merged", str(tmp_path / "merged")]) == 2  # never into a used folder


def test_the_report_links_the_predictions_and_shows_wrong_ones(smoke_run):
    report = (smoke_run / "report.md").read_text(encoding="utf-8")
    assert "[test_predictions.jsonl](rte/seed42/test_predictions.jsonl)" in report
    assert "[validation_predictions.jsonl](rte/seed42/validation_predictions.jsonl)" in report
    rows = [json.loads(line) for line in (smoke_run / "rte/seed42/test_predictions.jsonl").read_text().splitlines()]
    wrong = [row for row in rows if row["prediction"] != row["target"]]
    assert f"{len(wrong)} wrong test prediction" in report
    for row in wrong[:3]:
        assert f"| {row['target']} | {row['prediction']} |" in report


def test_a_record_that_is_not_json_is_one_line(smoke_run, tmp_path):
    folder = broken_copy(smoke_run, tmp_path)
    (folder / RECORD_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError) as raised:
        harness.load(folder)
    assert raised.value.errors == [f"{folder / RECORD_FILE}: line 1, column 2: invalid JSON: "
                                   "Expecting property name enclosed in double quotes"]  # fmt: skip
