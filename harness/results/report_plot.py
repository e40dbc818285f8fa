"""The report's plot, like the paper's Figure 1.

One point per run, the average test score (the mean over the run's tasks of each task's test average) against
the trainable-parameter percentage on a log scale, marker area proportional to peak memory, labelled by
method. Published points are drawn only from a spec's own numbers (its trainable percentage and a published
GLUE / SuperGLUE average), never invented. matplotlib is optional: without it nothing is drawn and the
report says how to get the plot.
"""

from __future__ import annotations

from pathlib import Path

from harness.results.report_format import fmt_bytes
from harness.results.results_json import LoadedResults
from harness.results.results_model import BENCHMARKS

NO_MATPLOTLIB = "matplotlib is not installed: `pip install matplotlib`, then `python -m harness report … --overwrite`"


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
