"""The command line: `python -m harness {validate,budget,check,ls,show} …`.

Exit codes (GUIDE.md contracts): 0 success; 1 a budget or invariant does not hold; 2 bad input (an
invalid spec, a missing file, an unknown name), reported as `file: key.path: message` lines on stderr,
never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from harness.spec import SpecError, default_spec_dir, load_spec, model_file_for, spec_files, validate_paths

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def cmd_validate(args: argparse.Namespace) -> int:
    if args.spec_dir is not None and not args.spec_dir.is_dir():
        raise SpecError([f"{args.spec_dir}: (top level): no such spec folder"])
    paths = args.specs or spec_files(args.spec_dir)
    if not paths:
        print(f"{args.spec_dir or default_spec_dir()}: no spec files (*.yaml) found", file=sys.stderr)
        return EXIT_BAD_INPUT
    errors = validate_paths(paths)
    for line in errors:
        print(line, file=sys.stderr)
    if errors:
        return EXIT_BAD_INPUT
    for path in paths:
        print(f"{path}: valid")
    return EXIT_OK


def cmd_budget(args: argparse.Namespace) -> int:
    from harness.budget import count_budget

    loaded = load_spec(args.spec, model=args.model)
    report = count_budget(loaded)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(
            f"{report.method} on {report.model}: {report.trainable_params:,} trainable parameters = "
            f"{report.trainable_percent:.4f}% of {report.base_params:,} (adapted model: {report.total_params:,})"
        )
        if report.count_ok is not None:
            mark = "matches" if report.count_ok else "DIFFERS from"
            print(f"  count {mark} the spec's {report.expected_trainable_params:,}")
        if report.percent_ok is not None:
            mark = "rounds to" if report.percent_ok else "does NOT round to"
            print(f"  percentage {mark} the published {report.published_percent}%")
        if report.ok is None:
            print(f"  (the spec states no budget for {report.model}: nothing to compare)")
    return EXIT_FAILED if report.ok is False else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from harness.invariants import CheckContext, run_invariant
    from harness.invariants.profiles import load_profile
    from impl.registry import MethodArgumentError

    load_profile("check")
    loaded = load_spec(args.spec)
    check_model = model_file_for(loaded.path, args.model, "--model") if args.model else loaded.check_model_file
    names = args.only or list(loaded.spec.invariants)
    unknown = [name for name in names if name not in loaded.spec.invariants]
    if unknown:
        raise SpecError([f"{loaded.path}: invariants: the spec does not list {', '.join(unknown)}"])
    ctx = CheckContext(loaded, check_model)
    print(f"{loaded.name}: {len(names)} invariants on {check_model.name}")
    failed = 0
    for name in names:
        try:
            result = run_invariant(name, ctx)
        except MethodArgumentError as error:
            raise SpecError(
                [f"{loaded.path}: method.args.{error.argument}: {error.message} (model {check_model.name})"]
            ) from None
        print(result.line(), flush=True)
        failed += not result.ok
    print(f"{len(names) - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    from harness.invariants import INVARIANTS
    from impl.registry import get, names

    if args.spec_dir is not None and not args.spec_dir.is_dir():
        raise SpecError([f"{args.spec_dir}: (top level): no such spec folder"])
    specs = {}
    for path in spec_files(args.spec_dir):
        try:
            specs[path.stem] = load_spec(path, build=False)
        except SpecError as error:
            specs[path.stem] = error
    if args.json:
        print(
            json.dumps(
                {
                    "methods": {name: get(name).summary for name in names()},
                    "specs": {
                        name: {
                            "path": str(s.path),
                            "method": s.spec.method.name,
                            "model": s.spec.model,
                            "trainable_params": s.spec.budget.trainable_params,
                        }
                        if not isinstance(s, SpecError)
                        else {"errors": s.errors}
                        for name, s in specs.items()
                    },
                    "invariants": {name: inv.summary for name, inv in INVARIANTS.items()},
                },
                indent=2,
            )
        )
        return EXIT_OK
    print("methods:")
    for name in names():
        print(f"  {name:<22} {get(name).summary}")
    print(f"specs ({args.spec_dir or default_spec_dir()}):")
    for name, s in specs.items():
        if isinstance(s, SpecError):
            print(f"  {name:<22} INVALID ({len(s.errors)} errors; run `python -m harness validate`)")
        else:
            budget = s.spec.budget.trainable_params
            count = f"{budget:,} trainable" if budget is not None else "no budget"
            print(f"  {name:<22} method {s.spec.method.name} on {s.spec.model}, {count}")
    print("invariants:")
    for name, inv in INVARIANTS.items():
        print(f"  {name:<22} {inv.summary}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    loaded = load_spec(args.spec, build=False)
    if args.json:
        print(json.dumps(loaded.resolved, indent=2))
    else:
        print(yaml.safe_dump(loaded.resolved, sort_keys=False, allow_unicode=True, width=110), end="")
    return EXIT_OK


def cmd_data(args: argparse.Namespace) -> int:
    """The processed examples of a task as the model sees them, with the split sizes of the protocol."""
    from harness.data import load_task
    from harness.tasks import get_task

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


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m harness", description=__doc__.splitlines()[0])
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="validate spec files (all of spec/ by default)")
    p.add_argument("specs", nargs="*", type=Path, metavar="SPEC")
    p.add_argument("--spec-dir", type=Path, default=None, help="folder of specs (default: spec/)")
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser("budget", help="count trainable parameters on the meta device")
    p.add_argument("spec", type=Path, metavar="SPEC")
    p.add_argument("--model", default=None, help="a model file in spec/models/ (default: the spec's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_budget)

    p = sub.add_parser("check", help="run the spec's invariants on a tiny T5")
    p.add_argument("spec", type=Path, metavar="SPEC")
    p.add_argument("--model", default=None, help="model file to check on (default: the spec's check_model)")
    p.add_argument("--only", nargs="+", metavar="INVARIANT", help="run only these of the spec's invariants")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("ls", help="list methods, specs and invariants")
    p.add_argument("--spec-dir", type=Path, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_ls)

    p = sub.add_parser("show", help="print the resolved spec (defaults merged, method defaults filled in)")
    p.add_argument("spec", type=Path, metavar="SPEC")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_show)

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
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except SpecError as error:
        for line in error.errors:
            print(line, file=sys.stderr)
        return EXIT_BAD_INPUT
