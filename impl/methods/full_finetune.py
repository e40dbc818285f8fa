"""Full fine-tuning (the paper's T5_BASE baseline): no module is added and every parameter trains.

    θ ← θ − η · AdamW(∇_θ L),   θ = all 222,882,048 parameters of t5-base (vocabulary 32,100).

The builder leaves the model unchanged; what trains is declared by the spec's `trainable: ["*"]` like for
every other method, so the budget is still counted from the model (the tied embedding / lm_head once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from impl.registry import register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    import torch
    from torch import nn


def merged_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trained model is a stock T5 already: its own parameters (the tied embedding / lm_head once)."""
    return {name: parameter.detach().clone() for name, parameter in model.named_parameters()}


@register("full_finetune", merge=merged_state)
def build(model: nn.Module) -> None:
    """Full fine-tuning: the stock T5, unchanged; the spec's globs make every parameter trainable."""
    from torch import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"full_finetune expects a torch module, got {type(model).__name__}")
