"""`placement`: the method's modules sit exactly where the spec says, nowhere else, and all of them run.

The expected places are worked out from the T5 structure and the spec's options — which sub-layers
(by T5 class: self-attention, cross-attention, feed-forward), which blocks of each stack, and, for
methods that attach inside a sub-layer (BitFit), which named modules within it — independently of
how the method placed its modules. The actual places are every module registered under the method's
name. Both sets must be equal, and every placed module must be called by a forward pass.
"""

from __future__ import annotations

import torch

from harness.invariants.context import CheckContext, InvariantViolation
from harness.invariants.registry import invariant
from harness.spec.invariant_catalog import PlacementOptions

SUBLAYER_CLASSES = {
    "T5LayerSelfAttention": "self_attention",
    "T5LayerCrossAttention": "cross_attention",
    "T5LayerFF": "feed_forward",
}


def expected_paths(model: torch.nn.Module, method: str, options: PlacementOptions) -> set[str]:
    expected = set()
    for stack, chosen in (("encoder", options.encoder_blocks), ("decoder", options.decoder_blocks)):
        for index, block in enumerate(getattr(model, stack).block):
            if chosen is not None and index not in chosen:
                continue
            for layer_index, layer in enumerate(block.layer):
                if SUBLAYER_CLASSES.get(type(layer).__name__) not in options.sublayers:
                    continue
                prefix = f"{stack}.block.{index}.layer.{layer_index}"
                if options.targets is None:
                    expected.add(f"{prefix}.{method}")
                    continue
                for name, _ in layer.named_modules():
                    parts = name.split(".")
                    if name and method not in parts and parts[-1] in options.targets:
                        expected.add(f"{prefix}.{name}.{method}")
    return expected | {f"{path}.{method}" for path in options.outside_blocks}


@invariant("placement")
def placement(ctx: CheckContext, options: PlacementOptions) -> str:
    model = ctx.method_model().model.eval()
    method = ctx.method_name
    placed = {name: m for name, m in model.named_modules() if "." in name and name.rsplit(".", 1)[1] == method}
    expected = expected_paths(model, method, options)
    if not expected:
        raise InvariantViolation("the options select no place at all: the check would be vacuous")
    unexpected, missing = sorted(set(placed) - expected), sorted(expected - set(placed))
    if unexpected or missing:
        raise InvariantViolation(
            f"{len(unexpected)} modules where the spec puts none (e.g. {unexpected[:3]}); "
            f"{len(missing)} declared places without one (e.g. {missing[:3]})"
        )
    called: set[str] = set()
    handles = [m.register_forward_hook(lambda *_, n=name: called.add(n)) for name, m in placed.items()]
    try:
        with torch.no_grad():
            model(**ctx.batch())
    finally:
        for handle in handles:
            handle.remove()
    idle = sorted(set(placed) - called)
    if idle:
        raise InvariantViolation(f"{len(idle)} placed modules never run in a forward pass, e.g. {idle[:3]}")
    return f"{len(placed)} {method} modules, exactly at the declared places, all run in the forward pass"
