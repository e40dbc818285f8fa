"""The smoke tokenizer: T5's special-token layout, and the same vocabulary every time it is trained."""

from __future__ import annotations

from harness.data.tokenizer import train_tokenizer

TEXTS = [f"premise: the cat {i % 5} sat on mat {i * 7 % 11} hypothesis: zebra{i % 17} ran" for i in range(300)]


def test_training_twice_on_the_same_text_gives_the_same_tokenizer():
    # the unigram trainer of `tokenizers` failed this: its vocabulary changed from call to call
    first, second = (train_tokenizer(TEXTS, 120) for _ in range(2))
    assert first.get_vocab() == second.get_vocab()
    assert first(TEXTS[:20])["input_ids"] == second(TEXTS[:20])["input_ids"]


def test_t5_special_tokens_and_eos_appended():
    tokenizer = train_tokenizer(TEXTS, 120)
    assert [tokenizer.convert_ids_to_tokens(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    ids = tokenizer("the cat sat")["input_ids"]
    assert ids[-1] == 1 and 1 not in ids[:-1]
    assert tokenizer.decode(tokenizer("1")["input_ids"], skip_special_tokens=True) == "1"


def test_a_saved_smoke_tokenizer_loads_with_autotokenizer(tmp_path):
    """What a run saves beside its checkpoints loads back as the same tokenizer (ids, specials, decoding)."""
    from transformers import AutoTokenizer

    texts = ["premise: the cat sat. hypothesis: a cat sat.", "entailment", "not_entailment"]
    tokenizer = train_tokenizer(texts * 3, 64)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert len(loaded) == len(tokenizer)
    assert (loaded.pad_token_id, loaded.eos_token_id, loaded.unk_token_id) == (0, 1, 2)
    for text in texts:
        assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
        assert loaded(text)["input_ids"][-1] == 1  # </s> appended
    ids = tokenizer(texts[0])["input_ids"]
    assert loaded.decode(ids, skip_special_tokens=True) == tokenizer.decode(ids, skip_special_tokens=True)
