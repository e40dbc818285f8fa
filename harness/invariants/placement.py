"""`placement`: the method's modules sit exactly where the spec says, nowhere else, act there, and all run.

The expected places are worked out from the T5 structure and the spec's options — which sub-layers
(by T5 class: self-attention, cross-attention, feed-forward), which blocks of each stack, and, for
methods that attach inside a sub-layer (BitFit), which named modules within it — independently of
how the method placed its modules. The actual places are every module registered under the method's
name. Both sets must be equal, and every placed module must be called by a forward pass.

Registration says where a module is kept, not what it transforms, so behaviour is checked too, with the
method's weights redrawn at random (no module is near the identity) and T5's dropout of each sub-layer
replaced by a fixed random mask m. Every sub-layer of every block, given h (and, for cross-attention,
encoder states and a position bias), must compute the paper's placement (docs/paper.md, "Where the
adapter-family modules go"), evaluated with the *base* model's modules:

- a sub-layer with a module M of the method: h + m ⊙ M(F(LN(h))): on the sub-layer's output, after
  T5's layer norm path, inside the dropout branch and before the residual add;
- every other sub-layer: h + m ⊙ F(LN(h)), T5's own, exactly (so nothing acts where nothing is declared).

For every placed M the wrong places — after the residual M(h + m ⊙ F), after the dropout h + M(m ⊙ F),
on the sub-layer's input h + m ⊙ F(LN(M(h))) and between the layer norm and F h + m ⊙ F(M(LN(h))) — must
differ from the right one, or the check could not tell them apart and fails. For a method placed inside
sub-layers, every named module T of the spec's sub-layers (and each `outside_blocks` module) must compute,
T₀ the base model's module,

- `targets` (BitFit's biases, (IA)³'s l_k, l_v): M(T₀(x)) when it holds an M; M on the input, T₀(M(x)), must
  differ where the shapes allow it;
- `inputs_of` ((IA)³'s l_ff on wo): T₀(M(x)); M on the output, M(T₀(x)), must differ where the shapes allow;
- `beside` (LoRA): T₀(x) + M(x); T₀(x) alone and M on the output must differ;

and T₀(x) when it holds none.
"""

from __future__ import annotations

import torch

from harness.invariants.context import CheckContext, InvariantViolation, relative_error
from harness.invariants.layer_formula import method_modules, randomise
from harness.invariants.registry import invariant
from harness.spec.invariant_catalog import PlacementOptions

SUBLAYER_CLASSES = {  # T5's sub-layer classes and mT5's copies of them (transformers' MT5 classes)
    f"{family}{name}": kind
    for family in ("T5", "MT5")
    for name, kind in (("LayerSelfAttention", "self_attention"), ("LayerCrossAttention", "cross_attention"),
                       ("LayerFF", "feed_forward"))
}  # fmt: skip


def expected_paths(model: torch.nn.Module, method: str, options: PlacementOptions) -> set[str]:
    expected, inside = set(), options.inside()
    for stack, chosen in (("encoder", options.encoder_blocks), ("decoder", options.decoder_blocks)):
        for index, block in enumerate(getattr(model, stack).block):
            if chosen is not None and index not in chosen:
                continue
            for layer_index, layer in enumerate(block.layer):
                if SUBLAYER_CLASSES.get(type(layer).__name__) not in options.sublayers:
                    continue
                prefix = f"{stack}.block.{index}.layer.{layer_index}"
                if not inside:
                    expected.add(f"{prefix}.{method}")
                    continue
                for name, _ in layer.named_modules():
                    parts = name.split(".")
                    if name and method not in parts and parts[-1] in inside:
                        expected.add(f"{prefix}.{name}.{method}")
    return expected | {f"{path}.{method}" for path in options.outside_blocks}


@invariant("placement")
def placement(ctx: CheckContext, options: PlacementOptions) -> str:
    model = ctx.method_model().model.eval()
    method = ctx.method_name
    placed = method_modules(model, method)
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
    model = model.double()
    randomise(model, method)
    base = ctx.base_model().double().eval()
    with torch.no_grad():
        if not options.inside():
            acting = check_sublayer_behaviour(model, base, method)
        else:
            acting = check_target_behaviour(model, base, method, options)
    return (
        f"{len(placed)} {method} modules, exactly at the declared places, all run in the forward pass; with "
        f"random weights each acts exactly there ({acting}) and everything else is T5's own"
    )


TOLERANCE = 1e-10  # relative, float64: the layer computes the placement's equation
DISTINCT = 1e-6  # relative: a wrong placement must be at least this far from the right one


class FixedMask(torch.nn.Module):
    """Stands in for T5's dropout: x ⊙ m, a fixed random mask scaled by 1/(1 − p) with p = ½."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.mask = mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


def compare(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    error = relative_error(got, want)
    if not error <= TOLERANCE:
        raise InvariantViolation(f"{what}, off by {error:.3g} (relative)")


def require_distinct(right: torch.Tensor, wrong: dict[str, torch.Tensor], where: str) -> None:
    for name, value in wrong.items():
        if not relative_error(value, right) > DISTINCT:
            raise InvariantViolation(f"{where}: {name} gives the same output: the check could not tell them apart")


def sublayer_call(base_layer: torch.nn.Module, kind: str, draw, length: int, source: int):
    """(the layer's extra inputs, F as a function of its normalised input), F from the base model."""
    if kind == "feed_forward":
        return {}, base_layer.DenseReluDense
    width = base_layer.layer_norm.weight.shape[0]
    states = draw(source, width) if kind == "cross_attention" else None  # (B, S, k) encoder states
    attention = base_layer.EncDecAttention if states is not None else base_layer.SelfAttention
    bias = draw(attention.n_heads, length, source if states is not None else length)  # (B, H, T, S)

    def sublayer(x: torch.Tensor) -> torch.Tensor:
        return attention(x, key_value_states=states, position_bias=bias)[0]  # (B, T, k)

    inputs = {"position_bias": bias} if states is None else {"position_bias": bias, "key_value_states": states}
    return inputs, sublayer


def check_sublayer_behaviour(model: torch.nn.Module, base: torch.nn.Module, method: str) -> str:
    """Each sub-layer computes h + m ⊙ M(F(LN(h))) where it holds M, h + m ⊙ F(LN(h)) elsewhere."""
    generator = torch.Generator().manual_seed(2)
    batch, length, source = 2, 5, 7

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(batch, *shape, generator=generator, dtype=torch.float64)

    acting = 0
    for stack in ("encoder", "decoder"):
        blocks = zip(getattr(model, stack).block, getattr(base, stack).block, strict=True)
        for index, (block, base_block) in enumerate(blocks):
            for layer_index, (layer, base_layer) in enumerate(zip(block.layer, base_block.layer, strict=True)):
                kind = SUBLAYER_CLASSES[type(base_layer).__name__]
                where = f"{stack}.block.{index}.layer.{layer_index} ({kind})"
                h = draw(length, base.config.d_model)  # (B, T, k)
                mask = (torch.rand(h.shape, generator=generator) < 0.5).double() * 2.0  # (B, T, k), p = ½
                inputs, sublayer = sublayer_call(base_layer, kind, draw, length, source)
                dropout, layer.dropout = layer.dropout, FixedMask(mask)
                try:
                    got = layer(h, **inputs)
                finally:
                    layer.dropout = dropout
                got = got[0] if isinstance(got, tuple) else got  # (B, T, k)
                norm = base_layer.layer_norm
                output = sublayer(norm(h))  # F(LN(h)): (B, T, k)
                adapter = getattr(layer, method, None)
                if adapter is None:
                    compare(got, h + mask * output, f"{where} holds no {method} module but is not T5's own")
                    continue
                right = h + mask * adapter(output)
                compare(got, right, f"{where}: the output is not h + dropout({method}(F(LN(h))))")
                wrong = {
                    "M after the residual": adapter(h + mask * output),
                    "M after the dropout": h + adapter(mask * output),
                    "M on the sub-layer's input": h + mask * sublayer(norm(adapter(h))),
                    "M between the layer norm and F": h + mask * sublayer(adapter(norm(h))),
                }
                require_distinct(right, wrong, where)
                acting += 1
    return f"{acting} sub-layers compute h + dropout(M(F(LN(h)))), 4 wrong placements told apart"


def check_target_behaviour(model: torch.nn.Module, base: torch.nn.Module, method: str, options) -> str:
    """Each named module T computes M(T₀(x)), T₀(M(x)) or T₀(x) + M(x) (as declared) where it holds M, T₀(x)
    elsewhere."""
    generator = torch.Generator().manual_seed(3)
    base_modules = dict(base.named_modules())
    inside = options.inside()
    targets = []
    for stack in ("encoder", "decoder"):
        for index, block in enumerate(getattr(model, stack).block):
            for layer_index, layer in enumerate(block.layer):
                if SUBLAYER_CLASSES.get(type(layer).__name__) not in options.sublayers:
                    continue
                prefix = f"{stack}.block.{index}.layer.{layer_index}"
                for name, module in layer.named_modules():
                    parts = name.split(".")
                    if name and method not in parts and parts[-1] in inside:
                        targets.append((f"{prefix}.{name}", module, inside[parts[-1]]))
    targets += [(path, model.get_submodule(path), "output") for path in options.outside_blocks]
    acting = 0
    for path, module, how in targets:
        original = base_modules[path]
        size = original.in_features if isinstance(original, torch.nn.Linear) else original.weight.shape[-1]
        x = torch.randn(2, 5, size, generator=generator, dtype=torch.float64)  # (B, T, in)
        got, plain = module(x), original(x)
        added = getattr(module, method, None)
        if added is None:
            compare(got, plain, f"{path} holds no {method} module but differs from T5's")
            continue
        try:
            right, wrong = placed_output(original, added, x, plain, how)
        except RuntimeError as error:  # M's size does not fit where the spec places it
            raise InvariantViolation(f"{path}: {method} cannot compute {placed(how, method)} here: {error}") from error
        compare(got, right, f"{path}: the output is not {placed(how, method)}")
        require_distinct(right, wrong, path)
        acting += 1
    return f"{acting} named modules compute {', '.join(sorted({placed(how, 'M') for _, _, how in targets}))}"


PLACED = {"output": "M(T(x))", "input": "T(M(x))", "beside": "T(x) + M(x)"}


def placed(how: str, module: str) -> str:
    """The declared placement's formula with M named: `placed("output", "bitfit")` is "bitfit(T(x))"."""
    return PLACED[how].replace("M", module)


def placed_output(original, added, x: torch.Tensor, plain: torch.Tensor, how: str):
    """(the declared placement's output, the wrong placements the shapes allow), T = `original`, M = `added`."""
    if how == "output":
        return added(plain), ({"M on the input": original(added(x))} if plain.shape == x.shape else {})
    if how == "input":
        return original(added(x)), ({"M on the output": added(plain)} if plain.shape == x.shape else {})
    wrong = {"T alone": plain}
    if plain.shape == x.shape:
        wrong["M on the output"] = added(plain)
    return plain + added(x), wrong
