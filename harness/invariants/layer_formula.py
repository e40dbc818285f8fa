"""`layer_formula`: every module the method adds computes its paper equation, written here from the paper.

The references below are written from the equations (docs/paper.md, "Where the adapter-family modules go" and
"The methods"; the paper's §2–3), not from `impl/`: they read the module's parameters by name and compute
with nothing of the module's code. For each module registered under the method's name (`<site>.<method>`),
every parameter of the method (the shared PHM rule included) is first redrawn N(0, 1/fan) so that no
weight is zero or the identity, then y ~ N(0, 1) is drawn in float64 and the module's output must equal:

- bottleneck adapters: A(y) = y + U(f(D(y))), f the spec's `non_linearity`, from its formula:
  - gelu_new: f(x) = ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)));
  - gelu: f(x) = ½ x (1 + erf(x / √2));
  - relu: f(x) = max(x, 0);
  and D, U (the modules `down`, `up`) by the spec's `layer`:
  - `linear` (Adapter, Pfeiffer, AdapterDrop): x Wᵀ + b, W of shape (out, in) as nn.Linear stores it;
  - `low_rank` (Adapter-LowRank): x (w_l w_r) + b, w_l (in, r), w_r (r, out);
  - `phm` (PHM-Adapter): x (Σ_i A_i ⊗ B_i) + b, with `torch.kron`, B_i = `phm_weight`[i];
  - `lphm` (Compacter, Compacter++): the same with B_i = s_i t_i (`phm_weight_left`[i] @ `phm_weight_right`[i]);
- `added_bias` (BitFit): y + b;
- on the dense layer T (weight W₀ or W, no bias in T5) that holds the module, so the hook that combines them
  is checked too:
  - `lora` (LoRA, Hu et al. §4.1): T(y) = y W₀ᵀ + (α/r) (y Aᵀ) Bᵀ, A = `weight_a` (r, in), B = `weight_b` (out, r),
    α and r the spec's `alpha` and `rank` (never the module's own scaling);
  - `rescale` ((IA)³, Liu et al. §4.3): K = l_k ⊙ (y W_kᵀ), V = l_v ⊙ (y W_vᵀ) on keys and values, and on the
    feed-forward's output projection W₂ (T5's `wo`) T(y) = (l_ff ⊙ y) W₂ᵀ, l = `scale`.

A check that could not tell the activations apart would prove nothing about f: every other known
activation must differ from f on the drawn pre-activations D(y) by more than `DISCRIMINATION` (relative),
far above the tolerance, or the check fails as vacuous.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from harness.invariants.context import CheckContext, InvariantViolation, relative_error
from harness.invariants.registry import invariant
from harness.spec.invariant_catalog import FormulaOptions

TOLERANCE = 1e-10  # max |module − reference| / max |reference|, float64
DISCRIMINATION = 1e-5  # every other activation differs from f on D(y) by more than this, relative


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """½ x (1 + tanh(√(2/π) (x + 0.044715 x³))): the tanh approximation (Hendrycks & Gimpel 2016), T5's gelu_new."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def gelu(x: torch.Tensor) -> torch.Tensor:
    """x Φ(x) = ½ x (1 + erf(x / √2)): the exact GELU."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def relu(x: torch.Tensor) -> torch.Tensor:
    """max(x, 0)."""
    return torch.where(x > 0, x, torch.zeros_like(x))


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"gelu_new": gelu_new, "gelu": gelu, "relu": relu}


def parameter(module: nn.Module, name: str) -> torch.Tensor:
    tensor = getattr(module, name, None)
    if not isinstance(tensor, torch.Tensor):
        raise InvariantViolation(f"{type(module).__name__} has no tensor {name!r} for the paper's equation")
    return tensor


def kronecker_sum(rule: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """H = Σ_i A_i ⊗ B_i with torch.kron: (n, n, n), (n, p, q) -> (n·p, n·q)."""
    return sum(torch.kron(rule[i], blocks[i]) for i in range(rule.shape[0]))


def linear_reference(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x Wᵀ + b: (..., in) -> (..., out)."""
    return x @ parameter(layer, "weight").t() + parameter(layer, "bias")


def low_rank_reference(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x (w_l w_r) + b: (..., in) -> (..., out)."""
    weight = parameter(layer, "weight_left") @ parameter(layer, "weight_right")  # (in, r) @ (r, out)
    return x @ weight + parameter(layer, "bias")


def phm_reference(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x (Σ_i A_i ⊗ B_i) + b: (..., in) -> (..., out)."""
    return x @ kronecker_sum(parameter(layer, "rule"), parameter(layer, "phm_weight")) + parameter(layer, "bias")


def lphm_reference(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x (Σ_i A_i ⊗ s_i t_i) + b: (..., in) -> (..., out)."""
    blocks = parameter(layer, "phm_weight_left") @ parameter(layer, "phm_weight_right")  # (n, p, r) @ (n, r, q)
    return x @ kronecker_sum(parameter(layer, "rule"), blocks) + parameter(layer, "bias")


PROJECTIONS: dict[str, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    "linear": linear_reference,
    "low_rank": low_rank_reference,
    "phm": phm_reference,
    "lphm": lphm_reference,
}


def adapter_reference(adapter: nn.Module, y: torch.Tensor, layer: str, activation: str) -> torch.Tensor:
    """y + U(f(D(y))): (..., k) -> (..., k)."""
    project = PROJECTIONS[layer]
    return y + project(adapter.up, ACTIVATIONS[activation](project(adapter.down, y)))


def randomise(model: nn.Module, method: str, seed: int = 0) -> None:
    """Every parameter of the method ~ N(0, 1/fan), fan the second-to-last size (1 for a vector)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            if method in name.split("."):
                fan = tensor.shape[-2] if tensor.dim() >= 2 else 1
                draw = torch.randn(tensor.shape, generator=generator, dtype=torch.float64) / math.sqrt(fan)
                tensor.copy_(draw.to(tensor.dtype))


def method_modules(model: nn.Module, method: str) -> dict[str, nn.Module]:
    """The modules registered as `<path>.<method>` (a top-level holder such as a shared rule is not a layer)."""
    return {name: m for name, m in model.named_modules() if "." in name and name.rsplit(".", 1)[1] == method}


def width(module: nn.Module, layer: str) -> int:
    """The input width of an adapter (its down projection's) or of an added bias."""
    if layer == "added_bias":
        return parameter(module, "bias").shape[-1]
    down = module.down
    if layer == "linear":
        return parameter(down, "weight").shape[1]
    if layer == "low_rank":
        return parameter(down, "weight_left").shape[0]
    blocks = parameter(down, "phm_weight" if layer == "phm" else "phm_weight_left")
    return blocks.shape[0] * blocks.shape[1]


FEED_FORWARD_OUTPUT = "wo"  # W₂ of T5's feed-forward: (IA)³'s l_ff scales its input γ(W₁ x)


def lora_reference(host: nn.Module, lora: nn.Module, y: torch.Tensor, rank: float, alpha: float) -> torch.Tensor:
    """y W₀ᵀ + (α/r) (y Aᵀ) Bᵀ: (..., in) -> (..., out)."""
    update = (y @ parameter(lora, "weight_a").t()) @ parameter(lora, "weight_b").t()  # (..., r) -> (..., out)
    return y @ parameter(host, "weight").t() + (alpha / rank) * update


def rescale_reference(host: nn.Module, rescale: nn.Module, y: torch.Tensor, name: str) -> torch.Tensor:
    """(l ⊙ y) W₂ᵀ on the feed-forward's W₂, l ⊙ (y Wᵀ) on keys and values: (..., in) -> (..., out)."""
    scale = parameter(rescale, "scale")
    if name == FEED_FORWARD_OUTPUT:
        return (scale * y) @ parameter(host, "weight").t()
    return scale * (y @ parameter(host, "weight").t())


def spec_number(ctx: CheckContext, key: str) -> float:
    value = ctx.method_args.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvariantViolation(f"the spec's method args state no positive {key!r}: the reference needs it")
    return value


def module_outputs(modules: dict[str, nn.Module], options: FormulaOptions, activation: str | None):
    """(name, the module's output, its paper equation) for each module, on y ~ N(0, 1); for an adapter, the
    activations are first shown apart on its D(y)."""
    generator = torch.Generator().manual_seed(1)
    for name, module in modules.items():
        y = torch.randn(2, 5, width(module, options.layer), generator=generator, dtype=torch.float64)  # (B, T, k)
        with torch.no_grad():
            if options.layer == "added_bias":
                want = y + parameter(module, "bias")
            else:
                want = adapter_reference(module, y, options.layer, activation)
                check_discriminates(module, y, options, activation, name)
            yield name, module(y), want


def host_outputs(ctx: CheckContext, model: nn.Module, modules: dict[str, nn.Module], layer: str):
    """(path, the dense layer's output, LoRA's or (IA)³'s equation) for the dense layer holding each module, on
    y ~ N(0, 1); a module held by anything but a dense layer is a violation."""
    if layer == "lora":
        rank, alpha = spec_number(ctx, "rank"), spec_number(ctx, "alpha")
    generator = torch.Generator().manual_seed(1)
    for name, module in modules.items():
        path = name.rsplit(".", 1)[0]
        host = model.get_submodule(path)
        if not isinstance(host, nn.Linear):
            raise InvariantViolation(f"{name} is not held by a dense layer: {path} is {type(host).__name__}")
        y = torch.randn(2, 5, host.in_features, generator=generator, dtype=torch.float64)  # (B, T, in)
        with torch.no_grad():
            if layer == "lora":
                want = lora_reference(host, module, y, rank, alpha)
            else:
                want = rescale_reference(host, module, y, path.rsplit(".", 1)[-1])
            yield path, host(y), want  # (B, T, out)


def worst_error(outputs, equation: str) -> float:
    """The largest relative error over (where, output, reference) triples; above TOLERANCE, a violation."""
    worst = 0.0
    for where, got, want in outputs:
        error = relative_error(got, want)
        if not error <= TOLERANCE:
            raise InvariantViolation(f"{where} differs from {equation} by {error:.3g} (relative)")
        worst = max(worst, error)
    return worst


def check_discriminates(adapter: nn.Module, y: torch.Tensor, options: FormulaOptions, activation: str, where: str):
    pre = PROJECTIONS[options.layer](adapter.down, y)  # (B, T, d): D(y)
    chosen = ACTIVATIONS[activation](pre)
    for other, function in ACTIVATIONS.items():
        if other != activation and not relative_error(function(pre), chosen) > DISCRIMINATION:
            raise InvariantViolation(
                f"{where}: on the drawn D(y) {other} and {activation} agree to {DISCRIMINATION:g}: "
                "the check could not tell them apart"
            )


@invariant("layer_formula")
def layer_formula(ctx: CheckContext, options: FormulaOptions) -> str:
    method = ctx.method_name
    activation = ctx.method_args.get("non_linearity") if options.layer in PROJECTIONS else None
    if options.layer in PROJECTIONS and activation not in ACTIVATIONS:
        raise InvariantViolation(
            f"the spec's non_linearity {activation!r} has no reference formula here (known: {sorted(ACTIVATIONS)})"
        )
    model = ctx.method_model().model.double().eval()
    randomise(model, method)
    modules = method_modules(model, method)
    if not modules:
        raise InvariantViolation(f"no module is registered as <path>.{method}: nothing to check")
    if options.layer in ("lora", "rescale"):
        if options.layer == "lora":
            equation = f"y W₀ᵀ + ({spec_number(ctx, 'alpha'):g}/{spec_number(ctx, 'rank'):g}) y Aᵀ Bᵀ"
        else:
            equation = "l ⊙ (y Wᵀ) (keys, values), (l ⊙ y) W₂ᵀ (wo)"
        worst = worst_error(host_outputs(ctx, model, modules, options.layer), equation)
        return f"{len(modules)} dense layers with random {method} weights equal {equation} (worst {worst:.1g})"
    equation = "y + b" if options.layer == "added_bias" else f"y + U({activation}(D(y))) with {options.layer} D, U"
    worst = worst_error(module_outputs(modules, options, activation), equation)
    return f"{len(modules)} modules with random weights equal {equation} written from the paper (worst {worst:.1g})"
