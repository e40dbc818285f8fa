"""The closed vocabulary of invariants: a name maps to one function, used by pytest and `harness check`.

One registry for both kinds the catalog declares (`harness.spec.invariant_catalog`): a module invariant runs on
a `CheckContext` with the spec's options, a recipe invariant on a `RecipeContext` (and has no options).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

from harness.invariants.context import CheckContext, InvariantViolation
from harness.spec.invariant_catalog import DECLARED, RECIPE, NoOptions

if TYPE_CHECKING:
    from harness.invariants.recipe_context import RecipeContext

Check = Callable[["CheckContext | RecipeContext", BaseModel], str]


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
    declares (a module invariant in `DECLARED`, a recipe invariant in `RECIPE`)."""

    def decorator(check: Check) -> Check:
        declared = DECLARED.get(name) or RECIPE.get(name)
        if declared is None:
            raise ValueError(f"invariant {name!r} is not declared in harness.spec.invariant_catalog")
        if name in INVARIANTS:
            raise ValueError(f"invariant {name!r} is already registered")
        INVARIANTS[name] = Invariant(name, check, declared.options, declared.summary)
        return check

    return decorator


def one_line(text: str) -> str:
    return " ".join(text.split())


def run_invariant(name: str, ctx: CheckContext | RecipeContext) -> Result:
    """One invariant's result, with the spec's options for it (a recipe invariant has none, and a spec cannot
    list one): PASS with its summary, or FAIL with what was measured; a violation is a result, not an exception.

    A check that cannot even run (the implementation raises) fails too, saying what was raised; a method
    argument the check model cannot take (MethodArgumentError) is bad input and propagates.
    """
    from impl.registry import MethodArgumentError

    entry = INVARIANTS[name]
    options = entry.options.model_validate(ctx.spec.invariants.get(name) or {})
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
    "run_invariant",
]
