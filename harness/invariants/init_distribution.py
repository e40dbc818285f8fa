"""`init_distribution`: freshly built parameters follow the distributions the spec declares.

Each `init` rule's values (all tensors its glob matches, pooled) are tested with a one-sample
Kolmogorov–Smirnov test against the declared law; Glorot-uniform values are first divided by each
tensor's bound gain·√(6/(rows+cols)) and Kaiming-uniform values by gain·√(3/fan_in), gain = √(2/(1+a²)), and
tested against U(−1, 1). Constants must be exact, and so must
copies of embedding rows (`embedding_rows`, start s: a (p, d) tensor equals rows s … s + p − 1 of the
model's input embedding E, P = E[s : s + p], bit for bit, in storage of its own). Every parameter the
method adds must be covered by a rule.
"""

from __future__ import annotations

import math

import torch
from scipy import stats

from harness.invariants.context import CheckContext, InvariantViolation, added_parameter_names
from harness.invariants.registry import invariant
from harness.spec.invariant_catalog import KSOptions
from harness.spec.schema import (
    ConstantInit,
    EmbeddingRowsInit,
    GlorotUniformInit,
    KaimingUniformInit,
    NormalInit,
    UniformInit,
)
from impl.inject import matching_names

MIN_SAMPLES = 20


def shares_storage(first: torch.Tensor, second: torch.Tensor) -> bool:
    return first.untyped_storage().data_ptr() == second.untyped_storage().data_ptr()


def check_embedding_rows(rule: EmbeddingRowsInit, model: torch.nn.Module, names: list[str]) -> str:
    """Each matched (p, d) tensor is a copy of rows start … start + p − 1 of the input embedding (V, d)."""
    embedding = model.get_input_embeddings().weight  # (V, d)
    parameters = dict(model.named_parameters())
    for name in names:
        tensor = parameters[name]  # (p, d)
        rows = tensor.shape[0] if tensor.dim() == 2 else 0
        stop = rule.start + rows
        if tensor.dim() != 2 or tensor.shape[1] != embedding.shape[1] or stop > embedding.shape[0]:
            raise InvariantViolation(
                f"{rule.params}: {name} is {tuple(tensor.shape)}; rows {rule.start}… of the {tuple(embedding.shape)} "
                "input embedding cannot fill it"
            )
        if not torch.equal(tensor, embedding[rule.start : stop]):
            raise InvariantViolation(
                f"{rule.params}: {name} is not a copy of rows {rule.start}..{stop - 1} of the input embedding"
            )
        if shares_storage(tensor, embedding):
            raise InvariantViolation(f"{rule.params}: {name} shares storage with the input embedding: not a copy")
    return f"{rule.params} = rows {rule.start}.. of the input embedding, copied ({len(names)} tensors)"


def samples(rule, tensors: list[torch.Tensor]):
    """The pooled values, standardised for the KS test, and the scipy law they should follow."""
    if isinstance(rule, GlorotUniformInit):
        scaled = [t.flatten() / (rule.gain * math.sqrt(6.0 / (t.shape[-2] + t.shape[-1]))) for t in tensors]
        return torch.cat(scaled), stats.uniform(loc=-1.0, scale=2.0)
    if isinstance(rule, KaimingUniformInit):
        gain = math.sqrt(2.0 / (1.0 + rule.a**2))
        scaled = [t.flatten() / (gain * math.sqrt(3.0 / t.shape[-1])) for t in tensors]  # fan_in: (out, in)
        return torch.cat(scaled), stats.uniform(loc=-1.0, scale=2.0)
    values = torch.cat([t.flatten() for t in tensors])
    if isinstance(rule, NormalInit):
        return values, stats.norm(loc=rule.mean, scale=rule.std)
    if isinstance(rule, UniformInit):
        return values, stats.uniform(loc=rule.low, scale=rule.high - rule.low)
    raise TypeError(rule)


@invariant("init_distribution")
def init_distribution(ctx: CheckContext, options: KSOptions) -> str:
    model = ctx.method_model().model
    parameters = dict(model.named_parameters())
    uncovered = sorted(
        added_parameter_names(ctx, model) - matching_names(parameters, [r.params for r in ctx.spec.init])
    )
    if uncovered:
        raise InvariantViolation(f"{len(uncovered)} added parameters have no declared init, e.g. {uncovered[:3]}")
    reports = []
    for rule in ctx.spec.init:
        names = sorted(matching_names(parameters, [rule.params]))
        if isinstance(rule, EmbeddingRowsInit):
            reports.append(check_embedding_rows(rule, model, names))
            continue
        tensors = [parameters[name].detach().double() for name in names]
        if isinstance(rule, ConstantInit):
            value = 0.0 if rule.distribution == "zeros" else 1.0
            bad = [n for n, t in zip(names, tensors, strict=True) if not torch.all(t == value)]
            if bad:
                raise InvariantViolation(f"{rule.params}: {len(bad)} tensors are not all {value}, e.g. {bad[:3]}")
            reports.append(f"{rule.params} = {rule.distribution}")
            continue
        values, law = samples(rule, tensors)
        if values.numel() < MIN_SAMPLES:
            raise InvariantViolation(f"{rule.params}: {values.numel()} values, too few for a KS test")
        result = stats.kstest(values.numpy(), law.cdf)
        if result.pvalue < options.alpha:
            raise InvariantViolation(
                f"{rule.params}: {values.numel()} values do not follow {rule.distribution} "
                f"(KS D = {result.statistic:.3f}, p = {result.pvalue:.2g} < {options.alpha:g})"
            )
        reports.append(f"{rule.params} ~ {rule.distribution} (n={values.numel()}, p={result.pvalue:.2f})")
    return "; ".join(reports)
