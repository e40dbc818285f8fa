"""report.md and the plot (`harness.results.report_plot`), written into a folder from any set of results files:
the runs table, the per-task scores against the published numbers, the regression checks and a section per
run (its predictions: `harness.results.report_predictions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import OutputDirError, ResultsError
from harness.results.regression import compare
from harness.results.report_format import fmt_bytes, fmt_scores, fmt_seconds, relative_link, run_labels, table_cell
from harness.results.report_plot import write_plot
from harness.results.report_predictions import predictions_section
from harness.results.results_json import LoadedResults
from harness.results.results_model import BENCHMARKS, Check, Results
from harness.spec.schema import GLUE_TASKS, SUPERGLUE_TASKS

REPORT_NAME = "report.md"
PLOT_NAME = "score_vs_params.png"
STATUS_TEXT = {"pass": "pass", "fail": "**FAIL**", "missing": "missing", "not_comparable": "not comparable"}
BENCHMARK_TITLES = {"glue": "GLUE avg", "superglue": "SuperGLUE avg"}


@dataclass(frozen=True)
class ReportFiles:
    report: Path
    plot: Path | None  # None when matplotlib is missing or nothing could be plotted
    message: str | None  # why there is no plot


def _task_columns(loaded: list[LoadedResults]) -> tuple[list[str], list[str]]:
    """Tasks any run has or any spec publishes (paper order), and the benchmarks worth a column."""
    present = {task for item in loaded for task in item.results.tasks}
    present |= {entry.task for item in loaded for entry in item.spec.published}
    tasks = [task for task in (*GLUE_TASKS, *SUPERGLUE_TASKS) if task in present]
    benchmarks = [
        name
        for name in BENCHMARKS
        if name in present or any(item.results.benchmark_average(name)[0] is not None for item in loaded)
    ]
    return tasks, benchmarks


def _published_cell(checks: list[Check], task: str) -> str:
    cells = []
    for check in checks:
        if check.kind == "score" and check.task == task:
            metric = "" if check.metric == "average" else f"{check.metric} "
            cells.append(f"{metric}{check.published} ± {check.tolerance} ({STATUS_TEXT[check.status]})")
    return "; ".join(cells) or "—"


def _scores_table(loaded: list[LoadedResults], labels: list[str], comparisons: list) -> list[str]:
    tasks, benchmarks = _task_columns(loaded)
    header = ["run", *tasks, *(BENCHMARK_TITLES[b] for b in benchmarks)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * (len(header) - 1)]
    for item, label, comparison in zip(loaded, labels, comparisons, strict=True):
        run = item.results
        ours = [f"{run.tasks[t].test_mean['average']:.2f}" if t in run.tasks else "—" for t in tasks]
        for benchmark in benchmarks:
            value, _ = run.benchmark_average(benchmark)
            ours.append("—" if value is None else f"{value:.2f}")
        lines.append("| " + " | ".join([label, *ours]) + " |")
        if any(check.kind == "score" for check in comparison.checks):
            published = [_published_cell(comparison.checks, t) for t in [*tasks, *benchmarks]]
            lines.append("| " + " | ".join([f"↳ published ({item.spec.name})", *published]) + " |")
    return lines


def _checks_table(labels: list[str], comparisons: list) -> list[str]:
    lines = [
        "| run | number | ours | published | tolerance | status | note | source |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for label, comparison in zip(labels, comparisons, strict=True):
        for check in comparison.checks:
            digits = 4 if check.kind == "budget" else 2
            ours = "—" if check.actual is None else f"{check.actual:.{digits}f}"
            tolerance = "rounded" if check.tolerance is None else f"{check.tolerance}"
            row = [label, check.label, ours, f"{check.published}", tolerance, STATUS_TEXT[check.status], check.note]
            lines.append("| " + " | ".join(table_cell(text) for text in [*row, check.source or ""]) + " |")
    if len(lines) == 2:
        return ["No spec in this report states a published number."]
    return lines


def _run_section(item: LoadedResults, label: str, comparison, output_dir: Path) -> list[str]:
    run: Results = item.results
    env, budget = run.environment, run.budget
    deepspeed = "no DeepSpeed" if env.deepspeed_stage is None else f"DeepSpeed ZeRO-{env.deepspeed_stage}"
    packages = ", ".join(f"{name} {version}" for name, version in sorted(env.packages.items()))
    spec_percent = item.spec.budget.published_percent
    published = "none" if spec_percent is None else f"{spec_percent} % on {run.model.spec_model}"
    comparable = "yes" if run.comparable else f"**no** — {run.not_comparable_reason}"
    lines = [
        f"## {label}",
        "",
        f"- results: `{relative_link(item.path, output_dir)}`",
        f"- method `{run.method}`, spec `{run.spec.name}` (`{run.spec.path}`, {run.spec.hash[:19]}…), "
        f"profile **{run.profile}**",
        f"- model: {run.model.source} (architecture {run.model.architecture}; the spec's model {run.model.spec_model})",
        f"- comparable with the paper: {comparable}",
        f"- fidelity: {run.resolved_fidelity().label(run.method)} (`python -m harness fidelity`; per task: the "
        "runs' recipes)",
        f"- environment: {env.device}, {env.precision}, {deepspeed}, world size {env.world_size}, "
        f"git {env.git_commit or 'unknown'}" + (f"; {packages}" if packages else ""),
        f"- budget: {budget.trainable_params:,} trainable of {budget.base_params:,} = "
        f"{budget.trainable_percent:.4f} % (published: {published})",
        f"- seeds: {', '.join(map(str, run.seeds))}",
        f"- wall time {fmt_seconds(run.wall_time_s)}, peak memory {fmt_bytes(run.peak_memory_bytes)}, "
        f"{run.tokens_per_second:,.0f} tokens/s",
        f"- regression: {comparison.summary()}",
        "",
        "| task | seed | best epoch | validation | test | train loss by epoch | train samples | wall time "
        "| peak memory | tokens/s | checkpoint |",
        "|---|---|---:|---|---|---|---:|---:|---:|---:|---|",
    ]
    for task, result in run.tasks.items():
        for one in result.runs:
            losses = " → ".join("—" if e.train_loss is None else f"{e.train_loss:.3f}" for e in one.history) or "—"
            samples = "all" if one.max_train_samples is None else f"{one.max_train_samples:,}"
            lines.append(
                f"| {task} | {one.seed} | {one.best_epoch} | {fmt_scores(one.validation)} | {fmt_scores(one.test)} "
                f"| {losses} | {samples} | {fmt_seconds(one.wall_time_s)} | {fmt_bytes(one.peak_memory_bytes)} "
                f"| {one.tokens_per_second:,.0f} | `{one.best_checkpoint}` |"
            )
        if len(result.runs) > 1:
            lines.append(
                f"| {task} | mean | | {fmt_scores(result.validation_mean)} | {fmt_scores(result.test_mean)} "
                "| | | | | | |"
            )
    return [*lines, "", *predictions_section(item, output_dir)]


def render_report(loaded: list[LoadedResults], output_dir: Path, plot: Path | None, message: str | None) -> str:
    labels = run_labels(loaded)
    comparisons = [compare(item) for item in loaded]
    lines = [
        "# Results report",
        "",
        f"{len(loaded)} run{'s' if len(loaded) != 1 else ''}, built by `python -m harness report`. Scores are ×100 "
        "on the test split, with the checkpoint of the best validation average, mean over seeds.",
        "",
    ]
    if plot is not None:
        lines += [
            f"![Average test score against trainable parameters]({plot.name})",
            "",
            "*Average test score (mean over each run's tasks) against the trainable-parameter percentage, log "
            "scale; marker area ∝ peak memory; hollow diamonds, where present, are the paper's published GLUE / "
            "SuperGLUE averages.*",
            "",
        ]
    else:
        lines += [f"No plot: {message}", ""]
    lines += [
        "## Runs",
        "",
        "| run | method | profile | model | comparable | trainable % | published % | tasks | average score "
        "| peak memory | wall time | tokens/s | regression |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for item, label, comparison in zip(loaded, labels, comparisons, strict=True):
        run = item.results
        published = "—" if item.spec.budget.published_percent is None else f"{item.spec.budget.published_percent}"
        lines.append(
            f"| {label} | {run.method} | {run.profile} | {run.model.source} | {'yes' if run.comparable else 'no'} "
            f"| {run.budget.trainable_percent:.4f} | {published} | {len(run.tasks)} | {run.average_score():.2f} "
            f"| {fmt_bytes(run.peak_memory_bytes)} | {fmt_seconds(run.wall_time_s)} | {run.tokens_per_second:,.0f} "
            f"| {comparison.summary()} |"
        )
    lines += [
        "",
        "## Per-task test scores against the published numbers",
        "",
        "Each task's test average (every metric is in the run sections below). Published numbers are only those "
        "of each spec's `published` list: the paper's per-task tables were not transcribed, so most cells have "
        "none (—). A not-comparable run (smoke profile, another model) is never a regression.",
        "",
        *_scores_table(loaded, labels, comparisons),
        "",
        "## Regression checks",
        "",
        *_checks_table(labels, comparisons),
        "",
    ]
    for item, label, comparison in zip(loaded, labels, comparisons, strict=True):
        lines += _run_section(item, label, comparison, output_dir)
    return "\n".join(lines)


def write_report(loaded: list[LoadedResults], output_dir: str | Path, overwrite: bool = False) -> ReportFiles:
    """report.md and the plot in `output_dir`; an existing one is replaced only with `overwrite`."""
    if not loaded:
        raise ResultsError(["(no results): nothing to report"])
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputDirError([f"{output_dir}: (top level): exists and is not a folder"])
    report, plot = output_dir / REPORT_NAME, output_dir / PLOT_NAME
    for path in (report, plot):  # replaced by a file of ours only: never written through a link, never a folder
        if path.is_symlink() or (path.exists() and not path.is_file()):
            kind = "a symbolic link" if path.is_symlink() else "not a regular file"
            raise OutputDirError([f"{path}: (top level): {kind}; the report writes a file here: remove it first"])
    existing = [path for path in (report, plot) if path.exists()]
    if existing and not overwrite:
        raise OutputDirError(
            [f"{path}: (top level): already exists; pass --overwrite to replace it" for path in existing]
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    plot.unlink(missing_ok=True)  # never leave a plot of other results beside the new report
    message = write_plot(loaded, run_labels(loaded), plot)
    written = None if message else plot
    report.write_text(render_report(loaded, output_dir, written, message), encoding="utf-8")
    return ReportFiles(report=report, plot=written, message=message)
