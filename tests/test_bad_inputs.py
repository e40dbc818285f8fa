"""The bad-input corpus: every user mistake is one line on stderr naming what is wrong, exit 2, no traceback.

Malformed specs (each derived from spec/compacter_pp.yaml by one change, checked with `validate`),
malformed data folders (checked with `data TASK --data-dir`, which reads and checks every row without
training) and misused command lines, all run in-process through `harness.cli.main`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from harness.cli import EXIT_BAD_INPUT, main
from harness.data.toy import toy_rows
from harness.spec.model_choice import load_model_file
from tests.conftest import SPEC_DIR

SPEC = SPEC_DIR / "compacter_pp.yaml"
SPEC_TEXT = SPEC.read_text(encoding="utf-8")


def tree(*roots: Path) -> dict[str, bytes | str]:
    """Everything under `roots` (each root included): a file's bytes, a link's target, a folder's mark."""
    found: dict[str, bytes | str] = {}
    for root in roots:
        if not root.exists() and not root.is_symlink():
            found[str(root)] = "absent"
            continue
        for path in [root, *sorted(root.rglob("*"))] if root.is_dir() and not root.is_symlink() else [root]:
            if path.is_symlink():
                found[str(path)] = f"link to {path.readlink()}"
            elif path.is_dir():
                found[str(path)] = "folder"
            elif path.is_file():
                found[str(path)] = path.read_bytes()
            else:
                found[str(path)] = "special"
    return found


def one_line_unchanged(capsys, roots: list[Path], *argv: str | Path) -> str:
    """`one_line`, and every file, link and folder under `roots` byte-identical afterwards (nothing written,
    nothing removed)."""
    before = tree(*roots)
    line = one_line(capsys, *argv)
    assert tree(*roots) == before, f"files changed on disk by: {argv}"
    return line


def one_line(capsys, *argv: str | Path) -> str:
    """Run the command; assert exit 2, no traceback and exactly one non-empty line on stderr; return it."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == EXIT_BAD_INPUT, f"exit {code}; stderr: {err}"
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected one line on stderr, got: {err!r}"
    return lines[0]


# --- specs -------------------------------------------------------------------------------------------------


def spec_data() -> dict[str, Any]:
    return yaml.safe_load(SPEC_TEXT)


def setting(dotted: str, value: Any) -> Callable[[], str]:
    """The spec with `dotted` (a.b[0].c) set to `value`, as YAML text."""

    def make() -> str:
        data = spec_data()
        *parents, last = _parts(dotted)
        node = data
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
        node[last] = value
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    return make


def removing(dotted: str) -> Callable[[], str]:
    def make() -> str:
        data = spec_data()
        *parents, last = _parts(dotted)
        node = data
        for part in parents:
            node = node[part]
        del node[last]
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    return make


def _parts(dotted: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in dotted.split("."):
        name, _, index = piece.partition("[")
        parts.append(name)
        if index:
            parts.append(int(index.rstrip("]")))
    return parts


def replacing(old: str, new: str) -> Callable[[], str]:
    """The spec's text with the first `old` replaced by `new` (for what YAML data cannot express)."""

    def make() -> str:
        assert old in SPEC_TEXT, old
        return SPEC_TEXT.replace(old, new, 1)

    return make


def text(value: str | bytes) -> Callable[[], str | bytes]:
    return lambda: value


def position_of(fragment: str) -> str:
    """`line L, column C` (1-based) of the first `fragment` in spec/compacter_pp.yaml."""
    before = SPEC_TEXT[: SPEC_TEXT.index(fragment)]
    return f"line {before.count(chr(10)) + 1}, column {len(before) - before.rfind(chr(10))}"


def line_of(fragment: str) -> int:
    """The 1-based line of spec/compacter_pp.yaml holding `fragment`."""
    return next(i for i, line in enumerate(SPEC_TEXT.splitlines(), 1) if fragment in line)


RULE_INIT = '{params: "compacter_pp.phm_rule"'
PUBLISHED = {"task": "rte", "metric": "accuracy", "value": 70.0, "tolerance": 1.0, "source": "a table"}
NESTED_BLOCKS = "".join(f"{'  ' * depth}k{depth}:\n" for depth in range(60)) + "  " * 60 + "leaf: 1\n"


@dataclass(frozen=True)
class SpecCase:
    id: str
    make: Callable[[], str | bytes]
    key: str  # what the line names after the file
    expected: str  # what the line says was expected


# one case a line or two: the table reads better unwrapped
# fmt: off
SPEC_CASES = [
    # the file itself
    SpecCase("empty file", text(""), "(top level)", "the file is empty; expected a mapping of keys"),
    SpecCase("only a comment", text("# nothing yet\n"), "(top level)", "the file is empty"),
    SpecCase("a scalar", text("compacter_pp\n"), "(top level)", "expected a mapping of keys, got str"),
    SpecCase("a number", text("42\n"), "(top level)", "expected a mapping of keys, got int"),
    SpecCase("binary garbage", text(bytes(range(256)) * 4), "(top level)", "not UTF-8 text (byte 0x80 on line 2)"),
    SpecCase("latin-1 text", text(SPEC_TEXT.replace("GLUE", "GLUÉ").encode("latin-1")), "(top level)",
             f"not UTF-8 text (byte 0xc9 on line {line_of('GLUE')}); save the spec as UTF-8"),
    SpecCase("a NUL character", text(SPEC_TEXT.replace("Compacter++:", "Compacter\x00++:")),
             position_of("++:"),
             "invalid YAML: character #x0000: special characters are not allowed"),
    SpecCase(
        "unclosed bracket",
        replacing(RULE_INIT, RULE_INIT + " ["),
        f"line {line_of(RULE_INIT)}",
        "invalid YAML",
    ),
    SpecCase("tab indentation", replacing("  name: compacter_pp", "\tname: compacter_pp"),
             f"line {line_of('  name: compacter_pp')}, column 1", "found character '\\t' that cannot start any token"),
    SpecCase(
        "a python tag",
        replacing("description: >-", "description: !!python/object/apply:os.system ['true']\nold: >-"),
        f"line {line_of('description:')}",
        "invalid YAML: could not determine a constructor",
    ),
    SpecCase(
        "a key twice in a block",
        replacing("    n: 4\n", "    n: 4\n    n: 8\n"),
        f"line {line_of('    n: 4') + 1}",
        f"duplicate key 'n' (first on line {line_of('    n: 4')}, again on line {line_of('    n: 4') + 1})",
    ),
    SpecCase("indentation 60 deep", text(NESTED_BLOCKS), "(top level)", "a spec nests at most 50"),
    SpecCase("unknown top-level key", setting("invariant", {"budget": None}), "invariant", "unknown key"),
    SpecCase("name not a string", setting("name", 5), "name", "Input should be a valid string"),
    SpecCase("missing description", removing("description"), "description", "required key is missing"),
    SpecCase("description a list", setting("description", ["a", "b"]), "description", "Input should be a valid string"),
    # paper
    SpecCase("arxiv id malformed", setting("paper.arxiv", "2106-04647"), "paper.arxiv", "should match pattern"),
    SpecCase("version a number", setting("paper.version", 2), "paper.version", "valid string"),
    SpecCase("unknown paper key", setting("paper.doi", "10.1/x"), "paper.doi", "unknown key"),
    # method
    SpecCase("method a string", setting("method", "compacter_pp"), "method", "valid dictionary"),
    SpecCase("method without name", removing("method.name"), "method.name", "required key is missing"),
    SpecCase("method misspelt", setting("method.name", "compacterpp"), "method.name", "did you mean 'compacter_pp'"),
    SpecCase("method.args a list", setting("method.args", [4, 1]), "method.args", "valid dictionary"),
    SpecCase("n a float", setting("method.args.n", 4.0), "method.args.n", "valid integer"),
    SpecCase("n a boolean", setting("method.args.n", True), "method.args.n", "valid integer"),
    SpecCase("flag a string", setting("method.args.shared_phm_rule", "yes"), "method.args.shared_phm_rule", "boolean"),
    SpecCase("activation a number", setting("method.args.non_linearity", 3), "method.args.non_linearity", "string"),
    SpecCase("argument of another method", setting("method.args.sublayers", ["feed_forward"]),
             "method.args.sublayers", "unexpected argument for compacter_pp (accepts: reduction_factor"),
    SpecCase("n not dividing", setting("method.args.n", 7), "method.args.n", "7 must divide d_model=768"),
    SpecCase("reduction factor 0", setting("method.args.reduction_factor", 0), "method.args.reduction_factor",
             "must be a positive divisor of d_model=768"),
    SpecCase("rank 0", setting("method.args.rank", 0), "method.args.rank", "must be a positive integer, got 0"),
    SpecCase("negative rule std", setting("method.args.phm_rule_init_std", -1e-4), "method.args.phm_rule_init_std",
             "must be positive"),
    SpecCase("negative Glorot gain", setting("method.args.weight_init_gain", -5.0), "method.args.weight_init_gain",
             "the Glorot gain must be positive, got -5.0 (model t5_base)"),
    SpecCase("zero Glorot gain", setting("method.args.weight_init_gain", 0.0), "method.args.weight_init_gain",
             "must be positive"),
    SpecCase("infinite gain", replacing("weight_init_gain: 1.4142135623730951", "weight_init_gain: .inf"),
             "method.args.weight_init_gain", "finite number"),
    SpecCase("NaN rule std", replacing("phm_rule_init_std: 1.0e-4", "phm_rule_init_std: .nan"),
             "method.args.phm_rule_init_std", "finite number"),
    SpecCase("unknown activation", setting("method.args.non_linearity", "relux"), "method.args.non_linearity",
             "unknown activation 'relux'"),
    SpecCase("block out of range", setting("method.args.encoder_blocks", [12]), "method.args.encoder_blocks",
             "encoder has blocks 0..11; got [12]"),
    SpecCase("blocks a word", setting("method.args.decoder_blocks", "all"), "method.args.decoder_blocks", "tuple"),
    # models
    SpecCase("model hyphenated", setting("model", "t5-base"), "model", "did you mean 't5_base'"),
    SpecCase("model a number", setting("model", 5), "model", "valid string"),
    SpecCase("check model misspelt", setting("check_model", "t5_tinny"), "check_model", "did you mean 't5_tiny'"),
    SpecCase("defaults with extension", setting("defaults", "paper.yaml"), "defaults", "did you mean 'paper'"),
    SpecCase("defaults a number", setting("defaults", 5), "defaults", "expected the name of a file in _defaults/"),
    # trainable
    SpecCase("trainable a string", setting("trainable", "*.compacter_pp.*"), "trainable", "valid list"),
    SpecCase("trainable empty", setting("trainable", []), "trainable", "at least 1 item"),
    SpecCase("trainable glob a number", setting("trainable[1]", 5), "trainable[1]", "valid string"),
    SpecCase("trainable glob of another method", setting("trainable[0]", "*.compacter.*"), "trainable[0]",
             "glob '*.compacter.*' matches no parameter of model t5_base"),
    # budget
    SpecCase("negative budget", setting("budget.trainable_params", -1), "budget.trainable_params", "greater than"),
    SpecCase("budget with commas", setting("budget.trainable_params", "104,704"), "budget.trainable_params",
             "valid integer"),
    SpecCase("percent above 100", setting("budget.published_percent", 101), "budget.published_percent", "100"),
    SpecCase("percent NaN", replacing("published_percent: 0.047", "published_percent: .nan"),
             "budget.published_percent", "finite number"),
    SpecCase("empty source", setting("budget.source", ""), "budget.source", "published_percent needs a source"),
    SpecCase("unknown budget key", setting("budget.trainable", 1), "budget.trainable", "unknown key"),
    # init
    SpecCase("unknown distribution", setting("init[0].distribution", "gaussian"), "init[0]",
             "Input tag 'gaussian' found using 'distribution' does not match any of the expected tags"),
    SpecCase("zero std", setting("init[0].std", 0), "init[0].std", "greater than 0"),
    SpecCase("negative Glorot init gain", setting("init[1].gain", -1.0), "init[1].gain", "greater than 0"),
    SpecCase("uniform range reversed",
             setting("init[0]", {"params": "compacter_pp.phm_rule", "distribution": "uniform", "low": 1, "high": 0}),
             "init[0]", "low (1.0) must be below high (0.0)"),
    SpecCase("init rule without params", removing("init[3].params"), "init[3].params", "required key is missing"),
    SpecCase("init a mapping", setting("init", {"compacter_pp.phm_rule": "normal"}), "init", "valid list"),
    SpecCase("init glob of another method", setting("init[3].params", "*.compacter.*.bias"), "init[3].params",
             "glob '*.compacter.*.bias' matches no parameter"),
    SpecCase("embedding rows from -1",
             setting("init[0]", {"params": "compacter_pp.phm_rule", "distribution": "embedding_rows", "start": -1}),
             "init[0].start", "greater than or equal to 0"),
    # invariants
    SpecCase("invariant misspelt", setting("invariants.trainable", None), "invariants.trainable",
             "unknown invariant; did you mean 'trainable_set'?"),
    SpecCase("infinite tolerance", replacing("max_relative_diff: 1.0e-5", "max_relative_diff: .inf"),
             "invariants.near_identity_at_init.max_relative_diff", "finite number"),
    SpecCase("tolerance left out", setting("invariants.near_identity_at_init", None),
             "invariants.near_identity_at_init.max_relative_diff", "required key is missing"),
    SpecCase("KS alpha above 1", setting("invariants.init_distribution", {"alpha": 1.5}),
             "invariants.init_distribution.alpha", "less than 1"),
    SpecCase("placement sub-layer unknown", setting("invariants.placement", {"sublayers": ["middle"]}),
             "invariants.placement.sublayers[0]", "'self_attention', 'cross_attention' or 'feed_forward'"),
    SpecCase("invariants a list", setting("invariants", ["budget", "kron_sum"]), "invariants", "valid dictionary"),
    SpecCase("no invariants", setting("invariants", {}), "invariants", "at least 1 item"),
    # training
    SpecCase("learning rate quoted", replacing("learning_rate: 3.0e-3", 'learning_rate: "3e-3"'),
             "training.learning_rate", "valid number"),
    SpecCase("learning rate 0", setting("training.learning_rate", 0), "training.learning_rate", "greater than 0"),
    SpecCase("learning rate 50", setting("training.learning_rate", 50), "training.learning_rate", "less than or equal"),
    SpecCase("learning rate -inf", replacing("learning_rate: 3.0e-3", "learning_rate: -.inf"),
             "training.learning_rate", "finite number"),
    SpecCase("batch of 2.5", setting("training.batch_size", 2.5), "training.batch_size", "valid integer"),
    SpecCase("batch of 1e35", replacing("learning_rate: 3.0e-3", "learning_rate: 3.0e-3\n  batch_size: 1e35"),
             "training.batch_size", "valid integer"),
    SpecCase("negative warm-up", setting("training.warmup_steps", -1), "training.warmup_steps", "greater than"),
    SpecCase("dropout 1", setting("training.dropout", 1.0), "training.dropout", "less than 1"),
    SpecCase("negative weight decay", setting("training.weight_decay", -0.01), "training.weight_decay", "greater"),
    SpecCase("zero epsilon", setting("training.adam_epsilon", 0), "training.adam_epsilon", "greater than 0"),
    SpecCase("zero grad norm", setting("training.max_grad_norm", 0), "training.max_grad_norm", "greater than 0"),
    SpecCase("zero accumulation", setting("training.gradient_accumulation_steps", 0),
             "training.gradient_accumulation_steps", "greater than 0"),
    SpecCase("fp16", setting("training.precision", "fp16"), "training.precision", "'fp32' or 'bf16'"),
    SpecCase("sgd", setting("training.optimizer", "sgd"), "training.optimizer", "'adamw'"),
    SpecCase("cosine", setting("training.lr_scheduler", "cosine"), "training.lr_scheduler", "'linear'"),
    SpecCase("seed quoted", setting("training.seed", "42"), "training.seed", "valid integer"),
    SpecCase("source length 0", setting("training.source_length", 0), "training.source_length", "greater than 0"),
    SpecCase("generation 1e6 tokens", setting("training.generation_max_length", 1_000_000),
             "training.generation_max_length", "less than or equal to 100000"),
    SpecCase("epochs a number", setting("training.epochs", 20), "training.epochs", "valid dictionary"),
    SpecCase("negative epochs", setting("training.epochs.default", -3), "training.epochs.default", "greater than 0"),
    SpecCase("epochs of an unknown task", setting("training.epochs.per_task", {"rtee": 20}),
             "training.epochs.per_task.rtee", "invalid key 'rtee'"),
    SpecCase("zero epochs for a task", setting("training.epochs.per_task", {"rte": 0}),
             "training.epochs.per_task.rte", "greater than 0"),
    # tasks
    SpecCase("no tasks", setting("tasks.names", []), "tasks.names", "at least 1 item"),
    SpecCase("task hyphenated", setting("tasks.names", ["rte", "sts-b"]), "tasks.names[1]", "'cola'"),
    SpecCase("prefix flag quoted", setting("tasks.prefix_task_name", "false"), "tasks.prefix_task_name", "boolean"),
    SpecCase("low-resource size 0", setting("tasks.low_resource_sizes", [0, 100]), "tasks.low_resource_sizes[0]",
             "greater than 0"),
    # published numbers
    SpecCase("published a mapping", setting("published", {"rte": 70.0}), "published", "valid list"),
    SpecCase("published value a word", setting("published", [{**PUBLISHED, "value": "high"}]), "published[0].value",
             "valid number"),
    SpecCase("negative tolerance", setting("published", [{**PUBLISHED, "tolerance": -1}]), "published[0].tolerance",
             "greater than or equal to 0"),
    SpecCase("published without source", setting("published", [{k: v for k, v in PUBLISHED.items() if k != "source"}]),
             "published[0].source", "required key is missing"),
    SpecCase("task in capitals", setting("published", [{**PUBLISHED, "task": "RTE"}]), "published[0].task",
             "unknown task 'RTE'"),
    SpecCase("superglue metric", setting("published", [{**PUBLISHED, "task": "superglue"}]), "published[0].metric",
             "the superglue aggregate has only 'average', not 'accuracy'"),
    SpecCase("CB's f1", setting("published", [{**PUBLISHED, "task": "cb", "metric": "f1"}]), "published[0].metric",
             "cb has no metric 'f1' (it has macro_f1, accuracy, average)"),
]
# fmt: on


@pytest.mark.parametrize("case", SPEC_CASES, ids=[case.id for case in SPEC_CASES])
def test_a_malformed_spec_is_one_line(tmp_path, capsys, case):
    folder = tmp_path / "spec"  # beside the spec: spec/'s model and defaults files
    folder.mkdir()
    for name in ("_defaults", "models"):
        (folder / name).symlink_to(SPEC_DIR / name)
    path = folder / "compacter_pp.yaml"
    content = case.make()
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    line = one_line(capsys, "validate", path)
    assert line.startswith(f"{path}: {case.key}"), line
    assert case.expected in line, line


# --- data folders ------------------------------------------------------------------------------------------

ROWS = {split: toy_rows("rte", split, n) for split, n in (("train", 20), ("validation", 10))}
BAD_ROW = 7  # the 0-based row each row-level case breaks


def jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def csv_text(rows: list[dict], columns: list[str] | None = None, sep: str = ",") -> str:
    """A header and the rows (lists and mappings as JSON text); `columns` may name a column twice."""
    columns = columns or list(rows[0])
    out = io.StringIO()
    writer = csv.writer(
        out, delimiter=sep, quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL, lineterminator="\n"
    )
    writer.writerow(columns)
    for row in rows:
        writer.writerow(json.dumps(row[c]) if isinstance(row[c], list | dict) else row[c] for c in columns)
    return out.getvalue()


def with_row(rows: list[dict], **changes: Any) -> list[dict]:
    """A copy of `rows` whose row BAD_ROW has `changes`."""
    return [{**row, **changes} if index == BAD_ROW else row for index, row in enumerate(rows)]


def parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


@dataclass(frozen=True)
class DataCase:
    id: str
    files: dict[str, str | bytes | None]  # file name -> content (None: a folder); the task's folder
    expected: str  # after the folder path; `{dir}` is the task's folder
    task: str = "rte"
    options: tuple[str, ...] = ()


VALID_VALIDATION = {"validation.jsonl": jsonl(ROWS["validation"])}
TRAIN = ROWS["train"]


def train(name: str, content: str | bytes | None) -> dict[str, str | bytes | None]:
    return {name: content, **VALID_VALIDATION}


def rows_of(task: str, split: str, n: int, **changes: Any) -> list[dict]:
    return with_row(toy_rows(task, split, n), **changes)


# one case a line or two: the table reads better unwrapped
# fmt: off
DATA_CASES = [
    DataCase("empty folder", {}, "{dir}: no file for split 'train' (looked for train.parquet"),
    DataCase("unknown extension", train("train.txt", jsonl(TRAIN)),
             "{dir}: no file for split 'train' (looked for train.parquet, train.jsonl, train.csv, train.tsv; "
             "found train.txt, not one of these formats)"),
    DataCase("empty jsonl", train("train.jsonl", ""), "{dir}/train.jsonl: cannot read as jsonl: Empty JSON file"),
    DataCase("blank-line jsonl", train("train.jsonl", "\n\n"), "{dir}/train.jsonl: (no rows): the file holds no"),
    DataCase("duplicate csv column", train("train.csv", csv_text(TRAIN, ["sentence1", "sentence2", "label", "label"])),
             "{dir}/train.csv: column label: appears 2 times (columns 3, 4)"),
    DataCase("duplicate tsv column",
             train("train.tsv", csv_text(TRAIN, ["sentence1", "sentence1", "sentence2", "label"], sep="\t")),
             "{dir}/train.tsv: column sentence1: appears 2 times (columns 1, 2)"),
    DataCase("duplicate parquet column",
             train("train.parquet", parquet(pa.Table.from_arrays([pa.array(["a", "b"])] * 3 + [pa.array([0, 1])],
                                                                 ["sentence1", "sentence2", "sentence2", "label"]))),
             "{dir}/train.parquet: column sentence2: appears 2 times (columns 2, 3)"),
    DataCase("missing column", train("train.jsonl", jsonl([{k: v for k, v in r.items() if k != "sentence2"}
                                                           for r in TRAIN])),
             "{dir}/train.jsonl: column sentence2: missing (the split has sentence1, label, idx)"),
    DataCase("column in capitals", train("train.csv", csv_text(TRAIN).replace("sentence1", "Sentence1", 1)),
             "{dir}/train.csv: column sentence1: missing (the split has Sentence1, sentence2, label, idx)"),
    DataCase("null text", train("train.jsonl", jsonl(with_row(TRAIN, sentence1=None))),
             f"{{dir}}/train.jsonl: row {BAD_ROW}: column sentence1: empty (null)"),
    DataCase("label out of range", train("train.jsonl", jsonl(with_row(TRAIN, label=2))),
             f"{{dir}}/train.jsonl: row {BAD_ROW}: column label: 2 is not in the label set"),
    DataCase("test-split label -1", train("train.parquet", parquet(pa.Table.from_pylist(with_row(TRAIN, label=-1)))),
             f"{{dir}}/train.parquet: row {BAD_ROW}: column label: -1 is not in the label set"),
    DataCase("label name in csv", train("train.csv", csv_text(with_row(TRAIN, label="entailment"))),
             f"{{dir}}/train.csv: row {BAD_ROW}: column label: 'entailment' is not in the label set"),
    DataCase("label 0.5", train("train.jsonl", jsonl(with_row(TRAIN, label=0.5))),
             f"{{dir}}/train.jsonl: row {BAD_ROW}: column label: 0.5 is not in the label set"),
    DataCase("label text among numbers", train("train.jsonl", jsonl(with_row(TRAIN, label="1"))),
             f"{{dir}}/train.jsonl: row {BAD_ROW} (line {BAD_ROW + 1}): column label: text, but row 0 holds a number"),
    DataCase("label a boolean", train("train.jsonl", jsonl(with_row(TRAIN, label=True))),
             f"{{dir}}/train.jsonl: row {BAD_ROW} (line {BAD_ROW + 1}): column label: a boolean"),
    DataCase("text numbers throughout", train("train.jsonl", jsonl([{**r, "sentence1": 5} for r in TRAIN])),
             "{dir}/train.jsonl: row 0: column sentence1: expected text, got 5"),
    DataCase("broken JSON line", train("train.jsonl", jsonl(TRAIN[:BAD_ROW]) + "{sentence1: x}\n" + jsonl(TRAIN)),
             f"{{dir}}/train.jsonl: row {BAD_ROW} (line {BAD_ROW + 1}): invalid JSON"),
    DataCase("blank lines before a broken line",
             train("train.jsonl", "\n" + jsonl(TRAIN[:BAD_ROW]) + '{"sentence1": "x",\n' + jsonl(TRAIN)),
             f"{{dir}}/train.jsonl: row {BAD_ROW} (line {BAD_ROW + 2}): invalid JSON"),
    DataCase("a JSON array line", train("train.jsonl", jsonl([*TRAIN[:BAD_ROW], ["a", "b", 0], *TRAIN])),
             f"{{dir}}/train.jsonl: row {BAD_ROW} (line {BAD_ROW + 1}): a list, expected one JSON object per line"),
    DataCase("a JSON array file", train("train.json", json.dumps(TRAIN)),
             "{dir}/train.json: row 0 (line 1): a list, expected one JSON object per line (JSON Lines)"),
    DataCase("invalid UTF-8 in jsonl",
             train("train.jsonl", jsonl(TRAIN).encode().replace(TRAIN[BAD_ROW]["sentence2"].encode(), b"caf\xe9")),
             f"{{dir}}/train.jsonl: row {BAD_ROW}: column sentence2: invalid UTF-8 text (byte 0xe9 at offset 3)"),
    DataCase("invalid UTF-8 in csv",
             train("train.csv", csv_text(TRAIN).encode().replace(TRAIN[BAD_ROW]["sentence1"].encode(), b"\xff")),
             f"{{dir}}/train.csv: line {BAD_ROW + 2}: invalid UTF-8 (byte 0xff at column 1)"),
    DataCase("a csv row too long", train("train.csv", csv_text(TRAIN[:BAD_ROW]) + '"a","b",0,1,2\n'),
             f"{{dir}}/train.csv: row {BAD_ROW} (line {BAD_ROW + 2}): 5 fields, the header has 4"),
    DataCase("a tsv row too short",
             train("train.tsv", csv_text(TRAIN, sep="\t") + "only one field\n"),
             f"{{dir}}/train.tsv: row {len(TRAIN)} (line {len(TRAIN) + 2}): 1 field, the header has 4"),
    DataCase("shards with different label types",
             {"train-00000-of-00002.parquet": parquet(pa.Table.from_pylist(TRAIN[:10])),
              "train-00001-of-00002.parquet": parquet(pa.Table.from_pylist([{**r, "label": str(r["label"])}
                                                                             for r in TRAIN[10:]])),
              **VALID_VALIDATION},
             "{dir}/train-00001-of-00002.parquet: column label: string, but {dir}/train-00000-of-00002.parquet "
             "holds int64; the shards of one split need the same column types"),
    DataCase("not a parquet file", train("train.parquet", b"PAR1" + b"\x00" * 64),
             "{dir}/train.parquet: cannot read as parquet"),
    DataCase("a folder named like a file", train("train.jsonl", None), "{dir}/train.jsonl: cannot read as jsonl"),
    DataCase("STS-B score 5.5", {"train.jsonl": jsonl(rows_of("stsb", "train", 20, label=5.5)),
                                 "validation.jsonl": jsonl(toy_rows("stsb", "validation", 10))},
             f"{{dir}}/train.jsonl: row {BAD_ROW}: column label: 5.5 is not a score in [0, 5]", task="stsb"),
    DataCase("STS-B score a word", {"train.csv": csv_text(rows_of("stsb", "train", 20, label="high")),
                                    "validation.jsonl": jsonl(toy_rows("stsb", "validation", 10))},
             f"{{dir}}/train.csv: row {BAD_ROW}: column label: 'high' is not a score in [0, 5]", task="stsb"),
    DataCase("COPA question capitalised", {"train.jsonl": jsonl(rows_of("copa", "train", 20, question="Cause")),
                               "validation.jsonl": jsonl(toy_rows("copa", "validation", 10))},
             f"{{dir}}/train.jsonl: row {BAD_ROW}: column question: 'Cause' is neither 'cause' nor 'effect'",
             task="copa"),
    DataCase("ReCoRD without answers", {"train.jsonl": jsonl(rows_of("record", "train", 1100, answers=[])),
                                        "validation.jsonl": jsonl(toy_rows("record", "validation", 10))},
             f"{{dir}}/train.jsonl: row {BAD_ROW}: column answers: no gold answers", task="record"),
    DataCase("ReCoRD entities not JSON", {"train.csv": csv_text(rows_of("record", "train", 20, entities="a, b")),
                                          "validation.jsonl": jsonl(toy_rows("record", "validation", 10))},
             f"{{dir}}/train.csv: row {BAD_ROW}: column entities: expected JSON text, got 'a, b'", task="record"),
    DataCase("MultiRC idx without question",
             {"train.jsonl": jsonl(rows_of("multirc", "train", 20, idx={"paragraph": 0, "answer": 1})),
              "validation.jsonl": jsonl(toy_rows("multirc", "validation", 10))},
             f"{{dir}}/train.jsonl: row {BAD_ROW}: column idx: expected a mapping with integer paragraph and question",
             task="multirc"),
    DataCase("WiC without its word", {"train.jsonl": jsonl([{k: v for k, v in r.items() if k != "word"}
                                                            for r in toy_rows("wic", "train", 20)]),
                                      "validation.jsonl": jsonl(toy_rows("wic", "validation", 10))},
             "{dir}/train.jsonl: column word: missing", task="wic"),
    DataCase("MNLI without mismatched", {"train.jsonl": jsonl(toy_rows("mnli", "train", 1100)),
                                         "validation_matched.jsonl": jsonl(toy_rows("mnli", "validation_matched", 10))},
             "{dir}: no file for split 'validation_mismatched'", task="mnli"),
    DataCase("SST-2 too small to hold out 1,000", {"train.jsonl": jsonl(toy_rows("sst2", "train", 200)),
                                                   "validation.jsonl": jsonl(toy_rows("sst2", "validation", 10))},
             "sst2: train has 200 rows; holding out 1000 needs more", task="sst2"),
    DataCase("more training examples asked than held", train("train.jsonl", jsonl(TRAIN)),
             "rte: train_size 500: train has 20 rows to sample from", options=("--train-size", "500")),
]
# fmt: on


@pytest.mark.parametrize("case", DATA_CASES, ids=[case.id for case in DATA_CASES])
def test_a_malformed_data_folder_is_one_line(tmp_path, capsys, case):
    folder = tmp_path / case.task
    folder.mkdir()
    for name, content in case.files.items():
        if content is None:
            (folder / name).mkdir()
        else:
            (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    line = one_line(capsys, "data", case.task, "--data-dir", tmp_path, *case.options)
    assert line.startswith(case.expected.format(dir=folder)), line


def test_data_dir_that_is_a_file(tmp_path, capsys):
    afile = tmp_path / "data.jsonl"
    afile.write_text(jsonl(TRAIN))
    assert one_line(capsys, "data", "rte", "--data-dir", afile) == f"{afile}: is a file, expected a data folder"


# --- command lines -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliCase:
    id: str
    argv: tuple[str, ...]  # `{tmp}` is a fresh folder, `{spec}` spec/compacter_pp.yaml
    expected: str


RUN = ("run", "{spec}", "--deepspeed", "none", "--output-dir", "{tmp}/out")
PROG = "python -m harness"

# one case a line or two: the table reads better unwrapped
# fmt: off
CLI_CASES = [
    CliCase("no command", (), f"{PROG}: the following arguments are required: COMMAND"),
    CliCase("unknown command", ("trian",), f"{PROG}: argument COMMAND: invalid choice: 'trian' (choose from"),
    CliCase("unknown option", ("validate", "--strict"), f"{PROG}: unrecognized arguments: --strict"),
    CliCase("budget without a spec", ("budget",), "budget: pass a SPEC, or --all for every spec"),
    CliCase("budget a spec and --all", ("budget", "{spec}", "--all"), "{spec}: --all counts every spec of --spec-dir"),
    CliCase("show without a spec", ("show", "--json"), f"{PROG} show: the following arguments are required: SPEC"),
    CliCase("--epochs a word", (*RUN, "--epochs", "three"), f"{PROG} run: argument --epochs: invalid int value"),
    CliCase("--seeds a word", (*RUN, "--seeds", "1", "x"), f"{PROG} run: argument --seeds: invalid seed 'x'"),
    CliCase("--profile unknown", (*RUN, "--profile", "fast"), f"{PROG} run: argument --profile: invalid choice"),
    CliCase("--resume with --overwrite", (*RUN, "--resume", "--overwrite"),
            f"{PROG} run: argument --overwrite: not allowed with argument --resume"),
    CliCase("--set without =", (*RUN, "--set", "training.learning_rate"),
            "{spec}: --set training.learning_rate: expected KEY.PATH=VALUE"),
    CliCase("--set without a key", (*RUN, "--set", "=3"), "{spec}: --set =3: expected KEY.PATH=VALUE"),
    CliCase("--set of an unknown key", (*RUN, "--set", "training.learnin_rate=1e-3"),
            "{spec}: training.learnin_rate: unknown key"),
    CliCase("--set of NaN dropout", (*RUN, "--set", "training.dropout=.nan"),
            "{spec}: training.dropout: Input should be a finite number"),
    CliCase("--set of broken YAML", (*RUN, "--set", "tasks.names=[rte"), "{spec}: --set tasks.names: invalid value"),
    CliCase("--set below a number", (*RUN, "--set", "training.batch_size.x=3"),
            "{spec}: --set training.batch_size.x: batch_size is not a mapping"),
    CliCase("--tasks misspelt", (*RUN, "--tasks", "rtee"), "--tasks: unknown task 'rtee'; did you mean 'rte'?"),
    CliCase("--max-train-samples negative", (*RUN, "--max-train-samples", "-2"),
            "--max-train-samples: -2 is not a valid count (at least 1)"),
    CliCase("--resume of nothing", (*RUN, "--resume"), "{tmp}/out: (output dir): nothing to resume"),
    CliCase("--output-dir a file", ("run", "{spec}", "--deepspeed", "none", "--output-dir", "{tmp}/afile"),
            "{tmp}/afile: --output-dir: {tmp}/afile is a file, not a folder"),
    CliCase("--deepspeed file missing", ("run", "{spec}", "--deepspeed", "{tmp}/ds.json", "--output-dir", "{tmp}/o"),
            "{tmp}/ds.json: --deepspeed: no such config"),
    CliCase("--deepspeed name unknown", ("run", "{spec}", "--deepspeed", "zero9", "--output-dir", "{tmp}/o"),
            f"{SPEC_DIR / 'deepspeed' / 'zero9.json'}: --deepspeed: no such config (known: zero1, zero2, none, or a"),
    CliCase("--model file unknown", (*RUN, "--model", "t5_huge"),
            "{spec}: --model: 't5_huge' is no local folder, and as a hub id is not in the local Hugging Face cache"),
    CliCase("--model an uncached hub id", (*RUN, "--model", "google/flan-t5-xxl"),
            "{spec}: --model: 'google/flan-t5-xxl' is no local folder, and as a hub id is not in the local"),
    CliCase("--model a file", ("budget", "{spec}", "--model", "{tmp}/afile"),
            "{spec}: --model: '{tmp}/afile' is a file, not a folder holding config.json"),
    CliCase("--model a missing folder", ("budget", "{spec}", "--model", "{tmp}/nowhere"),
            "{spec}: --model: '{tmp}/nowhere' is no model file, folder or valid hub id"),
    CliCase("--model an empty folder", ("budget", "{spec}", "--model", "{tmp}/empty"),
            "{tmp}/empty: --model: the folder holds no config.json"),
    CliCase("--model a config of keys only", ("budget", "{spec}", "--model", "{tmp}/keys_only"),
            "{tmp}/keys_only/config.json: vocab_size, d_model, d_kv, d_ff, num_layers, num_heads: required keys are"),
    CliCase("--model not a T5", ("budget", "{spec}", "--model", "{tmp}/bart"),
            "{tmp}/bart/config.json: model_type: 'bart' is not a T5-family model"),
    CliCase("--model invalid JSON", ("budget", "{spec}", "--model", "{tmp}/broken"),
            "{tmp}/broken/config.json: line 1, column 2: invalid JSON"),
    CliCase("--model a bad value", ("budget", "{spec}", "--model", "{tmp}/bad_value"),
            "{tmp}/bad_value/config.json: d_model: Input should be greater than 0"),
    CliCase("paper --model an empty folder", (*RUN, "--profile", "paper", "--model", "{tmp}/empty", "--data-dir",
                                              "{tmp}"),
            "{tmp}/empty: --model: the folder holds no config.json"),
    CliCase("paper --pretrained lacking files", (*RUN, "--profile", "paper", "--pretrained", "{tmp}/empty",
                                                 "--data-dir", "{tmp}"),
            "{tmp}/empty: --pretrained: the folder lacks config.json, the weights (model.safetensors) and the "
            "tokenizer (tokenizer.json or spiece.model)"),
    CliCase("--report-to a missing package", (*RUN, "--report-to", "wandb"),  # not installed, or not logged in:
            "--report-to wandb: "),  # tests/test_bad_inputs_run.py pins each line with wandb absent or faked
    CliCase("--report-to unknown", (*RUN, "--report-to", "mlflow"),
            f"{PROG} run: argument --report-to: invalid choice"),
    CliCase("--logging-steps 0", (*RUN, "--logging-steps", "0"), "--logging-steps: 0 is not a valid count"),
    CliCase("eval a folder that is no checkpoint", ("eval", "{tmp}/empty"),
            "{tmp}/empty: (top level): no harness.json: not a checkpoint the harness wrote"),
    CliCase("eval a missing folder", ("eval", "{tmp}/nowhere"),
            "{tmp}/nowhere: (top level): no such checkpoint folder"),
    CliCase("eval --toy and --data-dir", ("eval", "{tmp}/empty", "--toy", "--data-dir", "{tmp}"),
            "--toy and --data-dir: pass one source of data, not both"),
    CliCase("predict a missing file", ("predict", "{tmp}/empty", "--file", "{tmp}/nowhere.txt"),
            "{tmp}/nowhere.txt: (top level): file not found"),
    CliCase("smoke --pretrained", (*RUN, "--pretrained", "{tmp}/config_only"),
            "--pretrained: the smoke profile builds a random model"),
    CliCase("paper --model a config only", (*RUN, "--profile", "paper", "--model", "{tmp}/config_only",
                                            "--data-dir", "{tmp}"),
            "{tmp}/config_only: --model: the folder lacks the weights (model.safetensors) and the tokenizer"),
    CliCase("--data-dir missing", (*RUN, "--tasks", "rte", "--data-dir", "{tmp}/nowhere"),
            "{tmp}/nowhere: no such data folder"),
    CliCase("--sweep of a method without a grid", ("run", str(SPEC_DIR / "bitfit.yaml"), "--sweep", "--deepspeed",
                                                   "none", "--output-dir", "{tmp}/out"),
            f"{SPEC_DIR / 'bitfit.yaml'}: method.name: bitfit has no argument of the paper's grid"),
    CliCase("a folder as spec", ("show", "{tmp}"), "{tmp}: (top level): is a folder, expected a YAML file"),
    CliCase("a spec that does not exist", ("run", "{tmp}/compacter.yaml"),
            "{tmp}/compacter.yaml: (top level): file not found"),
    CliCase("--spec-dir missing", ("validate", "--spec-dir", "{tmp}/specs"), "{tmp}/specs: (top level): no such spec"),
    CliCase("ls --spec-dir a file", ("ls", "--spec-dir", "{tmp}/afile"), "{tmp}/afile: (top level): no such spec"),
    CliCase("budget --model unknown", ("budget", "{spec}", "--model", "t5_huge"),
            "{spec}: --model: 't5_huge' is no local folder"),
    CliCase("budget --all --model unknown", ("budget", "--all", "--model", "t5_huge"),
            f"{SPEC_DIR}: --model: 't5_huge' is no local folder"),
    CliCase("ls --model unknown", ("ls", "--model", "t5_huge"), f"{SPEC_DIR}: --model: 't5_huge' is no local folder"),
    CliCase("show --model unknown", ("show", "{spec}", "--model", "t5_huge"),
            "{spec}: --model: 't5_huge' is no local folder"),
    CliCase("check --model unknown", ("check", "{spec}", "--model", "t5_tinyy"),
            "{spec}: --model: 't5_tinyy' is no local folder"),
    CliCase("budget --model where n cannot divide", ("budget", "{phm}", "--model", "t5_small"),
            "{phm}: method.args.n: 12 must divide d_model=512 and the bottleneck d=16 (d_model / reduction_factor); "
            "the n that divide both: 1, 2, 4, 8, 16 (model t5_small); set another value in the spec or with --set "
            "method.args.n=VALUE"),
    CliCase("budget --model without AdapterDrop's blocks", ("budget", "{drop}", "--model", "flan_t5_small"),
            "{drop}: method.args.encoder_blocks: encoder has blocks 0..7; got [8, 9, 10, 11]: choose blocks among "
            "0..7 (model flan_t5_small); set another value"),
    CliCase("check --recipe --only unknown", ("check", "{spec}", "--recipe", "--only", "warmup"),
            "{spec}: --only: warmup not among the recipe invariants"),
    CliCase("data of an unknown task", ("data", "rtee", "--toy"), "rtee: unknown task 'rtee'; did you mean 'rte'?"),
    CliCase("data --limit negative", ("data", "rte", "--toy", "--limit", "-1"), "--limit: -1 is not a valid count"),
    CliCase("data --train-size 0", ("data", "rte", "--toy", "--train-size", "0"), "--train-size: 0 is not a valid"),
    CliCase("data --split dev", ("data", "rte", "--split", "dev"), f"{PROG} data: argument --split: invalid choice"),
    CliCase("compare a missing file", ("compare", "{tmp}/results.json"), "{tmp}/results.json: (top level): file not"),
    CliCase("report an empty folder", ("report", "{tmp}/empty"),
            "{tmp}/empty: (top level): no results.json in this folder or its subfolders"),
    CliCase("bench --batch 0", ("bench", "{spec}", "--batch", "0"), "--batch: 0 must be at least 1"),
    CliCase("bench --deepspeed missing", ("bench", "{spec}", "--deepspeed", "{tmp}/ds.json"),
            "{tmp}/ds.json: (top level): file not found"),
]
# fmt: on


@pytest.mark.parametrize("case", CLI_CASES, ids=[case.id for case in CLI_CASES])
def test_a_misused_command_line_is_one_line(tmp_path, capsys, case):
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    tiny = {"model_type": "t5", **load_model_file(SPEC.parent / "models" / "t5_tiny.yaml").architecture.model_dump()}
    configs = {
        "config_only": tiny, "keys_only": {"model_type": "t5"}, "bart": {**tiny, "model_type": "bart"},
        "bad_value": {**tiny, "d_model": 0},
    }  # fmt: skip
    for folder, config in configs.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "config.json").write_text(json.dumps(config))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    names = {"tmp": tmp_path, "spec": SPEC, "phm": SPEC.parent / "phm_adapter.yaml",
             "drop": SPEC.parent / "adapter_drop.yaml"}  # fmt: skip
    argv = [arg.format(**names) for arg in case.argv]
    line = one_line(capsys, *argv)
    assert line.startswith(case.expected.format(**names)), line
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()
