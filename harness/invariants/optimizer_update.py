"""`optimizer_update`: one step is AdamW's update (the recipe's learning rate, ε and weight decay, none on biases
and norms) of T5's one-batch gradient clipped to the recipe's `max_grad_norm`, also when a micro-batch of the
partial last batch is empty."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch

from harness.invariants.context import InvariantViolation
from harness.invariants.recipe_context import (
    RecipeContext,
    Recorder,
    max_difference,
    norm,
    one_batch_gradient,
    trainable_state,
)
from harness.invariants.registry import NoOptions, invariant


def adamw_first_step(parameter: torch.Tensor, gradient: torch.Tensor, lr: float, eps: float, decay: float):
    """AdamW's first update (Loshchilov & Hutter): p ← p − lr·wd·p − lr·m̂/(√v̂ + ε), with m̂ = g and v̂ = g²."""
    return parameter - lr * decay * parameter - lr * gradient / (gradient.abs() + eps)


@invariant("optimizer_update")
def optimizer_update(ctx: RecipeContext, options: NoOptions) -> str:
    examples, lr, eps, decay = 3, 1e-3, 1e-6, 0.25
    train, validation = ctx.dataset(examples), ctx.dataset(2, "validation")
    reference = one_batch_gradient(ctx, train)  # the 3 examples as one batch, T5's own loss
    total = norm(reference)
    clip = total / 3  # a norm of the recipe's own (not the paper's 1.0), that this gradient exceeds
    # torch.nn.utils.clip_grad_norm_'s documented factor: max_norm / (total norm + 1e-6)
    clipped = {name: g * (clip / (total + 1e-6)) for name, g in reference.items()}
    # 3 examples in a global batch of 4 as 4 micro-batches: the last micro-batch has no example of its own
    recipe = ctx.recipe(batch_size=4, gradient_accumulation_steps=4, warmup_steps=0, max_grad_norm=clip,
                        learning_rate=lr, adam_epsilon=eps, weight_decay=decay)  # fmt: skip
    model = ctx.model(dtype=torch.float64, moved=True)
    before = trainable_state(model)
    with tempfile.TemporaryDirectory() as folder:
        recorder = Recorder()
        trainer = ctx.trainer(Path(folder), model, recipe, 1, train, validation, max_steps=1)
        trainer.add_callback(recorder)
        trainer.train()
    if len(recorder.gradients) != 1:
        raise InvariantViolation(f"{len(recorder.gradients)} optimizer steps for one global batch")
    logged = recorder.grad_norms[-1] if recorder.grad_norms else float("nan")
    if not math.isclose(logged, total, rel_tol=1e-6):
        raise InvariantViolation(f"the gradient norm before clipping is {logged:.6g}, one batch's {total:.6g}")
    difference, where = max_difference(recorder.gradients[0], clipped)
    if difference > 1e-9 * max(g.abs().max().item() for g in clipped.values()):
        raise InvariantViolation(
            f"the gradient the optimizer applies differs from one batch's clipped to {clip:.4g} by {difference:.3e} "
            f"at {where} (norm {norm(recorder.gradients[0]):.6g}, expected {clip:.6g})"
        )
    # The released code's and the HF Trainer's rule: no decay on biases and layer norms.
    decays = {n: 0.0 if "bias" in n or "norm" in n else decay for n in before}
    expected = {n: adamw_first_step(before[n], clipped[n], lr, eps, decays[n]) for n in before}
    difference, where = max_difference(trainable_state(model), expected)
    if difference > 1e-9 * lr:
        raise InvariantViolation(
            f"the update differs from AdamW's (lr {lr}, ε {eps}, weight decay {decays[where]}) by {difference:.3e} "
            f"at {where}"
        )
    decayed = sum(value > 0 for value in decays.values())
    return (
        f"{examples} examples in a global batch of 4 (one empty micro-batch): the gradient clipped from {total:.4g} "
        f"to {clip:.4g}, AdamW's update with weight decay {decay} on {decayed} of {len(decays)} tensors"
    )
