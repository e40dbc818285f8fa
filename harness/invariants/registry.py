"""The closed vocabulary of invariants: a name maps to one function, used by pytest and `harness check`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from harness.invariants.context import CheckContext, InvariantViolation
from harness.spec.invariant_catalog import DECLARED, NoOptions

Check = Callable[[CheckContext, BaseModel], str]


@dataclass(frozen=True)
class Invariant:
    name: str
    check: Check  # returns a one-line summary of what held; raises InvariantViolation otherwise
    options: type[BaseModel]
    summary: str


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.message}"


INVARIANTS: dict[str, Invariant] = {}


def invariant(name: str) -> Callable[[Check], Check]:
    """Decorator: register `check` under `name`, with the summary and options `harness.spec.invariant_catalog`
    declares."""

    def decorator(check: Check) -> Check:
        if name not in DECLARED:
            raise ValueError(f"invariant {name!r} is not declared in harness.spec.invariant_catalog")
        if name in INVARIANTS:
            raise ValueError(f"invariant {name!r} is already registered")
        INVARIANTS[name] = Invariant(name, check, DECLARED[name].options, DECLARED[name].summary)
        return check

    return decorator


def one_line(text: str) -> str:
    return " ".join(text.split())


def run_invariant(name: str, ctx: CheckContext) -> Result:
    """Run one of the spec's invariants with the spec's options; a violation is a result, not an exception."""
    entry = INVARIANTS[name]
    return run_entry(entry, ctx, entry.options.model_validate(ctx.spec.invariants.get(name) or {}))


def run_entry(entry: Invariant, ctx, options: BaseModel) -> Result:
    """A check's result: PASS with its summary, or FAIL with what was measured.

    A check that cannot even run (the implementation raises) fails too, saying what was raised; a method
    argument the check model cannot take (MethodArgumentError) is bad input and propagates.
    """
    from impl.registry import MethodArgumentError

    name = entry.name
    try:
        return Result(name, True, entry.check(ctx, options))
    except AssertionError as error:  # InvariantViolation, or a falsified hypothesis property
        notes = " ".join(getattr(error, "__notes__", []))
        return Result(name, False, one_line(f"{error or type(error).__name__} {notes}"))
    except MethodArgumentError:
        raise
    except Exception as error:  # reported as a failure, never swallowed
        return Result(name, False, one_line(f"the check raised {type(error).__name__}: {error}"))


__all__ = [
    "INVARIANTS",
    "CheckContext",
    "Invariant",
    "InvariantViolation",
    "NoOptions",
    "Result",
    "invariant",
    "run_entry",
    "run_invariant",
]
