"""What a recipe invariant gets: the spec, its tiny check model, a tokenizer and smoke examples, and the
harness's own training pieces built on them; and the measurements the recipe invariants share.

A recipe invariant (`harness check SPEC --recipe`) checks the path from a spec to a score, like the module
invariants check the method: each runs the harness's own training pieces (`harness.train.trainer`,
`.batching`, `.evaluation`, `harness run` itself for `world_size`) on the spec's tiny check model, and
compares them with a reference written independently: T5's own loss on one batch, the paper's schedule
formula, an echo model whose predictions name their examples, a one-process run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from harness.invariants.context import InvariantViolation
from harness.model.backbone import build_t5
from harness.spec.loader import LoadedSpec
from harness.spec.model_files import ModelFile

TASK = "rte"  # the smoke data's task: any task would do, the checks are about the run, not the metric


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
        from harness.train.dataset import TokenizedDataset

        rows = self.data().examples(split)[:examples]
        return TokenizedDataset([e.source for e in rows], [e.target for e in rows], self.tokenizer(), source_length)

    def recipe(self, **updates):
        return self.spec.training.model_copy(update=updates)

    def model(self, dropout: float = 0.0, dtype: torch.dtype = torch.float32, moved: bool = False) -> nn.Module:
        """The run's model (`harness.train.run_model.prepare_model`) on the tiny backbone; the same weights every call.

        `moved`: every trainable tensor away from its initial value (seeded noise), as after some training:
        at the initialisation some gradients vanish (Intrinsic-SAID's λ at z = 0, a zero up-projection's
        down-projection), which would make a gradient comparison partly vacuous.
        """
        from harness.train.run_model import prepare_model

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


class EchoModel(nn.Module):
    """`generate` returns its input: each prediction is the text of the example it came from."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the model a device
        self.calls: list[dict[str, Any]] = []

    def generate(self, input_ids, attention_mask, **settings):
        self.calls.append(settings)
        return input_ids * attention_mask  # (B, S), padding → pad id 0
