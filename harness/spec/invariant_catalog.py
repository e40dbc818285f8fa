"""The closed vocabulary of invariants as plain data: each name's one-line summary and options.

Two kinds: the module invariants (`DECLARED`), which a spec lists under `invariants:` and `harness check SPEC`
runs, and the recipe invariants (`RECIPE`), which hold for every spec and `harness check SPEC --recipe` runs.
`ls` and spec validation read this module, which imports neither torch nor the checks; the checks
(`harness.invariants.<name>`) register against it, and an unknown or undeclared name is an error there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Bounds refuse the absurd: the checks train a tiny model for `steps` steps (a typo's 10**9 would run for
# days) and T5 has at most a few dozen blocks.
Steps = Annotated[int, Field(gt=0, le=1_000)]
Block = Annotated[int, Field(ge=0, le=1_000)]


class Options(BaseModel):
    """An invariant's options in the spec: unknown keys are errors; no infinity or NaN; no coercion (`alpha:
    "0.01"` or `steps: true` are refused, as everywhere else in a spec)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class NoOptions(Options):
    pass


class CountOptions(Options):
    # Intrinsic-SAID: also check that its tensor list is the unique base tensors once each, λ and z sized to match
    reparameterised_tensors: bool = False


class FastfoodOptions(Options):
    # the model's banks with L ≤ this are also checked against the formula: a dense L × L matrix each
    max_dense_size: int = Field(4096, gt=0, le=16_384)


class FormulaOptions(Options):
    # which paper equation the added modules compute: a bottleneck adapter y + U(f(D(y))) with D, U of this
    # kind (f is the method's non_linearity), BitFit's added bias y + b, or, on the dense layer holding the
    # module, LoRA's y W₀ᵀ + (α/r) y Aᵀ Bᵀ and (IA)³'s l ⊙ (y Wᵀ) (keys, values) or (l ⊙ y) W₂ᵀ (feed-forward)
    layer: Literal["linear", "low_rank", "phm", "lphm", "added_bias", "lora", "rescale"]


class KSOptions(Options):
    alpha: float = Field(1e-3, gt=0.0, lt=1.0)  # reject the declared law when the KS p-value is below


class NearIdentityOptions(Options):
    # max |Δlogits| / max |base logits| on the tiny model: scale-free, so one tolerance holds for T5 v1.0
    # (decoder output scaled by d_model^-1/2 before the lm_head) and T5 v1.1 / mT5 (not scaled)
    max_relative_diff: float = Field(gt=0.0, le=1.0)


class MergedExportOptions(Options):
    max_relative_error: float = Field(1e-5, gt=0.0, le=1.0)  # the merged weights are computed once, not per forward


class PlacementOptions(Options):
    sublayers: list[Literal["self_attention", "cross_attention", "feed_forward"]]
    encoder_blocks: list[Block] | None = None  # None: every block
    decoder_blocks: list[Block] | None = None
    # None: on the sub-layer itself; else modules of these names inside it, M on their output: T(x) ← M(T(x))
    targets: list[str] | None = None
    inputs_of: list[str] = []  # modules inside the sub-layers whose input M transforms: T(x) ← T(M(x))
    beside: list[str] = []  # modules inside the sub-layers that M runs beside: T(x) ← T(x) + M(x)
    outside_blocks: list[str] = []

    @model_validator(mode="after")
    def _each_module_once(self) -> PlacementOptions:
        lists = {"targets": self.targets or [], "inputs_of": self.inputs_of, "beside": self.beside}
        seen: dict[str, str] = {}
        for key, names in lists.items():
            for name in names:
                if name in seen:
                    raise ValueError(f"{name!r} is in both {seen[name]} and {key}: a module is placed one way")
                seen[name] = key
        return self

    def inside(self) -> dict[str, str]:
        """{module name: "output" | "input" | "beside"} for the modules inside the sub-layers ({}: on the sub-layer)."""
        return {
            **{name: "output" for name in self.targets or []},
            **{name: "input" for name in self.inputs_of},
            **{name: "beside" for name in self.beside},
        }


class ProjectionOptions(Options):
    steps: Steps = 2  # training steps before the checkpoint is saved


class PromptOptions(Options):
    steps: Steps = 2
    new_tokens: int = Field(5, gt=0, le=1_000)


class SkipOptions(Options):
    encoder: list[Block] = Field(default_factory=list)  # blocks whose adapters are skipped
    decoder: list[Block] = Field(default_factory=list)


class StepOptions(Options):
    steps: Steps = 3
    learning_rate: float = Field(1e-2, gt=0.0, le=10.0)


ADAPTER_FAMILY = ("adapter", "pfeiffer_adapter", "adapter_drop", "low_rank_adapter", "phm_adapter", "compacter",
                  "compacter_pp")  # fmt: skip
PHM_METHODS = ("phm_adapter", "compacter", "compacter_pp")
PROMPT_METHODS = ("prompt_tuning_random", "prompt_tuning_tokens")
SAID = ("intrinsic_said",)
REFERENCE = ("lora", "ia3")  # beyond the paper: the methods a comparison with Compacter starts from


@dataclass(frozen=True)
class Declared:
    summary: str  # what the check establishes, in one line (`harness ls`)
    options: type[BaseModel] = NoOptions
    # The methods whose built model has what the check reads (PHM layers, a prompt, Intrinsic-SAID's
    # projection, modules under the method's name); () for every method. Stated for another method, the
    # check could only fail or be vacuous, so validation refuses it, saying what it `needs`.
    methods: tuple[str, ...] = ()
    needs: str = ""
    # options that only these methods can honour: {option: (methods, what it needs)}, refused when set
    # (to anything but the default) for another method
    option_methods: Mapping[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)

    def applies_to(self, method: str) -> bool:
        return not self.methods or method in self.methods


DECLARED: dict[str, Declared] = {
    "budget": Declared("Trainable parameters counted on the meta device equal the spec's count and the published %."),
    "counted_once": Declared(
        "Base, trainable and total counts equal sums over unique tensors (tied and shared ones once); "
        "Intrinsic-SAID's tensor list is those tensors once each.",
        CountOptions,
        option_methods={"reparameterised_tensors": (SAID, "Intrinsic-SAID's list of reparameterised tensors")},
    ),
    "fastfood_linear": Declared(
        "Fastfood banks are linear, equal the dense formula, project_transpose is Pᵀ, gradcheck exact; "
        "the model's too.",
        FastfoodOptions,
        methods=SAID,
        needs="Intrinsic-SAID's Fastfood banks",
    ),
    "fwht": Declared(
        "fwht, its head/of-head variants equal products with scipy's Hadamard matrix (L ≤ 4096); exact gradient.",
        methods=SAID,
        needs="Intrinsic-SAID's Hadamard transform (a check of the projection it trains through)",
    ),
    "identity_at_init": Declared(
        "Bit-identical logits at init; one step moves them.",
        methods=(*ADAPTER_FAMILY, "bitfit", *REFERENCE, "full_finetune", *SAID),
        needs="a neutral start (a prompt has none: state prompt_extends_input)",
    ),
    "init_distribution": Declared(
        "Declared init laws hold (KS test; constants and embedding-row copies exact) and cover every added parameter.",
        KSOptions,
    ),
    "kron_sum": Declared(
        "PHMLinear for hypothesis-drawn n, sizes, rank, batch, dtype, and every PHM layer built, equal Σ A_i ⊗ B_i.",
        methods=PHM_METHODS,
        needs="PHM layers (the arguments n and shared_phm_rule)",
    ),
    "layer_formula": Declared(
        "Every added module, with random weights, equals its paper equation written independently "
        "(y + U(f(D(y))) with f and D, U from their formulas; y + b; y W₀ᵀ + (α/r) y Aᵀ Bᵀ; l ⊙ y Wᵀ, (l ⊙ y) Wᵀ); "
        "the activations are told apart.",
        FormulaOptions,
        methods=(*ADAPTER_FAMILY, "bitfit", *REFERENCE),
        needs="modules registered under the method's name (adapters, BitFit's biases, LoRA, (IA)³)",
    ),
    "lambda_coupling": Declared(
        "Intrinsic-SAID: λ_i = 0 gives back exactly θ_i⁰ and only it, λ_i scales θ_i's offset; the unused last λ "
        "gets zero gradient.",
        methods=SAID,
        needs="Intrinsic-SAID's λ",
    ),
    "merged_export": Declared(
        "After training steps, the method merged into the stock T5 (save_pretrained, from_pretrained) holds none "
        "of its modules and gives its logits.",
        MergedExportOptions,
        methods=("full_finetune", *SAID, *REFERENCE),  # the methods whose merge rule is a function (impl.registry)
        needs="a method that folds into the stock T5's weights",
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
        methods=SAID,
        needs="Intrinsic-SAID's Fastfood draws",
    ),
    "prompt_extends_input": Declared(
        "Prompt tuning: the encoder input grows by exactly p shared vectors; sources, decoder input and padding "
        "untouched; logits = T5 on [P; E(x)] with mask [1_p; m]; one step moves the output.",
        methods=PROMPT_METHODS,
        needs="a prompt (the argument prompt_length)",
    ),
    "placement": Declared(
        "The method's modules are exactly at the declared sub-layers and blocks (never elsewhere), all run, and act "
        "there: h + dropout(M(F(LN(h)))), or M(T(x)), T(M(x)), T(x) + M(x) for a module T inside; T5's own elsewhere.",
        PlacementOptions,
        methods=(*ADAPTER_FAMILY, "bitfit", *REFERENCE),
        needs="modules placed in T5's sub-layers (adapters, BitFit's biases, LoRA, (IA)³)",
    ),
    "reproducible_projection": Declared(
        "Projections depend on projection_seed only; a trained checkpoint reloads bit-exactly and refuses "
        "another seed.",
        ProjectionOptions,
        methods=SAID,
        needs="Intrinsic-SAID's projection_seed",
    ),
    "prompt_only": Declared(
        "Training moves the prompt and nothing else; the decoder masks with [1_p; m]; generate = greedy forwards.",
        PromptOptions,
        methods=PROMPT_METHODS,
        needs="a prompt (the argument prompt_length)",
    ),
    "rank_at_most": Declared(
        "rank(w_l w_r) ≤ r for hypothesis-drawn sizes and r, and for every low-rank layer built.",
        methods=("low_rank_adapter",),
        needs="low-rank layers w_l w_r (the argument rank)",
    ),
    "shared_rule": Declared(
        "One A object for all PHM layers, counted once, fed gradient by every layer (one A per layer if unshared).",
        methods=PHM_METHODS,
        needs="PHM layers and their rule A",
    ),
    "skip_equals_absent": Declared(
        "Skipping the adapters of chosen blocks equals, bit for bit, a model built without them.",
        SkipOptions,
        methods=("adapter_drop",),
        needs="AdapterDrop's skippable adapters",
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


# The path from a spec to a score, checked on every spec (`harness check SPEC --recipe`, in this order); no options.
RECIPE: dict[str, Declared] = {
    "accumulated_step": Declared(
        "k accumulated micro-batches give the gradient, norm and update of one batch of the same examples."
    ),
    "optimizer_update": Declared(
        "A step applies AdamW (the recipe's lr, ε, weight decay) to T5's gradient clipped to the recipe's norm."
    ),
    "world_size": Declared(
        "2 processes (torchrun, gloo) train to the weights and predictions of 1 process at the same global batch."
    ),
    "evaluation_coverage": Declared(
        "Evaluation predicts each example exactly once, in order, at world sizes 1, 2, 3 and 5."
    ),
    "lr_schedule": Declared(
        "Each step's learning rate is the paper's warm-up/decay over epochs × ⌈N / global batch⌉ steps."
    ),
    "dropout_rate": Declared(
        "Every dropout of the trained model runs at the recipe's rate; rate 0 makes training mode deterministic."
    ),
    "generation_and_selection": Declared(
        "Greedy generation to the recipe's length; a checkpoint every epoch; the best validation average is kept."
    ),
}
