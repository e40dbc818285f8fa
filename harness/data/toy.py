"""Deterministic toy data in each task's hub column schema, for tests and offline smoke runs.

The text is made-up sentences from a small vocabulary (no GLUE/SuperGLUE text); labels are drawn from the
task's label set. The same (task, split, n, seed) always gives the same rows. Sizes default to `toy_sizes`
(holdout tasks get 1,000 extra training rows so the held-out validation split leaves a training split);
pass `sizes=task.sizes` for data of the real sizes.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from harness.spec.tasks import HOLDOUT_SIZE, Task, get_task

ADJECTIVES = ("quiet", "green", "small", "bright", "old", "rapid", "calm", "heavy", "amber", "wooden")
NOUNS = ("river", "lamp", "kite", "garden", "harbor", "engine", "violin", "ladder", "meadow", "tower")
VERBS = ("follow", "lift", "paint", "build", "guard", "find", "warm", "shake", "open", "hide")
NAMES = ("Alder", "Birch", "Cedar", "Dunmore", "Elmstead", "Fairhaven", "Glenrock", "Hollins")
TOY_EVAL_ROWS = 24
TOY_TRAIN_ROWS = 48


def toy_sizes(task: Task) -> dict[str, int]:
    train = TOY_TRAIN_ROWS + (HOLDOUT_SIZE if task.split_rule == "holdout_train" else 0)
    return {split: train if split == "train" else TOY_EVAL_ROWS for split in task.splits}


def _sentence(rng: random.Random) -> str:
    a, b = rng.sample(ADJECTIVES, 2)
    n, m = rng.sample(NOUNS, 2)
    return f"The {a} {n} {rng.choice(VERBS)}s the {b} {m}."


def _question(rng: random.Random) -> str:
    return f"Does the {rng.choice(NOUNS)} {rng.choice(VERBS)} the {rng.choice(NOUNS)}?"


def _text(rng: random.Random, column: str) -> str:
    if column.startswith("question"):
        return _question(rng)
    if column in ("passage", "paragraph"):
        return " ".join(_sentence(rng) for _ in range(3))
    return _sentence(rng)


def _stsb_score(rng: random.Random) -> float:
    """Mostly on the 0.2 grid, some off it (exercises the rounding), always in [0, 5]."""
    return round(rng.uniform(0.0, 5.0), 3) if rng.random() < 0.5 else rng.randrange(26) / 5


def _wic(rng: random.Random) -> dict[str, Any]:
    word = rng.choice(NOUNS)
    row: dict[str, Any] = {"word": word}
    for i in (1, 2):
        sentence = f"The {rng.choice(ADJECTIVES)} {word} {rng.choice(VERBS)}s the {rng.choice(NOUNS)}."
        start = sentence.index(word)
        row |= {f"sentence{i}": sentence, f"start{i}": start, f"end{i}": start + len(word)}
    return row


def _record(rng: random.Random, index: int) -> dict[str, Any]:
    entities = rng.sample(NAMES, 4)
    passage = " ".join(f"{name} {rng.choice(VERBS)}s the {rng.choice(NOUNS)}." for name in entities)
    passage += "\n@highlight\n" + f"{entities[0]} is {rng.choice(ADJECTIVES)}"
    starts = [passage.index(name) for name in entities]
    ends = [start + len(name) for start, name in zip(starts, entities, strict=True)]
    answers = entities[: rng.choice((1, 1, 2))]
    return {
        "passage": passage,
        "query": f"@placeholder {rng.choice(VERBS)}s the {rng.choice(NOUNS)}.",
        "entities": entities,
        "entity_spans": {"text": entities, "start": starts, "end": ends},
        "answers": answers,
        "idx": {"passage": index, "query": index},
    }


def _multirc(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Paragraphs of 2 questions with 1–4 answers each (the hub's idx: paragraph, question, answer)."""
    rows: list[dict[str, Any]] = []
    paragraph_id = question_id = answer_id = 0
    while len(rows) < n:
        paragraph = " ".join(f"{_sentence(rng)}<br>" for _ in range(3)).replace("The", "<b>The</b>", 1)
        for _ in range(2):
            question = _question(rng)
            for _ in range(rng.randint(1, 4)):
                idx = {"paragraph": paragraph_id, "question": question_id, "answer": answer_id}
                rows.append({"paragraph": paragraph, "question": question, "answer": _sentence(rng), "idx": idx,
                             "label": rng.randrange(2)})  # fmt: skip
                answer_id += 1
            question_id += 1
        paragraph_id += 1
    return rows[:n]


def toy_rows(task: str | Task, split: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` rows of `split` in the task's hub columns, deterministic in (task, split, n, seed)."""
    task = get_task(task)
    rng = random.Random(f"{task.name}/{split}/{seed}")
    if task.name == "multirc":
        return _multirc(rng, n)
    rows = []
    for index in range(n):
        if task.name == "record":
            rows.append(_record(rng, index))
            continue
        row: dict[str, Any] = _wic(rng) if task.name == "wic" else {}
        for column, kind in task.columns.items():
            if kind == "text" and column not in row:
                row[column] = _text(rng, column)
            elif kind == "cause_effect":
                row[column] = rng.choice(("cause", "effect"))
        label = _stsb_score(rng) if task.target == "stsb" else rng.randrange(len(task.labels))
        # the hub's column order: GLUE ends with label, idx; SuperGLUE with idx, label
        row |= {"label": label, "idx": index} if task.benchmark == "glue" else {"idx": index, "label": label}
        rows.append(row)
    return rows


def toy_tables(task: str | Task, sizes: Mapping[str, int] | None = None, seed: int = 0) -> dict[str, pa.Table]:
    """Every original split the task reads, as Arrow tables."""
    task = get_task(task)
    sizes = sizes or toy_sizes(task)
    return {split: pa.Table.from_pylist(toy_rows(task, split, sizes[split], seed)) for split in task.splits}


def _cells(row: Mapping[str, Any]) -> list[str]:
    return [json.dumps(v) if isinstance(v, list | dict) else str(v) for v in row.values()]


def write_toy_dir(
    task: str | Task, directory: Path, fmt: str = "parquet", sizes: Mapping[str, int] | None = None, seed: int = 0
) -> Path:
    """Write `directory/<task>/<split>.<fmt>` (parquet, jsonl, csv or tsv; lists and mappings as JSON text in
    csv/tsv) and return `directory/<task>`."""
    task = get_task(task)
    folder = Path(directory) / task.name
    folder.mkdir(parents=True, exist_ok=True)
    for split, table in toy_tables(task, sizes, seed).items():
        path = folder / f"{split}.{fmt}"
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, path)
        elif fmt == "jsonl":
            path.write_text("".join(json.dumps(row) + "\n" for row in table.to_pylist()), encoding="utf-8")
        elif fmt == "csv":
            with path.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(table.column_names)
                writer.writerows(_cells(row) for row in table.to_pylist())
        elif fmt == "tsv":
            lines = ["\t".join(table.column_names)] + ["\t".join(_cells(row)) for row in table.to_pylist()]
            if any("\n" in line for line in lines):
                raise ValueError(f"{task.name}: its text holds newlines, which tsv cannot; use parquet, jsonl or csv")
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            raise ValueError(f"unknown format {fmt!r}; use parquet, jsonl, csv or tsv")
    return folder
