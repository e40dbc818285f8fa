"""`python -m harness run` end to end on the tiny model (smoke profile): DeepSpeed on CPU, resume, NaN, overwrite."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

import harness.train.seed_run
import harness.train.trainer
from harness.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main
from harness.results.results_json import load_results
from tests.conftest import SPEC_DIR
from tests.run_helpers import SMALL, adapter, last_step, run_cli

pytestmark = pytest.mark.slow  # trains and resumes runs, DeepSpeed among them


def test_a_deepspeed_smoke_run_writes_results_report_and_plot(zero2_runs):
    output_dir = zero2_runs[0]
    loaded = load_results(output_dir / "results.json")  # the strict loader: format, hash, consistency
    results = loaded.results
    assert results.environment.deepspeed_stage == 2
    assert results.profile == "smoke" and results.comparable is False
    run = results.tasks["rte"].runs[0]
    assert [epoch.epoch for epoch in run.history] == [1, 2]
    assert run.recipe["epochs"] == 2 and run.recipe["batch_size"] == 16 and run.recipe["learning_rate"] == 3e-3
    assert set(run.test) >= {"accuracy", "average"}
    assert (output_dir / "report.md").read_text().count("compacter_pp") >= 1
    assert (output_dir / "score_vs_params.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    weights = adapter(output_dir)
    trainable = {n for n, _ in weights.items()}
    assert trainable and all("compacter_pp" in n or "layer_norm" in n for n in trainable)


def test_an_existing_output_dir_is_never_overwritten_silently(zero2_runs, capsys):
    output_dir = zero2_runs[0]
    before = (output_dir / "results.json").read_bytes()
    code, _, err = run_cli(capsys, "--deepspeed", "none", "--output-dir", str(output_dir))
    assert code == EXIT_BAD_INPUT
    assert "exists and is not empty" in err and "--overwrite" in err and "Traceback" not in err
    assert (output_dir / "results.json").read_bytes() == before


def test_resume_after_an_interruption_equals_an_uninterrupted_run(plain_runs, tmp_path, capsys):
    """The weights after the last step, not only the best epoch's (which may predate the interruption), are the
    uninterrupted run's: the optimizer's moments and the schedule continue where they stopped."""
    straight, interrupted = plain_runs[0], tmp_path / "interrupted"
    shutil.copytree(plain_runs[1], interrupted)
    assert [p.name for p in sorted((interrupted / "rte" / "seed42").glob("checkpoint-*"))] == [
        "checkpoint-3", "checkpoint-4"
    ]  # fmt: skip
    assert not (interrupted / "results.json").exists()

    code, _, _ = run_cli(capsys, "--deepspeed", "none", "--keep-checkpoints", "--output-dir", str(interrupted),
                         "--resume")  # fmt: skip
    assert code == EXIT_OK
    for weights in (adapter, last_step):
        a, b = weights(straight), weights(interrupted)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[name], b[name]) for name in a), weights.__name__
    resumed_from = load_file(str(straight / "rte" / "seed42" / "checkpoint-3" / "adapter.safetensors"))
    assert any(not torch.equal(resumed_from[name], last_step(straight)[name]) for name in resumed_from)  # it trained
    scores = [
        json.loads((d / "results.json").read_text())["tasks"]["rte"]["test_mean"] for d in (straight, interrupted)
    ]
    assert scores[0] == scores[1]


def test_without_keep_checkpoints_no_epoch_checkpoint_is_left(tiny_run):
    assert (tiny_run / "rte" / "seed42" / "best" / "adapter.safetensors").is_file()
    assert not list((tiny_run / "rte" / "seed42").glob("checkpoint-*"))  # per-epoch checkpoints cleaned up


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    original = harness.train.trainer.Seq2SeqTrainer.training_step

    def poisoned(self, model, inputs, num_items_in_batch=None):
        loss = original(self, model, inputs, num_items_in_batch)
        return loss * float("nan") if self.state.global_step >= 4 else loss  # NaN in the second epoch

    monkeypatch.setattr(harness.train.trainer.Seq2SeqTrainer, "training_step", poisoned)
    output_dir = tmp_path / "nan"
    code, _, err = run_cli(capsys, "--deepspeed", "none", "--output-dir", str(output_dir))
    assert code == EXIT_FAILED
    assert "non-finite training loss" in err and "step 5" in err
    kept = list((output_dir / "rte" / "seed42").glob("checkpoint-3"))  # the end of the first epoch
    assert kept and (kept[0] / "adapter.safetensors").is_file()
    assert not (output_dir / "results.json").exists()


def test_the_paper_profile_offline_fails_at_once_and_says_what_to_pass(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = run_cli(capsys, "--profile", "paper", "--output-dir", str(tmp_path / "paper"))
    assert code == EXIT_BAD_INPUT
    assert "--pretrained /path/to/t5-base (a folder" in err and "--data-dir DIR" in err and "Traceback" not in err
    assert not (tmp_path / "paper").exists()


def test_set_overrides_are_validated_by_the_schema(tmp_path, capsys):
    code, _, err = run_cli(capsys, "--set", "training.learnin_rate=1e-3", "--output-dir", str(tmp_path / "o"))
    assert code == EXIT_BAD_INPUT
    assert "training.learnin_rate: unknown key" in err


def test_a_method_the_model_cannot_take_is_one_line_and_exit_2(tmp_path, capsys):
    # AdapterDrop's blocks 5–11 do not exist in t5_tiny's 2 + 2 blocks (its smoke default is t5_tiny_deep)
    spec = str(SPEC_DIR / "adapter_drop.yaml")
    code = main(["run", spec, "--model", "t5_tiny", "--output-dir", str(tmp_path / "o"), "--deepspeed", "none"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "adapter_drop.yaml: method.args.encoder_blocks: encoder has blocks 0..1" in err and "(model t5_tiny)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "overrides, expected",
    [([], 3e-3), (["training.learning_rate=1e-4"], 1e-4)],
    ids=["raised-to-the-smoke-floor", "a-user-override-is-kept"],
)
def test_smoke_recipe_raises_the_paper_learning_rate_unless_the_user_set_one(tmp_path, overrides, expected):
    from harness.model.checked import read_buildable_spec
    from harness.train.context import RunContext
    from harness.train.profiles import PROFILES
    from harness.train.recipe import recipe_for
    from harness.train.run_options import RunOptions

    loaded = read_buildable_spec(SPEC_DIR / "adapter.yaml", overrides=overrides)
    assert loaded.spec.training.learning_rate == (3e-4 if not overrides else 1e-4)  # the spec's (or the user's)
    options = RunOptions(overrides=overrides)
    ctx = RunContext(loaded, loaded.check_model_file, PROFILES["smoke"], options, tmp_path, None, "cpu", False)
    recipe, epochs = recipe_for(ctx, "rte")
    assert recipe.learning_rate == expected
    assert (recipe.batch_size, recipe.source_length, epochs) == (16, 48, 10)
    paper = RunContext(loaded, loaded.model_file, PROFILES["paper"], options, tmp_path, None, "cpu", False)
    assert recipe_for(paper, "rte")[0].learning_rate == loaded.spec.training.learning_rate  # paper: unchanged


@pytest.mark.parametrize("method", ["intrinsic_said", "prompt_tuning_tokens", "full_finetune"])
def test_the_other_method_families_train_evaluate_and_reload_their_best_checkpoint(tmp_path, capsys, method):
    # the best epoch's checkpoint is reloaded at the end: Intrinsic-SAID's must carry its projection seed
    output_dir = tmp_path / method
    args = ["run", str(SPEC_DIR / f"{method}.yaml"), *SMALL, "--deepspeed", "none", "--output-dir", str(output_dir)]
    assert main(args) == EXIT_OK, capsys.readouterr().err[-2000:]
    run = load_results(output_dir / "results.json").results.tasks["rte"].runs[0]
    assert [epoch.epoch for epoch in run.history] == [1, 2] and "average" in run.test
    weights = load_file(str(output_dir / run.best_checkpoint))
    prefix = "" if method == "full_finetune" else f"{method}."  # full fine-tuning saves every tensor
    assert weights and all(name.startswith(prefix) for name in weights)


def test_a_global_batch_that_does_not_split_is_one_line_and_nothing_is_written(tmp_path, capsys, monkeypatch):
    output_dir = tmp_path / "o"
    code, _, err = run_cli(capsys, "--deepspeed", "none", "--output-dir", str(output_dir),
                           "--set", "training.gradient_accumulation_steps=3")  # fmt: skip
    assert code == EXIT_BAD_INPUT and "Traceback" not in err
    assert "training.batch_size: the global batch 16 cannot be split evenly over 1 process × 3 accumulation" in err
    assert "1, 2, 4, 8, 16" in err
    torchrun = {"WORLD_SIZE": "3", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "3",
                "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}  # fmt: skip
    for name, value in torchrun.items():  # rank 0 as torchrun --nproc_per_node 3 would start it
        monkeypatch.setenv(name, value)
    code, _, err = run_cli(capsys, "--deepspeed", "none", "--output-dir", str(output_dir))
    assert code == EXIT_BAD_INPUT and "over 3 processes × 1 accumulation step (= 3)" in err
    assert len(err.strip().splitlines()) == 1 and not output_dir.exists()


@pytest.mark.parametrize(
    "overrides, field, expected",
    [
        (["training.batch_size=8"], "batch_size", 8),
        (["training.warmup_steps=0"], "warmup_steps", 0),
        (["training.source_length=32"], "source_length", 32),
        (["training.gradient_accumulation_steps=2"], "gradient_accumulation_steps", 2),
        (["training.dropout=0.25"], "dropout", 0.25),
        (["training.epochs.default=4"], "epochs", 4),
    ],
    ids=["batch", "warm-up", "length", "accumulation", "dropout", "epochs"],
)
def test_what_the_user_sets_wins_over_the_smoke_profile(tmp_path, overrides, field, expected):
    from harness.model.checked import read_buildable_spec
    from harness.train.context import RunContext
    from harness.train.profiles import PROFILES
    from harness.train.recipe import recipe_for
    from harness.train.run_options import RunOptions

    loaded = read_buildable_spec(SPEC_DIR / "adapter.yaml", overrides=overrides)
    options = RunOptions(overrides=overrides)
    ctx = RunContext(loaded, loaded.check_model_file, PROFILES["smoke"], options, tmp_path, None, "cpu", False)
    recipe, epochs = recipe_for(ctx, "sst2")  # sst2: not in the spec's per-task epochs
    assert (epochs if field == "epochs" else getattr(recipe, field)) == expected
    plain = read_buildable_spec(SPEC_DIR / "adapter.yaml")
    untouched = RunContext(plain, plain.check_model_file, PROFILES["smoke"], RunOptions(), tmp_path, None, "cpu", False)
    assert recipe_for(untouched, "sst2")[0].batch_size == 16 and recipe_for(untouched, "sst2")[1] == 10


def test_a_run_records_and_logs_its_batch_split(tmp_path, capsys, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="harness.run")
    output_dir = tmp_path / "o"
    sets = ["--set", "training.gradient_accumulation_steps=2", "--set", "training.dropout=0.2"]
    code, _, err = run_cli(capsys, "--deepspeed", "none", "--output-dir", str(output_dir), *sets)
    assert code == EXIT_OK, err[-2000:]
    assert "global batch 16 = 1 process × 2 accumulation × 8 per device" in caplog.text and "dropout 0.2" in caplog.text
    results = load_results(output_dir / "results.json").results
    recipe = results.tasks["rte"].runs[0].recipe
    assert (recipe["global_batch_size"], recipe["per_device_batch_size"], recipe["dropout"]) == (16, 8, 0.2)
    assert not results.comparable and "rte: training.dropout 0.2 (paper 0.1)" not in results.differences  # --set
    assert "--set training.dropout=0.2" in results.differences
    assert not any("gradient_accumulation_steps" in line for line in results.differences)
    lines = (output_dir / "rte" / "seed42" / "test_predictions.jsonl").read_text().splitlines()
    assert len(lines) == 100 and set(json.loads(lines[0])) == {"source", "target", "prediction"}
