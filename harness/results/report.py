"""report.md and a plot like the paper's Figure 1, from any set of results files.

The plot: one point per run, the average test score (the mean over the run's tasks of each task's test
average) against the trainable-parameter percentage on a log scale, marker area proportional to peak
memory, labelled by method. Published points are drawn only from a spec's own numbers (its trainable
percentage and a published GLUE / SuperGLUE average), never invented.
matplotlib is optional: without it report.md is still written and says how to get the plot.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.errors import OutputDirError, ResultsError
from harness.results.regression import compare
from harness.results.results_json import BENCHMARKS, Check, LoadedResults, Results
from harness.spec.schema import GLUE_TASKS, SUPERGLUE_TASKS

REPORT_NAME = "report.md"
PLOT_NAME = "score_vs_params.png"
NO_MATPLOTLIB = "matplotlib is not installed: `pip install matplotlib`, then `python -m harness report … --overwrite`"
STATUS_TEXT = {"pass": "pass", "fail": "**FAIL**", "missing": "missing", "not_comparable": "not comparable"}
BENCHMARK_TITLES = {"glue": "GLUE avg", "superglue": "SuperGLUE avg"}


@dataclass(frozen=True)
class ReportFiles:
    report: Path
    plot: Path | None  # None when matplotlib is missing or nothing could be plotted
    message: str | None  # why there is no plot


# --- formatting --------------------------------------------------------------------------------------------


def fmt_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def fmt_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def fmt_scores(scores: dict[str, float]) -> str:
    """Every metric, the average last: `f1 88.10 · accuracy 84.00 · average 86.05`."""
    parts = [f"{name} {value:.2f}" for name, value in scores.items() if name != "average"]
    return " · ".join([*parts, f"average {scores['average']:.2f}"])


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def run_labels(loaded: list[LoadedResults]) -> list[str]:
    """`method (profile)`, made unique with the results folder's name (then a counter) where needed."""
    labels = [f"{item.results.method} ({item.results.profile})" for item in loaded]
    counts = Counter(labels)
    labels = [
        f"{label} [{item.path.parent.name or item.path.name}]" if counts[label] > 1 else label
        for label, item in zip(labels, loaded, strict=True)
    ]
    seen: Counter[str] = Counter()
    unique = []
    for label in labels:
        seen[label] += 1
        unique.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return unique


def _relative(path: Path, start: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), start.resolve())
    except ValueError:  # another drive (Windows)
        return str(path)


# --- plot ----------------------------------------------------------------------------------------------------


def write_plot(loaded: list[LoadedResults], labels: list[str], path: Path) -> str | None:
    """Draw the figure into `path`; returns why not (and writes nothing) when it cannot."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return NO_MATPLOTLIB
    points = [
        (item, label) for item, label in zip(loaded, labels, strict=True) if item.results.budget.trainable_percent > 0
    ]
    if not points:
        return "no run trains a positive percentage of parameters: nothing to draw on a log scale"
    figure = Figure(figsize=(7.5, 4.8), dpi=150)
    FigureCanvasAgg(figure)  # the Agg canvas, without pyplot's global state
    axes = figure.add_subplot()
    top = max(item.results.peak_memory_bytes for item, _ in points) or 1
    methods = sorted({item.results.method for item, _ in points})
    colours = {method: f"C{index % 10}" for index, method in enumerate(methods)}
    for item, label in points:
        run = item.results
        area = 40 + 560 * run.peak_memory_bytes / top  # marker area ∝ peak memory, as the paper's Figure 1
        x, y = run.budget.trainable_percent, run.average_score()
        axes.scatter([x], [y], s=area, color=colours[run.method], alpha=0.6, edgecolors="black", linewidths=0.8)
        axes.annotate(label, (x, y), xytext=(7, 5), textcoords="offset points", fontsize=8)
    published = {}
    for item, _ in points:  # the paper's own points, for the specs of runs that are comparable with it
        spec = item.spec
        if item.results.comparable and spec.budget.published_percent:
            for entry in spec.published:
                if entry.task in BENCHMARKS and entry.metric == "average":
                    published[(spec.name, entry.task)] = (spec.budget.published_percent, entry.value)
    for (name, benchmark), (x, y) in published.items():
        axes.scatter([x], [y], s=60, marker="D", facecolors="none", edgecolors="black", linewidths=1.0)
        axes.annotate(f"{name} (paper, {benchmark})", (x, y), xytext=(7, -10), textcoords="offset points", fontsize=7)
    axes.set_xscale("log")
    for axis_formatter, minor in ((axes.xaxis.set_major_formatter, False), (axes.xaxis.set_minor_formatter, True)):
        axis_formatter(_percent_formatter(minor))
    axes.set_xlabel("trainable parameters (% of the base model, log scale)")
    axes.set_ylabel("average test score (mean over the run's tasks)")
    axes.set_title(
        f"Score against trainable parameters; marker area ∝ peak memory (largest {fmt_bytes(top)})", fontsize=9
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.margins(x=0.25, y=0.2)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return None


def _percent_formatter(minor: bool):
    """Log-axis tick labels as plain percentages (0.1%, not 10^-1), keeping matplotlib's choice of ticks."""
    from matplotlib.ticker import LogFormatter

    class PercentLogFormatter(LogFormatter):
        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{x:g}%" if super().__call__(x, pos) else ""

    return PercentLogFormatter(labelOnlyBase=not minor, minor_thresholds=(1, 0.5))


# --- report.md -----------------------------------------------------------------------------------------------


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
            lines.append("| " + " | ".join(_cell(text) for text in [*row, check.source or ""]) + " |")
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
        f"- results: `{_relative(item.path, output_dir)}`",
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
    return [*lines, "", *_predictions_section(item, output_dir)]


ERRORS_SHOWN = 3  # test examples the model got wrong, per task and seed
MAX_PREDICTIONS_BYTES = 200_000_000  # a test split of 100,000 examples is tens of megabytes


def _predictions_section(item: LoadedResults, output_dir: Path) -> list[str]:
    """Links to each run's predictions files and its first few wrong test predictions."""
    lines = []
    for task, result in item.results.tasks.items():
        for one in result.runs:
            folder = item.path.parent / task / f"seed{one.seed}"
            files = [folder / f"{split}_predictions.jsonl" for split in ("test", "validation")]
            links = ", ".join(f"[{f.name}]({_relative(f, output_dir)})" for f in files if f.is_file())
            if not links:
                continue
            lines.append(f"**{task}, seed {one.seed}**: {links}")
            wrong = _wrong_predictions(files[0])
            if wrong is None:
                lines += ["", f"(`{files[0].name}` is not readable JSON lines: no errors shown)", ""]
                continue
            if wrong:
                lines += ["", "| source | target | prediction |", "|---|---|---|"]
                lines += [f"| {_cell(r['source'][:160])} | {_cell(r['target'])} | {_cell(r['prediction'])} |"
                          for r in wrong[:ERRORS_SHOWN]]  # fmt: skip
            lines += ["", f"{len(wrong)} wrong test prediction{'s' if len(wrong) != 1 else ''}"
                      + (f", the first {ERRORS_SHOWN} above" if len(wrong) > ERRORS_SHOWN else ""), ""]  # fmt: skip
    return [*lines, ""] if lines else []


def _wrong_predictions(path: Path) -> list[dict] | None:
    """The rows whose prediction is not the target (None when the file is not the harness's JSON lines)."""
    from harness.errors import InputError
    from harness.inputs import decode_utf8, parse_json, read_bytes

    if not path.exists():
        return []
    try:  # a regular file of bounded size, rows of bounded nesting: never a hang or a RecursionError
        text = decode_utf8(read_bytes(path, MAX_PREDICTIONS_BYTES, "predictions file"), path)
        rows = [parse_json(line, path) for line in text.splitlines() if line.strip()]
    except InputError:
        return None
    keys = ("source", "target", "prediction")
    if not all(isinstance(r, dict) and all(isinstance(r.get(key), str) for key in keys) for r in rows):
        return None
    return [r for r in rows if str(r["prediction"]).strip() != str(r["target"]).strip()]


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
