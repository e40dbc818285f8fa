"""Prompt tuning (Lester et al. 2021) on the stock T5: trainable vectors prepended to the encoder's input.

With E(x) ∈ R^{T×d} the encoder's input embeddings and P ∈ R^{p×d} the prompt,

    encoder input = [P; E(x)] ∈ R^{(p+T)×d},     attention mask = [1_p; m] ∈ {0, 1}^{p+T},

and the decoder is untouched: its inputs, its self-attention and its weights are those of T5; only the
mask its cross-attention uses over the (now p + T) encoder states gains the p ones of the prompt.

Attached with forward pre-hooks (with keyword arguments) on the encoder and decoder `T5Stack`s, so it
works wherever the stacks are called: `model(...)` for training, and `model.generate(...)`, which runs the
encoder once by itself and then the decoder step by step with the unextended mask.
"""

from __future__ import annotations

import torch
from torch import nn

STACK_ARGUMENTS = ("input_ids", "attention_mask", "encoder_hidden_states", "encoder_attention_mask", "inputs_embeds")


class EncoderPrompt(nn.Module):
    """The prompt P ∈ R^{p×d}, a parameter named `prompt`."""

    def __init__(self, length: int, d_model: int, device: torch.device | str | None = None) -> None:
        super().__init__()
        if length < 1:
            raise ValueError(f"the prompt length must be positive, got {length}")
        self.length, self.d_model = length, d_model
        self.prompt = nn.Parameter(torch.empty(length, d_model, device=device))  # (p, d)

    def prepend(self, embeddings: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """[P; E(x)] and [1_p; m]: (B, T, d), (B, T) -> (B, p + T, d), (B, p + T)."""
        batch, length = embeddings.shape[:2]
        prompt = self.prompt.to(embeddings.dtype).unsqueeze(0).expand(batch, -1, -1)  # (B, p, d)
        if mask is None:
            mask = torch.ones(batch, length, dtype=torch.long, device=embeddings.device)
        ones = torch.ones(batch, self.length, dtype=mask.dtype, device=mask.device)  # (B, p)
        return torch.cat((prompt, embeddings), dim=1), torch.cat((ones, mask), dim=1)

    def extend_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """[1_p; m]: (B, T) -> (B, p + T)."""
        ones = torch.ones(mask.shape[0], self.length, dtype=mask.dtype, device=mask.device)
        return torch.cat((ones, mask), dim=1)

    def extra_repr(self) -> str:
        return f"length={self.length}, d_model={self.d_model}"


def _as_keywords(args: tuple, kwargs: dict) -> dict:
    """T5Stack.forward's positional arguments as keywords (generate and T5 pass keywords already)."""
    if len(args) > len(STACK_ARGUMENTS):
        raise TypeError(
            f"T5Stack called with {len(args)} positional arguments; expected at most {len(STACK_ARGUMENTS)}"
        )
    return {**dict(zip(STACK_ARGUMENTS, args, strict=False)), **kwargs}


class _PrependToEncoder:
    """Encoder pre-hook: embed the tokens, prepend P, extend the mask (a callable object: deepcopy rebinds it)."""

    def __init__(self, prompt: EncoderPrompt) -> None:
        self.prompt = prompt

    def __call__(self, stack: nn.Module, args: tuple, kwargs: dict):
        kwargs = _as_keywords(args, kwargs)
        embeddings = kwargs.get("inputs_embeds")
        if embeddings is None:
            if kwargs.get("input_ids") is None:
                return None  # T5 itself reports the missing input
            embeddings = stack.embed_tokens(kwargs["input_ids"])  # (B, T, d)
        kwargs["inputs_embeds"], kwargs["attention_mask"] = self.prompt.prepend(
            embeddings, kwargs.get("attention_mask")
        )
        kwargs["input_ids"] = None
        return (), kwargs


class _ExtendCrossAttentionMask:
    """Decoder pre-hook: the mask over the encoder states gains the prompt's p ones when it lacks them."""

    def __init__(self, prompt: EncoderPrompt) -> None:
        self.prompt = prompt

    def __call__(self, stack: nn.Module, args: tuple, kwargs: dict):
        kwargs = _as_keywords(args, kwargs)
        states, mask = kwargs.get("encoder_hidden_states"), kwargs.get("encoder_attention_mask")
        if states is None or mask is None or mask.shape[-1] + self.prompt.length != states.shape[1]:
            return (), kwargs  # no mask, or one that already covers the prompt
        kwargs["encoder_attention_mask"] = self.prompt.extend_mask(mask)
        return (), kwargs


def attach_encoder_prompt(model: nn.Module, name: str, prompt: EncoderPrompt) -> EncoderPrompt:
    """Register `prompt` as `model.<name>` and hook it into the encoder and decoder stacks of a T5."""
    if hasattr(model, name):
        raise ValueError(f"the model already has an attribute {name!r}")
    if prompt.d_model != model.config.d_model:
        raise ValueError(f"the prompt has width {prompt.d_model}, the model d_model={model.config.d_model}")
    for stack in ("encoder", "decoder"):
        if not isinstance(getattr(model, stack, None), nn.Module):
            raise ValueError(f"expected an encoder-decoder T5 with a `{stack}` stack")
    model.add_module(name, prompt)
    model.encoder.register_forward_pre_hook(_PrependToEncoder(prompt), with_kwargs=True)
    model.decoder.register_forward_pre_hook(_ExtendCrossAttentionMask(prompt), with_kwargs=True)
    return prompt
