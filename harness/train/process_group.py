"""The process group of a single-process run that DeepSpeed needs, made for the run and destroyed after it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def single_process_group() -> Iterator[None]:
    """Within: a one-process distributed environment, as DeepSpeed wants even on one device (a launch by
    torchrun or deepspeed keeps its own). After: none again, so a later run in the same Python process
    (a sweep, a notebook, the tests) is not wrapped in DDP by what this one left behind."""
    if "RANK" in os.environ:
        yield
        return
    import socket

    from accelerate.state import AcceleratorState

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    before = dict(os.environ)
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        yield
    finally:
        if torch.distributed.is_initialized():
            destroy_process_group()
        AcceleratorState._reset_state(reset_partial_state=True)  # accelerate caches the distributed type
        os.environ.clear()  # as found: the Trainer also sets ACCELERATE_USE_DEEPSPEED, which would outlive it
        os.environ.update(before)


def destroy_process_group() -> None:
    """Through DeepSpeed's own call where DeepSpeed set up its communication: it also drops the groups it
    caches, which a later DeepSpeed run would otherwise find destroyed."""
    import sys

    if "deepspeed" in sys.modules:
        import deepspeed.comm

        if deepspeed.comm.comm.cdb is not None:
            deepspeed.comm.destroy_process_group()
            return
    torch.distributed.destroy_process_group()
