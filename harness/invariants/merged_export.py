"""`merged_export`: the method, once trained, folds into the stock T5 and computes the same function.

After real optimizer steps (so z, λ or the weights are off their initial values), the merged weights are
saved with `save_pretrained` and read back by transformers' own `from_pretrained` into the stock class:
that model holds no module of the method, and its logits equal the method model's.
"""

from __future__ import annotations

import tempfile

import torch

from harness.invariants.context import CheckContext, InvariantViolation, logits, relative_error, train_steps
from harness.invariants.registry import invariant
from harness.spec.invariant_catalog import MergedExportOptions


@invariant("merged_export")
def merged_export(ctx: CheckContext, options: MergedExportOptions) -> str:
    from harness.model.backbone import model_class
    from harness.model.export import merged_model

    batch = ctx.batch()
    model = ctx.method_model().model
    train_steps(model, batch, steps=2, learning_rate=ctx.spec.training.learning_rate)
    want = logits(model, batch)
    if torch.equal(want, logits(ctx.base_model(), batch)):
        raise InvariantViolation("two training steps left the output unchanged: nothing to merge")
    plain = merged_model(model, ctx.method_name, ctx.check_model)
    with tempfile.TemporaryDirectory() as folder:
        plain.save_pretrained(folder)
        reloaded = model_class(ctx.check_model.architecture).from_pretrained(folder).eval()
    foreign = [name for name, _ in reloaded.named_modules() if ctx.method_name in name.split(".")]
    if foreign:
        raise InvariantViolation(f"the merged model still holds {ctx.method_name} modules, e.g. {foreign[0]}")
    got = logits(reloaded, batch)
    error = relative_error(got, want)
    if not error <= options.max_relative_error:
        raise InvariantViolation(
            f"the merged model's logits differ from the method model's: max |Δ| / max |logits| = {error:.3g} "
            f"> {options.max_relative_error:g}"
        )
    return (f"{type(reloaded).__name__} from save_pretrained/from_pretrained computes the trained method's logits "
            f"(max |Δ| / max |logits| = {error:.2g})")  # fmt: skip
