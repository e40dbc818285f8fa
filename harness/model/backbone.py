"""A T5-family model of an architecture: built (on the meta device for budgets, randomly initialised for
checks and smoke runs) or loaded pretrained and fitted to the architecture; untied lm_heads kept untied.

transformers 5 ties every T5 and mT5 lm_head to the input embedding: `T5Config`/`MT5Config` force
`tie_word_embeddings=True`, so a model built from a config is tied, and `tie_weights()` (called by
`resize_token_embeddings`) ties again a Flan-T5 that `from_pretrained` had loaded untied. T5 v1.1,
Flan-T5 and mT5 checkpoints hold an lm_head of their own (Flan-T5-base: 247,577,856 parameters, not the
tied 222,903,552); `untie_lm_head` gives it back and keeps it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ModelError
from harness.spec.model_files import ModelFile, T5Architecture

if TYPE_CHECKING:
    import torch
    from torch import nn

LM_HEAD = "lm_head.weight"
FITTED_FIELDS = ("vocab_size", "dropout_rate")  # a pretrained model may differ from its architecture only here


def model_class(architecture: T5Architecture):
    """transformers' class of the architecture's family (mT5 has classes of its own)."""
    from transformers import MT5ForConditionalGeneration, T5ForConditionalGeneration

    return MT5ForConditionalGeneration if architecture.model_type == "mt5" else T5ForConditionalGeneration


def build_t5(model_file: ModelFile, device: str | torch.device = "meta", seed: int | None = None) -> nn.Module:
    """A T5 (or mT5) ForConditionalGeneration of this architecture: on `meta` (no weights) or randomly
    initialised; an untied architecture gets an lm_head of its own (drawn after the rest, from `seed`)."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    architecture = model_file.architecture
    with torch.device(device):
        model = model_class(architecture)(model_file.t5_config())
        if not architecture.tie_word_embeddings:
            untie_lm_head(model)
    return model


def untie_lm_head(model: nn.Module) -> None:
    """The lm_head with a matrix of its own, never tied again by `tie_weights()`.

    A tied lm_head gets a fresh matrix drawn as transformers draws an untied T5 lm_head,
    N(0, initializer_factor²); a loaded untied one keeps its values.
    """
    import torch
    from torch import nn

    model._tied_weights_keys = {k: v for k, v in type(model)._tied_weights_keys.items() if k != LM_HEAD}
    model.all_tied_weights_keys = {k: v for k, v in model.all_tied_weights_keys.items() if k != LM_HEAD}
    if is_tied(model):
        weight = torch.empty_like(model.shared.weight)  # (V, d_model)
        nn.init.normal_(weight, mean=0.0, std=model.config.initializer_factor)
        model.lm_head.weight = nn.Parameter(weight)


def is_tied(model: nn.Module) -> bool:
    return model.lm_head.weight is model.shared.weight


PRETRAINED_FILES = {  # what `from_pretrained` reads from a local folder, by what it is for
    "config.json": ("config.json",),
    "the weights (model.safetensors)": (
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
    ),
    "the tokenizer (tokenizer.json or spiece.model)": ("tokenizer.json", "spiece.model"),
}  # fmt: skip


def missing_pretrained_files(folder: Path) -> list[str]:
    """What a local folder lacks of the config, the weights and the tokenizer ([] when complete)."""
    return [what for what, names in PRETRAINED_FILES.items() if not any((folder / name).is_file() for name in names)]


def pretrained_source_problems(source: str, option: str) -> list[str]:
    """Why `source` cannot give a T5's weights and tokenizer, found before any is read ([] when it may): a folder
    lacking the config, the weights or the tokenizer, or a hub id outside the local Hugging Face cache when
    HF_HUB_OFFLINE=1 forbids the hub. Each line names `option`, the option (or record key) that chose it."""
    from harness.spec.model_choice import hub_is_offline

    folder = Path(source).expanduser()
    if folder.is_dir():
        missing = missing_pretrained_files(folder)
        if not missing:
            return []
        lacks = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
        return [f"{source}: {option}: the folder lacks {lacks}; pass a folder written by save_pretrained"]
    if hub_is_offline() and not is_cached(source):
        return [f"{source}: {option}: not a local folder nor in the local Hugging Face cache, and HF_HUB_OFFLINE=1 "
                f"forbids the hub; pass {option} /path/to/{source.split('/')[-1]} (a folder with config.json, "
                "model.safetensors and the tokenizer files)"]  # fmt: skip
    return []


def is_cached(hub_id: str) -> bool:
    """The local Hugging Face cache holds the hub model's config.json."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)
    except HFValidationError:
        return False


def load_pretrained(model_file: ModelFile, pretrained: str, option: str = "--model") -> tuple[nn.Module, Any]:
    """(model, tokenizer) from `pretrained` (a folder or hub id), fitted to the model file's architecture.

    The checkpoint's config must equal the architecture except in `FITTED_FIELDS`: a larger vocabulary is
    resized down to the architecture's (t5-base's 32,128 rows to the tokenizer's 32,100, as the released
    code does), and the tying must be the architecture's. Anything else is refused, naming the field. A
    load that fails (a folder without weights, corrupt weights or tokenizer) is one line naming `option`, the
    option (or record key) that chose it.
    """
    from harness.data.tokenizer import load_tokenizer
    from harness.spec.model_choice import pretrained_architecture

    wanted, found = model_file.architecture, pretrained_architecture(pretrained)
    differing = [
        f"{key} ({getattr(found, key)!r}; {model_file.name} has {getattr(wanted, key)!r})"
        for key in T5Architecture.model_fields
        if key not in FITTED_FIELDS and getattr(found, key) != getattr(wanted, key)
    ]
    if differing:
        raise ModelError([f"{pretrained}: config.json: differs from {model_file.name} in {', '.join(differing)}"])
    if found.vocab_size < wanted.vocab_size:
        raise ModelError([f"{pretrained}: config.json: vocab_size {found.vocab_size:,} is smaller than "
                         f"{model_file.name}'s {wanted.vocab_size:,}; rows cannot be invented"])  # fmt: skip
    problems = pretrained_source_problems(pretrained, option)
    if problems:
        raise ModelError(problems)
    tokenizer = load_tokenizer(pretrained)  # one line of its own naming the folder when it cannot be loaded
    try:
        model = model_class(wanted).from_pretrained(pretrained)
    except Exception as error:  # transformers and safetensors raise many kinds for a bad folder
        why = " ".join(str(error).split())[:300] or type(error).__name__
        raise ModelError([f"{pretrained}: {option}: cannot load it: {why}"]) from None
    if len(tokenizer) > wanted.vocab_size:
        raise ModelError([f"{pretrained}: tokenizer: {len(tokenizer):,} entries do not fit {model_file.name}'s "
                         f"vocabulary of {wanted.vocab_size:,}"])  # fmt: skip
    fit_tying(model, wanted, pretrained)
    if found.vocab_size != wanted.vocab_size:
        model.resize_token_embeddings(wanted.vocab_size)
    return model, tokenizer


def fit_tying(model: nn.Module, architecture: T5Architecture, source: str) -> None:
    """The loaded lm_head tied or not as the architecture says (transformers unties only on differing values)."""
    if architecture.tie_word_embeddings and not is_tied(model):
        raise ModelError([f"{source}: config.json: tie_word_embeddings is true but the checkpoint's lm_head.weight "
                         "differs from shared.weight"])  # fmt: skip
    if not architecture.tie_word_embeddings:
        if is_tied(model):
            raise ModelError([f"{source}: config.json: tie_word_embeddings is false but the checkpoint holds no "
                             "lm_head.weight of its own"])  # fmt: skip
        untie_lm_head(model)
