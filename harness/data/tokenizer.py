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


# The JSON files `AutoTokenizer.from_pretrained` reads from a folder, read first as any JSON the harness did not
# just write (`harness.inputs.read_json`): transformers parses them with Python's recursive `json` (a deeply
# nested file is a RecursionError), calls `.get` on them (a list is an AttributeError) and opens them blindly (a
# pipe blocks forever). mT5's tokenizer.json, the largest of the T5 family, is 16 MB.
TOKENIZER_JSON = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
MAX_TOKENIZER_BYTES = 256 << 20


def load_tokenizer(source: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer of a hub model name or a local folder (t5-base's has 32,100 entries).

    A folder's files are checked before transformers opens them; whatever transformers still refuses (it raises
    many kinds of errors: ValueError, OSError, JSONDecodeError, Rust `Exception`s) is one ModelError line naming
    the folder, and so is a tokenizer without the pad and end-of-sequence tokens that batching and generation
    need."""
    from harness.errors import ModelError

    folder = Path(source).expanduser()
    if folder.is_dir():
        check_tokenizer_folder(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source))
    except Exception as error:  # at the load site: every kind transformers raises for a broken tokenizer
        why = " ".join(str(error).split())[:300] or type(error).__name__
        raise ModelError([f"{source}: tokenizer: cannot load it ({why})"]) from None
    for role in ("pad", "eos"):
        if getattr(tokenizer, f"{role}_token_id", None) is None:
            raise ModelError([f"{source}: tokenizer: no {role} token (tokenizer_config.json {role}_token); a T5 "
                             "tokenizer has <pad> and </s>"])  # fmt: skip
    return tokenizer


def check_tokenizer_folder(folder: Path) -> None:
    """Every file of the folder a regular one (a pipe among them would block whatever lists and opens it), and
    each tokenizer JSON file bounded, UTF-8, of bounded nesting and a JSON object; one ModelError line each."""
    from harness.errors import InputError, ModelError
    from harness.inputs import present, read_json, regular_file, where

    try:
        for entry in sorted(folder.iterdir()):
            if not entry.is_dir():
                regular_file(entry, "file of the tokenizer's folder")
        for name in TOKENIZER_JSON:
            path = folder / name
            if not present(path):
                continue
            if not isinstance(read_json(path, MAX_TOKENIZER_BYTES, name), dict):
                raise ModelError([where(path, f"expected a JSON object, as transformers writes {name}")])
    except InputError as error:
        raise ModelError(error.errors) from None
    except OSError as error:
        raise ModelError([where(folder, f"cannot list the tokenizer's folder: {error.strerror or error}")]) from None
