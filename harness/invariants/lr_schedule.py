"""`lr_schedule`: the learning rate of every optimizer step is linear warm-up then linear decay to 0 over
epochs × ⌈N / global batch⌉ steps, whatever the accumulation."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from harness.invariants.context import InvariantViolation
from harness.invariants.recipe_context import RecipeContext, Recorder
from harness.invariants.registry import NoOptions, invariant


def paper_learning_rate(step: int, base: float, warmup: int, total: int) -> float:
    """Linear warm-up from 0 over `warmup` steps, then linear decay to 0 at `total` (step counted from 0)."""
    if step < warmup:
        return base * step / warmup
    return base * max(0.0, (total - step) / max(1, total - warmup))


@invariant("lr_schedule")
def lr_schedule(ctx: RecipeContext, options: NoOptions) -> str:
    examples, global_batch, epochs, warmup = 10, 4, 2, 2
    total = epochs * math.ceil(examples / global_batch)
    base = ctx.spec.training.learning_rate
    train, validation = ctx.dataset(examples), ctx.dataset(2, "validation")
    seen = {}
    with tempfile.TemporaryDirectory() as folder:
        for k in (1, 2):
            recipe = ctx.recipe(batch_size=global_batch, gradient_accumulation_steps=k, warmup_steps=warmup)
            recorder = Recorder()
            trainer = ctx.trainer(Path(folder) / f"k{k}", ctx.model(), recipe, epochs, train, validation)
            trainer.add_callback(recorder)
            trainer.train()
            expected = [paper_learning_rate(step, base, warmup, total) for step in range(total)]
            got = recorder.learning_rates
            if len(got) != total or any(not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15) for a, b in
                                        zip(got, expected, strict=True)):  # fmt: skip
                raise InvariantViolation(
                    f"{examples} examples, global batch {global_batch} as {k} micro-batches, {epochs} epochs, warm-up "
                    f"{warmup}: learning rates {[f'{x:.3g}' for x in got]}, "
                    f"the formula's {[f'{x:.3g}' for x in expected]}"
                )
            seen[k] = got
    return (
        f"{total} steps ({epochs} epochs × ⌈{examples}/{global_batch}⌉), warm-up {warmup}: the formula at every "
        "step, k = 1 and 2"
    )
