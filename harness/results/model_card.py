"""The model card of a trained checkpoint: `<task>/seed<k>/best/README.md` in the Hugging Face Hub's format, so
that the folder can be published as it is.

Everything on the card comes from the checkpoint's record (`harness.json`), the run's numbers (its `Run` in
results.json) and the spec run's comparability with the paper; nothing is estimated or rounded in the metadata.
The YAML front matter (written by `yaml.safe_dump`, never by hand) holds `library_name`, `base_model` (a hub id
only: a local folder or a smoke run's random backbone is named in prose instead), `tags`, `datasets` (the
task's hub dataset, when the run read the task's data rather than the smoke data), `metrics`, the harness's own
keys (`compacter_harness`: method, spec, spec hash, task, seed, comparability) and `model-index`: one result, a
metric per test score. The Markdown body says the method and its arguments, the spec and its hash, the base
model, the recipe, the best epoch and its validation scores, whether the run is comparable with the paper (and
why not), and how to load the folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.model.record import CheckpointRecord, read_record
from harness.results.results_model import BudgetInfo, Results, Run
from harness.spec.fidelity import Fidelity
from harness.spec.model_choice import HUB_ID
from harness.spec.tasks import Task, format_source, get_task

CARD_FILE = "README.md"
LIBRARY = "compacter-harness"
TASK_TYPE = "text2text-generation"  # a T5 generates the label as text
BENCHMARK_NAMES = {"glue": "GLUE", "superglue": "SuperGLUE"}
SMOKE_DATASET = "compacter-harness-smoke"  # the dataset type of a run on the smoke data: no hub dataset
# The recipe keys the card shows first, in this order; the rest of the run's recipe follows, sorted.
RECIPE_FIRST = ("learning_rate", "global_batch_size", "epochs", "warmup_steps", "dropout", "precision", "fidelity")


def hub_base_model(pretrained: str | None) -> str | None:
    """`pretrained` when it is a hub id, else None: a random backbone (None), a local folder, or anything that is
    no hub id (a path) is not a `base_model` the Hub could link."""
    if pretrained is None or pretrained.startswith((".", "/", "~")) or not HUB_ID.match(pretrained):
        return None
    return None if Path(pretrained).expanduser().exists() else pretrained


def render_card(
    record: CheckpointRecord,
    run: Run,
    comparable: bool,
    not_comparable_reason: str | None,
    budget: BudgetInfo | None = None,
) -> str:
    """The card's text: the YAML front matter between `---` lines, then the Markdown body."""
    task = get_task(record.data.task)
    base = hub_base_model(record.pretrained)  # the hub id of the weights, or None (looked up once, on disk)
    metadata = yaml.safe_dump(
        front_matter(record, run, task, base, comparable, not_comparable_reason),
        sort_keys=False,
        allow_unicode=True,
        width=1_000_000,  # one line per value: no folding
    )
    body = "\n\n".join(
        [
            title(record, run, task),
            method_section(record, budget),
            base_model_section(record, base),
            data_section(record, task),
            recipe_section(run.recipe),
            results_section(run, task, record),
            comparability_section(comparable, not_comparable_reason),
            use_section(record, task, base),
        ]
    )
    return f"---\n{metadata}---\n\n{body}\n"


def front_matter(
    record: CheckpointRecord,
    run: Run,
    task: Task,
    base: str | None,
    comparable: bool,
    not_comparable_reason: str | None,
) -> dict[str, Any]:
    """The card's metadata (the Hub's model-card keys, and the harness's own under `compacter_harness`)."""
    data: dict[str, Any] = {"library_name": LIBRARY}
    if base is not None:
        data["base_model"] = base
    data["tags"] = tags(record, task)
    if record.data.origin != "smoke":
        data["datasets"] = [task.hub[0]]
    data["metrics"] = [name for name in run.test if name != "average"]
    data["compacter_harness"] = {
        "method": record.method,
        "spec": record.spec,
        "spec_hash": record.spec_hash,
        "task": task.name,
        "seed": run.seed,
        "best_epoch": run.best_epoch,
        "comparable": comparable,
        "not_comparable_reason": not_comparable_reason,
        "harness_version": record.harness_version,
    }
    name = f"{record.spec}-{task.name}-seed{run.seed}"
    data["model-index"] = [{"name": name, "results": [result(record, run, task)]}]
    return data


def tags(record: CheckpointRecord, task: Task) -> list[str]:
    """The harness, the method, `peft` unless every parameter trained, the architecture, the task."""
    found = [LIBRARY, record.method]
    if record.trainable != ["*"]:
        found.append("peft")
    found += [record.model.architecture.model_type, TASK_TYPE]
    if record.data.origin != "smoke":
        found += [task.benchmark, task.name]
    return list(dict.fromkeys(found))


def result(record: CheckpointRecord, run: Run, task: Task) -> dict[str, Any]:
    """The model-index result: the task's dataset and split, one metric per test score (the exact values)."""
    if record.data.origin == "smoke":
        dataset = {"name": f"{task.name.upper()} smoke data (toy rows, not {BENCHMARK_NAMES[task.benchmark]}'s)",
                   "type": SMOKE_DATASET, "config": task.name, "split": "test"}  # fmt: skip
    else:
        repo, config = task.hub
        name = f"{BENCHMARK_NAMES[task.benchmark]} {task.name.upper()}"
        dataset = {"name": name, "type": repo, "config": config, "split": task.test_split}
    return {
        "task": {"type": TASK_TYPE, "name": "Text2Text Generation"},
        "dataset": dataset,
        "metrics": [{"type": name, "value": value, "name": f"test {name}"} for name, value in run.test.items()],
    }


def code(value: Any) -> str:
    """`value` as inline Markdown code, on one line (a backtick inside takes a longer fence)."""
    text = " ".join(str(value).split())
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def shown(value: Any) -> str:
    """A recorded value as the card prints it: JSON (numbers exactly, strings quoted, booleans lower case)."""
    return code(json.dumps(value, ensure_ascii=False))


def table(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    return "\n".join(lines + [f"| {key} | {value} |" for key, value in rows])


def title(record: CheckpointRecord, run: Run, task: Task) -> str:
    lines = [f"# {record.method} on {task.name.upper()}, seed {run.seed}"]
    text = (f"A checkpoint of the {code(record.method)} method on T5, trained by {LIBRARY} "
            f"{code(record.harness_version)} from the spec {code(record.spec)}.")  # fmt: skip
    if record.pretrained is None:
        text += (" **A smoke run**: a tiny T5 with random weights on toy data; its scores show only that the "
                 "method trains, never its quality.")  # fmt: skip
    return "\n\n".join([*lines, text])


def method_section(record: CheckpointRecord, budget: BudgetInfo | None) -> str:
    from impl.registry import get

    summary = get(record.method).summary
    arguments = table(("argument", "value"), [(code(k), shown(v)) for k, v in record.arguments.items()])
    parts = [
        "## Method",
        f"{code(record.method)}{': ' + summary if summary else ''}",
        arguments if record.arguments else "The method takes no argument.",
        f"Trainable parameters (globs): {', '.join(code(glob) for glob in record.trainable)}.",
    ]
    if budget is not None:
        parts.append(f"Trainable parameters counted on the run's model: {budget.trainable_params:,} of "
                     f"{budget.base_params:,} ({budget.trainable_percent:.4f} %).")  # fmt: skip
    parts.append(f"Spec {code(record.spec)}, spec hash {code(record.spec_hash)} (the hash of the resolved spec: "
                 "`python -m harness show SPEC --json`).")  # fmt: skip
    return "\n\n".join(parts)


def base_model_section(record: CheckpointRecord, base: str | None) -> str:
    architecture = record.model.architecture
    rows = [
        ("model", code(record.model.name)),
        ("model type", code(architecture.model_type)),
        ("d_model, d_ff, heads", f"{architecture.d_model}, {architecture.d_ff}, {architecture.num_heads}"),
        ("encoder, decoder blocks", f"{architecture.num_layers}, {architecture.num_decoder_layers}"),
        ("vocabulary", f"{architecture.vocab_size:,}"),
    ]
    if base is not None:
        weights = f"The pretrained weights of the hub model [{base}](https://huggingface.co/{base}) (`base_model`)."
    elif record.pretrained is not None:
        weights = (f"The pretrained weights of the local folder {code(record.pretrained)}: not a hub id, so the "
                   "metadata names no `base_model`; add the hub id of the same weights before publishing, if "
                   "there is one.")  # fmt: skip
    else:
        weights = (f"Random weights drawn from seed {record.random_seed} (drawn again when the checkpoint loads): "
                   "there is no base model to name.")  # fmt: skip
    return "\n\n".join(["## Base model", table(("", ""), rows), weights])


def data_section(record: CheckpointRecord, task: Task) -> str:
    made = record.data
    if made.origin == "smoke":
        where = "the harness's smoke data (learnable toy rows, generated offline)"
    elif made.origin == "files":
        where = f"local split files ({code(made.data_dir)}) with the columns of {code(task.hub[0])} ({task.hub[1]})"
    else:
        where = f"the hub dataset {code(task.hub[0])}, configuration {code(task.hub[1])}"
    if task.split_rule == "halve_validation":
        split = (f"validation and test are the two halves of {code(task.test_split)}, shuffled with data seed "
                 f"{made.data_seed}")  # fmt: skip
    else:
        split = (f"validation is 1,000 training rows held out with data seed {made.data_seed}, test is "
                 f"{code(task.test_split)}")  # fmt: skip
    cut = f"; training on the first {made.max_train_samples:,} rows" if made.max_train_samples else ""
    return "\n\n".join(["## Data", f"{task.name.upper()} from {where}. The paper's splits: {split}{cut}."])


def recipe_section(recipe: Mapping[str, Any] | None) -> str:
    if recipe is None:
        return "## Recipe\n\nThe run recorded no recipe."
    keys = [key for key in RECIPE_FIRST if key in recipe] + sorted(set(recipe) - set(RECIPE_FIRST))
    rows = [(code(key), fidelity_text(recipe[key]) if key == "fidelity" else shown(recipe[key])) for key in keys]
    return "\n\n".join(["## Recipe", "What the run trained with (the spec's, after its profile and options):",
                        table(("setting", "value"), rows)])  # fmt: skip


def fidelity_text(positions: Any) -> str:
    """`paper`, `released`, or each quirk's position, for the quirks that can change this run."""
    if not isinstance(positions, Mapping) or not positions:
        return shown(positions) if positions else "no quirk applies"
    if len(set(positions.values())) == 1:
        return code(next(iter(positions.values())))
    return ", ".join(f"{code(name)}: {code(position)}" for name, position in positions.items())


def results_section(run: Run, task: Task, record: CheckpointRecord) -> str:
    rows = [(code(name), shown(run.test[name]), shown(run.validation.get(name))) for name in run.test]
    lines = ["| score | test | validation (best epoch) |", "|---|---|---|"]
    lines += [f"| {name} | {test} | {validation} |" for name, test, validation in rows]
    text = (f"The best epoch by the validation average: {run.best_epoch}. Its test scores (×100; `average` is the "
            f"mean of {', '.join(code(m) for m in task.metrics)}) are the `model-index` above.")  # fmt: skip
    if record.pretrained is None:
        text += " A smoke run's scores are on toy data: no claim about the method."
    return "\n\n".join(["## Results", text, "\n".join(lines)])


def comparability_section(comparable: bool, reason: str | None) -> str:
    if comparable:
        verdict = ("**Comparable with the paper**: the paper's profile, model and recipe; results.json compares its "
                   "scores with the published numbers.")  # fmt: skip
    else:
        why = " ".join((reason or "no reason recorded").split()).rstrip(".")
        verdict = f"**Not comparable with the paper**: {why}."
    return "\n\n".join(["## Comparability with the paper", verdict])


def use_section(record: CheckpointRecord, task: Task, base: str | None) -> str:
    from impl.registry import get

    fidelity = Fidelity.from_section(record.data.fidelity)
    example = format_source(task, {field.column: "…" for field in task.fields}, record.data.prefix_task_name, fidelity)
    override = "" if record.pretrained is None or base else ', base_model="T5 FOLDER"'
    merge = get(record.method).merge
    reads = ""
    if record.data.origin == "files":
        reads = f"`eval` reads the run's files again from {code(record.data.data_dir)}, or `--data-dir DIR`. "
    if callable(merge):
        export = "python -m harness export FOLDER --merged OUT     # a stock T5 folder (this card stays here)"
    else:
        export = f"# export --merged: refused for {record.method}: {' '.join(merge.split())}"
    return "\n\n".join(
        [
            "## Use",
            f"With {LIBRARY} installed (the set-up of its README), FOLDER being this folder (on disk, or downloaded "
            "with `huggingface_hub.snapshot_download`):",
            f'```python\nimport harness\n\nmodel, tokenizer = harness.load("FOLDER"{override})\n```',
            "```bash\n"
            "python -m harness eval FOLDER --split test --json     # the test scores above, exactly\n"
            f"python -m harness predict FOLDER --text {json.dumps(example, ensure_ascii=False)}\n"
            f"{export}\n```",
            f"{reads}The record beside the weights (`harness.json`) says everything else: docs/checkpoints.md in "
            "the harness's repository.",
        ]
    )


def checkpoint_card(folder: Path, run: Run, results: Results) -> str:
    """The card of the run's `best/` folder, from its record (read and checked) and the spec run's results."""
    return render_card(read_record(folder), run, results.comparable, results.not_comparable_reason, results.budget)


def write_card(folder: Path, text: str) -> Path:
    """`folder/README.md`, replaced atomically: a card cut short never stands in for the whole one."""
    path = folder / CARD_FILE
    temporary = folder / f".{CARD_FILE}.tmp"
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
