"""A T5 built from a model file (on the meta device for budgets, randomly initialised for checks), and what
a local pretrained folder must hold."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.spec.model_files import ModelFile

if TYPE_CHECKING:
    import torch


def build_t5(model_file: ModelFile, device: str | torch.device = "meta", seed: int | None = None):
    """A T5ForConditionalGeneration of this architecture: on `meta` (no weights) or randomly initialised."""
    import torch
    from transformers import T5ForConditionalGeneration

    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device):
        model = T5ForConditionalGeneration(model_file.t5_config())
    return model


PRETRAINED_FILES = {  # what `from_pretrained` reads from a local folder, by what it is for
    "config.json": ("config.json",),
    "the weights (model.safetensors)": (
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
    ),
    "the tokenizer (tokenizer.json or spiece.model)": ("tokenizer.json", "spiece.model"),
}  # fmt: skip


def missing_pretrained_files(folder: Path) -> list[str]:
    """What a local `--model` folder lacks of the config, the weights and the tokenizer ([] when complete)."""
    return [what for what, names in PRETRAINED_FILES.items() if not any((folder / name).is_file() for name in names)]
