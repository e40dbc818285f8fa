"""Properties of a whole training run (`harness run`), each checked against what the recipe or the paper says.

One small in-process smoke run of Compacter++ on generated RTE data (`--data-dir`: sources longer than the
smoke profile's 48 tokens), two seeds, three epochs, a low-resource cut, `--set training.weight_decay`, and
scripted validation scores whose best is a tie; the tests read what it fed the model and what it wrote.
The expected values come from the command line, docs/run.md and the paper, never from the code under test.
"""

from __future__ import annotations

import json
import random
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import harness.train.seed_run
from harness.cli import EXIT_OK, main
from harness.results.results_json import load_results
from tests.conftest import SPEC_DIR

SPEC = SPEC_DIR / "compacter_pp.yaml"
SMOKE_SOURCE_LENGTH = 48  # docs/run.md, "Profiles": the smoke profile cuts sources to 48 tokens
TRAIN = 8  # --max-train-samples: the low-resource cut; with the smoke global batch 16, one step per epoch
EPOCHS = 3
SEEDS = (42, 43)
WEIGHT_DECAY = 0.25  # --set training.weight_decay (the spec's is 0)
# Scripted validation scores per epoch: epochs 2 and 3 tie on the average; the earliest best (2) is the one
# kept, restored and reported (the Trainer keeps a checkpoint only when it is strictly better).
VALIDATION = [{"average": mean, "accuracy": accuracy} for mean, accuracy in ((20.0, 0.1), (30.0, 0.2), (30.0, 0.3))]
BEST_EPOCH = 2
WORDS = ["alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "market", "window", "garden", "paper", "silver"]


def generated_rte(folder: Path) -> Path:
    """RTE files whose first sentence is 8 or 60–90 words long: many sources exceed 48 tokens."""
    rows = random.Random(0)
    (folder / "rte").mkdir(parents=True)
    for split, count in (("train", 30), ("validation", 8)):
        with (folder / "rte" / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
            for i in range(count):
                first = " ".join(rows.choice(WORDS) for _ in range(8 if i % 3 == 0 else rows.randint(60, 90)))
                second = " ".join(rows.choice(WORDS) for _ in range(6))
                handle.write(json.dumps({"sentence1": first, "sentence2": second, "label": i % 2, "idx": i}) + "\n")
    return folder


class Recording(torch.utils.data.Dataset):
    """The training set as the Trainer reads it, noting every index it is asked for."""

    def __init__(self, dataset, log: list[int]) -> None:
        self.dataset, self.log = dataset, log

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        self.log.append(int(index))
        return self.dataset[index]


class Observed:
    """What one seed's run did: the indices fed, the encoder inputs, its first trainable weights, its trainer."""

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.encoder_calls: list[tuple[int, bool, bool]] = []  # (source tokens, grad enabled, training mode)
        self.initial: dict[str, torch.Tensor] = {}
        self.scored: list[list[str]] = []  # the validation predictions scored, per epoch
        self.trainer = None
        self.scorers = 0  # run_seed asks for the validation scorer first, then the test one

    def epochs(self) -> list[list[int]]:
        return [self.indices[i * TRAIN : (i + 1) * TRAIN] for i in range(len(self.indices) // TRAIN)]


@pytest.fixture(scope="module")
def observed_run(tmp_path_factory):
    """The run, instrumented from outside: (its output folder, what each seed's run did)."""
    folder = tmp_path_factory.mktemp("properties")
    data_dir, output_dir = generated_rte(folder / "data"), folder / "out"
    runs: list[Observed] = []
    patch = pytest.MonkeyPatch()
    prepare, make = harness.train.seed_run.prepare_model, harness.train.seed_run.make_trainer

    def prepared(*args, **kwargs):
        model = prepare(*args, **kwargs)
        runs.append(Observed())
        runs[-1].initial = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

        def encoder_input(module, args, kwargs):
            ids = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]
            runs[-1].encoder_calls.append((ids.shape[-1], torch.is_grad_enabled(), module.training))

        model.get_encoder().register_forward_pre_hook(encoder_input, with_kwargs=True)
        return model

    def made(model, tokenizer, args, plan, eval_batch, train, validation, scorer, record=None):
        trainer = make(model, tokenizer, args, plan, eval_batch, Recording(train, runs[-1].indices), validation,
                       scorer, record)  # fmt: skip
        runs[-1].trainer = trainer
        predict = trainer.predictions  # each epoch's predictions marked with the epoch, to tell them apart
        trainer.predictions = lambda dataset: [f"{p} @{round(trainer.state.epoch or 0)}" for p in predict(dataset)]
        return trainer

    def metrics(task, targets, grouping, fidelity):
        runs[-1].scorers += 1
        if runs[-1].scorers == 1:

            def validation(predictions):
                runs[-1].scored.append(list(predictions))
                return dict(VALIDATION[min(len(runs[-1].scored), len(VALIDATION)) - 1])

            return validation
        return lambda predictions: {"average": 0.0, "accuracy": 0.0}

    patch.setattr(harness.train.seed_run, "prepare_model", prepared)
    patch.setattr(harness.train.seed_run, "make_trainer", made)
    patch.setattr(harness.train.seed_run, "metrics_function", metrics)
    try:
        code = main(["run", str(SPEC), "--tasks", "rte", "--data-dir", str(data_dir), "--max-train-samples", str(TRAIN),
                     "--epochs", str(EPOCHS), "--seeds", *map(str, SEEDS), "--deepspeed", "none", "--keep-checkpoints",
                     "--set", f"training.weight_decay={WEIGHT_DECAY}", "--output-dir", str(output_dir)])  # fmt: skip
    finally:
        patch.undo()
    assert code == EXIT_OK
    assert len(runs) == len(SEEDS)
    return output_dir, runs


def test_each_epoch_is_a_fresh_permutation_of_the_cut_training_set(observed_run):
    """Every epoch feeds each of the --max-train-samples examples exactly once, in an order of its own."""
    _, runs = observed_run
    for run in runs:
        epochs = run.epochs()
        assert len(run.indices) == EPOCHS * TRAIN and len(epochs) == EPOCHS  # the cut and --epochs reached the run
        assert all(sorted(order) == list(range(TRAIN)) for order in epochs)
        assert len({tuple(order) for order in epochs}) == EPOCHS, "two epochs drew the same order"


def test_another_seed_changes_the_initialisation_and_the_data_order(observed_run):
    """The run's seed draws the method's initial weights and the training order: seeds 42 and 43 differ in both."""
    _, (first, second) = observed_run
    assert first.initial.keys() == second.initial.keys()
    drawn = [name for name in first.initial if "phm_weight" in name]  # Glorot draws (the biases start at 0)
    assert drawn and all(not torch.equal(first.initial[n], second.initial[n]) for n in drawn)
    assert first.epochs()[0] != second.epochs()[0]


def test_every_source_the_model_sees_is_cut_to_the_recipe_length(observed_run):
    """Training and evaluation feed the encoder at most the smoke profile's 48 source tokens; long sources are cut,
    not dropped."""
    output_dir, runs = observed_run
    tokenizer = runs[0].trainer.processing_class
    sources = [json.loads(line)["source"] for line in (output_dir / "rte" / "seed42" / "test_predictions.jsonl").open()]
    assert max(len(tokenizer(source)["input_ids"]) for source in sources) > SMOKE_SOURCE_LENGTH  # not vacuous
    for run in runs:
        training = [length for length, grad, _ in run.encoder_calls if grad]
        evaluation = [(length, mode) for length, grad, mode in run.encoder_calls if not grad]
        assert training and evaluation
        assert max(training) == SMOKE_SOURCE_LENGTH and max(length for length, _ in evaluation) == SMOKE_SOURCE_LENGTH


def test_evaluation_generates_without_dropout(observed_run):
    """Every generation (validation each epoch, test at the end) runs in evaluation mode; training in training mode."""
    _, runs = observed_run
    for run in runs:
        modes = {grad: {mode for _, g, mode in run.encoder_calls if g == grad} for grad in (True, False)}
        assert modes == {True: {True}, False: {False}}


def test_the_set_weight_decay_reaches_the_optimizer(observed_run):
    """`--set training.weight_decay` is recorded and is the decay of every trainable weight but biases and norms."""
    output_dir, runs = observed_run
    results = load_results(output_dir / "results.json").results
    assert all(run.recipe["weight_decay"] == WEIGHT_DECAY for run in results.tasks["rte"].runs)
    for run in runs:
        optimizer, model = run.trainer.optimizer, run.trainer.model
        decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
        weights = [(n, p) for n, p in model.named_parameters() if p.requires_grad and not ("bias" in n or "norm" in n)]
        assert weights and all(decay[id(p)] == WEIGHT_DECAY for _, p in weights)


def test_the_best_epoch_is_the_earliest_best_and_everything_reported_is_its(observed_run):
    """On a tie the earliest best epoch is kept: the reported best epoch, its validation scores, its validation
    predictions and the restored weights are all that epoch's, not the last one's."""
    output_dir, runs = observed_run
    results = load_results(output_dir / "results.json").results
    task = results.tasks["rte"]
    for seed, run, seen in zip(SEEDS, task.runs, runs, strict=True):
        folder = output_dir / "rte" / f"seed{seed}"
        assert run.best_epoch == BEST_EPOCH
        assert run.validation == VALIDATION[BEST_EPOCH - 1]
        assert [epoch.validation for epoch in run.history] == VALIDATION
        written = [json.loads(line)["prediction"] for line in (folder / "validation_predictions.jsonl").open()]
        assert written == seen.scored[BEST_EPOCH - 1] and written != seen.scored[-1]
        best = load_file(str(folder / "best" / "adapter.safetensors"))
        kept = load_file(str(folder / f"checkpoint-{BEST_EPOCH}" / "adapter.safetensors"))  # one step per epoch
        last = load_file(str(folder / f"checkpoint-{EPOCHS}" / "adapter.safetensors"))
        assert best.keys() == kept.keys() and all(torch.equal(best[n], kept[n]) for n in best)
        assert any(not torch.equal(last[n], kept[n]) for n in kept)  # not vacuous: the last epoch moved on
    assert task.validation_mean == VALIDATION[BEST_EPOCH - 1]


def test_each_epoch_reports_the_loss_logged_in_it(observed_run):
    """An epoch's `train_loss` is the mean training loss the Trainer logged during that epoch, not a running mean."""
    output_dir, runs = observed_run
    results = load_results(output_dir / "results.json").results
    for run, seen in zip(results.tasks["rte"].runs, runs, strict=True):
        logged = [entry["loss"] for entry in seen.trainer.state.log_history if "loss" in entry]
        assert len(logged) == EPOCHS and len(set(logged)) > 1
        assert [epoch.train_loss for epoch in run.history] == pytest.approx(logged)


def test_each_rank_resumes_its_own_random_state(tmp_path):
    """Two processes save their generators into one checkpoint; each gets back its own (Python, NumPy, torch)."""
    from harness.train.trainer import HarnessTrainer

    before = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
    try:
        ranks, saved = {}, {}
        for rank in (0, 1):
            ranks[rank] = types.SimpleNamespace(args=types.SimpleNamespace(world_size=2, process_index=rank))
            ranks[rank]._rng_rank = types.MethodType(HarnessTrainer._rng_rank, ranks[rank])
            random.seed(100 + rank), np.random.seed(100 + rank), torch.manual_seed(100 + rank)
            saved[rank] = (random.random(), np.random.random(), torch.rand(1).item())
            random.seed(100 + rank), np.random.seed(100 + rank), torch.manual_seed(100 + rank)
            HarnessTrainer._save_rng_state(ranks[rank], str(tmp_path))
        for rank in (1, 0):
            random.seed(7), np.random.seed(7), torch.manual_seed(7)
            HarnessTrainer._load_rng_state(ranks[rank], str(tmp_path))
            assert (random.random(), np.random.random(), torch.rand(1).item()) == saved[rank]
        assert saved[0] != saved[1]
    finally:
        random.setstate(before[0]), np.random.set_state(before[1]), torch.random.set_rng_state(before[2])


@pytest.mark.parametrize(
    "profile, task, options, overrides, expected",
    [
        ("smoke", "rte", {}, [], 10),  # docs/run.md: the smoke profile trains 10 epochs
        ("smoke", "rte", {"epochs": 2}, [], 2),  # --epochs wins over the profile
        ("paper", "rte", {}, [], 20),  # the paper: 20 epochs for sets under 10k examples
        ("paper", "mrpc", {}, [], 20),
        ("paper", "sst2", {}, [], 3),  # and 3 for the large ones
        ("paper", "rte", {}, ["fidelity.rte_epochs=released"], 3),  # the released scripts' 3 for RTE
        ("paper", "rte", {}, ["fidelity.rte_epochs=released", "training.epochs.per_task.rte=7"], 7),  # set wins
        ("paper", "rte", {"epochs": 5}, ["fidelity.rte_epochs=released"], 5),
    ],
    ids=["smoke", "smoke-epochs", "paper-rte", "paper-mrpc", "paper-sst2", "released", "released-set", "released-n"],
)
def test_the_epochs_each_task_trains(tmp_path, profile, task, options, overrides, expected):
    """Epochs per task: --epochs, then --set training.epochs…, then the profile's, then the paper's per-task rule."""
    from harness.model.checked import read_buildable_spec
    from harness.train.context import RunContext
    from harness.train.profiles import PROFILES
    from harness.train.recipe import recipe_for
    from harness.train.run_options import RunOptions

    loaded = read_buildable_spec(SPEC, overrides=overrides)
    model = loaded.check_model_file if profile == "smoke" else loaded.model_file
    options = RunOptions(overrides=overrides, **options)
    ctx = RunContext(loaded, model, PROFILES[profile], options, tmp_path, None, "cpu", False)
    assert recipe_for(ctx, task)[1] == expected
