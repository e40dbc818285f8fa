"""Commands on specs: validate, budget, check, ls, show."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from harness.cli.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from harness.errors import SpecError
from harness.model.checked import load_spec, validate_paths
from harness.spec.loader import default_spec_dir, model_file_for, spec_files


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
    from harness.model.budget import count_budget

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
    if args.recipe:
        from harness.invariants.recipe import RECIPE_INVARIANTS, RecipeContext, run_recipe_invariant

        known, kind = list(RECIPE_INVARIANTS), "recipe invariants"
        ctx, runner = RecipeContext(loaded, check_model), run_recipe_invariant
        refusal = "--only: {} not among the recipe invariants ({})"
    else:
        known, kind = list(loaded.spec.invariants), "invariants"
        ctx, runner = CheckContext(loaded, check_model), run_invariant
        refusal = "invariants: the spec does not list {}"
    names = args.only or known
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SpecError([f"{loaded.path}: " + refusal.format(", ".join(unknown), ", ".join(known))])
    print(f"{loaded.name}: {len(names)} {kind} on {check_model.name}")
    failed = 0
    for name in names:
        try:
            result = runner(name, ctx)
        except MethodArgumentError as error:
            raise SpecError(
                [f"{loaded.path}: method.args.{error.argument}: {error.message} (model {check_model.name})"]
            ) from None
        print(result.line(), flush=True)
        failed += not result.ok
    print(f"{len(names) - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    from harness.spec.invariant_catalog import DECLARED
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
    loaded = load_spec(args.spec, build=False)
    if args.json:
        print(json.dumps(loaded.resolved, indent=2))
    else:
        print(yaml.safe_dump(loaded.resolved, sort_keys=False, allow_unicode=True, width=110), end="")
    return EXIT_OK


def add_parsers(sub) -> None:
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
    p.add_argument(
        "--recipe", action="store_true", help="check the training run instead (batch, accumulation, schedule, ...)"
    )
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("ls", help="list methods, specs and invariants")
    p.add_argument("--spec-dir", type=Path, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_ls)

    p = sub.add_parser("show", help="print the resolved spec (defaults merged, method defaults filled in)")
    p.add_argument("spec", type=Path, metavar="SPEC")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_show)
