"""The closed vocabulary of module invariants as plain data: each name's one-line summary and options.

`ls` and spec validation read this module, which imports neither torch nor the checks; the checks
(`harness.invariants.<module>`) register against it, and an unknown or undeclared name is an error there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt


class Options(BaseModel):
    """An invariant's options in the spec: unknown keys are errors; no infinity or NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NoOptions(Options):
    pass


class CountOptions(Options):
    # Intrinsic-SAID: also check that its tensor list is the unique base tensors once each, λ and z sized to match
    reparameterised_tensors: bool = False


class FastfoodOptions(Options):
    max_dense_size: PositiveInt = 4096  # the model's banks with L ≤ this are also checked against the formula


class FormulaOptions(Options):
    # which paper equation the added modules compute: a bottleneck adapter y + U(f(D(y))) with D, U of this
    # kind (f is the method's non_linearity), or BitFit's added bias y + b
    layer: Literal["linear", "low_rank", "phm", "lphm", "added_bias"]


class KSOptions(Options):
    alpha: float = Field(1e-3, gt=0.0, lt=1.0)  # reject the declared law when the KS p-value is below


class NearIdentityOptions(Options):
    # max |Δlogits| / max |base logits| on the tiny model: scale-free, so one tolerance holds for T5 v1.0
    # (decoder output scaled by d_model^-1/2 before the lm_head) and T5 v1.1 / mT5 (not scaled)
    max_relative_diff: PositiveFloat


class MergedExportOptions(Options):
    max_relative_error: float = Field(1e-5, gt=0.0)  # the merged weights are computed once, not per forward


class PlacementOptions(Options):
    sublayers: list[Literal["self_attention", "cross_attention", "feed_forward"]]
    encoder_blocks: list[int] | None = None  # None: every block
    decoder_blocks: list[int] | None = None
    targets: list[str] | None = None  # None: on the sub-layer itself; else modules of these names inside it
    outside_blocks: list[str] = []


class ProjectionOptions(Options):
    steps: PositiveInt = 2  # training steps before the checkpoint is saved


class PromptOptions(Options):
    steps: PositiveInt = 2
    new_tokens: PositiveInt = 5


class SkipOptions(Options):
    encoder: list[int] = Field(default_factory=list)  # blocks whose adapters are skipped
    decoder: list[int] = Field(default_factory=list)


class StepOptions(Options):
    steps: PositiveInt = 3
    learning_rate: PositiveFloat = 1e-2


@dataclass(frozen=True)
class Declared:
    summary: str  # what the check establishes, in one line (`harness ls`)
    options: type[BaseModel] = NoOptions


DECLARED: dict[str, Declared] = {
    "budget": Declared("Trainable parameters counted on the meta device equal the spec's count and the published %."),
    "counted_once": Declared(
        "Base, trainable and total counts equal sums over unique tensors (tied and shared ones once); "
        "Intrinsic-SAID's tensor list is those tensors once each.",
        CountOptions,
    ),
    "fastfood_linear": Declared(
        "Fastfood banks are linear, equal the dense formula, project_transpose is Pᵀ, gradcheck exact; "
        "the model's too.",
        FastfoodOptions,
    ),
    "fwht": Declared(
        "fwht, its head/of-head variants equal products with scipy's Hadamard matrix (L ≤ 4096); exact gradient."
    ),
    "identity_at_init": Declared("Bit-identical logits at init; one step moves them."),
    "init_distribution": Declared(
        "Declared init laws hold (KS test; constants and embedding-row copies exact) and cover every added parameter.",
        KSOptions,
    ),
    "kron_sum": Declared(
        "PHMLinear for hypothesis-drawn n, sizes, rank, batch, dtype, and every PHM layer built, equal Σ A_i ⊗ B_i."
    ),
    "layer_formula": Declared(
        "Every added module, with random weights, equals its paper equation written independently "
        "(y + U(f(D(y))) with f and D, U from their formulas; y + b); the activations are told apart.",
        FormulaOptions,
    ),
    "lambda_coupling": Declared(
        "Intrinsic-SAID: λ_i = 0 gives back exactly θ_i⁰ and only it, λ_i scales θ_i's offset; the unused last λ "
        "gets zero gradient."
    ),
    "merged_export": Declared(
        "After training steps, the method merged into the stock T5 (save_pretrained, from_pretrained) holds none "
        "of its modules and gives its logits.",
        MergedExportOptions,
    ),
    "near_identity_at_init": Declared(
        "max |logits(adapted) − logits(base)| / max |logits(base)| ≤ the spec's tolerance at init, and ≠ 0 after "
        "one step.",
        NearIdentityOptions,
    ),
    "projection_draws": Declared(
        "Intrinsic-SAID's Fastfood draws, read from the model: B ±1 balanced, Π a permutation (not the identity), "
        "G ~ N(0, 1), no two projections alike.",
        KSOptions,
    ),
    "prompt_extends_input": Declared(
        "Prompt tuning: the encoder input grows by exactly p shared vectors; sources, decoder input and padding "
        "untouched; logits = T5 on [P; E(x)] with mask [1_p; m]; one step moves the output."
    ),
    "placement": Declared(
        "The method's modules are exactly at the declared sub-layers and blocks (never elsewhere), all run, and act "
        "there: h + dropout(M(F(LN(h)))), T5's own elsewhere.",
        PlacementOptions,
    ),
    "reproducible_projection": Declared(
        "Projections depend on projection_seed only; a trained checkpoint reloads bit-exactly and refuses "
        "another seed.",
        ProjectionOptions,
    ),
    "prompt_only": Declared(
        "Training moves the prompt and nothing else; the decoder masks with [1_p; m]; generate = greedy forwards.",
        PromptOptions,
    ),
    "rank_at_most": Declared("rank(w_l w_r) ≤ r for hypothesis-drawn sizes and r, and for every low-rank layer built."),
    "shared_rule": Declared(
        "One A object for all PHM layers, counted once, fed gradient by every layer (one A per layer if unshared)."
    ),
    "skip_equals_absent": Declared(
        "Skipping the adapters of chosen blocks equals, bit for bit, a model built without them.", SkipOptions
    ),
    "state_roundtrip": Declared(
        "Saving the trainable tensors and loading them into a fresh model reproduces the outputs bit for bit."
    ),
    "trainable_set": Declared(
        "requires_grad is set exactly on the glob-matched parameters; every added parameter is prefixed and trains."
    ),
    "only_trainable_change": Declared(
        "After AdamW steps every trainable tensor moved and every frozen tensor is bit-identical.", StepOptions
    ),
}
