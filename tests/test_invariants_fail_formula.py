"""`layer_formula` and `placement`'s behaviour check fail on layers that compute, or act, other than the paper says."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers.activations import ACT2FN

import harness.invariants.layer_formula
import harness.invariants.placement
import impl.layers.phm
from harness.invariants import run_invariant
from impl.layers.bias import AddBias
from impl.layers.bottleneck import BottleneckAdapter
from impl.layers.low_rank import LowRankLinear
from impl.layers.phm import PHMLinear
from tests.invariant_helpers import assert_fails, assert_holds, with_method_args, wrap_builder

# --- layer_formula ------------------------------------------------------------------------------------------------


def activation_swapped(monkeypatch, name: str) -> None:
    """The adapter keeps the spec's activation name but computes `name`."""
    init = BottleneckAdapter.__init__

    def swapped(self, down, up, activation="gelu_new"):
        init(self, down, up, activation)
        self.activation = ACT2FN[name]

    monkeypatch.setattr(BottleneckAdapter, "__init__", swapped)


@pytest.mark.parametrize(
    "spec_name, activation", [("adapter", "gelu"), ("compacter", "relu"), ("low_rank_adapter", "gelu_python")]
)
def test_layer_formula_fails_on_another_activation(check_context, holds, monkeypatch, spec_name, activation):
    assert_holds(holds, spec_name, "layer_formula")
    activation_swapped(monkeypatch, activation)
    assert_fails("layer_formula", check_context(spec_name), r"differs from y \+ U\(gelu_new\(D\(y\)\)\)")


def test_layer_formula_fails_without_the_inner_residual(check_context, holds, monkeypatch):
    assert_holds(holds, "pfeiffer_adapter", "layer_formula")
    monkeypatch.setattr(BottleneckAdapter, "forward", lambda self, y: self.up(self.activation(self.down(y))))
    assert_fails("layer_formula", check_context("pfeiffer_adapter"), r"differs from y \+ U")


def test_layer_formula_fails_when_up_and_down_trade_places_in_the_activation(check_context, holds, monkeypatch):
    assert_holds(holds, "adapter_drop", "layer_formula")
    monkeypatch.setattr(BottleneckAdapter, "forward", lambda self, y: y + self.activation(self.up(self.down(y))))
    assert_fails("layer_formula", check_context("adapter_drop"), r"differs from y \+ U")


def test_layer_formula_fails_on_a_low_rank_layer_without_its_bias(check_context, holds, monkeypatch):
    assert_holds(holds, "low_rank_adapter", "layer_formula")
    monkeypatch.setattr(LowRankLinear, "forward", lambda self, x: (x @ self.weight_left) @ self.weight_right)
    assert_fails("layer_formula", check_context("low_rank_adapter"), r"low_rank D, U by")


def test_layer_formula_fails_on_kronecker_factors_in_the_wrong_order(check_context, holds, monkeypatch):
    assert_holds(holds, "phm_adapter", "layer_formula")

    def swapped(self) -> torch.Tensor:  # Σ B_i ⊗ A_i: same shape when n = in/n, the wrong matrix
        a, b = self.rule, self.blocks()
        n, p, q = b.shape
        h = torch.einsum("iac,iuv->aucv", a, b)  # (n, p, n, q)
        return h.permute(1, 0, 3, 2).reshape(n * p, n * q)  # rows (u, a), columns (v, c)

    monkeypatch.setattr(PHMLinear, "kronecker_weight", swapped)
    assert_fails("layer_formula", check_context("phm_adapter"), r"phm D, U by")


def test_layer_formula_fails_on_a_wrongly_factored_lphm_block(check_context, holds, monkeypatch):
    assert_holds(holds, "compacter_pp", "layer_formula")

    def with_the_rule_transposed(algorithm):  # Σ A_iᵀ ⊗ s_i t_i
        return lambda x, a, s, t, bias: algorithm(x, a.transpose(1, 2), s, t, bias)

    monkeypatch.setattr(impl.layers.phm, "factored_in", with_the_rule_transposed(impl.layers.phm.factored_in))
    monkeypatch.setattr(impl.layers.phm, "factored_out", with_the_rule_transposed(impl.layers.phm.factored_out))
    assert_fails("layer_formula", check_context("compacter_pp"), r"lphm D, U by")


def test_layer_formula_fails_on_a_bias_subtracted(check_context, holds, monkeypatch):
    assert_holds(holds, "bitfit", "layer_formula")
    monkeypatch.setattr(AddBias, "forward", lambda self, x: x - self.bias)
    assert_fails("layer_formula", check_context("bitfit"), r"differs from y \+ b")


def test_layer_formula_refuses_an_activation_it_has_no_formula_for(check_context, holds):
    assert_holds(holds, "adapter", "layer_formula")
    broken = with_method_args(check_context("adapter"), non_linearity="silu")
    assert_fails("layer_formula", broken, r"non_linearity 'silu' has no reference formula")


def test_layer_formula_fails_when_its_inputs_cannot_tell_the_activations_apart(check_context, holds, monkeypatch):
    assert_holds(holds, "adapter", "layer_formula")
    monkeypatch.setattr(harness.invariants.layer_formula, "DISCRIMINATION", 1e3)
    assert_fails("layer_formula", check_context("adapter"), r"gelu and gelu_new agree .* could not tell them apart")


# --- placement: behaviour -----------------------------------------------------------------------------------------


def rehook(model: nn.Module, name: str, move) -> None:
    """Take every adapter's output hook off its sub-layer F and let `move(layer, adapter)` apply it elsewhere."""
    for module in list(model.modules()):
        adapter = getattr(module, name, None)
        if isinstance(adapter, BottleneckAdapter) and hasattr(module, "layer_norm"):
            inner = getattr(module, "SelfAttention", None) or module.DenseReluDense
            inner._forward_hooks.clear()
            move(module, adapter)


def after_the_residual(layer: nn.Module, adapter: nn.Module) -> None:
    def hook(_module, _args, output):
        return (adapter(output[0]), *output[1:]) if isinstance(output, tuple) else adapter(output)

    layer.register_forward_hook(hook)


def on_the_normalised_input(layer: nn.Module, adapter: nn.Module) -> None:
    inner = getattr(layer, "SelfAttention", None) or layer.DenseReluDense
    inner.register_forward_pre_hook(lambda _module, args: (adapter(args[0]), *args[1:]))


def after_the_dropout(layer: nn.Module, adapter: nn.Module) -> None:
    layer.dropout.register_forward_hook(lambda _module, _args, output: adapter(output))


@pytest.mark.parametrize(
    "spec_name, move, pattern",
    [
        ("adapter", after_the_residual, r"the output is not h \+ dropout\(adapter\(F\(LN\(h\)\)\)\)"),
        ("compacter", on_the_normalised_input, r"the output is not h \+ dropout\(compacter\(F\(LN\(h\)\)\)\)"),
        ("pfeiffer_adapter", after_the_dropout, r"the output is not h \+ dropout\(pfeiffer_adapter"),
    ],
    ids=["after-residual", "before-sublayer", "after-dropout"],
)
def test_placement_fails_on_an_adapter_registered_right_but_acting_elsewhere(
    check_context, holds, monkeypatch, spec_name, move, pattern
):
    assert_holds(holds, spec_name, "placement")
    wrap_builder(monkeypatch, spec_name, lambda model: rehook(model, spec_name, move))
    assert_fails("placement", check_context(spec_name), pattern)


def test_placement_fails_on_an_adapter_also_acting_where_none_is_declared(check_context, holds, monkeypatch):
    assert_holds(holds, "compacter_pp", "placement")

    def also_on_self_attention(model: nn.Module) -> None:  # the FF adapter's hook added to the self-attention
        layer = model.decoder.block[1].layer
        hook = next(iter(layer[2].DenseReluDense._forward_hooks.values()))
        layer[0].SelfAttention.register_forward_hook(hook)

    wrap_builder(monkeypatch, "compacter_pp", also_on_self_attention)
    assert_fails(
        "placement",
        check_context("compacter_pp"),
        r"decoder\.block\.1\.layer\.0 \(self_attention\) holds no compacter_pp",
    )


def test_placement_fails_on_a_bias_added_to_the_input(check_context, holds, monkeypatch):
    assert_holds(holds, "bitfit", "placement")

    def onto_the_input(model: nn.Module) -> None:
        norm = model.encoder.block[0].layer[0].layer_norm  # LN(x + b) instead of LN(x) + b
        norm._forward_hooks.clear()
        norm.register_forward_pre_hook(lambda _module, args: (norm.bitfit(args[0]),))

    wrap_builder(monkeypatch, "bitfit", onto_the_input)
    assert_fails(
        "placement",
        check_context("bitfit"),
        r"encoder\.block\.0\.layer\.0\.layer_norm: the output is not bitfit\(T\(x\)\)",
    )


def test_placement_fails_when_the_wrong_places_are_indistinguishable(check_context, holds, monkeypatch):
    assert_holds(holds, "adapter", "placement")
    monkeypatch.setattr(harness.invariants.placement, "DISTINCT", 1e3)
    assert_fails("placement", check_context("adapter"), r"M after the residual gives the same output")


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_layer_formula_follows_the_specs_activation_not_a_default(check_context, activation):
    """A spec naming another activation: the adapter must compute that one (a builder that drops the
    argument and keeps gelu_new is caught here; the paper's specs all name gelu_new)."""
    result = run_invariant("layer_formula", with_method_args(check_context("adapter"), non_linearity=activation))
    assert result.ok, result.line()
    assert f"U({activation}(D(y)))" in result.message
