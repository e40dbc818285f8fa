"""`init_distribution`: freshly built parameters follow the distributions the spec declares.

Each `init` rule's values (all tensors its glob matches, pooled) are tested with a one-sample
Kolmogorov–Smirnov test against the declared law; Glorot-uniform values are first divided by each
tensor's bound gain·√(6/(rows+cols)) and tested against U(−1, 1). Constants must be exact. Every
parameter the method adds must be covered by a rule.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from harness.invariants.context import CheckContext, InvariantViolation
from harness.invariants.registry import invariant
from harness.invariants.trainable import added_parameter_names
from harness.schema import ConstantInit, GlorotUniformInit, NormalInit, UniformInit
from impl.inject import matching_names

MIN_SAMPLES = 20


class KSOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    alpha: float = Field(1e-3, gt=0.0, lt=1.0)  # reject the declared law when the KS p-value is below


def samples(rule, tensors: list[torch.Tensor]):
    """The pooled values, standardised for the KS test, and the scipy law they should follow."""
    if isinstance(rule, GlorotUniformInit):
        scaled = [t.flatten() / (rule.gain * math.sqrt(6.0 / (t.shape[-2] + t.shape[-1]))) for t in tensors]
        return torch.cat(scaled), stats.uniform(loc=-1.0, scale=2.0)
    values = torch.cat([t.flatten() for t in tensors])
    if isinstance(rule, NormalInit):
        return values, stats.norm(loc=rule.mean, scale=rule.std)
    if isinstance(rule, UniformInit):
        return values, stats.uniform(loc=rule.low, scale=rule.high - rule.low)
    raise TypeError(rule)


@invariant("init_distribution", KSOptions)
def init_distribution(ctx: CheckContext, options: KSOptions) -> str:
    """Each declared init law holds (Kolmogorov–Smirnov; constants exact) and covers every added parameter."""
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
