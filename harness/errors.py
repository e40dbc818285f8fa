"""A user's mistakes, by kind. Each is one or more complete `where: what` lines; the CLI prints them and
exits 2, never with a traceback."""

from __future__ import annotations

import difflib


class InputError(Exception):
    """Bad input; `errors` are complete one-line messages naming the file, key, row or option."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class SpecError(InputError):
    """A spec file or a `--set` override of one: a key, a value, a reference between specs."""


class OptionError(InputError):
    """A command-line option, or an environment variable a launcher sets (RANK, WORLD_SIZE, ...)."""


class ModelError(InputError):
    """A model folder: a trained checkpoint (harness.json, adapter.safetensors, tokenizer) or a pretrained T5."""


class ResultsError(InputError):
    """A results.json (or a predictions file beside it) that `compare` or `report` reads."""


class DataError(InputError):
    """A data folder, file, row or column."""


class OutputDirError(InputError):
    """The output folder: not the harness's own, locked, or a checkpoint `--resume` may not read."""


def did_you_mean(name: str, known: list[str]) -> str:
    """The end of a message about an unknown `name`: the closest known one, or all of them."""
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
