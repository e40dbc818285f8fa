"""Helpers for the tests that show each invariant failing when its property is broken."""

from __future__ import annotations

import dataclasses
import re

from harness.invariants import CheckContext, Result, run_invariant
from impl.registry import METHODS


def assert_holds(holds, spec_name: str, invariant: str) -> None:
    result = holds(spec_name, invariant)
    assert result.ok, f"the unbroken setup must pass first: {result.line()}"


def assert_fails(invariant: str, ctx: CheckContext, pattern: str) -> Result:
    """The invariant returns a failure (not an exception) whose message matches `pattern` (re.search)."""
    result = run_invariant(invariant, ctx)
    print(result.line())
    assert not result.ok, f"{invariant} should fail on the broken setup: {result.line()}"
    assert re.search(pattern, result.message), f"unexpected message: {result.line()}"
    return result


def modified(ctx: CheckContext, tiny_model_file, **spec_updates) -> CheckContext:
    """A fresh context whose spec has the given top-level fields replaced (the cached one is untouched)."""
    spec = ctx.loaded.spec.model_copy(update=spec_updates)
    return CheckContext(dataclasses.replace(ctx.loaded, spec=spec), tiny_model_file)


def with_method_args(ctx: CheckContext, **args) -> CheckContext:
    """A fresh context whose resolved method arguments have `args` replaced (the cached one is untouched)."""
    method = {**ctx.loaded.resolved["method"], "args": {**ctx.method_args, **args}}
    resolved = {**ctx.loaded.resolved, "method": method}
    return CheckContext(dataclasses.replace(ctx.loaded, resolved=resolved), ctx.check_model)


def wrap_builder(monkeypatch, name: str, after) -> None:
    """The method's registered builder runs as usual, then `after(model)` rearranges what it built."""
    original = METHODS[name].build

    def build(model, **kwargs):
        original(model, **kwargs)
        after(model)

    monkeypatch.setitem(METHODS, name, dataclasses.replace(METHODS[name], build=build))
