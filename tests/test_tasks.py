"""The 14 task entries: the paper's task list, split rules, and each task's text-to-text format.

Every expected source/target string below is written by hand from docs/paper.md's format (`key: text` pairs,
label index as target, STS-B on the 0.2 grid), not produced by the code under test.
"""

from __future__ import annotations

import typing

import pytest

from harness.data.metrics import METRICS
from harness.spec.schema import TaskName
from harness.spec.tasks import TASKS, format_row, get_task, stsb_target

# docs/paper.md: "for sets under 10k examples (RTE, MRPC, STS-B, CoLA, COPA, WiC, CB, BoolQ, MultiRC) the original
# validation set is halved"
PAPER_SMALL = {"rte", "mrpc", "stsb", "cola", "copa", "wic", "cb", "boolq", "multirc"}


def test_the_paper_fourteen_tasks_and_only_them():
    assert list(TASKS) == list(typing.get_args(TaskName))
    assert len(TASKS) == 14


def test_split_rule_is_the_paper_list():
    small = {name for name, task in TASKS.items() if task.split_rule == "halve_validation"}
    assert small == PAPER_SMALL
    # the rule is "under 10k training examples"; MultiRC's rows are answers (27k) to ~5.1k questions
    by_size = {name for name, task in TASKS.items() if task.sizes["train"] < 10_000}
    assert small - by_size == {"multirc"} and by_size - small == set()


def test_every_metric_exists_and_entries_are_consistent():
    for task in TASKS.values():
        assert task.metrics and all(m in METRICS for m in task.metrics), task.name
        assert set(task.splits) == set(task.sizes), task.name
        assert task.test_split in task.splits
        assert all(f.column in task.columns for f in task.fields), task.name


def test_unknown_task_says_did_you_mean():
    with pytest.raises(ValueError, match="did you mean 'mrpc'"):
        get_task("mrcp")


# (task, raw row in hub columns, expected source without prefix, expected target)
FORMAT_CASES = [
    ("cola", {"sentence": "Ships sail quick.", "label": 1}, "sentence: Ships sail quick.", "1"),
    ("sst2", {"sentence": "a dull tune", "label": 0}, "sentence: a dull tune", "0"),
    ("mrpc", {"sentence1": "Ann ran.", "sentence2": "Ann jogged.", "label": 1},
     "sentence1: Ann ran. sentence2: Ann jogged.", "1"),
    ("qqp", {"question1": "Why sing?", "question2": "Why hum?", "label": 0},
     "question1: Why sing? question2: Why hum?", "0"),
    ("stsb", {"sentence1": "A cat naps.", "sentence2": "A cat sleeps.", "label": 4.25},
     "sentence1: A cat naps. sentence2: A cat sleeps.", "4.2"),
    ("mnli", {"premise": "Rain fell.", "hypothesis": "It was dry.", "label": 2},
     "premise: Rain fell. hypothesis: It was dry.", "2"),
    ("qnli", {"question": "Who won?", "sentence": "Bo won.", "label": 0}, "question: Who won? sentence: Bo won.", "0"),
    ("rte", {"sentence1": "Jo owns a van.", "sentence2": "Jo has a car.", "label": 1},
     "sentence1: Jo owns a van. sentence2: Jo has a car.", "1"),
    ("boolq", {"question": "is ice cold", "passage": "Ice is cold.", "label": 1},
     "question: is ice cold passage: Ice is cold.", "1"),
    ("cb", {"premise": "Mo left.", "hypothesis": "Mo stayed.", "label": 2}, "premise: Mo left. hypothesis: Mo stayed.",
     "2"),
    ("copa", {"premise": "The ink spilled.", "choice1": "The page got stained.", "choice2": "The pen was new.",
              "question": "effect", "label": 0},
     "premise: The ink spilled. choice1: The page got stained. choice2: The pen was new. question: effect", "0"),
    ("multirc", {"paragraph": "<b>Sent 1: </b>Kim bakes.<br><b>Sent 2: </b>Lee eats.<br>", "question": "Who eats?",
                 "answer": "Lee", "idx": {"paragraph": 3, "question": 7, "answer": 9}, "label": 1},
     "question: Who eats? answer: Lee paragraph: Sent 1: Kim bakes. Sent 2: Lee eats. ", "1"),
    ("record", {"passage": "Ann met Bob.\n@highlight\nBob smiled\n@highlight\nAnn left",
                "query": "@placeholder smiled.", "entities": ["Ann", "Bob"], "answers": ["Bob"]},
     "query: @placeholder smiled. entities: Ann, Bob passage: Ann met Bob. Bob smiled. Ann left", "Bob"),
    ("wic", {"word": "bank", "sentence1": "The bank opened.", "sentence2": "The river bank.", "label": 0},
     "sentence1: The bank opened. sentence2: The river bank. word: bank", "0"),
]  # fmt: skip


def test_format_cases_cover_every_task():
    assert sorted(case[0] for case in FORMAT_CASES) == sorted(TASKS)


@pytest.mark.parametrize(("name", "row", "source", "target"), FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
def test_format_of_one_example(name, row, source, target):
    task = get_task(name)
    [plain] = format_row(task, row, prefix_task_name=False)
    [prefixed] = format_row(task, row, prefix_task_name=True)
    assert (plain.source, plain.target) == (source, target)
    assert (prefixed.source, prefixed.target) == (f"{name} {source}", target)


def test_multirc_carries_its_question_group_and_record_its_answers():
    rows = {case[0]: case[1] for case in FORMAT_CASES}
    assert format_row(get_task("multirc"), rows["multirc"], False)[0].extra == {"group": (3, 7)}
    assert format_row(get_task("record"), rows["record"], False)[0].extra == {"answers": ("Bob",)}


def test_record_training_rows_expand_to_one_example_per_answer():
    row = {"passage": "Ann met Bob Jr.", "query": "@placeholder smiled.", "entities": ["Ann", "Bob", "Bob Jr"],
           "answers": ["Bob", "Bob Jr"]}  # fmt: skip
    train = format_row(get_task("record"), row, False, expand=True)
    evaluation = format_row(get_task("record"), row, False, expand=False)
    assert [e.target for e in train] == ["Bob", "Bob Jr"]
    assert len({e.source for e in train}) == 1
    assert [e.target for e in evaluation] == ["Bob"] and evaluation[0].extra["answers"] == ("Bob", "Bob Jr")


@pytest.mark.parametrize(
    ("score", "target"),
    # round(5·s)/5, half to even: 17.5 -> 18 (3.6), 12.5 -> 12 (2.4); 1.333·5 = 6.665 -> 7 (1.4)
    [(0.0, "0.0"), (5.0, "5.0"), (3.8, "3.8"), (4.25, "4.2"), (1.333, "1.4"), (3.5, "3.6"), (2.5, "2.4"), (0.1, "0.0")],
)
def test_stsb_target_is_on_the_point_two_grid(score, target):
    assert stsb_target(score) == target


def test_copa_keeps_its_question():
    row = dict(FORMAT_CASES[10][1], question="cause")
    assert format_row(get_task("copa"), row, False)[0].source.endswith("question: cause")
