"""Task metrics on generated strings, ×100, with the task's `average` (the mean of its metrics).

`compute(task, predictions, targets, **grouping)`: predictions are the decoded generations, targets the
target strings of `harness.spec.tasks`. A prediction is stripped of surrounding whitespace and is otherwise
taken as generated: one that is not a valid label counts as wrong in every metric and never raises.

- accuracy: exact string match.
- f1 (binary, positive class "1"; MRPC, QQP, MultiRC): an invalid prediction is replaced by the opposite of
  its target, so it is a false negative or a false positive (the released code's `f1_score_with_invalid`).
- mcc (CoLA): Matthews correlation, invalid predictions replaced as for f1; constant predictions give 0.
- macro_f1 (CB): F1 averaged over the 3 classes; an invalid prediction is a miss for its target's class and
  a hit for no class. A class absent from both targets and predictions scores 0 (zero_division=0).
- pearson, spearman (STS-B): on floats; an unparsable or non-finite prediction is −1 (outside [0, 5], as the
  released code's `string_to_float`); an undefined correlation (constant input, < 2 examples) is 0.
- question_em (MultiRC): per question, 100 if every answer's prediction equals its target, else 0; the mean
  over questions. Needs `group=[...]`: one hashable question id per example (`Example.extra["group"]`).
- squad (ReCoRD): SQuAD-normalised exact match and token F1, each the maximum over the example's gold
  answers. Takes `answers=[[...], ...]` (`Example.extra["answers"]`); without it each target is the one answer.

At `fidelity.invalid_predictions: released` (the released code's metrics, metrics.py:18-46, 69-71): CoLA's MCC
is sklearn's on the raw strings, so an invalid prediction is a class of its own, and an STS-B prediction that
parses to nan or ±inf is kept (the correlation is then undefined: 0). CB's macro F1 is the released formula's
either way (`fbeta_score(targets, predictions, labels=range(3))` on strings: measured equal).

`harness.data.protocol.metric_inputs(task, examples)` builds the grouping keywords from processed examples.
"""

from __future__ import annotations

import collections
import math
import re
import string
import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from harness.spec.fidelity import PAPER, Fidelity
from harness.spec.tasks import Task, get_task

INVALID_FLOAT = -1.0


def _binary(predictions: list[str], targets: list[str]) -> tuple[list[int], list[int]]:
    """Ints with each invalid prediction replaced by the opposite of its target (always wrong)."""
    true = [int(t) for t in targets]
    pred = [int(p) if p in ("0", "1") else 1 - t for p, t in zip(predictions, true, strict=True)]
    return pred, true


def accuracy(predictions: list[str], targets: list[str], **_: Any) -> dict[str, float]:
    return {"accuracy": 100.0 * float(np.mean([p == t for p, t in zip(predictions, targets, strict=True)]))}


def f1(predictions: list[str], targets: list[str], **_: Any) -> dict[str, float]:
    from sklearn.metrics import f1_score

    pred, true = _binary(predictions, targets)
    return {"f1": 100.0 * float(f1_score(true, pred, pos_label=1, zero_division=0))}


def mcc(predictions: list[str], targets: list[str], fidelity: Fidelity = PAPER, **_: Any) -> dict[str, float]:
    from sklearn.metrics import matthews_corrcoef

    if fidelity.released("invalid_predictions"):  # the released code: invalid strings are classes of their own
        return {"mcc": 100.0 * _finite(matthews_corrcoef(targets, predictions))}
    pred, true = _binary(predictions, targets)
    return {"mcc": 100.0 * _finite(matthews_corrcoef(true, pred))}


def macro_f1(predictions: list[str], targets: list[str], task: Task, **_: Any) -> dict[str, float]:
    from sklearn.metrics import f1_score

    valid = task.label_targets
    true = [int(t) for t in targets]
    pred = [int(p) if p in valid else -1 for p in predictions]
    labels = list(range(len(valid)))
    return {"macro_f1": 100.0 * float(f1_score(true, pred, labels=labels, average="macro", zero_division=0))}


def _to_float(text: str, keep_non_finite: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        return INVALID_FLOAT
    return value if keep_non_finite or math.isfinite(value) else INVALID_FLOAT


def _finite(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else 0.0


def _correlation(name: str, predictions: list[str], targets: list[str], fidelity: Fidelity) -> dict[str, float]:
    from scipy import stats

    pred = [_to_float(p, fidelity.released("invalid_predictions")) for p in predictions]
    true = [float(t) for t in targets]
    if len(pred) < 2:
        return {name: 0.0}
    function = stats.pearsonr if name == "pearson" else stats.spearmanr
    return {name: 100.0 * _finite(function(true, pred)[0])}


def pearson(predictions: list[str], targets: list[str], fidelity: Fidelity = PAPER, **_: Any) -> dict[str, float]:
    return _correlation("pearson", predictions, targets, fidelity)


def spearman(predictions: list[str], targets: list[str], fidelity: Fidelity = PAPER, **_: Any) -> dict[str, float]:
    return _correlation("spearman", predictions, targets, fidelity)


def question_em(
    predictions: list[str], targets: list[str], group: Sequence[Hashable] | None = None, **_: Any
) -> dict[str, float]:
    if group is None:
        raise ValueError("multirc: compute() needs group=[question id per example] for the per-question exact match")
    if len(group) != len(targets):
        raise ValueError(f"multirc: {len(group)} group ids for {len(targets)} targets")
    exact: dict[Hashable, bool] = collections.defaultdict(lambda: True)
    for p, t, g in zip(predictions, targets, group, strict=True):
        exact[g] = exact[g] and p == t
    return {"em": 100.0 * float(np.mean(list(exact.values())))}


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles (a, an, the), single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def _token_f1(prediction: str, gold: str) -> float:
    pred, true = prediction.split(), gold.split()
    common = sum((collections.Counter(pred) & collections.Counter(true)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(true)
    return 2 * precision * recall / (precision + recall)


def squad(
    predictions: list[str], targets: list[str], answers: Sequence[Sequence[str]] | None = None, **_: Any
) -> dict[str, float]:
    golds = [[t] for t in targets] if answers is None else [list(a) for a in answers]
    if len(golds) != len(predictions):
        raise ValueError(f"record: {len(golds)} answer lists for {len(predictions)} predictions")
    em, f1_sum = 0.0, 0.0
    for prediction, gold in zip(predictions, golds, strict=True):
        p = normalize_answer(prediction)
        normed = [normalize_answer(g) for g in gold]
        em += max((float(p == g) for g in normed), default=0.0)
        f1_sum += max((_token_f1(p, g) for g in normed), default=0.0)
    return {"em": 100.0 * em / len(golds), "f1": 100.0 * f1_sum / len(golds)}


METRICS: dict[str, Callable[..., dict[str, float]]] = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": mcc,
    "macro_f1": macro_f1,
    "pearson": pearson,
    "spearman": spearman,
    "question_em": question_em,
    "squad": squad,
}
GROUPING = {"multirc": {"group"}, "record": {"answers"}}


def _check_targets(task: Task, targets: list[str]) -> None:
    """Targets come from our own data: a bad one is a caller's bug, reported by index."""
    if task.labels:
        valid = set(task.label_targets)
        bad = next((i for i, t in enumerate(targets) if t not in valid), None)
        if bad is not None:
            raise ValueError(f"{task.name}: target [{bad}] {targets[bad]!r} is not one of {sorted(valid)}")
    elif task.target == "stsb":
        bad = next((i for i, t in enumerate(targets) if not math.isfinite(_to_float(t)) or _to_float(t) < 0), None)
        if bad is not None:
            raise ValueError(f"{task.name}: target [{bad}] {targets[bad]!r} is not a score")


def compute(
    task: str | Task,
    predictions: Sequence[str],
    targets: Sequence[str],
    fidelity: Fidelity = PAPER,
    **grouping: Any,
) -> dict[str, float]:
    """The task's metrics ×100 and their mean as `average`. See the module docstring for each metric."""
    task = get_task(task)
    unknown = set(grouping) - GROUPING.get(task.name, set())
    if unknown:
        takes = ", ".join(sorted(GROUPING.get(task.name, ()))) or "no grouping keywords"
        raise ValueError(f"{task.name}: compute() got {', '.join(sorted(unknown))}; it takes {takes}")
    predictions = [str(p).strip() for p in predictions]
    targets = [str(t) for t in targets]
    if len(predictions) != len(targets):
        raise ValueError(f"{task.name}: {len(predictions)} predictions for {len(targets)} targets")
    if not targets:
        raise ValueError(f"{task.name}: no examples to score")
    _check_targets(task, targets)
    scores: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ill-defined cases are handled explicitly (0, as the released code)
        for name in task.metrics:
            scores.update(METRICS[name](predictions, targets, task=task, fidelity=fidelity, **grouping))
    scores["average"] = float(np.mean(list(scores.values())))
    return scores
