"""The adapter-family invariants (placement, rank_at_most, identity_at_init, skip_equals_absent) fail when broken."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import harness.invariants.identity_at_init
import harness.invariants.skip_equals_absent
import impl.methods.adapter_drop
from impl.inject import attach_after
from impl.layers.bias import AddBias
from impl.layers.bottleneck import BottleneckAdapter
from impl.layers.low_rank import LowRankLinear
from tests.invariant_helpers import assert_fails, assert_holds, with_method_args, wrap_builder

# --- placement ---------------------------------------------------------------------------------------------------


def adapter_also_on_cross_attention(model: nn.Module) -> None:
    cross = model.decoder.block[0].layer[1]
    adapter = BottleneckAdapter(nn.Linear(model.config.d_model, 12), nn.Linear(12, model.config.d_model))
    attach_after(cross, cross.EncDecAttention, "adapter", adapter)


def one_adapter_missing(model: nn.Module) -> None:
    del model.encoder.block[1].layer[1].adapter  # registered module gone (its hook now calls a detached module)


def adapter_registered_but_not_applied(model: nn.Module) -> None:
    model.encoder.block[0].layer[0].SelfAttention._forward_hooks.clear()


@pytest.mark.parametrize(
    "after, pattern",
    [
        (adapter_also_on_cross_attention, r"1 modules where the spec puts none .*decoder\.block\.0\.layer\.1\.adapter"),
        (one_adapter_missing, r"1 declared places without one .*encoder\.block\.1\.layer\.1\.adapter"),
        (adapter_registered_but_not_applied, r"never run in a forward pass.*encoder\.block\.0\.layer\.0\.adapter"),
    ],
    ids=["cross-attention", "missing", "not-applied"],
)
def test_placement_fails_on_a_misplaced_adapter(check_context, holds, monkeypatch, after, pattern):
    assert_holds(holds, "adapter", "placement")
    wrap_builder(monkeypatch, "adapter", after)
    assert_fails("placement", check_context("adapter"), pattern)


def test_placement_fails_when_adapter_drop_covers_the_lower_blocks(check_context, holds):
    assert_holds(holds, "adapter_drop", "placement")
    broken = with_method_args(check_context("adapter_drop"), encoder_blocks=list(range(4, 12)))  # + block 4
    assert_fails("placement", broken, r"2 modules where the spec puts none .*encoder\.block\.4\.")


def test_placement_fails_when_bitfit_adds_a_final_layer_norm_bias(check_context, holds, monkeypatch):
    assert_holds(holds, "bitfit", "placement")

    def final_norm_bias(model: nn.Module) -> None:
        norm = model.encoder.final_layer_norm
        attach_after(norm, norm, "bitfit", AddBias(norm.weight.shape[0]))

    wrap_builder(monkeypatch, "bitfit", final_norm_bias)
    assert_fails("placement", check_context("bitfit"), r"1 modules where the spec puts none .*final_layer_norm")


# --- rank_at_most -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_rank_at_most_fails_on_a_full_rank_weight(check_context, holds, monkeypatch):
    assert_holds(holds, "low_rank_adapter", "rank_at_most")

    def full_rank(self) -> torch.Tensor:  # w_l w_r plus a diagonal: rank min(in, out)
        eye = torch.eye(self.in_features, self.out_features, dtype=self.weight_left.dtype)
        return self.weight_left @ self.weight_right + eye

    monkeypatch.setattr(LowRankLinear, "weight", full_rank)
    assert_fails("rank_at_most", check_context("low_rank_adapter"), r"rank\(W\) = \d+ > r = 1")


@pytest.mark.slow
def test_rank_at_most_fails_when_forward_is_not_the_product(check_context, holds, monkeypatch):
    assert_holds(holds, "low_rank_adapter", "rank_at_most")
    monkeypatch.setattr(LowRankLinear, "forward", lambda self, x: (x @ self.weight_left) @ self.weight_right)
    assert_fails("rank_at_most", check_context("low_rank_adapter"), r"output differs from x w_l w_r \+ b")


# --- identity_at_init ---------------------------------------------------------------------------------------------


def test_identity_at_init_fails_on_a_non_zero_bias(check_context, holds, monkeypatch):
    assert_holds(holds, "bitfit", "identity_at_init")
    original = AddBias.__init__

    def init(self, size: int) -> None:
        original(self, size)
        with torch.no_grad():
            self.bias.fill_(1e-6)

    monkeypatch.setattr(AddBias, "__init__", init)
    assert_fails("identity_at_init", check_context("bitfit"), r"at init the output differs")


def test_identity_at_init_fails_when_training_changes_nothing(check_context, holds, monkeypatch):
    assert_holds(holds, "bitfit", "identity_at_init")
    monkeypatch.setattr(harness.invariants.identity_at_init, "train_steps", lambda *args, **kwargs: None)
    assert_fails("identity_at_init", check_context("bitfit"), r"left the output bit-identical")


# --- skip_equals_absent -------------------------------------------------------------------------------------------


def test_skip_equals_absent_fails_when_skipping_ignores_the_decoder(check_context, holds, monkeypatch):
    assert_holds(holds, "adapter_drop", "skip_equals_absent")
    real = impl.methods.adapter_drop.skip_layers
    monkeypatch.setattr(
        harness.invariants.skip_equals_absent, "skip_layers", lambda model, encoder=(), decoder=(): real(model, encoder)
    )
    assert_fails("skip_equals_absent", check_context("adapter_drop"), r"skipping differs from the model without")


def test_skip_equals_absent_fails_when_a_skipped_adapter_still_runs(check_context, holds, monkeypatch):
    assert_holds(holds, "adapter_drop", "skip_equals_absent")
    monkeypatch.setattr(BottleneckAdapter, "forward", lambda self, y: y + self.up(self.activation(self.down(y))))
    assert_fails("skip_equals_absent", check_context("adapter_drop"), r"skipping differs|vacuous")
