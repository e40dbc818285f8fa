"""Commands on a saved checkpoint: `eval` (scores and predictions on a task's split), `predict` (generations),
`export --merged` (a stock T5 folder, where the method folds into one)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli import options
from harness.cli.exits import EXIT_OK
from harness.errors import InputError, OptionError
from harness.limits import MAX_LENGTH

EVAL_FILES = ("eval.json", "predictions.jsonl")
# `predict`'s inputs: each far above a source the model could read (sources are cut to the run's source_length
# tokens, 48 to 512), and bounded so that a wrong file (a log, a data dump) is one line, not hours of generation.
MAX_INPUT_CHARS = 100_000  # characters an input (a line of --file, a --text)
MAX_INPUT_BYTES = 10_000_000  # bytes of --file
MAX_INPUTS = 100_000  # inputs in all


def cmd_eval(args: argparse.Namespace) -> int:
    """Every metric of the checkpoint's task (or --task) on a split, and each example's prediction."""
    from harness.train.checkpoint_eval import check_outputs, evaluate, write_predictions

    if args.toy and args.data_dir is not None:
        raise OptionError(["--toy and --data-dir: pass one source of data, not both"])
    if args.output_dir is not None:
        check_outputs(args.output_dir, EVAL_FILES, args.overwrite)  # before the evaluation, not after
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
        texts += read_inputs(args.file)
    if len(texts) > MAX_INPUTS:
        raise OptionError([f"predict: {len(texts):,} inputs; at most {MAX_INPUTS:,} at once (split the file)"])
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


def read_inputs(path: Path) -> list[str]:
    """The non-blank lines of `path` (split at \\n only; a \\r before it dropped), each an input; one line when
    it is no regular file (a pipe would block), not UTF-8 text, too large, or holds no input at all."""
    from harness.inputs import decode_utf8, present, read_bytes, where

    what = "predict input file"
    if not present(path):
        raise InputError([where(path, "file not found")])  # as every command words a missing file
    text = decode_utf8(read_bytes(path, MAX_INPUT_BYTES, what), path, what)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_INPUT_CHARS:
            raise InputError([f"{path}: line {number}: {len(line):,} characters; an input is at most "
                              f"{MAX_INPUT_CHARS:,}"])  # fmt: skip
    inputs = [line for line in lines if line.strip()]
    if not inputs:
        raise InputError([where(path, "holds no input (empty, or blank lines only); expected one input per line")])
    return inputs


def input_text(text: str) -> str:
    """A `--text`: not blank (the model would generate from `</s>` alone), at most MAX_INPUT_CHARS."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty input; pass the text the model should read")
    if len(text) > MAX_INPUT_CHARS:
        raise argparse.ArgumentTypeError(f"{len(text):,} characters; an input is at most {MAX_INPUT_CHARS:,}")
    return text


BASE_MODEL = "another copy of the base model (folder or hub id)"
DEVICE = "cpu, cuda, cuda:N or mps (default: cuda when available)"


def add_parsers(sub) -> None:
    p = sub.add_parser("eval", help="score a saved checkpoint on a task's split, with every example's prediction")
    p.add_argument(
        "checkpoint", type=options.path, metavar="CHECKPOINT", help="a checkpoint folder, e.g. <run>/rte/seed42/best"
    )
    p.add_argument("--task", type=options.name, default=None, help="default: the checkpoint's own task")
    p.add_argument("--split", choices=("train", "validation", "test"), default="test")
    p.add_argument("--data-dir", type=options.path, default=None, help="DIR/<task>/<split>.{parquet,jsonl,csv,tsv} "
                   "(default: the data the checkpoint's run used)")  # fmt: skip
    p.add_argument("--toy", action="store_true", help="the generated toy data")
    p.add_argument("--fidelity", action="append", metavar="PRESET_OR_NAME=POSITION",
                   help="other formats, splits, metrics than the run's: released, mnli_split=paper, …")  # fmt: skip
    p.add_argument("--base-model", type=options.name, default=None, help=BASE_MODEL)
    p.add_argument("--device", type=options.device, default=None, help=DEVICE)
    p.add_argument("--output-dir", type=options.path, default=None, help="write eval.json and predictions.jsonl here")
    p.add_argument("--overwrite", action="store_true", help="replace eval.json and predictions.jsonl there")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("predict", help="generate with a saved checkpoint")
    p.add_argument("checkpoint", type=options.path, metavar="CHECKPOINT")
    p.add_argument("--text", action="append", type=input_text, metavar="TEXT",
                   help=f"an input as the model sees a source (repeatable; ≤ {MAX_INPUT_CHARS:,} chars)")  # fmt: skip
    p.add_argument("--file", type=options.path, default=None,
                   help=f"one input per line, UTF-8 (blank lines skipped; at most {MAX_INPUTS:,} inputs of "
                   f"{MAX_INPUT_CHARS:,} characters, {MAX_INPUT_BYTES // 1_000_000} MB)")  # fmt: skip
    p.add_argument("--max-length", type=options.bounded_count(1, MAX_LENGTH), default=None,
                   help=f"tokens generated, 1..{MAX_LENGTH:,} (default: the run's generation_max_length)")  # fmt: skip
    p.add_argument("--base-model", type=options.name, default=None, help=BASE_MODEL)
    p.add_argument("--device", type=options.device, default=None, help=DEVICE)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("export", help="merge a checkpoint into a stock T5 folder (full fine-tuning, Intrinsic-SAID)")
    p.add_argument("checkpoint", type=options.path, metavar="CHECKPOINT")
    p.add_argument("--merged", type=options.path, required=True, metavar="OUT", help="a new (or empty) folder")
    p.add_argument("--base-model", type=options.name, default=None, help=BASE_MODEL)
    p.set_defaults(run=cmd_export)
