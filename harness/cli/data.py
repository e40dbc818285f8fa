"""`data TASK`: a task's processed examples and split sizes, in the paper's protocol."""

from __future__ import annotations

import argparse
import json

from harness.cli import options
from harness.cli.exits import EXIT_OK
from harness.errors import ModelError, OptionError
from harness.limits import MAX_LENGTH, MAX_TRAIN_SAMPLES

# the counts' ranges: what can be shown, sampled or cut (the spec's source_length has the same bound); one
# line naming the option rather than a slice of 10**30 rows or a tokenizer asked for a billion positions
COUNT_BOUNDS = {
    "--limit": (0, 1_000_000_000),
    "--train-size": (1, MAX_TRAIN_SAMPLES),
    "--source-length": (1, MAX_LENGTH),
}


def cmd_data(args: argparse.Namespace) -> int:
    """The processed examples of a task as the model sees them, with the split sizes of the protocol."""
    from harness.data.protocol import check_splits, load_task
    from harness.spec.tasks import get_task

    try:
        task = get_task(args.task)
    except ValueError as error:
        raise OptionError([f"{args.task}: {error}"]) from None
    for option, value in (("--limit", args.limit), ("--train-size", args.train_size),
                          ("--source-length", args.source_length)):  # fmt: skip
        low, high = COUNT_BOUNDS[option]
        if value is not None and not low <= value <= high:
            raise OptionError([f"{option}: {value} is not a valid count (expected {low}..{high:,})"])
    from harness.spec.fidelity import PAPER, with_arguments

    try:  # read as `run` and `eval` read them (harness.spec.fidelity.parse_arguments)
        fidelity = with_arguments(PAPER, args.fidelity, args.mnli_split)
    except ValueError as error:
        raise OptionError([f"--fidelity: {error}"]) from None
    data = load_task(
        task, args.data_dir, toy=args.toy, prefix_task_name=args.prefix_task_name, seed=args.seed,
        fidelity=fidelity, train_size=args.train_size,
    )  # fmt: skip
    check_splits(task.name, data)  # what `run` refuses is refused here, with the same line
    label = fidelity.label(None, task.name)
    examples = data.examples(args.split, args.limit)
    sizes = data.sizes()
    lengths = token_lengths(args, data) if args.model else None
    protocol = {split: {"from": source, "rows": len(rows)} for split, (source, rows) in data.plan.items()}
    if args.json:
        report = {
            "task": task.name, "origin": data.origin, "split": args.split, "sizes": sizes, "protocol": protocol,
            "seed": args.seed, "prefix_task_name": args.prefix_task_name, "metrics": list(task.metrics),
            "fidelity": fidelity.relevant(None, task.name),
            "examples": [{"source": e.source, "target": e.target, **e.extra} for e in examples],
        }  # fmt: skip
        if lengths is not None:
            report["tokens"] = lengths
            for example, source, target in zip(report["examples"], *lengths["shown"], strict=True):
                example.update(source_tokens=source, target_tokens=target)
        print(json.dumps(report, indent=2, default=list))
        return EXIT_OK
    print(f"{task.name} ({task.benchmark}) from {data.origin}, seed {args.seed}, fidelity {label}:")
    for split, (source, rows) in data.plan.items():
        print(f"  {split:<10} {sizes[split]:>7,} examples  ({len(rows):,} rows of original {source})")
    if examples:
        print(f"{args.split}, first {len(examples)}:")
    for index, example in enumerate(examples):
        counts = f" ({lengths['shown'][0][index]} tokens)" if lengths else ""
        target_counts = f" ({lengths['shown'][1][index]} tokens)" if lengths else ""
        print(f"[{index}] source{counts}: {example.source}\n    target{target_counts}: {example.target}")
    if lengths is not None:
        print(f"{lengths['model']} tokenizer ({lengths['tokenizer_size']:,} entries): sources longer than "
              f"{lengths['source_length']} tokens, cut in training: "
              + ", ".join(f"{split} {n:,}" for split, n in lengths["truncated"].items()))  # fmt: skip
    return EXIT_OK


def token_lengths(args: argparse.Namespace, data) -> dict:
    """The examples as `--model`'s tokenizer sees them: token counts (with </s>) of the shown examples, and
    per split how many sources exceed `--source-length` (cut to it in training)."""
    from harness.data.tokenizer import load_tokenizer
    from harness.spec.loader import default_spec_dir
    from harness.spec.model_choice import resolve_model

    model = resolve_model(default_spec_dir() / "data", args.model, where="--model")
    if model.pretrained is None:
        raise OptionError([f"--model: {model.name} is a random architecture with no tokenizer; pass a folder, "
                           "a hub id or a model file with `pretrained:`"])  # fmt: skip
    try:
        tokenizer = load_tokenizer(model.pretrained)
    except (OSError, ValueError) as error:
        why = " ".join(str(error).split())
        raise ModelError([f"--model: cannot load the tokenizer of {model.pretrained}: {why}"]) from None

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts)["input_ids"]] if texts else []

    shown = data.examples(args.split, args.limit)
    truncated = {
        split: sum(n > args.source_length for n in count([e.source for e in data.examples(split)]))
        for split in data.plan
    }
    return {
        "model": model.name, "tokenizer_size": len(tokenizer), "source_length": args.source_length,
        "truncated": truncated, "shown": [count([e.source for e in shown]), count([e.target for e in shown])],
    }  # fmt: skip


def add_parsers(sub) -> None:
    p = sub.add_parser("data", help="show a task's processed examples and split sizes (the paper's protocol)")
    p.add_argument("task", metavar="TASK")
    p.add_argument("--data-dir", type=options.path, default=None,
                   help="folder with one file per split (default: the hub)")  # fmt: skip
    p.add_argument("--toy", action="store_true", help="use generated toy data (offline)")
    p.add_argument("--split", choices=("train", "validation", "test"), default="train")
    p.add_argument("--limit", type=int, default=5, help="examples to show (default 5)")
    p.add_argument("--train-size", type=int, default=None, help="low-resource: subsample train to N examples")
    p.add_argument("--prefix-task-name", action="store_true", help="prepend the task name (the spec's flag)")
    p.add_argument("--fidelity", action="append", metavar="PRESET_OR_NAME=POSITION",
                   help="released: the released code's formats and splits; NAME=released: one quirk")  # fmt: skip
    p.add_argument("--mnli-split", choices=("paper", "released"), default=None,
                   help="MNLI's split, after --fidelity: as --fidelity mnli_split=… (default: as is)")  # fmt: skip
    p.add_argument("--seed", type=options.seed, default=42, help="the data seed (default 42)")
    p.add_argument(
        "--model",
        type=options.name,
        default=None,
        help="tokenize with this model's tokenizer: a model file with "
        "`pretrained:`, a local folder or a hub id; shows token counts and what is cut",
    )
    p.add_argument("--source-length", type=int, default=128, help="with --model: the recipe's source_length (128)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_data)
