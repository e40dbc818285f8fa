"""Intrinsic-SAID beyond its spec's invariants: the d′ split on t5-base, θ materialised once per update, z = 0."""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn

from harness.invariants.context import logits, train_steps
from harness.model.backbone import build_t5
from harness.model.build import build_method_model
from harness.spec.model_choice import load_model_file
from impl.registry import apply_method
from tests.conftest import SPEC_DIR

SAID = "intrinsic_said"
D_PRIME = 20_000  # docs/paper.md: d′ = 20,000 trainable in all
TRAINABLE = ["intrinsic_said.z", "intrinsic_said.lambdas"]


def said_model(check_context, seed: int = 0) -> nn.Module:
    model = check_context(SAID).method_model().model
    z = model.intrinsic_said.z
    with torch.no_grad():  # z away from 0, so θ ≠ θ⁰ and every projection matters
        z.copy_(1e-2 * torch.randn(z.shape, generator=torch.Generator().manual_seed(seed)))
    return model.eval()


def test_budget_split_on_t5_base():
    """m counted from t5-base itself; docs/paper.md: m = 257, z = d′ − m − 1 = 19,742, λ = m + 1 = 258."""
    model_file = load_model_file(SPEC_DIR / "models" / "t5_base.yaml")
    model = build_t5(model_file, device="meta")
    sizes = Counter(p.numel() for p in model.parameters())  # the base tensors, the tied embedding once
    m = sum(sizes.values())
    # shared embedding / lm_head 1;
    # encoder block: q, k, v, o + layer norm + wi, wo + layer norm = 8, × 12 blocks, + relative bias + final norm;
    # decoder block: self q, k, v, o + norm + cross q, k, v, o + norm + wi, wo + norm = 13, × 12, + bias + final norm
    assert m == 1 + (12 * 8 + 2) + (12 * 13 + 2) == 257
    apply_method(model, SAID, {"intrinsic_dimension": D_PRIME, "projection_seed": 0})
    said = model.intrinsic_said
    assert said.tensors == m
    assert said.z.numel() == D_PRIME - m - 1 == 19_742
    assert said.lambdas.numel() == m + 1 == 258  # the last λ is unused, as in the released code
    rows = Counter(size for bank in said.banks for size in [bank.out_features] * bank.rows)
    assert rows == sizes  # one projection per base tensor, of the tensor's size
    assert all(bank.in_features == said.z.numel() for bank in said.banks)
    assert not any(bank.generated for bank in said.banks)  # on meta nothing is drawn


def test_budget_counts_20000_of_222882048_on_t5_base():
    model_file = load_model_file(SPEC_DIR / "models" / "t5_base.yaml")
    args = {"intrinsic_dimension": D_PRIME, "projection_seed": 0}
    built = build_method_model(SAID, args, TRAINABLE, model_file, device="meta")
    assert built.trainable_params == 19_742 + 258 == D_PRIME
    assert built.base_params == 222_882_048  # docs/paper.md: t5-base with the 32,100-entry vocabulary


def test_generate_materialises_theta_once_per_update(check_context):
    """Under generate every decoding step reuses θ: one materialisation per update of z or λ, not per step."""
    model = said_model(check_context)
    said, batch, new_tokens = model.intrinsic_said, check_context(SAID).batch(), 6
    decoder_calls = []
    model.decoder.register_forward_pre_hook(lambda module, args: decoder_calls.append(1))

    def generate() -> torch.Tensor:
        return model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            max_new_tokens=new_tokens,
            do_sample=False,
            min_new_tokens=new_tokens,
        )

    count = said.materialisations
    first = generate()
    assert len(decoder_calls) == new_tokens  # one decoder call per step (the encoder once)
    assert said.materialisations == count + 1
    assert torch.equal(generate(), first)
    assert said.materialisations == count + 1  # z, λ unchanged: the cached θ is reused
    train_steps(model, batch, steps=1, learning_rate=1e-2)  # z and λ move (θ materialised under autograd)
    count = said.materialisations
    generate()
    assert said.materialisations == count + 1


def test_zero_z_gives_the_base_logits_bit_for_bit(check_context):
    """θ_i = θ_i⁰ + λ_i · P_i(0) = θ_i⁰ for any λ: the logits are the base model's, bit for bit."""
    ctx = check_context(SAID)
    batch = ctx.batch()
    base = logits(ctx.base_model(), batch)
    model = ctx.method_model().model
    said = model.intrinsic_said
    assert torch.count_nonzero(said.z) == 0
    with torch.no_grad():
        said.lambdas.uniform_(-3.0, 3.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(logits(model, batch), base)
    with torch.no_grad():
        said.z[0] = 1e-3
    assert not torch.equal(logits(model, batch), base)


def test_the_base_parameters_are_back_after_a_forward_pass(check_context):
    """θ replaces θ⁰ only during the outermost forward call; afterwards the Parameters are in place again."""
    model = said_model(check_context)
    before = {name: p for name, p in model.named_parameters()}
    logits(model, check_context(SAID).batch())
    after = {name: p for name, p in model.named_parameters()}
    assert after.keys() == before.keys()
    assert all(after[name] is before[name] for name in before)
    assert all(isinstance(p, nn.Parameter) for p in after.values())


def test_in_evaluation_a_change_of_lambda_alone_changes_the_output(check_context):
    """θ is cached per update of z, λ and θ⁰ without gradients: an in-place change of λ only must not be
    served a stale θ (λ_i scales θ_i's offset, so doubling λ moves the output; z ≠ 0)."""
    model = said_model(check_context)
    batch = check_context(SAID).batch()
    before = logits(model, batch)
    with torch.no_grad():
        model.intrinsic_said.lambdas.mul_(2.0)
    after = logits(model, batch)
    fresh = said_model(check_context)  # the same z, built anew, λ doubled before its first forward
    with torch.no_grad():
        fresh.intrinsic_said.lambdas.mul_(2.0)
    assert not torch.equal(after, before)
    assert torch.equal(after, logits(fresh, batch))
