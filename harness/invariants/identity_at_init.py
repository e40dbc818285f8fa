"""`identity_at_init`: at init the method leaves the base model's function unchanged.

For methods whose new parameters start at an exact neutral value (BitFit's zero biases, Intrinsic-SAID's
z = 0), the adapted model must reproduce the base model's logits exactly — not approximately — and one
optimizer step must change them (the method is not inert). Prompt tuning has no neutral value: its specs
state `prompt_extends_input` instead.
"""

from __future__ import annotations

import torch

from harness.invariants.context import CheckContext, InvariantViolation, logits, train_steps
from harness.invariants.registry import NoOptions, invariant


@invariant("identity_at_init")
def identity_at_init(ctx: CheckContext, options: NoOptions) -> str:
    if ctx.method_args.get("prompt_length"):
        raise InvariantViolation("prompt tuning has no neutral value: state prompt_extends_input instead")
    batch = ctx.batch()
    base_logits = logits(ctx.base_model(), batch)
    model = ctx.method_model().model
    initial = logits(model, batch)
    if initial.shape != base_logits.shape or not torch.equal(initial, base_logits):
        difference = (initial - base_logits).abs().max().item() if initial.shape == base_logits.shape else "shape"
        raise InvariantViolation(f"at init the output differs from the base model's (max |Δ| = {difference})")
    train_steps(model, batch, steps=1, learning_rate=ctx.spec.training.learning_rate)
    after = logits(model, batch)
    if torch.equal(after, base_logits):
        raise InvariantViolation("one training step left the output bit-identical to the base model's")
    moved = (after - base_logits).abs().max().item()
    learning_rate = ctx.spec.training.learning_rate
    return f"bit-identical to the base model at init; one step at lr {learning_rate:g} moves it by {moved:.3g}"
