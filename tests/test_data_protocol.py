"""The data protocol's less visible paths, each against an independent reference: the smoke data's split seed
(`torch.randperm` called here), text read back from every file format (the strings written here), label
targets whatever number type a file holds (the raw rows), and the grouping keywords `metric_inputs` gives the
metrics (scores known by construction from the raw rows: every prediction a gold answer, or wrong exactly
for the questions chosen here).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.data.metrics import compute
from harness.data.protocol import load_task, metric_inputs
from harness.data.smoke import SMOKE_EVAL_ROWS, SMOKE_TRAIN_ROWS, smoke_task
from harness.data.toy import toy_rows, write_toy_dir
from harness.spec.fidelity import PAPER, with_arguments
from tests.test_data import randperm


@pytest.mark.parametrize("seed", [7, 1234])
def test_smoke_data_splits_with_the_data_seed_it_is_given(seed):
    """A smoke run's splits follow its recorded data_seed: halves and held-out rows of randperm(N, seed)."""
    rte = smoke_task("rte", False, seed)
    order = randperm(SMOKE_EVAL_ROWS, seed)
    assert [row["idx"] for row in rte.rows("validation")] == order[: SMOKE_EVAL_ROWS // 2]  # toy idx = row number
    assert [row["idx"] for row in rte.rows("test")] == order[SMOKE_EVAL_ROWS // 2 :]
    sst2 = smoke_task("sst2", False, seed, train_size=50)
    order = randperm(SMOKE_TRAIN_ROWS + 1000, seed)
    assert [row["idx"] for row in sst2.rows("validation")] == order[:1000]
    assert [row["idx"] for row in sst2.rows("train")] == order[1000:1050]


# texts a reader could alter: leading quotes (csv quoting), commas, apostrophes, an empty string, spaces
TRICKY = ['"Stop," he said.', 'He said "hi" twice.', "'single' quotes", "a, b; c", "", "  two  spaces ", '""']


def write_rows(folder: Path, split: str, rows: list[dict], fmt: str) -> None:
    path = folder / f"{split}.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif fmt == "csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:  # tsv as GLUE ships it: no quoting at all
        lines = ["\t".join(rows[0])] + ["\t".join(str(v) for v in row.values()) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv", "tsv"])
def test_text_with_quotes_reads_back_verbatim_from_every_format(tmp_path, fmt):
    """The model sees exactly the text in the file, whatever quotes it holds (tsv files are not quoted)."""
    rows = [{"sentence1": TRICKY[i % len(TRICKY)], "sentence2": TRICKY[(i + 3) % len(TRICKY)], "label": i % 2,
             "idx": i} for i in range(30)]  # fmt: skip
    folder = tmp_path / "rte"
    folder.mkdir()
    for split in ("train", "validation"):
        write_rows(folder, split, rows, fmt)
    train = load_task("rte", tmp_path).examples("train")  # the original train, in file order
    expected = [f"sentence1: {row['sentence1']} sentence2: {row['sentence2']}" for row in rows]
    assert [e.source for e in train] == expected


def test_targets_are_label_indices_whatever_the_number_type(tmp_path):
    """A label a file holds as a float (jsonl `1.0`) is the target "1", the same as an integer label."""
    folder = write_toy_dir("cb", tmp_path, "jsonl")
    raw = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    (folder / "train.jsonl").write_text("".join(json.dumps(dict(r, label=float(r["label"]))) + "\n" for r in raw))
    assert '"label": 2.0' in (folder / "train.jsonl").read_text()  # the file really holds floats
    targets = [e.target for e in load_task("cb", tmp_path).examples("train")]
    assert targets == [str(row["label"]) for row in raw]  # the raw integer labels, as written by toy_rows
    assert targets == [str(row["label"]) for row in toy_rows("cb", "train", len(raw))]


@pytest.mark.parametrize("position", ["paper", "released"])
def test_metric_inputs_score_record_against_every_gold_answer(position):
    """Predicting a query's LAST gold answer is a perfect ReCoRD score (EM and F1 are maxima over all answers)."""
    fidelity = PAPER if position == "paper" else with_arguments(PAPER, ["record_evaluation=released"])
    data = load_task("record", toy=True, fidelity=fidelity)
    rows = data.rows("test")
    assert any(len(row["answers"]) > 1 for row in rows)  # the data can tell "first answer" from "any answer"
    per_row = [len(row["answers"]) if position == "released" else 1 for row in rows]
    predictions = [row["answers"][-1] for row, n in zip(rows, per_row, strict=True) for _ in range(n)]
    examples = data.examples("test")
    assert len(examples) == len(predictions)
    scores = compute("record", predictions, [e.target for e in examples], **metric_inputs("record", examples))
    assert scores == pytest.approx({"em": 100.0, "f1": 100.0, "average": 100.0})


def test_metric_inputs_group_multirc_answers_by_question():
    """MultiRC's exact match is per (paragraph, question): wrong answers to even questions only leave every odd
    question exact, so EM is the share of odd questions among the test split's questions (from the raw idx)."""
    data = load_task("multirc", toy=True)
    rows, examples = data.rows("test"), data.examples("test")
    assert len(rows) == len(examples)
    keys = [(row["idx"]["paragraph"], row["idx"]["question"]) for row in rows]
    predictions = [e.target if q % 2 else "10"[int(e.target)] for (_, q), e in zip(keys, examples, strict=True)]
    questions = set(keys)
    expected = 100 * sum(q % 2 for _, q in questions) / len(questions)
    assert 0 < expected < 100
    scores = compute("multirc", predictions, [e.target for e in examples], **metric_inputs("multirc", examples))
    assert scores["em"] == pytest.approx(expected)
