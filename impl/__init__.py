"""PyTorch modules for the Compacter paper's PEFT methods, injected into the stock transformers T5.

`impl` depends on torch and transformers only: it never imports `harness` or `deepspeed`. The registry
and the builders' signatures load without torch (listing and validating methods stay fast); torch loads
when a model is built or a checkpoint is read.
"""

from impl.inject import count_trainable, set_trainable
from impl.registry import METHODS, MethodArgumentError, UnknownMethodError, apply_method, get, register


def __getattr__(name: str):
    if name in ("load_trainable", "save_trainable"):  # safetensors and torch: only when a checkpoint is touched
        import impl.state

        return getattr(impl.state, name)
    raise AttributeError(f"module 'impl' has no attribute {name!r}")


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
