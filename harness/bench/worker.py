"""One benchmark process: build one method on random weights, time its training steps, report its peak memory.

`python -m harness.bench.worker JOB_JSON` is started by `harness.bench.run` once per (round, method), so the
peak memory it reports is that method's alone. The step is the training step of the recipe:

    zero_grad → loss = T5(input_ids, attention_mask, labels).loss → backward → clip_grad_norm_(1.0) → AdamW.step

on a fixed random batch (no padding). The first `warmup` steps are not timed (they allocate the optimizer
state). Peak memory: on CPU the process's peak resident set size (VmHWM), reset after the model is built so it
covers the training steps only; on a GPU `torch.cuda.max_memory_allocated`, reset at the same point.
The last line of stdout is the result as JSON.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

FLOOR, FULL = "floor", "full_finetune"
FLOOR_TRAINABLE = ["*layer_norm.weight"]  # the frozen backbone with only T5's layer norms trainable
RESULT_PREFIX = "BENCH_RESULT "


@dataclass
class Job:
    """What one worker measures. `spec` is None for the two references (`name` is then floor or full_finetune)."""

    name: str
    spec: str | None
    model_file: dict  # the resolved `--model` (harness.spec.model_files.ModelFile as JSON)
    batch: int = 8
    source_len: int = 128
    target_len: int = 4
    steps: int = 3
    warmup: int = 1
    device: str = "cpu"
    precision: str = "fp32"  # fp32 | bf16 (autocast, or DeepSpeed's bf16 with `deepspeed`)
    deepspeed: str | None = None  # a DeepSpeed JSON config (GPU only), e.g. spec/deepspeed/zero2.json
    threads: int | None = None
    seed: int = 0
    op_times: bool = False  # time one extra step under torch.profiler and return every op's self time
    extra: dict = field(default_factory=dict)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def proc_status_bytes(field: str) -> int | None:
    """A memory field of /proc/self/status (`VmHWM`, `VmRSS`) in bytes; None where /proc does not have it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """VmHWM from /proc (resettable), else the lifetime maximum from getrusage (KiB on Linux)."""
    peak = proc_status_bytes("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def build(job: Job):
    """(model, trainable parameters, learning rate, max grad norm) for the job, on CPU with random weights."""
    from harness.model.backbone import build_t5
    from harness.model.build import apply_to
    from harness.spec.loader import read_spec
    from harness.spec.model_files import ModelFile
    from impl.inject import set_trainable

    model_file = ModelFile.model_validate(job.model_file)
    model = build_t5(model_file, device="cpu", seed=job.seed)
    lr, max_norm = 3e-4, 1.0
    if job.spec is None:
        set_trainable(model, FLOOR_TRAINABLE if job.name == FLOOR else ["*"])
    else:
        loaded = read_spec(job.spec)  # its method and recipe; the model is the job's
        apply_to(model, loaded.spec.method.name, loaded.resolved["method"]["args"], loaded.spec.trainable)
        lr, max_norm = loaded.spec.training.learning_rate, loaded.spec.training.max_grad_norm
    return model, lr, max_norm


def deepspeed_engine(job: Job, model, trainable, optimizer, max_norm: float):
    """Wrap model and optimizer in a DeepSpeed engine (single process) with the config's `auto` values filled in."""
    import deepspeed

    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(key, value)
    os.environ.setdefault("MASTER_PORT", "29517")
    config = json.loads(Path(job.deepspeed).read_text())
    config.pop("_comment", None)
    config.update(train_micro_batch_size_per_gpu=job.batch, gradient_accumulation_steps=1, gradient_clipping=max_norm)
    config["bf16"] = {"enabled": job.precision == "bf16"}
    config["zero_allow_untested_optimizer"] = True  # torch's AdamW, as the HF Trainer integration passes it
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, model_parameters=trainable, config=config)
    return engine


def measure(job: Job) -> dict:
    """Build, warm up, time `job.steps` steps; the result dict (times in seconds, memory in bytes)."""
    import torch

    from impl.inject import count_trainable

    if job.threads:
        torch.set_num_threads(job.threads)
    cuda = job.device.startswith("cuda")
    start = time.perf_counter()
    model, lr, max_norm = build(job)
    trainable = [p for p in model.parameters() if p.requires_grad]
    trainable_params, total_params = count_trainable(model)
    model = model.to(job.device).train()
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0, eps=1e-8)
    engine = deepspeed_engine(job, model, trainable, optimizer, max_norm) if job.deepspeed else None
    build_s = time.perf_counter() - start
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(job.seed)
    batch = {  # (B, S) source, (B, T) target: random ids, no padding
        "input_ids": torch.randint(2, vocab, (job.batch, job.source_len), generator=generator),
        "attention_mask": torch.ones(job.batch, job.source_len, dtype=torch.long),
        "labels": torch.randint(2, vocab, (job.batch, job.target_len), generator=generator),
    }
    batch = {key: value.to(job.device) for key, value in batch.items()}
    autocast = job.precision == "bf16" and engine is None
    device_type = "cuda" if cuda else "cpu"

    def step() -> float:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
            loss = (engine or model)(**batch).loss
        if engine is not None:
            engine.backward(loss)
            engine.step()  # clips (gradient_clipping), steps and zeroes the gradients
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, max_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return loss.detach().item()

    rss_after_build = proc_status_bytes("VmRSS") or 0
    peak_resettable = reset_peak_rss() if not cuda else False
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times, loss = [], [], float("nan")
    for index in range(job.warmup + job.steps):
        if cuda:
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = step()
        if cuda:
            torch.cuda.synchronize()
        if index >= job.warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    peak = torch.cuda.max_memory_allocated() if cuda else peak_rss_bytes()
    result = {
        **asdict(job),
        "trainable_params": trainable_params,
        "total_params": total_params,
        "step_s": times,
        "cpu_step_s": cpu_times,  # CPU time of all the process's threads: less sensitive to other jobs than wall time
        "peak_memory_bytes": peak,
        "memory_kind": "cuda_max_allocated" if cuda else ("rss_peak_training" if peak_resettable else "rss_peak"),
        "rss_after_build_bytes": rss_after_build,
        "build_s": build_s,
        "loss": loss,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if job.op_times:
        result["op_times"] = op_times(step, cuda)
    return result


def op_times(step, cuda: bool) -> list[dict]:
    """One more step under torch.profiler: every op's self time (CPU, or CUDA on a GPU), the largest first."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)
    return [{"op": e.key, "self_ms": getattr(e, key) / 1000.0, "calls": e.count} for e in events]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = Job(**json.loads(argv[0]))
    result = measure(job)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
