"""The Intrinsic-SAID and prompt-tuning invariants (fwht, fastfood_linear, reproducible_projection, counted_once,
projection_draws, lambda_coupling, prompt_only, prompt_extends_input, init_distribution's embedding_rows)
fail when their property is broken.

Each test first sees the invariant hold on the unbroken spec, then monkeypatches the implementation (undone
after the test) where the name is looked up, and sees the invariant fail with a message saying what broke.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import harness.invariants.fwht
import harness.model.build
import impl.layers.fastfood
import impl.layers.hadamard
import impl.layers.intrinsic_said
from harness.invariants import CheckContext
from impl.layers.fastfood import FastfoodBank, _BankUpdate, draw_fastfood, next_power_of_two
from impl.layers.hadamard import _FWHT, fwht_raw
from impl.layers.intrinsic_said import IntrinsicSAID
from impl.layers.prompt import EncoderPrompt, _ExtendCrossAttentionMask
from tests.invariant_helpers import assert_fails, assert_holds, wrap_builder

SAID = "intrinsic_said"

# --- fwht ----------------------------------------------------------------------------------------------------------


def test_fwht_fails_on_the_released_code_backward(check_context, holds, monkeypatch):
    """The released code's backward: the exact g H times 1/√L (√L times too small a gradient)."""
    assert_holds(holds, SAID, "fwht")

    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return fwht_raw(grad) / math.sqrt(grad.shape[-1])

    monkeypatch.setattr(_FWHT, "backward", staticmethod(backward))
    assert_fails("fwht", check_context(SAID), r"^fwht's backward is not the exact gradient g H for L=\d+ .*i\.e\. 1/√L")


def test_fwht_fails_when_a_pass_is_dropped(check_context, holds, monkeypatch):
    """fwht_raw transforms one group of index bits too few (sizes above one dense block, L > 16)."""
    assert_holds(holds, SAID, "fwht")
    original = impl.layers.hadamard._bit_groups

    def bit_groups(bits: int, max_bits: int, odd: bool | None) -> list[int]:
        groups = original(bits, max_bits, odd)
        return groups[:-1] if len(groups) > 1 else groups

    monkeypatch.setattr(impl.layers.hadamard, "_bit_groups", bit_groups)
    assert_fails("fwht", check_context(SAID), r"^fwht for HadamardCase\(bits=\d+.*differs from the reference by")


def head_of_the_tail(u: torch.Tensor, rows: int) -> torch.Tensor:
    return fwht_raw(u)[:, -rows:]  # the last D outputs instead of the first


def padded_in_front(g: torch.Tensor, size: int) -> torch.Tensor:
    return fwht_raw(F.pad(g, (size - g.shape[1], 0)))  # zeros before g, not after


@pytest.mark.parametrize(
    "name, replacement",
    [("hadamard_head", head_of_the_tail), ("hadamard_of_head", padded_in_front)],
    ids=["head-keeps-the-tail", "of-head-pads-in-front"],
)
def test_fwht_fails_on_a_wrong_truncated_transform(check_context, holds, monkeypatch, name, replacement):
    assert_holds(holds, SAID, "fwht")
    monkeypatch.setattr(harness.invariants.fwht, name, replacement)
    assert_fails("fwht", check_context(SAID), rf"^{name} for HadamardCase\(.*differs from the reference")


# --- fastfood_linear -----------------------------------------------------------------------------------------------


def test_fastfood_linear_fails_when_the_transpose_uses_another_permutation(check_context, holds, monkeypatch):
    """project_transpose scatters through a permutation other than the one project gathers through."""
    assert_holds(holds, SAID, "fastfood_linear")
    original = FastfoodBank.project_transpose

    def project_transpose(self, g, workspace=None):
        index = self.index
        self.index = index.flip(-1)  # π'(j) = π(L − 1 − j)
        try:
            return original(self, g, workspace)
        finally:
            self.index = index

    monkeypatch.setattr(FastfoodBank, "project_transpose", project_transpose)
    assert_fails("fastfood_linear", check_context(SAID), r"project_transpose is not Pᵀ: ⟨P z, g⟩ − ⟨z, Pᵀ g⟩ is")


def test_fastfood_linear_fails_when_the_projection_adds_a_constant(check_context, holds, monkeypatch):
    assert_holds(holds, SAID, "fastfood_linear")
    original = FastfoodBank.project

    def project(self, z, *args, **kwargs):
        return original(self, z, *args, **kwargs) + 1e-3

    monkeypatch.setattr(FastfoodBank, "project", project)
    assert_fails("fastfood_linear", check_context(SAID), r"P\(a z₁ \+ b z₂\) ≠ a P\(z₁\) \+ b P\(z₂\), off by")


def scatter_convention(monkeypatch) -> None:
    """Π as the scatter (Π v)_{π(j)} = v_j, i.e. gathering through π⁻¹: linear, transposed consistently, wrong."""
    original = FastfoodBank.generate

    def generate(self, device=None):
        original(self, device)
        for row, seed in enumerate(self.seeds):
            perm = draw_fastfood(self.in_features, self.out_features, seed)[1]
            self.index[row] = (torch.argsort(perm) % self.period).to(self.index)

    monkeypatch.setattr(FastfoodBank, "generate", generate)


def test_fastfood_linear_fails_on_the_inverse_permutation(check_context, holds, monkeypatch):
    assert_holds(holds, SAID, "fastfood_linear")
    scatter_convention(monkeypatch)
    assert_fails("fastfood_linear", check_context(SAID), r"P\(z\) differs from \[H G Π H B pad\(z\)\]_\{1\.\.D\}")


def test_fastfood_linear_fails_on_a_wrong_gradient_for_the_scales(check_context, holds, monkeypatch):
    assert_holds(holds, SAID, "fastfood_linear")
    original = _BankUpdate.backward

    def backward(ctx, *grads):
        grad = list(original(ctx, *grads))
        grad[4] = None if grad[4] is None else 2 * grad[4]  # ∂λ doubled
        return tuple(grad)

    monkeypatch.setattr(_BankUpdate, "backward", staticmethod(backward))
    assert_fails("fastfood_linear", check_context(SAID), r"the autograd Function's gradient is not exact \(")


def test_fastfood_linear_fails_on_a_model_bank_with_another_permutation(check_context, holds, monkeypatch):
    """The layer is right, but the model's smallest bank gathers through a permutation its seeds did not draw."""
    assert_holds(holds, SAID, "fastfood_linear")

    def roll_smallest_bank(model: nn.Module) -> None:
        bank = min(model.intrinsic_said.banks, key=lambda bank: bank.size)
        bank.index = bank.index.roll(1, dims=1)

    wrap_builder(monkeypatch, SAID, roll_smallest_bank)
    pattern = r"^intrinsic_said\.banks\.\d+ \(.*L=32\), seed \d+: P\(z\) differs"
    assert_fails("fastfood_linear", check_context(SAID), pattern)


# --- reproducible_projection ---------------------------------------------------------------------------------------


def test_reproducible_projection_fails_when_drawn_from_the_global_rng(check_context, holds, monkeypatch):
    """As the released code: B, π, G from the global RNG, the seed ignored."""
    assert_holds(holds, SAID, "reproducible_projection")

    def from_global_rng(in_features: int, out_features: int, seed: int):
        size = next_power_of_two(out_features)
        sign = torch.randint(0, 2, (min(in_features, size),), dtype=torch.int8) * 2 - 1
        return sign.to(torch.int8), torch.randperm(size), torch.randn(size)

    monkeypatch.setattr(impl.layers.fastfood, "draw_fastfood", from_global_rng)
    assert_fails(
        "reproducible_projection",
        check_context(SAID),
        r"^two builds with projection_seed 0 in different global RNG states have different projections: \d+ buffers",
    )


def test_reproducible_projection_fails_when_the_seed_is_ignored(check_context, holds, monkeypatch):
    assert_holds(holds, SAID, "reproducible_projection")
    original = impl.layers.intrinsic_said.derive_seed
    monkeypatch.setattr(impl.layers.intrinsic_said, "derive_seed", lambda seed, key: original(0, key))
    assert_fails("reproducible_projection", check_context(SAID), r"^projection_seed 1 gives the same projections as 0")


def test_reproducible_projection_fails_when_another_seed_loads(check_context, holds, monkeypatch):
    assert_holds(holds, SAID, "reproducible_projection")
    monkeypatch.setattr(IntrinsicSAID, "checkpoint_mismatch", lambda self, metadata: None)
    assert_fails("reproducible_projection", check_context(SAID), r"loads into a model with projection_seed 1: it must")


def test_reproducible_projection_fails_on_a_stale_materialisation(check_context, holds, monkeypatch):
    """θ cached per tensor address only, not per version: loading (an in-place copy) keeps the old θ."""
    assert_holds(holds, SAID, "reproducible_projection")

    def weights(self) -> list[torch.Tensor]:
        tracked = [self.z, self.lambdas, *self.base_parameters()]
        if torch.is_grad_enabled() and any(t.requires_grad for t in tracked):
            self._cache = None
            return self.materialise()
        key = tuple(t.data_ptr() for t in tracked)
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, self.materialise())
        return self._cache[1]

    monkeypatch.setattr(IntrinsicSAID, "_weights", weights)
    assert_fails(
        "reproducible_projection", check_context(SAID), r"^after loading into a fresh model .* the logits differ by"
    )


# --- projection_draws -------------------------------------------------------------------------------------------


def biased(sign: torch.Tensor, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(sign.shape, generator=generator) < 0.75, 1, -1).to(sign.dtype)


def repeats(perm: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.randint(0, perm.numel(), perm.shape, generator=torch.Generator().manual_seed(seed))


def uniform_with_unit_variance(gaussian: torch.Tensor, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return ((torch.rand(gaussian.shape, generator=generator) * 2 - 1) * math.sqrt(3)).to(gaussian.dtype)


# each: (draw_fastfood, in_features, out_features, seed) -> the (sign, perm, gaussian) a broken draw returns
DRAW_BREAKS = {
    "signs +1 three times in four": (
        lambda draw, n, d, seed: (biased(draw(n, d, seed)[0], seed), *draw(n, d, seed)[1:]),
        r"^B's signs are not balanced: \d+ of \d+ are \+1",
    ),
    "signs 0/1 (no * 2 - 1)": (
        lambda draw, n, d, seed: ((draw(n, d, seed)[0] + 1) // 2, *draw(n, d, seed)[1:]),
        r"a sign of B is not ±1 \(\[0, 1\]\)",
    ),
    "Π the identity": (
        lambda draw, n, d, seed: (lambda b, p, g: (b, torch.arange(p.numel()), g))(*draw(n, d, seed)),
        r"Π is the identity",
    ),
    "Π with repeats": (
        lambda draw, n, d, seed: (lambda b, p, g: (b, repeats(p, seed), g))(*draw(n, d, seed)),
        r"Π is not a permutation of 0\.\.L-1",
    ),
    "G uniform, unit variance": (
        lambda draw, n, d, seed: (lambda b, p, g: (b, p, uniform_with_unit_variance(g, seed)))(*draw(n, d, seed)),
        r"^G does not follow N\(0, 1\): KS p = ",
    ),
    "one seed for every projection": (lambda draw, n, d, seed: draw(n, d, 0), r"two projections drew the same B"),
}


@pytest.mark.parametrize("broken", list(DRAW_BREAKS))
def test_projection_draws_fails_when_a_draw_breaks_its_law(check_context, holds, monkeypatch, broken):
    assert_holds(holds, SAID, "projection_draws")
    change, message = DRAW_BREAKS[broken]
    original = impl.layers.fastfood.draw_fastfood
    monkeypatch.setattr(impl.layers.fastfood, "draw_fastfood", lambda n, d, seed: change(original, n, d, seed))
    assert_fails("projection_draws", check_context(SAID), message)


@pytest.mark.parametrize("broken", ["signs +1 three times in four", "Π the identity", "G uniform, unit variance"])
def test_fastfood_linear_fails_when_a_draw_breaks_its_law(check_context, holds, monkeypatch, broken):
    """The dense reference makes its own draws: a wrong law in the implementation's is not shared by it."""
    assert_holds(holds, SAID, "fastfood_linear")
    change, _ = DRAW_BREAKS[broken]
    original = impl.layers.fastfood.draw_fastfood
    monkeypatch.setattr(impl.layers.fastfood, "draw_fastfood", lambda n, d, seed: change(original, n, d, seed))
    assert_fails("fastfood_linear", check_context(SAID), r"P\(z\) differs from \[H G Π H B pad\(z\)\]")


# --- lambda_coupling --------------------------------------------------------------------------------------------


def with_scales(monkeypatch, change) -> None:
    """FastfoodBank.forward gets `change(scales)` for its rows' λ."""
    original = FastfoodBank.forward

    def forward(self, z, scales, *args, **kwargs):
        return original(self, z, change(scales), *args, **kwargs)

    monkeypatch.setattr(FastfoodBank, "forward", forward)


def test_lambda_coupling_fails_when_a_bank_shifts_its_lambdas(check_context, holds, monkeypatch):
    """θ_i scaled by λ_{i+1} (an off-by-one in the bank's members): λ_i = 0 changes another tensor."""
    assert_holds(holds, SAID, "lambda_coupling")
    with_scales(monkeypatch, lambda scales: scales.roll(1))
    assert_fails("lambda_coupling", check_context(SAID), r"λ_\d+ = 0 does not give back θ_\d+⁰")


def test_lambda_coupling_fails_when_lambda_is_not_applied(check_context, holds, monkeypatch):
    assert_holds(holds, SAID, "lambda_coupling")
    with_scales(monkeypatch, lambda scales: torch.ones_like(scales))
    assert_fails("lambda_coupling", check_context(SAID), r"λ_\d+ = 0 does not give back θ_\d+⁰")


def test_lambda_coupling_fails_when_lambda_enters_squared(check_context, holds, monkeypatch):
    """θ_i⁰ + λ_i² P_i(z): right at λ = 0 and 1, wrong everywhere else."""
    assert_holds(holds, SAID, "lambda_coupling")
    with_scales(monkeypatch, lambda scales: scales * scales)
    assert_fails("lambda_coupling", check_context(SAID), r"λ_\d+ = 2 λ_\d+ does not double θ_\d+'s offset")


def test_lambda_coupling_fails_when_the_last_lambda_is_used(check_context, holds, monkeypatch):
    """λ_m enters the output (with no effect at its init 1, so every value is unchanged): it gets a gradient."""
    assert_holds(holds, SAID, "lambda_coupling")
    original = IntrinsicSAID.materialise

    def materialise(self):
        weights = original(self)
        return [weights[0] + (self.lambdas[-1] - 1.0) * 1e-3, *weights[1:]]

    monkeypatch.setattr(IntrinsicSAID, "materialise", materialise)
    assert_fails("lambda_coupling", check_context(SAID), r"the unused λ_\d+ gets gradient .*, not exactly 0")


# --- prompt_extends_input ----------------------------------------------------------------------------------------


def prepend_with(change):
    """EncoderPrompt.prepend with `change(prompt (B, p, d), embeddings (B, T, d), ones (B, p), mask (B, T))`
    deciding what the encoder gets."""

    def prepend(self, embeddings: torch.Tensor, mask: torch.Tensor | None):
        batch, length = embeddings.shape[:2]
        prompt = self.prompt.to(embeddings.dtype).unsqueeze(0).expand(batch, -1, -1)
        mask = torch.ones(batch, length, dtype=torch.long) if mask is None else mask
        return change(prompt, embeddings, torch.ones(batch, self.length, dtype=mask.dtype), mask)

    return prepend


PROMPT_BREAKS = {
    "the sources rescaled": (
        lambda p, e, o, m: (torch.cat((p, e * 1.001), 1), torch.cat((o, m), 1)),
        r"^behind the prompt, the source embeddings are not the base model's bit for bit",
    ),
    "a prompt per example": (
        lambda p, e, o, m: (torch.cat((p + torch.arange(p.shape[0]).view(-1, 1, 1), e), 1), torch.cat((o, m), 1)),
        r"^the prepended vectors differ between the examples of a batch",
    ),
    "the ones at the end of the mask": (
        lambda p, e, o, m: (torch.cat((p, e), 1), torch.cat((m, o), 1)),
        r"^changing masked \(padded\) source tokens changes the output",
    ),
}


@pytest.mark.parametrize("spec", ["prompt_tuning_random", "prompt_tuning_tokens"])
@pytest.mark.parametrize("broken", list(PROMPT_BREAKS))
def test_prompt_extends_input_fails_when_the_prompt_changes_more_than_the_input(
    check_context, holds, monkeypatch, spec, broken
):
    assert_holds(holds, spec, "prompt_extends_input")
    change, message = PROMPT_BREAKS[broken]
    monkeypatch.setattr(EncoderPrompt, "prepend", prepend_with(change))
    assert_fails("prompt_extends_input", check_context(spec), message)


def test_prompt_extends_input_fails_when_training_changes_nothing(check_context, holds, monkeypatch):
    import harness.invariants.prompt_extends_input as module

    assert_holds(holds, "prompt_tuning_random", "prompt_extends_input")
    monkeypatch.setattr(module, "train_steps", lambda *args, **kwargs: None)
    assert_fails("prompt_extends_input", check_context("prompt_tuning_random"), r"one training step left the output")


# --- prompt_only ---------------------------------------------------------------------------------------------------


def extend(prompt: EncoderPrompt, kwargs: dict, at_the_end: bool) -> tuple[tuple, dict]:
    """The decoder hook's extension of encoder_attention_mask by p ones, in front (right) or at the end."""
    states, mask = kwargs.get("encoder_hidden_states"), kwargs.get("encoder_attention_mask")
    if states is not None and mask is not None and mask.shape[-1] + prompt.length == states.shape[1]:
        ones = torch.ones(mask.shape[0], prompt.length, dtype=mask.dtype)
        kwargs = {**kwargs, "encoder_attention_mask": torch.cat((mask, ones) if at_the_end else (ones, mask), dim=1)}
    return (), kwargs


@pytest.mark.parametrize("spec", ["prompt_tuning_random", "prompt_tuning_tokens"])
def test_prompt_only_fails_when_the_decoder_mask_is_not_extended(check_context, holds, monkeypatch, spec):
    """No extension at all: T5 cannot even run its cross-attention over the p + T states."""
    assert_holds(holds, spec, "prompt_only")
    monkeypatch.setattr(_ExtendCrossAttentionMask, "__call__", lambda self, stack, args, kwargs: None)
    assert_fails("prompt_only", check_context(spec), r"raised RuntimeError: The size of tensor a \(12\) must match")


def test_prompt_only_fails_when_the_ones_go_at_the_end(check_context, holds, monkeypatch):
    """[m; 1_p] instead of [1_p; m]: shapes fit, but the padding is attended and two prompt states are masked."""
    assert_holds(holds, "prompt_tuning_random", "prompt_only")
    monkeypatch.setattr(
        _ExtendCrossAttentionMask, "__call__", lambda self, stack, args, kwargs: extend(self.prompt, kwargs, True)
    )
    assert_fails(
        "prompt_only",
        check_context("prompt_tuning_random"),
        r"^the decoder does not attend over the encoder states with the mask \[1_p; m\]",
    )


def test_prompt_only_fails_when_cached_decoding_gets_another_mask(check_context, holds, monkeypatch):
    """Right in plain forward calls, wrong ([m; 1_p]) when generate passes a cache: only generate differs."""
    assert_holds(holds, "prompt_tuning_random", "prompt_only")

    def call(self, stack, args, kwargs):
        return extend(self.prompt, kwargs, at_the_end=kwargs.get("cache") is not None)

    monkeypatch.setattr(_ExtendCrossAttentionMask, "__call__", call)
    assert_fails("prompt_only", check_context("prompt_tuning_random"), r"^generate's step logits differ from the")


def prompt_viewing_the_embedding(model: nn.Module) -> None:
    """Prompt tuning-T's prompt as a view of embedding rows 0..p−1 instead of a copy."""
    prompt = model.prompt_tuning_tokens
    prompt.prompt = nn.Parameter(model.get_input_embeddings().weight.detach()[: prompt.length])


def test_prompt_only_fails_when_the_prompt_is_a_view_of_the_embedding(check_context, holds, monkeypatch):
    assert_holds(holds, "prompt_tuning_tokens", "prompt_only")
    wrap_builder(monkeypatch, "prompt_tuning_tokens", prompt_viewing_the_embedding)
    assert_fails(
        "prompt_only",
        check_context("prompt_tuning_tokens"),
        r"^after 2 steps 4 tensors besides the prompt changed, e\.g\. \['decoder\.embed_tokens\.weight', "
        r"'encoder\.embed_tokens\.weight', 'lm_head\.weight'\]",
    )


def test_prompt_only_fails_when_the_prompt_gets_no_gradient(check_context, holds, monkeypatch):
    """The prompt enters the encoder multiplied by 0: its gradient is 0 and AdamW leaves it where it is."""
    assert_holds(holds, "prompt_tuning_random", "prompt_only")
    original = EncoderPrompt.prepend

    def prepend(self, embeddings, mask):
        prepended, extended = original(self, embeddings, mask)  # (B, p + T, d), (B, p + T)
        return torch.cat((prepended[:, : self.length] * 0.0, prepended[:, self.length :]), dim=1), extended

    monkeypatch.setattr(EncoderPrompt, "prepend", prepend)
    assert_fails(
        "prompt_only", check_context("prompt_tuning_random"), r"^after 2 steps the prompt prompt_tuning_random\.prompt"
    )


# --- init_distribution: embedding_rows -----------------------------------------------------------------------------


def test_init_distribution_fails_when_the_prompt_is_a_view_of_the_embedding(check_context, holds, monkeypatch):
    assert_holds(holds, "prompt_tuning_tokens", "init_distribution")
    wrap_builder(monkeypatch, "prompt_tuning_tokens", prompt_viewing_the_embedding)
    assert_fails(
        "init_distribution",
        check_context("prompt_tuning_tokens"),
        r"^prompt_tuning_tokens\.prompt: prompt_tuning_tokens\.prompt shares storage with the input embedding",
    )


def test_init_distribution_fails_on_other_embedding_rows(check_context, holds):
    """The builder copies rows 1..100 (init_vocab_start 1) where the spec's init declares rows 0..99."""
    assert_holds(holds, "prompt_tuning_tokens", "init_distribution")
    ctx = check_context("prompt_tuning_tokens")
    args = {**ctx.method_args, "init_vocab_start": 1}
    resolved = {**ctx.loaded.resolved, "method": {**ctx.loaded.resolved["method"], "args": args}}
    broken = CheckContext(dataclasses.replace(ctx.loaded, resolved=resolved), ctx.check_model)
    assert_fails(
        "init_distribution", broken, r"^prompt_tuning_tokens\.prompt: .* is not a copy of rows 0\.\.99 of the input"
    )


# --- counted_once -------------------------------------------------------------------------------------------------


def counting_every_name(model: nn.Module) -> tuple[int, int]:
    """count_trainable over named_parameters(remove_duplicate=False): a tied tensor once per name."""
    counted = list(model.named_parameters(remove_duplicate=False))
    return sum(p.numel() for _, p in counted if p.requires_grad), sum(p.numel() for _, p in counted)


def test_counted_once_fails_when_the_tied_embedding_is_counted_per_name(check_context, holds, monkeypatch):
    assert_holds(holds, "compacter", "counted_once")
    monkeypatch.setattr(harness.model.build, "count_trainable", counting_every_name)
    assert_fails(
        "counted_once", check_context("compacter"), r"a shared tensor is counted more than once .*total counted"
    )


def test_counted_once_fails_when_said_lists_a_tensor_twice(check_context, holds, monkeypatch):
    assert_holds(holds, SAID, "counted_once")
    listed = IntrinsicSAID.base_parameters
    monkeypatch.setattr(IntrinsicSAID, "base_parameters", lambda self: [*listed(self), listed(self)[0]])
    assert_fails("counted_once", check_context(SAID), r"the tensor list has 48 entries but 47 distinct tensors")


def test_counted_once_fails_when_an_alias_of_the_tied_embedding_keeps_theta_0(check_context, holds, monkeypatch):
    assert_holds(holds, SAID, "counted_once")
    enter = IntrinsicSAID.enter

    def lm_head_left_at_theta_0(self) -> None:
        enter(self)
        if self._depth == 1:
            for owners, original in zip(self._owners, self._originals, strict=True):
                if len(owners) > 1:  # the tied embedding: its last holder keeps the Parameter θ⁰
                    module, attribute = owners[-1]
                    module._parameters[attribute] = original

    monkeypatch.setattr(IntrinsicSAID, "enter", lm_head_left_at_theta_0)
    assert_fails("counted_once", check_context(SAID), r"do not all hold the same re-parameterised θ_i")


def test_prompt_extends_input_fails_when_the_encoder_masks_the_prompt_out(check_context, holds, monkeypatch):
    """[P; E(x)] with the mask [0_p; m]: every shape and the decoder's input are as before, the output is not."""
    assert_holds(holds, "prompt_tuning_random", "prompt_extends_input")
    prepend = EncoderPrompt.prepend

    def masked_out(self, embeddings, mask):
        inputs, extended = prepend(self, embeddings, mask)
        extended = extended.clone()
        extended[:, : self.length] = 0
        return inputs, extended

    monkeypatch.setattr(EncoderPrompt, "prepend", masked_out)
    assert_fails(
        "prompt_extends_input",
        check_context("prompt_tuning_random"),
        r"the logits differ from T5 on \[P; E\(x\)\] with the mask \[1_p; m\]",
    )


def test_prompt_extends_input_fails_when_no_mask_means_nothing_is_attended(check_context, holds, monkeypatch):
    assert_holds(holds, "prompt_tuning_tokens", "prompt_extends_input")
    prepend = EncoderPrompt.prepend

    def zeros_without_a_mask(self, embeddings, mask):
        if mask is None:
            mask = torch.zeros(embeddings.shape[:2], dtype=torch.long)
        return prepend(self, embeddings, mask)

    monkeypatch.setattr(EncoderPrompt, "prepend", zeros_without_a_mask)
    assert_fails(
        "prompt_extends_input",
        check_context("prompt_tuning_tokens"),
        r"called without an attention_mask, the output differs from an all-ones mask",
    )


# --- merged_export ---------------------------------------------------------------------------------------------------


def test_merged_export_fails_when_the_merge_forgets_the_offset(check_context, holds, monkeypatch):
    """θ⁰ exported instead of θ⁰ + λP(z): a stock T5 that is the untrained base."""
    import harness.model.export

    assert_holds(holds, "intrinsic_said", "merged_export")
    monkeypatch.setattr(harness.model.export, "merged_state", lambda model, method: {
        name: p.detach().clone() for name, p in zip(model.intrinsic_said.names,
                                                     model.intrinsic_said.base_parameters(), strict=True)})  # fmt: skip
    assert_fails("merged_export", check_context("intrinsic_said"), r"merged model's logits differ")


def test_merged_export_fails_when_training_moved_nothing(check_context, holds, monkeypatch):
    import harness.invariants.merged_export

    assert_holds(holds, "full_finetune", "merged_export")
    monkeypatch.setattr(harness.invariants.merged_export, "train_steps", lambda *args, **kwargs: None)
    assert_fails("merged_export", check_context("full_finetune"), r"^two training steps left the output unchanged")
