"""Run profiles: where the model, the tokenizer and the data come from, and what the recipe becomes.

- `paper`: the spec's model (t5-base) with pretrained weights (its hub id, `--pretrained`, or `--model` as a
  folder or hub id), the real GLUE/SuperGLUE (hub or `--data-dir`), the spec's
  recipe unchanged. Offline, it fails at once and says how to pass local copies.
- `smoke`: the spec's tiny check model (its `check_model`: `spec/models/t5_tiny.yaml`, or AdapterDrop's
  12 + 12 block `t5_tiny_deep.yaml`) with random weights, a tokenizer trained offline on the smoke data,
  the deterministic toy data, and a shortened recipe: it finishes in a minute or two on two CPU cores and
  needs no network. Its scores are never compared with the paper's.

A profile chooses where the weights come from (`pretrained_source`); whether they can load is the model
layer's check (`harness.model.backbone.pretrained_source_problems`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import OptionError
from harness.spec.model_choice import hub_is_offline
from harness.spec.model_files import ModelFile


@dataclass(frozen=True)
class Profile:
    name: str
    default_tasks: tuple[str, ...] | None  # None: the spec's tasks
    epochs: int | None  # None: the spec's epochs per task
    batch_size: int | None  # None: the spec's
    warmup_steps: int | None
    source_length: int | None
    generation_max_length: int | None
    tokenizer_vocab: int | None  # smoke: train a tokenizer of this size
    min_learning_rate: float | None = None  # smoke: raise a lower spec learning rate to this


PAPER = Profile("paper", None, None, None, None, None, None, None)
SMOKE = Profile(
    "smoke",
    default_tasks=("rte",),
    epochs=10,  # 3 left the adapter family at chance on a random backbone; 10 lets every family learn
    batch_size=16,
    warmup_steps=10,
    source_length=48,
    generation_max_length=4,
    tokenizer_vocab=512,
    # The paper's 3e-4 (Adapter, Pfeiffer, AdapterDrop, BitFit, full fine-tuning) is tuned for a pretrained
    # backbone: on the random tiny one, 10 epochs at 3e-4 left Pfeiffer and BitFit at chance.
    min_learning_rate=3e-3,
)
PROFILES = {profile.name: profile for profile in (PAPER, SMOKE)}


def pretrained_source(model_file: ModelFile, pretrained: str | None, model: str | None) -> tuple[str, str]:
    """Where the paper profile's weights and tokenizer come from, and the option that chose it: `--pretrained`,
    else the model's own (a `--model` folder or hub id, or the model file's `pretrained:`); OptionError when
    there is none. Whether the source can load is the model layer's check."""
    if pretrained is not None:
        return pretrained, "--pretrained"
    if model_file.pretrained is None:
        raise OptionError([f"paper profile: --pretrained: {model_file.name} names no pretrained weights; pass "
                           "--pretrained with a local folder or a hub id"])  # fmt: skip
    return model_file.pretrained, "--model" if model is not None else "--pretrained"


def paper_data_problems(data_dir: Path | None) -> list[str]:
    """Why the paper profile has no data ([] when it has): no `--data-dir`, and HF_HUB_OFFLINE=1 forbids the hub."""
    if data_dir is None and hub_is_offline():
        return ["paper profile: --data-dir: no local data and HF_HUB_OFFLINE=1 forbids the hub; pass --data-dir DIR "
                "holding DIR/<task>/<split>.{parquet,jsonl,csv,tsv} with the hub's column names"]  # fmt: skip
    return []
