"""`reproducible_projection`: Intrinsic-SAID's random projections are a function of `projection_seed` alone.

The released code drew its Fastfood projections P_i from the global RNG and did not save them, so a
checkpoint of (z, λ) could not be reloaded: θ_i = θ_i⁰ + λ_i P_i(z) means nothing without the same P_i.
Here, on the check model:

- two models built with the same projection_seed after different `torch.manual_seed` calls have identical
  projections (every buffer of every Fastfood bank: sign, index, gaussian, scale);
- a model built with another projection_seed has different ones, in every bank;
- after training steps, `save_trainable` then `load_trainable` into a fresh model built with the same seed
  (in yet another RNG state) gives bit-identical logits;
- loading that checkpoint into a model with another projection_seed is refused (`CheckpointMismatchError`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from harness.invariants.context import CheckContext, InvariantViolation, logits, train_steps
from harness.invariants.fastfood_linear import said_module
from harness.invariants.registry import invariant
from harness.model.build import apply_to
from harness.spec.invariant_catalog import ProjectionOptions
from impl.state import CheckpointMismatchError, load_trainable, save_trainable


def build(ctx: CheckContext, projection_seed: int, rng_seed: int) -> torch.nn.Module:
    """The check model with the spec's method, projection_seed replaced, built after torch.manual_seed(rng_seed)."""
    model = ctx.base_model()
    torch.manual_seed(rng_seed)
    apply_to(model, ctx.method_name, {**ctx.method_args, "projection_seed": projection_seed}, ctx.spec.trainable)
    return model.to(ctx.dtype)


def projection_buffers(model: torch.nn.Module) -> list[dict[str, torch.Tensor]]:
    """Every Fastfood bank's buffers (sign, index, gaussian, scale, …), bank by bank."""
    return [dict(bank.named_buffers()) for bank in said_module(model).banks]


def differing(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> list[str]:
    """Names of the buffers that are not equal (shape, dtype and values), or present in only one of the two."""
    names = sorted(first.keys() | second.keys())
    return [
        name
        for name in names
        if name not in first
        or name not in second
        or first[name].shape != second[name].shape
        or first[name].dtype != second[name].dtype
        or not torch.equal(first[name], second[name])
    ]


def check_same_projections(first: torch.nn.Module, second: torch.nn.Module, seed: int) -> int:
    banks, again = projection_buffers(first), projection_buffers(second)
    if len(banks) != len(again):
        raise InvariantViolation(f"projection_seed {seed} built {len(banks)} banks, then {len(again)}")
    pairs = enumerate(zip(banks, again, strict=True))
    changed = [f"banks.{i}.{name}" for i, (a, b) in pairs for name in differing(a, b)]
    if changed:
        raise InvariantViolation(
            f"two builds with projection_seed {seed} in different global RNG states have different projections: "
            f"{len(changed)} buffers differ, e.g. {changed[:3]} (drawn from the global RNG, not the seed?)"
        )
    return len(banks)


def check_other_projections(first: torch.nn.Module, other: torch.nn.Module, seed: int, other_seed: int) -> None:
    banks, others = projection_buffers(first), projection_buffers(other)
    same = [i for i, (a, b) in enumerate(zip(banks, others, strict=True)) if not differing(a, b)]
    if len(banks) != len(others) or same:
        raise InvariantViolation(
            f"projection_seed {other_seed} gives the same projections as {seed} in {len(same)} of "
            f"{len(banks)} banks, e.g. banks {same[:3]}: the seed does not choose the projections"
        )


def check_checkpoint(
    ctx: CheckContext, trained: torch.nn.Module, fresh: torch.nn.Module, other: torch.nn.Module, other_seed: int
) -> int:
    """Save the trained model's (z, λ); load into `fresh` (bit-identical logits) and `other` (refused)."""
    batch = ctx.batch()
    expected = logits(trained, batch)
    if torch.equal(logits(fresh, batch), expected):
        raise InvariantViolation("the fresh model matches the trained one before loading: the check would be vacuous")
    with tempfile.TemporaryDirectory() as folder:
        path = save_trainable(trained, Path(folder) / "said.safetensors")
        size = path.stat().st_size
        try:
            load_trainable(fresh, path)
        except CheckpointMismatchError as error:
            raise InvariantViolation(f"a model with the same projection_seed refuses the checkpoint: {error}") from None
        got = logits(fresh, batch)
        if not torch.equal(got, expected):
            raise InvariantViolation(
                f"after loading into a fresh model with the same projection_seed the logits differ by "
                f"{(got - expected).abs().max().item():.3g}"
            )
        try:
            load_trainable(other, path)
        except CheckpointMismatchError:
            return size
    raise InvariantViolation(f"the checkpoint loads into a model with projection_seed {other_seed}: it must be refused")


@invariant("reproducible_projection")
def reproducible_projection(ctx: CheckContext, options: ProjectionOptions) -> str:
    seed = ctx.method_args["projection_seed"]
    other_seed = seed + 1
    first, second = build(ctx, seed, rng_seed=11), build(ctx, seed, rng_seed=12)
    banks = check_same_projections(first, second, seed)
    other = build(ctx, other_seed, rng_seed=11)
    check_other_projections(first, other, seed, other_seed)
    train_steps(first, ctx.batch(), options.steps, ctx.spec.training.learning_rate)
    fresh = build(ctx, seed, rng_seed=13)
    size = check_checkpoint(ctx, first, fresh, other, other_seed)
    return (
        f"{banks} banks identical across RNG states for projection_seed {seed}, all different for {other_seed}; "
        f"after {options.steps} steps the checkpoint ({size:,} bytes) reloads bit-identically and is refused "
        f"by projection_seed {other_seed}"
    )
