"""Prompt tuning-R and -T beyond their specs' invariants: generation, an untouched decoder, the extended
masks, Prompt tuning-T's copy of vocabulary rows 0–99, and the 100 × 768 budget on t5-base."""

from __future__ import annotations

import pytest
import torch

from harness.invariants.context import train_steps
from harness.model.backbone import build_t5
from harness.model.build import build_method_model
from harness.spec.model_choice import load_model_file
from impl.registry import MethodArgumentError, apply_method
from tests.conftest import SPEC_DIR

SPECS = ["prompt_tuning_random", "prompt_tuning_tokens"]


def tiny_model():
    return build_t5(load_model_file(SPEC_DIR / "models" / "t5_tiny.yaml"), device="cpu", seed=0)


def extended(mask: torch.Tensor, length: int) -> torch.Tensor:
    """[1_p; m]: (B, T) -> (B, p + T)."""
    return torch.cat((torch.ones(mask.shape[0], length, dtype=mask.dtype), mask), dim=1)


@pytest.mark.parametrize("spec", SPECS)
def test_generation_works(check_context, spec):
    ctx = check_context(spec)
    model, batch = ctx.method_model().model.eval(), ctx.batch()
    out = model.generate(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=4, do_sample=False
    )
    assert out.dtype == torch.long and out.shape[0] == 2 and 2 <= out.shape[1] <= 1 + 4
    assert torch.all(out[:, 0] == model.generation_config.decoder_start_token_id)


@pytest.mark.parametrize("spec", SPECS)
def test_the_decoder_is_untouched(check_context, spec):
    """Same decoder modules and weights as the base T5; the base decoder on the prompted states gives the logits."""
    ctx = check_context(spec)
    base, model, batch = ctx.base_model().eval(), ctx.method_model().model.eval(), ctx.batch()
    assert [n for n, _ in model.decoder.named_modules()] == [n for n, _ in base.decoder.named_modules()]
    ours, theirs = dict(model.decoder.named_parameters()), dict(base.decoder.named_parameters())
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[n], theirs[n]) for n in ours)
    length = ctx.method_args["prompt_length"]
    with torch.no_grad():
        states = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        assert states.last_hidden_state.shape[1] == length + batch["input_ids"].shape[1]  # (B, p + T, d)
        mask = extended(batch["attention_mask"], length)
        want = base(encoder_outputs=states, attention_mask=mask, labels=batch["labels"]).logits
        got = model(**batch).logits
    assert torch.equal(got, want)


@pytest.mark.parametrize("spec", SPECS)
def test_the_masks_gain_p_ones_in_front(check_context, spec):
    """The encoder's self-attention mask and every decoder call's cross-attention mask are [1_p; m]."""
    ctx = check_context(spec)
    model, batch, new_tokens = ctx.method_model().model.eval(), ctx.batch(), 3
    expected = extended(batch["attention_mask"], ctx.method_args["prompt_length"])  # (B, p + T)
    seen = {"encoder": [], "decoder": []}  # recorded after the prompt's hooks ran (hooks run in order)
    model.encoder.register_forward_pre_hook(
        lambda module, args, kwargs: seen["encoder"].append(kwargs["attention_mask"]), with_kwargs=True
    )
    model.decoder.register_forward_pre_hook(
        lambda module, args, kwargs: seen["decoder"].append(kwargs["encoder_attention_mask"]), with_kwargs=True
    )
    with torch.no_grad():
        model(**batch)
        model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
        )
    assert len(seen["encoder"]) == 2 and len(seen["decoder"]) == 1 + new_tokens
    assert all(torch.equal(mask, expected) for masks in seen.values() for mask in masks)


def test_prompt_tuning_tokens_copies_rows_0_to_99(check_context):
    ctx = check_context("prompt_tuning_tokens")
    model = ctx.method_model().model
    embedding, prompt = model.get_input_embeddings().weight, model.prompt_tuning_tokens.prompt
    assert ctx.method_args["init_vocab_start"] == 0 and prompt.shape == (100, model.config.d_model)
    assert torch.equal(prompt, embedding[0:100])
    assert prompt.untyped_storage().data_ptr() != embedding.untyped_storage().data_ptr()  # a copy
    rows = embedding.detach().clone()
    train_steps(model, ctx.batch(), steps=1, learning_rate=ctx.spec.training.learning_rate)
    assert not torch.equal(prompt, rows[0:100])  # the prompt trains…
    assert torch.equal(embedding, rows)  # …and the rows it was copied from stay put


def test_prompt_tuning_tokens_copies_other_rows_from_another_start():
    model = tiny_model()
    apply_method(model, "prompt_tuning_tokens", {"prompt_length": 10, "init_vocab_start": 7})
    assert torch.equal(model.prompt_tuning_tokens.prompt, model.get_input_embeddings().weight[7:17])


def test_prompt_tuning_tokens_refuses_rows_beyond_the_vocabulary():
    model = tiny_model()  # vocabulary of 512: rows 503..512 do not exist
    with pytest.raises(MethodArgumentError, match=r"init_vocab_start: rows 503\.\.512 must lie in"):
        apply_method(model, "prompt_tuning_tokens", {"prompt_length": 10, "init_vocab_start": 503})


@pytest.mark.parametrize("method", SPECS)
def test_the_prompt_is_100_by_768_on_t5_base(method):
    model_file = load_model_file(SPEC_DIR / "models" / "t5_base.yaml")
    built = build_method_model(method, {"prompt_length": 100}, [f"{method}.prompt"], model_file, device="meta")
    assert built.trainable_params == 100 * 768 == 76_800  # docs/paper.md: 0.034% of 222,882,048
