"""Commands on saved results: compare (against the published numbers) and report."""

from __future__ import annotations

import argparse
import json
import sys

from harness.cli import options
from harness.cli.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from harness.errors import OptionError, ResultsError


def cmd_compare(args: argparse.Namespace) -> int:
    """Re-check saved results against the published numbers of the spec embedded in each file."""
    from harness.results.regression import compare
    from harness.results.results_json import find_results, load_results

    bad_input, failed, reports = False, False, []
    for path in find_results(args.results):
        try:
            loaded = load_results(path)
        except ResultsError as error:
            print("\n".join(error.errors), file=sys.stderr)
            bad_input = True
            reports.append({"path": str(path), "errors": error.errors})
            continue
        comparison, run = compare(loaded), loaded.results
        failed |= not comparison.ok
        stale = run.regression is not None and run.regression.checks != comparison.checks
        if args.json:
            reports.append({"path": str(path), "method": run.method, "profile": run.profile,
                            **comparison.to_json(), "stored_regression_differs": stale})  # fmt: skip
            continue
        reason = "" if run.comparable else f"; not comparable: {run.not_comparable_reason}"
        print(
            f"{path}: {run.method}, {run.profile} profile, model {run.model.source} ({run.model.architecture})"
            f"{reason}: {comparison.summary()}"
        )
        for difference in comparison.differences:
            print(f"  differs from the paper's recipe: {difference}")
        for check in comparison.checks:
            print(f"  {check.line()}")
        if stale:
            print("  note: the regression stored at run time differs from this re-check (edited file or newer harness)")
    if args.json:
        print(json.dumps({"ok": not (failed or bad_input), "files": reports}, indent=2))
    return EXIT_BAD_INPUT if bad_input else EXIT_FAILED if failed else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """report.md and the score/parameters plot from results files and folders of them."""
    from harness.results.report import write_report
    from harness.results.results_json import find_results, load_results

    loaded, errors = [], []
    for path in find_results(args.inputs):
        try:
            loaded.append(load_results(path))
        except ResultsError as error:
            errors += error.errors
    if errors:
        raise ResultsError(errors)
    output_dir = args.output_dir
    if output_dir is None:
        if len(args.inputs) != 1:
            raise OptionError(["--output-dir: required when reporting on several inputs"])
        output_dir = args.inputs[0] if args.inputs[0].is_dir() else args.inputs[0].parent
    files = write_report(loaded, output_dir, overwrite=args.overwrite)
    print(f"{files.report}: report of {len(loaded)} run{'s' if len(loaded) != 1 else ''}")
    if files.plot is not None:
        print(f"{files.plot}: plot")
    else:
        print(f"no plot: {files.message}", file=sys.stderr)
    return EXIT_OK


def add_parsers(sub) -> None:
    p = sub.add_parser("compare", help="re-check saved results.json files against the published numbers")
    p.add_argument(
        "results", nargs="+", type=options.path, metavar="RESULTS", help="results.json files (or folders of them)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_compare)

    p = sub.add_parser("report", help="build report.md and the score/parameters plot from results")
    p.add_argument(
        "inputs", nargs="+", type=options.path, metavar="DIR_OR_RESULTS", help="results.json files or folders"
    )
    p.add_argument(
        "--output-dir", type=options.path, default=None, help="default: the one folder (or file's folder) given"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing report.md and plot")
    p.set_defaults(run=cmd_report)
