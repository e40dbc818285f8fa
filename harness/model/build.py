"""Build a T5 with a spec's method applied and its trainable set chosen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.model.backbone import build_t5
from harness.spec.model_files import ModelFile
from impl.inject import count_trainable, set_trainable
from impl.registry import apply_method


@dataclass
class BuiltModel:
    model: nn.Module
    base_params: int  # parameters of the unmodified T5: the denominator of the paper's percentages
    trainable_names: list[str]

    @property
    def trainable_params(self) -> int:
        return count_trainable(self.model)[0]

    @property
    def total_params(self) -> int:
        return count_trainable(self.model)[1]


def apply_to(model: nn.Module, method: str, arguments: dict[str, Any], trainable: Sequence[str]) -> list[str]:
    """Apply the method to an existing T5 and set requires_grad from the globs."""
    apply_method(model, method, arguments)
    return set_trainable(model, trainable)


def build_method_model(
    method: str,
    arguments: dict[str, Any],
    trainable: Sequence[str],
    model_file: ModelFile,
    device: str | torch.device = "meta",
    seed: int | None = None,
) -> BuiltModel:
    """T5 from the model file (meta: no weights), the method applied, the trainable set chosen."""
    model = build_t5(model_file, device=device, seed=seed)
    base_params = count_trainable(model)[1]
    names = apply_to(model, method, arguments, trainable)
    return BuiltModel(model=model, base_params=base_params, trainable_names=names)
