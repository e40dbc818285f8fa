"""How report.md and its plot write things: sizes, durations, scores, Markdown table cells, run labels and
links relative to the report's folder."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from harness.results.results_json import LoadedResults


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


def table_cell(text: str) -> str:
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


def relative_link(path: Path, start: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), start.resolve())
    except ValueError:  # another drive (Windows)
        return str(path)
