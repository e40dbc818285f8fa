"""Adapter, Pfeiffer-Adapter, AdapterDrop, Adapter-LowRank and BitFit beyond their specs' invariants."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.model.backbone import build_t5
from harness.model.build import build_method_model
from harness.spec.model_choice import load_model_file
from harness.spec.model_files import ModelFile, T5Architecture
from impl.inject import set_trainable
from impl.layers.bottleneck import BottleneckAdapter
from impl.layers.low_rank import LowRankLinear
from impl.methods.adapter_drop import skip_layers
from impl.registry import MethodArgumentError, apply_method
from tests.conftest import SPEC_DIR


def model_file(name: str) -> ModelFile:
    return load_model_file(SPEC_DIR / "models" / f"{name}.yaml")


def count(method: str, globs: list[str], model: str, **args) -> int:
    return build_method_model(method, args, globs, model_file(model)).trainable_params


LN = "*layer_norm.weight"

# Houlsby adapter: 2kd + d + k per adapter. LN counts: t5-small 32 × 512 = 16,384; t5-large 122 × 1024 = 124,928.
# Low-rank (r = 1): (k + d + d) + (d + k + k) = 3(k + d) per adapter.
# t5-small (k 512, d 16, 6 + 6 blocks): adapter 2·512·16 + 16 + 512 = 16,912; × 24 = 405,888 (+ LN = 422,272);
#   Pfeiffer × 12 = 202,944 (+ LN = 219,328); low-rank 3·528 = 1,584 × 24 = 38,016 (+ LN = 54,400).
# t5-large (k 1024, d 32, 24 + 24 blocks): adapter 65,536 + 32 + 1,024 = 66,592; × 96 = 6,392,832 (+ LN = 6,517,760);
#   Pfeiffer × 48 = 3,196,416 (+ LN = 3,321,344); AdapterDrop blocks 5–11: 7 blocks × 2 stacks × 2 sub-layers
#   = 28 adapters × 66,592 = 1,864,576 (+ LN = 1,989,504); low-rank 3·1,056 = 3,168 × 96 = 304,128 (+ LN = 429,056).
# BitFit: per encoder block 3·inner (q, k, v) + k (o) + d_ff (wi) + k (wo) + 2k (layer norms); per decoder block
#   twice the attention + d_ff + k + 3k; plus 32,100 for the lm_head.
#   t5-small (inner 512, d_ff 2048): enc 1,536 + 512 + 2,048 + 512 + 1,024 = 5,632 × 6 = 33,792;
#   dec 4,096 + 2,048 + 512 + 1,536 = 8,192 × 6 = 49,152; total 33,792 + 49,152 + 32,100 = 115,044.
#   t5-large (inner 1024, d_ff 4096): enc 4,096 + 4,096 + 1,024 + 2,048 = 11,264 × 24 = 270,336;
#   dec 8,192 + 4,096 + 1,024 + 3,072 = 16,384 × 24 = 393,216; total 270,336 + 393,216 + 32,100 = 695,652.
CASES = [
    ("adapter", "t5_small", 422_272),
    ("adapter", "t5_large", 6_517_760),
    ("pfeiffer_adapter", "t5_small", 219_328),
    ("pfeiffer_adapter", "t5_large", 3_321_344),
    ("adapter_drop", "t5_large", 1_989_504),
    ("low_rank_adapter", "t5_small", 54_400),
    ("low_rank_adapter", "t5_large", 429_056),
]


@pytest.mark.parametrize("method, model, expected", CASES, ids=[f"{m}-{s}" for m, s, _ in CASES])
def test_adapter_budgets_on_other_sizes(method, model, expected):
    assert count(method, [f"*.{method}.*", LN], model) == expected


@pytest.mark.parametrize("model, expected", [("t5_small", 115_044), ("t5_large", 695_652)])
def test_bitfit_budget_on_other_sizes(model, expected):
    assert count("bitfit", ["*.bitfit.*"], model) == expected


def test_adapter_drop_needs_its_blocks():
    # t5-small has 6 blocks per stack: blocks 5–11 cannot all exist.
    with pytest.raises(MethodArgumentError) as error:
        count("adapter_drop", ["*.adapter_drop.*"], "t5_small")
    assert error.value.argument == "encoder_blocks"


@given(in_features=st.integers(1, 12), out_features=st.integers(1, 12), rank=st.integers(1, 5))
def test_low_rank_weight_is_the_sum_of_r_outer_products(in_features, out_features, rank):
    """W = Σ_j w_l[:, j] ⊗ w_r[j, :]: the correct rank-r product (the released code's broadcast is r = 1 only)."""
    layer = LowRankLinear(in_features, out_features, rank=rank).double()
    outer = sum(torch.outer(layer.weight_left[:, j], layer.weight_right[j]) for j in range(rank))
    torch.testing.assert_close(layer.weight(), outer)
    x = torch.randn(4, in_features, dtype=torch.float64)
    torch.testing.assert_close(layer(x), x @ outer + layer.bias)


def gated_untied() -> ModelFile:
    """A tiny T5 v1.1: gated-gelu feed-forward (wi_0, wi_1, wo) and an untied lm_head."""
    tiny = model_file("t5_tiny")
    architecture = T5Architecture(
        **{**tiny.architecture.model_dump(), "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False}
    )
    return tiny.model_copy(update={"name": "t5_tiny_v1_1", "architecture": architecture})


def test_bitfit_on_gated_untied_t5():
    file = gated_untied()
    arch = file.architecture
    built = build_method_model("bitfit", {}, ["*.bitfit.*"], file, device="meta")
    inner, k, ff = arch.num_heads * arch.d_kv, arch.d_model, arch.d_ff
    # encoder block: q, k, v (inner each) + o (k) + wi_0, wi_1 (d_ff each) + wo (k) + 2 layer norms (k each)
    encoder = 3 * inner + k + 2 * ff + k + 2 * k
    # decoder block: self- and cross-attention + the same feed-forward + 3 layer norms
    decoder = 2 * (3 * inner + k) + 2 * ff + k + 3 * k
    expected = arch.num_layers * encoder + arch.num_decoder_layers * decoder + arch.vocab_size
    assert built.trainable_params == expected
    assert any(name.endswith("wi_1.bitfit.bias") for name in built.trainable_names)

    base = build_t5(file, device="cpu", seed=0).eval()
    adapted = build_t5(file, device="cpu", seed=0).eval()
    apply_method(adapted, "bitfit", {})
    set_trainable(adapted, ["*.bitfit.*"])
    ids = torch.randint(2, arch.vocab_size, (2, 7))
    with torch.no_grad():
        assert torch.equal(adapted(input_ids=ids, labels=ids).logits, base(input_ids=ids, labels=ids).logits)


def test_skip_layers_disables_exactly_the_chosen_blocks(check_context):
    model = check_context("adapter_drop").method_model().model
    assert skip_layers(model, encoder=[5, 6], decoder=[11]) == 3 * 2  # 3 blocks × (self-attention, FF)
    enabled = {name: module.enabled for name, module in model.named_modules() if isinstance(module, BottleneckAdapter)}
    disabled = sorted(name for name, on in enabled.items() if not on)
    assert disabled == [
        "decoder.block.11.layer.0.adapter_drop",
        "decoder.block.11.layer.2.adapter_drop",
        "encoder.block.5.layer.0.adapter_drop",
        "encoder.block.5.layer.1.adapter_drop",
        "encoder.block.6.layer.0.adapter_drop",
        "encoder.block.6.layer.1.adapter_drop",
    ]
    assert skip_layers(model) == 0
    assert all(m.enabled for m in model.modules() if isinstance(m, BottleneckAdapter))


def test_skipping_a_block_without_adapters_is_an_error(check_context):
    model = check_context("adapter_drop").method_model().model
    with pytest.raises(ValueError, match="encoder block 2 has no adapter_drop adapter"):
        skip_layers(model, encoder=[2])
