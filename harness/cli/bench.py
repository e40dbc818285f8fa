"""The efficiency benchmarks: `bench` (methods) and `bench-layers` (PHM layer algorithms)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli import options
from harness.cli.exits import EXIT_FAILED, EXIT_OK
from harness.errors import OptionError, OutputDirError


def cmd_bench(args: argparse.Namespace) -> int:
    """Step time, throughput and peak memory of each spec against full fine-tuning and the floor (one run)."""
    from harness.bench.report import OUTPUT_FILES, markdown, write_outputs
    from harness.bench.run import BenchError, BenchOptions, run_bench

    for option, (low, high) in BENCH_BOUNDS.items():
        value, name = getattr(args, option), f"--{option.replace('_', '-')}"
        if value is not None and value < low:
            raise OptionError([f"{name}: {value} must be at least {low}"])
        if value is not None and value > high:
            raise OptionError([f"{name}: {value} must be at most {high:,}"])
    from harness.inputs import present
    from harness.train.devices import deepspeed_config, device_of

    device_of(args.device)  # this machine has it, before a worker starts (torch would fail in each)
    if args.deepspeed is not None:
        if not present(args.deepspeed):
            raise OptionError([f"{args.deepspeed}: (top level): file not found"])
        if args.deepspeed.suffix != ".json":
            raise OptionError([f"{args.deepspeed}: --deepspeed: expected a DeepSpeed config, a .json file"])
        deepspeed_config(str(args.deepspeed))  # read as `run` reads it: bounded, regular, the recipe's keys "auto"
    refuse_existing(args.output_dir, OUTPUT_FILES, args.overwrite)  # before the measurements, not after
    options = BenchOptions(
        model=args.model, batch=args.batch, source_len=args.source_len, target_len=args.target_len,
        steps=args.steps, warmup=args.warmup, rounds=args.rounds, device=args.device, precision=args.precision,
        deepspeed=str(args.deepspeed) if args.deepspeed else None, threads=args.threads, op_rows=args.op_times,
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
    from harness.bench.layers import layer_markdown, run_layer_bench

    layer_errors = layer_bench_errors(args)
    if layer_errors:
        raise OptionError(layer_errors[:1])  # one line: the first thing to change
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


# `bench`'s counts: (lowest, highest); the highest refuse the absurd (a typo's 10**9 steps or batch) before a
# process is started. --warmup may be 0 (no untimed step), --op-times 0 (no op times); --threads unset is torch's.
BENCH_BOUNDS = {
    "batch": (1, 100_000), "source_len": (1, 100_000), "target_len": (1, 100_000), "steps": (1, 100_000),
    "warmup": (0, 100_000), "rounds": (1, 1_000), "threads": (1, 1_024), "op_times": (0, 10_000),
}  # fmt: skip
# bench-layers: every case holds x (rows × k), H (k × d) and their gradients at once; past this many elements
# (256 MiB of float32 each) a typo would exhaust the memory, or take hours, before one line is printed
MAX_LAYER_ELEMENTS = 2**26


def layer_bench_errors(args: argparse.Namespace) -> list[str]:
    """What `bench-layers` cannot measure: an n dividing neither k nor a d (such a case would be silently
    skipped, leaving an empty table), sizes too large together, a rank above the sizes."""
    errors = []
    for n in args.n:
        if args.k % n:
            errors.append(f"--n: {n} does not divide --k {args.k}; each n must divide k and every d")
        for d in args.d:
            if d % n:
                errors.append(f"--n: {n} does not divide --d {d}; each n must divide k and every d")
    for d in args.d:
        if args.k * d > MAX_LAYER_ELEMENTS:
            errors.append(f"--d: {d} × --k {args.k} = {args.k * d:,} weights; at most {MAX_LAYER_ELEMENTS:,}")
    if args.rows * args.k > MAX_LAYER_ELEMENTS:
        errors.append(f"--rows: {args.rows} × --k {args.k} = {args.rows * args.k:,} inputs; at most "
                      f"{MAX_LAYER_ELEMENTS:,}")  # fmt: skip
    for rank in args.rank:
        if rank > min(args.k, *args.d):
            errors.append(f"--rank: {rank} is above the layer sizes (k {args.k}, d {min(args.d)}); 0 is PHM")
    if args.output_dir is not None and args.output_dir.exists() and not args.output_dir.is_dir():
        errors.append(f"{args.output_dir}: --output-dir: not a folder")
    return errors


def refuse_existing(folder: Path | None, names: tuple[str, ...], overwrite: bool) -> None:
    """A benchmark's earlier output is never replaced silently: refuse unless --overwrite; an --output-dir
    that is a file is refused too (before the measurements, which would be lost when writing failed)."""
    if folder is not None and folder.exists() and not folder.is_dir():
        raise OutputDirError([f"{folder}: --output-dir: not a folder"])
    existing = [folder / name for name in names if folder is not None and (folder / name).exists()]
    if existing and not overwrite:
        raise OutputDirError(
            [f"{path}: (top level): already exists; pass --overwrite to replace it" for path in existing]
        )


def add_parsers(sub) -> None:
    p = sub.add_parser("bench", help="step time and peak memory of methods against full fine-tuning and the floor")
    p.add_argument("specs", nargs="+", type=options.path, metavar="SPEC")
    p.add_argument("--model", type=options.name, default="t5_base", help="a model file in spec/models/ (t5_base)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--source-len", type=int, default=128)
    p.add_argument("--target-len", type=int, default=4)
    p.add_argument("--steps", type=int, default=2, help="timed steps per process (default 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds, a process per method each (default 2)")
    p.add_argument("--device", type=options.device, default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--deepspeed", type=options.path, default=None,
                   help="DeepSpeed config, e.g. spec/deepspeed/zero2.json")  # fmt: skip
    p.add_argument("--threads", type=int, default=None, help="torch threads per process (default: torch's)")
    p.add_argument("--op-times", type=int, default=0, metavar="ROWS", help="time every op of one extra step: top ROWS")
    p.add_argument("--output-dir", type=options.path, default=None, help="write bench.json, bench.md, bench.png here")
    p.add_argument("--overwrite", action="store_true", help="replace bench.* already in --output-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_bench)

    p = sub.add_parser("bench-layers", help="PHM/LPHM layer algorithms against nn.Linear on the paper's sizes")
    size = options.bounded_count(1, 16_384)  # T5-XXL's d_model is 4096
    p.add_argument("--k", type=size, default=768, help="d_model (default 768)")
    p.add_argument("--d", type=size, nargs="+", default=[24, 48, 96], help="bottleneck sizes")
    p.add_argument("--n", type=options.bounded_count(1, 1_024), nargs="+", default=[4, 8, 12])
    p.add_argument("--rank", type=options.bounded_count(0, 16_384), nargs="+", default=[1, 0],
                   help="LPHM ranks; 0 = PHM (full B)")  # fmt: skip
    p.add_argument("--rows", type=options.bounded_count(1, 1_000_000), default=1024,
                   help="input rows (batch × source length; default 8 × 128)")  # fmt: skip
    p.add_argument("--repeats", type=options.bounded_count(1, 10_000), default=7)
    p.add_argument("--threads", type=options.bounded_count(1, 1_024), default=None,
                   help="torch threads (default: torch's)")  # fmt: skip
    p.add_argument("--output-dir", type=options.path, default=None, help="write bench_layers.json and .md here")
    p.add_argument("--overwrite", action="store_true", help="replace bench_layers.* already in --output-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_bench_layers)
