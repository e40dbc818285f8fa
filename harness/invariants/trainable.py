"""`trainable_set` and `only_trainable_change`: exactly the declared parameters train, and only they move."""

from __future__ import annotations

import re

import torch

from harness.invariants.catalog import StepOptions
from harness.invariants.context import CheckContext, InvariantViolation, train_steps
from harness.invariants.registry import NoOptions, invariant
from impl.inject import matching_names


def added_parameter_names(ctx: CheckContext, model: torch.nn.Module) -> set[str]:
    base = {name for name, _ in ctx.base_model().named_parameters()}
    return {name for name, _ in model.named_parameters()} - base


@invariant("trainable_set")
def trainable_set(ctx: CheckContext, options: NoOptions) -> str:
    built = ctx.method_model()
    names = [name for name, _ in built.model.named_parameters()]
    requires_grad = {name for name, p in built.model.named_parameters() if p.requires_grad}
    declared = matching_names(names, ctx.spec.trainable)
    if requires_grad != declared:
        extra, missing = sorted(requires_grad - declared), sorted(declared - requires_grad)
        raise InvariantViolation(
            f"requires_grad differs from the globs: {len(extra)} not declared (e.g. {extra[:3]}), "
            f"{len(missing)} declared but frozen (e.g. {missing[:3]})"
        )
    added = added_parameter_names(ctx, built.model)
    prefix = re.compile(rf"(^|\.){re.escape(ctx.method_name)}\.")
    unprefixed = sorted(name for name in added if not prefix.search(name))
    if unprefixed:
        raise InvariantViolation(f"added parameters without the {ctx.method_name!r} prefix: {unprefixed[:3]}")
    frozen_added = sorted(added - requires_grad)
    if frozen_added:
        raise InvariantViolation(f"{len(frozen_added)} added parameters do not train, e.g. {frozen_added[:3]}")
    return f"{len(requires_grad)} tensors train ({len(added)} added by {ctx.method_name}), all declared"


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
