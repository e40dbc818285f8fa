"""Intrinsic-SAID (Aghajanyan et al. 2021), the Compacter paper's intrinsic-dimension baseline.

Every base tensor θ_i (i = 1..m, the tied embedding / lm_head once) is re-parameterised around its
pretrained value θ_i⁰ through a random Fastfood projection P_i of one shared low-dimensional vector z:

    θ_i = θ_i⁰ + λ_i · P_i(z),     P_i(z) = [H G_i Π_i H B_i pad(z)]_{1..D_i} / (‖G_i‖ √D_i),

z ∈ R^{d′−m−1} starts at 0 (so the model starts exactly at θ⁰) and λ ∈ R^{m+1} starts at 1 (the released
code keeps one more λ than tensors; the last is never used). Only z and λ train: d′ = 20,000 parameters
in all (19,742 + 258 on t5-base, m = 257).

How it runs on the stock T5: `model.intrinsic_said` holds z, λ and the projections (one `FastfoodBank`
per group of same-sized tensors). A forward pre-hook on the model, its encoder and its decoder — the
modules `generate` calls — materialises every θ_i once and puts it in place of the Parameter θ_i⁰ for the
outermost call; a forward hook puts θ_i⁰ back. Under autograd each forward pass builds θ once (its
backward gives z and λ their exact gradients); without gradients (evaluation, every decoding step of
`generate`) θ is computed once per update of z, λ or θ⁰ and reused.

Projections are drawn from `projection_seed` (a method argument) with private generators, never the global
RNG: the same seed gives the same projections in any process, and checkpoints record the seed and a
fingerprint of the draws, which loading checks (`impl.state`). The released code drew them from the global
RNG and did not save them, so its checkpoints cannot be reloaded.

`hadamard_backward="scaled"` reproduces the released code's gradient (fidelity `said_backward: released`):
its Walsh–Hadamard autograd function multiplies each backward pass by 1/√L_i (projections/intrinsic.py:
123-139), and P_i has two of them, so z's gradient through tensor i is scaled by 1/L_i:

    ∂z = Σ_i λ_i P_iᵀ g_i / L_i   (released),   ∂z = Σ_i λ_i P_iᵀ g_i   (exact);   ∂λ_i = ⟨g_i, P_i(z)⟩ in both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from impl.registry import MethodArgumentError, register

if TYPE_CHECKING:  # torch loads when the builder runs: listing and validating methods never import it
    import torch
    from torch import nn

NAME = "intrinsic_said"


def merged_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every base tensor θ_i = θ_i⁰ + λ_i · P_i(z), materialised once, under its name in the stock T5."""
    import torch

    said = model.intrinsic_said
    with torch.no_grad():
        weights = said.materialise()  # in the base model's named_parameters() order, as said.names
    return {name: weight.detach().clone() for name, weight in zip(said.names, weights, strict=True)}


@register(NAME, merge=merged_state)
def build(
    model: nn.Module,
    *,
    intrinsic_dimension: int = 20000,
    projection_seed: int = 0,
    hadamard_backward: Literal["exact", "scaled"] = "exact",
) -> None:
    """Intrinsic-SAID: θ_i = θ_i⁰ + λ_i · P_i(z) for every base tensor, Fastfood P_i; z and λ train (d′ in all).
    `hadamard_backward="scaled"`: z's gradient through tensor i × 1/L_i, as the released code."""
    if hasattr(model, NAME):
        raise MethodArgumentError("intrinsic_dimension", f"the model already has an attribute {NAME!r}")
    if projection_seed < 0:
        raise MethodArgumentError("projection_seed", f"must be a non-negative integer, got {projection_seed}")
    m = len(list(model.named_parameters()))  # the base tensors θ_i, the tied embedding once
    if intrinsic_dimension <= m + 1:
        raise MethodArgumentError(
            "intrinsic_dimension", f"{intrinsic_dimension} must exceed m + 1 = {m + 1} (m = {m} base tensors)"
        )
    from impl.layers.intrinsic_said import attach_intrinsic_said

    attach_intrinsic_said(model, intrinsic_dimension, projection_seed, scaled_backward=hadamard_backward == "scaled")
