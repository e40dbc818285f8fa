"""The bench report as a Markdown table like the paper's Table 3, and as a plot (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path

MATPLOTLIB_MISSING = "the plot needs matplotlib: pip install 'compacter-harness[plot]' (or matplotlib>=3.7)"
OUTPUT_FILES = ("bench.json", "bench.md", "bench.png")


def ratio(cell: dict, change: bool = False) -> str:
    """'0.735 [0.71–0.76]', with the paper's percentage change when `change` ('0.735 (−26.5 %) [...]')."""
    text = f"{cell['median']:.3f}"
    if change:
        text += f" ({100 * (cell['median'] - 1):+.1f} %)".replace("-", "−")
    if cell["max"] - cell["min"] > 0:
        text += f" [{cell['min']:.3f}–{cell['max']:.3f}]"
    return text


def caption(report: dict) -> str:
    c, e = report["config"], report["environment"]
    memory = {"cuda_max_allocated": "max allocated GPU memory"}.get(
        report["methods"][0]["memory_kind"], "peak resident set size of the process during training"
    )
    engine = f", DeepSpeed {Path(c['deepspeed']).name}" if c["deepspeed"] else ""
    return (
        f"One training step (forward, backward, clip, AdamW) of {c['model']} with random weights, batch "
        f"{c['batch']} × {c['source_len']} source / {c['target_len']} target tokens, {c['device']} "
        f"{c['precision']}{engine}, {c['threads']} threads; each method in its own process; {c['rounds']} "
        f"interleaved rounds × {c['steps']} timed steps ({c['warmup']} warm-up). Step time: median over all timed "
        f"steps [min–max]. Ratios: median over rounds of the same-round ratio [min–max]. Memory: {memory}. "
        f"Load average (1/5/15 min) before {fmt_load(e['load_average_before'])}, after "
        f"{fmt_load(e['load_average_after'])} on {e['cpu_count']} CPUs; torch {e['torch']}, transformers "
        f"{e['transformers']}; {e['wall_s'] / 60:.1f} min."
    )


def fmt_load(load: list[float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def markdown(report: dict) -> str:
    """The table: one row per method, references first."""
    lines = [
        caption(report),
        "",
        "| method | trainable params | % | step (s) | tokens/s | time ÷ full FT | time ÷ floor | peak memory (MiB) "
        "| memory ÷ full FT | memory ÷ floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["methods"]:
        step, memory = row["step_s"], row["peak_memory_bytes"]
        name = f"{row['name']} (reference)" if row["kind"] == "reference" else row["name"]
        lines.append(
            f"| {name} | {row['trainable_params']:,} | {row['trainable_percent']:.4g} "
            f"| {step['median']:.3f} [{step['min']:.3f}–{step['max']:.3f}] | {row['tokens_per_s']:,.0f} "
            f"| {ratio(row['time_vs_full_finetune'], change=True)} | {ratio(row['time_vs_floor'])} "
            f"| {memory['median'] / 2**20:,.0f} | {ratio(row['memory_vs_full_finetune'], change=True)} "
            f"| {ratio(row['memory_vs_floor'])} |"
        )
    if any(row["rounds"][-1].get("op_times") for row in report["methods"]):
        lines += ["", op_times_markdown(report, report["config"].get("op_rows") or 8)]
    return "\n".join(lines) + "\n"


def op_times_markdown(report: dict, rows: int = 8) -> str:
    """Where the time goes: per op, each method's self time in one extra step minus the floor's."""
    ops = {row["name"]: {p["op"]: p for p in row["rounds"][-1].get("op_times", [])} for row in report["methods"]}
    floor = ops.get("floor", {})
    floor_total = sum(p["self_ms"] for p in floor.values())
    lines = [
        "Where the time goes: one extra step under torch.profiler, self time per op in ms, and its difference "
        f"(Δ) from the floor's ({floor_total:.0f} ms in all); the ops with the largest Δ.",
        "",
    ]
    for name, table in ops.items():
        if not table or name == "floor":
            continue
        total = sum(p["self_ms"] for p in table.values())
        names = set(table) | set(floor)
        delta = {op: table.get(op, {}).get("self_ms", 0.0) - floor.get(op, {}).get("self_ms", 0.0) for op in names}
        top = sorted(names, key=lambda op: -abs(delta[op]))[:rows]
        cells = ", ".join(
            f"{op} {table.get(op, {}).get('self_ms', 0.0):.0f} (Δ {delta[op]:+.0f}, "
            f"{table.get(op, {}).get('calls', 0)} vs {floor.get(op, {}).get('calls', 0)} calls)"
            for op in top
        )
        lines.append(f"- **{name}**: {total:.0f} ms (Δ {total - floor_total:+.0f}): {cells}")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> str | None:
    """Bars of step time and peak memory relative to full fine-tuning (min–max whiskers); None, or why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return MATPLOTLIB_MISSING
    rows = report["methods"]
    names = [row["name"] for row in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(rows) + 1.6), sharey=True)
    for ax, key, title in (
        (axes[0], "time_vs_full_finetune", "step time ÷ full fine-tuning"),
        (axes[1], "memory_vs_full_finetune", "peak memory ÷ full fine-tuning"),
    ):
        mid = [row[key]["median"] for row in rows]
        err = [
            [row[key]["median"] - row[key]["min"] for row in rows],
            [row[key]["max"] - row[key]["median"] for row in rows],
        ]
        colors = ["0.55" if row["kind"] == "reference" else "tab:blue" for row in rows]
        ax.barh(range(len(rows)), mid, xerr=err, color=colors, capsize=3)
        floor = next(row[key]["median"] for row in rows if row["name"] == "floor")
        ax.axvline(1.0, color="k", lw=0.8)
        ax.axvline(floor, color="tab:red", lw=0.8, ls="--", label="floor (layer norms only)")
        for i, m in enumerate(mid):
            ax.text(m, i, f" {m:.3f}", va="center", fontsize=8)
        ax.set_title(title)
        ax.set_xlim(0, max(1.1, max(mid) * 1.15))
    axes[0].set_yticks(range(len(rows)), names)
    axes[0].invert_yaxis()
    axes[1].legend(loc="lower right", fontsize=8)
    c = report["config"]
    shape = f"batch {c['batch']}×{c['source_len']}/{c['target_len']}"
    fig.suptitle(f"{c['model']}, {shape}, {c['device']} {c['precision']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def write_outputs(report: dict, folder: Path) -> list[str]:
    """bench.json, bench.md and bench.png in `folder`; returns notes (e.g. why the plot is missing)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (folder / "bench.md").write_text(markdown(report), encoding="utf-8")
    why = plot(report, folder / "bench.png")
    return [why] if why else []
