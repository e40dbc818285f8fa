"""The spec schema: what every `spec/<method>.yaml` must state, strictly (unknown keys are errors).

Only the shape of the data lives here; checks that need the method registry or the model files (method
arguments, invariant names) live in `harness.spec.validation`, those that need a built model (globs) in
`harness.model.checked`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from harness.limits import MAX_LENGTH, MAX_TRAIN_SAMPLES, SEED_MAX
from harness.spec.fidelity import BY_NAME, Fidelity, Position

GLUE_TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")
SUPERGLUE_TASKS = ("boolq", "cb", "copa", "multirc", "record", "wic")
TaskName = Literal[
    "cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte",
    "boolq", "cb", "copa", "multirc", "record", "wic",
]  # fmt: skip


class Strict(BaseModel):
    """Unknown keys are errors; no coercion (`true` is not 1, "3" is not 3; an int is a valid float); no
    infinity or NaN (`.inf` would train, then fail when the results are written)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Paper(Strict):
    """Which paper, and which version of it, the spec transcribes."""

    title: str
    arxiv: Annotated[str, Field(pattern=r"^\d{4}\.\d{4,5}$")]
    version: Annotated[str, Field(pattern=r"^v\d+$")]
    where: str  # where the method is described (section title), free text


class MethodRef(Strict):
    name: str  # a registry key; checked against the registry by harness.spec.validation
    args: dict[str, Any] = Field(default_factory=dict)  # checked against the builder's signature


class Budget(Strict):
    """The trainable-parameter count on the spec's model, and the paper's percentage with its source."""

    trainable_params: NonNegativeInt | None = None
    published_percent: Annotated[float, Field(ge=0.0, le=100.0)] | None = None
    source: str | None = Field(None, validate_default=True)  # where the published percentage is printed

    @field_validator("source")
    @classmethod
    def _published_needs_source(cls, source: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("published_percent") is not None and not source:
            raise ValueError("published_percent needs a source (paper version, table or section)")
        return source


class NormalInit(Strict):
    params: str  # glob over parameter names
    distribution: Literal["normal"]
    mean: float = 0.0
    std: PositiveFloat


class UniformInit(Strict):
    params: str
    distribution: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> UniformInit:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class GlorotUniformInit(Strict):
    """U(−b, b), b = gain·√(6 / (rows + cols)) over the last two dims of each tensor."""

    params: str
    distribution: Literal["glorot_uniform"]
    gain: PositiveFloat = 1.0


class KaimingUniformInit(Strict):
    """U(−b, b), b = gain·√(3 / fan_in), gain = √(2 / (1 + a²)), fan_in the last dim of each (out, in) tensor:
    torch's `kaiming_uniform_` (a = √5, b = 1/√fan_in, is nn.Linear's and `peft`'s LoRA A)."""

    params: str
    distribution: Literal["kaiming_uniform"]
    a: Annotated[float, Field(ge=0.0)] = 2.23606797749979  # √5


class ConstantInit(Strict):
    params: str
    distribution: Literal["zeros", "ones"]


class EmbeddingRowsInit(Strict):
    """A copy of the input embedding's rows start … start + p − 1, p = the tensor's first dimension."""

    params: str
    distribution: Literal["embedding_rows"]
    start: NonNegativeInt = 0


InitRule = Annotated[
    NormalInit | UniformInit | GlorotUniformInit | KaimingUniformInit | ConstantInit | EmbeddingRowsInit,
    Field(discriminator="distribution"),
]


EpochCount = Annotated[int, Field(gt=0, le=100_000)]


class Epochs(Strict):
    default: EpochCount
    per_task: dict[TaskName, EpochCount] = Field(default_factory=dict)


class Training(Strict):
    """The training recipe (docs/paper.md: the released code's settings, the paper's epochs)."""

    optimizer: Literal["adamw"] = "adamw"
    # Upper bounds refuse the absurd (a typo's 1e21 warm-up steps), far above any setting of the paper's.
    learning_rate: Annotated[float, Field(gt=0.0, le=10.0)]
    weight_decay: Annotated[float, Field(ge=0.0, le=10.0)] = 0.0
    adam_epsilon: Annotated[float, Field(gt=0.0, le=1.0)] = 1e-8
    lr_scheduler: Literal["linear"] = "linear"
    warmup_steps: Annotated[int, Field(ge=0, le=10_000_000)] = 500
    max_grad_norm: Annotated[float, Field(gt=0.0, le=1e6)] = 1.0
    batch_size: Annotated[int, Field(gt=0, le=1_000_000)]  # the global batch: one optimizer step, at any scale
    gradient_accumulation_steps: Annotated[int, Field(gt=0, le=100_000)] = 1  # memory only: same maths
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    # numpy takes 32-bit seeds only: a seed outside would be refused (or wrapped) deep inside a run
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)] = 42
    data_seed: Annotated[int, Field(ge=0, le=SEED_MAX)] = 42
    precision: Literal["fp32", "bf16"] = "fp32"
    source_length: Annotated[int, Field(gt=0, le=MAX_LENGTH)] = 128
    generation_max_length: Annotated[int, Field(gt=0, le=MAX_LENGTH)] = 20
    epochs: Epochs


class Tasks(Strict):
    names: Annotated[list[TaskName], Field(min_length=1)]
    prefix_task_name: bool  # prepend "<task> " to the source text (full FT, BitFit, prompts, SAID)
    low_resource_sizes: list[Annotated[int, Field(gt=0, le=MAX_TRAIN_SAMPLES)]] = Field(default_factory=list)

    @field_validator("names", "low_resource_sizes")
    @classmethod
    def _each_once(cls, values: list) -> list:
        """A task (or size) listed twice would be trained twice and counted twice in the averages."""
        repeated = sorted({str(value) for value in values if values.count(value) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once; list each once")
        return values


class PublishedScore(Strict):
    """A number the paper prints, with where it is printed; never invented."""

    task: str  # a task name, "glue" or "superglue" for averages
    metric: str
    value: float
    tolerance: Annotated[float, Field(ge=0.0)]
    source: str


_FidelityFields = create_model(
    "_FidelityFields",
    __base__=Strict,
    preset=(Position, "paper"),
    **{name: (Position | None, None) for name in BY_NAME},
)


class FidelitySection(_FidelityFields):
    """`fidelity:` — `paper` (default) or `released` for every quirk of `harness.spec.fidelity.QUIRKS`
    (`preset`), and any quirk set alone (`said_backward: released`). A plain string is the preset."""

    @model_validator(mode="before")
    @classmethod
    def _preset_shorthand(cls, data: Any) -> Any:
        return {"preset": data} if isinstance(data, str) else data

    def resolved(self) -> Fidelity:
        """Every quirk's position."""
        return Fidelity.from_section(self.model_dump())


class Spec(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    description: str
    paper: Paper
    method: MethodRef
    model: str  # a file in spec/models/ (without .yaml): the architecture the budget is counted on
    check_model: str = "t5_tiny"  # the (tiny, random) architecture `harness check` runs the invariants on
    trainable: Annotated[list[str], Field(min_length=1)]
    budget: Budget
    init: list[InitRule] = Field(default_factory=list)
    invariants: Annotated[dict[str, dict[str, Any] | None], Field(min_length=1)]
    training: Training
    tasks: Tasks
    published: list[PublishedScore] = Field(default_factory=list)
    fidelity: FidelitySection = Field(default_factory=FidelitySection)  # part of the recipe: which quirks run
