"""Insert named modules into the stock transformers T5 and choose what trains.

Placement (the paper's Fig. 2 and the released code): an adapter acts on the output of a sub-layer
F, before T5's dropout and residual,

    h ← h + dropout(A(F(LN(h)))),

where F is the self-attention (`T5LayerSelfAttention.SelfAttention`) or the feed-forward
(`T5LayerFF.DenseReluDense`) of an encoder or decoder block, never the cross-attention. The module is
registered as a child of the sub-layer (`encoder.block.3.layer.1.<name>`), so every parameter it adds
carries the method's name, and it is applied by a forward hook on F: T5's modeling file is not forked.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:  # torch loads with the model: the method registry and spec validation never import it
    from torch import nn

SELF_ATTENTION = "self_attention"
FEED_FORWARD = "feed_forward"
Sublayer = Literal["self_attention", "feed_forward"]  # where the adapter methods may sit
SUBLAYERS = (SELF_ATTENTION, FEED_FORWARD)
STACKS = ("encoder", "decoder")


@dataclass(frozen=True)
class Site:
    """One sub-layer of one block: where a module can be attached."""

    stack: str  # "encoder" | "decoder"
    block: int  # block index within the stack
    sublayer: str  # SELF_ATTENTION | FEED_FORWARD
    layer_index: int  # position of the sub-layer in the block's `layer` list
    layer: nn.Module  # the T5Layer* module that owns the residual
    inner: nn.Module  # F: the module whose output the adapter transforms

    @property
    def path(self) -> str:
        return f"{self.stack}.block.{self.block}.layer.{self.layer_index}"


def sublayer_sites(
    model: nn.Module,
    sublayers: Iterable[str] = SUBLAYERS,
    blocks: Mapping[str, Sequence[int] | None] | None = None,
) -> list[Site]:
    """The (stack, block, sub-layer) sites of a T5ForConditionalGeneration, in model order.

    Args:
        sublayers: any of "self_attention", "feed_forward". Cross-attention is never a site.
        blocks: per stack, the block indices to use (None or missing: every block).
    """
    sublayers = tuple(sublayers)
    unknown = set(sublayers) - set(SUBLAYERS)
    if unknown:
        raise ValueError(f"unknown sub-layer(s) {sorted(unknown)}; expected any of {list(SUBLAYERS)}")
    blocks = dict(blocks or {})
    unknown_stacks = set(blocks) - set(STACKS)
    if unknown_stacks:
        raise ValueError(f"unknown stack(s) {sorted(unknown_stacks)}; expected any of {list(STACKS)}")
    sites = []
    for stack_name in STACKS:
        stack = getattr(model, stack_name)
        chosen = blocks.get(stack_name)
        n_blocks = len(stack.block)
        if chosen is not None:
            bad = [i for i in chosen if not 0 <= i < n_blocks]
            if bad:
                raise ValueError(
                    f"{stack_name} has blocks 0..{n_blocks - 1}; got {bad}: choose blocks among 0..{n_blocks - 1}"
                )
        for index, block in enumerate(stack.block):
            if chosen is not None and index not in chosen:
                continue
            for sublayer in sublayers:
                layer_index = 0 if sublayer == SELF_ATTENTION else len(block.layer) - 1
                layer = block.layer[layer_index]
                inner = layer.SelfAttention if sublayer == SELF_ATTENTION else layer.DenseReluDense
                sites.append(Site(stack_name, index, sublayer, layer_index, layer, inner))
    return sites


# T5's dense layers, by their module names (a method argument's type: `typing.Literal` is checked by validation)
ProjectionName = Literal["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"]
PROJECTIONS: tuple[str, ...] = get_args(ProjectionName)


def named_projections(model: nn.Module, names: Iterable[str]) -> list[tuple[str, nn.Module]]:
    """(path, nn.Linear) of every dense layer named one of `names` in any sub-layer of any block, in model order
    (self-attention's and cross-attention's q, k, v, o; the feed-forward's wi or wi_0/wi_1, wo). Raises
    ValueError for no name, a name that is no T5 projection or one that this model does not have."""
    from torch import nn

    names = tuple(names)
    if not names:
        raise ValueError("must name at least one projection")
    unknown = sorted(set(names) - set(PROJECTIONS))
    if unknown:
        raise ValueError(f"unknown projection(s) {unknown}; expected any of {list(PROJECTIONS)}")
    found = []
    for stack in STACKS:
        for block_index, block in enumerate(getattr(model, stack).block):
            for layer_index, layer in enumerate(block.layer):
                for name, module in layer.named_modules():
                    if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in names:
                        found.append((f"{stack}.block.{block_index}.layer.{layer_index}.{name}", module))
    absent = sorted(set(names) - {path.rsplit(".", 1)[-1] for path, _ in found})
    if absent:
        raise ValueError(f"this model has no projection named {absent} (a gated feed-forward has wi_0, wi_1)")
    return found


class _ApplyToOutput:
    """Forward hook replacing F's output o by module(o) (the first element when F returns a tuple).

    A callable object rather than a closure, so `copy.deepcopy(model)` rebinds it to the copied module.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, inner: nn.Module, args: tuple, output):
        if isinstance(output, tuple):
            return (self.module(output[0]), *output[1:])
        return self.module(output)


class _AddOnInput:
    """Forward hook replacing F's output o by o + module(x), x F's input: a parallel branch (LoRA)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, inner: nn.Module, args: tuple, output):
        return output + self.module(args[0])


class _ApplyToInput:
    """Forward pre-hook replacing F's input x by module(x) ((IA)³ on the feed-forward's inner activation)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, inner: nn.Module, args: tuple):
        return (self.module(args[0]), *args[1:])


def _register(owner: nn.Module, name: str, module: nn.Module, where: str) -> None:
    if hasattr(owner, name):
        raise ValueError(f"{where or type(owner).__name__} already has an attribute {name!r}")
    owner.add_module(name, module)


def attach_after(owner: nn.Module, target: nn.Module, name: str, module: nn.Module, where: str = "") -> None:
    """Register `module` as `owner.<name>` and apply it to the output of `target`: o ← M(o) (a forward hook)."""
    _register(owner, name, module, where)
    target.register_forward_hook(_ApplyToOutput(module))


def attach_before(owner: nn.Module, target: nn.Module, name: str, module: nn.Module, where: str = "") -> None:
    """Register `module` as `owner.<name>` and apply it to the input of `target`: x ← M(x) (a pre-hook)."""
    _register(owner, name, module, where)
    target.register_forward_pre_hook(_ApplyToInput(module))


def attach_beside(owner: nn.Module, target: nn.Module, name: str, module: nn.Module, where: str = "") -> None:
    """Register `module` as `owner.<name>` and add it beside `target`: F(x) ← F(x) + M(x) (a forward hook)."""
    _register(owner, name, module, where)
    target.register_forward_hook(_AddOnInput(module))


def attach_to_output(site: Site, name: str, module: nn.Module) -> None:
    """Register `module` as `site.layer.<name>` and apply it to the output of `site.inner`."""
    attach_after(site.layer, site.inner, name, module, where=site.path)


def attach_everywhere(
    model: nn.Module,
    name: str,
    factory: Callable[[Site], nn.Module],
    sublayers: Iterable[str],
    blocks: Mapping[str, Sequence[int] | None] | None = None,
) -> list[Site]:
    """Attach `factory(site)` at every chosen site; returns the sites used."""
    sites = sublayer_sites(model, sublayers, blocks)
    for site in sites:
        attach_to_output(site, name, factory(site))
    return sites


class GlobMatchesNothingError(ValueError):
    """A trainable glob matched no parameter name; `.index` is its position in the list."""

    def __init__(self, index: int, glob: str) -> None:
        super().__init__(f"glob {glob!r} matches no parameter")
        self.index, self.glob = index, glob


def matching_names(names: Iterable[str], globs: Sequence[str]) -> set[str]:
    """The names matched by any of the shell-style globs (fnmatch, case-sensitive)."""
    return {name for name in names if any(fnmatch.fnmatchcase(name, g) for g in globs)}


def set_trainable(model: nn.Module, globs: Sequence[str]) -> list[str]:
    """requires_grad = True exactly for the parameters whose name matches a glob; returns those names.

    Names are those of `named_parameters()` (a shared parameter has one name). Raises
    GlobMatchesNothingError for a glob that matches nothing, before changing anything.
    """
    names = [name for name, _ in model.named_parameters()]
    for index, glob in enumerate(globs):
        if not any(fnmatch.fnmatchcase(name, glob) for name in names):
            raise GlobMatchesNothingError(index, glob)
    chosen = matching_names(names, globs)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in chosen)
    return [name for name in names if name in chosen]


def count_trainable(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) element counts over unique parameters (a shared tensor counts once)."""
    trainable = total = 0
    for parameter in model.parameters():  # parameters() yields each parameter object once
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
    return trainable, total
