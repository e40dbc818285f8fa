"""Prompt tuning, random init (Lester et al. 2021; the Compacter paper's "Prompt tuning-R").

p = 100 trainable vectors P ∈ R^{p×d} are prepended to the encoder's input embeddings only,

    encoder input = [P; E(x)],   attention mask = [1_p; m],   P ~ U(−0.5, 0.5),

and nothing else trains (T5's layer norms stay frozen, as in the released code): p·d = 76,800 parameters
on t5-base. The decoder is untouched (its cross-attention mask covers the p extra encoder states).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from impl.methods._prompt import NOT_MERGEABLE
from impl.registry import MethodArgumentError, register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    from torch import nn

NAME = "prompt_tuning_random"


@register(NAME, merge=NOT_MERGEABLE)
def build(model: nn.Module, *, prompt_length: int = 100, init_low: float = -0.5, init_high: float = 0.5) -> None:
    """Prompt tuning-R: p vectors ~ U(low, high) prepended to the encoder's input embeddings; only they train."""
    if prompt_length < 1:
        raise MethodArgumentError("prompt_length", f"must be a positive integer, got {prompt_length}")
    if not init_low < init_high:
        raise MethodArgumentError("init_high", f"the init range must be increasing, got [{init_low}, {init_high}]")
    import torch

    from impl.layers.prompt import EncoderPrompt, attach_encoder_prompt

    device = model.get_input_embeddings().weight.device
    prompt = EncoderPrompt(prompt_length, model.config.d_model, device=device)
    with torch.no_grad():
        prompt.prompt.uniform_(init_low, init_high)  # the global RNG, like every other random init here
    attach_encoder_prompt(model, NAME, prompt)
