"""`budget`: the count on the spec's model equals the spec, and rounds to the paper's percentage."""

from __future__ import annotations

from harness.invariants.context import CheckContext, InvariantViolation
from harness.invariants.registry import NoOptions, invariant
from harness.model.budget import count_budget


@invariant("budget")
def budget(ctx: CheckContext, options: NoOptions) -> str:
    report = count_budget(ctx.loaded)
    if report.expected_trainable_params is None:
        raise InvariantViolation("the spec states no budget.trainable_params to check against")
    if not report.count_ok:
        raise InvariantViolation(
            f"counted {report.trainable_params:,} trainable parameters on {report.model}, "
            f"spec says {report.expected_trainable_params:,}"
        )
    if report.percent_ok is False:
        raise InvariantViolation(
            f"{report.trainable_percent:.5f}% of {report.base_params:,} does not round to the published "
            f"{report.published_percent}%"
        )
    published = "" if report.published_percent is None else f" (published {report.published_percent}%)"
    return (
        f"{report.trainable_params:,} trainable on {report.model} = "
        f"{report.trainable_percent:.4f}% of {report.base_params:,}{published}"
    )
