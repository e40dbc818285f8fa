"""Tokenizers: the real T5 tokenizer for the paper profile, or one trained offline for smoke runs.

The smoke tokenizer is a small BPE model trained in well under a second on the smoke data's text,
with T5's special-token layout (<pad> = 0, </s> = 1, <unk> = 2) and T5's `</s>` appended to every
sequence, wrapped as a transformers `PreTrainedTokenizerFast` through `tokenizer_object=` (a `vocab_file=`
argument would be ignored silently by transformers 5). Not as a `T5TokenizerFast`: saved, that one records
`tokenizer_class: T5Tokenizer`, which `AutoTokenizer.from_pretrained` rebuilds as a unigram model and fails
on the BPE vocabulary; the generic class reloads from `tokenizer.json` as it is. BPE, not unigram: the
`tokenizers` unigram trainer returns a different vocabulary from run to run on the same text, and a smoke
run (and its resume test) must be reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

SPECIALS = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2 as in T5


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerBase:
    """A BPE tokenizer of at most `vocab_size` entries trained on `texts` (the same texts give the same one)."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False)
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    eos = tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")


def load_tokenizer(source: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer of a hub model name or a local folder (t5-base's has 32,100 entries)."""
    return AutoTokenizer.from_pretrained(str(source))
