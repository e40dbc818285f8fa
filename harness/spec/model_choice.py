"""`--model` in every command: a model file in `spec/models/`, a local Hugging Face folder, or a hub id.

- a model file name (`t5_base`, `flan_t5_base`): the architecture the file states;
- a folder: its `config.json` (weights and tokenizer optional: counting needs only the configuration);
- a hub id (`google/flan-t5-base`): its `config.json` through the local Hugging Face cache, downloaded
  when the hub is reachable. Offline and not cached, one line says what to pass instead.

Only the configuration is read (as JSON, never executed); the model is built later, on the meta device
for counting.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import ValidationError

from harness.errors import InputError, ModelError, OptionError, SpecError, did_you_mean
from harness.inputs import present
from harness.spec.model_files import ModelFile, T5Architecture, architecture_from_config, models_dir
from harness.spec.reading import pydantic_errors, read_yaml

MAX_CONFIG_BYTES = 1_000_000  # a config.json is a few hundred lines
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def hub_is_offline() -> bool:
    """HF_HUB_OFFLINE set: the hub is never contacted, only the local cache is read."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def known_model_files(spec_path: Path) -> list[str]:
    return sorted(p.stem for p in models_dir(spec_path).glob("*.yaml"))


def load_model_file(path: Path) -> ModelFile:
    """`spec/models/<name>.yaml`, validated; SpecError lines naming the file."""
    data = read_yaml(path)
    try:
        model_file = ModelFile.model_validate(data)
    except ValidationError as error:
        raise SpecError(pydantic_errors(path, error)) from None
    if model_file.name != path.stem:
        raise SpecError([f"{path}: name: {model_file.name!r} must equal the file name {path.stem!r}"])
    return model_file


def model_file_for(spec_path: Path, name: str, key: str = "model") -> ModelFile:
    """`models/<name>.yaml` beside the spec; SpecError naming `key` (the spec's `model` or `check_model`,
    which name model files only: a spec is data that validates offline)."""
    folder = models_dir(spec_path)
    candidate = folder / f"{name}.yaml"
    if not present(candidate):  # a pipe or a folder of that name is refused by read_yaml, not taken for absent
        known = known_model_files(spec_path)
        raise SpecError([f"{spec_path}: {key}: no model file {candidate}{did_you_mean(name, known)}"])
    return load_model_file(candidate)


def resolve_model(spec_path: Path, name: str, key: str = "--model", where: str | None = None) -> ModelFile:
    """The architecture `name` means; an OptionError (one line starting `where`, default `SPEC: key`) when it
    means none, a ModelError for a folder or hub config.json that is no T5's. Model files are looked up beside
    `spec_path`; a model file's name wins over a folder of the same name (`./t5_base` is the folder)."""
    where = where or f"{spec_path}: {key}"
    candidate = models_dir(spec_path) / f"{name}.yaml"  # `name` may be a model file beside the spec
    if "/" not in name and present(candidate):
        return load_model_file(candidate)
    folder = Path(name).expanduser()
    if folder.is_dir():
        return model_from_folder(folder)
    if folder.exists() or name.startswith((".", "/", "~")) or not HUB_ID.match(name):
        raise OptionError([f"{where}: {name!r} is {what_it_is(folder)}; {expected(spec_path, name)}"])
    return model_from_hub(name, where, expected(spec_path, name))


def pretrained_architecture(source: str) -> T5Architecture:
    """The architecture of a pretrained checkpoint's config.json (a folder, or a hub id through the cache)."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        return model_from_folder(folder).architecture
    hint = "pass --pretrained with a local folder holding the checkpoint (config.json, weights, tokenizer)"
    return model_from_hub(source, f"{source}: --pretrained", hint).architecture


def what_it_is(path: Path) -> str:
    if path.is_file():
        return "a file, not a folder holding config.json"
    return "no model file, folder or valid hub id"


def expected(spec_path: Path, name: str) -> str:
    """What `--model` accepts, with the model file `name` was probably meant to be."""
    import difflib

    known = known_model_files(spec_path)
    close = difflib.get_close_matches(name, known, n=1)
    meant = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"{meant}pass a model file name (known: {', '.join(known)}), a folder holding a Hugging Face "
        "config.json, or a hub id such as google/flan-t5-base"
    )


def read_config(path: Path) -> dict:
    """A JSON file of a model folder (a config.json, a weights index), or one ModelError line naming the file:
    a regular file (a pipe would block), at most MAX_CONFIG_BYTES, UTF-8, nested at most
    `harness.inputs.MAX_JSON_DEPTH` levels (deeper JSON exhausts the parser's recursion) and with finite
    numbers only (a `layer_norm_epsilon: NaN` would build a model that computes NaN)."""
    from harness.inputs import read_json

    try:
        return read_json(path, MAX_CONFIG_BYTES, what=path.name)
    except InputError as error:
        raise ModelError(error.errors) from None


MAX_HEADER_BYTES = 100_000_000  # a safetensors header lists tensor names and shapes: megabytes at most


def stored_lm_head(folder: Path) -> bool | None:
    """Whether the folder's safetensors weights hold an `lm_head.weight` of their own (None: no such weights).

    Only the JSON index or the safetensors header is read: names, never tensor data, nothing unpickled; the
    header as any JSON the harness did not write (bounded size and nesting, finite numbers). Else a ModelError.
    """
    from harness.inputs import decode_utf8, parse_json, regular_file

    index = folder / "model.safetensors.index.json"
    if present(index):
        data = read_config(index)
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        return isinstance(weight_map, dict) and "lm_head.weight" in weight_map
    weights = folder / "model.safetensors"
    if not present(weights):
        return None
    try:
        regular_file(weights, "safetensors file")
        with weights.open("rb") as file:
            size = int.from_bytes(file.read(8), "little")
            if not 0 < size <= MAX_HEADER_BYTES:
                raise ModelError([f"{weights}: (top level): not a safetensors file (header of {size:,} bytes)"])
            raw = file.read(size)
        header = parse_json(decode_utf8(raw, weights, "safetensors header"), weights, "safetensors header")
    except OSError as error:
        why = error.strerror or error
        raise ModelError([f"{weights}: (top level): cannot read the safetensors file: {why}"]) from None
    except ModelError:
        raise
    except InputError as error:
        raise ModelError([f"{line} (not a safetensors file: unreadable header)" for line in error.errors]) from None
    return isinstance(header, dict) and "lm_head.weight" in header


def model_from_folder(folder: Path) -> ModelFile:
    """The architecture of a local Hugging Face folder's config.json; its weights and tokenizer live there."""
    config_path = folder / "config.json"
    if not present(config_path):
        raise ModelError([f"{folder}: --model: the folder holds no config.json (a folder written by save_pretrained)"])
    architecture = architecture_from_config(read_config(config_path), str(config_path), stored_lm_head(folder))
    return ModelFile(
        name=str(folder),
        description=f"{architecture.family} from the local folder {folder}",
        pretrained=str(folder),
        source=str(config_path),
        architecture=architecture,
    )


def model_from_hub(hub_id: str, where: str, hint: str, kind: type[InputError] = OptionError) -> ModelFile:
    """The architecture of a hub model's config.json (local cache first; the hub only when online).

    A hub id that reaches no config.json is a `kind` line (an OptionError: the option named nothing; a
    ModelError where a checkpoint's record names it), starting with `where` (`SPEC: --model`) and ending with
    `hint` (what to pass instead); a config.json that is no T5's is a ModelError.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        config_path = Path(hf_hub_download(hub_id, "config.json", local_files_only=hub_is_offline()))
    except LocalEntryNotFoundError:
        why = "is not in the local Hugging Face cache (HF_HUB_OFFLINE=1 forbids the hub)"
        if not hub_is_offline():
            why = "could not be fetched from the hub, nor found in the local cache"
        raise kind([f"{where}: {hub_id!r} is no local folder, and as a hub id {why}; {hint}"]) from None
    except (HFValidationError, OSError, ValueError) as error:  # no such repository, no config.json, network
        message = " ".join(str(error).split())[:300]
        raise kind([f"{where}: {hub_id!r}: cannot read its config.json from the hub ({message})"]) from None
    where = f"{hub_id}/config.json"
    architecture = architecture_from_config(read_config(config_path), where, stored_lm_head(config_path.parent))
    return ModelFile(
        name=hub_id,
        description=f"{architecture.family} from the hub ({hub_id})",
        pretrained=hub_id,
        source=f"{hub_id} config.json ({config_path})",
        architecture=architecture,
    )
