"""What a run trains: a copy of the backbone with every dropout at the recipe's rate and the method applied,
its trainable set the spec's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn
from transformers.models.mt5.modeling_mt5 import MT5Attention
from transformers.models.t5.modeling_t5 import T5Attention


def set_dropout(model: nn.Module, rate: float) -> None:
    """Every dropout of the model at `rate`: the config, each nn.Dropout, and T5's (or mT5's) attention's
    functional one.

    Setting `config.dropout_rate` alone changes nothing once the modules exist.
    """
    model.config.dropout_rate = rate
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = rate
        if isinstance(module, (T5Attention, MT5Attention)):
            module.dropout = rate  # a float: nn.functional.dropout(attention weights, p=self.dropout)


def prepare_model(base: nn.Module, method: str, arguments: dict[str, Any], trainable: Sequence[str], dropout: float):
    """What a run trains: a copy of the backbone at the recipe's dropout, the method applied, its trainable set."""
    import copy

    from harness.model.build import apply_to

    model = copy.deepcopy(base)
    set_dropout(model, dropout)
    apply_to(model, method, arguments, trainable)
    return model
