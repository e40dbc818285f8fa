"""Prompt tuning, vocabulary init (Lester et al. 2021; the Compacter paper's "Prompt tuning-T").

As Prompt tuning-R — p = 100 trainable vectors prepended to the encoder's input embeddings only, mask
extended, decoder untouched, only the prompt trains (76,800 parameters on t5-base) — but initialised
with copies of pretrained vocabulary embeddings:

    P_j = E[s + j],   j = 0..p−1,   s = `init_vocab_start` (default 0: rows 0–99).

Which rows: the paper initialises from the vocabulary; the released code meant the first p rows (its
later commit drew random rows instead, an accident). Rows 0–99 of T5's SentencePiece vocabulary are real
pretrained vectors — <pad>, </s>, <unk> and the most frequent pieces ("▁", ".", ",", "▁the", "s", …),
the ids being roughly ordered by frequency — close to Lester et al.'s "sample from the 5,000 most common
tokens", and deterministic. The rows are copied: training the prompt never changes the embedding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from impl.registry import MethodArgumentError, register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    from torch import nn

NAME = "prompt_tuning_tokens"


@register(NAME)
def build(model: nn.Module, *, prompt_length: int = 100, init_vocab_start: int = 0) -> None:
    """Prompt tuning-T: p copies of vocabulary embedding rows s..s+p−1 prepended to the encoder's input."""
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
        prompt.prompt.copy_(embedding[init_vocab_start : init_vocab_start + prompt_length])  # a copy, not a view
    attach_encoder_prompt(model, NAME, prompt)
