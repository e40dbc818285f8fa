"""Hostile input to specs, `--set`, model configs, data folders and the options of validate, data, run's
fidelity and the benchmarks: each is one line on stderr naming the file, key or option and what was expected,
exit 2, no traceback, and nothing written, changed or removed (`one_line_unchanged`), never a hang (a named
pipe is refused, not read) nor a crash (JSON nested past Arrow's recursion is measured, not parsed).

Specs are derived from spec/compacter_pp.yaml by one change and checked with `validate`; model files and
config.json folders through `validate` and `budget --model`; data folders with `data TASK --data-dir`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from harness.cli import EXIT_OK, main
from harness.data.toy import toy_rows
from harness.errors import OptionError, SpecError
from harness.inputs import MAX_JSON_DEPTH
from harness.limits import SEED_MAX
from harness.spec.model_choice import load_model_file
from tests.conftest import SPEC_DIR
from tests.test_bad_inputs import SPEC, csv_text, jsonl, one_line, one_line_unchanged, replacing, setting, text

PROG = "python -m harness"
DEEP = MAX_JSON_DEPTH * 2  # nests past the bound, yet within json.dumps' recursion
CRASHING_DEPTH = 100_000  # Arrow's JSON parser and Python's json.loads both exhaust their stack on this


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def tiny_architecture(**changes: Any) -> dict[str, Any]:
    return {**load_model_file(SPEC_DIR / "models" / "t5_tiny.yaml").architecture.model_dump(), **changes}


def model_file_text(**changes: Any) -> str:
    return yaml.safe_dump({"name": "t5_bad", "description": "a changed t5_tiny", "source": "a test",
                           "architecture": tiny_architecture(**changes)}, sort_keys=False)  # fmt: skip


def spec_folder(tmp_path: Path) -> Path:
    """A copy of spec/'s defaults and model files (so a test may add a model file), nothing else."""
    folder = tmp_path / "spec"
    folder.mkdir()
    shutil.copytree(SPEC_DIR / "_defaults", folder / "_defaults")
    shutil.copytree(SPEC_DIR / "models", folder / "models")
    return folder


# --- specs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecCase:
    id: str
    make: Any  # () -> the spec's text
    key: str  # what the line names after the file
    expected: str
    model_file: str | None = None  # models/t5_bad.yaml's text; "fifo": a named pipe there


BILLION_LAUGHS = "l0: &l0 [a, a, a, a, a, a, a, a, a]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)
)  # 9**9 values from 9 lines: validation would walk them for hours
TINY_BAD = setting("model", "t5_bad")

# one case a line or two: the table reads better unwrapped
# fmt: off
SPEC_CASES = [
    # seeds: numpy takes 0 … 2**32 - 1
    SpecCase("negative seed", setting("training.seed", -1), "training.seed", "greater than or equal to 0"),
    SpecCase("seed 2**32", setting("training.seed", SEED_MAX + 1), "training.seed",
             f"less than or equal to {SEED_MAX}"),
    SpecCase("data seed 2**40", setting("training.data_seed", 2**40), "training.data_seed", "less than or equal"),
    SpecCase("seed of 5,000 digits", replacing("learning_rate: 3.0e-3", "learning_rate: 3.0e-3\n  seed: " + "9" * 5000),
             "line", "invalid YAML: an integer of 5,000 characters"),
    SpecCase("a billion laughs", text(BILLION_LAUGHS), "line 2", "invalid YAML: an alias (*l0); write the value out"),
    SpecCase("low-resource size 10**12", setting("tasks.low_resource_sizes", [10**12]), "tasks.low_resource_sizes[0]",
             "less than or equal to 100000000"),
    SpecCase("a task twice", setting("tasks.names", ["rte", "mrpc", "rte"]), "tasks.names",
             "rte listed more than once; list each once"),
    SpecCase("a low-resource size twice", setting("tasks.low_resource_sizes", [100, 100]), "tasks.low_resource_sizes",
             "100 listed more than once"),
    SpecCase("accumulation not dividing the batch", setting("training.gradient_accumulation_steps", 3),
             "training.gradient_accumulation_steps",
             "3 does not split training.batch_size 100 into equal micro-batches; choose a divisor of 100: 1, 2, 4, 5, "
             "10, 20, 25, 50, 100"),
    SpecCase("defaults a path", setting("defaults", "../../etc/paper"), "defaults",
             "'../../etc/paper' is a path; expected the name of a file in _defaults/"),
    # invariant options: strict like the rest of the spec, and bounded
    SpecCase("KS alpha quoted", setting("invariants.init_distribution", {"alpha": "0.01"}),
             "invariants.init_distribution.alpha", "Input should be a valid number"),
    SpecCase("tolerance quoted", replacing("max_relative_diff: 1.0e-5", 'max_relative_diff: "1.0e-5"'),
             "invariants.near_identity_at_init.max_relative_diff", "Input should be a valid number"),
    SpecCase("tolerance 5", replacing("max_relative_diff: 1.0e-5", "max_relative_diff: 5"),
             "invariants.near_identity_at_init.max_relative_diff", "less than or equal to 1"),
    SpecCase("steps a boolean", setting("invariants.only_trainable_change", {"steps": True}),
             "invariants.only_trainable_change.steps", "Input should be a valid integer"),
    SpecCase("10**9 steps", setting("invariants.only_trainable_change", {"steps": 10**9}),
             "invariants.only_trainable_change.steps", "less than or equal to 1000"),
    SpecCase("learning rate quoted", setting("invariants.only_trainable_change", {"learning_rate": "0.01"}),
             "invariants.only_trainable_change.learning_rate", "Input should be a valid number"),
    SpecCase("block -1", setting("invariants.placement", {"sublayers": ["feed_forward"], "encoder_blocks": [-1]}),
             "invariants.placement.encoder_blocks[0]", "greater than or equal to 0"),
    # invariants of other methods
    SpecCase("a prompt invariant on Compacter++", setting("invariants.prompt_only", None), "invariants.prompt_only",
             "applies only to prompt_tuning_random, prompt_tuning_tokens (it needs a prompt (the argument "
             "prompt_length)), not compacter_pp"),
    SpecCase("a prompt's input on Compacter++", setting("invariants.prompt_extends_input", None),
             "invariants.prompt_extends_input", "applies only to prompt_tuning_random, prompt_tuning_tokens"),
    SpecCase("an Intrinsic-SAID invariant on Compacter++", setting("invariants.fwht", None), "invariants.fwht",
             "applies only to intrinsic_said"),
    SpecCase("SAID's λ on Compacter++", setting("invariants.lambda_coupling", None), "invariants.lambda_coupling",
             "applies only to intrinsic_said (it needs Intrinsic-SAID's λ), not compacter_pp"),
    SpecCase("low rank on Compacter++", setting("invariants.rank_at_most", None), "invariants.rank_at_most",
             "applies only to low_rank_adapter"),
    SpecCase("merged export of adapters", setting("invariants.merged_export", None), "invariants.merged_export",
             "applies only to full_finetune, intrinsic_said"),
    SpecCase("AdapterDrop's skips on Compacter++", setting("invariants.skip_equals_absent", {"encoder": [1]}),
             "invariants.skip_equals_absent", "applies only to adapter_drop"),
    SpecCase("SAID's tensor list on Compacter++", setting("invariants.counted_once", {"reparameterised_tensors": True}),
             "invariants.counted_once.reparameterised_tensors", "applies only to intrinsic_said"),
    # model files: bounds generous for T5-XXL, refusing the absurd, naming the key
    SpecCase("d_model 10**9", TINY_BAD, "model", "architecture.d_model: Input should be less than or equal to 16384",
             model_file_text(d_model=10**9)),
    SpecCase("10**6 layers", TINY_BAD, "model", "architecture.num_layers: Input should be less than or equal to 256",
             model_file_text(num_layers=10**6)),
    SpecCase("vocabulary 10**12", TINY_BAD, "model", "architecture.vocab_size: Input should be less than or equal to",
             model_file_text(vocab_size=10**12)),
    SpecCase("d_ff 10**7", TINY_BAD, "model", "architecture.d_ff: Input should be less than or equal to 262144",
             model_file_text(d_ff=10**7)),
    SpecCase("every size at its bound", TINY_BAD, "model", "parameters (vocab_size, d_model, d_kv, d_ff, num_heads, "
             "num_layers, num_decoder_layers); a T5-family model here has at most 1e+11",
             model_file_text(d_model=16_384, d_ff=262_144, num_layers=256, num_decoder_layers=256)),
    SpecCase("pad id outside the vocabulary", TINY_BAD, "model",
             "architecture: pad_token_id 512 is not below vocab_size 512", model_file_text(pad_token_id=512)),
    SpecCase("NaN epsilon", TINY_BAD, "model", "architecture.layer_norm_epsilon: Input should be a finite number",
             model_file_text().replace("layer_norm_epsilon: 1.0e-06", "layer_norm_epsilon: .nan")),
    SpecCase("a model file that is a pipe", TINY_BAD, "model",
             "(top level): not a regular file (a pipe, socket or device); expected a YAML file", "fifo"),
]
# fmt: on


@pytest.mark.parametrize("case", SPEC_CASES, ids=[case.id for case in SPEC_CASES])
def test_a_hostile_spec_is_one_line_and_nothing_changes(tmp_path, capsys, case):
    folder = spec_folder(tmp_path)
    path = folder / "compacter_pp.yaml"
    path.write_text(case.make(), encoding="utf-8")
    bad_model = folder / "models" / "t5_bad.yaml"
    if case.model_file == "fifo":
        os.mkfifo(bad_model)
    elif case.model_file is not None:
        bad_model.write_text(case.model_file, encoding="utf-8")
    line = one_line_unchanged(capsys, [folder], "validate", path)
    where = f"{bad_model}: " if case.model_file is not None else f"{path}: {case.key}"
    assert line.startswith(where), line
    assert case.expected in line, line


def test_a_spec_that_is_a_named_pipe_is_refused_not_read(tmp_path, capsys):
    pipe = tmp_path / "compacter_pp.yaml"
    os.mkfifo(pipe)
    line = one_line_unchanged(capsys, [tmp_path], "validate", pipe)
    assert line == f"{pipe}: (top level): not a regular file (a pipe, socket or device); expected a YAML file"


def test_every_method_an_invariant_names_is_registered():
    from harness.spec.invariant_catalog import DECLARED
    from impl.registry import names

    for name, declared in DECLARED.items():
        assert set(declared.methods) <= set(names()), name
        assert not declared.methods or declared.needs, name
        for methods, needs in declared.option_methods.values():
            assert set(methods) <= set(names()) and needs, name


# --- --set -------------------------------------------------------------------------------------------------

# fmt: off
SET_CASES = [
    ("training..seed=1", "--set training..seed: an empty part in the key; expected KEY.PATH=VALUE (a.b.c)"),
    (".training.seed=1", "--set .training.seed: an empty part in the key"),
    ("training.seed.=1", "--set training.seed.: an empty part in the key"),
    ("trainable.0=x", "--set trainable.0: trainable is not a mapping (a list); set it whole: --set trainable=VALUE"),
    ("tasks.names.rte=1", "--set tasks.names.rte: names is not a mapping (a list); set it whole: --set "
                          "tasks.names=VALUE"),
    ("training.seed=" + deep_json(60), "--set training.seed: nested 61 levels deep (key and value); a spec nests at"
                                       " most 50"),
    ("training.seed=" + deep_json(CRASHING_DEPTH),
     "--set training.seed: a value of 200,000 characters; at most 100,000"),
    (".".join(["k"] * 60) + "=1", "nested 60 levels deep (key and value); a spec nests at most 50"),
    ("description=" + "x" * 200_000, "--set description: a value of 200,000 characters; at most 100,000"),
    ("training.seed=" + "9" * 5000, "--set training.seed: invalid value '99999"),
    ("tasks.names=[&a rte, *a]", "--set tasks.names: invalid value '[&a rte, *a]': an alias (*a); write the value out"),
    ("training.seed=-1", "training.seed: Input should be greater than or equal to 0"),
    ("training.data_seed=4294967296", "training.data_seed: Input should be less than or equal to 4294967295"),
    ("k" * 100_000 + "=1", "a key of 100,000 characters; no spec key path is longer than 200"),
]
# fmt: on


@pytest.mark.parametrize(("override", "expected"), SET_CASES, ids=[o[:30] for o, _ in SET_CASES])
def test_a_hostile_set_is_one_line_and_nothing_changes(tmp_path, capsys, override, expected):
    folder = spec_folder(tmp_path)
    path = folder / "compacter_pp.yaml"
    path.write_text(SPEC.read_text(encoding="utf-8"), encoding="utf-8")
    line = one_line_unchanged(capsys, [folder], "budget", path, "--set", override)
    assert line.startswith(f"{path}: "), line
    assert expected in line, line
    assert len(line) < 400, "the line quotes the whole hostile value"


# LoRA's and (IA)³'s arguments: each refusal names the argument and what it accepts
REFERENCE_CASES = [
    ("lora", "method.args.targets=[wi]", "--model=t5_v1_1_base",
     "method.args.targets: this model has no projection named ['wi'] (a gated feed-forward has wi_0, wi_1)"),
    ("lora", "method.args.targets=[x]", None, "method.args.targets[0]: Input should be 'q', 'k', 'v', 'o', 'wi'"),
    ("lora", "method.args.targets=[]", None, "method.args.targets: must name at least one projection"),
    ("lora", "method.args.rank=0", None, "method.args.rank: must be a positive integer, got 0"),
    ("lora", "method.args.alpha=-8", None, "method.args.alpha: must be positive, got -8"),
    ("ia3", "method.args.scale_inputs_of=[o]", None,
     "method.args.scale_inputs_of: ['o'] are not among the targets ['k', 'v', 'wo']"),
    ("ia3", "invariants.placement.beside=[wo]", None,
     "invariants.placement: 'wo' is in both inputs_of and beside: a module is placed one way"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "override", "model", "expected"), REFERENCE_CASES,
                         ids=[f"{c[0]}-{c[1][12:40]}" for c in REFERENCE_CASES])  # fmt: skip
def test_a_bad_reference_method_argument_is_one_line(tmp_path, capsys, spec, override, model, expected):
    folder = spec_folder(tmp_path)
    path = folder / f"{spec}.yaml"
    path.write_text((SPEC.parent / f"{spec}.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    line = one_line_unchanged(capsys, [folder], "budget", path, "--set", override, *([model] if model else []))
    assert line.startswith(f"{path}: "), line
    assert expected in line, line


# --- config.json folders, safetensors headers ----------------------------------------------------------------

TINY_CONFIG = {"model_type": "t5", **tiny_architecture()}

# fmt: off
CONFIG_CASES = [
    ("config nested too deeply", {"config.json": '{"a": ' + deep_json(CRASHING_DEPTH) + "}"}, "config.json",
     "(top level): nested too deeply; a config.json nests at most 64 levels"),
    ("config nested 100 levels", {"config.json": json.dumps({**TINY_CONFIG, "x": json.loads(deep_json(DEEP))})},
     "config.json", f"(top level): nested {DEEP + 1} levels deep; a config.json nests at most 64"),
    ("config not UTF-8", {"config.json": b'{"model_type": "t5\xff"}'}, "config.json",
     "(top level): not UTF-8 text (byte 0xff on line 1); expected the config.json as UTF-8 text"),
    ("config NaN epsilon", {"config.json": json.dumps(TINY_CONFIG).replace('"layer_norm_epsilon": 1e-06',
                                                                           '"layer_norm_epsilon": NaN')},
     "config.json", "layer_norm_epsilon: not a finite number (NaN or Infinity); a config.json holds finite numbers"),
    ("config infinite d_model", {"config.json": json.dumps(TINY_CONFIG).replace('"d_model": 384',
                                                                                '"d_model": Infinity')},
     "config.json", "d_model: not a finite number (NaN or Infinity)"),
    ("config a pipe", {"config.json": "fifo"}, "config.json",
     "(top level): not a regular file (a pipe, socket or device); expected a config.json"),
    ("config d_model 10**9", {"config.json": json.dumps({**TINY_CONFIG, "d_model": 10**9})}, "config.json",
     "d_model: Input should be less than or equal to 16384"),
    ("config 10**6 layers", {"config.json": json.dumps({**TINY_CONFIG, "num_layers": 10**6})}, "config.json",
     "num_layers: Input should be less than or equal to 256"),
    ("index nested too deeply", {"config.json": json.dumps(TINY_CONFIG),
                                 "model.safetensors.index.json": '{"weight_map": ' + deep_json(CRASHING_DEPTH) + "}"},
     "model.safetensors.index.json", "(top level): nested too deeply"),
    ("index a pipe", {"config.json": json.dumps(TINY_CONFIG), "model.safetensors.index.json": "fifo"},
     "model.safetensors.index.json", "(top level): not a regular file"),
    ("safetensors header nested too deeply",
     {"config.json": json.dumps(TINY_CONFIG),
      "model.safetensors": len(deep_json(CRASHING_DEPTH)).to_bytes(8, "little") + deep_json(CRASHING_DEPTH).encode()},
     "model.safetensors", "(top level): nested too deeply; a safetensors header nests at most 64 levels (not a "
                          "safetensors file: unreadable header)"),
    ("safetensors header not UTF-8", {"config.json": json.dumps(TINY_CONFIG),
                                      "model.safetensors": (4).to_bytes(8, "little") + b'{"\xff"'},
     "model.safetensors", "(top level): not UTF-8 text (byte 0xff on line 1)"),
    ("safetensors a pipe", {"config.json": json.dumps(TINY_CONFIG), "model.safetensors": "fifo"},
     "model.safetensors", "(top level): not a regular file (a pipe, socket or device); expected a safetensors file"),
]
# fmt: on


def write_files(folder: Path, files: dict[str, str | bytes]) -> None:
    """Each file with its content; "fifo" makes a named pipe (reading it would block), "link:T" a link to T."""
    for file_name, content in files.items():
        if content == "fifo":
            os.mkfifo(folder / file_name)
        elif isinstance(content, str) and content.startswith("link:"):
            (folder / file_name).symlink_to(content.removeprefix("link:"))
        else:
            (folder / file_name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


@pytest.mark.parametrize(("name", "files", "file", "expected"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_a_hostile_model_folder_is_one_line_and_nothing_changes(tmp_path, capsys, name, files, file, expected):
    folder = tmp_path / "model"
    folder.mkdir()
    write_files(folder, files)
    line = one_line_unchanged(capsys, [folder], "budget", SPEC, "--model", folder)
    assert line.startswith(f"{folder / file}: {expected}"), line


# --- data folders --------------------------------------------------------------------------------------------

TRAIN, VALIDATION = toy_rows("rte", "train", 20), toy_rows("rte", "validation", 10)
RECORD_VALIDATION = jsonl(toy_rows("record", "validation", 10))


def record_csv(entities: str) -> str:
    """ReCoRD's train split as csv whose row 7 holds the text `entities` (quoted) as its JSON cell."""
    rows = [{**row, "entities": "PLACEHOLDER"} if index == 7 else row
            for index, row in enumerate(toy_rows("record", "train", 20))]  # fmt: skip
    return csv_text(rows).replace("PLACEHOLDER", '"' + entities.replace('"', '""') + '"')


def nested_parquet(depth: int) -> bytes:
    """A parquet file whose one column is `depth` lists deep (Arrow's reader refuses past 100 schema levels)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kind, value = pa.int64(), 1
    for _ in range(depth):
        kind, value = pa.list_(kind), [value]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"sentence1": pa.array([value], type=kind)}), sink)
    return sink.getvalue().to_pybytes()


# fmt: off
DATA_CASES = [
    ("a dangling link as split file", "rte", {"train.jsonl": "link:gone.jsonl", "validation.jsonl": jsonl(VALIDATION)},
     "{dir}/train.jsonl: cannot read as jsonl: a dangling symbolic link (to gone.jsonl)"),
    ("a named pipe as split file", "rte", {"train.jsonl": "fifo", "validation.jsonl": jsonl(VALIDATION)},
     "{dir}/train.jsonl: cannot read as jsonl: not a regular file (a pipe, socket or device); expected a split file"),
    ("a named pipe as csv", "rte", {"train.csv": "fifo", "validation.jsonl": jsonl(VALIDATION)},
     "{dir}/train.csv: cannot read as csv: not a regular file"),
    ("a named pipe as parquet", "rte", {"train.parquet": "fifo", "validation.jsonl": jsonl(VALIDATION)},
     "{dir}/train.parquet: cannot read as parquet: not a regular file"),
    ("a row nested past Arrow's stack", "rte",
     {"train.jsonl": jsonl(TRAIN[:3]) + '{"sentence1": ' + deep_json(CRASHING_DEPTH) + "}\n" + jsonl(TRAIN[3:]),
      "validation.jsonl": jsonl(VALIDATION)},
     "{dir}/train.jsonl: row 3 (line 4): nested more than 64 levels; a row nests at most that"),
    ("a nested row after blank lines", "rte",
     {"train.jsonl": "\n\n" + jsonl(TRAIN[:5]) + json.dumps({**TRAIN[5], "idx": json.loads(deep_json(DEEP))}) + "\n",
      "validation.jsonl": jsonl(VALIDATION)},
     "{dir}/train.jsonl: row 5 (line 8): nested more than 64 levels"),
    ("a deep JSON cell in csv", "record",
     {"train.csv": record_csv(deep_json(DEEP)), "validation.jsonl": RECORD_VALIDATION},
     f"{{dir}}/train.csv: row 7: column entities: nested {DEEP} levels deep; a JSON cell of column entities nests at "
     "most 64"),
    ("a JSON cell past Python's stack", "record",
     {"train.csv": record_csv(deep_json(CRASHING_DEPTH)), "validation.jsonl": RECORD_VALIDATION},
     "{dir}/train.csv: row 7: column entities: nested too deeply"),
    ("NaN in a JSON cell", "record", {"train.csv": record_csv('["a", NaN]'), "validation.jsonl": RECORD_VALIDATION},
     "{dir}/train.csv: row 7: column entities: [1]: not a finite number (NaN or Infinity)"),
    ("a number among entity lists", "record", {"train.csv": record_csv("5"), "validation.jsonl": RECORD_VALIDATION},
     "{dir}/train.csv: row 7: column entities: expected a list of strings, got 5"),
    ("a csv row too long after a 200 kB field", "rte",
     {"train.csv": csv_text([{**TRAIN[0], "sentence1": "x" * 200_000}, *TRAIN[1:]]) + '"a","b",0,1,2\n',
      "validation.jsonl": jsonl(VALIDATION)},
     "{dir}/train.csv: cannot read as csv: CSV parse error: Expected 4 columns, got 5"),
    ("a parquet column nested 60 lists deep", "rte", {"train.parquet": nested_parquet(60),
                                                     "validation.jsonl": jsonl(VALIDATION)},
     "{dir}/train.parquet: cannot read as parquet: Parquet schema too deeply nested"),
    ("a split the paper's rule leaves empty", "rte",
     {"train.jsonl": jsonl(TRAIN), "validation.jsonl": jsonl(VALIDATION[:1])},
     "{root}: rte: the validation split is empty after the paper's split rule (train 20, validation 0, test 1); "
     "give the task more rows"),
]
# fmt: on


@pytest.mark.parametrize(("name", "task", "files", "expected"), DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_a_hostile_data_folder_is_one_line_and_nothing_changes(tmp_path, capsys, name, task, files, expected):
    folder = tmp_path / task
    folder.mkdir()
    write_files(folder, files)
    line = one_line_unchanged(capsys, [tmp_path], "data", task, "--data-dir", tmp_path)
    assert line.startswith(expected.format(dir=folder, root=tmp_path)), line


def test_data_refuses_an_empty_split_with_the_line_run_refuses_it_with(tmp_path, capsys):
    folder = tmp_path / "rte"
    folder.mkdir()
    (folder / "train.jsonl").write_text(jsonl(TRAIN), encoding="utf-8")
    (folder / "validation.jsonl").write_text(jsonl(VALIDATION[:1]), encoding="utf-8")
    data = one_line_unchanged(capsys, [tmp_path], "data", "rte", "--data-dir", tmp_path)
    run = one_line_unchanged(capsys, [tmp_path], "run", SPEC, "--tasks", "rte", "--data-dir", tmp_path,
                             "--deepspeed", "none", "--output-dir", tmp_path / "o")  # fmt: skip
    assert data == run and "split is empty after the paper's split rule" in run


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_row_longer_than_arrows_block_is_read(tmp_path, capsys, fmt):
    folder = tmp_path / "rte"
    folder.mkdir()
    rows = [{**TRAIN[0], "sentence1": "long " * 600_000}, *TRAIN[1:]]  # 3 MB: three of Arrow's default blocks
    (folder / f"train.{fmt}").write_text(jsonl(rows) if fmt == "jsonl" else csv_text(rows), encoding="utf-8")
    (folder / "validation.jsonl").write_text(jsonl(VALIDATION), encoding="utf-8")
    assert main(["data", "rte", "--data-dir", str(tmp_path), "--limit", "0", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["sizes"]["train"] == len(TRAIN)


def test_brackets_inside_text_are_not_nesting(tmp_path, capsys):
    folder = tmp_path / "rte"
    folder.mkdir()
    rows = [{**TRAIN[0], "sentence1": '[{"' * 200 + '\\"'}, *TRAIN[1:]]  # text that looks deep, escapes and all
    (folder / "train.jsonl").write_text(jsonl(rows), encoding="utf-8")
    (folder / "validation.jsonl").write_text(jsonl(VALIDATION), encoding="utf-8")
    assert main(["data", "rte", "--data-dir", str(tmp_path), "--limit", "0", "--json"]) == EXIT_OK, capsys.readouterr()


# --- options: data, validate, the fidelity options of run, data and eval ------------------------------------

# fmt: off
OPTION_CASES = [
    (("data", "rte", "--toy", "--seed", "-1"), f"{PROG} data: argument --seed: seed -1 out of range: expected an "
                                               f"integer in 0..{SEED_MAX}"),
    (("data", "rte", "--toy", "--seed", str(2**32)), f"{PROG} data: argument --seed: seed {2**32} out of range"),
    (("data", "rte", "--toy", "--seed", "4e2"), f"{PROG} data: argument --seed: invalid seed '4e2'"),
    (("data", "rte", "--toy", "--limit", str(10**12)),
     f"--limit: {10**12} is not a valid count (expected 0..1,000,000,000)"),
    (("data", "rte", "--toy", "--train-size", str(10**12)), f"--train-size: {10**12} is not a valid count"),
    (("data", "rte", "--toy", "--source-length", str(10**6)),
     f"--source-length: {10**6} is not a valid count (expected 1..100,000)"),
    (("data", "rte", "--data-dir", ""), f"{PROG} data: argument --data-dir: an empty path; pass a file or folder name"),
    (("data", "rte", "--data-dir", "{tmp}/pipe"),
     "{tmp}/pipe: not a folder (a pipe, socket or device), expected a data folder"),
    (("data", "rte", "--toy", "--fidelity", "said_backward="),
     "--fidelity: 'said_backward=': fidelity.said_backward: Input should be 'paper' or 'released', not ''; expected "
     "paper | released | NAME=paper|released"),
    (("run", str(SPEC), "--deepspeed", "none", "--output-dir", "{tmp}/out", "--fidelity", "said_backward="),
     "--fidelity: 'said_backward=': fidelity.said_backward: Input should be 'paper' or 'released', not ''"),
    (("run", str(SPEC), "--deepspeed", "none", "--output-dir", "{tmp}/out", "--fidelity", "=released"),
     "--fidelity: '=released': no fidelity option ''"),
    (("run", str(SPEC), "--deepspeed", "none", "--output-dir", "{tmp}/out", "--fidelity", "released",
      "--mnli-split", "sometimes"), f"{PROG} run: argument --mnli-split: invalid choice: 'sometimes'"),
    (("validate", "--spec-dir", ""), f"{PROG} validate: argument --spec-dir: an empty path"),
    (("validate", ""), f"{PROG} validate: argument SPEC: an empty path"),
    (("budget", str(SPEC), "--model", " "), f"{PROG} budget: argument --model: an empty value; pass a name"),
    (("check", str(SPEC), "--set", "training..seed=1"), f"{SPEC}: --set training..seed: an empty part in the key"),
    (("check", str(SPEC), "--only", ""), f"{PROG} check: argument --only: an empty value; pass a name"),
    (("ls", "--spec-dir", ""), f"{PROG} ls: argument --spec-dir: an empty path"),
    (("budget", "--all", "--spec-dir", ""), f"{PROG} budget: argument --spec-dir: an empty path"),
    (("budget", ""), f"{PROG} budget: argument SPEC: an empty path"),
    (("check", ""), f"{PROG} check: argument SPEC: an empty path"),
    (("show", ""), f"{PROG} show: argument SPEC: an empty path"),
]
# fmt: on


@pytest.mark.parametrize(("argv", "expected"), OPTION_CASES, ids=[" ".join(a)[:60] for a, _ in OPTION_CASES])
def test_a_hostile_option_is_one_line_and_nothing_changes(tmp_path, capsys, argv, expected):
    os.mkfifo(tmp_path / "pipe")
    line = one_line_unchanged(capsys, [tmp_path], *[arg.format(tmp=tmp_path) for arg in argv])
    assert line.startswith(expected.format(tmp=tmp_path)), line


def test_run_data_and_eval_read_fidelity_values_with_one_parser(tmp_path, capsys):
    from harness.train.checkpoint_eval import recorded_fidelity

    for value in ("said_backward=", "relesed", "mnli_splt=released", "mnli_split=yes"):
        data = one_line(capsys, "data", "rte", "--toy", "--fidelity", value)
        run = one_line(capsys, "run", SPEC, "--deepspeed", "none", "--output-dir", tmp_path / "o", "--fidelity", value)
        with pytest.raises(OptionError) as refused:
            recorded_fidelity(SimpleNamespace(data=SimpleNamespace(fidelity={})), [value])
        assert data == run == refused.value.errors[0], value
    assert not (tmp_path / "o").exists()


def test_mnli_split_after_fidelity_means_the_same_in_run_and_data(capsys):
    from harness.spec.fidelity import PAPER, parse_arguments, with_arguments

    argv = ["data", "mnli", "--toy", "--limit", "0", "--json", "--fidelity", "released", "--mnli-split", "paper"]
    assert main(argv) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["protocol"]["validation"]["from"] == "train"  # the paper's 1,000 held-out training rows
    assert report["fidelity"]["mnli_split"] == "paper" and report["fidelity"]["mnli_format"] == "released"
    run = parse_arguments(["released"], "paper")  # what `run` passes down: the spec's `fidelity:` takes it in order
    assert run == [("preset", "released"), ("mnli_split", "paper")]
    assert with_arguments(PAPER, ["released"], "paper").positions["mnli_split"] == "paper"
    assert parse_arguments(None, None) == []  # default: as is


def test_sweep_fidelity_checks_every_setting_before_writing(tmp_path, capsys, monkeypatch):
    import harness.train.spec_run

    checked = []

    def run_spec(spec_path, options):
        assert options.check_only, "a setting ran before every setting was checked"
        checked.append(options.fidelity)
        if ("task_prefix", "released") in options.fidelity:  # the last setting of COPA for compacter_pp
            raise SpecError(["refused: the last setting"])
        return None, options.output_dir

    monkeypatch.setattr(harness.train.spec_run, "run_spec", run_spec)
    output_dir = tmp_path / "sweep"
    line = one_line_unchanged(capsys, [tmp_path], "run", SPEC, "--tasks", "copa", "--sweep-fidelity",
                              "--deepspeed", "none", "--output-dir", output_dir)  # fmt: skip
    assert line == "refused: the last setting" and len(checked) == 4


# --- benchmarks ------------------------------------------------------------------------------------------------

LAYERS = ("bench-layers", "--k", "48", "--d", "12", "--n", "4", "--rows", "32", "--repeats", "1")

# fmt: off
BENCH_CASES = [
    ((*LAYERS, "--k", "0"), f"{PROG} bench-layers: argument --k: 0 out of range: expected an integer in 1..16,384"),
    ((*LAYERS, "--k", "-768"), f"{PROG} bench-layers: argument --k: -768 out of range"),
    ((*LAYERS, "--n", "0"), f"{PROG} bench-layers: argument --n: 0 out of range"),
    ((*LAYERS, "--d", "ten"), f"{PROG} bench-layers: argument --d: invalid count 'ten'"),
    ((*LAYERS, "--n", "5"), "--n: 5 does not divide --k 48; each n must divide k and every d"),
    ((*LAYERS, "--d", "12", "18", "--n", "4"), "--n: 4 does not divide --d 18; each n must divide k and every d"),
    ((*LAYERS, "--rank", "-1"), f"{PROG} bench-layers: argument --rank: -1 out of range"),
    ((*LAYERS, "--rank", "64"), "--rank: 64 is above the layer sizes (k 48, d 12); 0 is PHM"),
    ((*LAYERS, "--rows", str(10**9)), f"{PROG} bench-layers: argument --rows: {10**9} out of range"),
    ((*LAYERS, "--rows", "1000000", "--k", "768"),
     "--rows: 1000000 × --k 768 = 768,000,000 inputs; at most 67,108,864"),
    ((*LAYERS, "--k", "16384", "--d", "16384", "--n", "4"),
     "--d: 16384 × --k 16384 = 268,435,456 weights; at most 67,108,864"),
    ((*LAYERS, "--repeats", "0"), f"{PROG} bench-layers: argument --repeats: 0 out of range"),
    ((*LAYERS, "--threads", "0"), f"{PROG} bench-layers: argument --threads: 0 out of range"),
    ((*LAYERS, "--output-dir", "{tmp}/afile"), "{tmp}/afile: --output-dir: not a folder"),
    (("bench", str(SPEC), "--warmup", "-1"), "--warmup: -1 must be at least 0"),
    (("bench", str(SPEC), "--threads", "0"), "--threads: 0 must be at least 1"),
    (("bench", str(SPEC), "--steps", str(10**9)), f"--steps: {10**9} must be at most 100,000"),
    (("bench", str(SPEC), "--op-times", "-3"), "--op-times: -3 must be at least 0"),
    (("bench", str(SPEC), "--output-dir", "{tmp}/afile"), "{tmp}/afile: --output-dir: not a folder"),
    (("bench", str(SPEC), "--output-dir", ""), f"{PROG} bench: argument --output-dir: an empty path"),
    (("bench", str(SPEC), "--device", "cuda:9"), "--device: cuda:9: "),  # none here; 9 beyond any machine's count
    (("bench", str(SPEC), "--deepspeed", "{tmp}/afile"), "{tmp}/afile: --deepspeed: expected a DeepSpeed config, a "
     ".json file"),
    (("bench", str(SPEC), "--deepspeed", "{tmp}/deep.json"), "{tmp}/deep.json: (top level): nested too deeply"),
    (("bench", str(SPEC), "--deepspeed", "{tmp}/fifo.json"), "{tmp}/fifo.json: (top level): not a regular file"),
    (("bench", str(SPEC), "--deepspeed", "{tmp}/adam.json"), "{tmp}/adam.json: optimizer: --deepspeed: the spec's "
     "recipe chooses the optimizer"),
]
# fmt: on


@pytest.mark.parametrize(("argv", "expected"), BENCH_CASES, ids=[" ".join(a[:1] + a[len(LAYERS):] if a[0] ==
                         "bench-layers" else a[:1] + a[2:]) for a, _ in BENCH_CASES])  # fmt: skip
def test_a_hostile_benchmark_option_is_one_line_and_nothing_changes(tmp_path, capsys, argv, expected):
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    os.mkfifo(tmp_path / "fifo.json")
    zero2 = json.loads((SPEC_DIR / "deepspeed" / "zero2.json").read_text())
    (tmp_path / "adam.json").write_text(json.dumps({**zero2, "optimizer": {"type": "Adam", "params": {"lr": 1}}}))
    line = one_line_unchanged(capsys, [tmp_path], *[arg.format(tmp=tmp_path) for arg in argv])
    assert line.startswith(expected.format(tmp=tmp_path)), line


def test_bench_layers_accepts_what_it_can_measure(capsys):
    assert main([*LAYERS, "--rank", "0", "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert {row["layer"] for row in report["results"]} == {"PHM"} and report["exact"]


def test_the_bounds_admit_every_real_t5():
    """The bounds refuse the absurd, never a real checkpoint: every model file, T5-XXL's and mT5-XXL's
    configurations."""
    from harness.spec.model_files import T5Architecture

    for path in sorted((SPEC_DIR / "models").glob("*.yaml")):
        load_model_file(path)
    t5_xxl = {"vocab_size": 32128, "d_model": 1024, "d_kv": 128, "d_ff": 65536, "num_layers": 24,
              "num_decoder_layers": 24, "num_heads": 128}  # fmt: skip
    mt5_xxl = {"model_type": "mt5", "vocab_size": 250112, "d_model": 4096, "d_kv": 64, "d_ff": 10240,
               "num_layers": 24, "num_decoder_layers": 24, "num_heads": 64, "feed_forward_proj": "gated-gelu",
               "tie_word_embeddings": False}  # fmt: skip
    for config in (t5_xxl, mt5_xxl):
        assert T5Architecture.model_validate(config).approximate_parameters() < 2 * 10**10
