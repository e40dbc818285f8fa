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
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import InputError, ModelError, OptionError
from harness.inputs import present
from harness.limits import MAX_LENGTH, MAX_TRAIN_SAMPLES, SEED_MAX
from harness.spec.fidelity import Position
from harness.spec.model_files import ModelFile

if TYPE_CHECKING:
    from torch import nn

RECORD_FILE = "harness.json"
RECORD_FORMAT = "compacter-harness checkpoint record 2"
ADAPTER_FILE = "adapter.safetensors"
MAX_RECORD_BYTES = 1 << 20  # a record is a few kilobytes: the method's arguments and the architecture
# A record is data anyone can edit: its numbers are bounded as the spec bounds them (`harness.spec.schema`), so
# that a typo is one line naming the key, not a model or a generation loop that never ends.
MAX_EVAL_BATCH = 1_000_000  # the schema's bound of a global batch, of which the evaluation batch is a part
# What `load` builds at most, counted on the meta device before anything is allocated: about twice T5-XXL (11e9);
# the model files bound an architecture at 1e11, which no machine loading a checkpoint in float32 could hold.
MAX_LOAD_PARAMETERS = 20 * 10**9
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]  # numpy's 32-bit seeds, as the spec's training.seed
NonEmpty = Annotated[str, Field(min_length=1)]  # an empty path would silently mean the current folder


class DataRecord(BaseModel):
    """Where the run's examples came from and how they were made, so `harness eval` can rebuild its splits."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    task: str
    origin: Literal["smoke", "files", "hub"]  # the smoke data, a --data-dir folder, or the hub
    data_dir: NonEmpty | None
    prefix_task_name: bool
    data_seed: Seed
    fidelity: dict[str, Position]  # every quirk's position (`harness.spec.fidelity`): formats, splits, metrics
    max_train_samples: Annotated[int, Field(ge=1, le=MAX_TRAIN_SAMPLES)] | None
    source_length: Annotated[int, Field(ge=1, le=MAX_LENGTH)]  # sources cut to this many tokens
    generation_max_length: Annotated[int, Field(ge=1, le=MAX_LENGTH)]
    # the batches evaluation generated in (padding within a batch changes nothing, but the same batches give the
    # same floating-point sums)
    eval_batch_size: Annotated[int, Field(ge=1, le=MAX_EVAL_BATCH)]


class CheckpointRecord(BaseModel):
    """`harness.json`: everything needed to rebuild the trained model but its tensors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    format: Literal["compacter-harness checkpoint record 2"]
    harness_version: str
    method: str
    arguments: dict[str, Any]  # the builder's arguments, defaults filled in (the spec's resolved method.args)
    trainable: Annotated[list[NonEmpty], Field(min_length=1)]  # the globs (none: nothing was trained)
    spec: str  # the spec's name
    spec_hash: str
    model: ModelFile  # the base model's architecture (a model file, a folder's or a hub id's config)
    pretrained: NonEmpty | None  # where its weights came from (a folder or hub id); None: random, from random_seed
    random_seed: Seed | None
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
    """The folder's record, checked: ModelError lines naming `harness.json` and the key.

    Read as any JSON the harness did not just write (`harness.inputs.read_json`: a regular file, bounded size
    and nesting, UTF-8, finite numbers), then checked against the schema and for what the schema cannot say:
    the method and its arguments, the task, the fidelity's quirk names, the data folder of a `files` run, and
    a model no larger than `MAX_LOAD_PARAMETERS`. Nothing is built here."""
    from harness.inputs import read_json, regular_file
    from harness.spec.reading import pydantic_errors
    from harness.spec.validation import arguments_model
    from impl.registry import UnknownMethodError, get

    path = folder / RECORD_FILE
    if folder.exists() and not folder.is_dir():
        example = "<run>/rte/seed42/best"
        raise ModelError([f"{folder}: (top level): not a folder; a checkpoint is a folder such as {example}"])
    if not folder.is_dir():
        raise ModelError([f"{folder}: (top level): no such checkpoint folder"])
    if not present(path):
        raise ModelError([f"{folder}: (top level): no {RECORD_FILE}: not a checkpoint the harness wrote"])
    try:
        data = read_json(path, MAX_RECORD_BYTES, "checkpoint record")
    except InputError as error:
        raise ModelError(error.errors) from None
    try:
        record = CheckpointRecord.model_validate(data)
    except ValidationError as error:  # one line, the first thing to change (as a resumed run reports it)
        raise ModelError(pydantic_errors(path, error)[:1]) from None
    try:
        method = get(record.method)
    except UnknownMethodError as error:
        raise ModelError([f"{path}: method: {error.message}"]) from None
    try:
        arguments_model(method).model_validate(record.arguments)
    except ValidationError as error:
        raise ModelError(pydantic_errors(path, error, prefix=("arguments",))[:1]) from None
    check_data(path, record.data)
    parameters = record.model.architecture.approximate_parameters()
    if parameters > MAX_LOAD_PARAMETERS:
        raise ModelError([f"{path}: model.architecture: about {parameters:.3g} parameters; a checkpoint loads at most "
                         f"{MAX_LOAD_PARAMETERS:.0e} (T5-XXL has 1.1e10)"])  # fmt: skip
    adapter = folder / ADAPTER_FILE
    if not present(adapter):
        raise ModelError([f"{folder}: (top level): no {ADAPTER_FILE} beside {RECORD_FILE}"])
    try:
        regular_file(adapter, "safetensors file")  # a pipe there would block the load
    except InputError as error:
        raise ModelError(error.errors) from None
    return record


def check_data(path: Path, data: DataRecord) -> None:
    """What `DataRecord`'s schema cannot say: the task exists, the fidelity names only known quirks, and a run
    on a `--data-dir` folder (`origin: files`) says which."""
    from harness.spec.fidelity import BY_NAME
    from harness.spec.tasks import get_task

    try:
        get_task(data.task)
    except ValueError as error:
        raise ModelError([f"{path}: data.task: {error}"]) from None
    unknown = sorted(set(data.fidelity) - set(BY_NAME) - {"preset"})
    if unknown:
        raise ModelError([f"{path}: data.fidelity.{unknown[0]}: unknown quirk; known: {', '.join(BY_NAME)}"])
    if data.origin == "files" and data.data_dir is None:
        raise ModelError([f"{path}: data.data_dir: a run on files (origin: files) records its --data-dir folder"])


def base_model_of(record: CheckpointRecord, base_model: str | None, record_path: Path | None = None) -> nn.Module:
    """The base T5: `base_model` (a folder or hub id, which must hold the recorded architecture), the
    recorded pretrained weights, or the random backbone of a smoke run drawn again from its seed."""
    from harness.model.backbone import build_t5, load_pretrained

    pretrained = base_model or record.pretrained
    if pretrained is not None:
        option = "--base-model" if base_model else f"pretrained (recorded in {record_path or RECORD_FILE})"
        check_base_model(pretrained, option, OptionError if base_model else ModelError)
        return load_pretrained(record.model, pretrained, option)[0]  # refused, naming the field, if it differs
    return build_t5(record.model, device="cpu", seed=record.random_seed)


def check_base_model(source: str, option: str, kind: type[InputError]) -> None:
    """One line `source: option: why` (option: `--base-model`, or the record's `pretrained`) for a source that
    is no folder holding a config.json and no hub id in reach, before any weights are read: a ModelError for a
    folder, else a `kind` (an OptionError for `--base-model`, a ModelError for the record's). The words of
    `harness.spec.model_choice` would name `--model` or `--pretrained`, options these commands do not have."""
    from harness.spec.model_choice import HUB_ID, model_from_hub

    folder = Path(source).expanduser()
    expected = "expected a folder written by save_pretrained (config.json, weights, tokenizer) or a hub id"
    if folder.is_dir():
        if not present(folder / "config.json"):
            raise ModelError([f"{source}: {option}: the folder holds no config.json; {expected}"])
        return
    if present(folder):
        raise kind([f"{source}: {option}: a file, not a folder holding config.json; {expected}"])
    if source.startswith((".", "/", "~")) or not HUB_ID.match(source):
        raise kind([f"{source}: {option}: no such folder, and not a hub id; {expected}"])
    model_from_hub(source, f"{source}: {option}", expected, kind)


def load_checkpoint(folder: str | Path, base_model: str | None = None) -> tuple[nn.Module, Any]:
    """(model, tokenizer) of a checkpoint folder the harness wrote, in eval mode, ready for `generate`.

    The base model is the recorded one (its pretrained weights, or the random backbone of a smoke run,
    drawn again from its seed), or `base_model`; the tokenizer is the one saved in the folder.
    """
    folder = Path(folder)
    return load_recorded(folder, read_record(folder), base_model)


def load_recorded(folder: Path, record: CheckpointRecord, base_model: str | None = None) -> tuple[nn.Module, Any]:
    """`load_checkpoint` for a record already read (and checked) by `read_record`.

    Before any weights are read: the tokenizer (it must fit the recorded vocabulary), and the method applied
    on the meta device (arguments the builder refuses on this architecture, trainable globs matching nothing,
    a method model above `MAX_LOAD_PARAMETERS`), each one line naming `harness.json` and the key."""
    from harness.data.tokenizer import load_tokenizer
    from harness.model.backbone import build_t5
    from impl.inject import count_trainable
    from impl.state import CheckpointMismatchError, load_trainable

    path = folder / RECORD_FILE
    tokenizer = load_tokenizer(folder)
    vocabulary = record.model.architecture.vocab_size
    if len(tokenizer) > vocabulary:  # a token id past the embedding would be an IndexError in the first batch
        raise ModelError([f"{folder / 'tokenizer.json'}: (top level): {len(tokenizer):,} entries do not fit the "
                         f"recorded vocabulary of {vocabulary:,} (model.architecture.vocab_size)"])  # fmt: skip
    planned = build_t5(record.model, device="meta")
    applied(planned, record, path)
    parameters = count_trainable(planned)[1]
    if parameters > MAX_LOAD_PARAMETERS:
        raise ModelError([f"{path}: arguments: {record.method} on {record.model.name} has {parameters:.3g} parameters; "
                         f"a checkpoint loads at most {MAX_LOAD_PARAMETERS:.0e}"])  # fmt: skip
    model = base_model_of(record, base_model, path)
    applied(model, record, path)
    try:
        load_trainable(model, folder / ADAPTER_FILE)
    except CheckpointMismatchError as error:
        raise ModelError([" ".join(str(error).split())]) from None
    return model.eval(), tokenizer


def applied(model: nn.Module, record: CheckpointRecord, path: Path) -> None:
    """The recorded method applied to `model` and its trainable set chosen; what the builder or the globs
    refuse on this architecture (arguments that pass the schema, such as an `n` not dividing d_model) is one
    line naming the key."""
    from harness.model.build import apply_to
    from impl.inject import GlobMatchesNothingError
    from impl.registry import MethodArgumentError

    try:
        apply_to(model, record.method, record.arguments, record.trainable)
    except MethodArgumentError as error:
        raise ModelError([f"{path}: arguments.{error.argument}: {error.message}"]) from None
    except GlobMatchesNothingError as error:
        raise ModelError([f"{path}: trainable[{error.index}]: the glob {error.glob!r} matches no parameter of "
                         f"{record.method} on {record.model.name}"]) from None  # fmt: skip
