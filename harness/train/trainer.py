"""The HF Seq2SeqTrainer as a run uses it (`HarnessTrainer`), its arguments from the recipe, and its scorer.

What differs from a stock Trainer:
- the recipe's batch is the global batch per optimizer step at any world size (`harness.train.batching`): the
  same global batches in the same order, the loss the token mean over the whole global batch;
- every dropout module runs at the recipe's rate (`harness.train.run_model.set_dropout`);
- evaluation generates greedily (≤ generation_max_length tokens) over each example exactly once, in order,
  sharded over the processes (`harness.train.evaluation`), and scores with `harness.data.metrics.compute`;
- checkpoints hold only the trainable tensors (`adapter.safetensors`, via `impl.state`), never the frozen
  backbone, and what resuming needs as safetensors/JSON (`harness.train.checkpoint_state`: no pickle is ever
  loaded but DeepSpeed's own engine files, weights-only), sealed and verified by `harness.train.checkpoint`;
- a signal during an evaluation stops it after the current batch; the checkpoint of that epoch's last step
  is saved, and `--resume` evaluates that epoch first;
- a non-finite loss stops the run at once with `NonFiniteLossError` (the last good checkpoint stays);
- SIGTERM/SIGINT save a resumable checkpoint at the next step and stop (`harness.train.signals`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from harness.errors import OutputDirError
from harness.model.record import ADAPTER_FILE, CheckpointRecord, write_record
from harness.spec.fidelity import Fidelity
from harness.train import checkpoint, checkpoint_state
from harness.train.batching import BatchPlan, GlobalBatchSampler, steps_per_epoch, token_mean_loss
from harness.train.dataset import EpochDataLoader
from harness.train.evaluation import EvaluationStopped, predict_all
from harness.train.signals import SignalCheckpoint
from impl.state import load_trainable, module_metadata, save_trainable

logger = logging.getLogger(__name__)
Scorer = Callable[[list[str]], dict[str, float]]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class HarnessTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer with the global-batch sampler, the token-mean loss, sharded generation, trainable-only
    checkpoints and a stop on a non-finite loss."""

    def __init__(
        self, *args, batch_plan: BatchPlan, eval_batch_size: int, scorer: Scorer,
        record: CheckpointRecord | None = None, **kwargs,
    ) -> None:  # fmt: skip
        super().__init__(*args, compute_loss_func=token_mean_loss, **kwargs)
        self.record = record  # written beside every checkpoint's tensors (harness.model.record) when given
        if self.args.world_size != batch_plan.world_size or self.args.gradient_accumulation_steps != (
            batch_plan.accumulation
        ):
            raise RuntimeError(f"the Trainer runs {self.args.world_size} processes × "
                               f"{self.args.gradient_accumulation_steps} steps, the plan {batch_plan}")  # fmt: skip
        self.batch_plan, self.eval_batch_size, self.scorer = batch_plan, eval_batch_size, scorer
        self.validation_predictions: dict[int, list[str]] = {}  # epoch -> predictions
        self.signals = SignalCheckpoint()
        self.add_callback(self.signals)

    def get_train_dataloader(self) -> torch.utils.data.DataLoader:
        sampler = GlobalBatchSampler(
            len(self.train_dataset), self.batch_plan, self.args.process_index, self.args.data_seed
        )
        return EpochDataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=self.data_collator)

    def predictions(self, dataset) -> list[str]:
        """Greedy generations for every example of `dataset`, in order, on every process; EvaluationStopped
        after the current batch once any process received a signal."""
        return predict_all(
            self.model, dataset, self.processing_class, self.eval_batch_size, self.args.generation_max_length,
            rank=self.args.process_index, world_size=self.args.world_size,
            autocast=self.autocast_smart_context_manager, should_stop=lambda: self.signals.stop_everywhere(self.args),
        )  # fmt: skip

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval", **gen_kwargs):
        """The validation scores of the current weights (called by the Trainer every epoch)."""
        predictions = self.predictions(self.eval_dataset if eval_dataset is None else eval_dataset)
        self.validation_predictions[round(self.state.epoch or 0)] = predictions
        metrics = {f"{metric_key_prefix}_{key}": value for key, value in self.scorer(predictions).items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(
                f"non-finite training loss ({loss.item()}) at step {self.state.global_step + 1}; "
                f"the last good checkpoint is kept in {self.args.output_dir}"
            )
        return loss

    def _maybe_log_save_evaluate(self, tr_loss, grad_norm, model, trial, *args, **kwargs) -> None:
        try:
            super()._maybe_log_save_evaluate(tr_loss, grad_norm, model, trial, *args, **kwargs)
        except EvaluationStopped:  # the epoch's last step is saved unevaluated: --resume evaluates it first
            self.control.should_training_stop = True
            self._save_checkpoint(model, trial)

    def _checkpoint_folder(self, trial) -> Path:
        return Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"

    def _save_checkpoint(self, model, trial) -> None:
        """The Trainer's checkpoint, sealed by a manifest once every process has written its files."""
        folder = self._checkpoint_folder(trial)
        if self.args.should_save:  # re-saved into the same folder (a signal): unsealed until complete again
            (folder / checkpoint.MANIFEST).unlink(missing_ok=True)
        super()._save_checkpoint(model, trial)
        self.accelerator.wait_for_everyone()
        if self.args.should_save and folder.is_dir():
            checkpoint.seal(folder)
        self.accelerator.wait_for_everyone()

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        folder = Path(output_dir)
        if self.is_deepspeed_enabled:  # its engine files: the trainable tensors and the optimizer, no backbone
            with checkpoint_state.trainable_engine_state(self.model_wrapped):
                self.model_wrapped.save_checkpoint(output_dir, exclude_frozen_parameters=True)
        elif self.args.should_save:
            checkpoint_state.save_optimizer(self.optimizer, folder)
        if self.args.should_save:
            checkpoint_state.save_scheduler(self.lr_scheduler, folder)

    def _rng_rank(self) -> int | None:
        """Which process's random state a checkpoint file holds (None: the only one)."""
        return None if self.args.world_size == 1 else self.args.process_index

    def _save_rng_state(self, output_dir: str) -> None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)  # process 0 may not have created it yet
        checkpoint_state.save_rng(Path(output_dir), self._rng_rank())

    def _load_rng_state(self, resume_from_checkpoint: str | None) -> None:
        if resume_from_checkpoint is None:
            return
        folder = Path(resume_from_checkpoint)
        with checkpoint.reading(folder):
            if not checkpoint_state.load_rng(folder, self._rng_rank()):
                logger.warning("%s holds no random state for this process: saved at another world size", folder)

    def _load_optimizer_and_scheduler(self, resume_from_checkpoint: str | None) -> None:
        if resume_from_checkpoint is None:
            return
        folder = Path(resume_from_checkpoint)
        with checkpoint.reading(folder):
            if not self.is_deepspeed_enabled:  # DeepSpeed's engine restored its optimizer with the model
                checkpoint_state.load_optimizer(self.optimizer, folder)
            checkpoint_state.load_scheduler(self.lr_scheduler, folder)

    def _init_training_state(self, max_steps, steps_per_epoch, epochs, resume_from_checkpoint, trial):
        """The Trainer's state from the checkpoint (its JSON checked first, one line if malformed), with the best
        checkpoint found in this run folder, wherever the run was when it was saved (`checkpoint.best_checkpoint`)."""
        if resume_from_checkpoint is None:
            return super()._init_training_state(max_steps, steps_per_epoch, epochs, None, trial)
        folder = Path(resume_from_checkpoint)
        with checkpoint.reading(folder):
            best = checkpoint.best_checkpoint(folder)  # checked before the Trainer reads the same file
            trained = super()._init_training_state(max_steps, steps_per_epoch, epochs, resume_from_checkpoint, trial)
        self.state.best_model_checkpoint = None if best is None else str(best)
        return trained

    def _prepare_for_training(self, max_steps, train_dataloader, resume_from_checkpoint):
        """The Trainer's preparation; then the checkpoint's state through `harness.train.checkpoint` only, and the
        evaluation a signal interrupted."""
        model, train_dataloader = super()._prepare_for_training(max_steps, train_dataloader, None)
        if resume_from_checkpoint is not None:
            if self.is_deepspeed_enabled:
                self._load_engine(Path(resume_from_checkpoint))
            self._load_optimizer_and_scheduler(resume_from_checkpoint)
            if self._evaluation_pending() and self._determine_best_metric(self.evaluate(), trial=None):
                self.state.best_model_checkpoint = resume_from_checkpoint
        return model, train_dataloader

    def _load_engine(self, folder: Path) -> None:
        """DeepSpeed's engine state, read weights-only (its module files hold no frozen tensor: not strict)."""
        import pickle

        with checkpoint_state.weights_only_engine(self.model_wrapped):
            try:
                path, _ = self.model_wrapped.load_checkpoint(
                    str(folder), load_module_strict=False, load_optimizer_states=True, load_lr_scheduler_states=True
                )
            except pickle.UnpicklingError as error:
                first = str(error).strip().splitlines()[0]
                raise OutputDirError(
                    [f"{folder}: --resume: refused: a DeepSpeed file asks to run code ({first})"]
                ) from None
        if path is None:
            raise OutputDirError([f"{folder}: --resume: DeepSpeed found no engine state in the checkpoint"])

    def _evaluation_pending(self) -> bool:
        """The checkpoint ends an epoch whose evaluation a signal stopped (no validation score at its step)."""
        step = self.state.global_step
        if step == 0 or step % steps_per_epoch(len(self.train_dataset), self.batch_plan.global_batch):
            return False
        return not any("eval_average" in entry and entry.get("step") == step for entry in self.state.log_history)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = Path(output_dir or self.args.output_dir)
        if not self.args.should_save:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        path = output_dir / ADAPTER_FILE
        if path.exists():  # the Trainer re-saves into the same checkpoint folder when it stops on a signal
            path.unlink()
        save_trainable(self.model, path, {"format": "pt"})  # with what the modules add (Intrinsic-SAID's seed)
        if self.record is not None:
            write_record(output_dir, self.record.model_copy(update={"metadata": module_metadata(self.model)}))
        if self.processing_class is not None:
            self.processing_class.save_pretrained(str(output_dir))

    def _load_adapter(self, folder: str) -> None:
        load_trainable(self.model, Path(folder) / ADAPTER_FILE)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        with checkpoint.reading(Path(resume_from_checkpoint)):
            self._load_adapter(resume_from_checkpoint)

    def _load_best_model(self) -> None:
        """The best epoch's trainable tensors (verified: it may be a folder an earlier process wrote); with
        DeepSpeed too, since only generation follows."""
        checkpoint.verify(Path(self.state.best_model_checkpoint))
        self._load_adapter(self.state.best_model_checkpoint)


def metrics_function(task: str, targets: Sequence[str], grouping: dict[str, list], fidelity: Fidelity) -> Scorer:
    """Predictions (decoded generations, in example order) → harness.data.metrics.compute(task, …)."""
    from harness.data.metrics import compute

    def score(predictions: list[str]) -> dict[str, float]:
        return compute(task, predictions, list(targets), fidelity, **grouping)

    return score


def training_arguments(
    output_dir: Path,
    recipe,
    plan: BatchPlan,
    epochs: int,
    seed: int,
    deepspeed: dict | None,
    bf16: bool,
    use_cpu: bool,
    max_steps: int = -1,
    report_to: Sequence[str] = (),
    logging_steps: int | None = None,
) -> Seq2SeqTrainingArguments:
    """The spec's recipe as Seq2SeqTrainingArguments (AdamW, warm-up then linear decay, clip, generation).

    The batch comes from the plan: `per_device × accumulation × world_size` = the recipe's global batch.
    `report_to` (tensorboard, wandb) and `logging_steps` (default: one mean loss per epoch) only say where
    and how often the loss is logged; nothing of the training changes.
    """
    return Seq2SeqTrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=plan.per_device,
        gradient_accumulation_steps=plan.accumulation,
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
        logging_strategy="steps" if logging_steps else "epoch",  # default: one mean loss per epoch
        logging_steps=logging_steps or 500,
        report_to=list(report_to),
        ddp_broadcast_buffers=False,  # T5 has no running statistics; the methods' buffers are seeded constants
        disable_tqdm=False,
    )


def make_trainer(
    model,
    tokenizer,
    args,
    plan: BatchPlan,
    eval_batch_size: int,
    train,
    validation,
    scorer: Scorer,
    record: CheckpointRecord | None = None,
) -> HarnessTrainer:
    # decoder_input_ids come from the labels (shifted right): the loss is computed from the logits alone
    collator = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100, padding=True)
    # Integer buffers (Intrinsic-SAID's Fastfood permutations, int16) are drawn from a seed, the same on every
    # process; DDP would broadcast them at start, which gloo cannot do for int16.
    model._ddp_params_and_buffers_to_ignore = [n for n, b in model.named_buffers() if not b.is_floating_point()]
    return HarnessTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=validation,
        data_collator=collator,
        processing_class=tokenizer,
        batch_plan=plan,
        eval_batch_size=eval_batch_size,
        scorer=scorer,
        record=record,
    )
