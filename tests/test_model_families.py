"""Every T5 family by model file, local folder or hub id: T5 v1.0, T5 v1.1 / Flan-T5 and mT5, counted with
their own lm_head when untied, loaded pretrained without being tied again.

The expected totals come from `t5_total`, the parameter count written out from the shapes (embedding,
attention, feed-forward, layer norms, relative bias), checked first against the public counts.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from harness.cli import EXIT_OK, main
from harness.errors import ModelError
from harness.model.backbone import build_t5, load_pretrained
from harness.spec.model_choice import load_model_file, resolve_model, stored_lm_head
from harness.spec.model_files import ModelFile, T5Architecture
from impl.inject import count_trainable
from tests.conftest import SPEC_DIR

FULL = SPEC_DIR / "full_finetune.yaml"


def t5_total(architecture: T5Architecture) -> int:
    """Parameters of a T5-family model from its shapes, the lm_head counted once more when untied.

    Per encoder block: self-attention q, k, v, o (4·k·h·d_kv), feed-forward wi (wi_0 and wi_1 when gated)
    and wo, 2 layer norms; per decoder block cross-attention and a third layer norm besides; the
    relative-attention bias (buckets × heads) in block 0 of each stack; 2 final layer norms.
    """
    a = architecture
    k, inner = a.d_model, a.num_heads * a.d_kv
    attention = 4 * k * inner
    feed_forward = (3 if a.feed_forward_proj.startswith("gated") else 2) * k * a.d_ff
    bias = a.relative_attention_num_buckets * a.num_heads
    encoder = a.num_layers * (attention + feed_forward + 2 * k) + bias
    decoder = a.num_decoder_layers * (2 * attention + feed_forward + 3 * k) + bias
    embeddings = a.vocab_size * k * (1 if a.tie_word_embeddings else 2)
    return embeddings + encoder + decoder + 2 * k


HUB_CONFIGS = {  # the config.json of the hub checkpoints, as the hub serves them (architecture keys and more)
    "google-t5/t5-base": {
        "architectures": ["T5ForConditionalGeneration"], "d_ff": 3072, "d_kv": 64, "d_model": 768,
        "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1, "initializer_factor": 1.0,
        "is_encoder_decoder": True, "layer_norm_epsilon": 1e-06, "model_type": "t5", "n_positions": 512,
        "num_heads": 12, "num_layers": 12, "output_past": True, "pad_token_id": 0,
        "relative_attention_num_buckets": 32, "vocab_size": 32128,
    },
    "google/flan-t5-base": {
        "architectures": ["T5ForConditionalGeneration"], "d_ff": 2048, "d_kv": 64, "d_model": 768,
        "decoder_start_token_id": 0, "dense_act_fn": "gelu_new", "dropout_rate": 0.1, "eos_token_id": 1,
        "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": True,
        "is_gated_act": True, "layer_norm_epsilon": 1e-06, "model_type": "t5", "n_positions": 512,
        "num_decoder_layers": 12, "num_heads": 12, "num_layers": 12, "output_past": True, "pad_token_id": 0,
        "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32, "tie_word_embeddings": False,
        "transformers_version": "4.23.1", "use_cache": True, "vocab_size": 32128,
    },
    "google/mt5-base": {
        "architectures": ["MT5ForConditionalGeneration"], "d_ff": 2048, "d_kv": 64, "d_model": 768,
        "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "gated-gelu",
        "initializer_factor": 1.0, "is_encoder_decoder": True, "layer_norm_epsilon": 1e-06, "model_type": "mt5",
        "num_decoder_layers": 12, "num_heads": 12, "num_layers": 12, "output_past": True, "pad_token_id": 0,
        "relative_attention_num_buckets": 32, "tie_word_embeddings": False, "tokenizer_class": "T5Tokenizer",
        "transformers_version": "4.10.0.dev0", "use_cache": True, "vocab_size": 250112,
    },
}  # fmt: skip
PUBLIC_TOTALS = {  # the hub checkpoints' parameter counts (untied lm_heads included)
    "google-t5/t5-base": 222_903_552,  # 32,128 rows, tied: the released code resizes it to 222,882,048
    "google/flan-t5-base": 247_577_856,
    "google/mt5-base": 582_401_280,
}


def config_folder(tmp_path: Path, hub_id: str, **changes) -> Path:
    folder = tmp_path / hub_id.replace("/", "--")
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({**HUB_CONFIGS[hub_id], **changes}), encoding="utf-8")
    return folder


def model_file(name: str) -> ModelFile:
    return load_model_file(SPEC_DIR / "models" / f"{name}.yaml")


def budget_json(capsys, *argv: str) -> dict:
    assert main(["budget", *argv, "--json"]) == EXIT_OK
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("hub_id", HUB_CONFIGS)
def test_the_reference_count_gives_the_public_totals(tmp_path, hub_id):
    architecture = resolve_model(FULL, str(config_folder(tmp_path, hub_id))).architecture
    assert t5_total(architecture) == PUBLIC_TOTALS[hub_id]


@pytest.mark.parametrize("hub_id", HUB_CONFIGS)
def test_a_folder_with_only_config_json_is_counted_exactly(tmp_path, capsys, hub_id):
    report = budget_json(capsys, str(FULL), "--model", str(config_folder(tmp_path, hub_id)))
    assert report["trainable_params"] == report["total_params"] == report["base_params"] == PUBLIC_TOTALS[hub_id]


def test_the_tied_count_of_an_untied_model_is_what_transformers_alone_gives():
    """Why the harness unties: transformers 5 builds Flan-T5 and mT5 tied, 24.7 M and 192 M parameters short."""
    from transformers import MT5Config, MT5ForConditionalGeneration, T5Config, T5ForConditionalGeneration

    flan = {k: v for k, v in HUB_CONFIGS["google/flan-t5-base"].items() if k != "architectures"}
    mt5 = {k: v for k, v in HUB_CONFIGS["google/mt5-base"].items() if k != "architectures"}
    with torch.device("meta"):
        tied_flan = T5ForConditionalGeneration(T5Config(**flan))
        tied_mt5 = MT5ForConditionalGeneration(MT5Config(**mt5))
    assert count_trainable(tied_flan)[1] == 222_903_552 and count_trainable(tied_mt5)[1] == 390_315_264


BUNDLED = ["t5_small", "t5_base", "t5_large", "t5_v1_1_base", "flan_t5_small", "flan_t5_base", "flan_t5_large",
           "mt5_small", "mt5_base", "t5_tiny", "t5_tiny_deep", "t5_tiny_v1_1", "mt5_tiny"]  # fmt: skip


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_model_file_is_counted_as_its_shapes_say(name):
    built = build_t5(model_file(name), device="meta")
    assert count_trainable(built)[1] == t5_total(model_file(name).architecture)


def test_the_bundled_files_are_the_hub_configs():
    """flan_t5_base and mt5_base state what the hub's config.json says (t5_base: the released code's resize)."""
    for name, hub_id in (("flan_t5_base", "google/flan-t5-base"), ("mt5_base", "google/mt5-base")):
        bundled = model_file(name)
        assert bundled.pretrained == hub_id
        stated = HUB_CONFIGS[hub_id]
        for key, value in bundled.architecture.model_dump().items():
            assert stated.get(key, value) == value, (name, key)
    assert (
        model_file("t5_base").architecture.vocab_size == 32_100 == HUB_CONFIGS["google-t5/t5-base"]["vocab_size"] - 28
    )


@pytest.mark.parametrize(
    "name, cls, scaled",
    [("t5_tiny", "T5ForConditionalGeneration", True), ("t5_tiny_v1_1", "T5ForConditionalGeneration", False),
     ("mt5_tiny", "MT5ForConditionalGeneration", None)],
)  # fmt: skip
def test_each_family_gets_its_class_and_its_decoder_scaling(name, cls, scaled):
    model = build_t5(model_file(name), device="meta")
    assert type(model).__name__ == cls
    assert getattr(model.config, "scale_decoder_outputs", None) is scaled  # mT5 never scales
    assert (model.lm_head.weight is model.shared.weight) is model_file(name).architecture.tie_word_embeddings


@pytest.mark.parametrize("name", ["t5_tiny_v1_1", "mt5_tiny"])
def test_an_untied_lm_head_stays_untied(name):
    model = build_t5(model_file(name), device="cpu", seed=0)
    assert model.encoder.embed_tokens.weight is model.shared.weight is model.decoder.embed_tokens.weight
    assert not torch.equal(model.lm_head.weight, model.shared.weight)
    std = model.lm_head.weight.std().item()  # drawn N(0, 1) as transformers draws an untied T5 lm_head
    assert 0.95 < std < 1.05, std
    model.tie_weights()
    copied = copy.deepcopy(model)
    copied.resize_token_embeddings(500)  # resizing calls tie_weights() again
    for each in (model, copied):
        assert each.lm_head.weight is not each.shared.weight
        assert each.encoder.embed_tokens.weight is each.shared.weight
    assert copied.lm_head.weight.shape == copied.shared.weight.shape == (500, 384)
    assert torch.equal(copied.lm_head.weight, model.lm_head.weight[:500])


def test_a_hub_id_is_read_from_the_local_cache(tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants

    snapshot = tmp_path / "hub" / "models--google--flan-t5-base" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(HUB_CONFIGS["google/flan-t5-base"]), encoding="utf-8")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    report = budget_json(capsys, str(FULL), "--model", "google/flan-t5-base")
    assert report["model"] == "google/flan-t5-base" and report["total_params"] == 247_577_856


# --- the methods on other families ------------------------------------------------------------------------------

# On Flan-T5-base (k 768, d_ff 2048, 12 + 12 blocks, 62 layer norms as t5-base) the adapter family counts
# what it counts on t5-base: its modules see only k, d and the sites. BitFit adds wi_1's bias and its
# lm_head bias spans the vocabulary: encoder block 3·768 + 768 + 2·2,048 + 768 + 2·768 = 9,472 × 12 =
# 113,664; decoder block 6·768 + 2·768 + 2·2,048 + 768 + 3·768 = 13,312 × 12 = 159,744; + V.
# Intrinsic-SAID trains d = 20,000; prompt tuning 100 × 768; full fine-tuning everything. LoRA (q, v of 72
# attentions, 768 → 768, r = 8) counts 72 × 8·(768 + 768) = 884,736 as on t5-base; (IA)³ sees the gated
# d_ff = 2,048 through wo's input: 12·(2·768 + 2,048) + 12·(4·768 + 2,048) = 43,008 + 61,440 = 104,448.
SAME_AS_T5_BASE = {
    "adapter": 1_855_104, "pfeiffer_adapter": 951_360, "adapter_drop": 1_101_984, "low_rank_adapter": 161_664,
    "phm_adapter": 398_976, "compacter": 161_728, "compacter_pp": 104_704, "prompt_tuning_random": 76_800,
    "prompt_tuning_tokens": 76_800, "intrinsic_said": 20_000, "lora": 884_736, "ia3": 104_448,
}  # fmt: skip
FAMILY_BUDGETS = {
    "flan_t5_base": {**SAME_AS_T5_BASE, "bitfit": 113_664 + 159_744 + 32_128, "full_finetune": 247_577_856},
    "mt5_base": {**SAME_AS_T5_BASE, "bitfit": 113_664 + 159_744 + 250_112, "full_finetune": 582_401_280},
}


@pytest.mark.parametrize("model", FAMILY_BUDGETS)
def test_every_method_on_flan_t5_and_mt5(capsys, model):
    assert main(["budget", "--all", "--model", model, "--json"]) == EXIT_OK
    table = json.loads(capsys.readouterr().out)["specs"]
    assert {name: row["trainable_params"] for name, row in table.items()} == FAMILY_BUDGETS[model]
    assert {row["base_params"] for row in table.values()} == {FAMILY_BUDGETS[model]["full_finetune"]}


def test_a_method_that_does_not_fit_a_model_says_why_and_what_to_set(capsys):
    assert main(["ls", "--model", "flan_t5_small"]) == EXIT_OK
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "does not apply: method.args.encoder_blocks: encoder has blocks 0..7; got [8, 9, 10, 11]" in rows[
        "adapter_drop"]  # fmt: skip
    assert "does not apply: method.args.n: 12 must divide d_model=512 and the bottleneck d=16" in rows["phm_adapter"]
    assert "the n that divide both: 1, 2, 4, 8, 16" in rows["phm_adapter"]
    assert "trainable = " in rows["compacter"]  # n = 4 divides 16: Compacter applies


def test_the_suggested_setting_then_applies(capsys):
    report = budget_json(capsys, str(SPEC_DIR / "phm_adapter.yaml"), "--model", "flan_t5_small",
                         "--set", "method.args.n=8")  # fmt: skip
    # PHM with n = 8 on k 512, d 16, 8 + 8 blocks: 4·16·(512·16/8 + 8³) = 64·1,536 = 98,304; biases
    # 32 adapters × (16 + 512) = 16,896; layer norms (8·2 + 8·3 + 2) × 512 = 21,504.
    assert report["trainable_params"] == 98_304 + 16_896 + 21_504


# --- pretrained checkpoints ------------------------------------------------------------------------------------------


def saved_checkpoint(folder: Path, name: str, seed: int = 0, **architecture) -> torch.nn.Module:
    """A tiny pretrained-like folder: weights by save_pretrained (transformers 5 writes tie_word_embeddings:
    true even for an untied model) and a tokenizer."""
    from harness.data.tokenizer import train_tokenizer

    base = model_file(name)
    changed = base.model_copy(update={"architecture": base.architecture.model_copy(update=architecture)})
    model = build_t5(changed, device="cpu", seed=seed)
    model.save_pretrained(folder)
    train_tokenizer(["a tiny corpus for a tiny tokenizer", "entailment not_entailment"], 300).save_pretrained(folder)
    return model


def test_a_checkpoint_saved_by_transformers_5_is_read_as_untied(tmp_path):
    saved = saved_checkpoint(tmp_path / "flan", "t5_tiny_v1_1")
    assert json.loads((tmp_path / "flan" / "config.json").read_text())["tie_word_embeddings"] is True
    assert stored_lm_head(tmp_path / "flan") is True
    resolved = resolve_model(FULL, str(tmp_path / "flan"))
    assert resolved.architecture == model_file("t5_tiny_v1_1").architecture
    model, tokenizer = load_pretrained(resolved, resolved.pretrained)
    assert model.lm_head.weight is not model.shared.weight and len(tokenizer) <= 300
    for name, tensor in saved.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert count_trainable(model)[1] == t5_total(resolved.architecture)


def test_a_larger_vocabulary_is_resized_to_the_model_file_and_stays_untied(tmp_path):
    saved = saved_checkpoint(tmp_path / "big", "t5_tiny_v1_1", vocab_size=600)
    model, _ = load_pretrained(model_file("t5_tiny_v1_1"), pretrained=str(tmp_path / "big"))
    assert model.shared.weight.shape == model.lm_head.weight.shape == (512, 384)
    assert model.lm_head.weight is not model.shared.weight
    assert torch.equal(model.lm_head.weight, saved.lm_head.weight[:512])
    assert torch.equal(model.shared.weight, saved.shared.weight[:512])


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    saved_checkpoint(tmp_path / "other", "t5_tiny_v1_1", d_ff=256)
    with pytest.raises(ModelError) as raised:
        load_pretrained(model_file("t5_tiny_v1_1"), pretrained=str(tmp_path / "other"))
    assert raised.value.errors == [f"{tmp_path / 'other'}: config.json: differs from t5_tiny_v1_1 in d_ff (256; "
                                   "t5_tiny_v1_1 has 512)"]  # fmt: skip


def test_a_tied_checkpoint_is_refused_for_an_untied_model_file(tmp_path):
    saved_checkpoint(tmp_path / "tied", "t5_tiny_v1_1", tie_word_embeddings=True)
    with pytest.raises(ModelError) as raised:
        load_pretrained(model_file("t5_tiny_v1_1"), pretrained=str(tmp_path / "tied"))
    assert "differs from t5_tiny_v1_1 in tie_word_embeddings (True; t5_tiny_v1_1 has False)" in raised.value.errors[0]


def test_a_safetensors_file_that_is_not_one_is_one_line(tmp_path):
    folder = config_folder(tmp_path, "google/flan-t5-base")
    (folder / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(ModelError) as raised:
        resolve_model(FULL, str(folder))
    size = int.from_bytes(b"\xff" * 8, "little")
    assert raised.value.errors == [
        f"{folder / 'model.safetensors'}: (top level): not a safetensors file (header of {size:,} bytes)"
    ]


def test_data_shows_the_examples_as_a_models_tokenizer_sees_them(tmp_path, capsys):
    from transformers import AutoTokenizer

    saved_checkpoint(tmp_path / "flan", "t5_tiny_v1_1")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "flan")
    capsys.readouterr()  # what saving logged (DeepSpeed's accelerator line) is not the command's output
    argv = ["data", "rte", "--toy", "--limit", "3", "--model", str(tmp_path / "flan"), "--source-length", "20"]
    assert main([*argv, "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    for example in report["examples"]:
        assert example["source_tokens"] == len(tokenizer(example["source"])["input_ids"])
        assert example["target_tokens"] == len(tokenizer(example["target"])["input_ids"])
    assert main(["data", "rte", "--toy", "--split", "validation", "--limit", "100000", "--json"]) == EXIT_OK
    validation = json.loads(capsys.readouterr().out)["examples"]
    longer = sum(len(tokenizer(e["source"])["input_ids"]) > 20 for e in validation)
    assert report["tokens"]["truncated"]["validation"] == longer > 0


def test_data_with_a_model_that_has_no_tokenizer_is_one_line(capsys):
    assert main(["data", "rte", "--toy", "--model", "t5_tiny"]) == 2
    assert capsys.readouterr().err.startswith("--model: t5_tiny is a random architecture with no tokenizer")


def toy_data_dir(folder: Path) -> Path:
    from harness.data.toy import toy_rows

    (folder / "rte").mkdir(parents=True)
    for split, n in (("train", 40), ("validation", 20)):
        lines = [json.dumps(row) for row in toy_rows("rte", split, n)]
        (folder / "rte" / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


SHORT = ["--tasks", "rte", "--epochs", "1", "--deepspeed", "none", "--set", "training.batch_size=10",
         "--set", "training.warmup_steps=1", "--set", "training.generation_max_length=4"]  # fmt: skip


@pytest.mark.parametrize("how", ["--model DIR", "--model FILE --pretrained DIR"])
def test_a_paper_run_trains_an_untied_checkpoint_as_it_is(tmp_path, capsys, how):
    """The paper profile on a Flan-T5-like folder: counted, loaded untied (a larger vocabulary resized to the
    model file's), trained, recorded as another model than the spec's."""
    saved_checkpoint(tmp_path / "flan", "t5_tiny_v1_1", vocab_size=600 if "FILE" in how else 512)
    model = ["--model", str(tmp_path / "flan")]
    if "FILE" in how:
        model = ["--model", "t5_tiny_v1_1", "--pretrained", str(tmp_path / "flan")]
    out = tmp_path / "out"
    argv = ["run", str(SPEC_DIR / "compacter_pp.yaml"), "--profile", "paper", *model, "--data-dir",
            str(toy_data_dir(tmp_path / "data")), "--output-dir", str(out), *SHORT]  # fmt: skip
    assert main(argv) == EXIT_OK  # trained; not compared with the paper (another model)
    results = json.loads((out / "results.json").read_text())
    tiny = model_file("t5_tiny_v1_1").architecture
    assert results["model"]["source"] == model[1]
    assert results["budget"]["base_params"] == t5_total(tiny)
    assert "the model differs from t5_base in vocab_size (512, not 32100)" in results["not_comparable_reason"]
    assert "tie_word_embeddings (False, not True)" in results["not_comparable_reason"]
    import harness

    loaded, _ = harness.load(out / "rte" / "seed42" / "best")  # the recorded checkpoint, resized and untied again
    assert loaded.lm_head.weight is not loaded.shared.weight and loaded.shared.weight.shape == (512, 384)
    assert json.loads((out / "rte" / "seed42" / "best" / "harness.json").read_text())["pretrained"] == str(
        tmp_path / "flan"
    )


def test_check_on_another_family_keeps_the_budget_on_the_specs_model(capsys):
    assert main(["check", str(SPEC_DIR / "bitfit.yaml"), "--model", "mt5_tiny", "--only", "budget", "placement"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bitfit: 2 invariants on mt5_tiny") and "PASS budget" in out and "PASS placement" in out
