"""The recipe invariants hold on the shipped specs, and each fails when the run is deliberately broken.

Every fail test first asserts that the unbroken invariant holds on the same spec.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import harness.invariants.world_size
import harness.train.dataset
import harness.train.evaluation
import harness.train.run_model
import harness.train.trainer
from harness.invariants import INVARIANTS, run_invariant
from harness.invariants.recipe_context import RecipeContext
from harness.model.checked import read_buildable_spec
from harness.spec.invariant_catalog import RECIPE
from harness.train.batching import GlobalBatchSampler, steps_per_epoch
from tests.conftest import SPEC_DIR

pytestmark = pytest.mark.slow  # trains to check the recipe; the world-size runs start 2 processes

IN_PROCESS = [name for name in RECIPE if name != "world_size"]
# the adapter family (Compacter++), accumulation 2 (prompt tuning, Intrinsic-SAID), every tensor (full FT)
SPECS = ["compacter_pp", "prompt_tuning_tokens", "intrinsic_said", "full_finetune"]
BROKEN_ON = "compacter_pp"


@pytest.fixture(scope="module")
def recipe_context():
    cache: dict[str, RecipeContext] = {}

    def make(name: str) -> RecipeContext:
        if name not in cache:
            loaded = read_buildable_spec(SPEC_DIR / f"{name}.yaml")
            cache[name] = RecipeContext(loaded, loaded.check_model_file)
        return cache[name]

    return make


@pytest.fixture(scope="module")
def recipe_holds(recipe_context):
    results = {}

    def check(spec: str, name: str):
        if (spec, name) not in results:
            results[spec, name] = run_invariant(name, recipe_context(spec))
        return results[spec, name]

    return check


def test_the_recipe_vocabulary_is_closed_and_documented():
    assert set(RECIPE) == {
        "accumulated_step", "world_size", "evaluation_coverage", "lr_schedule", "dropout_rate",
        "generation_and_selection", "optimizer_update",
    }  # fmt: skip
    assert all(INVARIANTS[name].summary == declared.summary != "" for name, declared in RECIPE.items())


# The optimizer's update is the same code for every method: checked on the adapter family and on every tensor.
ON_SPECS = {"optimizer_update": ["compacter_pp", "full_finetune"]}
HOLDS = [(spec, name) for spec in SPECS for name in IN_PROCESS if spec in ON_SPECS.get(name, SPECS)]


@pytest.mark.parametrize("spec, name", HOLDS)
def test_recipe_invariant_holds(recipe_holds, spec, name):
    result = recipe_holds(spec, name)
    assert result.ok, result.message


@pytest.mark.parametrize("spec", ["compacter_pp", "intrinsic_said"])
def test_two_processes_train_as_one(recipe_holds, spec):
    result = recipe_holds(spec, "world_size")
    assert result.ok, result.message


def unbroken_holds(recipe_holds, name: str) -> None:
    """Called before anything is broken: the fail test means something only if the invariant holds first."""
    result = recipe_holds(BROKEN_ON, name)
    assert result.ok, f"the unbroken invariant must hold first: {result.message}"


def broken(recipe_context, name: str):
    return run_invariant(name, recipe_context(BROKEN_ON))


def test_accumulation_without_the_global_token_count_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "accumulated_step")
    # transformers 5's reading of T5: each micro-batch its own mean, never divided by k (k × the gradient)
    original = harness.train.trainer.token_mean_loss
    monkeypatch.setattr(harness.train.trainer, "token_mean_loss", lambda outputs, labels, num_items_in_batch=None: (
        original(outputs, labels)))  # fmt: skip
    result = broken(recipe_context, "accumulated_step")
    assert not result.ok and "norm ratio 2.0000" in result.message


def test_accumulation_that_feeds_one_micro_batch_twice_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "accumulated_step")
    original = GlobalBatchSampler.__iter__

    def first_chunk_twice(self):
        batches = list(original(self))
        return iter([batches[i - i % self.plan.accumulation] for i in range(len(batches))])

    monkeypatch.setattr(GlobalBatchSampler, "__iter__", first_chunk_twice)
    result = broken(recipe_context, "accumulated_step")
    assert not result.ok and "gradient differs from one batch" in result.message


def test_a_rank_that_draws_its_own_order_fails(recipe_holds, recipe_context, monkeypatch, tmp_path):
    # an unseeded per-process sampler: rank 1 shuffles with another seed (rank 0 and 1 process are unchanged)
    (tmp_path / "sitecustomize.py").write_text(
        "import harness.train.batching as b\n"
        "_init = b.GlobalBatchSampler.__init__\n"
        "def __init__(self, examples, plan, rank, data_seed):\n"
        "    _init(self, examples, plan, rank, data_seed + rank)\n"
        "b.GlobalBatchSampler.__init__ = __init__\n",
        encoding="utf-8",
    )
    unbroken_holds(recipe_holds, "world_size")
    original = harness.invariants.world_size.launch_env
    monkeypatch.setattr(
        harness.invariants.world_size, "launch_env", lambda: {**original(), "PYTHONPATH": str(tmp_path)}
    )
    result = run_invariant("world_size", recipe_context(BROKEN_ON))
    assert not result.ok and "2 processes × 8 end" in result.message


def test_evaluation_shards_that_overlap_fail(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "evaluation_coverage")
    original = harness.train.evaluation.generate_shard

    def overlapping(model, dataset, tokenizer, batches, rank, world_size, max_length, *args):
        shard = original(model, dataset, tokenizer, batches, 0, 1, max_length)
        return {i: p for i, p in shard.items() if i >= rank}  # rank r takes every batch from r on

    monkeypatch.setattr(harness.train.evaluation, "generate_shard", overlapping)
    result = broken(recipe_context, "evaluation_coverage")
    assert not result.ok and "generated by two processes" in result.message


def test_evaluation_gathered_in_rank_order_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "evaluation_coverage")

    def rank_order(shards, batches):  # concatenates the shards without putting batches back in order
        return [p for shard in shards for _, predictions in sorted(shard.items()) for p in predictions]

    monkeypatch.setattr(harness.train.evaluation, "merge_shards", rank_order)
    result = broken(recipe_context, "evaluation_coverage")
    assert not result.ok and "the first wrong at example" in result.message


def test_a_schedule_that_drops_the_partial_last_batch_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "lr_schedule")
    monkeypatch.setattr(GlobalBatchSampler, "__len__", lambda self: self.examples // self.plan.global_batch
                        * self.plan.accumulation)  # fmt: skip
    result = broken(recipe_context, "lr_schedule")
    assert not result.ok and "the formula's" in result.message


def test_a_schedule_counted_in_micro_batches_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "lr_schedule")
    # the optimizer steps as if every micro-batch were a step: k × the steps of the paper's formula
    monkeypatch.setattr(GlobalBatchSampler, "__len__", lambda self: steps_per_epoch(self.examples,
                        self.plan.global_batch) * self.plan.accumulation ** 2)  # fmt: skip
    result = broken(recipe_context, "lr_schedule")
    assert not result.ok


def arguments_with(monkeypatch, **changes) -> None:
    """The run's training arguments, with some of them changed after `training_arguments` built them."""
    original = harness.train.trainer.training_arguments

    def changed(*args, **kwargs):
        arguments = original(*args, **kwargs)
        for key, value in changes.items():
            setattr(arguments, key, value)
        return arguments

    monkeypatch.setattr(harness.train.trainer, "training_arguments", changed)


def test_a_weight_decay_that_never_reaches_the_optimizer_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "optimizer_update")
    arguments_with(monkeypatch, weight_decay=0.0)
    result = broken(recipe_context, "optimizer_update")
    assert not result.ok and "differs from AdamW's" in result.message and "weight decay 0.25" in result.message


def test_clipping_at_the_paper_norm_instead_of_the_recipe_s_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "optimizer_update")
    arguments_with(monkeypatch, max_grad_norm=1.0)
    result = broken(recipe_context, "optimizer_update")
    assert not result.ok and "clipped to" in result.message


def test_the_default_adam_epsilon_instead_of_the_recipe_s_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "optimizer_update")
    arguments_with(monkeypatch, adam_epsilon=1e-8)
    result = broken(recipe_context, "optimizer_update")
    assert not result.ok and "differs from AdamW's" in result.message


def test_an_empty_micro_batch_fed_an_unmasked_example_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "optimizer_update")
    # the filler of an empty chunk read as a real example: it is counted twice in the step's loss
    monkeypatch.setattr(harness.train.dataset.TokenizedDataset, "__getitem__", lambda self, index: self.items[index])
    result = broken(recipe_context, "optimizer_update")
    assert not result.ok and "one batch's" in result.message


def test_dropout_set_only_in_the_config_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "dropout_rate")

    def config_only(model, rate):  # the bug of issue 10: the modules already exist
        model.config.dropout_rate = rate

    monkeypatch.setattr(harness.train.run_model, "set_dropout", config_only)
    result = broken(recipe_context, "dropout_rate")
    assert not result.ok and "sites differ" in result.message


def test_dropout_missing_the_attention_weights_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "dropout_rate")
    from torch import nn

    def modules_only(model, rate):
        model.config.dropout_rate = rate
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = rate

    monkeypatch.setattr(harness.train.run_model, "set_dropout", modules_only)
    result = broken(recipe_context, "dropout_rate")
    assert not result.ok and "attention weights" in result.message


def test_beam_search_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "generation_and_selection")
    monkeypatch.setattr(harness.train.evaluation, "GREEDY", {"num_beams": 2, "do_sample": False})
    result = broken(recipe_context, "generation_and_selection")
    assert not result.ok and "generation settings" in result.message


def test_selecting_the_lowest_validation_score_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "generation_and_selection")
    original = harness.train.trainer.training_arguments

    def lowest(*args, **kwargs):
        arguments = original(*args, **kwargs)
        arguments.greater_is_better = False
        return arguments

    monkeypatch.setattr(harness.train.trainer, "training_arguments", lowest)
    result = broken(recipe_context, "generation_and_selection")
    assert not result.ok and "greater is better: False" in result.message


def test_restoring_the_last_epoch_instead_of_the_best_fails(recipe_holds, recipe_context, monkeypatch):
    unbroken_holds(recipe_holds, "generation_and_selection")
    monkeypatch.setattr(harness.train.trainer.HarnessTrainer, "_load_best_model", lambda self: None)
    result = broken(recipe_context, "generation_and_selection")
    assert not result.ok and "restored weights differ" in result.message


def test_check_recipe_on_the_command_line(capsys):
    from harness.cli import EXIT_BAD_INPUT, EXIT_OK, main

    spec = str(SPEC_DIR / "bitfit.yaml")
    assert main(["check", spec, "--recipe", "--only", "dropout_rate", "lr_schedule"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "bitfit: 2 recipe invariants" in out and "PASS dropout_rate" in out and "2 passed, 0 failed" in out
    assert main(["check", spec, "--recipe", "--only", "kron_sum"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "--only: kron_sum not among the recipe invariants (accumulated_step, " in err and "Traceback" not in err
    assert Path(spec).is_file()


def test_dropout_on_mt5_reaches_its_own_attention_class(monkeypatch):
    """mT5's attention is a class of its own (MT5Attention): a set_dropout that knows only T5Attention leaves
    it at the config's rate, and the invariant, which finds sites by what they hold, says so."""
    from tests.conftest import in_family

    loaded = read_buildable_spec(SPEC_DIR / "compacter_pp.yaml")
    mt5 = RecipeContext(loaded, in_family(loaded.check_model_file, "mt5"))
    assert run_invariant("dropout_rate", mt5).ok
    from transformers.models.t5.modeling_t5 import T5Attention

    def t5_only(model, rate):
        model.config.dropout_rate = rate
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = rate
            if isinstance(module, T5Attention):
                module.dropout = rate

    monkeypatch.setattr(harness.train.run_model, "set_dropout", t5_only)
    result = run_invariant("dropout_rate", RecipeContext(loaded, in_family(loaded.check_model_file, "mt5")))
    assert not result.ok and "sites differ" in result.message and "attention" in result.message
