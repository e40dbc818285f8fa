"""Count a spec's trainable parameters from the model built on the meta device, never from a constant."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.model.build import build_method_model
from harness.spec.loader import LoadedSpec
from harness.spec.model_files import ModelFile


@dataclass(frozen=True)
class BudgetReport:
    method: str
    model: str
    trainable_params: int
    total_params: int  # every unique parameter of the adapted model
    base_params: int  # the unmodified T5: the paper's denominator
    trainable_percent: float  # 100 · trainable / base, as the paper reports it
    expected_trainable_params: int | None  # the spec's count, when counted on the spec's model
    published_percent: float | None
    count_ok: bool | None
    percent_ok: bool | None

    @property
    def ok(self) -> bool | None:
        checks = [c for c in (self.count_ok, self.percent_ok) if c is not None]
        return all(checks) if checks else None

    def to_json(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def decimals(value: float) -> int:
    """Digits after the point as the paper printed it: 0.073 -> 3, 0.83 -> 2."""
    text = repr(float(value))
    return len(text.split(".")[1]) if "." in text and "e" not in text else 6


def percent_matches(percent: float, published: float) -> bool:
    """The counted percentage, rounded as the paper rounds, equals the printed one."""
    places = decimals(published)
    return round(percent, places) == round(published, places)


def count_budget(loaded: LoadedSpec, model_file: ModelFile | None = None) -> BudgetReport:
    """Build the method on `model_file` (default: the spec's) on the meta device and count."""
    spec = loaded.spec
    model_file = model_file or loaded.model_file
    built = build_method_model(
        spec.method.name, loaded.resolved["method"]["args"], spec.trainable, model_file, device="meta"
    )
    trainable, total = built.trainable_params, built.total_params
    percent = 100.0 * trainable / built.base_params
    on_spec_model = model_file.name == spec.model
    expected = spec.budget.trainable_params if on_spec_model else None
    published = spec.budget.published_percent if on_spec_model else None
    return BudgetReport(
        method=spec.method.name,
        model=model_file.name,
        trainable_params=trainable,
        total_params=total,
        base_params=built.base_params,
        trainable_percent=percent,
        expected_trainable_params=expected,
        published_percent=published,
        count_ok=None if expected is None else trainable == expected,
        percent_ok=None if published is None else percent_matches(percent, published),
    )
