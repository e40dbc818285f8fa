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
    from harness.invariants.catalog import DECLARED
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


def cmd_compare(args: argparse.Namespace) -> int:
    """Re-check saved results against the published numbers of the spec embedded in each file."""
    from harness.results import compare, find_results, load_results

    bad_input, failed, reports = False, False, []
    for path in find_results(args.results):
        try:
            loaded = load_results(path)
        except SpecError as error:
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
    from harness.report import write_report
    from harness.results import find_results, load_results

    loaded, errors = [], []
    for path in find_results(args.inputs):
        try:
            loaded.append(load_results(path))
        except SpecError as error:
            errors += error.errors
    if errors:
        raise SpecError(errors)
    output_dir = args.output_dir
    if output_dir is None:
        if len(args.inputs) != 1:
            raise SpecError(["--output-dir: required when reporting on several inputs"])
        output_dir = args.inputs[0] if args.inputs[0].is_dir() else args.inputs[0].parent
    files = write_report(loaded, output_dir, overwrite=args.overwrite)
    print(f"{files.report}: report of {len(loaded)} run{'s' if len(loaded) != 1 else ''}")
    if files.plot is not None:
        print(f"{files.plot}: plot")
    else:
        print(f"no plot: {files.message}", file=sys.stderr)
    return EXIT_OK


def refuse_existing(folder: Path | None, names: tuple[str, ...], overwrite: bool) -> None:
    """A benchmark's earlier output is never replaced silently: refuse unless --overwrite."""
    existing = [folder / name for name in names if folder is not None and (folder / name).exists()]
    if existing and not overwrite:
        raise SpecError([f"{path}: (top level): already exists; pass --overwrite to replace it" for path in existing])


def cmd_bench(args: argparse.Namespace) -> int:
    """Step time, throughput and peak memory of each spec against full fine-tuning and the floor (one run)."""
    from harness.bench import BenchError, BenchOptions, run_bench
    from harness.bench_report import OUTPUT_FILES, markdown, write_outputs

    for option in ("batch", "source_len", "target_len", "steps", "rounds"):
        if getattr(args, option) < 1:
            raise SpecError([f"--{option.replace('_', '-')}: {getattr(args, option)} must be at least 1"])
    if args.deepspeed is not None and not args.deepspeed.is_file():
        raise SpecError([f"{args.deepspeed}: (top level): file not found"])
    refuse_existing(args.output_dir, OUTPUT_FILES, args.overwrite)  # before the measurements, not after
    options = BenchOptions(
        model=args.model, batch=args.batch, source_len=args.source_len, target_len=args.target_len,
        steps=args.steps, warmup=args.warmup, rounds=args.rounds, device=args.device, precision=args.precision,
        deepspeed=str(args.deepspeed) if args.deepspeed else None, threads=args.threads, profile_rows=args.profile,
    )  # fmt: skip
    try:
        report = run_bench(args.specs, options, log=lambda line: print(line, file=sys.stderr, flush=True))
    except BenchError as error:
        print(error, file=sys.stderr)
        return EXIT_FAILED
    for note in write_outputs(report, args.output_dir) if args.output_dir else []:
        print(note, file=sys.stderr)
    print(json.dumps(report, indent=2) if args.json else markdown(report), end="\n" if args.json else "")
    return EXIT_OK


def cmd_bench_layers(args: argparse.Namespace) -> int:
    """The PHM / LPHM layer's algorithms against nn.Linear, per paper size."""
    from harness.bench_layers import layer_markdown, run_layer_bench

    ranks = [None if r == 0 else r for r in args.rank]
    refuse_existing(args.output_dir, ("bench_layers.json", "bench_layers.md"), args.overwrite)
    report = run_layer_bench(args.n, args.d, ranks, args.k, args.rows, args.repeats, args.threads,
                             log=lambda line: print(line, file=sys.stderr, flush=True))  # fmt: skip
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / "bench_layers.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (args.output_dir / "bench_layers.md").write_text(layer_markdown(report), encoding="utf-8")
    print(json.dumps(report, indent=2) if args.json else layer_markdown(report), end="\n" if args.json else "")
    return EXIT_OK if report["exact"] else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    """Train, evaluate, compare; results.json, report.md and the plot in the output folder."""
    import logging

    from harness.runner import Interrupted, NonFiniteLossError, RunOptions, is_main_process, run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    options = RunOptions(
        profile=args.profile,
        tasks=args.tasks,
        seeds=args.seeds,
        max_train_samples=args.max_train_samples,
        model=args.model,
        data_dir=args.data_dir,
        output_dir=args.output_dir,
        epochs=args.epochs,
        overrides=args.set or [],
        resume=args.resume,
        overwrite=args.overwrite,
        deepspeed=args.deepspeed,
        mnli_split=args.mnli_split,
        keep_checkpoints=args.keep_checkpoints,
        sweep=args.sweep,
    )
    try:
        results, output_dir = run(args.spec, options)
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Interrupted as error:
        print(f"interrupted: {error}", file=sys.stderr)
        return 130
    regression = results["regression"]
    if is_main_process():  # one summary line per launch, not one per process
        print(f"{output_dir}/results.json: {regression.get('summary', '')}".rstrip(": "))
    return EXIT_FAILED if regression.get("ok") is False else EXIT_OK


class Parser(argparse.ArgumentParser):
    """argparse, with a misused command line as one line naming the option (not the usage block), exit 2."""

    def error(self, message: str):
        raise SpecError([f"{self.prog}: {message} (`{self.prog} --help` lists the options)"])


def parser() -> argparse.ArgumentParser:
    root = Parser(prog="python -m harness", description=__doc__.splitlines()[0])
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
    p.add_argument(
        "--recipe", action="store_true", help="check the training run instead (batch, accumulation, schedule, ...)"
    )
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("run", help="train, evaluate and compare a spec's method (smoke or paper profile)")
    p.add_argument("spec", type=Path, metavar="SPEC")
    p.add_argument("--profile", choices=["smoke", "paper"], default="smoke")
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="default: the profile's (smoke: rte) or the spec's")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="default: the spec's training.seed")
    p.add_argument("--max-train-samples", type=int, metavar="N", help="low-resource: N training examples")
    p.add_argument("--model", help="paper: hub name or local folder (default google-t5/t5-base); smoke: a model file")
    p.add_argument("--data-dir", type=Path, help="local data: DIR/<task>/<split>.{parquet,jsonl,csv,tsv}")
    p.add_argument("--output-dir", type=Path, help="default: runs/<spec>-<profile>")
    p.add_argument("--epochs", type=int, help="override the epochs of every task")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a spec field, e.g. training.learning_rate=1e-3"
    )
    p.add_argument("--sweep", action="store_true", help="the paper's grid (reduction factor x n), chosen by validation")
    p.add_argument("--deepspeed", default="auto", help="auto (ZeRO-2 when installed), none, zero1, zero2 or a .json")
    p.add_argument("--mnli-split", choices=["paper", "released"], default="paper")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep the per-epoch checkpoints")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run in --output-dir")
    group.add_argument("--overwrite", action="store_true", help="replace an existing --output-dir")
    p.set_defaults(run=cmd_run)

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

    p = sub.add_parser("compare", help="re-check saved results.json files against the published numbers")
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="results.json files (or folders of them)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_compare)

    p = sub.add_parser("report", help="build report.md and the score/parameters plot from results")
    p.add_argument("inputs", nargs="+", type=Path, metavar="DIR_OR_RESULTS", help="results.json files or folders")
    p.add_argument("--output-dir", type=Path, default=None, help="default: the one folder (or file's folder) given")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report.md and plot")
    p.set_defaults(run=cmd_report)
    p = sub.add_parser("bench", help="step time and peak memory of methods against full fine-tuning and the floor")
    p.add_argument("specs", nargs="+", type=Path, metavar="SPEC")
    p.add_argument("--model", default="t5_base", help="a model file in spec/models/ (default t5_base)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--source-len", type=int, default=128)
    p.add_argument("--target-len", type=int, default=4)
    p.add_argument("--steps", type=int, default=2, help="timed steps per process (default 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds, a process per method each (default 2)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--deepspeed", type=Path, default=None, help="DeepSpeed config, e.g. spec/deepspeed/zero2.json")
    p.add_argument("--threads", type=int, default=None, help="torch threads per process (default: torch's)")
    p.add_argument("--profile", type=int, default=0, metavar="ROWS", help="profile one extra step: top ROWS ops")
    p.add_argument("--output-dir", type=Path, default=None, help="write bench.json, bench.md, bench.png here")
    p.add_argument("--overwrite", action="store_true", help="replace bench.* already in --output-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_bench)

    p = sub.add_parser("bench-layers", help="PHM/LPHM layer algorithms against nn.Linear on the paper's sizes")
    p.add_argument("--k", type=int, default=768, help="d_model (default 768)")
    p.add_argument("--d", type=int, nargs="+", default=[24, 48, 96], help="bottleneck sizes")
    p.add_argument("--n", type=int, nargs="+", default=[4, 8, 12])
    p.add_argument("--rank", type=int, nargs="+", default=[1, 0], help="LPHM ranks; 0 = PHM (full B)")
    p.add_argument("--rows", type=int, default=1024, help="input rows (batch × source length; default 8 × 128)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--output-dir", type=Path, default=None, help="write bench_layers.json and .md here")
    p.add_argument("--overwrite", action="store_true", help="replace bench_layers.* already in --output-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_bench_layers)
    return root


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        return args.run(args)
    except SpecError as error:
        for line in error.errors:
            print(line, file=sys.stderr)
        return EXIT_BAD_INPUT
