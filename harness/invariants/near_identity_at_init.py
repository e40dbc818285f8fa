"""`near_identity_at_init`: at init the adapted model stays within a stated tolerance of the base model.

With A ~ N(0, 1e-4²) every PHM weight is tiny, so each adapter is nearly the identity and T5's
pretrained function is kept at the start of training. The distance is relative to the logits' scale,
so the same tolerance holds for every T5 family. One optimizer step must move the output: the
method is not inert.
"""

from __future__ import annotations

import torch

from harness.invariants.context import CheckContext, InvariantViolation, logits, relative_error, train_steps
from harness.invariants.registry import invariant
from harness.spec.invariant_catalog import NearIdentityOptions


@invariant("near_identity_at_init")
def near_identity_at_init(ctx: CheckContext, options: NearIdentityOptions) -> str:
    batch = ctx.batch()
    base_logits = logits(ctx.base_model(), batch)
    model = ctx.method_model().model
    initial = logits(model, batch)
    difference = relative_error(initial, base_logits)  # max |Δlogits| / max |base logits|
    if not difference <= options.max_relative_diff:
        stated = options.max_relative_diff
        raise InvariantViolation(
            f"at init max |Δlogits| / max |logits| = {difference:.3g} exceeds the stated {stated:.3g}"
        )
    train_steps(model, batch, steps=1, learning_rate=ctx.spec.training.learning_rate)
    after = logits(model, batch)
    if torch.equal(after, initial) or torch.equal(after, base_logits):
        raise InvariantViolation("one training step left the output unchanged")
    moved = (after - initial).abs().max().item()
    return (
        f"at init max |Δlogits| / max |logits| = {difference:.3g} ≤ {options.max_relative_diff:.3g}; "
        f"one step at lr {ctx.spec.training.learning_rate:g} moves it by {moved:.3g}"
    )
