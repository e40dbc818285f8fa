"""`data TASK`: a task's processed examples and split sizes, in the paper's protocol."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.cli.exits import EXIT_OK
from harness.errors import SpecError


def cmd_data(args: argparse.Namespace) -> int:
    """The processed examples of a task as the model sees them, with the split sizes of the protocol."""
    from harness.data.protocol import load_task
    from harness.spec.tasks import get_task

    try:
        task = get_task(args.task)
    except ValueError as error:
        raise SpecError([f"{args.task}: {error}"]) from None
    for option, value in (("--limit", args.limit), ("--train-size", args.train_size)):
        if value is not None and value < (1 if option == "--train-size" else 0):
            raise SpecError([f"{option}: {value} is not a valid count"])
    data = load_task(
        task, args.data_dir, toy=args.toy, prefix_task_name=args.prefix_task_name, seed=args.seed,
        mnli_split=args.mnli_split, train_size=args.train_size,
    )  # fmt: skip
    examples = data.examples(args.split, args.limit)
    sizes = data.sizes()
    protocol = {split: {"from": source, "rows": len(rows)} for split, (source, rows) in data.plan.items()}
    if args.json:
        report = {
            "task": task.name, "origin": data.origin, "split": args.split, "sizes": sizes, "protocol": protocol,
            "seed": args.seed, "prefix_task_name": args.prefix_task_name, "metrics": list(task.metrics),
            "examples": [{"source": e.source, "target": e.target, **e.extra} for e in examples],
        }  # fmt: skip
        print(json.dumps(report, indent=2, default=list))
        return EXIT_OK
    print(f"{task.name} ({task.benchmark}) from {data.origin}, seed {args.seed}:")
    for split, (source, rows) in data.plan.items():
        print(f"  {split:<10} {sizes[split]:>7,} examples  ({len(rows):,} rows of original {source})")
    if examples:
        print(f"{args.split}, first {len(examples)}:")
    for index, example in enumerate(examples):
        print(f"[{index}] source: {example.source}\n    target: {example.target}")
    return EXIT_OK


def add_parsers(sub) -> None:
    p = sub.add_parser("data", help="show a task's processed examples and split sizes (the paper's protocol)")
    p.add_argument("task", metavar="TASK")
    p.add_argument("--data-dir", type=Path, default=None, help="folder with one file per split (default: the hub)")
    p.add_argument("--toy", action="store_true", help="use generated toy data (offline)")
    p.add_argument("--split", choices=("train", "validation", "test"), default="train")
    p.add_argument("--limit", type=int, default=5, help="examples to show (default 5)")
    p.add_argument("--train-size", type=int, default=None, help="low-resource: subsample train to N examples")
    p.add_argument("--prefix-task-name", action="store_true", help="prepend the task name (the spec's flag)")
    p.add_argument("--mnli-split", choices=("paper", "released"), default="paper")
    p.add_argument("--seed", type=int, default=42, help="the data seed (default 42)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_data)
