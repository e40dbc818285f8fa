"""One training run (one task, one seed) with the HF Seq2SeqTrainer, optionally through DeepSpeed.

What differs from a stock Trainer:
- checkpoints hold only the trainable tensors (`adapter.safetensors`, via `impl.state`), never the frozen
  backbone; DeepSpeed's own engine checkpoint (for resuming) sits beside it;
- a non-finite loss stops the run at once with `NonFiniteLossError` (the last good checkpoint stays);
- SIGTERM/SIGINT save a resumable checkpoint at the next step and stop (`Interrupted`);
- evaluation generates (greedy, ≤ generation_max_length tokens) and scores with `harness.metrics.compute`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    DataCollatorForSeq2Seq,
    PreTrainedTokenizerBase,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    TrainerCallback,
)

from impl.state import load_trainable, save_trainable

ADAPTER_FILE = "adapter.safetensors"


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class Interrupted(RuntimeError):
    """SIGTERM/SIGINT: a resumable checkpoint was saved and training stopped."""


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
        return self.items[index]

    def token_count(self) -> int:
        return sum(len(item["input_ids"]) + len(item["labels"]) for item in self.items)


class SignalCheckpoint(TrainerCallback):
    """On SIGTERM/SIGINT: save a checkpoint at the end of the current step, then stop training."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        self.received = signum

    def on_step_end(self, args, state, control, **kwargs):
        if self.received is not None:
            control.should_save = True
            control.should_training_stop = True
        return control


class HarnessTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer with trainable-only checkpoints and a stop on a non-finite loss."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(
                f"non-finite training loss ({loss.item()}) at step {self.state.global_step + 1}; "
                f"the last good checkpoint is kept in {self.args.output_dir}"
            )
        return loss

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = Path(output_dir or self.args.output_dir)
        if not self.args.should_save:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        path = output_dir / ADAPTER_FILE
        if path.exists():  # the Trainer re-saves into the same checkpoint folder when it stops on a signal
            path.unlink()
        save_trainable(self.model, path, {"format": "pt"})  # with what the modules add (Intrinsic-SAID's seed)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(str(output_dir))

    def _load_adapter(self, folder: str) -> None:
        load_trainable(self.model, Path(folder) / ADAPTER_FILE)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        self._load_adapter(resume_from_checkpoint)

    def _load_best_model(self) -> None:
        if self.is_deepspeed_enabled:
            super()._load_best_model()
        else:
            self._load_adapter(self.state.best_model_checkpoint)


def decoded(tokenizer: PreTrainedTokenizerBase, ids: np.ndarray) -> list[str]:
    ids = np.where(ids < 0, tokenizer.pad_token_id, ids)
    return [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def metrics_function(
    task: str, tokenizer: PreTrainedTokenizerBase, targets: Sequence[str], grouping: dict[str, list]
) -> Callable:
    """compute_metrics for the Trainer: generated ids → strings → harness.metrics.compute(task, …)."""
    from harness.metrics import compute

    def compute_metrics(prediction) -> dict[str, float]:
        predictions = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return compute(task, decoded(tokenizer, predictions), list(targets), **grouping)

    return compute_metrics


def training_arguments(
    output_dir: Path,
    recipe,
    epochs: int,
    seed: int,
    deepspeed: dict | None,
    bf16: bool,
    use_cpu: bool,
    max_steps: int = -1,
) -> Seq2SeqTrainingArguments:
    """The spec's recipe as Seq2SeqTrainingArguments (AdamW, warm-up then linear decay, clip, generation)."""
    return Seq2SeqTrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        learning_rate=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        adam_epsilon=recipe.adam_epsilon,
        lr_scheduler_type=recipe.lr_scheduler,
        warmup_steps=recipe.warmup_steps,
        max_grad_norm=recipe.max_grad_norm,
        num_train_epochs=epochs,
        max_steps=max_steps,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,  # the best and the last: enough to resume and to report the best
        load_best_model_at_end=True,
        metric_for_best_model="average",
        greater_is_better=True,
        predict_with_generate=True,
        generation_max_length=recipe.generation_max_length,
        generation_num_beams=1,
        seed=seed,
        data_seed=seed,
        bf16=bf16,
        fp16=False,
        use_cpu=use_cpu,
        deepspeed=deepspeed,
        logging_strategy="epoch",  # one mean training loss per epoch, beside its validation scores
        report_to=[],
        disable_tqdm=False,
    )


def make_trainer(model, tokenizer, args, train, validation, compute_metrics) -> HarnessTrainer:
    collator = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100, padding=True)
    trainer = HarnessTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=validation,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
    )
    return trainer


def single_process_env() -> None:
    """DeepSpeed wants a (single-process) distributed environment even on one device."""
    if "RANK" in os.environ:
        return
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
