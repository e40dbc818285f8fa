"""Golden results: pinned smoke runs whose numbers catch any change to what a run computes.

    python tests/golden/golden.py --write     # measure every golden run and rewrite golden.json
    python tests/golden/golden.py             # measure and compare, one line per number that moved

Seven methods (`METHODS`) are trained with the harness's own `run` on the smoke profile (the tiny T5, the
learnable toy RTE, the Trainer on the CPU) for `EPOCHS` epochs with 2 accumulated micro-batches per step
(so the loss reduction over the global batch matters), once per seed of `SEEDS`. Every number a user
reads is pinned: the training loss of each epoch, each epoch's validation scores, the best epoch, the test
scores.

The tolerance of each number is derived from its measured seed spread: `RATIO` × (max − min over the
seeds). A change that moves a number by a tenth of what changing the seed moves it is a change to what the
run computes — a loss reduction, a schedule, a data order, a metric — never noise: on one machine the same
seed on the same number of threads gives the same numbers bit for bit (`measure` fixes the threads to
`THREADS`, whatever the machine's cores). `golden.json` records how far the numbers moved when the same
runs were measured on one thread (`thread_drift`): the adapter family, BitFit and prompt tuning move far
less than their tolerances; full fine-tuning and Intrinsic-SAID (`THREAD_SENSITIVE`) move as much as with
another seed, since Adam turns the rounding of tiny gradients into full steps, so their numbers hold on
the machine and thread count they were measured on. A number the seeds leave unchanged (an accuracy every
seed ends at) gets a tolerance of zero: it must not move.

A deliberate change of what a run computes regenerates the file with `--write` in the same commit, and the
commit message explains the diff.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden.json")
METHODS = ("compacter", "compacter_pp", "adapter", "bitfit", "intrinsic_said", "prompt_tuning_random", "full_finetune")
SEEDS = (1, 2, 3)
TASK = "rte"
EPOCHS = 2
OVERRIDES = ("training.gradient_accumulation_steps=2",)  # 2 micro-batches of 8 per global batch of 16
RATIO = 0.1  # tolerance = RATIO × the seed spread (max − min over SEEDS) of each number
THREADS = 2  # torch's threads while measuring, whatever the machine's cores (CI's OMP_NUM_THREADS)
# Adam turns float rounding on tiny gradients into steps of a full learning rate: at the smoke profile's rates,
# full fine-tuning and Intrinsic-SAID move as much with another thread count as with another seed (measured
# by --write: `thread_drift`). Their numbers hold on one machine at THREADS; the others' hold across threads.
THREAD_SENSITIVE = ("intrinsic_said", "full_finetune")


def flatten(run: dict[str, Any]) -> dict[str, float]:
    """One run of results.json as named numbers: `train_loss[e]`, `validation[e].<metric>`, `best_epoch`,
    `test.<metric>` (epochs from 1)."""
    numbers: dict[str, float] = {"best_epoch": run["best_epoch"]}
    for epoch in run["history"]:
        numbers[f"train_loss[{epoch['epoch']}]"] = epoch["train_loss"]
        for metric, value in epoch["validation"].items():
            numbers[f"validation[{epoch['epoch']}].{metric}"] = value
    for metric, value in run["test"].items():
        numbers[f"test.{metric}"] = value
    return numbers


def measure(method: str, seeds: tuple[int, ...] = SEEDS, threads: int = THREADS) -> dict[str, dict[str, float]]:
    """Seed -> the numbers of the golden run of `method`, trained now by `harness run` in this process on
    `threads` threads."""
    import torch

    from harness.train.run_options import RunOptions
    from harness.train.spec_run import run_spec

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory(prefix="golden-") as folder:
            options = RunOptions(tasks=[TASK], seeds=list(seeds), epochs=EPOCHS, overrides=list(OVERRIDES),
                                 deepspeed="none", output_dir=Path(folder) / "run")  # fmt: skip
            results, _ = run_spec(REPO / "spec" / f"{method}.yaml", options)
    finally:
        torch.set_num_threads(before)
    runs = results.model_dump(mode="json")["tasks"][TASK]["runs"]
    return {str(run["seed"]): flatten(run) for run in runs}


def tolerances(seeds: dict[str, dict[str, float]], ratio: float = RATIO) -> dict[str, float]:
    """Each number's tolerance: `ratio` × its spread over the seeds."""
    runs = list(seeds.values())
    return {name: ratio * (max(r[name] for r in runs) - min(r[name] for r in runs)) for name in runs[0]}


def deviations(method: str, golden: dict[str, Any], measured: dict[str, dict[str, float]]) -> list[str]:
    """One line per number of `measured` that is missing from, or moved beyond its tolerance off, the golden."""
    pinned = golden["methods"][method]
    tolerance, lines = pinned["tolerance"], []
    for seed, numbers in measured.items():
        expected = pinned["seeds"].get(seed)
        if expected is None:
            lines.append(f"{method} seed {seed}: no golden numbers for this seed")
            continue
        for name in sorted(set(expected) | set(numbers)):
            if name not in numbers or name not in expected:
                lines.append(f"{method} seed {seed}: {name} {'only in the golden file' if name in expected else 'new'}")
            elif abs(numbers[name] - expected[name]) > tolerance[name] + 1e-12 * abs(expected[name]):
                lines.append(
                    f"{method} seed {seed}: {name} {numbers[name]:.6g}, golden {expected[name]:.6g} "
                    f"(tolerance ±{tolerance[name]:.3g} = {golden['ratio']} × the seed spread)"
                )
    return lines


def environment() -> dict[str, Any]:
    import numpy
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": numpy.__version__}


def load() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def kind(name: str) -> str:
    """`train_loss`, `validation`, `test` or `best_epoch`: what a number is, whatever its epoch or metric."""
    return name.split("[")[0].split(".")[0]


def drift(first: dict[str, dict], second: dict[str, dict]) -> dict[str, float]:
    """The largest difference of each kind of number between two measurements of the same runs."""
    largest: dict[str, float] = {}
    for seed, numbers in first.items():
        for name, value in numbers.items():
            largest[kind(name)] = max(largest.get(kind(name), 0.0), abs(value - second[seed][name]))
    return largest


def write() -> dict[str, Any]:
    """Measure every golden run on THREADS threads, then again on one (the drift a tolerance must exceed to
    hold across thread counts), and return the golden file's content."""
    measured = {method: measure(method) for method in METHODS}
    again = {method: measure(method, threads=1) for method in METHODS}
    return {
        "about": "tests/golden/golden.py: pinned smoke runs; tolerance = ratio × the seed spread of each number",
        "setting": {"task": TASK, "epochs": EPOCHS, "seeds": list(SEEDS), "overrides": list(OVERRIDES)},
        "environment": {**environment(), "threads": THREADS},
        "ratio": RATIO,
        "thread_drift": {
            "threads": [THREADS, 1],
            "methods": {method: drift(measured[method], again[method]) for method in METHODS},
        },
        "methods": {method: {"seeds": seeds, "tolerance": tolerances(seeds)} for method, seeds in measured.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="measure and rewrite golden.json")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    args = parser.parse_args(argv)
    for key, value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}.items():
        os.environ.setdefault(key, value)
    if args.write:
        content = write()
        GOLDEN.write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {GOLDEN.relative_to(REPO)}")
        return 0
    golden = load()
    lines = [line for method in args.methods for line in deviations(method, golden, measure(method))]
    print("\n".join(lines) or f"every golden number holds ({', '.join(args.methods)})")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
