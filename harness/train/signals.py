"""SIGTERM/SIGINT during training: a resumable checkpoint at the end of the current step on every process, then a
stop (`Interrupted`)."""

from __future__ import annotations

import signal
from typing import Any

import torch
from transformers import TrainerCallback


class Interrupted(RuntimeError):
    """SIGTERM/SIGINT: a resumable checkpoint was saved and training stopped."""


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
        if self.stop_everywhere(args):
            control.should_save = True
            control.should_training_stop = True
        return control

    def stop_everywhere(self, args) -> bool:
        """Whether any process received a signal: all stop after the same step (else the others would wait
        for it in the next all-reduce, and the checkpoint would mix steps)."""
        received = self.received is not None
        if args.world_size == 1:
            return received
        flag = torch.tensor([int(received)], device=args.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item() and self.received is None:
            self.received = signal.SIGTERM  # another process's signal
        return bool(flag.item())
