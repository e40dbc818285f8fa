"""Every invariant LoRA's and (IA)³'s specs list fails when the method is broken the way an implementation could
be: a changed scaling, an update added to the wrong projection, a vector on the wrong side, B not zero, A drawn
from another law, a merge off by a sign, a full-rank or shared update, a frozen B or l_ff, a vector without
gradient, W₀ written in place (a tensor the loader skips: tests/test_invariants_fail.py)."""

from __future__ import annotations

import math

import pytest
import torch

import harness.model.export
import impl.layers.lora
from impl.layers.lora import LoRAUpdate
from impl.layers.rescale import Rescale
from tests.invariant_helpers import assert_fails, assert_holds, modified, with_method_args, wrap_builder

# --- layer_formula -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scaling", [lambda rank, alpha: alpha, lambda rank, alpha: rank / alpha, lambda rank, alpha: 1.0 / rank],
    ids=["alpha", "rank-over-alpha", "one-over-rank"],
)  # fmt: skip
def test_layer_formula_fails_on_a_changed_lora_scaling(check_context, holds, monkeypatch, scaling):
    """α = 16, r = 8 (α/r = 2): each wrong scaling gives another update than (α/r) B A x."""
    assert_holds(holds, "lora", "layer_formula")
    ctx = with_method_args(check_context("lora"), alpha=16.0)
    from harness.invariants import run_invariant

    assert run_invariant("layer_formula", ctx).ok, "the unbroken LoRA with α = 16 must pass first"
    init = LoRAUpdate.__init__

    def scaled(self, in_features, out_features, rank, alpha):
        init(self, in_features, out_features, rank, alpha)
        self.scaling = scaling(rank, alpha)

    monkeypatch.setattr(LoRAUpdate, "__init__", scaled)
    assert_fails("layer_formula", ctx, r"differs from y W₀ᵀ \+ \(16/8\) y Aᵀ Bᵀ")


def test_layer_formula_fails_on_a_squared_rescale(check_context, holds, monkeypatch):
    assert_holds(holds, "ia3", "layer_formula")
    monkeypatch.setattr(Rescale, "forward", lambda self, x: x * self.scale**2)
    assert_fails("layer_formula", check_context("ia3"), r"differs from l ⊙ \(y Wᵀ\)")


# --- placement -----------------------------------------------------------------------------------------------------


def lora_on_the_keys(model) -> None:
    """Each q's update is added to k's output instead (same shapes on T5: both map k → heads · d_kv)."""
    for name, module in list(model.named_modules()):
        if name.endswith(".q") and hasattr(module, "lora"):
            module._forward_hooks.clear()
            key = model.get_submodule(name.removesuffix(".q") + ".k")
            key.register_forward_hook(lambda _, args, output, update=module.lora: output + update(args[0]))


def test_placement_fails_when_the_update_is_added_to_another_projection(check_context, holds, monkeypatch):
    assert_holds(holds, "lora", "placement")
    wrap_builder(monkeypatch, "lora", lora_on_the_keys)
    assert_fails("placement", check_context("lora"), r"\.q: the output is not T\(x\) \+ lora\(x\)")


def test_placement_fails_when_the_spec_declares_the_other_side(check_context, holds, tiny_model_file):
    """The spec says l_ff acts on wo's output; the method scales its input (and the sizes differ)."""
    assert_holds(holds, "ia3", "placement")
    ctx = check_context("ia3")
    invariants = {**ctx.spec.invariants, "placement": {
        "sublayers": ["self_attention", "cross_attention", "feed_forward"], "targets": ["k", "v", "wo"]}}  # fmt: skip
    assert_fails(
        "placement", modified(ctx, tiny_model_file, invariants=invariants), r"\.wo: ia3 cannot compute ia3\(T\(x\)\)"
    )


def test_placement_fails_when_a_pre_hook_does_not_act(check_context, holds, monkeypatch):
    """wo's vector registered but its pre-hook returns the input unchanged: it never runs."""
    import impl.inject

    assert_holds(holds, "ia3", "placement")
    monkeypatch.setattr(impl.inject._ApplyToInput, "__call__", lambda self, inner, args: None)
    assert_fails("placement", check_context("ia3"), r"placed modules never run in a forward pass, e\.g\. \['.*wo\.ia3'")


def test_placement_fails_when_lora_also_sits_on_k(check_context, holds):
    assert_holds(holds, "lora", "placement")
    ctx = with_method_args(check_context("lora"), targets=["q", "k", "v"])
    assert_fails("placement", ctx, r"modules where the spec puts none \(e\.g\. \['.*\.k\.lora'")


# --- identity_at_init and init_distribution ----------------------------------------------------------------------


def test_identity_at_init_fails_when_b_starts_non_zero(check_context, holds, monkeypatch):
    assert_holds(holds, "lora", "identity_at_init")
    init = LoRAUpdate.__init__

    def non_zero(self, *args, **kwargs):
        init(self, *args, **kwargs)
        with torch.no_grad():
            self.weight_b.fill_(1e-6)

    monkeypatch.setattr(LoRAUpdate, "__init__", non_zero)
    assert_fails("identity_at_init", check_context("lora"), r"at init the output differs")


def test_identity_at_init_fails_when_a_scale_starts_off_one(check_context, holds, monkeypatch):
    assert_holds(holds, "ia3", "identity_at_init")
    monkeypatch.setattr(Rescale, "forward", lambda self, x: x * (self.scale + 1e-6))
    assert_fails("identity_at_init", check_context("ia3"), r"at init the output differs")


KAIMING_UNIFORM = torch.nn.init.kaiming_uniform_  # torch's own, before a test replaces it


@pytest.mark.parametrize(
    "draw, pattern",
    [
        (lambda tensor, a: torch.nn.init.normal_(tensor, std=1.0 / 8), r"weight_a: \d+ values do not follow kaiming"),
        (lambda tensor, a: KAIMING_UNIFORM(tensor, a=0.0), r"weight_a: \d+ values do not follow kaiming"),
    ],
    ids=["gaussian-1-over-r", "kaiming-a-0"],
)
def test_init_distribution_fails_when_a_follows_another_law(check_context, holds, monkeypatch, draw, pattern):
    """N(0, 1/r²) (peft's "gaussian" option) or kaiming-uniform with a = 0 (bound √6/√in, not 1/√in)."""
    assert_holds(holds, "lora", "init_distribution")
    monkeypatch.setattr(impl.layers.lora.nn.init, "kaiming_uniform_", draw)
    assert_fails("init_distribution", check_context("lora"), pattern)


def test_kaiming_uniform_law_is_the_bound_one_over_root_fan_in():
    """The spec's law, written out: a = √5 gives gain √(1/3) and bound gain·√(3/in) = 1/√in."""
    from harness.spec.schema import KaimingUniformInit

    rule = KaimingUniformInit(params="*", distribution="kaiming_uniform")
    gain = math.sqrt(2.0 / (1.0 + rule.a**2))
    assert gain * math.sqrt(3.0 / 384) == pytest.approx(1.0 / math.sqrt(384), rel=1e-12)


# --- merged_export -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec_name", ["lora", "ia3"])
def test_merged_export_fails_on_a_wrong_merge(check_context, holds, monkeypatch, spec_name):
    """LoRA merged as W₀ − (α/r) B A; (IA)³ with l_ff not folded into wo."""
    assert_holds(holds, spec_name, "merged_export")
    original = harness.model.export.merged_state

    def broken(model, method):
        right = original(model, method)
        plain = {name: p.detach() for name, p in model.named_parameters() if method not in name.split(".")}
        if method == "lora":  # W₀ − ΔW = 2 W₀ − (W₀ + ΔW)
            return {name: 2 * plain[name] - tensor if name in plain else tensor for name, tensor in right.items()}
        return {name: plain[name] if ".wo." in f".{name}" else tensor for name, tensor in right.items()}  # l_ff lost

    monkeypatch.setattr(harness.model.export, "merged_state", broken)
    assert_fails("merged_export", check_context(spec_name), r"merged model's logits differ")


# --- budget, trainable_set, only_trainable_change on LoRA and (IA)³ ------------------------------------------------

LORA_B = "encoder.block.0.layer.0.SelfAttention.q.lora.weight_b"


@pytest.mark.parametrize("spec_name, count", [("lora", 884_736), ("ia3", 129_024)])
def test_budget_fails_on_a_count_one_off(check_context, holds, tiny_model_file, spec_name, count):
    assert_holds(holds, spec_name, "budget")
    ctx = check_context(spec_name)
    budget = ctx.spec.budget.model_copy(update={"trainable_params": count + 1})
    pattern = rf"counted {count:,} trainable parameters on t5_base, spec says {count + 1:,}"
    assert_fails("budget", modified(ctx, tiny_model_file, budget=budget), pattern)


def test_budget_fails_when_lora_builds_a_full_rank_b(check_context, holds, monkeypatch):
    """B built (out, out) and A (out, in): a "low-rank" update of full rank, counted, not assumed."""
    assert_holds(holds, "lora", "budget")
    init = LoRAUpdate.__init__

    def full_rank(self, in_features, out_features, rank, alpha):
        init(self, in_features, out_features, out_features, alpha)

    monkeypatch.setattr(LoRAUpdate, "__init__", full_rank)
    assert_fails("budget", check_context("lora"), r"counted [\d,]+ trainable parameters on t5_base, spec says 884,736")


def test_budget_fails_when_every_layer_shares_one_update(check_context, holds, monkeypatch):
    """Every q and v hold the same LoRAUpdate object: one A and one B counted once, not 72 of each."""
    assert_holds(holds, "lora", "budget")

    def share(model) -> None:
        first = next(m for n, m in model.named_modules() if n.endswith(".lora"))
        for module in list(model.modules()):
            if hasattr(module, "lora") and module.lora is not first:
                module._modules["lora"] = first
                module._forward_hooks.clear()
                module.register_forward_hook(lambda _, args, output, update=first: output + update(args[0]))

    wrap_builder(monkeypatch, "lora", share)
    assert_fails("budget", check_context("lora"), r"counted 12,288 trainable parameters on t5_base, spec says 884,736")


@pytest.mark.parametrize(
    "spec_name, trainable",
    [("lora", ["*.lora.weight_a"]), ("ia3", ["*.k.ia3.*", "*.v.ia3.*"])],
    ids=["lora-b-frozen", "ia3-l_ff-frozen"],
)
def test_trainable_set_fails_when_an_added_parameter_is_frozen(
    check_context, holds, tiny_model_file, spec_name, trainable
):
    assert_holds(holds, spec_name, "trainable_set")
    broken = modified(check_context(spec_name), tiny_model_file, trainable=trainable)
    assert_fails("trainable_set", broken, r"added parameters do not train, e\.g\. \[")


def test_only_trainable_change_fails_when_a_scale_gets_no_gradient(check_context, holds, monkeypatch):
    assert_holds(holds, "ia3", "only_trainable_change")
    monkeypatch.setattr(Rescale, "forward", lambda self, x: x * (self.scale.detach() if self.side == "input" else
                                                                  self.scale))  # fmt: skip
    assert_fails("only_trainable_change", check_context("ia3"), r"^4 trainable tensors did not move \(e\.g\. \['.*wo")


def test_only_trainable_change_fails_when_lora_writes_into_w0(check_context, holds, monkeypatch):
    """A merge-in-place after training (W₀ += ΔW, as peft's merge_adapter does): a frozen tensor moved."""
    import harness.invariants.only_trainable_change as module

    assert_holds(holds, "lora", "only_trainable_change")
    original = module.train_steps

    def train_then_merge(model, batch, steps, learning_rate, all_parameters=True):
        original(model, batch, steps, learning_rate, all_parameters)
        with torch.no_grad():
            q = model.get_submodule(LORA_B.removesuffix(".lora.weight_b"))
            q.weight.add_(q.lora.weight_b @ q.lora.weight_a * q.lora.scaling)

    monkeypatch.setattr(module, "train_steps", train_then_merge)
    assert_fails("only_trainable_change", check_context("lora"), r"1 frozen tensors changed \(e\.g\. \['.*\.q\.weight'")
