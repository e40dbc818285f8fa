"""Where the paper and the released code disagree, as named options: `fidelity: paper | released`.

The published numbers came from the authors' released code (rabeehk/compacter e123daa), not from the
paper's text. The harness follows the paper by default (`paper`); `released` reproduces every quirk of the
released code below; each quirk is one option that can be set alone for an ablation
(`--set fidelity.said_backward=released`). This module is data and plain functions (no torch): the data
protocol, the metrics, the method builders and the recipe read a run's positions from a `Fidelity`;
docs/fidelity.md's table is generated from `QUIRKS` (`python -m harness fidelity`), and a test checks it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Position = Literal["paper", "released"]
POSITIONS: tuple[Position, ...] = ("paper", "released")
RELEASED_CODE = "rabeehk/compacter e123daa"


@dataclass(frozen=True)
class Quirk:
    """One difference: what the paper says and the harness does by default, what the released code does, and
    the released code's lines that do it (`file:line` at e123daa)."""

    name: str
    subject: str
    paper: str
    released: str
    source: str
    tasks: tuple[str, ...] = ()  # the tasks whose data, score or recipe it changes; () for every task
    methods: tuple[str, ...] = ()  # the methods it changes; () for every method
    # a method argument it sets: (argument, value at paper, value at released), for `methods`
    argument: tuple[str, str, str] | None = None
    released_init: Mapping[str, Any] | None = None  # the init rule (spec `init:`) of the tensor at released

    def applies_to(self, method: str | None, task: str | None = None) -> bool:
        """Whether this quirk can change anything for `method` (None: the data and metrics alone, no method's
        quirk) and `task`, when given."""
        fits_method = not self.methods if method is None else (not self.methods or method in self.methods)
        return fits_method and (task is None or not self.tasks or task in self.tasks)

    def argument_value(self, position: Position) -> str:
        """The value this quirk gives its method argument at `position`."""
        assert self.argument is not None, self.name
        return self.argument[1 + POSITIONS.index(position)]


QUIRKS: tuple[Quirk, ...] = (
    Quirk(
        name="said_backward",
        subject="Intrinsic-SAID's gradient",
        paper="the exact gradient of θ_i⁰ + λ_i P_i(z)",
        released="each of the two Hadamard passes' backward × 1/√L_i, so z's gradient through tensor i × 1/L_i "
        "(2⁻⁹ … 2⁻²⁵ on t5-base: a reweighting across tensors, not one factor); λ's gradient exact",
        source="seq2seq/projections/intrinsic.py:123-139",
        methods=("intrinsic_said",),
        argument=("hadamard_backward", "exact", "scaled"),
    ),
    Quirk(
        name="prompt_init",
        subject="Prompt tuning-T's initial prompt",
        paper="copies of the pretrained vocabulary rows 0–99",
        released="rows 0–99 of the embedding as `_init_weights` draws it, N(0, 1), before the pretrained weights "
        "load: i.i.d. N(0, 1) entries",
        source="seq2seq/third_party/models/t5/modeling_t5.py:770-772, 1602-1605; seq2seq/run_seq2seq.py:333-343",
        methods=("prompt_tuning_tokens",),
        argument=("init_from", "vocabulary", "random_normal"),
        released_init=MappingProxyType({"distribution": "normal", "mean": 0.0, "std": 1.0}),
    ),
    Quirk(
        name="mnli_split",
        subject="MNLI's splits",
        paper="1,000 training rows held out as validation; validation_matched is the test set",
        released="validation_mismatched as validation, validation_matched as test, the whole train",
        source="seq2seq/data/tasks.py:28-31, 237-239",
        tasks=("mnli",),
    ),
    Quirk(
        name="mnli_format",
        subject="MNLI's input",
        paper="`premise: … hypothesis: …`",
        released="`premise: … hypothesis …` (no colon after hypothesis)",
        source="seq2seq/data/tasks.py:248-249",
        tasks=("mnli",),
    ),
    Quirk(
        name="copa_question",
        subject="COPA's input",
        paper="keeps `question: cause|effect`, which says which way to reason",
        released="drops the question",
        source="seq2seq/data/tasks.py:379-381",
        tasks=("copa",),
    ),
    Quirk(
        name="stsb_target",
        subject="STS-B's target",
        paper="the score on the 0.2 grid, `round(5·s)/5` with one decimal (T5's convention)",
        released="`np.round((s·5)/5, decimals=1)`: the score rounded to one decimal",
        source="seq2seq/data/utils.py:16, seq2seq/data/tasks.py:210",
        tasks=("stsb",),
    ),
    Quirk(
        name="record_evaluation",
        subject="ReCoRD's evaluation sets",
        paper="one example per query, scored against all its gold answers",
        released="one example per gold answer in validation and test too (each scored against all answers), "
        "so queries with several answers count more",
        source="seq2seq/data/tasks.py:537-543",
        tasks=("record",),
    ),
    Quirk(
        name="task_prefix",
        subject="the task-name prefix",
        paper="the task name (`boolq`), when the spec sets `prefix_task_name`",
        released="SuperGLUE's names are `superglue-boolq` …; ReCoRD's input always starts `record query:`",
        source="seq2seq/data/tasks.py:47-48, 312, 349, 367, 387, 419, 515, 534-536",
        tasks=("boolq", "cb", "copa", "multirc", "record", "wic"),
    ),
    Quirk(
        name="invalid_predictions",
        subject="invalid predictions in CoLA and STS-B",
        paper="CoLA: an invalid prediction is the opposite of its target (binary MCC); STS-B: a non-finite "
        "prediction is −1 like an unparsable one",
        released="CoLA: sklearn's MCC on the raw strings (an invalid prediction is a class of its own); STS-B: a "
        "parsed `nan`/`inf` is kept (the correlation is then undefined: 0)",
        source="seq2seq/metrics/metrics.py:18-46, 69-71, seq2seq/data/postprocessors.py:7-12",
        tasks=("cola", "stsb"),
    ),
    Quirk(
        name="rte_epochs",
        subject="RTE's epochs",
        paper="20, the paper's rule for sets under 10k training examples (RTE has 2,490)",
        released="3: the released scripts give 20 only to MRPC, CoLA and STS-B",
        source="seq2seq/scripts/compacter.sh:2-3",
        tasks=("rte",),
    ),
)
BY_NAME: Mapping[str, Quirk] = MappingProxyType({quirk.name: quirk for quirk in QUIRKS})
RELEASED_RTE_EPOCHS = 3


@dataclass(frozen=True)
class Fidelity:
    """Every quirk's position in one run (a spec's `fidelity:` section resolved: its preset, then what it sets)."""

    positions: Mapping[str, Position] = field(default_factory=lambda: MappingProxyType(dict.fromkeys(BY_NAME, "paper")))

    @classmethod
    def preset(cls, position: Position) -> Fidelity:
        return cls(MappingProxyType(dict.fromkeys(BY_NAME, position)))

    @classmethod
    def from_section(cls, section: Mapping[str, Any] | None) -> Fidelity:
        """From a spec's `fidelity:` mapping (`preset` and any quirk names), already validated."""
        section = dict(section or {})
        preset = section.pop("preset", "paper")
        return cls(MappingProxyType({name: section.get(name) or preset for name in BY_NAME}))

    def released(self, name: str) -> bool:
        return self.positions[name] == "released"

    def relevant(self, method: str | None, task: str | None = None) -> dict[str, Position]:
        """The positions of the quirks that can change this method (None: the data alone) on this task."""
        return {name: pos for name, pos in self.positions.items() if BY_NAME[name].applies_to(method, task)}

    def label(self, method: str | None = None, task: str | None = None) -> str:
        """`paper`, `released`, or `paper, released: a, b` (a mix), over the quirks that apply (all of them when
        neither method nor task is given)."""
        positions = self.positions if method is None and task is None else self.relevant(method, task)
        released = _released_in_a_mix(positions)
        return "paper, released: " + ", ".join(released) if released else next(iter(positions.values()), "paper")

    def mixed(self, method: str, task: str | None = None) -> list[str]:
        """The quirks that apply and are released while another that applies is not: [] unless a mix."""
        return _released_in_a_mix(self.relevant(method, task))

    def to_json(self) -> dict[str, Position]:
        return dict(self.positions)

    def task_epochs(self, task: str, epochs: int) -> int:
        """A task's epochs at these positions: `epochs` (the spec's), or at `rte_epochs: released` the released
        scripts' 3 for RTE."""
        return RELEASED_RTE_EPOCHS if task == "rte" and self.released("rte_epochs") else epochs


def _released_in_a_mix(positions: Mapping[str, Position]) -> list[str]:
    """The released names among `positions` when they are not all one position, else []."""
    if len(set(positions.values())) <= 1:
        return []
    return [name for name, pos in positions.items() if pos == "released"]


PAPER = Fidelity.preset("paper")
FIDELITY_ARGUMENT = "paper | released | NAME=paper|released"


def parse_arguments(values: list[str] | None, mnli_split: Position | None = None) -> list[tuple[str, Position]]:
    """`--fidelity` values (`paper`, `released`, `NAME=POSITION`), then `--mnli-split` when given, as (quirk
    name or "preset", position) in order: the one reading of these options by `run`, `data` and `eval`, so a
    value means the same, and is refused the same, in each. A ValueError (one line, with a did-you-mean) for
    an unknown name or a position that is neither paper nor released (`NAME=` included)."""
    from harness.errors import did_you_mean

    settings: list[tuple[str, Position]] = []
    for value in values or []:
        name, sep, position = value.partition("=")
        if not sep:
            name, position = "preset", value
        if name != "preset" and name not in BY_NAME:
            raise ValueError(f"{value!r}: no fidelity option {name!r}{did_you_mean(name, list(BY_NAME))}")
        if position not in POSITIONS:
            raise ValueError(
                f"{value!r}: fidelity.{name}: Input should be 'paper' or 'released', not {position!r}; "
                f"expected {FIDELITY_ARGUMENT}"
            )
        settings.append((name, position))
    if mnli_split is not None:  # after --fidelity: `--fidelity released --mnli-split paper` is the paper's split
        settings.append(("mnli_split", mnli_split))
    return settings


def with_arguments(base: Fidelity, values: list[str] | None, mnli_split: Position | None = None) -> Fidelity:
    """`base` changed by `--fidelity` values in order (a preset sets every quirk, `NAME=POSITION` one), then by
    `--mnli-split`. A ValueError (one line, with a did-you-mean) for anything else (`parse_arguments`)."""
    positions = dict(base.positions)
    for name, position in parse_arguments(values, mnli_split):
        positions.update(dict.fromkeys(list(BY_NAME) if name == "preset" else [name], position))
    return Fidelity(MappingProxyType(positions))


def in_spec(data: dict[str, Any], settings: list[tuple[str, Position]]) -> dict[str, Any]:
    """The spec data with `run`'s `--fidelity` settings (`parse_arguments`, already checked) written into its
    `fidelity:` section in order, as `--set fidelity.NAME=POSITION` would write them: before any `--set`, which
    wins. The shorthand `fidelity: released` is its preset; a section of another shape is left for the schema."""
    section = data.get("fidelity")
    section = {} if section is None else {"preset": section} if isinstance(section, str) else section
    if not settings or not isinstance(section, dict):
        return data
    return {**data, "fidelity": {**section, **dict(settings)}}


def section_errors(section: Mapping[str, Any], method: str, arguments: Mapping[str, Any]) -> list[str]:
    """`key.path: message` lines for what a validated `fidelity:` section asks that cannot hold: a quirk set
    explicitly for a method it cannot change, or a method argument that contradicts its quirk."""
    errors = []
    fidelity = Fidelity.from_section(section)
    for name, quirk in BY_NAME.items():
        if section.get(name) is not None and not quirk.applies_to(method):
            errors.append(f"fidelity.{name}: changes only {', '.join(quirk.methods)}, not {method}")
        if quirk.argument is not None and quirk.applies_to(method):
            argument, wanted = quirk.argument[0], quirk.argument_value(fidelity.positions[name])
            given = arguments.get(argument)
            if given is not None and given != wanted:
                errors.append(
                    f"method.args.{argument}: {given!r} contradicts fidelity.{name}: {fidelity.positions[name]} "
                    f"(which sets {wanted!r}); set one of them"
                )
    return errors


def apply_to_spec(data: dict[str, Any], fidelity: Fidelity) -> dict[str, Any]:
    """The spec data with the method arguments and init rules the quirks set for its method."""
    method = (data.get("method") or {}).get("name")
    args = dict((data.get("method") or {}).get("args") or {})
    init = list(data.get("init") or [])
    for name, quirk in BY_NAME.items():
        if quirk.argument is None or not quirk.applies_to(method):
            continue
        args[quirk.argument[0]] = quirk.argument_value(fidelity.positions[name])
        if quirk.released_init is not None and fidelity.released(name):
            trainable = f"{method}.*"
            init = [
                {"params": rule["params"], **quirk.released_init} if _matches(rule, trainable) else rule
                for rule in init
            ]
    return {**data, "method": {**data["method"], "args": args}, "init": init}


def _matches(rule: Any, pattern: str) -> bool:
    return (
        isinstance(rule, dict) and isinstance(rule.get("params"), str) and fnmatch.fnmatchcase(rule["params"], pattern)
    )


def table_markdown() -> str:
    """docs/fidelity.md's table of quirks: option, the paper's (default) position, the released one, the source."""
    lines = [
        f"| option | subject | `paper` (default) | `released` | {RELEASED_CODE} |",
        "|---|---|---|---|---|",
    ]
    for quirk in QUIRKS:
        lines.append(f"| `{quirk.name}` | {quirk.subject} | {quirk.paper} | {quirk.released} | `{quirk.source}` |")
    return "\n".join(lines) + "\n"
