"""`fidelity`: the quirks of the released code the harness can reproduce, and where each one is."""

from __future__ import annotations

import argparse
import json

from harness.cli.exits import EXIT_OK


def cmd_fidelity(args: argparse.Namespace) -> int:
    """The table of quirks (docs/fidelity.md's), or their metadata as JSON."""
    from dataclasses import asdict

    from harness.spec.fidelity import QUIRKS, table_markdown

    if args.json:
        print(json.dumps([{**asdict(q), "released_init": dict(q.released_init or {})} for q in QUIRKS], indent=2))
    else:
        print(table_markdown(), end="")
    return EXIT_OK


def add_parsers(sub) -> None:
    p = sub.add_parser("fidelity", help="the released code's quirks: --fidelity released, or one with NAME=released")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_fidelity)
