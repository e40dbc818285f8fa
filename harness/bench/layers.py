"""`python -m harness bench-layers`: the PHM / LPHM layer against nn.Linear and against materialising H.

For every paper size (k = 768, d ∈ {24, 48, 96}, n ∈ {4, 8, 12}, r = 1) and both projections of an adapter
(down k → d, up d → k), one forward + backward pass (input gradient included, as inside a network) of:

- `linear`: a dense nn.Linear of the same shape (the Adapter's layer);
- every algorithm of `impl.layers.phm` (`materialise`: H = Σ A_i ⊗ B_i, then one matmul; `factored_in`,
  `factored_out`: no H), each first checked against x Σ torch.kron(A_i, B_i) + b;
- `auto`: what PHMLinear picks for the shape (the fewest multiply-adds), so the table shows whether that
  rule picks the fastest.

Timings interleave the variants inside every repeat (drift lands on all alike) and report the median.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from harness.invariants.kron_sum import explicit_kron_sum
from impl.layers.phm import ALGORITHMS, AUTO, MATERIALISE, PHMLinear, multiply_adds

FIELDS = ("layer", "n", "d", "direction", "in_features", "out_features", "rank", "rows", "ms", "median_ms",
          "max_rel_error",
          "multiply_adds", "fastest", "auto", "auto_is_fastest", "auto_vs_materialise", "auto_vs_linear")  # fmt: skip
TOLERANCE = 1e-5  # float32, as the kron_sum invariant


@dataclass(frozen=True)
class LayerCase:
    n: int
    d: int
    direction: str  # "down" (k → d) | "up" (d → k)
    rank: int | None
    k: int = 768

    @property
    def sizes(self) -> tuple[int, int]:
        return (self.k, self.d) if self.direction == "down" else (self.d, self.k)


def explicit(layer: PHMLinear, x: torch.Tensor) -> torch.Tensor:
    """x Σ_i torch.kron(A_i, B_i) + b in float64: the reference, independent of every algorithm."""
    return x.double() @ explicit_kron_sum(layer, torch.float64) + layer.bias.double()


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, min_block_s: float = 0.02) -> dict:
    """Seconds per call of each function over `repeats` blocks: {name: {"min": …, "median": …}}.

    The functions take turns inside every repeat. Other jobs on the machine only ever add time, so the
    minimum is the estimate of a function's own cost; the median shows how noisy the machine was.
    """
    for fn in fns.values():  # warm-up, and the number of calls that makes a block last min_block_s
        fn()
    calls = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        fn()
        calls[name] = max(1, int(min_block_s / max(time.perf_counter() - start, 1e-6)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / calls[name])
    return {name: {"min": min(v), "median": statistics.median(v)} for name, v in samples.items()}


def step_fn(module: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], object]:
    """Forward and backward (gradients of the input and every parameter, none accumulated)."""
    inputs = [x, *module.parameters()]

    def run():
        return torch.autograd.grad(module(x), inputs, grad)

    return run


def bench_case(case: LayerCase, rows: int, repeats: int, seed: int = 0) -> dict:
    """One shape: each variant's median ms, its error against the explicit Kronecker sum, and the choices."""
    torch.manual_seed(seed)
    in_f, out_f = case.sizes
    layer = PHMLinear(in_f, out_f, case.n, rank=case.rank)
    with torch.no_grad():  # unit-scale everywhere: no term vanishes by its init
        for p in [*layer.parameters(), layer.rule]:
            p.normal_()
    linear = nn.Linear(in_f, out_f)
    x = torch.randn(rows, in_f, requires_grad=True)  # (T, in)
    grad = torch.randn(rows, out_f)  # (T, out)
    algorithms = layer.algorithms()
    want = explicit(layer, x.detach())
    errors, fns = {}, {"linear": step_fn(linear, x, grad)}
    for name in algorithms:
        variant = PHMLinear(in_f, out_f, case.n, rank=case.rank)
        variant.load_state_dict(layer.state_dict())
        variant.algorithm = name
        with torch.no_grad():
            got = variant(x).double()
        errors[name] = ((got - want).abs().max() / want.abs().max().clamp_min(1.0)).item()
        fns[name] = step_fn(variant, x, grad)
    timed = time_interleaved(fns, repeats)
    seconds = {name: t["min"] for name, t in timed.items()}
    auto = layer.chosen_algorithm()
    fastest = min(algorithms, key=lambda name: seconds[name])
    return {
        "layer": "PHM" if case.rank is None else "LPHM",
        "n": case.n,
        "d": case.d,
        "direction": case.direction,
        "in_features": in_f,
        "out_features": out_f,
        "rank": case.rank,
        "rows": rows,
        "ms": {name: 1000 * s for name, s in seconds.items()},  # the minimum over repeats
        "median_ms": {name: 1000 * t["median"] for name, t in timed.items()},
        "max_rel_error": errors,
        "multiply_adds": multiply_adds(in_f, out_f, case.n, case.rank),
        "fastest": fastest,
        "auto": auto,
        "auto_is_fastest": auto == fastest,
        "auto_vs_materialise": seconds[auto] / seconds[MATERIALISE],
        "auto_vs_linear": seconds[auto] / seconds["linear"],
    }


def run_layer_bench(
    ns: Sequence[int] = (4, 8, 12),
    ds: Sequence[int] = (24, 48, 96),
    ranks: Sequence[int | None] = (1, None),
    k: int = 768,
    rows: int = 1024,
    repeats: int = 7,
    threads: int | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> dict:
    """Every (rank, n, d, direction) with n dividing d; the JSON report."""
    if threads:
        torch.set_num_threads(threads)
    results = []
    for rank, n, d, direction in itertools.product(ranks, ns, ds, ("down", "up")):
        if d % n or k % n:
            continue
        row = bench_case(LayerCase(n, d, direction, rank, k), rows, repeats)
        results.append(row)
        log(
            f"{row['layer']} n={n} d={d} {direction}: "
            + ", ".join(f"{name} {ms:.3f}" for name, ms in row["ms"].items())
            + f" ms; auto={row['auto']}, fastest={row['fastest']}"
        )
    failed = [r for r in results if any(e > TOLERANCE for e in r["max_rel_error"].values())]
    return {
        "tool": "python -m harness bench-layers",
        "config": {
            "k": k,
            "rows": rows,
            "repeats": repeats,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "dtype": "float32",
            "tolerance": TOLERANCE,
        },
        "auto": AUTO,
        "exact": not failed,
        "results": results,
    }


def layer_markdown(report: dict) -> str:
    c = report["config"]
    lines = [
        f"Forward + backward of one layer on {c['rows']} rows (float32, {c['threads']} threads, torch {c['torch']}), "
        f"minimum of {c['repeats']} interleaved repeats (other jobs only add time), ms. "
        f"Every algorithm equals x Σ kron(A_i, B_i) + b within "
        f"{c['tolerance']:g} (relative): {'yes' if report['exact'] else 'NO'}. `auto` = PHMLinear's choice.",
        "",
        "| layer | n | d | in → out | nn.Linear | materialise | factored_in | factored_out | auto (choice) "
        "| fastest | auto ÷ materialise | auto ÷ Linear |",
        "|---|---:|---:|---|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in report["results"]:
        ms = r["ms"]
        cell = [f"{ms[name]:.3f}" if name in ms else "–" for name in ("linear", *ALGORITHMS)]
        layer = f"{r['layer']} r={r['rank']}" if r["rank"] else r["layer"]
        lines.append(
            f"| {layer} | {r['n']} | {r['d']} | {r['in_features']} → {r['out_features']} "
            f"| {' | '.join(cell)} | {ms[r['auto']]:.3f} ({r['auto']}) | {r['fastest']} "
            f"| {r['auto_vs_materialise']:.2f} | {r['auto_vs_linear']:.2f} |"
        )
    return "\n".join(lines) + "\n"
