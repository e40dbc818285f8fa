"""`skip_equals_absent`: AdapterDrop at inference — skipping the adapters of some blocks gives exactly the
model built without adapters there (same weights for the rest), logits and greedy generation alike."""

from __future__ import annotations

import torch

from harness.invariants.context import CheckContext, InvariantViolation, logits
from harness.invariants.registry import invariant
from harness.spec.invariant_catalog import SkipOptions
from impl.methods.adapter_drop import skip_layers
from impl.registry import apply_method


def randomise(model: torch.nn.Module, method: str) -> None:
    """Unit-scale adapter weights, so skipping an adapter visibly changes the output."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if method in name.split("."):
                p.copy_(0.2 * torch.randn(p.shape, generator=generator))


def generate(model, batch) -> torch.Tensor:
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    return model.generate(**inputs, max_new_tokens=4, do_sample=False)


@invariant("skip_equals_absent")
def skip_equals_absent(ctx: CheckContext, options: SkipOptions) -> str:
    if not (options.encoder or options.decoder):
        raise InvariantViolation("no block to skip: the check would be vacuous")
    args = ctx.method_args
    full = ctx.method_model().model.eval()
    randomise(full, ctx.method_name)
    kept = {
        "encoder_blocks": [i for i in args["encoder_blocks"] if i not in options.encoder],
        "decoder_blocks": [i for i in args["decoder_blocks"] if i not in options.decoder],
    }
    absent = ctx.base_model().eval()
    apply_method(absent, ctx.method_name, {**args, **kept})
    absent_state = absent.state_dict()
    missing = set(absent_state) - set(full.state_dict())
    if missing:
        raise InvariantViolation(f"the reduced model has parameters the full one lacks: {sorted(missing)[:3]}")
    absent.load_state_dict({k: v for k, v in full.state_dict().items() if k in absent_state})
    batch = ctx.batch()
    before = logits(full, batch)
    skipped = skip_layers(full, options.encoder, options.decoder)
    try:
        skipped_logits, skipped_tokens = logits(full, batch), generate(full, batch)
    finally:
        skip_layers(full)
    absent_logits = logits(absent, batch)
    if torch.equal(before, absent_logits):
        raise InvariantViolation("the skipped adapters do not change the output: the check would be vacuous")
    if not torch.equal(skipped_logits, absent_logits):
        difference = (skipped_logits - absent_logits).abs().max().item()
        raise InvariantViolation(f"skipping differs from the model without those adapters by {difference:.3g}")
    if not torch.equal(skipped_tokens, generate(absent, batch)):
        raise InvariantViolation("greedy generation differs between skipping and the model without the adapters")
    if not torch.equal(logits(full, batch), before):
        raise InvariantViolation("restoring the skipped adapters does not restore the output")
    return f"{skipped} adapters skipped: logits and generation bit-identical to the model built without them"
