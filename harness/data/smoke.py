"""Learnable toy data for smoke runs: the toy rows of `harness.data.toy` with the label written into the text.

Random toy labels cannot be learned, so a smoke run could not show a method learning. Here the first text
field of every row starts with a cue word chosen by its label (for STS-B by its score, rounded), so a
model that reads its input can beat chance within a few hundred steps — enough to see that the method
trains, never a claim about the method's quality. ReCoRD keeps its own rows (its answer is already in
the passage).
"""

from __future__ import annotations

import pyarrow as pa

from harness.data.files import RawSplit
from harness.data.protocol import TaskData, build
from harness.data.toy import toy_rows
from harness.spec.fidelity import PAPER, Fidelity
from harness.spec.tasks import HOLDOUT_SIZE, get_task

CUES = ("amber", "cobalt", "crimson", "ivory", "jade", "onyx")  # label i -> CUES[i]
SMOKE_TRAIN_ROWS = 600
SMOKE_EVAL_ROWS = 200


def cue_rows(task, rows: list[dict]) -> list[dict]:
    text_columns = [c for c, kind in task.columns.items() if kind == "text"]
    if task.target == "record" or not text_columns:
        return rows
    column = text_columns[0]
    cued = []
    for row in rows:
        label = round(row["label"]) if task.target == "stsb" else int(row["label"])
        cued.append({**row, column: f"{CUES[label % len(CUES)]} {row[column]}"})
    return cued


def smoke_task(
    task_name: str, prefix_task_name: bool, seed: int, train_size: int | None = None, fidelity: Fidelity = PAPER
) -> TaskData:
    """The task's splits built (by the paper's split rule) from learnable toy rows."""
    task = get_task(task_name)
    holdout = HOLDOUT_SIZE if task.split_rule == "holdout_train" else 0
    sizes = {split: SMOKE_TRAIN_ROWS + holdout if split == "train" else SMOKE_EVAL_ROWS for split in task.splits}
    raw = {
        split: [
            RawSplit(
                split, f"smoke {task.name} {split}", pa.Table.from_pylist(cue_rows(task, toy_rows(task, split, n)))
            )
        ]
        for split, n in sizes.items()
    }
    return build(
        task, raw, "learnable smoke data", prefix_task_name=prefix_task_name, seed=seed, fidelity=fidelity,
        train_size=train_size,
    )  # fmt: skip
