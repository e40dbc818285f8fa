"""`trainable_set`: exactly the declared parameters train, and every added one carries the method's prefix."""

from __future__ import annotations

import re

from harness.invariants.context import CheckContext, InvariantViolation, added_parameter_names
from harness.invariants.registry import NoOptions, invariant
from impl.inject import matching_names


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
