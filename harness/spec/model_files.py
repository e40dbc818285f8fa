"""T5 architecture files (`spec/models/*.yaml`): the constants a budget is counted on (data only).

`harness.model.backbone` builds a T5 from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

if TYPE_CHECKING:  # transformers loads only when a config is made (`--help`, `validate` stay fast)
    from transformers import T5Config


class T5Architecture(BaseModel):
    """The T5Config fields that define the architecture (all others keep transformers' defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    vocab_size: PositiveInt
    d_model: PositiveInt
    d_kv: PositiveInt
    d_ff: PositiveInt
    num_layers: PositiveInt
    num_decoder_layers: PositiveInt
    num_heads: PositiveInt
    relative_attention_num_buckets: PositiveInt = 32
    relative_attention_max_distance: PositiveInt = 128
    dropout_rate: float = Field(0.1, ge=0.0, lt=1.0)
    layer_norm_epsilon: float = Field(1e-6, gt=0.0)
    feed_forward_proj: Literal["relu", "gated-gelu", "gated-relu", "gelu"] = "relu"
    tie_word_embeddings: bool = True
    decoder_start_token_id: int = 0
    pad_token_id: int = 0
    eos_token_id: int = 1


class ModelFile(BaseModel):
    """`spec/models/<name>.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str
    description: str
    hub_name: str | None = None  # where a real user's pretrained weights come from
    source: str
    architecture: T5Architecture

    def t5_config(self, **overrides) -> T5Config:
        from transformers import T5Config

        return T5Config(**{**self.architecture.model_dump(), **overrides})


def models_dir(spec_path: Path) -> Path:
    """Model files live in `models/` beside the spec file."""
    return spec_path.resolve().parent / "models"
