"""Run profiles: where the model, the tokenizer and the data come from, and what the recipe becomes.

- `paper`: t5-base by hub name or local path, the real GLUE/SuperGLUE (hub or `--data-dir`), the spec's
  recipe unchanged. Offline, it fails at once and says how to pass local copies.
- `smoke`: the spec's tiny check model (its `check_model`: `spec/models/t5_tiny.yaml`, or AdapterDrop's
  12 + 12 block `t5_tiny_deep.yaml`) with random weights, a tokenizer trained offline on the smoke data,
  the deterministic toy data, and a shortened recipe: it finishes in a minute or two on two CPU cores and
  needs no network. Its scores are never compared with the paper's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SpecError


@dataclass(frozen=True)
class Profile:
    name: str
    default_model: str  # hub name (paper) or model-file name (smoke)
    default_tasks: tuple[str, ...] | None  # None: the spec's tasks
    epochs: int | None  # None: the spec's epochs per task
    batch_size: int | None  # None: the spec's
    warmup_steps: int | None
    source_length: int | None
    generation_max_length: int | None
    tokenizer_vocab: int | None  # smoke: train a tokenizer of this size
    min_learning_rate: float | None = None  # smoke: raise a lower spec learning rate to this


PAPER = Profile("paper", "google-t5/t5-base", None, None, None, None, None, None, None)
SMOKE = Profile(
    "smoke",
    default_model="t5_tiny",
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


def hub_is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def check_paper_sources(model: str, data_dir: Path | None) -> None:
    """Offline, the paper profile needs local copies of t5-base and of the data: say so at once."""
    if not hub_is_offline():
        return
    problems = []
    if not Path(model).is_dir():
        problems.append(
            f"--model: {model!r} is not a local folder and HF_HUB_OFFLINE=1 forbids the hub; pass "
            "--model /path/to/t5-base (a folder with config.json, model.safetensors and the tokenizer files)"
        )
    if data_dir is None:
        problems.append(
            "--data-dir: no local data and HF_HUB_OFFLINE=1 forbids the hub; pass --data-dir DIR holding "
            "DIR/<task>/<split>.{parquet,jsonl,csv,tsv} with the hub's column names"
        )
    if problems:
        raise SpecError([f"paper profile: {p}" for p in problems])
