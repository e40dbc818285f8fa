"""The command line: `python -m harness COMMAND …` (fifteen commands).

Each command's parser sits beside its handler: `specs`, `run`, `checkpoints`, `data`, `results`, `bench`,
`fidelity`.

Exit codes (GUIDE.md contracts): 0 success; 1 a budget or invariant does not hold; 2 bad input (an
invalid spec, a missing file, an unknown name), reported as `file: key.path: message` lines on stderr,
never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from harness.cli import bench, checkpoints, data, fidelity, results, run, specs
from harness.cli.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from harness.errors import InputError

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "main", "parser"]


class Parser(argparse.ArgumentParser):
    """argparse, with a misused command line as one line naming the option (not the usage block), exit 2."""

    def error(self, message: str):
        raise InputError([f"{self.prog}: {message} (`{self.prog} --help` lists the options)"])


def parser() -> argparse.ArgumentParser:
    root = Parser(prog="python -m harness", description=__doc__.splitlines()[0])
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for commands in (specs, run, checkpoints, data, results, bench, fidelity):  # the order of `--help`
        commands.add_parsers(sub)
    return root


EXIT_READER_GONE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader quit (`… | head -1`)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        code = args.run(args)
        sys.stdout.flush()  # inside the try: a reader that quit early is met here, not at interpreter exit
        return code
    except BrokenPipeError:  # the reader of stdout quit: stop quietly, as `cat` does, with no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush then goes nowhere
        return EXIT_READER_GONE
    except InputError as error:
        for line in error.errors:
            print(line, file=sys.stderr)
        return EXIT_BAD_INPUT
