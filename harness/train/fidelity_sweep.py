"""`harness run --sweep-fidelity`: which of the released code's quirks moves which score, and by how much.

The spec runs at `paper`, at `released`, and once per quirk that can change its method on the chosen tasks
with that quirk alone released (the rest paper), on the same seeds: each setting is an ordinary run in
`<output>/fidelity/<setting>/` (its own results.json and report). A single quirk's run trains only the
tasks it changes — except in the smoke profile, whose tokenizer is trained on the texts of every task of
the run, so each setting trains them all to keep the same vocabulary (its other texts still give it
another tokenizer: a smoke Δ shows the sweep works, not what a quirk does to a score). `fidelity.json` and
`report.md` in `<output>` give, per task a setting changes, its mean test average and its difference from
`paper`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from harness.errors import OptionError
from harness.spec.fidelity import QUIRKS, Position
from harness.spec.loader import read_spec

log = logging.getLogger("harness.fidelity")


def epochs_fixed(options) -> str | None:
    """Why the epochs are not the recipe's (so `rte_epochs` changes nothing), or None."""
    from harness.spec.loader import override_key
    from harness.train.profiles import PROFILES

    if options.epochs is not None:
        return "--epochs sets every task's epochs"
    if any(override_key(o).startswith("training.epochs") for o in options.overrides):
        return "--set training.epochs… sets the epochs"
    profile = PROFILES.get(options.profile)
    if profile is not None and profile.epochs is not None:
        return f"the {profile.name} profile sets the epochs"
    return None


def settings(
    method: str, options, tasks: list[str]
) -> list[tuple[str, list[tuple[str, Position]], list[str], list[str]]]:
    """(name, fidelity settings, tasks it trains, tasks it changes) of every setting of `method`: paper, released,
    then each applicable quirk alone (not `rte_epochs` when the epochs are set otherwise: its run would be
    paper's). The fidelity settings are `RunOptions.fidelity`'s: ("preset" or a quirk, position) in order."""
    found = [("paper", [("preset", "paper")], tasks, tasks), ("released", [("preset", "released")], tasks, tasks)]
    for quirk in QUIRKS:
        changed = [task for task in tasks if quirk.applies_to(method, task)]
        why = epochs_fixed(options) if quirk.name == "rte_epochs" else None
        if changed and why:
            log.info("fidelity sweep: no run of rte_epochs alone: %s", why)
        elif changed:
            trained = tasks if options.profile == "smoke" else changed  # smoke: one tokenizer for the same tasks
            found.append((quirk.name, [("preset", "paper"), (quirk.name, "released")], trained, changed))
    return found


def sweep_fidelity(spec_path: Path, options) -> tuple[str, Path]:
    """Every setting, one run each; (a summary line, the sweep's folder)."""
    from harness.results.comparability import is_fidelity_override
    from harness.spec.loader import override_key
    from harness.train.devices import is_main_process
    from harness.train.output_dir import check_output_dir, prepare_output_dir
    from harness.train.run_options import check_options, chosen_tasks, profile_of
    from harness.train.spec_run import run_spec

    if options.fidelity or any(is_fidelity_override(override_key(o)) for o in options.overrides):
        raise OptionError(["--sweep-fidelity: sets the fidelity of every run itself; drop --fidelity and "
                           "--set fidelity.…"])  # fmt: skip
    profile = profile_of(options)
    loaded = read_spec(spec_path, overrides=options.overrides)
    tasks = chosen_tasks(options, profile, loaded)
    check_options(options, tasks)
    output_dir = Path(options.output_dir or Path("runs") / f"{spec_path.stem}-{options.profile}-fidelity")
    if is_main_process():
        check_output_dir(output_dir, options.resume, options.overwrite)
    runs: list[dict[str, Any]] = []
    plan = [
        (name, dataclasses.replace(
            options, tasks=setting_tasks, output_dir=output_dir / "fidelity" / name,
            fidelity=fidelity,
            resume=options.resume and (output_dir / "fidelity" / name).is_dir(), overwrite=False,
        ), changed)
        for name, fidelity, setting_tasks, changed in settings(loaded.spec.method.name, options, tasks)
    ]  # fmt: skip
    for _, setting, _ in plan:  # every setting's checks (spec, model, data) pass before anything is written:
        run_spec(spec_path, dataclasses.replace(setting, check_only=True))  # a quirk may refuse its method
    if is_main_process():
        prepare_output_dir(output_dir, options.resume, options.overwrite)
    for name, setting, changed in plan:
        folder = setting.output_dir
        results, _ = run_spec(spec_path, setting)
        runs.append({"setting": name, "folder": str(folder.relative_to(output_dir)), "results": results,
                     "changes": changed})  # fmt: skip
    summary = summarise(runs)
    if is_main_process():
        (output_dir / "fidelity.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        (output_dir / "report.md").write_text(markdown(summary), encoding="utf-8")
    return f"fidelity sweep of {len(runs)} settings: see report.md", output_dir


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task: each setting's mean test average and its difference from paper (the same seeds)."""
    tasks = list(dict.fromkeys(task for run in runs for task in run["results"].tasks))
    table: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        paper = runs[0]["results"].tasks[task].test_mean["average"]
        rows = []
        for run in runs:
            entry = run["results"].tasks.get(task)
            if entry is not None and task in run["changes"]:
                score = entry.test_mean["average"]
                rows.append({"setting": run["setting"], "folder": run["folder"], "test": score, "delta": score - paper})
        table[task] = rows
    first = runs[0]["results"]
    return {"seeds": first.seeds, "method": first.method, "profile": first.profile, "tasks": table}


def markdown(summary: dict[str, Any]) -> str:
    """report.md: the per-task table of settings (each quirk alone, and all released) against paper."""
    seeds = ", ".join(str(seed) for seed in summary["seeds"])
    lines = [
        f"# Paper against released: {summary['method']}",
        "",
        f"Mean test average over seeds {seeds}; Δ is the setting minus `paper` on the same seeds. A quirk's row "
        "has it alone at `released` (the rest `paper`); `released` has every quirk (`python -m harness fidelity`).",
        "",
    ]
    if summary["profile"] == "smoke":
        lines += [
            "Smoke profile: a tiny random model whose tokenizer is trained on each setting's own texts, so a Δ here "
            "shows that the sweep runs, not what a quirk does to a score; use `--profile paper`.",
            "",
        ]
    for task, rows in summary["tasks"].items():
        lines += [f"## {task}", "", "| setting | test average | Δ vs paper | run |", "|---|---:|---:|---|"]
        for row in rows:
            delta = "—" if row["setting"] == "paper" else f"{row['delta']:+.2f}"
            lines.append(
                f"| `{row['setting']}` | {row['test']:.2f} | {delta} | [{row['folder']}]({row['folder']}/report.md) |"
            )
        lines.append("")
    return "\n".join(lines)
