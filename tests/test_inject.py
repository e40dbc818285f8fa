"""Placement in the stock transformers T5: h ← h + dropout(A(F(LN(h)))) on self-attention and FF only."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from harness.invariants.layer_formula import adapter_reference
from impl.inject import GlobMatchesNothingError, set_trainable, sublayer_sites
from impl.layers.bottleneck import BottleneckAdapter
from impl.registry import MethodArgumentError, UnknownMethodError, apply_method, get


def randomise_adapters(model: nn.Module, name: str, seed: int = 0) -> None:
    """Unit-scale adapter weights: an adapter that is nearly the identity could hide a misplacement."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param_name, p in model.named_parameters():
            if name in param_name.split("."):
                p.copy_(0.3 * torch.randn(p.shape, generator=generator))


def paper_adapter(adapter: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """Compacter's A(y) = y + U(gelu_new(D(y))) with LPHM D, U, written from the paper (not the module's forward)."""
    return adapter_reference(adapter, y, "lphm", "gelu_new")


@pytest.fixture
def tiny(check_context):
    """The tiny T5 with Compacter attached (random adapter weights), in eval mode, and its plain twin."""
    ctx = check_context("compacter")
    model = ctx.method_model().model
    randomise_adapters(model, "compacter")
    return model.eval(), ctx.base_model().eval()


def test_feed_forward_adapter_sits_between_the_sublayer_and_the_residual(tiny):
    model, _ = tiny
    layer = model.encoder.block[1].layer[-1]
    h = torch.randn(2, 5, model.config.d_model)
    with torch.no_grad():
        out = layer(h)
        layer.compacter.enabled = False  # F(LN(h)) as T5 computes it, hook inert
        plain = layer.DenseReluDense(layer.layer_norm(h))
        layer.compacter.enabled = True
        assert torch.allclose(out, h + paper_adapter(layer.compacter, plain), atol=1e-6)
        assert not torch.allclose(out, h + plain, atol=1e-3)


def test_self_attention_adapter_sits_between_the_sublayer_and_the_residual(tiny):
    model, _ = tiny
    layer = model.decoder.block[0].layer[0]
    h = torch.randn(2, 5, model.config.d_model)
    with torch.no_grad():
        out = layer(h)[0]
        layer.compacter.enabled = False  # the plain sub-layer, computed by T5 itself
        plain_attention = layer.SelfAttention(layer.layer_norm(h))[0]
        layer.compacter.enabled = True
        assert torch.allclose(out, h + paper_adapter(layer.compacter, plain_attention), atol=1e-6)


def test_the_adapter_is_inside_the_dropout_branch(tiny):
    """Zeroing T5's dropout output leaves h alone: the adapter (inner residual included) is before dropout."""
    model, _ = tiny
    layer = model.encoder.block[0].layer[-1]
    layer.dropout = ZeroOut()
    h = torch.randn(2, 5, model.config.d_model)
    with torch.no_grad():
        assert torch.equal(layer(h), h)


class ZeroOut(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def test_cross_attention_is_never_adapted(tiny):
    model, _ = tiny
    for block in model.decoder.block:
        cross = block.layer[1]
        assert type(cross).__name__ == "T5LayerCrossAttention"
        assert not any(isinstance(m, BottleneckAdapter) for m in cross.modules())
        assert not cross.EncDecAttention._forward_hooks
    adapters = [name for name, m in model.named_modules() if isinstance(m, BottleneckAdapter)]
    # 2 encoder + 2 decoder blocks × (self-attention, feed-forward)
    assert len(adapters) == 8
    assert all(name.endswith((".layer.0.compacter", ".layer.1.compacter", ".layer.2.compacter")) for name in adapters)
    assert not any(name.startswith("decoder") and ".layer.1." in name for name in adapters)


def test_disabling_every_adapter_gives_back_the_base_model(tiny, check_context):
    model, base = tiny
    batch = check_context("compacter").batch()
    for m in model.modules():
        if isinstance(m, BottleneckAdapter):
            m.enabled = False
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, base(**batch).logits)


def test_block_selection_per_stack(check_context):
    model = check_context("compacter").base_model()
    apply_method(model, "compacter", {"encoder_blocks": [1], "decoder_blocks": [], "sublayers": ["feed_forward"]})
    adapters = [name for name, m in model.named_modules() if isinstance(m, BottleneckAdapter)]
    assert adapters == ["encoder.block.1.layer.1.compacter"]


def test_a_block_index_out_of_range_names_its_argument(check_context):
    model = check_context("compacter").base_model()
    with pytest.raises(MethodArgumentError) as error:
        apply_method(model, "compacter", {"decoder_blocks": [7]})
    assert error.value.argument == "decoder_blocks"


def test_deepcopy_rebinds_the_hooks_to_the_copied_adapters(tiny, check_context):
    model, base = tiny
    batch = check_context("compacter").batch()
    clone = copy.deepcopy(model)
    with torch.no_grad():
        before = model(**batch).logits
        for m in clone.modules():
            if isinstance(m, BottleneckAdapter):
                m.enabled = False
        assert torch.equal(clone(**batch).logits, base(**batch).logits)
        assert torch.equal(model(**batch).logits, before)


def test_generate_runs_through_the_adapters(tiny, check_context):
    model, base = tiny
    batch = check_context("compacter").batch()
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    adapted = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    plain = base.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert adapted.shape[0] == 2 and adapted.shape[1] <= 5
    # With cache and without, incremental decoding through the hooks gives the same tokens.
    assert torch.equal(adapted, model.generate(**inputs, max_new_tokens=4, do_sample=False, use_cache=False))
    assert plain.shape[0] == 2


def test_sites_cover_both_stacks_in_model_order(check_context):
    model = check_context("compacter").base_model()
    sites = sublayer_sites(model)
    assert [s.path for s in sites[:2]] == ["encoder.block.0.layer.0", "encoder.block.0.layer.1"]
    assert [s.path for s in sites[-2:]] == ["decoder.block.1.layer.0", "decoder.block.1.layer.2"]
    with pytest.raises(ValueError, match="sub-layer"):
        sublayer_sites(model, ["cross_attention"])


def test_attaching_the_same_name_twice_is_refused(check_context):
    model = check_context("compacter").base_model()
    apply_method(model, "compacter_pp", {})
    with pytest.raises(MethodArgumentError, match="already has"):
        apply_method(model, "compacter_pp", {})


def test_set_trainable_selects_exactly_the_globs(check_context):
    model = check_context("compacter").base_model()
    names = set_trainable(model, ["*layer_norm.weight"])
    assert len(names) == 2 * 2 + 2 * 3 + 2
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(names)
    with pytest.raises(GlobMatchesNothingError) as error:
        set_trainable(model, ["*layer_norm.weight", "*.lora_*"])
    assert error.value.index == 1
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(names)  # nothing changed


def test_unknown_method_suggests_the_closest_name():
    with pytest.raises(UnknownMethodError, match="did you mean 'compacter'"):
        get("compacterr")
