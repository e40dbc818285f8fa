"""Every invariant can fail: each test shows the invariant holding, breaks its property, and sees it fail.

A break is a monkeypatch of the implementation (undone after the test) or a modified copy of a spec; the
cached contexts of `check_context` are never changed in place. Patches go where the name is looked up:
the builders' `attach_phm_adapters` in `impl.methods.<method>`, `set_trainable` in `harness.model.build`, the
invariants' `train_steps`, `save_trainable` and `load_trainable` in their own modules.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

import harness.invariants.near_identity_at_init
import harness.invariants.only_trainable_change
import harness.invariants.state_roundtrip
import harness.model.build
import impl.layers.phm
from harness.invariants import run_invariant
from impl.layers.bottleneck import BottleneckAdapter
from impl.layers.phm import PHMLinear, PHMRule
from impl.state import trainable_state
from tests.invariant_helpers import assert_fails, assert_holds, modified

SQRT2 = math.sqrt(2.0)  # the paper's Glorot gain
FROZEN = "encoder.block.0.layer.0.SelfAttention.q.weight"  # a T5 weight every spec keeps frozen


# --- helpers -------------------------------------------------------------------------------------------------------


def patch_builder(monkeypatch, method: str, force: dict | None = None, after: Callable | None = None) -> None:
    """Make the method's builder call attach_phm_adapters with `force`d arguments, then `after(model)`."""
    module = importlib.import_module(f"impl.methods.{method}")
    original = module.attach_phm_adapters

    def attach(model, name, **kwargs):
        original(model, name, **{**kwargs, **(force or {})})
        if after is not None:
            after(model)

    monkeypatch.setattr(module, "attach_phm_adapters", attach)


def phm_layers(model: nn.Module) -> list[PHMLinear]:
    return [m for m in model.modules() if isinstance(m, PHMLinear)]


def own_rules(count: int | None) -> Callable[[nn.Module], None]:
    """After the build: the first `count` PHM layers (all if None) get a rule of their own."""

    def give(model: nn.Module) -> None:
        for layer in phm_layers(model)[:count]:
            layer.own_rule = PHMRule(layer.n, init_std=1e-4)  # registered as the layer's child
            layer._shared_rule = ()

    return give


def patch_rule_init(monkeypatch, std: float) -> None:
    """PHMRule ignores its init_std and draws A ~ N(0, std²)."""

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.phm_rule.normal_(mean=0.0, std=std)

    monkeypatch.setattr(PHMRule, "reset_parameters", reset_parameters)


# --- kron_sum ------------------------------------------------------------------------------------------------------


def kron_b_a(self) -> torch.Tensor:
    a, b = self.rule, self.blocks()
    return sum(torch.kron(b[i], a[i]) for i in range(self.n))


def kron_a_transposed(self) -> torch.Tensor:
    a, b = self.rule, self.blocks()
    n, p, q = b.shape
    return torch.einsum("ica,iuv->aucv", a, b).reshape(n * p, n * q)


def forward_without_bias(self, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, self.kronecker_weight().t())


@pytest.mark.parametrize(
    "attribute, replacement",
    [
        ("kronecker_weight", kron_b_a),
        ("kronecker_weight", kron_a_transposed),
        ("forward", forward_without_bias),
    ],
    ids=["sum-kron-B-A", "A-blocks-transposed", "bias-dropped"],
)
def test_kron_sum_fails_on_a_wrong_layer(check_context, holds, monkeypatch, attribute, replacement):
    assert_holds(holds, "compacter", "kron_sum")
    monkeypatch.setattr(PHMLinear, attribute, replacement)
    assert_fails("kron_sum", check_context("compacter"), r"output differs from x Σ kron\(A_i, B_i\) \+ b by")


FACTORED_IN, FACTORED_OUT = impl.layers.phm.factored_in, impl.layers.phm.factored_out


def factored_in_with_a_transposed(x, a, s, t, bias):
    return FACTORED_IN(x, a.transpose(1, 2), s, t, bias)


def factored_out_with_t_reversed(x, a, s, t, bias):
    return FACTORED_OUT(x, a, s, t.flip(0), bias)


@pytest.mark.parametrize(
    "name, replacement",
    [("factored_in", factored_in_with_a_transposed), ("factored_out", factored_out_with_t_reversed)],
)
def test_kron_sum_fails_on_a_wrong_factored_algorithm(check_context, holds, monkeypatch, name, replacement):
    # each factored algorithm is checked, also the one "auto" does not pick for the drawn shapes
    assert_holds(holds, "compacter", "kron_sum")
    monkeypatch.setattr(impl.layers.phm, name, replacement)
    assert_fails("kron_sum", check_context("compacter"), rf"\({name}\): output differs from x Σ kron")


def test_kron_sum_failure_is_reported_on_one_line(check_context, monkeypatch):
    monkeypatch.setattr(PHMLinear, "forward", forward_without_bias)
    result = run_invariant("kron_sum", check_context("compacter"))
    assert not result.ok
    assert "\n" not in result.line(), result.line()


# --- budget --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "update, pattern",
    [
        (
            lambda budget: {"trainable_params": budget.trainable_params + 1},
            r"counted 161,728 trainable parameters on t5_base, spec says 161,729",
        ),
        (
            lambda budget: {"published_percent": 0.08},
            r"% of [\d,]+ does not round to the published 0\.08%",
        ),
    ],
    ids=["count-plus-one", "percent-does-not-round"],
)
def test_budget_fails_on_a_wrong_spec(check_context, holds, tiny_model_file, update, pattern):
    assert_holds(holds, "compacter", "budget")
    ctx = check_context("compacter")
    budget = ctx.spec.budget.model_copy(update=update(ctx.spec.budget))
    assert_fails("budget", modified(ctx, tiny_model_file, budget=budget), pattern)


def test_budget_fails_when_the_builder_does_not_share_the_rule(check_context, holds, tiny_model_file, monkeypatch):
    """The builder gets shared_phm_rule=False: 96 per-layer rules of n³ = 64 instead of one; count unchanged."""
    assert_holds(holds, "compacter", "budget")
    ctx = check_context("compacter")
    patch_builder(monkeypatch, "compacter", force={"shared_phm_rule": False})
    # "compacter.phm_rule" would now match nothing (a build error); the per-layer rules match "*.compacter.*"
    trainable = [glob for glob in ctx.spec.trainable if glob != "compacter.phm_rule"]
    broken = modified(ctx, tiny_model_file, trainable=trainable)
    assert_fails("budget", broken, r"counted 167,808 trainable parameters on t5_base, spec says 161,728")


def test_budget_fails_when_layers_add_rules_of_their_own(check_context, holds, monkeypatch):
    """The shared rule is registered, but every PHM layer also builds its own: the spec is untouched."""
    assert_holds(holds, "compacter", "budget")
    patch_builder(monkeypatch, "compacter", after=own_rules(None))
    assert_fails("budget", check_context("compacter"), r"counted 167,872 trainable parameters on t5_base")


# --- trainable_set -------------------------------------------------------------------------------------------------


def test_trainable_set_fails_when_a_frozen_parameter_trains(check_context, holds, monkeypatch):
    assert_holds(holds, "compacter", "trainable_set")
    original = harness.model.build.set_trainable

    def set_trainable(model, globs):
        names = original(model, globs)
        model.get_parameter(FROZEN).requires_grad_(True)
        return names

    monkeypatch.setattr(harness.model.build, "set_trainable", set_trainable)
    assert_fails(
        "trainable_set",
        check_context("compacter"),
        rf"requires_grad differs from the globs: 1 not declared \(e\.g\. \['{re.escape(FROZEN)}'\]\), "
        r"0 declared but frozen",
    )


def test_trainable_set_fails_when_the_shared_rule_is_frozen(check_context, holds, tiny_model_file):
    assert_holds(holds, "compacter", "trainable_set")
    ctx = check_context("compacter")
    trainable = [glob for glob in ctx.spec.trainable if glob != "compacter.phm_rule"]
    assert_fails(
        "trainable_set",
        modified(ctx, tiny_model_file, trainable=trainable),
        r"1 added parameters do not train, e\.g\. \['compacter\.phm_rule'\]",
    )


@pytest.mark.parametrize(
    "owner, name",
    [("", "extra_scale"), ("encoder.block.0.layer.1", "compacter_scale")],
    ids=["top-level", "method-name-without-dot"],
)
def test_trainable_set_fails_on_an_unprefixed_added_parameter(
    check_context, holds, tiny_model_file, monkeypatch, owner, name
):
    assert_holds(holds, "compacter", "trainable_set")

    def add_parameter(model: nn.Module) -> None:
        model.get_submodule(owner).register_parameter(name, nn.Parameter(torch.ones(3)))

    patch_builder(monkeypatch, "compacter", after=add_parameter)
    ctx = check_context("compacter")
    full_name = f"{owner}.{name}" if owner else name
    broken = modified(ctx, tiny_model_file, trainable=[*ctx.spec.trainable, full_name])  # declared: it does train
    assert_fails(
        "trainable_set", broken, rf"added parameters without the 'compacter' prefix: \['{re.escape(full_name)}'\]"
    )


# --- only_trainable_change -----------------------------------------------------------------------------------------


def touch_after_training(original):
    """A trainer that also writes into a frozen tensor."""

    def train_steps(model, batch, steps, learning_rate, all_parameters=True):
        original(model, batch, steps, learning_rate, all_parameters)
        with torch.no_grad():
            model.get_parameter(FROZEN).add_(1e-3)

    return train_steps


def unfreeze_while_training(original):
    """A trainer that unfreezes a tensor for its steps and freezes it again afterwards."""

    def train_steps(model, batch, steps, learning_rate, all_parameters=True):
        model.get_parameter(FROZEN).requires_grad_(True)
        try:
            original(model, batch, steps, learning_rate, all_parameters)
        finally:
            model.get_parameter(FROZEN).requires_grad_(False)

    return train_steps


@pytest.mark.parametrize("trainer", [touch_after_training, unfreeze_while_training], ids=["in-place", "unfrozen"])
def test_only_trainable_change_fails_when_a_frozen_tensor_moves(check_context, holds, monkeypatch, trainer):
    assert_holds(holds, "compacter", "only_trainable_change")
    module = harness.invariants.only_trainable_change
    monkeypatch.setattr(module, "train_steps", trainer(module.train_steps))
    assert_fails(
        "only_trainable_change",
        check_context("compacter"),
        r"0 trainable tensors did not move \(e\.g\. \[\]\); "
        rf"1 frozen tensors changed \(e\.g\. \['{re.escape(FROZEN)}'\]\)",
    )


def up_on_detached_weights(self, y: torch.Tensor) -> torch.Tensor:
    """The adapter runs its up projection with detached weights: up's s, t and b get no gradient."""
    hidden = self.activation(self.down(y))
    return y + F.linear(hidden, self.up.kronecker_weight().detach().t(), self.up.bias.detach())


def forward_with_detached_bias(self, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, self.kronecker_weight().t(), self.bias.detach())


@pytest.mark.parametrize(
    "owner, replacement, pattern",
    [
        (BottleneckAdapter, up_on_detached_weights, r"^24 trainable tensors did not move \(e\.g\. \['[^']*\.up\."),
        (PHMLinear, forward_with_detached_bias, r"^16 trainable tensors did not move \(e\.g\. \['[^']*\.bias'"),
    ],
    ids=["up-projection-gets-no-gradient", "phm-bias-gets-no-gradient"],
)
def test_only_trainable_change_fails_when_a_trainable_tensor_cannot_move(
    check_context, holds, monkeypatch, owner, replacement, pattern
):
    assert_holds(holds, "compacter", "only_trainable_change")
    monkeypatch.setattr(owner, "forward", replacement)
    result = assert_fails("only_trainable_change", check_context("compacter"), pattern)
    assert "0 frozen tensors changed" in result.message


# --- shared_rule ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "count, pattern",
    [
        (None, r"shared rule expected: 16 PHM layers use 16 different A"),
        (1, r"shared rule expected: 16 PHM layers use 2 different A"),
    ],
    ids=["every-layer-own-rule", "one-layer-own-rule"],
)
def test_shared_rule_fails_when_layers_do_not_share(check_context, holds, monkeypatch, count, pattern):
    assert_holds(holds, "compacter", "shared_rule")
    assert check_context("compacter").method_args["shared_phm_rule"] is True
    patch_builder(monkeypatch, "compacter", after=own_rules(count))
    assert_fails("shared_rule", check_context("compacter"), pattern)


def test_shared_rule_fails_when_the_shared_rule_does_not_train(check_context, holds, tiny_model_file):
    assert_holds(holds, "compacter", "shared_rule")
    ctx = check_context("compacter")
    trainable = [glob for glob in ctx.spec.trainable if glob != "compacter.phm_rule"]
    assert_fails(
        "shared_rule",
        modified(ctx, tiny_model_file, trainable=trainable),
        r"the shared A \(compacter\.phm_rule\) does not train",
    )


def mark_first_layers(count: int | None) -> Callable[[nn.Module], None]:
    def mark(model: nn.Module) -> None:
        for layer in phm_layers(model)[:count]:
            layer.cut_rule = True

    return mark


def kronecker_weight_cutting(rule_of: Callable[[torch.Tensor], torch.Tensor]):
    """kronecker_weight, but a layer marked `cut_rule` uses rule_of(A) instead of A."""

    def kronecker_weight(self) -> torch.Tensor:
        a, b = self.rule, self.blocks()
        if getattr(self, "cut_rule", False):
            a = rule_of(a)
        n, p, q = b.shape
        return torch.einsum("iac,iuv->aucv", a, b).reshape(n * p, n * q)

    return kronecker_weight


def test_shared_rule_fails_when_one_layer_feeds_a_zero_gradient(check_context, holds, monkeypatch):
    """The first layer uses A's value with a zero gradient (A.detach() + 0·A): it feeds nothing into A."""
    assert_holds(holds, "compacter", "shared_rule")
    patch_builder(monkeypatch, "compacter", after=mark_first_layers(1))
    monkeypatch.setattr(PHMLinear, "kronecker_weight", kronecker_weight_cutting(lambda a: a.detach() + 0 * a))
    assert_fails(
        "shared_rule",
        check_context("compacter"),
        r"1 PHM layers feed no gradient into A, e\.g\. \['encoder\.block\.0\.layer\.0\.compacter\.down'\]",
    )


@pytest.mark.parametrize("count", [1, None], ids=["one-layer", "every-layer"])
def test_shared_rule_fails_when_layers_use_a_detached_rule(check_context, holds, monkeypatch, count):
    assert_holds(holds, "compacter", "shared_rule")
    patch_builder(monkeypatch, "compacter", after=mark_first_layers(count))
    monkeypatch.setattr(PHMLinear, "kronecker_weight", kronecker_weight_cutting(torch.Tensor.detach))
    assert_fails("shared_rule", check_context("compacter"), r"feed no gradient into A")


def up_uses_down_rule(model: nn.Module) -> None:
    for adapter in model.modules():
        if isinstance(adapter, BottleneckAdapter):
            adapter.up.share_rule(adapter.down.rule_module)


def every_rule_held_by_reference(model: nn.Module) -> None:
    for layer in phm_layers(model):
        layer.share_rule(layer.rule_module)  # distinct rules, but none owned (nor registered) by its layer


@pytest.mark.parametrize(
    "force, after, pattern",
    [
        ({"shared_phm_rule": True}, None, r"unshared rule expected: 1 distinct A for 16 layers"),
        (None, up_uses_down_rule, r"unshared rule expected: 8 distinct A for 16 layers"),
        (None, every_rule_held_by_reference, r"unshared rule expected: 16 distinct A for 16 layers"),
    ],
    ids=["one-rule-for-all", "up-shares-down-rule", "rules-not-owned"],
)
def test_shared_rule_fails_when_an_unshared_spec_shares(check_context, holds, monkeypatch, force, after, pattern):
    assert_holds(holds, "phm_adapter", "shared_rule")
    assert check_context("phm_adapter").method_args["shared_phm_rule"] is False
    patch_builder(monkeypatch, "phm_adapter", force=force, after=after)
    assert_fails("shared_rule", check_context("phm_adapter"), pattern)


# --- near_identity_at_init -----------------------------------------------------------------------------------------


def test_near_identity_fails_on_a_large_rule_init(check_context, holds, monkeypatch):
    assert_holds(holds, "compacter", "near_identity_at_init")
    patch_rule_init(monkeypatch, std=1.0)
    assert_fails(
        "near_identity_at_init",
        check_context("compacter"),
        r"at init max \|Δlogits\| / max \|logits\| = \S+ exceeds the stated 1e-05",
    )


def zero_adapter_output(self, y: torch.Tensor) -> torch.Tensor:
    return y + 0 * self.up(self.activation(self.down(y)))


def test_near_identity_fails_when_training_does_nothing(check_context, holds, monkeypatch):
    assert_holds(holds, "compacter", "near_identity_at_init")
    monkeypatch.setattr(harness.invariants.near_identity_at_init, "train_steps", lambda *args, **kwargs: None)
    assert_fails("near_identity_at_init", check_context("compacter"), r"^one training step left the output unchanged$")


def test_near_identity_fails_on_an_inert_method(check_context, holds, tiny_model_file, monkeypatch):
    """Adapters whose output is multiplied by 0, and only the adapters train: a step changes nothing."""
    assert_holds(holds, "compacter", "near_identity_at_init")
    monkeypatch.setattr(BottleneckAdapter, "forward", zero_adapter_output)
    ctx = check_context("compacter")
    broken = modified(ctx, tiny_model_file, trainable=["*.compacter.*", "compacter.phm_rule"])
    assert_fails("near_identity_at_init", broken, r"^one training step left the output unchanged$")


# --- init_distribution ---------------------------------------------------------------------------------------------


def break_rule_std(monkeypatch) -> None:
    patch_rule_init(monkeypatch, std=1e-2)


def break_bias(monkeypatch) -> None:
    original = PHMLinear.reset_parameters

    def reset_parameters(self) -> None:
        original(self)
        with torch.no_grad():
            self.bias.fill_(1e-3)

    monkeypatch.setattr(PHMLinear, "reset_parameters", reset_parameters)


def break_glorot_gain(monkeypatch) -> None:
    original = impl.layers.phm.glorot_uniform_
    monkeypatch.setattr(impl.layers.phm, "glorot_uniform_", lambda tensor, gain=SQRT2: original(tensor, 1.0))


@pytest.mark.parametrize(
    "breakage, pattern",
    [
        (break_rule_std, r"^compacter\.phm_rule: 64 values do not follow normal \(KS D = \S+, p = \S+ < 0\.001\)"),
        (break_bias, r"^\*\.compacter\.\*\.bias: 16 tensors are not all 0\.0, e\.g\. \["),
        (break_glorot_gain, r"^\*\.compacter\.\*\.phm_weight_left: \d+ values do not follow glorot_uniform \(KS D"),
    ],
    ids=["rule-std-1e-2", "bias-non-zero", "glorot-gain-1"],
)
def test_init_distribution_fails_on_a_wrong_init(check_context, holds, monkeypatch, breakage, pattern):
    assert_holds(holds, "compacter", "init_distribution")
    breakage(monkeypatch)
    assert_fails("init_distribution", check_context("compacter"), pattern)


def test_init_distribution_fails_on_an_added_parameter_without_a_rule(check_context, holds, tiny_model_file):
    assert_holds(holds, "compacter", "init_distribution")
    ctx = check_context("compacter")
    init = [rule for rule in ctx.spec.init if not rule.params.endswith(".bias")]
    assert len(init) == len(ctx.spec.init) - 1
    assert_fails(
        "init_distribution",
        modified(ctx, tiny_model_file, init=init),
        r"^16 added parameters have no declared init, e\.g\. \['[^']*\.compacter\.[^']*\.bias'",
    )


# --- state_roundtrip -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec_name, skipped",
    [
        ("compacter", "compacter.phm_rule"),
        ("compacter", "encoder.final_layer_norm.weight"),
        ("lora", "encoder.block.0.layer.0.SelfAttention.q.lora.weight_b"),
        ("ia3", "encoder.block.0.layer.1.DenseReluDense.wo.ia3.scale"),
    ],
)
def test_state_roundtrip_fails_when_loading_skips_a_tensor(check_context, holds, monkeypatch, spec_name, skipped):
    assert_holds(holds, spec_name, "state_roundtrip")
    original = harness.invariants.state_roundtrip.load_trainable

    def load_trainable(model, path):
        parameter = model.get_parameter(skipped)
        kept = parameter.detach().clone()
        metadata = original(model, path)
        with torch.no_grad():
            parameter.copy_(kept)  # as if the loader never wrote it
        return metadata

    monkeypatch.setattr(harness.invariants.state_roundtrip, "load_trainable", load_trainable)
    assert_fails("state_roundtrip", check_context(spec_name), r"^outputs differ after loading by \S+$")


def save_without(omitted: str):
    def save_trainable(model, path, metadata=None):
        tensors = trainable_state(model)
        del tensors[omitted]
        save_file(tensors, str(path), metadata=metadata or {})
        return path

    return save_trainable


def lenient_load(model, path):
    """Copies whatever the file holds, complaining about nothing (like load_state_dict(strict=False))."""
    parameters = dict(model.named_parameters())
    with safe_open(str(path), framework="pt") as handle, torch.no_grad():
        for name in handle.keys():  # noqa: SIM118  (safe_open handles are not iterable)
            parameters[name].copy_(handle.get_tensor(name))
    return {}


def test_state_roundtrip_fails_when_saving_omits_a_tensor(check_context, holds, monkeypatch):
    assert_holds(holds, "compacter", "state_roundtrip")
    module = harness.invariants.state_roundtrip
    monkeypatch.setattr(module, "save_trainable", save_without("compacter.phm_rule"))
    monkeypatch.setattr(module, "load_trainable", lenient_load)
    trains = sum(p.requires_grad for p in check_context("compacter").method_model().model.parameters())
    assert_fails(
        "state_roundtrip",
        check_context("compacter"),
        rf"^the file holds {trains - 1} tensors, the model trains {trains}$",
    )


def test_state_roundtrip_fails_when_saving_omits_a_tensor_with_the_real_loader(check_context, holds, monkeypatch):
    assert_holds(holds, "compacter", "state_roundtrip")
    monkeypatch.setattr(harness.invariants.state_roundtrip, "save_trainable", save_without("compacter.phm_rule"))
    assert_fails("state_roundtrip", check_context("compacter"), r"the file holds \d+ tensors, the model trains \d+")
