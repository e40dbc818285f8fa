"""`harness run --sweep`: the paper's grid, chosen per task by validation, reported on test.

The paper swept the reduction factor over {32, 16, 8} (d = 24, 48, 96 on t5-base) and, for the PHM
methods, n over {4, 8, 12}. Each grid point is an ordinary run in `<output>/sweep/<point>/` (its own
results.json and report); a point the model cannot take (n not dividing d) is skipped and said so.
`<output>/sweep.json` and `sweep.md` list every point's mean validation and test average per task, and
for each task the point with the best validation average: its test score is the sweep's result.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from itertools import product
from pathlib import Path
from typing import Any

from harness.errors import SpecError
from harness.spec.loader import read_spec

log = logging.getLogger("harness.sweep")
GRID = {"reduction_factor": (32, 16, 8), "n": (4, 8, 12)}


def grid_points(spec_path: Path, options) -> list[dict[str, int]]:
    """The grid over the arguments the spec's method accepts."""
    from impl.registry import get

    loaded = read_spec(spec_path, overrides=options.overrides, fidelity=options.fidelity)
    accepted = get(loaded.spec.method.name).parameters()
    axes = {name: values for name, values in GRID.items() if name in accepted}
    if not axes:
        raise SpecError([f"{spec_path}: method.name: {loaded.spec.method.name} has no argument of the paper's grid"])
    return [dict(zip(axes, values, strict=True)) for values in product(*axes.values())]


def sweep(spec_path: Path, options) -> tuple[str, Path]:
    """Every grid point the model can take, one run each; (a summary line, the sweep's folder)."""
    from harness.train.devices import is_main_process
    from harness.train.output_dir import check_output_dir, prepare_output_dir
    from harness.train.run_options import check_inputs_outside, check_options
    from harness.train.spec_run import run_spec

    output_dir = Path(options.output_dir or Path("runs") / f"{spec_path.stem}-{options.profile}-sweep")
    grid = grid_points(spec_path, options)  # the spec, the overrides and the options: before the disk
    check_options(options, options.tasks or [])
    if is_main_process():
        check_output_dir(output_dir, options.resume, options.overwrite)
    check_inputs_outside(output_dir, spec_path, options)
    prepared = False
    points, skipped = [], []
    for point in grid:
        label = ",".join(f"{k}={v}" for k, v in point.items())
        sets = [f"method.args.{k}={v}" for k, v in point.items()]
        folder = output_dir / "sweep" / label
        point_options = dataclasses.replace(
            options,
            output_dir=folder,
            overrides=[*options.overrides, *sets],
            resume=options.resume and folder.is_dir(),
            overwrite=False,
        )
        try:
            if not prepared:  # the first point that can run passes every check (model, data) before the disk
                run_spec(spec_path, dataclasses.replace(point_options, check_only=True))
                if is_main_process():
                    prepare_output_dir(output_dir, options.resume, options.overwrite)
                prepared = True
            results, _ = run_spec(spec_path, point_options)
        except SpecError as error:
            if not any(".method.args." in line or ": method.args." in line for line in error.errors):
                raise
            skipped.append({"point": point, "reason": "; ".join(error.errors)})
            log.warning("sweep: skipping %s: %s", label, "; ".join(error.errors))
            continue
        points.append({"point": point, "folder": str(folder.relative_to(output_dir)), "results": results})
    if not points:
        raise SpecError([f"{spec_path}: --sweep: no grid point is valid for this model"])
    summary = summarise(points, skipped)
    (output_dir / "sweep.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (output_dir / "sweep.md").write_text(markdown(summary), encoding="utf-8")
    return f"sweep of {len(points)} points: see sweep.md", output_dir


def summarise(points: list[dict], skipped: list[dict]) -> dict[str, Any]:
    tasks = sorted({task for p in points for task in p["results"].tasks})
    table, chosen = {}, {}
    for task in tasks:
        rows = []
        for p in points:
            entry = p["results"].tasks.get(task)
            if entry:
                rows.append(
                    {
                        "point": p["point"],
                        "folder": p["folder"],
                        "validation": entry.validation_mean.get("average"),
                        "test": entry.test_mean.get("average"),
                        "trainable_percent": p["results"].budget.trainable_percent,
                    }
                )
        table[task] = rows
        chosen[task] = max(rows, key=lambda row: row["validation"])
    return {"tasks": table, "chosen": chosen, "skipped": skipped}


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        "# Sweep over the paper's grid",
        "",
        "Chosen per task by the mean validation average; its test score is the result.",
        "",
    ]
    for task, rows in summary["tasks"].items():
        lines += [f"## {task}", "", "| setting | trainable % | validation | test |", "|---|---:|---:|---:|"]
        best = summary["chosen"][task]["point"]
        for row in rows:
            mark = " **(chosen)**" if row["point"] == best else ""
            setting = ", ".join(f"{k} {v}" for k, v in row["point"].items())
            lines.append(
                f"| {setting}{mark} | {row['trainable_percent']:.4f} | {row['validation']:.2f} | {row['test']:.2f} |"
            )
        lines.append("")
    if summary["skipped"]:
        lines += ["Skipped:", ""] + [f"- {s['point']}: {s['reason']}" for s in summary["skipped"]]
    return "\n".join(lines) + "\n"
