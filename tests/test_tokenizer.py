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
