"""Prompt tuning, vocabulary init (Lester et al. 2021; the Compacter paper's "Prompt tuning-T").

As Prompt tuning-R — p = 100 trainable vectors prepended to the encoder's input embeddings only, mask
extended, decoder untouched, only the prompt trains (76,800 parameters on t5-base) — but initialised
with copies of pretrained vocabulary embeddings:

    P_j = E[s + j],   j = 0..p−1,   s = `init_vocab_start` (default 0: rows 0–99).

Which rows: the paper initialises from the vocabulary; the released code meant the first p rows. Rows 0–99
of T5's SentencePiece vocabulary are real pretrained vectors — <pad>, </s>, <unk> and the most frequent
pieces ("▁", ".", ",", "▁the", "s", …), the ids being roughly ordered by frequency — close to Lester et
al.'s "sample from the 5,000 most common tokens", and deterministic. The rows are copied: training the
prompt never changes the embedding.

`init_from="random_normal"` is what the released code (e123daa) actually trains: it copies rows 0..p−1 in
`_init_weights`, from the embedding just drawn N(0, f²) (f = `initializer_factor`, 1.0), before the
pretrained weights load (modeling_t5.py:770-772, 1602-1605), so its prompt is i.i.d. N(0, f²) noise, here
drawn from the global RNG as there (fidelity `prompt_init: released`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from impl.methods._prompt import NOT_MERGEABLE
from impl.registry import MethodArgumentError, register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    from torch import nn

NAME = "prompt_tuning_tokens"


@register(NAME, merge=NOT_MERGEABLE)
def build(
    model: nn.Module,
    *,
    prompt_length: int = 100,
    init_vocab_start: int = 0,
    init_from: Literal["vocabulary", "random_normal"] = "vocabulary",
) -> None:
    """Prompt tuning-T: p copies of vocabulary embedding rows s..s+p−1 prepended to the encoder's input (or,
    `random_normal`, the released code's N(0, initializer_factor²) draws)."""
    if prompt_length < 1:
        raise MethodArgumentError("prompt_length", f"must be a positive integer, got {prompt_length}")
    import torch

    from impl.layers.prompt import EncoderPrompt, attach_encoder_prompt

    embedding = model.get_input_embeddings().weight  # (V, d)
    vocabulary = embedding.shape[0]
    last = init_vocab_start + prompt_length - 1
    if init_vocab_start < 0 or last >= vocabulary:
        raise MethodArgumentError(
            "init_vocab_start", f"rows {init_vocab_start}..{last} must lie in the vocabulary 0..{vocabulary - 1}"
        )
    prompt = EncoderPrompt(prompt_length, model.config.d_model, device=embedding.device)
    with torch.no_grad():
        if init_from == "random_normal":
            prompt.prompt.normal_(mean=0.0, std=model.config.initializer_factor)  # (p, d), the global RNG
        else:
            prompt.prompt.copy_(embedding[init_vocab_start : init_vocab_start + prompt_length])  # a copy, not a view
    attach_encoder_prompt(model, NAME, prompt)
