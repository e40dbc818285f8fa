"""`run SPEC`: train, evaluate and compare (or sweep the paper's grid)."""

from __future__ import annotations

import argparse
import sys

from harness.cli import options
from harness.cli.exits import EXIT_FAILED, EXIT_OK
from harness.errors import OptionError
from harness.limits import MAX_EPOCHS, MAX_LOGGING_STEPS, MAX_TRAIN_SAMPLES, SEED_MAX


def cmd_run(args: argparse.Namespace) -> int:
    """Train, evaluate, compare; results.json, report.md and the plot in the output folder."""
    import logging

    from harness.spec.fidelity import parse_arguments
    from harness.train.devices import is_main_process, launch
    from harness.train.fidelity_sweep import sweep_fidelity
    from harness.train.run_options import RunOptions
    from harness.train.signals import Interrupted
    from harness.train.spec_run import run_spec
    from harness.train.sweep import sweep
    from harness.train.trainer import NonFiniteLossError

    launch()  # a malformed RANK/WORLD_SIZE/… is one line before anything is read or written
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # `--fidelity`, then `--mnli-split`, read once and as `data` and `eval` read them (what they refuse is refused
    # here, before anything runs); the spec's `fidelity:` takes them before any `--set`, which wins
    try:
        fidelity = parse_arguments(args.fidelity, args.mnli_split)
    except ValueError as error:
        raise OptionError([f"--fidelity: {error}"]) from None
    run_options = RunOptions(
        profile=args.profile,
        tasks=args.tasks,
        seeds=args.seeds,
        max_train_samples=args.max_train_samples,
        model=args.model,
        pretrained=args.pretrained,
        data_dir=args.data_dir,
        output_dir=args.output_dir,
        epochs=args.epochs,
        overrides=args.set or [],
        fidelity=fidelity,
        resume=args.resume,
        overwrite=args.overwrite,
        deepspeed=args.deepspeed,
        keep_checkpoints=args.keep_checkpoints,
        report_to=args.report_to,
        logging_steps=args.logging_steps,
    )
    try:
        if args.sweep and args.sweep_fidelity:
            raise OptionError(["--sweep and --sweep-fidelity: run one sweep at a time"])
        if args.sweep:
            (summary, output_dir), ok = sweep(args.spec, run_options), True
        elif args.sweep_fidelity:
            (summary, output_dir), ok = sweep_fidelity(args.spec, run_options), True
        else:
            results, output_dir = run_spec(args.spec, run_options)
            summary, ok = results.regression.summary(), results.regression.ok
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Interrupted as error:
        print(f"interrupted: {error}", file=sys.stderr)
        return 130
    if is_main_process():  # one summary line per launch, not one per process
        print(f"{output_dir}{'' if args.sweep or args.sweep_fidelity else '/results.json'}: {summary}")
    return EXIT_OK if ok else EXIT_FAILED


def add_parsers(sub) -> None:
    p = sub.add_parser("run", help="train, evaluate and compare a spec's method (smoke or paper profile)")
    p.add_argument("spec", type=options.path, metavar="SPEC")
    p.add_argument("--profile", choices=["smoke", "paper"], default="smoke")
    p.add_argument(
        "--tasks", nargs="+", type=options.name, metavar="TASK",
        help="default: the profile's (smoke: rte) or the spec's; each task once (a repeat is refused)",
    )  # fmt: skip
    p.add_argument(
        "--seeds", nargs="+", type=options.seed, metavar="SEED",
        help=f"default: the spec's training.seed; each in 0..{SEED_MAX}, once (a repeat is refused)",
    )  # fmt: skip
    p.add_argument(
        "--max-train-samples",
        type=int,
        metavar="N",
        help=f"low-resource: N training examples (1..{MAX_TRAIN_SAMPLES:,})",
    )
    p.add_argument(
        "--model",
        type=options.name,
        help="a model file, a local Hugging Face folder or a hub id (default: smoke, the "
        "spec's check_model; paper, the spec's model)",
    )
    p.add_argument(
        "--pretrained",
        metavar="DIR_OR_HUB_ID",
        type=options.name,
        help="paper: the weights and tokenizer of a model-file "
        "--model (default: the file's `pretrained`, e.g. google-t5/t5-base)",
    )
    p.add_argument("--data-dir", type=options.path, help="local data: DIR/<task>/<split>.{parquet,jsonl,csv,tsv}")
    p.add_argument("--output-dir", type=options.path, help="default: runs/<spec>-<profile>")
    p.add_argument("--epochs", type=int, help=f"override the epochs of every task (1..{MAX_EPOCHS})")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a spec field, e.g. training.learning_rate=1e-3"
    )
    p.add_argument("--sweep", action="store_true", help="the paper's grid (reduction factor x n), chosen by validation")
    p.add_argument(
        "--deepspeed",
        default="auto",
        type=options.name,
        help="auto (ZeRO-2 when installed), none, zero1, zero2 or a .json",
    )
    p.add_argument("--fidelity", action="append", metavar="PRESET_OR_NAME=POSITION",
                   help="released: every quirk of the released code (paper: the spec's default); NAME=released: "
                   "one alone, e.g. said_backward=released (python -m harness fidelity lists them)")  # fmt: skip
    p.add_argument("--sweep-fidelity", action="store_true",
                   help="paper, released and each quirk alone, same seeds: report.md says what moves")  # fmt: skip
    p.add_argument("--mnli-split", choices=["paper", "released"], default=None,
                   help="MNLI's split, after --fidelity: as --fidelity mnli_split=… (default: as is)")  # fmt: skip
    p.add_argument("--keep-checkpoints", action="store_true", help="keep the per-epoch checkpoints")
    p.add_argument("--report-to", choices=("none", "tensorboard", "wandb"), default="none",
                   help="log the loss to TensorBoard or W&B as well (extras: tensorboard, wandb)")  # fmt: skip
    p.add_argument(
        "--logging-steps",
        type=int,
        metavar="N",
        help=f"log the loss every N steps (1..{MAX_LOGGING_STEPS:,}; default: once per epoch)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run in --output-dir")
    group.add_argument("--overwrite", action="store_true", help="replace an existing --output-dir")
    p.set_defaults(run=cmd_run)
