"""A task's data in the paper's protocol: checked rows, the paper's splits, the text the model sees.

Splits (paper; docs/paper.md). `halve_validation` tasks (under 10k training examples): the original validation
set is permuted with `torch.randperm(N, generator=torch.Generator().manual_seed(seed))`; the first ⌊N/2⌋
rows of the permutation are validation, the rest test; train is the original train. `holdout_train` tasks:
train is permuted the same way, its first 1,000 rows are validation, the rest train (in permuted order, as
the released code), and the original validation set is the test set. MNLI's test set is
validation_matched; the fidelity option `mnli_split: released` instead takes validation_mismatched as
validation and the whole train as train (the released code), and `record_evaluation: released` gives
ReCoRD's validation and test sets one example per gold answer, as its training set. Low-resource training
(`train_size=n`): the first n rows of the same seeded permutation of train (for holdout tasks, after the
1,000 held out).

Every row is checked before use: a missing column, a null, a label outside the label set or a score outside
[0, 5] is a DataError naming the file, the row (0-based, as `dataset[row]`) and the column. No row is
ever dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch

from harness.data.files import RawSplit, read_local
from harness.data.hub import read_hub
from harness.errors import DataError
from harness.spec.fidelity import PAPER, Fidelity
from harness.spec.tasks import HOLDOUT_SIZE, STSB_RANGE, Example, Task, format_row, get_task

SPLITS = ("train", "validation", "test")


def _check_value(task: Task, column: str, kind: str, value: Any) -> str | None:
    """Why `value` is not a valid cell of this kind, or None."""
    if value is None:
        return "empty (null)"
    if kind == "text":
        return None if isinstance(value, str) else f"expected text, got {value!r}"
    if kind in ("label", "score") and isinstance(value, str):  # csv/tsv: one bad cell makes the column text
        try:
            return _check_value(task, column, kind, int(value) if kind == "label" else float(value))
        except ValueError:
            pass
    if kind == "label":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
        if not ok or not 0 <= int(value) < len(task.labels):
            names = ", ".join(f"{i} ({name})" for i, name in enumerate(task.labels))
            return f"{value!r} is not in the label set {{{names}}}"
        return None
    if kind == "score":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok and STSB_RANGE[0] <= value <= STSB_RANGE[1] else f"{value!r} is not a score in [0, 5]"
    if kind == "strings":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"expected a list of strings, got {value!r}"
        return "no gold answers" if column == "answers" and not value else None
    if kind == "cause_effect":
        return None if value in ("cause", "effect") else f"{value!r} is neither 'cause' nor 'effect'"
    if kind == "multirc_idx":
        ok = isinstance(value, dict) and all(isinstance(value.get(k), int) for k in ("paragraph", "question"))
        return None if ok else f"expected a mapping with integer paragraph and question, got {value!r}"
    raise AssertionError(kind)


def check_split(task: Task, raw: RawSplit) -> None:
    """Every column the task reads exists and every row of it is valid; else one DataError line per column."""
    errors = []
    for column, kind in task.columns.items():
        if column not in raw.table.column_names:
            has = ", ".join(raw.table.column_names)
            errors.append(f"{raw.origin}: column {column}: missing (the split has {has})")
            continue
        bad = [(row, why) for row, value in enumerate(raw.table.column(column).to_pylist())
               if (why := _check_value(task, column, kind, value)) is not None]  # fmt: skip
        if bad:
            more = f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else ""
            errors.append(f"{raw.origin}: row {bad[0][0]}: column {column}: {bad[0][1]}{more}")
    if errors:
        raise DataError(errors)


def permutation(n: int, seed: int) -> list[int]:
    """torch.randperm(n) under a CPU generator seeded `seed` (the released code's `shuffled_indices`)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator).tolist()


def split_plan(
    task: Task, sizes: Mapping[str, int], seed: int = 42, fidelity: Fidelity = PAPER, train_size: int | None = None
) -> dict[str, tuple[str, list[int]]]:
    """{train, validation, test} -> (original split, row indices in order) for original split sizes `sizes`."""
    n_train = sizes["train"]
    if task.name == "mnli" and fidelity.released("mnli_split"):
        plan = {
            "train": ("train", list(range(n_train))),
            "validation": ("validation_mismatched", list(range(sizes["validation_mismatched"]))),
            "test": ("validation_matched", list(range(sizes["validation_matched"]))),
        }
        pool = permutation(n_train, seed)
    elif task.split_rule == "halve_validation":
        n_eval = sizes[task.test_split]
        order = permutation(n_eval, seed)
        plan = {
            "train": ("train", list(range(n_train))),
            "validation": (task.test_split, order[: n_eval // 2]),
            "test": (task.test_split, order[n_eval // 2 :]),
        }
        pool = permutation(n_train, seed)
    else:
        if n_train <= HOLDOUT_SIZE:
            raise DataError([f"{task.name}: train has {n_train} rows; holding out {HOLDOUT_SIZE} needs more"])
        order = permutation(n_train, seed)
        pool = order[HOLDOUT_SIZE:]
        plan = {
            "train": ("train", pool),
            "validation": ("train", order[:HOLDOUT_SIZE]),
            "test": (task.test_split, list(range(sizes[task.test_split]))),
        }
    if train_size is not None:
        if not 0 < train_size <= len(pool):
            raise DataError([f"{task.name}: train_size {train_size}: train has {len(pool)} rows to sample from"])
        plan["train"] = ("train", pool[:train_size])
    return plan


@dataclass
class TaskData:
    """The three splits of one task as selected raw rows; `examples()` formats them for the model."""

    task: Task
    origin: str
    prefix_task_name: bool
    tables: dict[str, pa.Table]
    plan: dict[str, tuple[str, list[int]]] = field(repr=False)
    fidelity: Fidelity = PAPER

    def expands(self, split: str) -> bool:
        """Whether ReCoRD's split has one example per gold answer (train; every split at released fidelity)."""
        return split == "train" or self.fidelity.released("record_evaluation")

    def rows(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        table = self.tables[split]
        return (table if limit is None else table.slice(0, limit)).to_pylist()

    def examples(self, split: str, limit: int | None = None) -> list[Example]:
        """The split as the model sees it (ReCoRD's train split: one example per gold answer)."""
        out: list[Example] = []
        for row in self.rows(split, limit):
            out.extend(format_row(self.task, row, self.prefix_task_name, self.expands(split), self.fidelity))
        return out[:limit] if limit is not None else out

    def sizes(self) -> dict[str, int]:
        """Examples per split (for ReCoRD's expanded splits, the number of gold answers)."""
        sizes = {split: table.num_rows for split, table in self.tables.items()}
        if self.task.target == "record":
            for split in (s for s in sizes if self.expands(s)):
                sizes[split] = sum(len(a) for a in self.tables[split].column("answers").to_pylist())
        return sizes


def _concat(parts: list[RawSplit]) -> pa.Table:
    """The shards of one split as one table; shards whose column types cannot merge are a DataError naming both."""
    tables = [part.table for part in parts]
    try:
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as error:
        first = parts[0]
        for part in parts[1:]:
            for name in part.table.column_names:
                if name not in first.table.column_names:
                    continue
                types = first.table.schema.field(name).type, part.table.schema.field(name).type
                try:
                    pa.concat_tables(
                        [first.table.select([name]), part.table.select([name])], promote_options="permissive"
                    )
                except (pa.ArrowTypeError, pa.ArrowInvalid):
                    raise DataError([f"{part.origin}: column {name}: {types[1]}, but {first.origin} holds {types[0]}; "
                                     "the shards of one split need the same column types"]) from None  # fmt: skip
        raise DataError([f"{first.origin}: the shards of split {first.name} do not merge: {error}"]) from None


def build(
    task: Task,
    raw: Mapping[str, list[RawSplit]],
    origin: str,
    *,
    prefix_task_name: bool = False,
    seed: int = 42,
    fidelity: Fidelity = PAPER,
    train_size: int | None = None,
) -> TaskData:
    """Check every row of the original splits, then select the paper's splits from them."""
    for parts in raw.values():
        for part in parts:
            check_split(task, part)
    tables = {split: _concat(parts) for split, parts in raw.items()}
    plan = split_plan(task, {s: t.num_rows for s, t in tables.items()}, seed, fidelity, train_size)
    selected = {split: tables[source].take(pa.array(rows, pa.int64())) for split, (source, rows) in plan.items()}
    return TaskData(task, origin, prefix_task_name, selected, plan, fidelity)


def load_task(
    task: str | Task,
    data_dir: str | Path | None = None,
    *,
    toy: bool = False,
    prefix_task_name: bool = False,
    seed: int = 42,
    fidelity: Fidelity = PAPER,
    train_size: int | None = None,
) -> TaskData:
    """A task from `data_dir` (a folder of split files), the generated toy data, or else the hub."""
    task = get_task(task)
    if toy:
        from harness.data.toy import toy_tables

        raw = {s: [RawSplit(s, f"toy {task.name} {s}", t)] for s, t in toy_tables(task).items()}
        origin = "generated toy data"
    elif data_dir is not None:
        raw, origin = read_local(task, Path(data_dir)), str(data_dir)
    else:
        raw, origin = read_hub(task), f"hub {task.hub[0]} ({task.hub[1]})"
    return build(
        task, raw, origin, prefix_task_name=prefix_task_name, seed=seed, fidelity=fidelity, train_size=train_size
    )


def check_splits(task: str, data: TaskData) -> None:
    """Every split has examples after the paper's protocol, or one DataError line: what `run` refuses
    (`harness.train.spec_run` calls this check, so the line is the same) `data` refuses too, rather
    than showing a split a run could not use."""
    empty = [split for split in SPLITS if not data.examples(split, 1)]
    if empty:
        sizes = ", ".join(f"{split} {n}" for split, n in data.sizes().items())
        raise DataError([f"{data.origin}: {task}: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'}"
                         f" empty after the paper's split rule ({sizes}); give the task more rows"])  # fmt: skip


def metric_inputs(task: str | Task, examples: list[Example]) -> dict[str, list[Any]]:
    """The grouping keywords `harness.data.metrics.compute` needs for these examples: MultiRC `group` (one
    question id per example), ReCoRD `answers` (all gold answers per example); {} for other tasks."""
    task = get_task(task)
    if task.name == "multirc":
        return {"group": [e.extra["group"] for e in examples]}
    if task.name == "record":
        return {"answers": [list(e.extra["answers"]) for e in examples]}
    return {}
