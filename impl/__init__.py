"""PyTorch modules for the Compacter paper's PEFT methods, injected into the stock transformers T5.

`impl` depends on torch and transformers only: it never imports `harness` or `deepspeed`.
"""

from impl.inject import count_trainable, set_trainable
from impl.registry import METHODS, MethodArgumentError, UnknownMethodError, apply_method, get, register
from impl.state import load_trainable, save_trainable

__all__ = [
    "METHODS",
    "MethodArgumentError",
    "UnknownMethodError",
    "apply_method",
    "count_trainable",
    "get",
    "load_trainable",
    "register",
    "save_trainable",
    "set_trainable",
]
