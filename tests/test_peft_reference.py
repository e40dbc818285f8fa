"""Differential tests against `peft`: our LoRA, (IA)³ and Prompt tuning-R give peft's logits and trainable count.

For each method and each tiny T5 family (T5 v1.0, T5 v1.1 / Flan-T5, mT5), our model and peft's are built from
the same random base weights; our method's parameters are moved off their init (LoRA's B ≠ 0, (IA)³'s vectors
≠ 1, the prompt redrawn) and copied into peft's by the name mapping written below, never by our code's own
bookkeeping. On a random batch with padding, max |Δlogits| / max |logits| ≤ 1e-6 and the trainable-parameter
counts are equal (and the trainable parameters correspond one to one).

peft is configured to our placement where its default differs, on purpose:

- LoRA: `LoraConfig(r, lora_alpha, target_modules=<our targets>)`; T5's and mT5's default in peft is q, v,
  matched by module name in self- and cross-attention, which is our default too. Scaling α/r (not rsLoRA).
- (IA)³: `IA3Config(target_modules=["k", "v", "wo"], feedforward_modules=["wo"])`: peft's T5 default, but
  peft's mT5 default is k, v, wi_1 (wi_1's output rescaled, no feed-forward module): ours is the paper's
  placement (k, v and wo's input) on every family.
- Prompt tuning-R: `PromptTuningConfig(num_virtual_tokens=p, num_transformer_submodules=1)`. peft's
  sequence-to-sequence default, 2, allocates p more vectors meant for the decoder (2·p·d trainable), which its
  prompt-tuning forward never uses: the logits agree, the count does not
  (`test_peft_s_seq2seq_default_prompt_counts_twice_the_vectors`). Ours is encoder-only, as the paper and the
  released code. peft's random init (N(0, 1)) differs from ours (U(−0.5, 0.5)); the prompt is copied.

Both models are in eval mode (peft's `get_peft_model` leaves train mode), the logits are computed without
autograd, and both bases are frozen: ours by the spec's `trainable` globs, as training does. (With autograd
on, a base of ours left trainable makes torch's attention take another kernel, the position bias requiring
grad: the logits then differ from peft's by up to 1.5e-6 of their scale; frozen, they are bit-identical.)

Each comparison is shown failing (the `*_is_caught` tests) on a deliberately changed scaling, through the
same `assert_matches_peft` the passing tests use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import peft
import pytest
import torch

from harness.invariants.context import CheckContext, logits, relative_error
from harness.model.build import apply_to
from impl.inject import count_trainable
from impl.layers.lora import LoRAUpdate
from impl.layers.prompt import EncoderPrompt
from impl.layers.rescale import Rescale
from tests.conftest import FAMILIES

pytestmark = pytest.mark.filterwarnings(  # peft 0.21 reads a property transformers 5 deprecates
    "ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"
)

TOLERANCE = 1e-6  # max |Δlogits| / max |logits|
PERTURBATION = 0.1  # std of the noise added to each of our trainable parameters before the copy
PEFT_PREFIX = "base_model.model."  # where PeftModelForSeq2SeqLM keeps the T5


def lora_name(name: str, value: torch.Tensor) -> tuple[str, torch.Tensor]:
    """<layer>.lora.weight_a (r, in) -> <layer>.lora_A.default.weight (r, in); weight_b (out, r) -> lora_B."""
    layer, leaf = name.rsplit(".lora.", 1)
    matrix = {"weight_a": "lora_A", "weight_b": "lora_B"}[leaf]
    return f"{PEFT_PREFIX}{layer}.{matrix}.default.weight", value


def ia3_name(name: str, value: torch.Tensor) -> tuple[str, torch.Tensor]:
    """<layer>.ia3.scale -> <layer>.ia3_l.default: (1, in) on wo (its input rescaled), (out, 1) on k and v."""
    layer = name.removesuffix(".ia3.scale")
    on_input = layer.rsplit(".", 1)[-1] == "wo"
    return f"{PEFT_PREFIX}{layer}.ia3_l.default", value[None, :] if on_input else value[:, None]


def prompt_name(name: str, value: torch.Tensor) -> tuple[str, torch.Tensor]:
    """prompt_tuning_random.prompt (p, d) -> prompt_encoder.default.embedding.weight (p, d)."""
    assert name == "prompt_tuning_random.prompt", name
    return "prompt_encoder.default.embedding.weight", value


@dataclass(frozen=True)
class Case:
    """One comparison: our spec with some arguments changed, peft's config for the same placement."""

    spec: str
    to_peft: Callable[[str, torch.Tensor], tuple[str, torch.Tensor]]
    peft_config: Callable[[dict[str, Any]], Any]  # our resolved method args -> peft's config
    changes: dict[str, Any] = field(default_factory=dict)


def lora_config(args: dict[str, Any]):
    return peft.LoraConfig(
        task_type="SEQ_2_SEQ_LM", r=args["rank"], lora_alpha=args["alpha"], target_modules=list(args["targets"]),
        lora_dropout=0.0,  # ours has no LoRA dropout
    )  # fmt: skip


def ia3_config(args: dict[str, Any]):
    return peft.IA3Config(
        task_type="SEQ_2_SEQ_LM",
        target_modules=list(args["targets"]),
        feedforward_modules=list(args["scale_inputs_of"]),
    )


def prompt_config(args: dict[str, Any]):
    return peft.PromptTuningConfig(
        task_type="SEQ_2_SEQ_LM", num_virtual_tokens=args["prompt_length"], num_transformer_submodules=1
    )


LORA = Case("lora", lora_name, lora_config)
LORA_ALPHA_NOT_RANK = Case("lora", lora_name, lora_config, {"rank": 4, "alpha": 16.0})  # α/r = 4, r/α = 1/4
IA3 = Case("ia3", ia3_name, ia3_config)
PROMPT = Case("prompt_tuning_random", prompt_name, prompt_config)
EVERY_PROJECTION = {  # all of T5's dense layers: a plain feed-forward has wi, a gated one wi_0 and wi_1
    family: ("q", "k", "v", "o", "wi_0", "wi_1", "wo") if FAMILIES[family] else ("q", "k", "v", "o", "wi", "wo")
    for family in FAMILIES
}


def our_model(ctx: CheckContext, args: dict[str, Any]) -> torch.nn.Module:
    """The tiny base with our method applied and frozen as its spec says, every trainable parameter moved by
    N(0, PERTURBATION²) (seeded) so no init value (B = 0, l = 1) hides a difference."""
    model = ctx.base_model()
    torch.manual_seed(ctx.method_seed)
    apply_to(model, ctx.method_name, args, ctx.spec.trainable)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for _, parameter in sorted(model.named_parameters()):
            if parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * PERTURBATION)
    return model


def peft_model(ctx: CheckContext, config) -> torch.nn.Module:
    """peft's model of the same tiny base (a fresh copy: get_peft_model changes it in place)."""
    return peft.get_peft_model(ctx.base_model(), config)


def copy_into_peft(ours: torch.nn.Module, theirs: torch.nn.Module, to_peft) -> None:
    """Our trainable parameters into peft's, by the explicit name mapping; the two sets must correspond."""
    mapped = dict(to_peft(name, p.detach()) for name, p in ours.named_parameters() if p.requires_grad)
    trainable = {name: p for name, p in theirs.named_parameters() if p.requires_grad}
    assert mapped.keys() == trainable.keys(), (
        f"trainable sets differ: ours only {sorted(mapped.keys() - trainable.keys())[:3]}, "
        f"peft's only {sorted(trainable.keys() - mapped.keys())[:3]}"
    )
    with torch.no_grad():
        for name, value in mapped.items():
            assert value.shape == trainable[name].shape, (
                f"{name}: ours {tuple(value.shape)}, peft's {tuple(trainable[name].shape)}"
            )
            trainable[name].copy_(value)


def assert_matches_peft(ctx: CheckContext, case: Case, changes: dict[str, Any] | None = None, config=None) -> None:
    """Our method and peft's on the same base and parameters: the same trainable count, logits within TOLERANCE."""
    args = {**ctx.method_args, **case.changes, **(changes or {})}
    ours = our_model(ctx, args)
    theirs = peft_model(ctx, case.peft_config(args) if config is None else config)
    ours_count, theirs_count = count_trainable(ours)[0], theirs.get_nb_trainable_parameters()[0]
    assert ours_count == theirs_count, f"trainable parameters: ours {ours_count:,}, peft's {theirs_count:,}"
    copy_into_peft(ours, theirs, case.to_peft)
    batch = ctx.batch(batch_size=3, source_length=10, target_length=6)  # row 0 padded in its last 2 positions
    want, got = logits(theirs, batch), logits(ours, batch)  # (B, T_target, vocab), eval mode, no grad
    error = relative_error(got, want)
    assert error <= TOLERANCE, f"logits differ from peft's: max |Δ| / max |logits| = {error:.3g} > {TOLERANCE:g}"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    "case", [LORA, LORA_ALPHA_NOT_RANK, IA3, PROMPT], ids=["lora", "lora-r4-alpha16", "ia3", "prompt_tuning_random"]
)
def test_our_method_gives_peft_s_logits(check_context, case, family):
    assert_matches_peft(check_context(case.spec, family), case)


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_on_every_projection_gives_peft_s_logits(check_context, family):
    """Name matching across families: peft's target_modules and ours pick the same layers, wi or wi_0/wi_1."""
    assert_matches_peft(check_context("lora", family), LORA_ALPHA_NOT_RANK, {"targets": EVERY_PROJECTION[family]})


def test_peft_s_seq2seq_default_prompt_counts_twice_the_vectors(check_context):
    """peft's default num_transformer_submodules=2 trains 2·p·d: why the comparison configures 1."""
    ctx = check_context("prompt_tuning_random")
    default = peft.PromptTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=ctx.method_args["prompt_length"])
    with pytest.raises(AssertionError, match=r"trainable parameters: ours 38,400, peft's 76,800"):  # p = 100, d = 384
        assert_matches_peft(ctx, PROMPT, config=default)


def test_peft_on_other_layers_of_the_same_size_is_caught(check_context):
    """peft's LoRA on q, k and ours on q, v: the same count (k and v are alike), other parameters."""
    ctx = check_context("lora")
    other = lora_config({**ctx.method_args, "targets": ("q", "k")})
    sets = r"trainable sets differ: ours only \[\S+SelfAttention\.v\.lora_A.*peft's only \[\S+SelfAttention\.k\.lora_A"
    with pytest.raises(AssertionError, match=sets):
        assert_matches_peft(ctx, LORA, config=other)


def ia3_name_sides_swapped(name: str, value: torch.Tensor) -> tuple[str, torch.Tensor]:
    peft_name, shaped = ia3_name(name, value)
    return peft_name, shaped.T  # (out, 1) <-> (1, in): copy_ would broadcast it silently


def test_a_vector_copied_to_the_wrong_side_is_caught(check_context):
    swapped = Case("ia3", ia3_name_sides_swapped, ia3_config)
    with pytest.raises(AssertionError, match=r"k.ia3_l.default: ours \(1, 128\), peft's \(128, 1\)"):
        assert_matches_peft(check_context("ia3"), swapped)


# --- each comparison catches a changed scaling ------------------------------------------------------------------


def wrap_init(monkeypatch, cls, after: Callable[[Any], None]) -> None:
    """cls.__init__ followed by `after(self)`: a bug built into every module the builder makes."""
    original = cls.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        after(self)

    monkeypatch.setattr(cls, "__init__", init)


def lora_scaling_doubled(monkeypatch):
    wrap_init(monkeypatch, LoRAUpdate, lambda update: setattr(update, "scaling", 2 * update.alpha / update.rank))


def lora_scaling_r_over_alpha(monkeypatch):
    wrap_init(monkeypatch, LoRAUpdate, lambda update: setattr(update, "scaling", update.rank / update.alpha))


def ia3_squared(monkeypatch):
    monkeypatch.setattr(Rescale, "forward", lambda self, x: x * self.scale**2)


def ia3_divided(monkeypatch):
    monkeypatch.setattr(Rescale, "forward", lambda self, x: x / self.scale)


def prompt_doubled(monkeypatch):
    prepend = EncoderPrompt.prepend

    def doubled(self, embeddings, mask):
        prompted, extended = prepend(self, embeddings, mask)  # (B, p + T, d), (B, p + T)
        return torch.cat((2 * prompted[:, : self.length], prompted[:, self.length :]), dim=1), extended

    monkeypatch.setattr(EncoderPrompt, "prepend", doubled)


def prompt_after_input(monkeypatch):
    prepend = EncoderPrompt.prepend

    def appended(self, embeddings, mask):
        prompted, extended = prepend(self, embeddings, mask)  # [P; E(x)] -> [E(x); P], masks alike
        return prompted.roll(-self.length, dims=1), extended.roll(-self.length, dims=1)

    monkeypatch.setattr(EncoderPrompt, "prepend", appended)


BROKEN = [
    (LORA, lora_scaling_doubled),
    (LORA_ALPHA_NOT_RANK, lora_scaling_r_over_alpha),
    (IA3, ia3_squared),
    (IA3, ia3_divided),
    (PROMPT, prompt_doubled),
    (PROMPT, prompt_after_input),
]


@pytest.mark.parametrize("case, bug", BROKEN, ids=[bug.__name__ for _, bug in BROKEN])
def test_a_changed_scaling_is_caught(check_context, monkeypatch, case, bug):
    ctx = check_context(case.spec, "t5_v1_1")
    assert_matches_peft(ctx, case)  # unbroken, it holds
    bug(monkeypatch)
    with pytest.raises(AssertionError, match="logits differ from peft's"):
        assert_matches_peft(ctx, case)
