"""`shared_rule`: one rule A for all PHM layers when the spec shares it (else one per layer).

Shared: every PHM layer uses the same parameter object, listed once by named_parameters, and its
gradient is the sum of the gradients every layer contributes (∂L/∂A = Σ_k ∂L/∂A_k when layer k uses
a private copy A_k = A), each of them non-zero: every layer feeds gradient into the one A.
"""

from __future__ import annotations

import torch

from harness.invariants.context import CheckContext, InvariantViolation
from harness.invariants.registry import NoOptions, invariant
from impl.layers.phm import PHMLinear, PHMRule


def phm_layers(model: torch.nn.Module) -> list[tuple[str, PHMLinear]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PHMLinear)]


def loss_of(model, batch) -> torch.Tensor:
    return model(**batch).loss


def gradient(parameter: torch.Tensor) -> torch.Tensor:
    """The accumulated gradient; zeros when none reached the parameter (`.grad` is None)."""
    return torch.zeros_like(parameter) if parameter.grad is None else parameter.grad.detach().clone()


@invariant("shared_rule")
def shared_rule(ctx: CheckContext, options: NoOptions) -> str:
    model = ctx.method_model().model.to(torch.float64).eval()  # eval: no dropout, so passes are repeatable
    layers = phm_layers(model)
    if not layers:
        raise InvariantViolation(f"{ctx.method_name} built no PHM layer")
    rules = {id(layer.rule): layer.rule for _, layer in layers}
    listed = [name for name, p in model.named_parameters() if any(p is r for r in rules.values())]
    if not ctx.method_args.get("shared_phm_rule", False):
        if len(rules) != len(layers) or any(layer.rule_is_shared for _, layer in layers):
            raise InvariantViolation(f"unshared rule expected: {len(rules)} distinct A for {len(layers)} layers")
        return f"{len(layers)} PHM layers, each with its own A (not shared, as the spec says)"

    if len(rules) != 1:
        raise InvariantViolation(f"shared rule expected: {len(layers)} PHM layers use {len(rules)} different A")
    (rule,) = rules.values()
    if len(listed) != 1:
        raise InvariantViolation(f"the shared A is listed {len(listed)} times by named_parameters: {listed[:3]}")
    if not rule.requires_grad:
        raise InvariantViolation(f"the shared A ({listed[0]}) does not train")

    batch = ctx.batch()
    model.zero_grad(set_to_none=True)
    loss_of(model, batch).backward()
    shared_grad = gradient(rule)

    holder = layers[0][1].rule_module
    copies = []
    for _, layer in layers:  # layer k uses a private copy A_k with A's value
        private = PHMRule(layer.n, init_std=1.0).to(torch.float64)
        with torch.no_grad():
            private.phm_rule.copy_(rule)
        layer.share_rule(private)
        copies.append(private.phm_rule)
    try:
        loss_of(model, batch).backward()
    finally:
        for _, layer in layers:
            layer.share_rule(holder)
    grads = [gradient(a_k) for a_k in copies]
    silent = [name for (name, _), g in zip(layers, grads, strict=True) if not g.abs().sum() > 0]
    if silent:
        raise InvariantViolation(f"{len(silent)} PHM layers feed no gradient into A, e.g. {silent[:3]}")
    summed = torch.stack(grads).sum(0)
    if not torch.allclose(shared_grad, summed, rtol=1e-9, atol=1e-12):
        difference = (shared_grad - summed).abs().max().item()
        raise InvariantViolation(f"∂L/∂A differs from Σ_k ∂L/∂A_k by {difference:.3g}")
    return (
        f"one A ({listed[0]}) shared by {len(layers)} PHM layers; ∂L/∂A = Σ of {len(layers)} non-zero layer gradients"
    )
