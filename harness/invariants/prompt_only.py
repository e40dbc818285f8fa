"""`prompt_only`: prompt tuning trains the prompt and nothing else, and generates as its forward pass does.

With P ∈ R^{p×d} the prompt (the parameter of the model's one `EncoderPrompt`), m ∈ {0, 1}^{B×T} the
source mask and [1_p; m] the mask over the p + T encoder states:

1. After AdamW steps with every parameter handed to the optimizer, P changed and every other tensor
   (parameters and buffers; notably the input embedding Prompt tuning-T copied P from) is bit-identical.
2. The decoder's cross-attention uses [1_p; m]: a plain forward `model(input_ids, attention_mask,
   decoder_input_ids)` gives bit for bit the logits of the decoder run on the encoder's output with
   [1_p; m] spelled out here. Non-vacuous: the batch has padding, and with the padding unmasked the logits differ.
3. `model.generate(input_ids, attention_mask, max_new_tokens=k, do_sample=False)` — one encoder call, then
   cached decoding steps, each given the unextended m — returns exactly the tokens of a greedy loop over
   plain forward calls, and logits equal to the loop's at every step (to float32 rounding: cached and
   uncached attention add in different orders).
"""

from __future__ import annotations

import torch
from torch import nn

from harness.invariants.context import CheckContext, InvariantViolation, train_steps
from harness.invariants.registry import invariant
from harness.spec.invariant_catalog import PromptOptions
from impl.layers.prompt import EncoderPrompt

LOGIT_TOLERANCE = 1e-5  # cached vs uncached decoding, max |Δ| / max(1, max |logits|): ~3e-7 measured on t5_tiny
SENSITIVITY = 100  # unmasking the padding must move the logits by ≥ SENSITIVITY × LOGIT_TOLERANCE (~7e-3 measured)


def prompt_name(model: nn.Module, length: int) -> str:
    """The qualified name of the one prompt parameter, (p, d_model)."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, EncoderPrompt)]
    if len(found) != 1:
        raise InvariantViolation(f"expected one EncoderPrompt in the model, found {len(found)}")
    name, module = found[0]
    if tuple(module.prompt.shape) != (length, model.config.d_model):
        raise InvariantViolation(f"the prompt is {tuple(module.prompt.shape)}, expected ({length}, d_model)")
    return f"{name}.prompt"


def named_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer under every name it has (tied tensors under each), detached copies."""
    tensors = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    return {name: tensor.detach().clone() for name, tensor in tensors}


def check_only_the_prompt_trains(ctx: CheckContext, model: nn.Module, prompt: str, steps: int) -> None:
    before = named_tensors(model)
    train_steps(model, ctx.batch(), steps, ctx.spec.training.learning_rate, all_parameters=True)
    after = named_tensors(model)
    changed = sorted(name for name in before if not torch.equal(before[name], after[name]))
    if prompt not in changed:
        raise InvariantViolation(f"after {steps} steps the prompt {prompt} did not change")
    others = [name for name in changed if name != prompt]
    if others:
        raise InvariantViolation(
            f"after {steps} steps {len(others)} tensors besides the prompt changed, e.g. {others[:3]}"
        )


def greedy(model: nn.Module, batch: dict[str, torch.Tensor], steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy decoding by plain forward calls (no cache): tokens (B, 1 + t) and per-step logits (B, t, V).

    As generate: start from decoder_start_token_id, after a row's eos emit pad, stop once every row is done.
    """
    config = model.generation_config
    rows = batch["input_ids"].shape[0]
    tokens = torch.full((rows, 1), config.decoder_start_token_id, dtype=torch.long)  # (B, 1)
    finished = torch.zeros(rows, dtype=torch.bool)
    step_logits = []
    for _ in range(steps):
        output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], decoder_input_ids=tokens)
        last = output.logits[:, -1]  # (B, V)
        step_logits.append(last)
        chosen = torch.where(finished, config.pad_token_id, last.argmax(-1))  # (B,)
        tokens = torch.cat((tokens, chosen[:, None]), dim=1)
        finished |= chosen == config.eos_token_id
        if finished.all():
            break
    return tokens, torch.stack(step_logits, dim=1)


def scaled_difference(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).abs().max() / want.abs().max().clamp_min(1.0)).item()


def check_cross_attention_mask(model: nn.Module, batch: dict[str, torch.Tensor], length: int) -> float:
    """Plain forward = decoder on the encoder states with [1_p; m] spelled out; ≠ with the padding unmasked."""
    ids, mask = batch["input_ids"], batch["attention_mask"]  # (B, T)
    decoder_ids = batch["labels"][:, :3]  # (B, 3)
    plain = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    states = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, p + T, d)
    if states.shape[1] != length + ids.shape[1]:
        raise InvariantViolation(f"the encoder output has {states.shape[1]} positions, expected {length} + T")
    extended = torch.cat((torch.ones(mask.shape[0], length, dtype=mask.dtype), mask), dim=1)  # (B, p + T)

    def decoded(full_mask: torch.Tensor) -> torch.Tensor:
        return model(encoder_outputs=(states,), attention_mask=full_mask, decoder_input_ids=decoder_ids).logits

    want = decoded(extended)
    if plain.shape != want.shape or not torch.equal(plain, want):
        difference = f"{scaled_difference(plain, want):.3g}" if plain.shape == want.shape else "their shape"
        raise InvariantViolation(
            f"the decoder does not attend over the encoder states with the mask [1_p; m]: the plain forward's "
            f"logits differ from those with that mask (by {difference}, relative)"
        )
    unmasked = scaled_difference(decoded(torch.ones_like(extended)), want)
    if not unmasked >= SENSITIVITY * LOGIT_TOLERANCE:
        raise InvariantViolation(
            f"unmasking the batch's padding moves the logits by only {unmasked:.3g}: the mask checks are vacuous"
        )
    return unmasked


def check_generate(model: nn.Module, batch: dict[str, torch.Tensor], new_tokens: int) -> torch.Tensor:
    """generate (cached decoding) = a greedy loop over plain forward calls, tokens exactly."""
    want_tokens, want_logits = greedy(model, batch, new_tokens)
    try:
        output = model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            max_new_tokens=new_tokens,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
        )
    except Exception as error:  # reported with what was raised
        raise InvariantViolation(f"model.generate raised {type(error).__name__}: {error}") from None
    if output.sequences.shape != want_tokens.shape or not torch.equal(output.sequences, want_tokens):
        raise InvariantViolation(
            f"generate returned {output.sequences.tolist()}, the greedy loop over forward calls {want_tokens.tolist()}"
        )
    got_logits = torch.stack(output.logits, dim=1)  # (B, t, V)
    difference = scaled_difference(got_logits, want_logits)
    if not difference <= LOGIT_TOLERANCE:
        raise InvariantViolation(
            f"generate's step logits differ from the greedy loop's by {difference:.3g} (relative): the cached "
            "decoding does not see the encoder states as the forward pass does (cross-attention mask?)"
        )
    return output.sequences


@invariant("prompt_only")
def prompt_only(ctx: CheckContext, options: PromptOptions) -> str:
    length = ctx.method_args.get("prompt_length")
    if not length:
        raise InvariantViolation(f"{ctx.method_name} has no prompt_length argument: not a prompt tuning method")
    model = ctx.method_model().model
    prompt = prompt_name(model, length)
    check_only_the_prompt_trains(ctx, model, prompt, options.steps)
    batch = ctx.batch()
    if not (batch["attention_mask"] == 0).any():
        raise InvariantViolation("the check batch has no padding: a wrong mask could not change the result")
    model.eval()
    with torch.no_grad():
        sensitivity = check_cross_attention_mask(model, batch, length)
        sequences = check_generate(model, batch, options.new_tokens)
    return (
        f"after {options.steps} steps only {prompt} changed (every other tensor bit-identical); the decoder masks "
        f"with [1_p; m] (unmasking the padding would move the logits by {sensitivity:.3g}, relative); "
        f"generate = greedy forward calls over {sequences.shape[1] - 1} new tokens"
    )
