"""`prompt_extends_input`: prompt tuning changes what the model sees only by prepending p vectors.

Prompt tuning (a method with a `prompt_length` argument p) has no neutral value, so `identity_at_init`
cannot hold; what it may change is fixed instead. The encoder's input grows by exactly p positions, the same
p vectors for every example, the source embeddings stay bit-identical behind the prompt, the encoder output
has p more positions, the decoder's input is bit-identical, masked source positions still cannot influence
the output, and one training step changes the output.

And the whole model equals the paper's concatenation computed by hand on the *base* model (Lester et al.
2021; docs/paper.md, "Prompt tuning-R"): with P the method's `prompt` parameter and E the input embedding,
T5(inputs_embeds = [P; E(x)], attention_mask = [1_p; m]) gives the adapted model's logits (float32, to
`TOLERANCE` relative), which pins the prompt's position, and the mask over it in the encoder and in the
decoder's cross-attention. Called without an attention mask, the model must equal the call with an all-ones
mask (every source position attended, as T5 itself does).
"""

from __future__ import annotations

import torch

from harness.invariants.context import CheckContext, InvariantViolation, logits, relative_error, train_steps
from harness.invariants.registry import NoOptions, invariant

TOLERANCE = 1e-5  # max |logits − reference| / max |reference|: the same float32 operations, maybe reordered


@invariant("prompt_extends_input")
def prompt_extends_input(ctx: CheckContext, options: NoOptions) -> str:
    length = ctx.method_args.get("prompt_length")
    if not length:
        raise InvariantViolation(f"{ctx.method_name} has no prompt_length: this invariant is for prompt tuning")
    return _only_the_encoder_input_grows(ctx, length)


def _observe(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The hidden states entering the first encoder and decoder blocks, the encoder output and the logits."""
    seen: dict[str, torch.Tensor] = {}

    def recorder(key: str):
        def record(module, args, kwargs):
            seen[key] = (args[0] if args else kwargs["hidden_states"]).detach().clone()

        return record

    handles = [
        model.encoder.block[0].register_forward_pre_hook(recorder("encoder_input"), with_kwargs=True),
        model.decoder.block[0].register_forward_pre_hook(recorder("decoder_input"), with_kwargs=True),
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(**batch)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return {**seen, "encoder_output": output.encoder_last_hidden_state, "logits": output.logits}


def _only_the_encoder_input_grows(ctx: CheckContext, length: int) -> str:
    batch = ctx.batch()
    base, model = ctx.base_model(), ctx.method_model().model
    before, seen = _observe(base, batch), _observe(model, batch)
    rows, source = batch["input_ids"].shape
    encoder_input, base_input = seen["encoder_input"], before["encoder_input"]
    if encoder_input.shape[:2] != (rows, source + length):
        raise InvariantViolation(
            f"the encoder input is {tuple(encoder_input.shape[:2])}, expected ({rows}, {source} + {length})"
        )
    if not torch.equal(encoder_input[:, length:], base_input):
        raise InvariantViolation("behind the prompt, the source embeddings are not the base model's bit for bit")
    prompt = encoder_input[:, :length]
    if not torch.equal(prompt, prompt[:1].expand_as(prompt)):
        raise InvariantViolation("the prepended vectors differ between the examples of a batch")
    if seen["encoder_output"].shape[1] != before["encoder_output"].shape[1] + length:
        raise InvariantViolation(
            f"the encoder output has {seen['encoder_output'].shape[1]} positions, "
            f"expected {before['encoder_output'].shape[1]} + {length}"
        )
    if seen["decoder_input"].shape != before["decoder_input"].shape or not torch.equal(
        seen["decoder_input"], before["decoder_input"]
    ):
        raise InvariantViolation("the decoder's input differs from the base model's: the decoder must be untouched")
    if seen["logits"].shape != before["logits"].shape:
        raise InvariantViolation(
            f"logits are {tuple(seen['logits'].shape)}, the base model's {tuple(before['logits'].shape)}"
        )
    masked = batch["attention_mask"] == 0
    changed = {**batch, "input_ids": torch.where(masked, batch["input_ids"] + 1, batch["input_ids"])}
    if not masked.any() or not torch.equal(_observe(model, changed)["logits"], seen["logits"]):
        raise InvariantViolation("changing masked (padded) source tokens changes the output: the mask is misaligned")
    check_concatenation(ctx, base, model, batch, seen["logits"])
    unmasked = {"input_ids": batch["input_ids"], "labels": batch["labels"]}
    if not torch.equal(
        _observe(model, unmasked)["logits"],
        _observe(model, {**unmasked, "attention_mask": torch.ones_like(batch["input_ids"])})["logits"],
    ):
        raise InvariantViolation("called without an attention_mask, the output differs from an all-ones mask")
    train_steps(model, batch, steps=1, learning_rate=ctx.spec.training.learning_rate)
    after = logits(model, batch)
    if torch.equal(after, seen["logits"]):
        raise InvariantViolation("one training step left the output unchanged")
    return (
        f"encoder input {source} → {source + length} positions (source embeddings bit-identical behind the prompt), "
        f"decoder input bit-identical, padding still masked; one step moves the output by "
        f"{(after - seen['logits']).abs().max().item():.3g}"
    )


def check_concatenation(ctx: CheckContext, base, model, batch, got: torch.Tensor) -> None:
    """The adapted logits equal the base T5 on [P; E(x)] with the mask [1_p; m]."""
    prompt = getattr(model, ctx.method_name).prompt.detach()  # (p, d)
    rows = batch["input_ids"].shape[0]
    with torch.no_grad():
        embedded = base.get_input_embeddings()(batch["input_ids"])  # (B, T, d)
        inputs = torch.cat((prompt.expand(rows, -1, -1), embedded), dim=1)  # (B, p + T, d)
        ones = torch.ones(rows, prompt.shape[0], dtype=batch["attention_mask"].dtype)
        mask = torch.cat((ones, batch["attention_mask"]), dim=1)  # (B, p + T)
        want = base.eval()(inputs_embeds=inputs, attention_mask=mask, labels=batch["labels"]).logits
    error = relative_error(got, want)
    if not error <= TOLERANCE:
        raise InvariantViolation(
            f"the logits differ from T5 on [P; E(x)] with the mask [1_p; m] by {error:.3g} (relative): "
            "the prompt is not prepended, or not attended to, as the paper's concatenation"
        )
