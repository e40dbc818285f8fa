"""Loading, the paper's splits, low-resource subsampling, bad input and the offline hub path.

Split membership is checked against `torch.randperm` under a generator seeded 42 called here directly,
on generated data whose `idx` column names each original row; sizes are written by hand (⌊N/2⌋).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from harness.cli import EXIT_BAD_INPUT, EXIT_OK, main
from harness.data.files import RawSplit
from harness.data.protocol import build, load_task, split_plan
from harness.data.toy import toy_rows, toy_tables, write_toy_dir
from harness.errors import DataError
from harness.spec.fidelity import Fidelity
from harness.spec.tasks import TASKS, get_task

REPO = Path(__file__).resolve().parent.parent
HALVED = [name for name, task in TASKS.items() if task.split_rule == "halve_validation"]
# original validation size -> (validation, test) = (⌊N/2⌋, N − ⌊N/2⌋), written out by hand
REAL_HALVES = {"cola": (521, 522), "mrpc": (204, 204), "stsb": (750, 750), "rte": (138, 139), "boolq": (1635, 1635),
               "cb": (28, 28), "copa": (50, 50), "multirc": (2424, 2424), "wic": (319, 319)}  # fmt: skip
# train − 1,000 held out, 1,000, the whole original validation (MNLI: validation_matched)
REAL_HOLDOUT = {"sst2": (66349, 1000, 872), "qqp": (362846, 1000, 40430), "mnli": (391702, 1000, 9815),
                "qnli": (103743, 1000, 5463), "record": (99730, 1000, 10000)}  # fmt: skip


def randperm(n: int, seed: int = 42) -> list[int]:
    """The paper's permutation, drawn here: torch.randperm under a CPU generator seeded `seed`."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def idx(data, split: str) -> list:
    return [row["idx"] if not isinstance(row["idx"], dict) else row["idx"]["answer"] for row in data.rows(split)]


def real_eval_sized(name: str, train: int = 8):
    task = get_task(name)
    sizes = {split: (train if split == "train" else task.sizes[split]) for split in task.splits}
    tables = toy_tables(task, sizes)
    return build(task, {s: [RawSplit(s, f"toy {s}", t)] for s, t in tables.items()}, "toy")


@pytest.mark.parametrize("name", HALVED)
def test_halved_validation_at_the_real_size(name):
    data = real_eval_sized(name)
    n = get_task(name).sizes["validation"]
    perm = randperm(n)
    assert (len(data.tables["validation"]), len(data.tables["test"])) == REAL_HALVES[name]
    assert idx(data, "validation") == perm[: n // 2]  # toy idx (MultiRC: answer idx) = row number
    assert idx(data, "test") == perm[n // 2 :]
    assert sorted(idx(data, "validation") + idx(data, "test")) == list(range(n))  # nothing dropped or repeated
    assert idx(data, "train") == list(range(8))  # the original train, in its order


@pytest.mark.parametrize("name", list(REAL_HOLDOUT))
def test_holdout_sizes_at_the_real_sizes(name):
    plan = split_plan(get_task(name), get_task(name).sizes)
    assert tuple(len(plan[s][1]) for s in ("train", "validation", "test")) == REAL_HOLDOUT[name]
    assert plan["validation"][0] == "train"
    assert plan["test"][0] == ("validation_matched" if name == "mnli" else "validation")


def test_holdout_membership_on_generated_data():
    task = get_task("sst2")
    tables = toy_tables(task, {"train": 3000, "validation": 872})
    data = build(task, {s: [RawSplit(s, s, t)] for s, t in tables.items()}, "toy")
    perm = randperm(3000)
    assert idx(data, "validation") == perm[:1000]
    assert idx(data, "train") == perm[1000:]
    assert idx(data, "test") == list(range(872))


def test_mnli_paper_default_and_released_option():
    sizes = get_task("mnli").sizes
    paper = split_plan(get_task("mnli"), sizes)
    released = split_plan(get_task("mnli"), sizes, fidelity=Fidelity.from_section({"mnli_split": "released"}))
    assert paper["test"] == ("validation_matched", list(range(9815)))
    assert released["validation"] == ("validation_mismatched", list(range(9832)))
    assert released["test"] == ("validation_matched", list(range(9815)))
    assert released["train"] == ("train", list(range(392702)))


@pytest.mark.parametrize("size", [100, 500, 1000, 2000, 4000])
def test_low_resource_uses_the_same_seeded_permutation(size):
    small = split_plan(get_task("boolq"), get_task("boolq").sizes, train_size=size)
    assert small["train"][1] == randperm(9427)[:size]
    large = split_plan(get_task("sst2"), {"train": 6000, "validation": 872}, train_size=size)
    assert large["train"][1] == randperm(6000)[1000 : 1000 + size]  # never one of the held-out 1,000
    assert large["validation"][1] == randperm(6000)[:1000]


def test_low_resource_larger_than_train_is_an_error():
    with pytest.raises(DataError, match="train_size 4000: train has 2490 rows"):
        split_plan(get_task("rte"), get_task("rte").sizes, train_size=4000)


def test_seed_changes_the_split_and_loading_is_deterministic():
    a, b = load_task("mrpc", toy=True), load_task("mrpc", toy=True)
    assert a.examples("validation") == b.examples("validation")
    assert idx(load_task("mrpc", toy=True, seed=7), "validation") != idx(a, "validation")


def test_toy_rows_are_deterministic_and_in_the_label_set():
    assert toy_rows("cb", "train", 20) == toy_rows("cb", "train", 20)
    assert toy_rows("cb", "train", 20) != toy_rows("cb", "validation", 20)
    assert {row["label"] for row in toy_rows("cb", "train", 60)} == {0, 1, 2}


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv", "tsv"])
def test_every_task_loads_from_a_local_folder_like_the_toy_data(tmp_path, fmt):
    for name in TASKS:
        if fmt == "tsv" and name == "record":  # ReCoRD passages hold newlines: no tsv
            with pytest.raises(ValueError, match="newlines"):
                write_toy_dir(name, tmp_path, fmt)
            continue
        write_toy_dir(name, tmp_path, fmt)
        local, toy = load_task(name, tmp_path), load_task(name, toy=True)
        for split in ("train", "validation", "test"):
            assert local.examples(split) == toy.examples(split), (name, split)


def test_hub_shard_names_and_a_folder_without_the_task_level(tmp_path):
    for split, table in toy_tables("rte").items():
        pq.write_table(table.slice(0, 20), tmp_path / f"{split}-00000-of-00002.parquet")
        pq.write_table(table.slice(20), tmp_path / f"{split}-00001-of-00002.parquet")
    assert load_task("rte", tmp_path).examples("test") == load_task("rte", toy=True).examples("test")


def test_prefix_task_name_and_record_train_expansion():
    data = load_task("record", toy=True, prefix_task_name=True)
    assert all(e.source.startswith("record query: ") for e in data.examples("train", 5))
    answers = sum(len(row["answers"]) for row in data.rows("train"))
    assert len(data.examples("train")) == data.sizes()["train"] == answers > len(data.tables["train"])
    assert len(data.examples("validation")) == len(data.tables["validation"])


# --- bad input: one line naming the file, the row and the column; exit 2 ---------------------------------


def write_rte(tmp_path: Path, mutate=None, fmt: str = "jsonl") -> Path:
    folder = write_toy_dir("rte", tmp_path, fmt)
    if mutate is not None:
        rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
        mutate(rows)
        (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def bad(tmp_path: Path, capsys, *extra: str) -> str:
    rc = main(["data", "rte", "--data-dir", str(tmp_path), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == EXIT_BAD_INPUT
    assert "Traceback" not in err
    return err


def test_label_outside_the_label_set(tmp_path, capsys):
    def mutate(rows):
        rows[5]["label"] = 2
        rows[9]["label"] = -1

    folder = write_rte(tmp_path, mutate)
    err = bad(tmp_path, capsys)
    assert err == f"{folder / 'train.jsonl'}: row 5: column label: 2 is not in the label set " + (
        "{0 (entailment), 1 (not_entailment)} (and 1 more rows)"
    )


def test_missing_column_and_null_text(tmp_path, capsys):
    def mutate(rows):
        for row in rows:
            del row["sentence2"]
        rows[3]["sentence1"] = None

    write_rte(tmp_path, mutate)
    lines = bad(tmp_path, capsys).splitlines()
    assert lines[0].endswith("train.jsonl: row 3: column sentence1: empty (null)")
    assert lines[1].endswith("train.jsonl: column sentence2: missing (the split has sentence1, label, idx)")


def test_missing_split_file_and_missing_folder(tmp_path, capsys):
    folder = write_rte(tmp_path)
    (folder / "validation.jsonl").unlink()
    assert bad(tmp_path, capsys) == f"{folder}: no file for split 'validation' (looked for validation.parquet, " + (
        "validation.jsonl, validation.csv, validation.tsv)"
    )
    assert main(["data", "rte", "--data-dir", str(tmp_path / "nope")]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip() == f"{tmp_path / 'nope'}: no such data folder"


@pytest.mark.parametrize("content", ["", "sentence1,sentence2,label,idx\n"])
def test_empty_file(tmp_path, capsys, content):
    folder = write_toy_dir("rte", tmp_path, "csv")
    (folder / "train.csv").write_text(content)
    err = bad(tmp_path, capsys)
    assert err.startswith(f"{folder / 'train.csv'}: ") and len(err.splitlines()) == 1
    assert "no rows" in err or "empty" in err.lower()


def test_unreadable_parquet_and_ambiguous_formats(tmp_path, capsys):
    folder = write_toy_dir("rte", tmp_path, "parquet")
    (folder / "train.parquet").write_bytes(b"not parquet")
    assert bad(tmp_path, capsys).startswith(f"{folder / 'train.parquet'}: cannot read as parquet: ")
    write_toy_dir("rte", tmp_path, "jsonl")
    assert "split 'train' is in more than one format (train.parquet, train.jsonl)" in bad(tmp_path, capsys)


def test_csv_label_text_and_task_specific_values(tmp_path, capsys):
    folder = write_toy_dir("rte", tmp_path, "csv")
    lines = (folder / "train.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 2)[0] + ",yes,2"  # row 2: label "yes"
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    assert bad(tmp_path, capsys).startswith(f"{folder / 'train.csv'}: row 2: column label: 'yes' is not in the label")
    with pytest.raises(DataError, match=r"row 0: column label: 7\.5 is not a score in \[0, 5\]"):
        build(get_task("stsb"), {"train": [RawSplit("train", "f", pa.Table.from_pylist(
            [dict(toy_rows("stsb", "train", 1)[0], label=7.5)]))]}, "x")  # fmt: skip
    with pytest.raises(DataError, match="row 0: column question: 'why' is neither 'cause' nor 'effect'"):
        build(get_task("copa"), {"train": [RawSplit("train", "f", pa.Table.from_pylist(
            [dict(toy_rows("copa", "train", 1)[0], question="why")]))]}, "x")  # fmt: skip
    with pytest.raises(DataError, match="row 0: column answers: no gold answers"):
        build(get_task("record"), {"train": [RawSplit("train", "f", pa.Table.from_pylist(
            [dict(toy_rows("record", "train", 1)[0], answers=[])]))]}, "x")  # fmt: skip


def test_bad_counts_are_exit_2(capsys):
    assert main(["data", "rte", "--toy", "--train-size", "0"]) == EXIT_BAD_INPUT
    assert main(["data", "rte", "--toy", "--train-size", "49"]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip().splitlines()[-1] == "rte: train_size 49: train has 48 rows to sample from"
    assert main(["data", "rtee", "--toy"]) == EXIT_BAD_INPUT
    assert "did you mean 'rte'" in capsys.readouterr().err


# --- the command and the hub ----------------------------------------------------------------------------


def test_data_command_json(capsys):
    assert main(["data", "mrpc", "--toy", "--split", "validation", "--limit", "2", "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["sizes"] == {"train": 48, "validation": 12, "test": 12}
    assert report["protocol"]["test"] == {"from": "validation", "rows": 12}
    assert len(report["examples"]) == 2
    assert report["examples"][0]["source"].startswith("sentence1: ")
    assert report["examples"][0]["target"] in ("0", "1")


def test_data_command_text_with_prefix(capsys):
    assert main(["data", "cola", "--toy", "--limit", "1", "--prefix-task-name"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "train           48 examples" in out and "[0] source: cola sentence: " in out


def test_offline_hub_fails_at_once_pointing_at_local_files(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(DataError) as error:
        load_task("rte")
    assert time.monotonic() - start < 20
    [line] = error.value.errors
    assert line.startswith("hub nyu-mll/glue (rte): offline") and "--data-dir DIR" in line


def test_unreachable_hub_fails_at_once(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    start = time.monotonic()
    with pytest.raises(DataError, match=r"http://127\.0\.0\.1:9 is unreachable .*--data-dir DIR"):
        load_task("boolq")
    assert time.monotonic() - start < 10


@pytest.mark.slow
def test_offline_cli_exit_2_in_a_fresh_process():
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    result = subprocess.run([sys.executable, "-m", "harness", "data", "cb"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == EXIT_BAD_INPUT
    assert len(result.stderr.strip().splitlines()) == 1 and "--data-dir" in result.stderr


def test_hub_path_reads_the_datasets_splits(monkeypatch):
    """The hub branch with `datasets.load_dataset` replaced by a DatasetDict of toy tables (no network)."""
    import datasets

    tables = toy_tables("mnli")
    calls = []

    def fake_load_dataset(repo, config):
        calls.append((repo, config))
        return datasets.DatasetDict({split: datasets.Dataset(table) for split, table in tables.items()})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    released = Fidelity.from_section({"mnli_split": "released"})
    data = load_task("mnli", fidelity=released)
    assert calls == [("nyu-mll/glue", "mnli")]
    assert data.origin == "hub nyu-mll/glue (mnli)"
    assert data.examples("validation") == load_task("mnli", toy=True, fidelity=released).examples("validation")
    assert data.plan["validation"][0] == "validation_mismatched"
