"""`python -m harness bench SPEC …`: the paper's Table 3 measured side by side, against two references.

Every method runs in a process of its own (`harness.bench.worker`), so its peak memory is its own. Besides the
specs, every invocation measures two references on the same model, batch and optimizer:

- `full_finetune`: the stock T5, every parameter trainable (the paper's T5_BASE);
- `floor`: the same frozen backbone with only the 62 layer norms trainable — the least any method that trains
  layer norms can cost (the backward pass still runs through the whole network).

Rounds are interleaved — round r runs every method once, in an order rotated by r — so slow drift of the machine
(other jobs, thermal) lands on every method alike. A ratio is computed inside each round (method / reference of
the same round) and the report gives its median over the rounds with the min–max spread.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.bench.worker import FLOOR, FULL, RESULT_PREFIX, Job
from harness.model.checked import read_buildable_spec
from harness.spec.loader import default_spec_dir
from harness.spec.model_choice import resolve_model

REFERENCES = (FLOOR, FULL)
# The contract of `bench --json` (tests/test_bench.py checks that every one is present).
TOP_FIELDS = ("tool", "command", "config", "environment", "tokens_per_step", "methods")
CONFIG_FIELDS = ("model", "batch", "source_len", "target_len", "steps", "warmup", "rounds", "device", "precision",
                 "deepspeed", "threads", "op_rows")  # fmt: skip
ENVIRONMENT_FIELDS = ("python", "torch", "transformers", "platform", "cpu_count", "load_average_before",
                      "load_average_after", "wall_s")  # fmt: skip
METHOD_FIELDS = ("name", "kind", "method", "spec", "trainable_params", "trainable_percent", "step_s", "cpu_step_s",
                 "tokens_per_s", "peak_memory_bytes", "memory_kind", "time_vs_floor", "memory_vs_floor",
                 "time_vs_full_finetune", "memory_vs_full_finetune", "cpu_time_vs_floor",
                 "cpu_time_vs_full_finetune", "rounds")  # fmt: skip
SPREAD_FIELDS = ("median", "min", "max")


class BenchError(RuntimeError):
    """A worker process failed; the message carries the tail of its stderr."""


@dataclass(frozen=True)
class BenchOptions:
    model: str = "t5_base"
    batch: int = 8
    source_len: int = 128
    target_len: int = 4
    steps: int = 2
    warmup: int = 1
    rounds: int = 2
    device: str = "cpu"
    precision: str = "fp32"
    deepspeed: str | None = None
    threads: int | None = None
    op_rows: int = 0  # > 0: the op times of one extra step, the top `op_rows` ops in the report


@dataclass(frozen=True)
class Entry:
    """One row of the table: a reference (spec None) or a spec."""

    name: str
    kind: str  # "reference" | "spec"
    method: str | None
    spec: Path | None


def entries_for(specs: Sequence[Path], model: str) -> list[Entry]:
    """The references first, then the specs, validated on `model` now (a SpecError before anything runs).

    A spec of the `full_finetune` method is not run twice: it is the full fine-tuning reference.
    """
    loaded = [read_buildable_spec(path, model=model) for path in specs]
    full = next((s for s in loaded if s.spec.method.name == FULL), None)
    rows = [Entry(FLOOR, "reference", None, None)]
    rows.append(Entry(FULL, "reference", FULL, full.path if full else None))
    seen = {FLOOR, FULL}
    for spec in loaded:
        if spec.name in seen or spec is full:
            continue
        seen.add(spec.name)
        rows.append(Entry(spec.name, "spec", spec.spec.method.name, spec.path))
    return rows


def run_worker(job: Job) -> dict:
    """Run one job in a fresh Python process and return its result."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "harness.bench.worker", json.dumps(asdict(job))]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise BenchError(f"{job.name}: the benchmark process failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(entries: list[Entry], results: dict[str, list[dict]], options: BenchOptions, base: int) -> list[dict]:
    """Per method: pooled step times, peak memory over rounds, and the per-round ratios to both references."""
    tokens = options.batch * (options.source_len + options.target_len)
    rounds = len(results[FLOOR])
    rows = []
    for entry in entries:
        runs = results[entry.name]
        times = [t for run in runs for t in run["step_s"]]
        cpu_times = [t for run in runs for t in run["cpu_step_s"]]
        row = {
            "name": entry.name,
            "kind": entry.kind,
            "method": entry.method,
            "spec": str(entry.spec) if entry.spec else None,
            "trainable_params": runs[0]["trainable_params"],
            "trainable_percent": 100.0 * runs[0]["trainable_params"] / base,
            "step_s": {**spread(times), "all": times},
            "cpu_step_s": {**spread(cpu_times), "all": cpu_times},
            "tokens_per_s": tokens / statistics.median(times),
            "peak_memory_bytes": {**spread([run["peak_memory_bytes"] for run in runs])},
            "memory_kind": runs[0]["memory_kind"],
        }
        for reference in REFERENCES:
            refs = results[reference]
            for field, key in (("time", "step_s"), ("cpu_time", "cpu_step_s")):
                ratios = [statistics.median(runs[r][key]) / statistics.median(refs[r][key]) for r in range(rounds)]
                row[f"{field}_vs_{reference}"] = spread(ratios)
            ratios = [runs[r]["peak_memory_bytes"] / refs[r]["peak_memory_bytes"] for r in range(rounds)]
            row[f"memory_vs_{reference}"] = spread(ratios)
        row["rounds"] = [{k: v for k, v in run.items() if k not in ("extra",)} for run in runs]
        rows.append(row)
    return rows


def run_bench(specs: Sequence[Path], options: BenchOptions, log: Callable[[str], None] = lambda line: None) -> dict:
    """Measure the references and every spec, interleaved over `options.rounds` rounds; the JSON report."""
    if options.steps < 1 or options.rounds < 1 or options.warmup < 0:
        raise ValueError("--steps and --rounds must be ≥ 1 and --warmup ≥ 0")
    entries = entries_for(specs, options.model)
    spec_path = specs[0] if specs else default_spec_dir() / "full_finetune.yaml"
    model_file = resolve_model(Path(spec_path), options.model)
    load_before, started = os.getloadavg(), time.monotonic()
    results: dict[str, list[dict]] = {entry.name: [] for entry in entries}
    for r in range(options.rounds):
        order = entries[r % len(entries) :] + entries[: r % len(entries)]
        for entry in order:
            job = Job(
                name=entry.name, spec=str(entry.spec) if entry.spec else None, model_file=model_file.model_dump(),
                batch=options.batch, source_len=options.source_len, target_len=options.target_len,
                steps=options.steps, warmup=options.warmup, device=options.device, precision=options.precision,
                deepspeed=options.deepspeed, threads=options.threads,
                op_times=options.op_rows > 0 and r == options.rounds - 1,
            )  # fmt: skip
            result = run_worker(job)
            results[entry.name].append(result)
            log(
                f"round {r + 1}/{options.rounds} {entry.name:<20} median step "
                f"{statistics.median(result['step_s']):.3f} s, peak {result['peak_memory_bytes'] / 2**20:,.0f} MiB "
                f"(load {os.getloadavg()[0]:.2f})"
            )
    base = results[FLOOR][0]["total_params"]  # the floor adds nothing: the unmodified T5
    return {
        "tool": "python -m harness bench",
        "command": " ".join(sys.argv),
        "config": {
            "model": model_file.name,
            "batch": options.batch,
            "source_len": options.source_len,
            "target_len": options.target_len,
            "steps": options.steps,
            "warmup": options.warmup,
            "rounds": options.rounds,
            "device": options.device,
            "precision": options.precision,
            "deepspeed": options.deepspeed,
            "threads": results[FLOOR][0]["threads"],
            "op_rows": options.op_rows,
        },
        "environment": environment(load_before, time.monotonic() - started),
        "tokens_per_step": options.batch * (options.source_len + options.target_len),
        "methods": summarise(entries, results, options, base),
    }


def environment(load_before: tuple[float, float, float], wall_s: float) -> dict:
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "wall_s": wall_s,
    }
