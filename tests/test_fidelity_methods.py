"""The method quirks of `fidelity`: Intrinsic-SAID's released gradient and Prompt tuning-T's released prompt.

`released_fastfood` transcribes rabeehk/compacter e123daa's `fastfood_torched` and `FastWalshHadamard`
(seq2seq/projections/intrinsic.py:82-139) with a dense Hadamard matrix (scipy's): its backward multiplies
each pass by 1/√L. The harness's `hadamard_backward="scaled"` must give that gradient exactly (float64), and
`"exact"` the same transcription without the factor.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from scipy.linalg import hadamard

from harness.invariants import run_invariant
from harness.invariants.context import CheckContext
from harness.model.backbone import build_t5
from harness.model.checked import read_buildable_spec
from impl.layers.fastfood import FastfoodBank, draw_fastfood
from impl.registry import apply_method
from tests.conftest import SPEC_DIR


class ReleasedFWHT(torch.autograd.Function):
    """intrinsic.py:123-139: forward x H (unnormalised), backward (g H) / √L when `scaled`."""

    @staticmethod
    def forward(ctx, x, scaled):
        size = x.shape[0]
        ctx.factor = 1 / math.sqrt(size) if scaled else 1.0
        ctx.h = torch.tensor(hadamard(size), dtype=x.dtype)
        return ctx.h @ x

    @staticmethod
    def backward(ctx, grad):
        return ctx.factor * (ctx.h @ grad), None


def released_fastfood(x, out_features, sign, perm, gaussian, scaled):
    """intrinsic.py:82-112, with B, Π, G the harness's draws for the same seed."""
    size = perm.numel()  # LL
    bb = torch.ones(size, dtype=x.dtype)
    bb[: sign.numel()] = sign.to(x.dtype)  # entries beyond min(n, L) meet zeros of the padded x
    gg = gaussian.to(x.dtype)
    divisor = torch.sqrt(size * torch.sum(gg**2))
    dd_pad = torch.nn.functional.pad(x, (0, size - x.numel())) * bb  # pads, or truncates when L < n
    mul_2 = ReleasedFWHT.apply(dd_pad, scaled)
    mul_3 = mul_2[perm] * gg
    mul_5 = ReleasedFWHT.apply(mul_3, scaled)
    return mul_5[:out_features] / (divisor * math.sqrt(out_features / size))


@pytest.mark.parametrize("scaled", [True, False], ids=["released", "exact"])
@pytest.mark.parametrize(("n", "out_features"), [(40, 24), (40, 100), (300, 64)])
def test_the_banks_gradient_is_the_released_codes_in_float64(scaled, n, out_features):
    seeds = [11, 12, 13]
    bank = FastfoodBank(n, out_features, seeds, scaled_backward=scaled)
    generator = torch.Generator().manual_seed(0)
    z0 = torch.randn(n, dtype=torch.float64, generator=generator)
    lambdas0 = 1 + torch.rand(len(seeds), dtype=torch.float64, generator=generator)
    bases = [torch.randn(out_features, dtype=torch.float64, generator=generator) for _ in seeds]
    weights = [torch.randn(out_features, dtype=torch.float64, generator=generator) for _ in seeds]

    z, lambdas = z0.clone().requires_grad_(), lambdas0.clone().requires_grad_()
    theta = bank(z, lambdas, bases)
    sum(torch.dot(w, t.reshape(-1)) for w, t in zip(weights, theta, strict=True)).backward()

    z_ref, lambdas_ref = z0.clone().requires_grad_(), lambdas0.clone().requires_grad_()
    total, expected = 0, []
    for row, seed in enumerate(seeds):
        sign, perm, gaussian = draw_fastfood(n, out_features, seed)
        ray = released_fastfood(z_ref, out_features, sign, perm, gaussian, scaled)
        param = bases[row] + lambdas_ref[row] * ray  # intrinsic.py:245-251 (said: ray × λ_i)
        expected.append(param.detach())
        total = total + torch.dot(weights[row], param)
    total.backward()
    for row, t in enumerate(theta):
        torch.testing.assert_close(t.detach().reshape(-1), expected[row], rtol=1e-12, atol=1e-12)  # same forward
    torch.testing.assert_close(z.grad, z_ref.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lambdas.grad, lambdas_ref.grad, rtol=1e-12, atol=1e-12)  # λ's gradient exact in both


def said_gradients(tiny_model_file, backward: str, by_size: int | None = None):
    """(∂z, ∂λ) of Σ_i ⟨c_i, θ_i⟩ on the tiny T5 in float64, z ≠ 0; only tensors of L = `by_size` if given."""
    model = build_t5(tiny_model_file, device="cpu", seed=0).double()
    apply_method(model, "intrinsic_said", {"intrinsic_dimension": 3000, "projection_seed": 0,
                                           "hadamard_backward": backward})  # fmt: skip
    said = model.intrinsic_said
    with torch.no_grad():
        said.z.copy_(torch.randn(said.z.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
        said.lambdas.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(2))
    generator = torch.Generator().manual_seed(3)
    total = 0
    for theta in said.materialise():
        c = torch.randn(theta.shape, dtype=torch.float64, generator=generator)
        size = 1 << (theta.numel() - 1).bit_length()  # L_i: the next power of two ≥ D_i
        if by_size is None or size == by_size:
            total = total + (c * theta).sum()
    total.backward()
    return said.z.grad.clone(), said.lambdas.grad.clone(), said


@pytest.mark.slow
def test_released_z_gradient_is_the_exact_one_over_L_i_per_tensor(tiny_model_file):
    scaled_z, scaled_lambdas, said = said_gradients(tiny_model_file, "scaled")
    sizes = sorted({1 << (p.numel() - 1).bit_length() for p in said.base_parameters()})
    assert len(sizes) > 2  # tensors of several L_i: a reweighting, not one factor
    expected_z = sum(said_gradients(tiny_model_file, "exact", size)[0] / size for size in sizes)
    torch.testing.assert_close(scaled_z, expected_z, rtol=1e-10, atol=1e-14)
    exact_z, exact_lambdas, _ = said_gradients(tiny_model_file, "exact")
    torch.testing.assert_close(scaled_lambdas, exact_lambdas, rtol=1e-12, atol=1e-14)
    cosine = torch.nn.functional.cosine_similarity(scaled_z, exact_z, dim=0)
    assert cosine < 0.99  # the direction changes too: small tensors weigh more


def test_released_prompt_is_iid_standard_normal_and_its_init_rule_holds():
    loaded = read_buildable_spec(SPEC_DIR / "prompt_tuning_tokens.yaml", overrides=["fidelity.prompt_init=released"])
    assert loaded.resolved["method"]["args"]["init_from"] == "random_normal"
    assert loaded.resolved["init"] == [
        {"params": "prompt_tuning_tokens.prompt", "distribution": "normal", "mean": 0.0, "std": 1.0}
    ]
    context = CheckContext(loaded, loaded.check_model_file)
    model = context.method_model(method_seed=5).model
    prompt = model.prompt_tuning_tokens.prompt.detach().double().reshape(-1)
    assert stats.kstest(prompt.numpy(), "norm").pvalue > 1e-3  # N(0, 1), initializer_factor 1.0
    embedding = model.get_input_embeddings().weight[: model.prompt_tuning_tokens.prompt.shape[0]]
    assert not torch.equal(model.prompt_tuning_tokens.prompt, embedding)
    assert run_invariant("init_distribution", context).ok
    paper = read_buildable_spec(SPEC_DIR / "prompt_tuning_tokens.yaml")
    paper_model = CheckContext(paper, paper.check_model_file).method_model(method_seed=5).model
    torch.testing.assert_close(paper_model.prompt_tuning_tokens.prompt,
                               paper_model.get_input_embeddings().weight[:100], rtol=0, atol=0)  # fmt: skip
