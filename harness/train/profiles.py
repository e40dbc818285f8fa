"""Run profiles: where the model, the tokenizer and the data come from, and what the recipe becomes.

- `paper`: the spec's model (t5-base) with pretrained weights (its hub id, `--pretrained`, or `--model` as a
  folder or hub id), the real GLUE/SuperGLUE (hub or `--data-dir`), the spec's
  recipe unchanged. Offline, it fails at once and says how to pass local copies.
- `smoke`: the spec's tiny check model (its `check_model`: `spec/models/t5_tiny.yaml`, or AdapterDrop's
  12 + 12 block `t5_tiny_deep.yaml`) with random weights, a tokenizer trained offline on the smoke data,
  the deterministic toy data, and a shortened recipe: it finishes in a minute or two on two CPU cores and
  needs no network. Its scores are never compared with the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import SpecError
from harness.model.backbone import missing_pretrained_files
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


def check_paper_sources(model_file: ModelFile, pretrained: str | None, data_dir: Path | None) -> None:
    """The paper profile's weights (a folder, or a hub id the cache holds when offline) and data: say at once
    what is missing."""
    source = pretrained or model_file.pretrained
    problems = []
    if source is None:
        problems.append(f"--pretrained: {model_file.name} names no pretrained weights; pass --pretrained "
                        "with a local folder or a hub id")  # fmt: skip
    elif Path(source).is_dir():
        missing = missing_pretrained_files(Path(source))
        if missing:
            lacks = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
            raise SpecError([f"{source}: --model: the folder lacks {lacks}; pass a folder written by save_pretrained"])
    elif hub_is_offline() and not is_cached(source):
        problems.append(
            f"--pretrained: {source!r} (the weights of {model_file.name}) is not a local folder nor in the local "
            f"Hugging Face cache, and HF_HUB_OFFLINE=1 forbids the hub; pass --pretrained "
            f"/path/to/{source.split('/')[-1]} (a folder with config.json, model.safetensors and the tokenizer files)"
        )
    if data_dir is None and hub_is_offline():
        problems.append(
            "--data-dir: no local data and HF_HUB_OFFLINE=1 forbids the hub; pass --data-dir DIR holding "
            "DIR/<task>/<split>.{parquet,jsonl,csv,tsv} with the hub's column names"
        )
    if problems:
        raise SpecError([f"paper profile: {p}" for p in problems])


def is_cached(hub_id: str) -> bool:
    """The local Hugging Face cache holds the hub model's config.json."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)
    except HFValidationError:
        return False
