"""Merged export: a trained method folded into the stock transformers T5, where the maths allows it.

Each method declares its merge rule beside its builder (`impl.registry.register(name, merge=...)`): the
function giving the stock T5's parameters of a trained model (full fine-tuning: its own; Intrinsic-SAID:
θ_i = θ_i⁰ + λ_i · P_i(z), materialised once), or one sentence saying why it cannot merge. Here is only the
mechanism: ask the registry, refuse with the method's reason, build the stock T5 and copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ModelError, OutputDirError

if TYPE_CHECKING:
    from torch import nn

    from harness.spec.model_files import ModelFile


def merged_state(model: nn.Module, method: str) -> dict[str, Any]:
    """name -> tensor of the stock T5 that computes what the trained method model computes."""
    from impl.registry import get

    merged_state_refusal(method)
    return get(method).merge(model)


def merged_model(model: nn.Module, method: str, architecture: ModelFile) -> nn.Module:
    """A fresh stock T5 (or mT5) of `architecture` holding the merged weights; every parameter is set."""
    import torch

    from harness.model.backbone import build_t5

    state = merged_state(model, method)
    plain = build_t5(architecture, device="cpu")
    parameters = dict(plain.named_parameters())
    if set(parameters) != set(state):
        raise RuntimeError(f"merged weights cover {sorted(set(state) ^ set(parameters))[:4]} differently")
    with torch.no_grad():
        for name, tensor in state.items():
            parameters[name].copy_(tensor)
    return plain.eval()


def export_merged(folder: Path, output: Path, base_model: str | None = None) -> Path:
    """The checkpoint at `folder` merged into a stock T5 folder at `output` (safetensors, config, tokenizer)."""
    from harness.model.record import load_recorded, read_record

    record = read_record(folder)
    merged_state_refusal(record.method)
    check_new_folder(output, "--merged")
    model, tokenizer = load_recorded(folder, record, base_model)
    plain = merged_model(model, record.method, record.model)
    plain.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return output


def merged_state_refusal(method: str) -> None:
    """ModelError, before anything is loaded, for a checkpoint whose method does not fold into T5: its reason."""
    from impl.registry import get, names

    merge = get(method).merge
    if isinstance(merge, str):
        mergeable = ", ".join(name for name in names() if get(name).mergeable)
        raise ModelError([f"export --merged: {method} cannot be merged: {merge} (mergeable: {mergeable})"])


def check_new_folder(output: Path, option: str) -> None:
    """A folder `save_pretrained` may fill: new (its parent a writable folder) or empty; anything else is one line
    before the checkpoint is loaded (an existing file, a dangling link, a parent that is a file would otherwise
    fail in `save_pretrained`, after minutes of loading, or write through the link): an OutputDirError."""
    writable_parent(output, option)
    try:
        used = output.exists() and any(output.iterdir())
    except OSError as error:
        raise OutputDirError([f"{output}: {option}: cannot list the folder ({error.strerror or error})"]) from None
    if used:
        raise OutputDirError([f"{output}: {option}: the folder exists and is not empty; choose a new one"])


def writable_parent(path: Path, option: str) -> None:
    """`path`, or its nearest existing parent, is a writable folder (no file, pipe or dangling link on the way):
    else one line naming `option` (an OutputDirError), before anything is computed that writing there would lose."""
    from harness.inputs import folder_problem

    why = folder_problem(path)
    if why:
        raise OutputDirError([f"{path}: {option}: {why}"])
