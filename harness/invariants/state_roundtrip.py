"""`state_roundtrip`: trainable-only safetensors save, load into a fresh model, identical outputs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from safetensors import safe_open

from harness.invariants.context import CheckContext, InvariantViolation, logits
from harness.invariants.registry import NoOptions, invariant
from impl.state import CheckpointMismatchError, load_trainable, save_trainable


@invariant("state_roundtrip")
def state_roundtrip(ctx: CheckContext, options: NoOptions) -> str:
    batch = ctx.batch()
    source = ctx.method_model(method_seed=11).model
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():  # move every trainable tensor away from its init, layer norms included
        for p in source.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    target = ctx.method_model(method_seed=12).model
    expected = logits(source, batch)
    if torch.equal(logits(target, batch), expected):
        raise InvariantViolation("the fresh model already matches before loading: the check would be vacuous")
    trainable = {name for name, p in source.named_parameters() if p.requires_grad}
    with tempfile.TemporaryDirectory() as folder:
        path = save_trainable(source, Path(folder) / "adapter.safetensors", {"method": ctx.method_name})
        with safe_open(str(path), framework="pt") as handle:
            saved = set(handle.keys())
        size = path.stat().st_size
        if saved != trainable:
            raise InvariantViolation(f"the file holds {len(saved)} tensors, the model trains {len(trainable)}")
        try:
            load_trainable(target, path)
        except CheckpointMismatchError as error:
            raise InvariantViolation(f"the saved file does not load back: {error}") from None
    got = logits(target, batch)
    if not torch.equal(got, expected):
        raise InvariantViolation(f"outputs differ after loading by {(got - expected).abs().max().item():.3g}")
    return f"{len(saved)} trainable tensors ({size:,} bytes) saved and reloaded; outputs bit-identical"
