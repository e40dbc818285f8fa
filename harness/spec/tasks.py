"""The paper's 14 tasks as data: columns, label set, text-to-text format, metrics, split rule (their epochs
are the recipe's: `spec/_defaults/paper.yaml`).

One frozen `Task` entry per task (no class hierarchy); the loader (`harness.data.protocol`), the metrics
(`harness.data.metrics`) and the toy generator (`harness.data.toy`) read these entries and nothing else.

Text-to-text format (docs/paper.md): the source is `<key>: <text>` pairs joined by single spaces, with the task
name prepended when the method's spec sets `tasks.prefix_task_name`; the target is the label index as a
string ("0", "1", "2"). STS-B's target is its score rounded to the 0.2 grid, `round(5·s)/5` printed with one
decimal (T5's convention); ReCoRD's target is a gold answer entity. A run's `Fidelity` (`harness.spec.fidelity`)
can switch the formats to the released code's: MNLI's `hypothesis` without its colon, COPA without its
question, STS-B rounded to one decimal, SuperGLUE's `superglue-<task>` prefixes and ReCoRD's leading `record`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from harness.spec.fidelity import PAPER, Fidelity
from harness.spec.schema import GLUE_TASKS, SUPERGLUE_TASKS

SMALL_TASK_LIMIT = 10_000  # the paper: sets under 10k training examples halve their validation set
HOLDOUT_SIZE = 1_000  # the paper: larger sets hold out 1k training examples as validation
STSB_RANGE = (0.0, 5.0)

# Column kinds the loader checks (harness.data.protocol): text (a string), label (an int in the label set),
# score (STS-B: a float in STSB_RANGE), strings (a list of strings), cause_effect (COPA's question),
# multirc_idx (a mapping with int `paragraph` and `question`: the question a row's answer belongs to).
ColumnKind = Literal["text", "label", "score", "strings", "cause_effect", "multirc_idx"]


@dataclass(frozen=True)
class Field:
    """One `key: text` pair of the source: the word before the colon, the column, an optional clean-up."""

    key: str
    column: str
    clean: str | None = None  # a name in CLEANERS


@dataclass(frozen=True)
class Task:
    """One task of the paper. `splits` are the original splits the protocol reads; `test_split` is the one
    the paper uses as test (halved into validation/test for `halve_validation` tasks)."""

    name: str
    benchmark: Literal["glue", "superglue"]
    hub: tuple[str, str]  # (dataset repository, config) on the Hugging Face hub; parquet, no script
    columns: Mapping[str, ColumnKind]
    fields: tuple[Field, ...]
    labels: tuple[str, ...]  # class names in index order; () for STS-B and ReCoRD
    target: Literal["label", "stsb", "record"]
    metrics: tuple[str, ...]  # names in harness.data.metrics.METRICS; the score is their mean (`average`)
    split_rule: Literal["halve_validation", "holdout_train"]
    sizes: Mapping[str, int]  # rows in the hub's splits (what `toy_data` generates at real size)
    splits: tuple[str, ...] = ("train", "validation")
    test_split: str = "validation"
    note: str = ""

    @property
    def label_targets(self) -> tuple[str, ...]:
        """The valid target strings of a classification task: "0", "1", …"""
        return tuple(str(index) for index in range(len(self.labels)))


def _remove_markup(text: str) -> str:
    """MultiRC's HTML: `<br>` becomes a space, `<b>`/`</b>` go (T5's and the released code's clean-up)."""
    return re.sub(r"</?b>", "", re.sub(r"<br>", " ", text))


def _record_passage(text: str) -> str:
    """ReCoRD's `@highlight` bullet lines become sentences (T5's and the released code's clean-up)."""
    text = re.sub(r"([.?!\"'])\n@highlight\n", r"\1 ", text)
    return re.sub(r"\n@highlight\n", ". ", text)


CLEANERS: dict[str, Callable[[Any], str]] = {
    "markup": _remove_markup,
    "record_passage": _record_passage,
    "join": lambda values: ", ".join(values),
}


def _entry(name: str, fields: list[tuple[str, ...]], labels: tuple[str, ...], **kw: Any) -> Task:
    """A Task with `columns` derived from its fields (text unless cleaned from a list) plus `extra_columns`."""
    columns: dict[str, ColumnKind] = {}
    made = []
    for spec in fields:
        made.append(Field(*spec))
        columns[spec[1]] = "strings" if spec[2:] == ("join",) else "text"
    target = kw.pop("target", "label")
    if target == "label":
        columns["label"] = "label"
    elif target == "stsb":
        columns["label"] = "score"
    columns.update(kw.pop("extra_columns", {}))
    benchmark = "glue" if name in GLUE_TASKS else "superglue"
    hub = ("nyu-mll/glue", name) if benchmark == "glue" else ("aps/super_glue", name)
    return Task(
        name=name,
        benchmark=benchmark,
        hub=hub,
        columns=MappingProxyType(columns),
        fields=tuple(made),
        labels=labels,
        target=target,
        sizes=MappingProxyType(kw.pop("sizes")),
        **kw,
    )


_BINARY = ("0", "1")
_NLI3 = ("entailment", "neutral", "contradiction")
_SMALL = {"split_rule": "halve_validation"}
_LARGE = {"split_rule": "holdout_train"}

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        _entry("cola", [("sentence", "sentence")], ("unacceptable", "acceptable"), metrics=("mcc",),
               sizes={"train": 8551, "validation": 1043}, **_SMALL),
        _entry("sst2", [("sentence", "sentence")], ("negative", "positive"), metrics=("accuracy",),
               sizes={"train": 67349, "validation": 872}, **_LARGE),
        _entry("mrpc", [("sentence1", "sentence1"), ("sentence2", "sentence2")], ("not_equivalent", "equivalent"),
               metrics=("f1", "accuracy"), sizes={"train": 3668, "validation": 408}, **_SMALL),
        _entry("qqp", [("question1", "question1"), ("question2", "question2")], ("not_duplicate", "duplicate"),
               metrics=("f1", "accuracy"), sizes={"train": 363846, "validation": 40430}, **_LARGE),
        _entry("stsb", [("sentence1", "sentence1"), ("sentence2", "sentence2")], (), target="stsb",
               metrics=("pearson", "spearman"), sizes={"train": 5749, "validation": 1500}, **_SMALL),
        _entry("mnli", [("premise", "premise"), ("hypothesis", "hypothesis")], _NLI3, metrics=("accuracy",),
               sizes={"train": 392702, "validation_matched": 9815, "validation_mismatched": 9832},
               splits=("train", "validation_matched", "validation_mismatched"), test_split="validation_matched",
               note="the released code uses validation_mismatched as validation: mnli_split='released'",
               **_LARGE),
        _entry("qnli", [("question", "question"), ("sentence", "sentence")], ("entailment", "not_entailment"),
               metrics=("accuracy",), sizes={"train": 104743, "validation": 5463}, **_LARGE),
        _entry("rte", [("sentence1", "sentence1"), ("sentence2", "sentence2")], ("entailment", "not_entailment"),
               metrics=("accuracy",), sizes={"train": 2490, "validation": 277}, **_SMALL),
        _entry("boolq", [("question", "question"), ("passage", "passage")], ("False", "True"),
               metrics=("accuracy",), sizes={"train": 9427, "validation": 3270}, **_SMALL),
        _entry("cb", [("premise", "premise"), ("hypothesis", "hypothesis")], _NLI3,
               metrics=("macro_f1", "accuracy"), sizes={"train": 250, "validation": 56}, **_SMALL),
        _entry("copa", [("premise", "premise"), ("choice1", "choice1"), ("choice2", "choice2"),
                        ("question", "question")], ("choice1", "choice2"), metrics=("accuracy",),
               extra_columns={"question": "cause_effect"}, sizes={"train": 400, "validation": 100},
               note="keeps the cause/effect question that the released code drops", **_SMALL),
        _entry("multirc", [("question", "question", "markup"), ("answer", "answer", "markup"),
                           ("paragraph", "paragraph", "markup")], ("False", "True"),
               metrics=("f1", "question_em"), extra_columns={"idx": "multirc_idx"},
               sizes={"train": 27243, "validation": 4848},
               note="rows are answers; ~5.1k training questions, so the paper halves its validation set",
               split_rule="halve_validation"),
        _entry("record", [("query", "query"), ("entities", "entities", "join"),
                          ("passage", "passage", "record_passage")], (), target="record",
               metrics=("squad",), extra_columns={"answers": "strings"},
               sizes={"train": 100730, "validation": 10000},
               note="train: one example per gold answer; evaluation: one per query, all answers kept", **_LARGE),
        _entry("wic", [("sentence1", "sentence1"), ("sentence2", "sentence2"), ("word", "word")], ("False", "True"),
               metrics=("accuracy",), sizes={"train": 5428, "validation": 638}, **_SMALL),
    )
}  # fmt: skip
assert tuple(TASKS) == GLUE_TASKS + SUPERGLUE_TASKS


def get_task(name: str | Task) -> Task:
    """The entry for `name`; a ValueError with a did-you-mean for an unknown name."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        from harness.errors import did_you_mean

        raise ValueError(f"unknown task {name!r}{did_you_mean(str(name), list(TASKS))}")
    return TASKS[name]


def format_source(task: Task, row: Mapping[str, Any], prefix_task_name: bool, fidelity: Fidelity = PAPER) -> str:
    """`[task ]key: text key: text …` for one raw row (hub column names), in the fidelity's format."""
    released_prefix = fidelity.released("task_prefix")
    name = f"superglue-{task.name}" if released_prefix and task.benchmark == "superglue" else task.name
    parts = [name] if prefix_task_name else []
    if released_prefix and task.name == "record":
        parts.append("record")  # the released ReCoRD input always starts `record query:` (tasks.py:534)
    for item in task.fields:
        if task.name == "copa" and item.key == "question" and fidelity.released("copa_question"):
            continue
        value = row[item.column]
        colon = "" if task.name == "mnli" and item.key == "hypothesis" and fidelity.released("mnli_format") else ":"
        parts.append(f"{item.key}{colon} {CLEANERS[item.clean](value) if item.clean else value}")
    return " ".join(parts)


def stsb_target(score: float) -> str:
    """The score on T5's 0.2 grid: round(5·s)/5 with one decimal (round half to even, as tf.round)."""
    return f"{round(score * 5) / 5:.1f}"


def released_stsb_target(score: float) -> str:
    """The released code's `np.round((s·5)/5, decimals=1)`: numpy rounds s·5/5 · 10 half to even, then ÷ 10."""
    return f"{round((score * 5) / 5 * 10) / 10:.1f}"


def format_targets(task: Task, row: Mapping[str, Any], expand: bool = False, fidelity: Fidelity = PAPER) -> list[str]:
    """The target string(s) of one row. ReCoRD with `expand` (training): one target per gold answer;
    otherwise its first answer (the metric takes the maximum over all of them)."""
    if task.target == "label":
        return [str(int(row["label"]))]
    if task.target == "stsb":
        rounding = released_stsb_target if fidelity.released("stsb_target") else stsb_target
        return [rounding(float(row["label"]))]
    answers = list(row["answers"])
    return answers if expand else answers[:1]


@dataclass(frozen=True)
class Example:
    """What the model sees: source and target text; `extra` carries what a metric groups by."""

    source: str
    target: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def format_row(
    task: Task, row: Mapping[str, Any], prefix_task_name: bool, expand: bool = False, fidelity: Fidelity = PAPER
) -> list[Example]:
    """The example(s) of one raw row: one, or for ReCoRD training one per gold answer."""
    source = format_source(task, row, prefix_task_name, fidelity)
    extra: dict[str, Any] = {}
    if task.name == "multirc":
        extra["group"] = (int(row["idx"]["paragraph"]), int(row["idx"]["question"]))
    elif task.name == "record":
        extra["answers"] = tuple(row["answers"])
    return [Example(source, target, extra) for target in format_targets(task, row, expand, fidelity)]
