"""`--report-to`: whether the tracker could start, found before training.

The Trainer would only fail at its first logging step, with a traceback, after the output folder exists: the
package missing or broken, W&B without a login (it would stop to ask for a key on a terminal), a TensorBoard log
folder that cannot be created. Nothing here creates or writes anything.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

from harness.inputs import folder_problem


def tracker_errors(tracker: str) -> list[str]:
    """Why `--report-to tracker` could not start, found before training (the Trainer would only fail at its first
    step, with a traceback, after the output folder exists): the package missing or broken, W&B without a login,
    a TensorBoard log folder that cannot be created."""
    import os

    if tracker == "tensorboard":
        if not any(importlib.util.find_spec(name) for name in ("tensorboard", "tensorboardX")):
            return ["--report-to tensorboard: the tensorboard package is not installed (pip install tensorboard)"]
        folder = os.environ.get("TENSORBOARD_LOGGING_DIR")
        if folder is not None:  # the Trainer's log folder, else <run>/<task>/seed<k>/runs/ (checked as the output)
            why = "empty" if not folder.strip() else folder_problem(Path(os.path.expanduser(folder)))
            if why:
                return [f"environment variable TENSORBOARD_LOGGING_DIR={folder!r}: --report-to tensorboard: {why}"]
        return []
    if tracker != "wandb":
        return [f"--report-to {tracker}: unknown tracker (none, tensorboard or wandb)"]
    if importlib.util.find_spec("wandb") is None:
        return ["--report-to wandb: the wandb package is not installed (pip install wandb)"]
    try:
        import wandb
    except Exception as error:  # a broken install fails like any other import
        return [f"--report-to wandb: the wandb package does not import ({type(error).__name__}: {error})"[:300]]
    if not hasattr(wandb, "run"):  # what transformers checks: leftover files of an uninstalled wandb
        return ["--report-to wandb: the wandb package is incomplete (no wandb.run); reinstall it (pip install wandb)"]
    if not wandb_can_log():
        return [
            "--report-to wandb: no W&B login (no WANDB_API_KEY, no entry for its host in ~/.netrc, WANDB_MODE "
            "neither offline nor disabled): run `wandb login`, or set WANDB_MODE=offline"
        ]
    return []


def wandb_can_log() -> bool:
    """Whether W&B would start without asking for a key on a terminal: offline or disabled, an API key in the
    environment, or a netrc entry for its host (where `wandb login` stores the key)."""
    import os
    from urllib.parse import urlparse

    from harness.errors import InputError
    from harness.inputs import decode_utf8, read_bytes

    if os.environ.get("WANDB_MODE", "").strip().lower() in ("offline", "disabled", "dryrun"):
        return True
    if os.environ.get("WANDB_API_KEY", "").strip():
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    netrc = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:  # bounded and regular: a netrc that is a pipe must not hang the check
        tokens = decode_utf8(read_bytes(netrc, 1 << 20, "netrc file"), netrc, "netrc file").split()
    except InputError:
        return False
    return any(word == "machine" and following == host for word, following in itertools.pairwise(tokens))
