"""`only_trainable_change`: after training steps, every declared tensor moved and every other is bit-identical."""

from __future__ import annotations

import torch

from harness.invariants.context import CheckContext, InvariantViolation, train_steps
from harness.invariants.registry import invariant
from harness.spec.invariant_catalog import StepOptions
from impl.inject import matching_names


@invariant("only_trainable_change")
def only_trainable_change(ctx: CheckContext, options: StepOptions) -> str:
    built = ctx.method_model()
    model = built.model
    declared = matching_names([name for name, _ in model.named_parameters()], ctx.spec.trainable)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    train_steps(model, ctx.batch(), options.steps, options.learning_rate)
    still, moved = [], []
    for name, p in model.named_parameters():  # trainable = declared by the spec's globs, not requires_grad
        changed = not torch.equal(before[name], p.detach())
        if name in declared and not changed:
            still.append(name)
        if name not in declared and changed:
            moved.append(name)
    if still or moved:
        raise InvariantViolation(
            f"{len(still)} trainable tensors did not move (e.g. {still[:3]}); "
            f"{len(moved)} frozen tensors changed (e.g. {moved[:3]})"
        )
    n_frozen = len(before) - len(declared)
    return f"after {options.steps} steps: {len(declared)} trainable tensors moved, {n_frozen} frozen bit-identical"
