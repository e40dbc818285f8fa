"""`accumulated_step`: k accumulated micro-batches give the gradient, its norm (what clipping sees) and the
AdamW update of one batch of the same examples (float64)."""

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


@invariant("accumulated_step")
def accumulated_step(ctx: RecipeContext, options: NoOptions) -> str:
    examples = 8
    train, validation = ctx.dataset(examples), ctx.dataset(2, "validation")
    reference = one_batch_gradient(ctx, train)
    if norm(reference) < 1e-6:
        raise InvariantViolation(f"the reference gradient is ~0 ({norm(reference):.2e}): the check would be vacuous")
    updates = {}
    with tempfile.TemporaryDirectory() as folder:
        for k in (1, 2, 4):
            recipe = ctx.recipe(batch_size=examples, gradient_accumulation_steps=k, warmup_steps=0, max_grad_norm=1e9,
                                learning_rate=1e-3)  # fmt: skip
            model = ctx.model(dtype=torch.float64, moved=True)
            recorder = Recorder()
            trainer = ctx.trainer(Path(folder) / f"k{k}", model, recipe, 1, train, validation, max_steps=1)
            trainer.add_callback(recorder)
            trainer.train()
            if len(recorder.gradients) != 1:
                raise InvariantViolation(f"k={k}: {len(recorder.gradients)} optimizer steps for one global batch")
            difference, where = max_difference(recorder.gradients[0], reference)
            scale = max(g.abs().max().item() for g in reference.values())
            if difference > 1e-9 * scale:
                ratio = norm(recorder.gradients[0]) / norm(reference)
                raise InvariantViolation(
                    f"{examples} examples as {k} micro-batches of {examples // k}: gradient differs from one batch "
                    f"by {difference:.3e} at {where} (norm ratio {ratio:.4f})"
                )
            logged = recorder.grad_norms[-1] if recorder.grad_norms else float("nan")
            if not math.isclose(logged, norm(reference), rel_tol=1e-6):
                raise InvariantViolation(
                    f"k={k}: the norm clipping sees is {logged:.6g}, one batch's {norm(reference):.6g}"
                )
            updates[k] = trainable_state(model)
    for k in (2, 4):
        difference, where = max_difference(updates[k], updates[1])
        if difference > 1e-9:
            raise InvariantViolation(f"k={k}: one AdamW step differs from k=1 by {difference:.3e} at {where}")
    return (
        f"{examples} examples as 1, 2 and 4 micro-batches: the gradient of one batch (norm {norm(reference):.4g}) "
        "and the same update"
    )
