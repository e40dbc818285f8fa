"""The method registry: one builder per method name, looked up with a did-you-mean.

A builder is `build(model, *, arg=default, ...) -> None`: it modifies a T5ForConditionalGeneration in
place (adds modules, hooks, parameters). Its keyword arguments are the method's spec arguments; the spec
loader validates a spec against this signature.

Beside its builder each method declares its merge rule: how a trained model of it folds into the stock T5
(`merge(model) -> {name: tensor}`, the stock T5's parameters), or one sentence saying why it cannot.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # builders import torch when they run, so listing and validating methods never does
    import torch
    from torch import nn

Builder = Callable[..., None]
MergedState = Callable[["nn.Module"], "dict[str, torch.Tensor]"]  # trained method model -> the stock T5's parameters


class UnknownMethodError(KeyError):
    """No method is registered under that name."""

    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known methods: {', '.join(known)}"
        self.message = f"unknown method {name!r}{hint}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class MethodArgumentError(ValueError):
    """A method argument is invalid for this model (e.g. n does not divide the bottleneck)."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument, self.message = argument, message


@dataclass(frozen=True)
class Method:
    name: str
    build: Builder
    merge: MergedState | str  # the stock T5's parameters of a trained model, or why no stock weight can hold it

    @property
    def mergeable(self) -> bool:
        return callable(self.merge)

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.build) or "").splitlines()[0] if self.build.__doc__ else ""

    def parameters(self) -> dict[str, inspect.Parameter]:
        """The builder's keyword arguments (everything after `model`)."""
        params = list(inspect.signature(self.build).parameters.values())
        return {p.name: p for p in params[1:]}

    def argument_types(self) -> dict[str, Any]:
        """The keyword arguments' annotations evaluated in the builder's module (without `model`'s, whose
        torch type is imported for type checkers only)."""
        namespace = getattr(self.build, "__globals__", {})
        return {
            name: eval(p.annotation, namespace) if isinstance(p.annotation, str) else p.annotation
            for name, p in self.parameters().items()
            if p.annotation is not inspect.Parameter.empty
        }

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.parameters().items() if p.default is not inspect.Parameter.empty}


METHODS: dict[str, Method] = {}


def register(name: str, *, merge: MergedState | str) -> Callable[[Builder], Builder]:
    """Decorator: register `build` under `name` (the spec, module and parameter-prefix name), with its merge
    rule: the function giving the merged stock-T5 state, or the one-sentence reason it cannot merge."""

    def decorator(build: Builder) -> Builder:
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered")
        if not (callable(merge) or (isinstance(merge, str) and merge.strip())):
            raise ValueError(f"method {name!r}: merge must be a function or the reason it cannot merge")
        METHODS[name] = Method(name, build, merge)
        return build

    return decorator


def _load_methods() -> None:
    importlib.import_module("impl.methods")


def names() -> list[str]:
    _load_methods()
    return sorted(METHODS)


def get(name: str) -> Method:
    _load_methods()
    if name not in METHODS:
        raise UnknownMethodError(name, sorted(METHODS))
    return METHODS[name]


def apply_method(model: nn.Module, name: str, args: dict[str, Any] | None = None) -> None:
    """Build method `name` into `model` in place."""
    get(name).build(model, **(args or {}))
