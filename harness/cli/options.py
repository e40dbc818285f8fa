"""Option types shared by every command, so an option means one thing wherever it is taken.

Each is an argparse `type=`: a bad value is argparse's one line (`python -m harness CMD: argument
--opt: why`), exit 2, before anything is read or written.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from harness.limits import SEED_MAX


def path(text: str) -> Path:
    """A file or folder; an empty string (which would silently mean the current folder) is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; pass a file or folder name")
    return Path(text)


def name(text: str) -> str:
    """A non-empty name (a model, a task, a hub id)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value; pass a name")
    return text


def seed(text: str) -> int:
    """A seed: an integer in 0 … 2**32 - 1 (what numpy, torch and Python's random all accept)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected an integer in 0..{SEED_MAX}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"seed {value} out of range: expected an integer in 0..{SEED_MAX}")
    return value


def bounded_count(low: int, high: int):
    """An integer in low … high (a count, a length, a number of steps)."""

    def count(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid count {text!r}: expected an integer in {low}..{high:,}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} out of range: expected an integer in {low}..{high:,}")
        return value

    count.__name__ = "count"
    return count


DEVICE = re.compile(r"cpu|mps|cuda(:[0-9]{1,4})?")


def device(text: str) -> str:
    """A torch device the harness runs on: cpu, cuda, cuda:N or mps. Refused here rather than by torch (whose
    error lists twenty device types, after the checkpoint is read); whether this machine has it is checked
    before the model is built (`harness.train.devices.device_of`)."""
    if not DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"invalid device {text!r}: expected cpu, cuda, cuda:N (N = 0, 1, …) or mps")
    return text
