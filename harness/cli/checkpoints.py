"""Commands on a saved checkpoint: `eval` (scores and predictions on a task's split), `predict` (generations),
`export --merged` (a stock T5 folder, where the method folds into one)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli.bench import refuse_existing
from harness.cli.exits import EXIT_OK
from harness.errors import SpecError

EVAL_FILES = ("eval.json", "predictions.jsonl")


def cmd_eval(args: argparse.Namespace) -> int:
    """Every metric of the checkpoint's task (or --task) on a split, and each example's prediction."""
    from harness.train.checkpoint_eval import evaluate, write_predictions

    if args.toy and args.data_dir is not None:
        raise SpecError(["--toy and --data-dir: pass one source of data, not both"])
    refuse_existing(args.output_dir, EVAL_FILES, args.overwrite)
    report, examples, predictions = evaluate(
        args.checkpoint, args.task, args.split, args.data_dir, args.toy, args.base_model, args.device, args.fidelity
    )
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        write_predictions(args.output_dir / "predictions.jsonl", examples, predictions)
        (args.output_dir / "eval.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    scores = ", ".join(f"{name} {value:.2f}" for name, value in report["scores"].items())
    print(f"{report['method']} ({report['checkpoint']}) on {report['task']} {report['split']}, "
          f"{report['examples']} examples from {report['data']}, fidelity {report['fidelity']}: {scores}")  # fmt: skip
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    """Greedy generations of the checkpoint for each --text, or each line of --file."""
    from harness.train.checkpoint_eval import predict

    texts = list(args.text or [])
    if args.file is not None:
        if not args.file.is_file():
            raise SpecError([f"{args.file}: (top level): file not found"])
        texts += [line for line in args.file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise SpecError(["predict: pass --text TEXT (repeatable) or --file FILE (one input per line)"])
    if args.max_length is not None and args.max_length < 1:
        raise SpecError([f"--max-length: {args.max_length} must be at least 1"])
    predictions = predict(args.checkpoint, texts, args.base_model, args.max_length, args.device)
    if args.json:
        print(json.dumps([{"input": t, "prediction": p} for t, p in zip(texts, predictions, strict=True)], indent=2))
    else:
        sys.stdout.write("".join(f"{prediction}\n" for prediction in predictions))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """The checkpoint merged into a plain T5ForConditionalGeneration folder (full fine-tuning, Intrinsic-SAID)."""
    from harness.model.export import export_merged

    output = export_merged(args.checkpoint, args.merged, args.base_model)
    print(f"{output}: the merged model (config, safetensors, tokenizer); load it with from_pretrained")
    return EXIT_OK


def add_parsers(sub) -> None:
    p = sub.add_parser("eval", help="score a saved checkpoint on a task's split, with every example's prediction")
    p.add_argument(
        "checkpoint", type=Path, metavar="CHECKPOINT", help="a checkpoint folder, e.g. <run>/rte/seed42/best"
    )
    p.add_argument("--task", default=None, help="default: the checkpoint's own task")
    p.add_argument("--split", choices=("train", "validation", "test"), default="test")
    p.add_argument("--data-dir", type=Path, default=None, help="DIR/<task>/<split>.{parquet,jsonl,csv,tsv} "
                   "(default: the data the checkpoint's run used)")  # fmt: skip
    p.add_argument("--toy", action="store_true", help="the generated toy data")
    p.add_argument("--fidelity", action="append", metavar="PRESET_OR_NAME=POSITION",
                   help="other formats, splits, metrics than the run's: released, mnli_split=paper, …")  # fmt: skip
    p.add_argument("--base-model", default=None, help="another copy of the base model (folder or hub id)")
    p.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda when available)")
    p.add_argument("--output-dir", type=Path, default=None, help="write eval.json and predictions.jsonl here")
    p.add_argument("--overwrite", action="store_true", help="replace eval.json and predictions.jsonl there")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("predict", help="generate with a saved checkpoint")
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    p.add_argument("--text", action="append", metavar="TEXT", help="an input as the model sees a source (repeatable)")
    p.add_argument("--file", type=Path, default=None, help="one input per line")
    p.add_argument("--max-length", type=int, default=None, help="default: the run's generation_max_length")
    p.add_argument("--base-model", default=None, help="another copy of the base model (folder or hub id)")
    p.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda when available)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("export", help="merge a checkpoint into a stock T5 folder (full fine-tuning, Intrinsic-SAID)")
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    p.add_argument("--merged", type=Path, required=True, metavar="OUT", help="a new folder for the merged model")
    p.add_argument("--base-model", default=None, help="another copy of the base model (folder or hub id)")
    p.set_defaults(run=cmd_export)
