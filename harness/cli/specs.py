"""Commands on specs: validate, budget, check, ls, show."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from harness.cli import options
from harness.cli.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from harness.errors import OptionError, SpecError
from harness.model.checked import argument_error_line, read_buildable_spec, validate_paths
from harness.spec.loader import default_spec_dir, read_spec, spec_files


def cmd_validate(args: argparse.Namespace) -> int:
    if args.spec_dir is not None and not args.spec_dir.is_dir():
        raise OptionError([f"{args.spec_dir}: (top level): no such spec folder"])
    paths = args.specs or spec_files(args.spec_dir)
    if not paths:
        print(f"{args.spec_dir or default_spec_dir()}: no spec files (*.yaml) found", file=sys.stderr)
        return EXIT_BAD_INPUT
    errors = validate_paths(paths) + recipe_errors(paths)
    for line in errors:
        print(line, file=sys.stderr)
    if errors:
        return EXIT_BAD_INPUT
    for path in paths:
        print(f"{path}: valid")
    return EXIT_OK


def recipe_errors(paths: list[Path]) -> list[str]:
    """What the recipe of each valid spec cannot do, found now rather than when a run starts: a global batch
    (training.batch_size) that training.gradient_accumulation_steps does not split into equal micro-batches.
    (A run refuses it too, over its processes as well: `harness.train.batching.BatchPlan`.)"""
    errors = []
    for path in paths:
        try:
            training = read_spec(path).spec.training
        except SpecError:
            continue  # reported by validate_paths
        batch, steps = training.batch_size, training.gradient_accumulation_steps
        if batch % steps:
            divisors = ", ".join(str(d) for d in range(1, batch + 1) if batch % d == 0)
            errors.append(f"{path}: training.gradient_accumulation_steps: {steps} does not split training.batch_size "
                          f"{batch} into equal micro-batches; choose a divisor of {batch}: {divisors}")  # fmt: skip
    return errors


def cmd_budget(args: argparse.Namespace) -> int:
    from harness.model.budget import count_budget

    if args.all:
        if args.spec is not None:
            raise OptionError([f"{args.spec}: --all counts every spec of --spec-dir; pass SPEC or --all, not both"])
        return print_budget_table(args.spec_dir, args.model, args.json)
    if args.spec is None:
        raise OptionError(["budget: pass a SPEC, or --all for every spec (`python -m harness budget --help`)"])
    loaded = read_buildable_spec(args.spec, model=args.model, overrides=args.set or [])
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


def budgets_on(spec_dir: Path | None, model: str | None) -> dict[str, dict]:
    """Every spec's budget on `model` (default: each spec's own), or the lines saying why it does not apply.

    A `--model` that names nothing is reported once, as bad input, not once per spec.
    """
    from harness.model.budget import count_budget
    from harness.spec.model_choice import resolve_model

    paths = spec_files(spec_dir)
    if not paths:
        raise OptionError([f"{spec_dir or default_spec_dir()}: no spec files (*.yaml) found"])
    if model is not None:
        resolve_model(paths[0], model, where=f"{spec_dir or default_spec_dir()}: --model")
    table = {}
    for path in paths:
        try:
            table[path.stem] = count_budget(read_buildable_spec(path, model=model)).to_json()
        except SpecError as error:
            table[path.stem] = {"applies": False, "errors": error.errors}
    return table


def print_budget_table(spec_dir: Path | None, model: str | None, as_json: bool) -> int:
    table = budgets_on(spec_dir, model)
    if as_json:
        print(json.dumps({"model": model, "specs": table}, indent=2))
        return EXIT_OK
    where = model or "each spec's own model"
    print(f"budgets on {where}:")
    for name, row in table.items():
        print(f"  {name:<22} {budget_cell(row)}")
    return EXIT_FAILED if any(row.get("ok") is False for row in table.values()) else EXIT_OK


def budget_cell(row: dict) -> str:
    """`161,728 trainable = 0.0726% of 222,882,048`, or `does not apply: <why>`."""
    if row.get("applies") is False:
        why = row["errors"][0].split(": ", 1)[-1]
        return f"does not apply: {why}" + (f" (+{len(row['errors']) - 1} more)" if len(row["errors"]) > 1 else "")
    mark = {True: "", False: "  DIFFERS from the spec", None: ""}[row["ok"]]
    return f"{row['trainable_params']:>11,} trainable = {row['trainable_percent']:.4f}% of {row['base_params']:,}{mark}"


def cmd_check(args: argparse.Namespace) -> int:
    from harness.invariants import CheckContext, run_invariant
    from harness.invariants.hypothesis_settings import load_settings
    from impl.registry import MethodArgumentError

    load_settings("check")
    read = read_spec if args.model else read_buildable_spec  # --model: built below, on that model alone
    loaded = read(args.spec, overrides=args.set or [])
    check_model = loaded.check_model_file
    if args.model:  # the invariants on another model; `budget` still counts on the spec's own
        from harness.model.checked import check_built
        from harness.spec.model_choice import resolve_model

        check_model = resolve_model(loaded.path, args.model)
        errors = check_built(loaded.path, loaded.spec, check_model, loaded.resolved["method"]["args"])
        if errors:
            raise SpecError(errors)
    if args.recipe:
        from harness.invariants.recipe_context import RecipeContext
        from harness.spec.invariant_catalog import RECIPE

        known, kind = list(RECIPE), "recipe invariants"
        ctx = RecipeContext(loaded, check_model)
        refusal = "--only: {} not among the recipe invariants ({})"
    else:
        known, kind = list(loaded.spec.invariants), "invariants"
        ctx = CheckContext(loaded, check_model)
        refusal = "invariants: the spec does not list {}"
    names = args.only or known
    unknown = [name for name in names if name not in known]
    if unknown:
        raise OptionError([f"{loaded.path}: " + refusal.format(", ".join(unknown), ", ".join(known))])
    print(f"{loaded.name}: {len(names)} {kind} on {check_model.name}")
    failed = 0
    for name in names:
        try:
            result = run_invariant(name, ctx)
        except MethodArgumentError as error:
            raise SpecError([argument_error_line(loaded.path, error, f"model {check_model.name}")]) from None
        print(result.line(), flush=True)
        failed += not result.ok
    print(f"{len(names) - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    from harness.spec.invariant_catalog import DECLARED
    from impl.registry import get, names

    if args.spec_dir is not None and not args.spec_dir.is_dir():
        raise OptionError([f"{args.spec_dir}: (top level): no such spec folder"])
    if args.model is not None:  # one model: every spec's budget on it, or why it does not apply
        return print_budget_table(args.spec_dir, args.model, args.json)
    specs = {}
    for path in spec_files(args.spec_dir):
        try:
            specs[path.stem] = read_spec(path)
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
                    "invariants": {name: inv.summary for name, inv in DECLARED.items()},
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
    for name, inv in DECLARED.items():
        print(f"  {name:<22} {inv.summary}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    read = read_spec if args.model is None else read_buildable_spec  # the model it would run on: built on it
    loaded = read(args.spec, model=args.model)
    shown = loaded.resolved
    if args.model is not None:  # the model it would run on, resolved: name, family, weights, architecture
        model = loaded.model_file
        shown = {**shown, "model": model.name}
        shown["model_architecture"] = {
            "family": model.architecture.family, "pretrained": model.pretrained, "source": model.source,
            **model.architecture.model_dump(),
        }  # fmt: skip
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        print(yaml.safe_dump(shown, sort_keys=False, allow_unicode=True, width=110), end="")
    return EXIT_OK


MODEL_HELP = "a model file in spec/models/ (t5_base, flan_t5_base, ...), a local Hugging Face folder, or a hub id"


def add_parsers(sub) -> None:
    p = sub.add_parser("validate", help="validate spec files (all of spec/ by default)")
    p.add_argument("specs", nargs="*", type=options.path, metavar="SPEC")
    p.add_argument("--spec-dir", type=options.path, default=None, help="folder of specs (default: spec/)")
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser("budget", help="count trainable parameters on the meta device")
    p.add_argument("spec", type=options.path, metavar="SPEC", nargs="?")
    p.add_argument("--model", type=options.name, default=None, help=MODEL_HELP + " (default: the spec's)")
    p.add_argument("--all", action="store_true", help="every spec of --spec-dir: its budget, or why it does not apply")
    p.add_argument("--spec-dir", type=options.path, default=None, help="with --all: folder of specs (default: spec/)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a spec field, e.g. method.args.n=8")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_budget)

    p = sub.add_parser("check", help="run the spec's invariants on a tiny T5")
    p.add_argument("spec", type=options.path, metavar="SPEC")
    p.add_argument("--model", type=options.name, default=None,
                   help=MODEL_HELP + " to check on (default: the spec's check_model)")  # fmt: skip
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a spec field, e.g. method.args.n=8")
    p.add_argument(
        "--only", nargs="+", type=options.name, metavar="INVARIANT", help="run only these of the spec's invariants"
    )
    p.add_argument(
        "--recipe", action="store_true", help="check the training run instead (batch, accumulation, schedule, ...)"
    )
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("ls", help="list methods, specs and invariants")
    p.add_argument("--spec-dir", type=options.path, default=None)
    p.add_argument("--model", type=options.name, default=None,
                   help=MODEL_HELP + ": every spec's budget on it, or why it does not apply")  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_ls)

    p = sub.add_parser("show", help="print the resolved spec (defaults merged, method defaults filled in)")
    p.add_argument("spec", type=options.path, metavar="SPEC")
    p.add_argument("--model", type=options.name, default=None,
                   help=MODEL_HELP + ": show the spec on it, with its architecture")  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_show)
