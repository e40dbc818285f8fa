"""Shared construction of every bottleneck-adapter method (Adapter, Pfeiffer, AdapterDrop, LowRank, PHM, Compacter).

Each adapter is A(y) = y + U(act(D(y))) with D: k → d and U: d → k, d = d_model / reduction_factor,
placed on the output of the chosen sub-layers of the chosen blocks (see `impl.inject`). Methods differ
only in the projection they build for D and U; the argument checks and the placement live here once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from impl.inject import Site, attach_everywhere, sublayer_sites
from impl.registry import MethodArgumentError

if TYPE_CHECKING:  # torch, transformers and the layers load when a model is built
    from torch import nn

    from impl.layers.bottleneck import BottleneckAdapter

Projection = Callable[[int, int], "nn.Module"]  # (in_features, out_features) -> module
# every adapter method's merge rule (`impl.registry.register`): it cannot fold into the stock T5
NOT_MERGEABLE = "its adapters y + U(f(D(y))) are non-linear and sit inside T5's residual: no stock weight can hold them"


def divisors(value: int, low: int = 1, high: int | None = None) -> str:
    """The divisors of `value` in [low, high], as `1, 2, 4` ("" when there are none)."""
    return ", ".join(str(k) for k in range(low, (high or value) + 1) if value % k == 0)


def bottleneck_size(model: nn.Module, reduction_factor: int) -> int:
    """d = d_model / reduction_factor, which must be a whole number."""
    d_model = model.config.d_model
    if reduction_factor < 1 or d_model % reduction_factor:
        raise MethodArgumentError(
            "reduction_factor",
            f"{reduction_factor} must be a positive divisor of d_model={d_model} "
            f"(the divisors from 8 to 64: {divisors(d_model, 8, 64) or 'none'})",
        )
    return d_model // reduction_factor


def normal_linear(init_std: float) -> Projection:
    """The Houlsby adapter's projection: nn.Linear with weights N(0, init_std²) and zero bias (the released code)."""

    def make(in_features: int, out_features: int) -> nn.Linear:
        from torch import nn

        layer = nn.Linear(in_features, out_features)
        nn.init.normal_(layer.weight, mean=0.0, std=init_std)
        nn.init.zeros_(layer.bias)
        return layer

    return make


def check_placement(
    model: nn.Module,
    sublayers: Sequence[str],
    encoder_blocks: Sequence[int] | None,
    decoder_blocks: Sequence[int] | None,
    non_linearity: str,
) -> None:
    """MethodArgumentError naming the argument for an unknown activation, sub-layer or block index."""
    from transformers.activations import ACT2FN

    if non_linearity not in ACT2FN:
        raise MethodArgumentError("non_linearity", f"unknown activation {non_linearity!r}")
    try:
        sites = sublayer_sites(model, sublayers)
    except ValueError as error:
        raise MethodArgumentError("sublayers", str(error)) from error
    if not sites:
        raise MethodArgumentError("sublayers", "must name at least one sub-layer")
    for stack, chosen in (("encoder", encoder_blocks), ("decoder", decoder_blocks)):
        try:
            sublayer_sites(model, sublayers, {stack: chosen})
        except ValueError as error:
            raise MethodArgumentError(f"{stack}_blocks", str(error)) from error


def attach_bottleneck_adapters(
    model: nn.Module,
    name: str,
    projection: Projection,
    *,
    sublayers: Sequence[str],
    reduction_factor: int,
    non_linearity: str,
    encoder_blocks: Sequence[int] | None = None,
    decoder_blocks: Sequence[int] | None = None,
) -> list[Site]:
    """Attach `BottleneckAdapter(projection(k, d), projection(d, k))` as `<sub-layer>.<name>` at every site."""
    from impl.layers.bottleneck import BottleneckAdapter

    d_model, d = model.config.d_model, bottleneck_size(model, reduction_factor)
    check_placement(model, sublayers, encoder_blocks, decoder_blocks, non_linearity)

    def adapter(_site: Site) -> BottleneckAdapter:
        return BottleneckAdapter(projection(d_model, d), projection(d, d_model), non_linearity)

    blocks = {"encoder": encoder_blocks, "decoder": decoder_blocks}
    return attach_everywhere(model, name, adapter, sublayers, blocks)


def adapters_in_blocks(model: nn.Module, name: str, blocks: Mapping[str, Iterable[int]]) -> list[BottleneckAdapter]:
    """The adapters named `name` in the given blocks of each stack (any sub-layer)."""
    from impl.layers.bottleneck import BottleneckAdapter

    found = []
    for stack, indices in blocks.items():
        for index in indices:
            for layer in getattr(model, stack).block[index].layer:
                adapter = getattr(layer, name, None)
                if isinstance(adapter, BottleneckAdapter):
                    found.append(adapter)
    return found


def positive_std(init_std: float) -> float:
    """A projection's init_std, refused unless positive (a MethodArgumentError names the argument)."""
    if not init_std > 0:
        raise MethodArgumentError("init_std", f"must be positive, got {init_std}")
    return init_std
