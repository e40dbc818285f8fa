"""`fidelity: paper | released` on the data and the metrics, pinned to the released code's own formulas.

`released_examples` below is a transcription of rabeehk/compacter e123daa's `seq2seq/data/tasks.py` (the
preprocessors, `AbstractTask.get`'s split rule, `shuffled_indices`) and `data/utils.py:round_stsb_target`,
written from that code, not from the harness: at `released`, the harness's examples must equal it row for
row on every task; at `paper`, they differ from it exactly where a documented quirk says so.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.data.metrics import compute
from harness.data.protocol import load_task
from harness.data.toy import toy_tables
from harness.spec.fidelity import BY_NAME, PAPER, QUIRKS, Fidelity, table_markdown, with_arguments
from harness.spec.tasks import TASKS, released_stsb_target, stsb_target
from tests.conftest import REPO

RELEASED = Fidelity.preset("released")
RELEASED_NAMES = {name: f"superglue-{name}" if task.benchmark == "superglue" else name for name, task in TASKS.items()}
SMALL = ["cola", "rte", "superglue-cb", "superglue-copa", "superglue-multirc", "superglue-wic", "mrpc", "stsb",
         "superglue-boolq"]  # fmt: skip  # tasks.py:28-30
LARGE = ["qqp", "qnli", "superglue-record", "sst2"]  # tasks.py:31


# --- the released code, transcribed ----------------------------------------------------------------------------


def released_shuffled(n: int, seed: int = 42) -> list[int]:
    import torch

    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.randperm(n, generator=generator).tolist()


def released_preprocess(task: str, ex: dict, add_prefix: bool) -> list[tuple[str, str]]:
    """One row's (source, target) pairs, as each task's `preprocessor` at e123daa."""
    name = RELEASED_NAMES[task]
    if task == "record":  # tasks.py:525-544
        passage = re.sub(r"(\.|\?|\!|\"|\')\n@highlight\n", r"\1 ", ex["passage"])
        passage = re.sub(r"\n@highlight\n", ". ", passage)
        inputs = f"record query: {ex['query']} entities: {', '.join(ex['entities'])} passage: {passage}"
        if add_prefix:
            inputs = name + " " + inputs
        return [(inputs, answer) for answer in ex["answers"]]

    def markup(text: str) -> str:  # tasks.py:399-403
        return re.sub("<(/)?b>", "", re.sub("<br>", " ", text))

    fields = {
        "mrpc": ["sentence1:", ex.get("sentence1"), "sentence2:", ex.get("sentence2")],
        "cola": ["sentence:", ex.get("sentence")],
        "sst2": ["sentence:", ex.get("sentence")],
        "stsb": ["sentence1:", ex.get("sentence1"), "sentence2:", ex.get("sentence2")],
        "qqp": ["question1:", ex.get("question1"), "question2:", ex.get("question2")],
        "mnli": ["premise:", ex.get("premise"), "hypothesis", ex.get("hypothesis")],
        "qnli": ["question:", ex.get("question"), "sentence:", ex.get("sentence")],
        "rte": ["sentence1:", ex.get("sentence1"), "sentence2:", ex.get("sentence2")],
        "boolq": ["question:", ex.get("question"), "passage:", ex.get("passage")],
        "cb": ["premise:", ex.get("premise"), "hypothesis:", ex.get("hypothesis")],
        "copa": ["premise:", ex.get("premise"), "choice1:", ex.get("choice1"), "choice2:", ex.get("choice2")],
        "wic": ["sentence1:", ex.get("sentence1"), "sentence2:", ex.get("sentence2"), "word:", ex.get("word")],
    }
    if task == "multirc":
        sources = ["question:", markup(ex["question"]), "answer:", markup(ex["answer"]),
                   "paragraph:", markup(ex["paragraph"])]  # fmt: skip
    else:
        sources = fields[task]
    # STS-B: utils.py:16, tasks.py:210; the others: str(example['label'])
    target = str(np.round((ex["label"] * 5) / 5, decimals=1)) if task == "stsb" else str(ex["label"])
    sources = [name, *sources] if add_prefix else sources
    return [(" ".join(sources), target)]


def released_rows(task: str, tables: dict, split: str) -> list[dict]:
    """`AbstractTask.get(split, split_validation_test=True)`'s rows (tasks.py:95-118; MNLI: 237-239)."""
    name = RELEASED_NAMES[task]
    if task == "mnli":
        source = {"train": "train", "validation": "validation_mismatched", "test": "validation_matched"}[split]
        return tables[source].to_pylist()
    if name in SMALL and split != "train":
        rows = tables["validation"].to_pylist()
        indices = released_shuffled(len(rows))
        half = len(rows) // 2
        return [rows[i] for i in (indices[:half] if split == "validation" else indices[half:])]
    if name in LARGE and split != "test":
        rows = tables["train"].to_pylist()
        indices = released_shuffled(len(rows))
        return [rows[i] for i in (indices[:1000] if split == "validation" else indices[1000:])]
    return tables[{"test": "validation"}.get(split, split)].to_pylist()


def released_examples(task: str, split: str, add_prefix: bool) -> list[tuple[str, str]]:
    tables = toy_tables(task)
    return [pair for row in released_rows(task, tables, split) for pair in released_preprocess(task, row, add_prefix)]


def ours(task: str, split: str, add_prefix: bool, fidelity: Fidelity) -> list[tuple[str, str]]:
    data = load_task(task, toy=True, prefix_task_name=add_prefix, fidelity=fidelity)
    return [(e.source, e.target) for e in data.examples(split)]


def data_quirks(task: str, add_prefix: bool) -> set[str]:
    """The quirks that change this task's examples (task_prefix changes SuperGLUE only when prefixing)."""
    found = {q.name for q in QUIRKS if q.applies_to(None, task) and q.tasks and q.name not in ("invalid_predictions",
                                                                                             "rte_epochs")}  # fmt: skip
    if "task_prefix" in found and task != "record" and not add_prefix:
        found.discard("task_prefix")
    return found


# --- the tests -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("add_prefix", [False, True], ids=["no-prefix", "prefix"])
@pytest.mark.parametrize("task", list(TASKS))
def test_released_examples_equal_the_released_code_row_for_row(task, add_prefix):
    for split in ("train", "validation", "test"):
        assert ours(task, split, add_prefix, RELEASED) == released_examples(task, split, add_prefix), split


@pytest.mark.parametrize("add_prefix", [False, True], ids=["no-prefix", "prefix"])
@pytest.mark.parametrize("task", list(TASKS))
def test_paper_differs_from_the_released_code_only_through_a_documented_quirk(task, add_prefix):
    quirks = data_quirks(task, add_prefix)
    splits = ("train", "validation", "test")
    paper = {split: ours(task, split, add_prefix, PAPER) for split in splits}
    released = {split: released_examples(task, split, add_prefix) for split in splits}
    if not quirks:  # no quirk of this task: the paper's examples are the released code's
        assert paper == released
        return
    assert paper != released
    # each quirk alone at released moves the examples; all of them together give the released code's
    for name in quirks:
        alone = with_arguments(PAPER, [f"{name}=released"])
        assert {split: ours(task, split, add_prefix, alone) for split in splits} != paper, name
    together = with_arguments(PAPER, [f"{name}=released" for name in quirks])
    assert {split: ours(task, split, add_prefix, together) for split in splits} == released


def test_the_documented_data_quirks_are_the_ones_each_task_has():
    assert {task: sorted(data_quirks(task, True)) for task in TASKS if data_quirks(task, True)} == {
        "mnli": ["mnli_format", "mnli_split"],
        "stsb": ["stsb_target"],
        "boolq": ["task_prefix"],
        "cb": ["task_prefix"],
        "copa": ["copa_question", "task_prefix"],
        "multirc": ["task_prefix"],
        "record": ["record_evaluation", "task_prefix"],
        "wic": ["task_prefix"],
    }


EDGES = [0.0, 0.05, 0.1, 0.15, 0.25, 0.35, 1.05, 1.15, 2.25, 2.45, 2.5, 3.1, 3.35, 4.85, 4.95, 5.0]


@given(st.floats(0.0, 5.0))
def test_the_released_stsb_target_is_numpys_round_to_one_decimal(score):
    assert released_stsb_target(score) == str(np.round((score * 5) / 5, decimals=1))


@pytest.mark.parametrize("score", EDGES)
def test_the_released_stsb_target_on_halves_and_binary_edges(score):
    assert released_stsb_target(score) == str(np.round((score * 5) / 5, decimals=1))


def test_the_paper_stsb_target_is_the_point_two_grid_and_the_released_one_is_not():
    # by hand: 3.1·5 = 15.5 rounds (half to even) to 16, 16/5 = 3.2; one decimal of 3.1 is 3.1
    assert (stsb_target(3.1), released_stsb_target(3.1)) == ("3.2", "3.1")
    assert {stsb_target(s) for s in np.linspace(0, 5, 501)} <= {f"{k / 5:.1f}" for k in range(26)}


def test_record_evaluation_released_counts_each_gold_answer():
    paper = load_task("record", toy=True)
    released = load_task("record", toy=True, fidelity=with_arguments(PAPER, ["record_evaluation=released"]))
    rows = paper.rows("test")
    assert len(paper.examples("test")) == len(rows)
    assert len(released.examples("test")) == sum(len(row["answers"]) for row in rows)
    assert released.sizes()["test"] == len(released.examples("test"))
    # every duplicate is scored against all of its query's answers (Record postprocessor, postprocessors.py:45-49)
    assert all(set(e.extra["answers"]) >= {e.target} for e in released.examples("test"))


# --- metrics ---------------------------------------------------------------------------------------------------


def released_mcc(predictions, targets):  # metrics.py:69-71
    import sklearn.metrics

    return 100 * sklearn.metrics.matthews_corrcoef(targets, predictions)


def released_macro_f1(predictions, targets):  # metrics.py:119-128 through sklearn_metrics_wrapper
    import warnings

    import sklearn.metrics

    with warnings.catch_warnings():  # sklearn's zero_division="warn" (0), as in the released runs
        warnings.simplefilter("ignore")
        return 100 * sklearn.metrics.fbeta_score(targets, predictions, beta=1, labels=range(3), average="macro")


COLA_TARGETS = ["0", "1", "1", "0", "1", "1", "0", "1"]
COLA_PREDICTIONS = ["0", "1", "yes", "0", "1", "0", "2", "1"]


def test_cola_released_is_sklearns_mcc_on_the_raw_strings_and_paper_replaces_invalid_ones():
    released = compute("cola", COLA_PREDICTIONS, COLA_TARGETS, with_arguments(PAPER, ["invalid_predictions=released"]))
    assert released["mcc"] == pytest.approx(released_mcc(COLA_PREDICTIONS, COLA_TARGETS), abs=1e-12)
    # paper: each invalid prediction becomes the opposite of its target (docs/paper.md: counts as wrong)
    replaced = ["0", "1", "0", "0", "1", "0", "1", "1"]
    paper = compute("cola", COLA_PREDICTIONS, COLA_TARGETS)
    assert paper["mcc"] == pytest.approx(released_mcc(replaced, COLA_TARGETS), abs=1e-12)
    assert not math.isclose(paper["mcc"], released["mcc"])


def test_stsb_released_keeps_a_parsed_nan_and_paper_makes_it_minus_one():
    targets = ["1.0", "2.0", "3.0", "4.0", "5.0"]
    predictions = ["1.0", "2.2", "nan", "3.8", "5.0"]
    released = compute("stsb", predictions, targets, with_arguments(PAPER, ["invalid_predictions=released"]))
    assert released["pearson"] == 0.0 and released["spearman"] == 0.0  # nan correlation → 0 (metrics.py:28-29)
    from scipy import stats

    paper = compute("stsb", predictions, targets)
    as_minus_one = [1.0, 2.2, -1.0, 3.8, 5.0]
    assert paper["pearson"] == pytest.approx(100 * stats.pearsonr([1, 2, 3, 4, 5], as_minus_one)[0], abs=1e-10)


@given(st.lists(st.tuples(st.sampled_from(["0", "1", "2"]), st.sampled_from(["0", "1", "2", "x", "3", ""])),
                min_size=1, max_size=40))  # fmt: skip
def test_cb_macro_f1_is_the_released_formula_in_both_positions(pairs):
    targets, predictions = [t for t, _ in pairs], [p for _, p in pairs]
    expected = released_macro_f1(predictions, targets)
    for fidelity in (PAPER, RELEASED):
        assert compute("cb", predictions, targets, fidelity)["macro_f1"] == pytest.approx(expected, abs=1e-9)


# --- the options themselves ------------------------------------------------------------------------------------


def test_every_quirk_names_its_lines_in_the_released_code_and_both_positions():
    for quirk in QUIRKS:
        places = re.split(r"[;,] (?=seq2seq/)", quirk.source)
        assert all(re.fullmatch(r"seq2seq/[\w/+.]+\.(py|sh):\d+(-\d+)?(, \d+(-\d+)?)*", p) for p in places), quirk
        assert quirk.paper and quirk.released and quirk.paper != quirk.released
    assert set(BY_NAME) == {q.name for q in QUIRKS} and len(QUIRKS) == len(BY_NAME)


def test_the_docs_table_is_the_options_own_metadata():
    text = (REPO / "docs" / "fidelity.md").read_text(encoding="utf-8")
    start, end = "<!-- fidelity-table: python -m harness fidelity -->\n", "<!-- /fidelity-table -->"
    assert start in text and end in text
    assert text.split(start, 1)[1].split(end, 1)[0] == table_markdown()


def test_fidelity_arguments_apply_in_order_and_refuse_unknown_names():
    mixed = with_arguments(PAPER, ["released", "said_backward=paper"])
    assert mixed.positions["said_backward"] == "paper" and mixed.positions["mnli_split"] == "released"
    assert mixed.label() == "paper, released: " + ", ".join(n for n in BY_NAME if n != "said_backward")
    assert mixed.label("intrinsic_said", "rte") == "paper, released: rte_epochs"
    assert mixed.mixed("compacter", "rte") == [] and mixed.label("compacter", "rte") == "released"
    with pytest.raises(ValueError, match=r"no fidelity option 'said_backwrd'.*said_backward"):
        with_arguments(PAPER, ["said_backwrd=released"])
    with pytest.raises(ValueError, match=r"expected paper \| released"):
        with_arguments(PAPER, ["mnli_split=yes"])


def test_data_shows_the_released_format_and_refuses_an_unknown_option_in_one_line(capsys):
    from harness.cli import EXIT_BAD_INPUT, EXIT_OK, main

    assert main(["data", "mnli", "--toy", "--limit", "1", "--fidelity", "released"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "fidelity released:" in out and " hypothesis " in out and "hypothesis:" not in out
    assert "rows of original validation_mismatched" in out
    assert main(["data", "mnli", "--toy", "--fidelity", "mnli_splt=released"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fidelity: 'mnli_splt=released': no fidelity option 'mnli_splt'" in err[0]
    assert "mnli_split" in err[0]
