"""`counted_once`: every tensor is counted exactly once, however many names or modules share it.

The counting rules (docs/paper.md, "Model" and "The methods"): the base count is over unique tensors, so T5's
tied input embedding / `lm_head` counts once (222,882,048 on t5-base); a tensor shared by many layers
(Compacter's one rule A) counts once in the trainable budget. Here the unique tensors are collected by
object identity from every module's own `_parameters`, a path independent of `named_parameters()`'s
de-duplication that the counting code uses, and the counts of the built model (base and trainable) must
equal the sums over them.

With `reparameterised_tensors` (Intrinsic-SAID) the method's tensor list must be exactly the m unique base
tensors, each once (the tied embedding once), with λ ∈ R^{m+1} and z ∈ R^{d′−m−1}, d′ the spec's
`intrinsic_dimension`; and in a forward pass with z ≠ 0, every alias of a tensor (the embedding under
its names in the encoder, the decoder and the `lm_head`) must hold the same re-parameterised θ_i.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.invariants.context import CheckContext, InvariantViolation
from harness.invariants.registry import invariant
from harness.spec.invariant_catalog import CountOptions


def unique_tensors(model: nn.Module) -> dict[int, torch.Tensor]:
    """id -> tensor for every parameter held by any module (each object once, whatever its aliases)."""
    found: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for tensor in module._parameters.values():
            if tensor is not None:
                found.setdefault(id(tensor), tensor)
    return found


def aliases(model: nn.Module) -> dict[int, list[tuple[str, nn.Module, str]]]:
    """id -> every (module path, module, attribute) holding that parameter."""
    held: dict[int, list[tuple[str, nn.Module, str]]] = {}
    for path, module in model.named_modules():
        for attribute, tensor in module._parameters.items():
            if tensor is not None:
                held.setdefault(id(tensor), []).append((path, module, attribute))
    return held


def check_counts(ctx: CheckContext) -> str:
    base = ctx.base_model()
    base_total = sum(t.numel() for t in unique_tensors(base).values())
    built = ctx.method_model()
    tensors = unique_tensors(built.model)
    trainable = sum(t.numel() for t in tensors.values() if t.requires_grad)
    total = sum(t.numel() for t in tensors.values())
    counted = {"base": built.base_params, "trainable": built.trainable_params, "total": built.total_params}
    expected = {"base": base_total, "trainable": trainable, "total": total}
    wrong = {key: (counted[key], expected[key]) for key in counted if counted[key] != expected[key]}
    if wrong:
        detail = ", ".join(f"{key} counted {got:,}, unique tensors hold {want:,}" for key, (got, want) in wrong.items())
        raise InvariantViolation(f"a shared tensor is counted more than once (or one is missed): {detail}")
    shared = sum(len(holders) > 1 for holders in aliases(built.model).values())
    return f"base {base_total:,}, trainable {trainable:,}, total {total:,} over unique tensors ({shared} shared)"


def check_tensor_list(ctx: CheckContext) -> str:
    model = ctx.method_model().model.eval()
    said = getattr(model, ctx.method_name)
    own = {id(said.z), id(said.lambdas)}
    base = {key: tensor for key, tensor in unique_tensors(model).items() if key not in own}
    listed = [id(tensor) for tensor in said.base_parameters()]
    m = len(base)
    if len(listed) != len(set(listed)):
        raise InvariantViolation(f"the tensor list has {len(listed)} entries but {len(set(listed))} distinct tensors")
    if set(listed) != set(base):
        raise InvariantViolation(
            f"the tensor list holds {len(set(listed) - set(base))} tensors that are not base tensors and misses "
            f"{len(set(base) - set(listed))} of the {m}"
        )
    d_prime = ctx.method_args["intrinsic_dimension"]
    sizes = {"λ": (said.lambdas.numel(), m + 1), "z": (said.z.numel(), d_prime - m - 1)}
    wrong = {name: got for name, got in sizes.items() if got[0] != got[1]}
    if wrong:
        raise InvariantViolation(
            "; ".join(f"{name} has {got:,} entries, expected {want:,}" for name, (got, want) in wrong.items())
            + f" (m = {m} unique base tensors, d′ = {d_prime:,})"
        )
    held = {key: holders for key, holders in aliases(model).items() if key in base}
    seen: dict[int, set[int]] = {key: set() for key in held}
    handles = []
    for key, holders in held.items():
        for _path, module, attribute in holders:

            def record(module, args, key=key, attribute=attribute):
                seen[key].add(id(module._parameters[attribute]))

            handles.append(module.register_forward_pre_hook(record))
    with torch.no_grad():
        said.z.copy_(1e-2 * torch.randn(said.z.shape, generator=torch.Generator().manual_seed(4)))
        try:
            model(**ctx.batch())
        finally:
            for handle in handles:
                handle.remove()
    for key, ids in seen.items():
        paths = [f"{path}.{attribute}" for path, _, attribute in held[key]]
        if len(ids) > 1 or key in ids:
            raise InvariantViolation(
                f"in a forward pass {paths} do not all hold the same re-parameterised θ_i "
                f"({len(ids)} tensors seen, θ⁰ {'among them' if key in ids else 'not among them'})"
            )
    tied = max(len(holders) for holders in held.values())
    return (
        f"the tensor list is the {m} unique base tensors once each (one held under {tied} names), "
        f"λ ∈ R^{m + 1}, z ∈ R^{d_prime - m - 1}; every alias holds the same θ_i in a forward pass"
    )


@invariant("counted_once")
def counted_once(ctx: CheckContext, options: CountOptions) -> str:
    summary = check_counts(ctx)
    if options.reparameterised_tensors:
        summary += "; " + check_tensor_list(ctx)
    return summary
