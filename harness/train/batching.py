"""The recipe's batch at any scale: one global batch per optimizer step, split over processes and micro-steps.

`training.batch_size` is the *global* batch G, what one optimizer step sees (the paper's 100). With W
data-parallel processes and k accumulation steps, each process runs k micro-batches of G / (W·k) examples
per step; G must divide evenly (`BatchPlan`). `gradient_accumulation_steps` is a memory choice: it never
changes which examples an optimizer step sees, nor the loss it minimises.

The same global batches in the same order, whatever W and k (`GlobalBatchSampler`): epoch e draws one
permutation of the N training examples from (data_seed, e) alone and cuts it into ⌈N / G⌉ global batches,
the last one partial. Global batch b is cut into W·k chunks; micro-step j of process r takes chunk j·W + r.
A chunk of the partial last batch that would be empty holds one *masked* example instead: all its labels
are -100, so it adds nothing to the loss or the gradient, and every process still runs k micro-steps
(DDP needs every process in every backward).

The loss of a step is the token mean over the whole global batch (`token_mean_loss`): each micro-batch
contributes Σ token losses / (target tokens in the global batch), so k micro-batches on W processes sum
(DDP averages over W, the Trainer multiplies by W) to exactly T5's loss on one batch of the same examples.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from harness.errors import SpecError


@dataclass(frozen=True)
class BatchPlan:
    """How a global batch is split: world_size processes × accumulation micro-steps × per_device examples."""

    global_batch: int
    world_size: int
    accumulation: int

    def __post_init__(self) -> None:
        split = self.world_size * self.accumulation
        if self.global_batch % split:
            divisors = [d for d in range(1, self.global_batch + 1) if self.global_batch % d == 0]
            raise SpecError(
                [
                    f"training.batch_size: the global batch {self.global_batch} cannot be split evenly over "
                    f"{self.world_size} process{'es' if self.world_size != 1 else ''} × "
                    f"{self.accumulation} accumulation step{'s' if self.accumulation != 1 else ''} "
                    f"(= {split}); processes × training.gradient_accumulation_steps must divide it: "
                    f"{', '.join(map(str, divisors))}"
                ]
            )

    @property
    def per_device(self) -> int:
        return self.global_batch // (self.world_size * self.accumulation)

    def describe(self) -> dict[str, int]:
        return {
            "world_size": self.world_size,
            "per_device_batch_size": self.per_device,
            "gradient_accumulation_steps": self.accumulation,
            "global_batch_size": self.global_batch,
        }


def steps_per_epoch(examples: int, global_batch: int) -> int:
    """⌈N / G⌉ optimizer steps: the last global batch may be partial, never dropped."""
    return -(-examples // global_batch)


class Masked(int):
    """A sampler index whose example is fed with every label masked (-100): it contributes nothing."""


def epoch_permutation(examples: int, data_seed: int, epoch: int) -> np.ndarray:
    """The order of epoch `epoch`: a function of (data_seed, epoch) only, never of the world size."""
    return np.random.default_rng([data_seed, epoch]).permutation(examples)


class GlobalBatchSampler(torch.utils.data.Sampler[list[int]]):
    """This process's micro-batches (a DataLoader `batch_sampler`), k per global batch, in step order."""

    def __init__(self, examples: int, plan: BatchPlan, rank: int, data_seed: int) -> None:
        if not 0 <= rank < plan.world_size:
            raise ValueError(f"rank {rank} outside world size {plan.world_size}")
        if examples < 1:
            raise ValueError("no training examples")
        self.examples, self.plan, self.rank, self.data_seed = examples, plan, rank, data_seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def global_batches(self) -> list[np.ndarray]:
        order = epoch_permutation(self.examples, self.data_seed, self.epoch)
        size = self.plan.global_batch
        return [order[start : start + size] for start in range(0, self.examples, size)]

    def __iter__(self) -> Iterator[list[int]]:
        plan = self.plan
        chunks_per_batch = plan.world_size * plan.accumulation
        for batch in self.global_batches():
            chunks = np.array_split(batch, chunks_per_batch)  # (W·k,) chunks of ⌊n/(W·k)⌋ or one more
            for micro_step in range(plan.accumulation):
                chunk = chunks[micro_step * plan.world_size + self.rank]
                yield [int(i) for i in chunk] if len(chunk) else [Masked(int(batch[0]))]

    def __len__(self) -> int:
        return steps_per_epoch(self.examples, self.plan.global_batch) * self.plan.accumulation


def token_mean_loss(outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """Σ_tokens CE(logits, label) / (target tokens in the whole global batch), labels -100 ignored.

    logits (B, T, V), labels (B, T). With `num_items_in_batch` None (one batch on its own) it is T5's
    own mean over the batch's target tokens.
    """
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]  # (B, T, V)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # the sum over a global batch in float32 at least
    total = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), labels.reshape(-1).to(logits.device), ignore_index=-100, reduction="sum"
    )  # scalar
    count = labels.ne(-100).sum() if num_items_in_batch is None else num_items_in_batch
    return total / torch.as_tensor(count, device=total.device).clamp(min=1)
