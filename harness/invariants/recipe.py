"""Recipe invariants: the path from a spec to a score, checked like the modules (`harness check SPEC --recipe`).

Each runs the harness's own training pieces (`harness.train.trainer`, `.batching`, `.evaluation`,
`harness run` itself for the world-size check) on the spec's tiny check model, and compares them with a
reference written independently: T5's own loss on one batch, the paper's schedule formula, an echo model
whose predictions name their examples, a one-process run.

- `accumulated_step`: k accumulated micro-batches give the gradient, its norm (what clipping sees) and
  the AdamW update of one batch of the same examples (float64).
- `world_size`: 2 processes (`torchrun`, gloo on the CPU) train to the trainable weights and the
  validation/test predictions of 1 process at the same global batch.
- `evaluation_coverage`: at any world size, evaluation predicts each example exactly once, in order.
- `lr_schedule`: the learning rate of every optimizer step is linear warm-up then linear decay to 0 over
  epochs × ⌈N / global batch⌉ steps, whatever the accumulation.
- `optimizer_update`: one step is AdamW's update (the recipe's learning rate, ε and weight decay, none on biases
  and norms) of T5's one-batch gradient clipped to the recipe's `max_grad_norm`, also when a micro-batch of
  the partial last batch is empty.
- `dropout_rate`: every dropout of the trained model runs at the recipe's rate (and 0 means deterministic).
- `generation_and_selection`: greedy generation up to the recipe's length; evaluation and a checkpoint every
  epoch; the best validation `average` is the checkpoint kept and restored.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from harness.invariants.context import InvariantViolation
from harness.invariants.registry import Invariant, NoOptions, Result, run_entry
from harness.model.backbone import build_t5
from harness.spec.loader import LoadedSpec
from harness.spec.model_files import ModelFile

RECIPE_INVARIANTS: dict[str, Invariant] = {}
TASK = "rte"  # the smoke data's task: any task would do, the checks are about the run, not the metric


def recipe_invariant(name: str):
    def decorator(check):
        if name in RECIPE_INVARIANTS:
            raise ValueError(f"recipe invariant {name!r} is already registered")
        RECIPE_INVARIANTS[name] = Invariant(name, check, NoOptions, (check.__doc__ or "").strip().splitlines()[0])
        return check

    return decorator


def run_recipe_invariant(name: str, ctx: RecipeContext) -> Result:
    return run_entry(RECIPE_INVARIANTS[name], ctx, NoOptions())


@dataclass
class RecipeContext:
    """The spec, its tiny check model, a tokenizer and smoke examples: what a small real run needs."""

    loaded: LoadedSpec
    check_model: ModelFile
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def spec(self):
        return self.loaded.spec

    def data(self):
        if "data" not in self._cache:
            from harness.data.smoke import smoke_task

            self._cache["data"] = smoke_task(TASK, self.spec.tasks.prefix_task_name, self.spec.training.data_seed)
        return self._cache["data"]

    def tokenizer(self):
        if "tokenizer" not in self._cache:
            from harness.data.tokenizer import train_tokenizer

            data = self.data()
            texts = [e.source for e in data.examples("train")] + [e.target for e in data.examples("train")]
            self._cache["tokenizer"] = train_tokenizer(texts, self.check_model.architecture.vocab_size)
        return self._cache["tokenizer"]

    def dataset(self, examples: int, split: str = "train", source_length: int = 32):
        from harness.train.trainer import TokenizedDataset

        rows = self.data().examples(split)[:examples]
        return TokenizedDataset([e.source for e in rows], [e.target for e in rows], self.tokenizer(), source_length)

    def recipe(self, **updates):
        return self.spec.training.model_copy(update=updates)

    def model(self, dropout: float = 0.0, dtype: torch.dtype = torch.float32, moved: bool = False) -> nn.Module:
        """The run's model (`harness.train.trainer.prepare_model`) on the tiny backbone; the same weights every call.

        `moved`: every trainable tensor away from its initial value (seeded noise), as after some training:
        at the initialisation some gradients vanish (Intrinsic-SAID's λ at z = 0, a zero up-projection's
        down-projection), which would make a gradient comparison partly vacuous.
        """
        from harness.train.trainer import prepare_model

        if "base" not in self._cache:
            self._cache["base"] = build_t5(self.check_model, device="cpu", seed=0)
        torch.manual_seed(1)
        spec = self.spec
        args = self.loaded.resolved["method"]["args"]
        model = prepare_model(self._cache["base"], spec.method.name, args, spec.trainable, dropout).to(dtype)
        if moved:
            generator = torch.Generator().manual_seed(2)
            with torch.no_grad():
                for parameter in (p for p in model.parameters() if p.requires_grad):
                    noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
                    parameter.add_(0.02 * noise)
        return model

    def trainer(self, folder: Path, model, recipe, epochs: int, train, validation, scorer=None, max_steps: int = -1):
        """A HarnessTrainer exactly as `harness run` builds it, for one process on the CPU."""
        from harness.train.batching import BatchPlan
        from harness.train.trainer import make_trainer, training_arguments

        plan = BatchPlan(recipe.batch_size, 1, recipe.gradient_accumulation_steps)
        args = training_arguments(folder, recipe, plan, epochs, 42, None, False, True, max_steps=max_steps)
        args.disable_tqdm = True
        scorer = scorer or (lambda predictions: {"average": 0.0})
        eval_batch = recipe.batch_size // recipe.gradient_accumulation_steps
        trainer = make_trainer(model, self.tokenizer(), args, plan, eval_batch, train, validation, scorer)
        trainer.remove_callback(PrinterCallback)  # a check prints its one line, not the Trainer's logs
        return trainer


class Recorder(TrainerCallback):
    """What the optimizer is about to apply: the trainable gradients and the learning rate of each step."""

    def __init__(self) -> None:
        self.gradients: list[dict[str, torch.Tensor]] = []
        self.learning_rates: list[float] = []
        self.grad_norms: list[float] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
        self.gradients.append(gradients(model))
        self.learning_rates.append(optimizer.param_groups[0]["lr"])
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "grad_norm" in logs:
            self.grad_norms.append(float(logs["grad_norm"]))
        return control


def gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[float, str]:
    if a.keys() != b.keys():
        raise InvariantViolation(f"different tensors: {sorted(set(a) ^ set(b))[:4]}")
    worst = max(a, key=lambda n: (a[n] - b[n]).abs().max().item())
    return (a[worst] - b[worst]).abs().max().item(), worst


def norm(gradients: dict[str, torch.Tensor]) -> float:
    return math.sqrt(sum(float(g.double().pow(2).sum()) for g in gradients.values()))


# --- accumulation ----------------------------------------------------------------------------------------------


def one_batch_gradient(ctx: RecipeContext, dataset) -> dict[str, torch.Tensor]:
    """The reference: T5's own loss (its mean over the batch's target tokens) on all examples at once."""
    from transformers import DataCollatorForSeq2Seq

    model = ctx.model(dtype=torch.float64, moved=True)
    batch = DataCollatorForSeq2Seq(ctx.tokenizer(), model=model, label_pad_token_id=-100)(
        [dataset[i] for i in range(len(dataset))]
    )
    model.train()
    model(**batch).loss.backward()
    return gradients(model)


@recipe_invariant("accumulated_step")
def accumulated_step(ctx: RecipeContext, options) -> str:
    """k accumulated micro-batches give the gradient, norm and update of one batch of the same examples."""
    examples = 8
    train, validation = ctx.dataset(examples), ctx.dataset(2, "validation")
    reference = one_batch_gradient(ctx, train)
    if norm(reference) < 1e-6:
        raise InvariantViolation(f"the reference gradient is ~0 ({norm(reference):.2e}): the check would be vacuous")
    updates = {}
    with tempfile.TemporaryDirectory() as folder:
        for k in (1, 2, 4):
            recipe = ctx.recipe(batch_size=examples, gradient_accumulation_steps=k, warmup_steps=0, max_grad_norm=1e9,
                                learning_rate=1e-3)  # fmt: skip
            model = ctx.model(dtype=torch.float64, moved=True)
            recorder = Recorder()
            trainer = ctx.trainer(Path(folder) / f"k{k}", model, recipe, 1, train, validation, max_steps=1)
            trainer.add_callback(recorder)
            trainer.train()
            if len(recorder.gradients) != 1:
                raise InvariantViolation(f"k={k}: {len(recorder.gradients)} optimizer steps for one global batch")
            difference, where = max_difference(recorder.gradients[0], reference)
            scale = max(g.abs().max().item() for g in reference.values())
            if difference > 1e-9 * scale:
                ratio = norm(recorder.gradients[0]) / norm(reference)
                raise InvariantViolation(
                    f"{examples} examples as {k} micro-batches of {examples // k}: gradient differs from one batch "
                    f"by {difference:.3e} at {where} (norm ratio {ratio:.4f})"
                )
            logged = recorder.grad_norms[-1] if recorder.grad_norms else float("nan")
            if not math.isclose(logged, norm(reference), rel_tol=1e-6):
                raise InvariantViolation(
                    f"k={k}: the norm clipping sees is {logged:.6g}, one batch's {norm(reference):.6g}"
                )
            updates[k] = trainable_state(model)
    for k in (2, 4):
        difference, where = max_difference(updates[k], updates[1])
        if difference > 1e-9:
            raise InvariantViolation(f"k={k}: one AdamW step differs from k=1 by {difference:.3e} at {where}")
    return (
        f"{examples} examples as 1, 2 and 4 micro-batches: the gradient of one batch (norm {norm(reference):.4g}) "
        "and the same update"
    )


# --- the optimizer's update --------------------------------------------------------------------------------


def adamw_first_step(parameter: torch.Tensor, gradient: torch.Tensor, lr: float, eps: float, decay: float):
    """AdamW's first update (Loshchilov & Hutter): p ← p − lr·wd·p − lr·m̂/(√v̂ + ε), with m̂ = g and v̂ = g²."""
    return parameter - lr * decay * parameter - lr * gradient / (gradient.abs() + eps)


@recipe_invariant("optimizer_update")
def optimizer_update(ctx: RecipeContext, options) -> str:
    """A step applies AdamW (the recipe's lr, ε, weight decay) to T5's gradient clipped to the recipe's norm."""
    examples, lr, eps, decay = 3, 1e-3, 1e-6, 0.25
    train, validation = ctx.dataset(examples), ctx.dataset(2, "validation")
    reference = one_batch_gradient(ctx, train)  # the 3 examples as one batch, T5's own loss
    total = norm(reference)
    clip = total / 3  # a norm of the recipe's own (not the paper's 1.0), that this gradient exceeds
    # torch.nn.utils.clip_grad_norm_'s documented factor: max_norm / (total norm + 1e-6)
    clipped = {name: g * (clip / (total + 1e-6)) for name, g in reference.items()}
    # 3 examples in a global batch of 4 as 4 micro-batches: the last micro-batch has no example of its own
    recipe = ctx.recipe(batch_size=4, gradient_accumulation_steps=4, warmup_steps=0, max_grad_norm=clip,
                        learning_rate=lr, adam_epsilon=eps, weight_decay=decay)  # fmt: skip
    model = ctx.model(dtype=torch.float64, moved=True)
    before = trainable_state(model)
    with tempfile.TemporaryDirectory() as folder:
        recorder = Recorder()
        trainer = ctx.trainer(Path(folder), model, recipe, 1, train, validation, max_steps=1)
        trainer.add_callback(recorder)
        trainer.train()
    if len(recorder.gradients) != 1:
        raise InvariantViolation(f"{len(recorder.gradients)} optimizer steps for one global batch")
    logged = recorder.grad_norms[-1] if recorder.grad_norms else float("nan")
    if not math.isclose(logged, total, rel_tol=1e-6):
        raise InvariantViolation(f"the gradient norm before clipping is {logged:.6g}, one batch's {total:.6g}")
    difference, where = max_difference(recorder.gradients[0], clipped)
    if difference > 1e-9 * max(g.abs().max().item() for g in clipped.values()):
        raise InvariantViolation(
            f"the gradient the optimizer applies differs from one batch's clipped to {clip:.4g} by {difference:.3e} "
            f"at {where} (norm {norm(recorder.gradients[0]):.6g}, expected {clip:.6g})"
        )
    # The released code's and the HF Trainer's rule: no decay on biases and layer norms.
    decays = {n: 0.0 if "bias" in n or "norm" in n else decay for n in before}
    expected = {n: adamw_first_step(before[n], clipped[n], lr, eps, decays[n]) for n in before}
    difference, where = max_difference(trainable_state(model), expected)
    if difference > 1e-9 * lr:
        raise InvariantViolation(
            f"the update differs from AdamW's (lr {lr}, ε {eps}, weight decay {decays[where]}) by {difference:.3e} "
            f"at {where}"
        )
    decayed = sum(value > 0 for value in decays.values())
    return (
        f"{examples} examples in a global batch of 4 (one empty micro-batch): the gradient clipped from {total:.4g} "
        f"to {clip:.4g}, AdamW's update with weight decay {decay} on {decayed} of {len(decays)} tensors"
    )


# --- world size ---------------------------------------------------------------------------------------------


def launch_env() -> dict[str, str]:
    """The environment of the launched runs: offline, two threads between two processes."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


# The same micro-batches of 8 on both sides: only the order of the float32 sums differs (local accumulation
# against the all-reduce). A 1 × 16 reference would also change the padding of each micro-batch, and Adam
# amplifies that rounding where a gradient is tiny (Intrinsic-SAID at lr 3e-2: 2e-2 after 8 steps, while
# its float64 gradients agree to 1e-15); `accumulated_step` checks the batch split itself in float64.
WORLD_TOLERANCE = 1e-4
# 51 examples: the last global batch holds 3, cut into chunks of 2 and 1, so the two processes hold unequal
# target-token counts and only a loss divided by the whole global batch's count trains as one process does
# (every smoke target is one token: with equal chunks, a per-process mean would agree by accident).
# --keep-checkpoints: the weights after the last step are compared too, not only the best epoch's (which may be
# the first: then the second epoch would be compared by nothing).
WORLD_RUN = ["--tasks", TASK, "--max-train-samples", "51", "--epochs", "2", "--deepspeed", "none",
             "--keep-checkpoints", "--set", "training.dropout=0", "--set", "training.warmup_steps=0"]  # fmt: skip


def launch(spec: Path, model: str, processes: int, output_dir: Path) -> subprocess.CompletedProcess:
    """`harness run` in a fresh process: `python -m harness` or `torchrun --nproc_per_node N -m harness`."""
    if processes == 1:
        command = [sys.executable, "-m", "harness"]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   "-m", "harness"]  # fmt: skip
    accumulation = 2 // processes  # the global batch 16 as 8 per micro-step on both sides
    command += ["run", str(spec.resolve()), "--model", model, *WORLD_RUN, "--output-dir", str(output_dir),
                "--set", f"training.gradient_accumulation_steps={accumulation}"]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=launch_env(), timeout=900, check=False)


def run_outputs(output_dir: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, list[str]]]:
    """({"best": the restored weights, "last step": the weights after the last step}, the predictions per split)."""
    from safetensors.torch import load_file

    folder = output_dir / TASK / "seed42"
    predictions = {
        split: [json.loads(line)["prediction"] for line in (folder / f"{split}_predictions.jsonl").open()]
        for split in ("validation", "test")
    }
    last = max(folder.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    weights = {name: load_file(str(path / "adapter.safetensors")) for name, path in (("best", folder / "best"),
                                                                                     ("last step", last))}  # fmt: skip
    return weights, predictions


@recipe_invariant("world_size")
def world_size(ctx: RecipeContext, options) -> str:
    """2 processes (torchrun, gloo) train to the weights and predictions of 1 process at the same global batch."""
    outputs = {}
    with tempfile.TemporaryDirectory() as folder:
        for processes in (1, 2):
            done = launch(ctx.loaded.path, ctx.check_model.name, processes, Path(folder) / f"world{processes}")
            if done.returncode != 0:
                tail = " | ".join(done.stderr.strip().splitlines()[-3:])
                raise InvariantViolation(f"the {processes}-process run failed (exit {done.returncode}): {tail}")
            outputs[processes] = run_outputs(Path(folder) / f"world{processes}")
    (one, one_predictions), (two, two_predictions) = outputs[1], outputs[2]
    largest = 0.0
    for weights in ("best", "last step"):
        difference, where = max_difference(two[weights], one[weights])
        largest = max(largest, difference)
        if difference > WORLD_TOLERANCE:
            raise InvariantViolation(
                f"2 processes × 8 end {difference:.3e} from 1 process × 2 × 8 at {where} ({weights} weights)"
            )
    for split in ("validation", "test"):
        if two_predictions[split] != one_predictions[split]:
            changed = sum(a != b for a, b in zip(two_predictions[split], one_predictions[split], strict=False))
            raise InvariantViolation(f"{split}: {changed} of {len(one_predictions[split])} predictions differ")
    return (
        f"global batch 16 as 1 process × 2 × 8 and 2 processes × 8: max |Δ| {largest:.1e} over {len(one['best'])} "
        "tensors, the best epoch's and the last step's, the same predictions"
    )


# --- evaluation ------------------------------------------------------------------------------------------------


class EchoModel(nn.Module):
    """`generate` returns its input: each prediction is the text of the example it came from."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the model a device
        self.calls: list[dict[str, Any]] = []

    def generate(self, input_ids, attention_mask, **settings):
        self.calls.append(settings)
        return input_ids * attention_mask  # (B, S), padding → pad id 0


def sharded_predictions(dataset, tokenizer, batch_size: int, world: int, model: nn.Module) -> list[str]:
    """What `world` processes predict together: each rank's shard, merged as the gather merges them."""
    from harness.train.evaluation import eval_batches, generate_shard, merge_shards

    batches = eval_batches(len(dataset), batch_size)
    shards = [generate_shard(model, dataset, tokenizer, batches, rank, world, 20) for rank in range(world)]
    return merge_shards(shards, batches)


@recipe_invariant("evaluation_coverage")
def evaluation_coverage(ctx: RecipeContext, options) -> str:
    """Evaluation predicts each example exactly once, in order, at world sizes 1, 2, 3 and 5."""
    tokenizer = ctx.tokenizer()
    cases = 0
    for examples in (1, 7, 16, 33):
        dataset = ctx.dataset(examples, "validation")
        expected = [t.strip() for t in tokenizer.batch_decode([item["input_ids"] for item in dataset.items],
                                                                skip_special_tokens=True)]  # fmt: skip
        for batch_size in (4, 16):
            for world in (1, 2, 3, 5):
                got = sharded_predictions(dataset, tokenizer, batch_size, world, EchoModel())
                if got != expected:
                    wrong = next(i for i in range(min(len(got), len(expected))) if got[i] != expected[i]) if (
                        len(got) == len(expected)) else None  # fmt: skip
                    raise InvariantViolation(
                        f"{examples} examples, batch {batch_size}, {world} processes: {len(got)} predictions "
                        + (f"(the first wrong at example {wrong})" if wrong is not None else f"for {examples} examples")
                    )
                cases += 1
    return f"{cases} cases (1–33 examples, batch 4 and 16, 1–5 processes): every example once, in order"


# --- schedule --------------------------------------------------------------------------------------------------


def paper_learning_rate(step: int, base: float, warmup: int, total: int) -> float:
    """Linear warm-up from 0 over `warmup` steps, then linear decay to 0 at `total` (step counted from 0)."""
    if step < warmup:
        return base * step / warmup
    return base * max(0.0, (total - step) / max(1, total - warmup))


@recipe_invariant("lr_schedule")
def lr_schedule(ctx: RecipeContext, options) -> str:
    """Each step's learning rate is the paper's warm-up/decay over epochs × ⌈N / global batch⌉ steps."""
    examples, global_batch, epochs, warmup = 10, 4, 2, 2
    total = epochs * math.ceil(examples / global_batch)
    base = ctx.spec.training.learning_rate
    train, validation = ctx.dataset(examples), ctx.dataset(2, "validation")
    seen = {}
    with tempfile.TemporaryDirectory() as folder:
        for k in (1, 2):
            recipe = ctx.recipe(batch_size=global_batch, gradient_accumulation_steps=k, warmup_steps=warmup)
            recorder = Recorder()
            trainer = ctx.trainer(Path(folder) / f"k{k}", ctx.model(), recipe, epochs, train, validation)
            trainer.add_callback(recorder)
            trainer.train()
            expected = [paper_learning_rate(step, base, warmup, total) for step in range(total)]
            got = recorder.learning_rates
            if len(got) != total or any(not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15) for a, b in
                                        zip(got, expected, strict=True)):  # fmt: skip
                raise InvariantViolation(
                    f"{examples} examples, global batch {global_batch} as {k} micro-batches, {epochs} epochs, warm-up "
                    f"{warmup}: learning rates {[f'{x:.3g}' for x in got]}, "
                    f"the formula's {[f'{x:.3g}' for x in expected]}"
                )
            seen[k] = got
    return (
        f"{total} steps ({epochs} epochs × ⌈{examples}/{global_batch}⌉), warm-up {warmup}: the formula at every "
        "step, k = 1 and 2"
    )


# --- dropout ---------------------------------------------------------------------------------------------------


def dropout_rates(model: nn.Module) -> list[tuple[str, float]]:
    """Every dropout site of a T5-family model: nn.Dropout modules, and every module holding a float
    `dropout` rate for a functional dropout (T5's and mT5's attention weights), found by what it holds,
    not by class, so a family's attention class of its own is not missed."""
    sites = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Dropout):
            sites.append((name, module.p))
        elif isinstance(getattr(module, "dropout", None), float):
            sites.append((f"{name}.dropout (functional, e.g. attention weights)", module.dropout))
    return sites


@recipe_invariant("dropout_rate")
def dropout_rate(ctx: RecipeContext, options) -> str:
    """Every dropout of the trained model runs at the recipe's rate; rate 0 makes training mode deterministic."""
    from harness.invariants.context import logits

    rate = ctx.spec.training.dropout
    tokenizer, data = ctx.tokenizer(), ctx.dataset(2)
    inputs = {key: [item[key] for item in data.items] for key in ("input_ids", "attention_mask")}
    batch = tokenizer.pad(inputs, return_tensors="pt")  # (2, S)
    batch["labels"] = torch.tensor([d["labels"][:1] for d in data.items])
    sites = 0
    for wanted in sorted({rate, 0.0, 0.37}):
        model = ctx.model(dropout=wanted)
        found = dropout_rates(model)
        wrong = [(name, p) for name, p in found if p != wanted]
        if not found or wrong:
            raise InvariantViolation(f"dropout {wanted}: {len(wrong)} of {len(found)} sites differ, e.g. {wrong[:2]}")
        model.train()
        with torch.no_grad():
            train_mode = model(**batch).logits
        same = torch.equal(train_mode, logits(model, batch))
        if same != (wanted == 0.0):
            raise InvariantViolation(f"dropout {wanted}: training-mode logits {'equal' if same else 'differ from'} "
                                     "evaluation-mode logits")  # fmt: skip
        sites = len(found)
    return f"{sites} dropout sites at the recipe's {rate} (and at 0 and 0.37 when asked); 0 is deterministic"


# --- generation and selection ------------------------------------------------------------------------------------


class ScriptedScores:
    """A scorer returning a given validation average per epoch, to see which epoch the run keeps."""

    def __init__(self, averages: list[float]) -> None:
        self.averages, self.calls = averages, 0

    def __call__(self, predictions: list[str]) -> dict[str, float]:
        value = self.averages[min(self.calls, len(self.averages) - 1)]
        self.calls += 1
        return {"average": value}


@recipe_invariant("generation_and_selection")
def generation_and_selection(ctx: RecipeContext, options) -> str:
    """Greedy generation to the recipe's length; a checkpoint every epoch; the best validation average is kept."""
    from safetensors.torch import load_file

    from harness.model.record import ADAPTER_FILE
    from harness.train.evaluation import predict_all

    recipe = ctx.recipe(batch_size=8, warmup_steps=0)
    echo = EchoModel()
    predict_all(echo, ctx.dataset(3, "validation"), ctx.tokenizer(), 2, recipe.generation_max_length)
    settings = {key: value for call in echo.calls for key, value in call.items()}
    wanted = {"max_length": recipe.generation_max_length, "num_beams": 1, "do_sample": False}
    if any(call != wanted for call in echo.calls):
        raise InvariantViolation(f"generation settings {settings}, the paper's {wanted}")

    averages = [10.0, 30.0, 20.0]  # epoch 2 is the best
    train, validation = ctx.dataset(8), ctx.dataset(2, "validation")
    with tempfile.TemporaryDirectory() as folder:
        model = ctx.model()
        trainer = ctx.trainer(Path(folder), model, recipe, len(averages), train, validation, ScriptedScores(averages))
        trainer.train()
        args = trainer.args
        every_epoch = args.eval_strategy == "epoch" and args.save_strategy == "epoch" and args.load_best_model_at_end
        by_average = args.metric_for_best_model in ("average", "eval_average") and args.greater_is_better
        if not (every_epoch and by_average):
            raise InvariantViolation(
                f"evaluation {args.eval_strategy}, saving {args.save_strategy}, best by {args.metric_for_best_model} "
                f"(greater is better: {args.greater_is_better}); the paper: every epoch, the highest validation average"
            )
        best = Path(trainer.state.best_model_checkpoint or "")
        expected = Path(folder) / "checkpoint-2"  # one step per epoch: epoch 2 ends at step 2
        if best != expected:
            raise InvariantViolation(
                f"validation averages {averages}: kept {best.name or 'nothing'}, not {expected.name}"
            )
        kept = load_file(str(best / ADAPTER_FILE))
        difference, where = max_difference(trainable_state(model), {n: kept[n] for n in trainable_state(model)})
        if difference != 0.0:
            raise InvariantViolation(
                f"the restored weights differ from the best checkpoint by {difference:.3e} at {where}"
            )
    return f"greedy to {recipe.generation_max_length} tokens; averages {averages}: epoch 2 kept and restored"
