"""`harness eval` and `harness predict`: a saved checkpoint scored on a task's split, or run on new inputs.

The checkpoint's record (`harness.model.record`) says how its run made its data (the smoke data, a
`--data-dir` folder or the hub; the prefix, seed, MNLI split and training-set cut) and how it generated
(source length, generation length, batches), and at which fidelity (`harness.spec.fidelity`): `evaluate`
rebuilds the same split and generates the same way, so on a run's `best/` with the run's own data it gives
back the run's test scores exactly. `fidelity` scores it with other data positions (formats, splits, metrics).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import DataError, OptionError, OutputDirError
from harness.limits import MAX_LENGTH
from harness.model.record import CheckpointRecord, load_recorded, read_record
from harness.spec.fidelity import Fidelity
from harness.train.dataset import TokenizedDataset
from harness.train.devices import device_of
from harness.train.evaluation import predict_all


def recorded_fidelity(record: CheckpointRecord, values: list[str] | None = None) -> Fidelity:
    """The run's positions, changed by `--fidelity` values (`released`, `NAME=POSITION`) in order."""
    from harness.spec.fidelity import with_arguments

    try:
        return with_arguments(Fidelity.from_section(record.data.fidelity), values)
    except ValueError as error:
        raise OptionError([f"--fidelity: {error}"]) from None


def task_data(record: CheckpointRecord, task: str, data_dir: Path | None, toy: bool, fidelity: Fidelity):
    """The task's splits as the checkpoint's run made them, or from `data_dir` / the toy data when given."""
    from harness.data.protocol import load_task

    made = record.data
    if data_dir is None and not toy and made.origin == "smoke":
        from harness.data.smoke import smoke_task

        return smoke_task(task, made.prefix_task_name, made.data_seed, made.max_train_samples, fidelity)
    if data_dir is None and not toy and made.origin == "files":
        data_dir = Path(made.data_dir)
    return load_task(
        task, data_dir, toy=toy, prefix_task_name=made.prefix_task_name, seed=made.data_seed,
        fidelity=fidelity, train_size=made.max_train_samples,
    )  # fmt: skip


def evaluate(
    folder: Path,
    task: str | None = None,
    split: str = "test",
    data_dir: Path | None = None,
    toy: bool = False,
    base_model: str | None = None,
    device: str | None = None,
    fidelity: list[str] | None = None,
) -> tuple[dict[str, Any], list, list[str]]:
    """(report, examples, predictions): every metric of the task on `split`, generated as the run generated.

    `fidelity`: `preset=released` or `NAME=POSITION` changes to the recorded positions, in order."""
    from harness.data.metrics import compute
    from harness.data.protocol import metric_inputs
    from harness.spec.tasks import get_task

    device = device_of(device)
    if task is not None:  # the recorded task is checked by read_record
        try:
            get_task(task)
        except ValueError as error:
            raise OptionError([f"--task: {error}"]) from None
    record = read_record(folder)
    task = task or record.data.task
    positions = recorded_fidelity(record, fidelity)
    data = task_data(record, task, data_dir, toy, positions)
    examples = data.examples(split)
    if not examples:
        raise DataError([f"{data.origin}: {task}: the {split} split is empty"])
    model, tokenizer = load_recorded(folder, record, base_model)
    model.to(device)
    made = record.data
    sources, targets = [e.source for e in examples], [e.target for e in examples]
    dataset = TokenizedDataset(sources, targets, tokenizer, made.source_length)
    predictions = predict_all(model, dataset, tokenizer, made.eval_batch_size, made.generation_max_length)
    scores = compute(task, predictions, targets, positions, **metric_inputs(task, examples))
    report = {
        "checkpoint": str(folder), "method": record.method, "spec": record.spec, "task": task, "split": split,
        "data": data.origin, "examples": len(examples), "fidelity": positions.label(record.method, task),
        "scores": scores,
    }  # fmt: skip
    return report, examples, predictions


def check_outputs(folder: Path, names: tuple[str, ...], overwrite: bool) -> None:
    """`eval --output-dir`: refused, before the evaluation (whose minutes a failed write would lose), when it is
    no folder one can write into, or when one of `names` there is a folder, a pipe or a symbolic link (writing
    would fail, block, or go through the link to a file elsewhere), or a file and `overwrite` is false."""
    from harness.model.export import writable_parent

    writable_parent(folder, "--output-dir")
    for name in names:
        path = folder / name
        if path.is_symlink():
            raise OutputDirError([f"{path}: --output-dir: a symbolic link; eval writes {name} as a file of its own"])
        if path.exists() and not path.is_file():
            kind = "a folder" if path.is_dir() else "a pipe, socket or device"
            raise OutputDirError([f"{path}: --output-dir: {kind}, where eval writes {name} as a file"])
        if path.exists() and not overwrite:
            raise OutputDirError([f"{path}: (top level): already exists; pass --overwrite to replace it"])


def write_predictions(path: Path, examples, predictions: list[str]) -> None:
    """One JSON line per example: its source, target and the model's prediction, in the split's order."""
    import json

    with path.open("w", encoding="utf-8") as out:
        for example, prediction in zip(examples, predictions, strict=True):
            out.write(json.dumps({"source": example.source, "target": example.target, "prediction": prediction}) + "\n")


def predict(
    folder: Path, texts: list[str], base_model: str | None = None, max_length: int | None = None, device=None
) -> list[str]:
    """Greedy generations for `texts` (each as the model sees a source: `harness data TASK` shows the format).

    `max_length` (default: the run's generation_max_length) is at most `MAX_LENGTH` tokens, as the record's."""
    if max_length is not None and not 1 <= max_length <= MAX_LENGTH:
        raise OptionError([f"--max-length: {max_length} out of range: expected an integer in 1..{MAX_LENGTH:,}"])
    if not texts:
        raise OptionError(["predict: pass --text TEXT (repeatable) or --file FILE (one input per line)"])
    device = device_of(device)
    record = read_record(folder)
    model, tokenizer = load_recorded(folder, record, base_model)
    model.to(device)
    made = record.data
    dataset = TokenizedDataset(texts, [""] * len(texts), tokenizer, made.source_length)
    return predict_all(model, dataset, tokenizer, made.eval_batch_size, max_length or made.generation_max_length)
