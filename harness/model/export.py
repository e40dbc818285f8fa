"""Merged export: a trained method folded into the stock transformers T5, where the maths allows it.

- full fine-tuning: the trained model is a stock T5 already;
- Intrinsic-SAID: every base tensor becomes θ_i = θ_i⁰ + λ_i · P_i(z), materialised once.

Every other method adds computation the stock architecture has no place for, and is refused with why.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import SpecError

if TYPE_CHECKING:
    from torch import nn

    from harness.spec.model_files import ModelFile

ADAPTERS = "its adapters y + U(f(D(y))) are non-linear and sit inside T5's residual: no stock weight can hold them"
ADAPTER_FAMILY = ("adapter", "pfeiffer_adapter", "adapter_drop", "low_rank_adapter", "phm_adapter", "compacter",
                  "compacter_pp")  # fmt: skip
PROMPT = "its prompt is p extra input positions, not a weight of the stock T5"
REFUSALS = {
    **dict.fromkeys(ADAPTER_FAMILY, ADAPTERS),
    "bitfit": "its biases have no slot: T5's projections, layer norms and lm_head have no bias",
    "prompt_tuning_random": PROMPT,
    "prompt_tuning_tokens": PROMPT,
}
MERGEABLE = ("full_finetune", "intrinsic_said")


def merged_state(model: nn.Module, method: str) -> dict[str, Any]:
    """name -> tensor of the stock T5 that computes what the trained method model computes."""
    import torch

    merged_state_refusal(method)
    if method == "full_finetune":
        return {name: p.detach().clone() for name, p in model.named_parameters()}
    said = model.intrinsic_said
    with torch.no_grad():
        weights = said.materialise()  # θ_i = θ_i⁰ + λ_i P_i(z), in the base model's named_parameters() order
    return {name: weight.detach().clone() for name, weight in zip(said._names, weights, strict=True)}


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
    """SpecError, before anything is loaded, for a method that does not fold into T5."""
    if method not in MERGEABLE:
        reason = REFUSALS.get(method, "it is not one of the methods that fold into T5")
        raise SpecError([f"export --merged: {method} cannot be merged: {reason} (mergeable: {', '.join(MERGEABLE)})"])


def check_new_folder(output: Path, option: str) -> None:
    """A folder `save_pretrained` may fill: new (its parent a writable folder) or empty; anything else is one line
    before the checkpoint is loaded (an existing file, a dangling link, a parent that is a file would otherwise
    fail in `save_pretrained`, after minutes of loading, or write through the link)."""
    writable_parent(output, option)
    try:
        used = output.exists() and any(output.iterdir())
    except OSError as error:
        raise SpecError([f"{output}: {option}: cannot list the folder ({error.strerror or error})"]) from None
    if used:
        raise SpecError([f"{output}: {option}: the folder exists and is not empty; choose a new one"])


def writable_parent(path: Path, option: str) -> None:
    """`path`, or its nearest existing parent, is a writable folder (no file, pipe or dangling link on the way):
    else one line naming `option`, before anything is computed that writing there would lose."""
    from harness.inputs import folder_problem

    why = folder_problem(path)
    if why:
        raise SpecError([f"{path}: {option}: {why}"])
