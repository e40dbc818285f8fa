"""report.md's view of each run's predictions files: links to them and the first few wrong test predictions,
read without trusting the files."""

from __future__ import annotations

from pathlib import Path

from harness.results.report_format import relative_link, table_cell
from harness.results.results_json import LoadedResults

ERRORS_SHOWN = 3  # test examples the model got wrong, per task and seed
MAX_PREDICTIONS_BYTES = 200_000_000  # a test split of 100,000 examples is tens of megabytes


def predictions_section(item: LoadedResults, output_dir: Path) -> list[str]:
    """Links to each run's predictions files and its first few wrong test predictions."""
    lines = []
    for task, result in item.results.tasks.items():
        for one in result.runs:
            folder = item.path.parent / task / f"seed{one.seed}"
            files = [folder / f"{split}_predictions.jsonl" for split in ("test", "validation")]
            links = ", ".join(f"[{f.name}]({relative_link(f, output_dir)})" for f in files if f.is_file())
            if not links:
                continue
            lines.append(f"**{task}, seed {one.seed}**: {links}")
            wrong = _wrong_predictions(files[0])
            if wrong is None:
                lines += ["", f"(`{files[0].name}` is not readable JSON lines: no errors shown)", ""]
                continue
            if wrong:
                lines += ["", "| source | target | prediction |", "|---|---|---|"]
                lines += [
                    f"| {table_cell(r['source'][:160])} | {table_cell(r['target'])} | {table_cell(r['prediction'])} |"
                    for r in wrong[:ERRORS_SHOWN]
                ]
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
