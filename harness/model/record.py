"""The record beside every checkpoint's trainable tensors (`harness.json`), and the model rebuilt from it.

A checkpoint folder holds `adapter.safetensors` (the trainable tensors, with the metadata the modules
add: Intrinsic-SAID's projection seed), the tokenizer (`AutoTokenizer.from_pretrained(folder)` loads it)
and this record: the method and its resolved arguments, the trainable globs, the spec's name and hash,
the base model (its architecture, where its weights came from, or the seed of a random one), the
harness version. `load_checkpoint` rebuilds the model from it: the base model, the method applied, the
trainable tensors loaded; reading it back checks the method exists, its arguments are valid and the
base model is the recorded architecture, and says what differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import SpecError
from harness.spec.fidelity import Position
from harness.spec.model_files import ModelFile

if TYPE_CHECKING:
    from torch import nn

RECORD_FILE = "harness.json"
RECORD_FORMAT = "compacter-harness checkpoint record 2"
ADAPTER_FILE = "adapter.safetensors"


class DataRecord(BaseModel):
    """Where the run's examples came from and how they were made, so `harness eval` can rebuild its splits."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    task: str
    origin: Literal["smoke", "files", "hub"]  # the smoke data, a --data-dir folder, or the hub
    data_dir: str | None
    prefix_task_name: bool
    data_seed: int
    fidelity: dict[str, Position]  # every quirk's position (`harness.spec.fidelity`): formats, splits, metrics
    max_train_samples: int | None
    source_length: int  # sources cut to this many tokens
    generation_max_length: int
    eval_batch_size: int  # the batches evaluation generated in (padding within a batch changes nothing, but
    # the same batches give the same floating-point sums)


class CheckpointRecord(BaseModel):
    """`harness.json`: everything needed to rebuild the trained model but its tensors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    format: Literal["compacter-harness checkpoint record 2"]
    harness_version: str
    method: str
    arguments: dict[str, Any]  # the builder's arguments, defaults filled in (the spec's resolved method.args)
    trainable: list[str]  # the globs
    spec: str  # the spec's name
    spec_hash: str
    model: ModelFile  # the base model's architecture (a model file, a folder's or a hub id's config)
    pretrained: str | None  # where its weights came from (a folder or hub id); None: random, from random_seed
    random_seed: int | None
    data: DataRecord
    metadata: dict[str, str] = {}  # what the method's modules add (Intrinsic-SAID's projection seed, fingerprint)


def harness_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("compacter-harness")
    except PackageNotFoundError:  # a source tree that was not installed
        return "unknown"


def write_record(folder: Path, record: CheckpointRecord) -> Path:
    path = folder / RECORD_FILE
    path.write_text(json.dumps(record.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    return path


def read_record(folder: Path) -> CheckpointRecord:
    """The folder's record, checked: SpecError lines naming `harness.json` and the key."""
    from harness.spec.loader import arguments_model
    from harness.spec.model_choice import read_config
    from harness.spec.reading import pydantic_errors
    from impl.registry import UnknownMethodError, get

    path = folder / RECORD_FILE
    if not folder.is_dir():
        raise SpecError([f"{folder}: (top level): no such checkpoint folder"])
    if not path.is_file():
        raise SpecError([f"{folder}: (top level): no {RECORD_FILE}: not a checkpoint the harness wrote"])
    data = read_config(path)  # JSON, size-capped, one line naming the file when it is not
    try:
        record = CheckpointRecord.model_validate(data)
    except ValidationError as error:
        raise SpecError(pydantic_errors(path, error)) from None
    try:
        method = get(record.method)
    except UnknownMethodError as error:
        raise SpecError([f"{path}: method: {error.message}"]) from None
    try:
        arguments_model(method).model_validate(record.arguments)
    except ValidationError as error:
        raise SpecError(pydantic_errors(path, error, prefix=("arguments",))) from None
    if not (folder / ADAPTER_FILE).is_file():
        raise SpecError([f"{folder}: (top level): no {ADAPTER_FILE} beside {RECORD_FILE}"])
    return record


def base_model_of(record: CheckpointRecord, base_model: str | None) -> nn.Module:
    """The base T5: `base_model` (a folder or hub id, which must hold the recorded architecture), the
    recorded pretrained weights, or the random backbone of a smoke run drawn again from its seed."""
    from harness.model.backbone import build_t5, load_pretrained

    pretrained = base_model or record.pretrained
    if pretrained is not None:
        return load_pretrained(record.model, pretrained)[0]  # refused, naming the field, if it differs
    return build_t5(record.model, device="cpu", seed=record.random_seed)


def load_checkpoint(folder: str | Path, base_model: str | None = None) -> tuple[nn.Module, Any]:
    """(model, tokenizer) of a checkpoint folder the harness wrote, in eval mode, ready for `generate`.

    The base model is the recorded one (its pretrained weights, or the random backbone of a smoke run,
    drawn again from its seed), or `base_model`; the tokenizer is the one saved in the folder.
    """
    folder = Path(folder)
    return load_recorded(folder, read_record(folder), base_model)


def load_recorded(folder: Path, record: CheckpointRecord, base_model: str | None = None) -> tuple[nn.Module, Any]:
    """`load_checkpoint` for a record already read (and checked) by `read_record`."""
    from harness.data.tokenizer import load_tokenizer
    from harness.model.build import apply_to
    from impl.state import CheckpointMismatchError, load_trainable

    model = base_model_of(record, base_model)
    apply_to(model, record.method, record.arguments, record.trainable)
    try:
        load_trainable(model, folder / ADAPTER_FILE)
    except CheckpointMismatchError as error:
        raise SpecError([str(error)]) from None
    tokenizer = load_tokenizer(folder)
    return model.eval(), tokenizer
