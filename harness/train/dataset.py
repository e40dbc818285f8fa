"""A split as the Trainer reads it: its texts tokenized once (`TokenizedDataset`), and the loader that passes each
epoch to the global-batch sampler (`EpochDataLoader`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harness.train.batching import Masked


class TokenizedDataset(torch.utils.data.Dataset):
    """Source/target texts tokenized once: input_ids, attention_mask, labels (unpadded lists)."""

    def __init__(self, sources: Sequence[str], targets: Sequence[str], tokenizer, source_length: int) -> None:
        encoded = tokenizer(list(sources), max_length=source_length, truncation=True)
        labels = tokenizer(text_target=list(targets), max_length=source_length, truncation=True)["input_ids"]
        self.items = [
            {"input_ids": ids, "attention_mask": mask, "labels": label}
            for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], labels, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        item = self.items[index]
        if isinstance(index, Masked):  # a filler of the partial last global batch: it adds no loss
            return {**item, "labels": [-100] * len(item["labels"])}
        return item

    def token_count(self) -> int:
        return sum(len(item["input_ids"]) + len(item["labels"]) for item in self.items)


class EpochDataLoader(torch.utils.data.DataLoader):
    """A DataLoader that passes the Trainer's `set_epoch` to its GlobalBatchSampler."""

    def set_epoch(self, epoch: int) -> None:
        self.batch_sampler.set_epoch(epoch)
