"""The efficiency benchmarks: `bench` (methods) and `bench-layers` (PHM layer algorithms)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli.exits import EXIT_FAILED, EXIT_OK
from harness.errors import SpecError


def cmd_bench(args: argparse.Namespace) -> int:
    """Step time, throughput and peak memory of each spec against full fine-tuning and the floor (one run)."""
    from harness.bench.report import OUTPUT_FILES, markdown, write_outputs
    from harness.bench.run import BenchError, BenchOptions, run_bench

    for option in ("batch", "source_len", "target_len", "steps", "rounds"):
        if getattr(args, option) < 1:
            raise SpecError([f"--{option.replace('_', '-')}: {getattr(args, option)} must be at least 1"])
    if args.deepspeed is not None and not args.deepspeed.is_file():
        raise SpecError([f"{args.deepspeed}: (top level): file not found"])
    refuse_existing(args.output_dir, OUTPUT_FILES, args.overwrite)  # before the measurements, not after
    options = BenchOptions(
        model=args.model, batch=args.batch, source_len=args.source_len, target_len=args.target_len,
        steps=args.steps, warmup=args.warmup, rounds=args.rounds, device=args.device, precision=args.precision,
        deepspeed=str(args.deepspeed) if args.deepspeed else None, threads=args.threads, profile_rows=args.profile_ops,
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


def refuse_existing(folder: Path | None, names: tuple[str, ...], overwrite: bool) -> None:
    """A benchmark's earlier output is never replaced silently: refuse unless --overwrite."""
    existing = [folder / name for name in names if folder is not None and (folder / name).exists()]
    if existing and not overwrite:
        raise SpecError([f"{path}: (top level): already exists; pass --overwrite to replace it" for path in existing])


def add_parsers(sub) -> None:
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
    p.add_argument("--profile-ops", type=int, default=0, metavar="ROWS", help="profile one extra step: top ROWS ops")
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
