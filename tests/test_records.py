"""What `harness eval`, `predict`, `load` and `export` trust in a checkpoint's record (`harness.json`): the data
seed, the training-set cut, the prefix, the fidelity, the source and generation lengths, the batches and the
base model. Each is checked on a hand-written record against an independent reference (the split rebuilt
with `torch.randperm` here, the random backbone drawn here), without training anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import harness.train.checkpoint_eval as checkpoint_eval
from harness.data.toy import toy_rows
from harness.errors import ModelError
from harness.model.record import (
    ADAPTER_FILE,
    RECORD_FORMAT,
    CheckpointRecord,
    DataRecord,
    base_model_of,
    write_record,
)
from harness.spec.fidelity import PAPER
from harness.spec.loader import read_spec
from harness.spec.model_choice import load_model_file
from tests.conftest import SPEC_DIR
from tests.test_data import randperm

T5_TINY = load_model_file(SPEC_DIR / "models" / "t5_tiny.yaml")


def record(**data) -> CheckpointRecord:
    """A smoke compacter checkpoint's record; `data` changes its DataRecord fields."""
    resolved = read_spec(SPEC_DIR / "compacter.yaml").resolved
    fields = {
        "task": "rte", "origin": "smoke", "data_dir": None, "prefix_task_name": False, "data_seed": 42,
        "fidelity": PAPER.to_json(), "max_train_samples": None, "source_length": 48, "generation_max_length": 4,
        "eval_batch_size": 16, **data,
    }  # fmt: skip
    return CheckpointRecord(
        format=RECORD_FORMAT, harness_version="test", method="compacter", arguments=resolved["method"]["args"],
        trainable=list(resolved["trainable"]), spec="compacter", spec_hash="sha256:" + "0" * 64, model=T5_TINY,
        pretrained=None, random_seed=42, data=DataRecord(**fields),
    )  # fmt: skip


@pytest.fixture
def rte_files(tmp_path) -> Path:
    """DIR/rte/{train,validation}.jsonl: 40 and 12 toy rows, each row told apart by its sentence1."""
    rows = {"train": toy_rows("rte", "train", 40), "validation": toy_rows("rte", "validation", 12)}
    (tmp_path / "data" / "rte").mkdir(parents=True)
    for split, items in rows.items():
        for number, row in enumerate(items):
            row["sentence1"] = f"{split} row {number}. {row['sentence1']}"
        lines = "".join(json.dumps(row) + "\n" for row in items)
        (tmp_path / "data" / "rte" / f"{split}.jsonl").write_text(lines, encoding="utf-8")
    return tmp_path / "data"


def sentences(examples) -> list[str]:
    return [example.source.split("sentence1: ", 1)[1].split(".", 1)[0] for example in examples]


def test_eval_rebuilds_the_split_from_the_recorded_data_seed_and_training_cut(rte_files):
    # RTE halves its validation set: the test set is the second half of the seeded permutation of the 12 rows;
    # a cut training set is the first n rows of the seeded permutation of train
    data_dir = rte_files
    made = record(origin="files", data_dir=str(data_dir), data_seed=7, max_train_samples=5)
    data = checkpoint_eval.task_data(made, "rte", None, False, checkpoint_eval.recorded_fidelity(made))
    order = randperm(12, 7)
    assert order[6:] != randperm(12, 42)[6:]  # the seed decides which rows are tested
    assert sentences(data.examples("test")) == [f"validation row {i}" for i in order[6:]]
    assert sentences(data.examples("validation")) == [f"validation row {i}" for i in order[:6]]
    assert sentences(data.examples("train")) == [f"train row {i}" for i in randperm(40, 7)[:5]]
    assert all(example.source.startswith("sentence1: ") for example in data.examples("test"))


def test_eval_keeps_the_recorded_task_prefix(rte_files):
    data_dir = rte_files
    made = record(origin="files", data_dir=str(data_dir), prefix_task_name=True)
    data = checkpoint_eval.task_data(made, "rte", None, False, PAPER)
    assert all(example.source.startswith("rte sentence1: ") for example in data.examples("test"))


def test_eval_of_a_smoke_checkpoint_keeps_its_training_cut():
    from harness.data.smoke import smoke_task

    made = record(data_seed=3, max_train_samples=8)
    data = checkpoint_eval.task_data(made, "rte", None, False, PAPER)
    whole = smoke_task("rte", False, 3, None, PAPER).rows("train")  # the original order (RTE keeps train)
    assert data.rows("train") == [whole[i] for i in randperm(len(whole), 3)[:8]]


def test_eval_reads_the_recorded_fidelity():
    made = record(fidelity={**PAPER.to_json(), "stsb_target": "released"})
    assert checkpoint_eval.recorded_fidelity(made).released("stsb_target")
    assert not checkpoint_eval.recorded_fidelity(made).released("mnli_split")
    assert not checkpoint_eval.recorded_fidelity(made, ["stsb_target=paper"]).released("stsb_target")


def test_eval_generates_with_the_recorded_lengths_and_batches(tmp_path, monkeypatch):
    folder = tmp_path / "best"
    folder.mkdir()
    made = record(source_length=37, generation_max_length=9, eval_batch_size=5)
    write_record(folder, made)
    (folder / ADAPTER_FILE).write_bytes(b"")  # never read: the model is stubbed below
    seen = {}

    class Model:
        def to(self, device):
            return self

    class Dataset:
        def __init__(self, sources, targets, tokenizer, source_length):
            seen.update(sources=sources, source_length=source_length)
            self.targets = targets

    def predict_all(model, dataset, tokenizer, batch_size, max_length):
        seen.update(batch_size=batch_size, max_length=max_length)
        return list(dataset.targets)

    monkeypatch.setattr(checkpoint_eval, "load_recorded", lambda *args: (Model(), None))
    monkeypatch.setattr(checkpoint_eval, "TokenizedDataset", Dataset)
    monkeypatch.setattr(checkpoint_eval, "predict_all", predict_all)
    report, examples, _ = checkpoint_eval.evaluate(folder, split="test")
    assert (seen["source_length"], seen["batch_size"], seen["max_length"]) == (37, 5, 9)
    assert seen["sources"] == [example.source for example in examples]
    assert report["scores"]["average"] == 100.0


def test_a_smoke_backbone_is_drawn_again_from_the_training_seed_not_the_data_seed():
    from harness.model.backbone import build_t5

    made = record(data_seed=42).model_copy(update={"random_seed": 7})
    rebuilt = base_model_of(made, None).state_dict()
    drawn = build_t5(T5_TINY, device="cpu", seed=7).state_dict()
    other = build_t5(T5_TINY, device="cpu", seed=42).state_dict()
    name = "shared.weight"
    assert not torch.equal(drawn[name], other[name])
    assert rebuilt.keys() == drawn.keys() and all(torch.equal(rebuilt[k], drawn[k]) for k in drawn)


def test_a_base_model_passed_wins_over_the_recorded_one(tmp_path):
    config = {"model_type": "t5", "vocab_size": 512, "d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2,
              "num_heads": 2}  # fmt: skip
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps(config))
    made = record().model_copy(update={"pretrained": str(tmp_path / "recorded"), "random_seed": None})
    with pytest.raises(ModelError) as raised:
        base_model_of(made, str(tmp_path / "other"))
    assert raised.value.errors[0].startswith(f"{tmp_path / 'other'}: config.json: differs from t5_tiny in d_model")
