"""T5-family architectures: the constants a budget is counted on (data only).

An architecture comes from a model file (`spec/models/*.yaml`) or from a Hugging Face `config.json`
(`architecture_from_config`); `harness.spec.model_choice` resolves `--model` to one of them and
`harness.model.backbone` builds the T5 (or mT5) it describes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:  # transformers loads only when a config is made (`--help`, `validate` stay fast)
    from transformers import PretrainedConfig

MODEL_TYPES = ("t5", "mt5")  # transformers' model_type of the T5 family the methods apply to
MAX_VOCAB = 1_048_576  # 2**20: 4× mT5's 250,112 entries
MAX_PARAMETERS = 10**11  # 9× T5-XXL (11B), the largest T5-family checkpoint


class T5Architecture(BaseModel):
    """The config fields that define a T5-family architecture (all others keep transformers' defaults).

    `tie_word_embeddings` is the checkpoint's own flag: true (T5 v1.0) when the lm_head is the input
    embedding, false (T5 v1.1, Flan-T5, mT5) when it is a matrix of its own. transformers 5 forces the
    flag to true in every T5 config it makes and keeps the value only to decide the decoder's output
    scaling, so `harness.model.backbone` unties an untied model itself.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    # Upper bounds refuse the absurd (a typo's d_model 10**9 would be built before anything says so), each
    # at least 4× the largest T5-family checkpoint: T5-XXL (d_model 1024, d_ff 65,536, 128 heads of d_kv
    # 128), T5 v1.1 / mT5-XXL (d_model 4096, d_ff 10,240, 64 heads, 24 layers), mT5's 250,112 entries.
    model_type: Literal["t5", "mt5"] = "t5"
    vocab_size: Annotated[int, Field(gt=0, le=MAX_VOCAB)]
    d_model: Annotated[int, Field(gt=0, le=16_384)]
    d_kv: Annotated[int, Field(gt=0, le=1_024)]
    d_ff: Annotated[int, Field(gt=0, le=262_144)]
    num_layers: Annotated[int, Field(gt=0, le=256)]
    num_decoder_layers: Annotated[int, Field(gt=0, le=256)]
    num_heads: Annotated[int, Field(gt=0, le=512)]
    relative_attention_num_buckets: Annotated[int, Field(gt=0, le=4_096)] = 32
    relative_attention_max_distance: Annotated[int, Field(gt=0, le=1_000_000)] = 128
    dropout_rate: float = Field(0.1, ge=0.0, lt=1.0)
    layer_norm_epsilon: float = Field(1e-6, gt=0.0, le=1.0)
    feed_forward_proj: Literal["relu", "gelu", "gated-gelu", "gated-relu", "gated-silu"] = "relu"
    tie_word_embeddings: bool = True
    # token ids index the embedding: each below vocab_size (checked below), never negative
    decoder_start_token_id: Annotated[int, Field(ge=0)] = 0
    pad_token_id: Annotated[int, Field(ge=0)] = 0
    eos_token_id: Annotated[int, Field(ge=0)] = 1

    @model_validator(mode="after")
    def _buildable(self) -> T5Architecture:
        """Token ids inside the vocabulary, and a parameter count a machine can hold (each bound alone admits
        combinations no machine could build)."""
        for key in ("decoder_start_token_id", "pad_token_id", "eos_token_id"):
            if getattr(self, key) >= self.vocab_size:
                raise ValueError(f"{key} {getattr(self, key)} is not below vocab_size {self.vocab_size}")
        if self.approximate_parameters() > MAX_PARAMETERS:
            raise ValueError(
                f"about {self.approximate_parameters():.3g} parameters (vocab_size, d_model, d_kv, d_ff, num_heads, "
                f"num_layers, num_decoder_layers); a T5-family model here has at most {MAX_PARAMETERS:.0e} "
                "(T5-XXL has 1.1e10)"
            )
        return self

    def approximate_parameters(self) -> int:
        """Embeddings and the attention and feed-forward matrices (layer norms and biases are negligible)."""
        inner = self.num_heads * self.d_kv
        attention = 4 * self.d_model * inner
        feed_forward = (3 if self.feed_forward_proj.startswith("gated") else 2) * self.d_model * self.d_ff
        embeddings = self.vocab_size * self.d_model * (1 if self.tie_word_embeddings else 2)
        return (
            embeddings
            + self.num_layers * (attention + feed_forward)
            + self.num_decoder_layers * (2 * attention + feed_forward)
        )

    @property
    def family(self) -> str:
        """T5 v1.0 (ReLU, tied), T5 v1.1 (gated, untied: also Flan-T5) or mT5, in words."""
        if self.model_type == "mt5":
            return "mT5"
        return "T5 v1.0" if self.feed_forward_proj == "relu" and self.tie_word_embeddings else "T5 v1.1"


class ModelFile(BaseModel):
    """`spec/models/<name>.yaml`, or the architecture of a folder's or hub id's `config.json`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str
    description: str
    pretrained: str | None = None  # a hub id or local folder with the weights and tokenizer (paper profile)
    source: str
    architecture: T5Architecture

    def t5_config(self, **overrides) -> PretrainedConfig:
        """transformers' T5Config (MT5Config for mT5) of this architecture."""
        from transformers import MT5Config, T5Config

        fields = {**self.architecture.model_dump(exclude={"model_type"}), **overrides}
        return (MT5Config if self.architecture.model_type == "mt5" else T5Config)(**fields)


def models_dir(spec_path: Path) -> Path:
    """Model files live in `models/` beside the spec file."""
    return spec_path.resolve().parent / "models"


# A config.json key missing from the file takes transformers' default for its model type (its config
# class's), except these, which the file must state: they define the size of everything.
REQUIRED_CONFIG_KEYS = ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads")
CONFIG_DEFAULTS = {  # transformers 5's T5Config / MT5Config defaults of the optional fields
    "t5": {"feed_forward_proj": "relu"},
    "mt5": {"feed_forward_proj": "gated-gelu"},
}


def architecture_from_config(config: Any, where: str, stored_lm_head: bool | None = None) -> T5Architecture:
    """The architecture a Hugging Face `config.json` mapping describes; ModelError lines naming `where: key`.

    Only T5-family model types are accepted. Whether the lm_head is tied comes from, in this order:
    - `stored_lm_head`, whether the checkpoint's weights hold an `lm_head.weight` of their own (None: no
      weights to look at): what will be loaded is what is counted;
    - `scale_decoder_outputs`, in a T5 config written by transformers 5, which always writes
      `tie_word_embeddings: true` but keeps the original flag as this one;
    - `tie_word_embeddings` (default true, as in every transformers config).
    """
    from harness.errors import ModelError

    if not isinstance(config, dict):
        raise ModelError([f"{where}: (top level): expected a JSON object of config keys"])
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ModelError(
            [f"{where}: model_type: {model_type!r} is not a T5-family model; the methods apply to {list(MODEL_TYPES)}"]
        )
    missing = [key for key in REQUIRED_CONFIG_KEYS if key not in config]
    if missing:
        keys = ", ".join(missing)
        raise ModelError([f"{where}: {keys}: required key{'s are' if len(missing) > 1 else ' is'} missing"])
    fields = {name: config[name] for name in T5Architecture.model_fields if config.get(name) is not None}
    fields = {**CONFIG_DEFAULTS[model_type], **fields}
    fields.setdefault("num_decoder_layers", fields["num_layers"])  # transformers: symmetric by default
    if model_type == "t5" and isinstance(config.get("scale_decoder_outputs"), bool):
        fields["tie_word_embeddings"] = config["scale_decoder_outputs"]
    if stored_lm_head is not None:
        fields["tie_word_embeddings"] = not stored_lm_head
    try:
        return T5Architecture.model_validate(fields)
    except ValidationError as error:
        from harness.spec.reading import pydantic_errors

        raise ModelError(pydantic_errors(Path(where), error)) from None
