"""What an invariant check gets: the spec, a tiny T5 to build it on, and deterministic inputs.

Every model an invariant builds comes from here, with explicit seeds: the base T5's weights depend on
`base_seed` only, the method's modules on `method_seed` only, so "the same base model with and without
the method" is exact.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harness.model.backbone import build_t5
from harness.model.build import BuiltModel, apply_to
from harness.spec.loader import LoadedSpec
from harness.spec.model_files import ModelFile
from impl.inject import count_trainable


class InvariantViolation(AssertionError):
    """An invariant does not hold; the message says what was measured."""


@dataclass
class CheckContext:
    loaded: LoadedSpec
    check_model: ModelFile  # the tiny architecture the checks run on
    base_seed: int = 0
    method_seed: int = 1
    dtype: torch.dtype = torch.float32
    _base_cache: dict[int, nn.Module] = field(default_factory=dict, repr=False)

    @property
    def spec(self):
        return self.loaded.spec

    @property
    def method_name(self) -> str:
        return self.spec.method.name

    @property
    def method_args(self) -> dict[str, Any]:
        return self.loaded.resolved["method"]["args"]

    def base_model(self, seed: int | None = None) -> nn.Module:
        """A fresh copy of the tiny T5 with random weights fixed by `seed` (default base_seed)."""
        seed = self.base_seed if seed is None else seed
        if seed not in self._base_cache:
            self._base_cache[seed] = build_t5(self.check_model, device="cpu", seed=seed).to(self.dtype)
        return copy.deepcopy(self._base_cache[seed])

    def method_model(self, method_seed: int | None = None, base_seed: int | None = None) -> BuiltModel:
        """The tiny base model with the spec's method applied and its trainable set chosen."""
        model = self.base_model(base_seed)
        base_params = count_trainable(model)[1]
        torch.manual_seed(self.method_seed if method_seed is None else method_seed)
        names = apply_to(model, self.method_name, self.method_args, self.spec.trainable)
        return BuiltModel(model=model.to(self.dtype), base_params=base_params, trainable_names=names)

    def batch(self, batch_size: int = 2, source_length: int = 12, target_length: int = 5, seed: int = 123):
        """Random token ids (never pad/eos), the last two source positions padded in the first row."""
        generator = torch.Generator().manual_seed(seed)
        vocab = self.check_model.architecture.vocab_size
        input_ids = torch.randint(2, vocab, (batch_size, source_length), generator=generator)
        attention_mask = torch.ones_like(input_ids)
        attention_mask[0, -2:] = 0
        input_ids[0, -2:] = self.check_model.architecture.pad_token_id
        labels = torch.randint(2, vocab, (batch_size, target_length), generator=generator)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got − want| / max |want| in float64 (scale-free: projections and outputs can be small)."""
    scale = want.abs().max().double().clamp_min(torch.finfo(torch.float64).tiny)
    return ((got.double() - want.double()).abs().max() / scale).item()


def logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Deterministic (eval mode, no grad) logits: (B, T_target, vocab)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(**batch).logits
    model.train(was_training)
    return out


def train_steps(model: nn.Module, batch, steps: int, learning_rate: float, all_parameters: bool = True):
    """`steps` AdamW steps on the batch's loss, dropout on.

    With `all_parameters` the optimizer is handed every parameter, as a careless trainer would: frozen
    ones must stay put because they get no gradient, not because the optimizer never saw them.
    """
    params = list(model.parameters()) if all_parameters else [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = model(**batch).loss
        if not torch.isfinite(loss):
            raise InvariantViolation(f"loss is not finite: {loss.item()}")
        loss.backward()
        optimizer.step()
    model.eval()


def added_parameter_names(ctx: CheckContext, model: torch.nn.Module) -> set[str]:
    """The parameters the method added to the backbone (by name)."""
    base = {name for name, _ in ctx.base_model().named_parameters()}
    return {name for name, _ in model.named_parameters()} - base
