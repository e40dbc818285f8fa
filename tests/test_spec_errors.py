"""Bad input gives exit code 2 and `file: key.path: message` lines on stderr, never a traceback.

Each test writes a broken spec into a writable copy of spec/ (`spec_copy`) and runs `harness.cli.main`
in-process; one test runs `python -m harness` as a subprocess to prove the contract end to end.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import EXIT_BAD_INPUT, main
from impl.registry import get

REPO = Path(__file__).resolve().parent.parent
COMPACTER_YAML = REPO / "spec" / "compacter.yaml"

# `<file path>: <key.path>: <message>`; the key path never holds a colon (a YAML position is
# `line 3, column 6`, the whole file is `(top level)`).
ERROR_LINE = re.compile(r"^(?P<file>\S.*?\.ya?ml): (?P<key>[^:\n]+): (?P<message>\S.*)$")


def compacter_data() -> dict[str, Any]:
    return yaml.safe_load(COMPACTER_YAML.read_text(encoding="utf-8"))


def write_spec(
    spec_copy: Path, name: str, mutate: Callable[[dict[str, Any]], None] | None = None, *, spec_name: str | None = None
) -> Path:
    """spec_copy/<name>.yaml: spec/compacter.yaml with `name` = the file stem (or `spec_name`), then mutated."""
    data = copy.deepcopy(compacter_data())
    data["name"] = name if spec_name is None else spec_name
    if mutate is not None:
        mutate(data)
    path = spec_copy / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def run_cli(capsys, *argv: str | Path) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def error_lines(rc: int, out: str, err: str) -> list[re.Match]:
    """Assert the bad-input contract (exit 2, no traceback, only well-formed lines) and parse the lines."""
    assert rc == EXIT_BAD_INPUT, f"exit code {rc}, stderr:\n{err}"
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert lines, "no error reported on stderr"
    matches = []
    for line in lines:
        match = ERROR_LINE.match(line)
        assert match, f"not a `file: key.path: message` line: {line!r}"
        matches.append(match)
    return matches


def same_file(reported: str, expected: Path) -> bool:
    return Path(reported).resolve() == expected.resolve()


def the_error(matches: list[re.Match], path: Path, key: str) -> re.Match:
    """The (single) error naming `path` and exactly `key`."""
    found = [m for m in matches if same_file(m["file"], path) and m["key"] == key]
    assert found, f"no error for {path}: {key}; got {[m.group(0) for m in matches]}"
    assert len(found) == 1, [m.group(0) for m in found]
    return found[0]


def validate_one(capsys, path: Path) -> list[re.Match]:
    return error_lines(*run_cli(capsys, "validate", path))


def setter(*keys: str | int, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
        node[keys[-1]] = value

    return mutate


# --- YAML and file-level problems -------------------------------------------------------------------


def test_invalid_yaml_syntax_names_file_and_line(spec_copy, capsys):
    lines = COMPACTER_YAML.read_text(encoding="utf-8").splitlines()
    lines[0] = "name: broken_yaml"
    bad_line = 5
    lines.insert(bad_line - 1, "oops: a: b")  # "mapping values are not allowed here"
    path = spec_copy / "broken_yaml.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    (match,) = matches
    assert same_file(match["file"], path)
    assert re.fullmatch(rf"line {bad_line}, column \d+", match["key"]), match.group(0)
    assert "invalid YAML" in match["message"]


def test_top_level_list_is_refused(spec_copy, capsys):
    path = spec_copy / "listed.yaml"
    path.write_text(yaml.safe_dump([compacter_data()]), encoding="utf-8")
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    match = the_error(matches, path, "(top level)")
    assert "mapping" in match["message"]
    assert "list" in match["message"]


def test_missing_spec_file(spec_copy, capsys):
    path = spec_copy / "no_such_spec.yaml"
    assert not path.exists()
    matches = error_lines(*run_cli(capsys, "validate", path))
    assert len(matches) == 1
    assert same_file(matches[0]["file"], path)
    assert "not found" in matches[0]["message"] or "not found" in matches[0]["key"]


def test_missing_spec_file_for_budget(spec_copy, capsys):
    path = spec_copy / "no_such_spec.yaml"
    rc, out, err = run_cli(capsys, "budget", path, "--json")
    assert rc == EXIT_BAD_INPUT
    assert "Traceback" not in out + err
    assert out == ""
    assert str(path) in err
    assert "not found" in err


# --- schema: unknown keys, wrong types ---------------------------------------------------------------


def test_unknown_top_level_key(spec_copy, capsys):
    path = write_spec(spec_copy, "extra_top", setter("colour", value="blue"))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    assert the_error(matches, path, "colour")["message"] == "unknown key"


def test_unknown_nested_key(spec_copy, capsys):
    path = write_spec(spec_copy, "extra_nested", setter("training", "learnin_rate", value=0.1))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    assert the_error(matches, path, "training.learnin_rate")["message"] == "unknown key"


def test_wrong_type_method_argument(spec_copy, capsys):
    path = write_spec(spec_copy, "n_word", setter("method", "args", "n", value="four"))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    assert "integer" in the_error(matches, path, "method.args.n")["message"]


def test_negative_batch_size(spec_copy, capsys):
    path = write_spec(spec_copy, "negative_batch", setter("training", "batch_size", value=-3))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    assert "greater than 0" in the_error(matches, path, "training.batch_size")["message"]


def test_published_percent_needs_a_source(spec_copy, capsys):
    path = write_spec(spec_copy, "no_source", lambda data: data["budget"].pop("source"))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    (match,) = matches
    assert same_file(match["file"], path)
    assert match["key"] in {"budget", "budget.source", "budget.published_percent"}, match.group(0)
    assert "source" in match["message"]


def test_name_must_equal_file_name(spec_copy, capsys):
    path = write_spec(spec_copy, "renamed", spec_name="other_name")
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    message = the_error(matches, path, "name")["message"]
    assert "other_name" in message
    assert "renamed" in message


# --- the method registry and the builder's signature -------------------------------------------------


def test_unknown_method_did_you_mean(spec_copy, capsys):
    path = write_spec(spec_copy, "typo_method", setter("method", "name", value="compactr"))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    message = the_error(matches, path, "method.name")["message"]
    assert "compactr" in message
    assert "did you mean 'compacter'" in message


def test_unexpected_method_argument_lists_accepted(spec_copy, capsys):
    path = write_spec(spec_copy, "extra_arg", setter("method", "args", "foo", value=1))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    message = the_error(matches, path, "method.args.foo")["message"]
    assert "unexpected argument" in message
    accepted = list(get("compacter").parameters())
    assert accepted
    for name in accepted:
        assert re.search(rf"\b{name}\b", message), f"{name} not listed in {message!r}"


def test_n_not_dividing_the_dimensions(spec_copy, capsys):
    path = write_spec(spec_copy, "n_five", setter("method", "args", "n", value=5))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    message = the_error(matches, path, "method.args.n")["message"]
    assert "5" in message
    assert "divide" in message


def test_reduction_factor_not_dividing_d_model(spec_copy, capsys):
    path = write_spec(spec_copy, "rf_seven", setter("method", "args", "reduction_factor", value=7))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    message = the_error(matches, path, "method.args.reduction_factor")["message"]
    assert "7" in message
    assert "d_model" in message


def test_budget_on_a_model_where_n_does_not_divide(spec_dir, capsys):
    path = spec_dir / "phm_adapter.yaml"
    rc, out, err = run_cli(capsys, "budget", path, "--model", "t5_small")
    matches = error_lines(rc, out, err)
    assert out == ""
    assert len(matches) == 1
    message = the_error(matches, path, "method.args.n")["message"]
    assert "12" in message
    assert "t5_small" in message


# --- globs that match nothing ------------------------------------------------------------------------


def test_trainable_glob_matching_nothing(spec_copy, capsys):
    index = len(compacter_data()["trainable"])
    path = write_spec(spec_copy, "dead_trainable", lambda data: data["trainable"].append("*.nothing_here.*"))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    assert "*.nothing_here.*" in the_error(matches, path, f"trainable[{index}]")["message"]


def test_init_glob_matching_nothing(spec_copy, capsys):
    index = len(compacter_data()["init"])
    rule = {"params": "*.nothing_here.*", "distribution": "zeros"}
    path = write_spec(spec_copy, "dead_init", lambda data: data["init"].append(rule))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    message = the_error(matches, path, f"init[{index}].params")["message"]
    assert "*.nothing_here.*" in message
    assert "matches no parameter" in message


# --- invariants --------------------------------------------------------------------------------------


def test_unknown_invariant_did_you_mean(spec_copy, capsys):
    path = write_spec(spec_copy, "typo_invariant", setter("invariants", "kron_summ", value=None))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    message = the_error(matches, path, "invariants.kron_summ")["message"]
    assert "unknown invariant" in message
    assert "did you mean 'kron_sum'" in message


def test_invariant_option_out_of_range(spec_copy, capsys):
    mutate = setter("invariants", "near_identity_at_init", value={"max_relative_diff": -1})
    path = write_spec(spec_copy, "negative_tolerance", mutate)
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    assert "greater than 0" in the_error(matches, path, "invariants.near_identity_at_init.max_relative_diff")["message"]


@pytest.mark.parametrize(
    ("invariant", "options"),
    [("near_identity_at_init", {"max_relative_diff": 1.0e-5, "tolerance": 1}), ("budget", {"tolerance": 1})],
)
def test_invariant_unknown_option(spec_copy, capsys, invariant, options):
    path = write_spec(spec_copy, "unknown_option", setter("invariants", invariant, value=options))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    assert the_error(matches, path, f"invariants.{invariant}.tolerance")["message"] == "unknown key"


# --- model and defaults files ------------------------------------------------------------------------


def test_missing_model_file_did_you_mean(spec_copy, capsys):
    path = write_spec(spec_copy, "typo_model", setter("model", value="t5_bas"))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    message = the_error(matches, path, "model")["message"]
    assert "t5_bas.yaml" in message
    assert "did you mean 't5_base'" in message


def test_missing_defaults_file(spec_copy, capsys):
    path = write_spec(spec_copy, "typo_defaults", setter("defaults", value="papr"))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    message = the_error(matches, path, "defaults")["message"]
    assert "papr" in message
    assert "did you mean 'paper'" in message


def test_two_levels_of_defaults_are_refused(spec_copy, capsys):
    layered = spec_copy / "_defaults" / "layered.yaml"
    base = yaml.safe_load((spec_copy / "_defaults" / "paper.yaml").read_text(encoding="utf-8"))
    layered.write_text(yaml.safe_dump({"defaults": "paper", **base}, sort_keys=False), encoding="utf-8")
    path = write_spec(spec_copy, "layered_defaults", setter("defaults", value="layered"))
    matches = validate_one(capsys, path)
    assert len(matches) == 1
    assert "one level" in the_error(matches, layered, "defaults")["message"]


# --- every error at once -----------------------------------------------------------------------------


def test_several_schema_errors_reported_together(spec_copy, capsys):
    def mutate(data):
        data["colour"] = "blue"
        data["training"]["batch_size"] = "many"
        data["budget"]["published_percent"] = 250

    path = write_spec(spec_copy, "three_schema_errors", mutate)
    matches = validate_one(capsys, path)
    assert len(matches) == 3, [m.group(0) for m in matches]
    assert the_error(matches, path, "colour")["message"] == "unknown key"
    assert "integer" in the_error(matches, path, "training.batch_size")["message"]
    assert "100" in the_error(matches, path, "budget.published_percent")["message"]


def test_several_reference_errors_reported_together(spec_copy, capsys):
    def mutate(data):
        data["model"] = "t5_bas"
        data["method"]["name"] = "compactr"
        data["invariants"]["kron_summ"] = None

    path = write_spec(spec_copy, "three_reference_errors", mutate)
    matches = validate_one(capsys, path)
    assert len(matches) == 3, [m.group(0) for m in matches]
    the_error(matches, path, "model")
    the_error(matches, path, "method.name")
    the_error(matches, path, "invariants.kron_summ")


def test_schema_and_reference_errors_reported_together(spec_copy, capsys):
    """An unknown key, a wrong type and an unknown invariant in one file: all three are reported."""

    def mutate(data):
        data["colour"] = "blue"
        data["training"]["batch_size"] = "many"
        data["invariants"]["kron_summ"] = None

    path = write_spec(spec_copy, "mixed_errors", mutate)
    matches = validate_one(capsys, path)
    keys = [m["key"] for m in matches]
    assert len(matches) >= 3, [m.group(0) for m in matches]
    assert "colour" in keys
    assert "training.batch_size" in keys
    assert "invariants.kron_summ" in keys


def test_errors_of_several_files_reported_together(spec_copy, capsys):
    first = write_spec(spec_copy, "first_bad", setter("method", "name", value="compactr"))
    second = write_spec(spec_copy, "second_bad", setter("training", "learnin_rate", value=0.1))
    matches = error_lines(*run_cli(capsys, "validate", first, second))
    assert len(matches) == 2
    the_error(matches, first, "method.name")
    the_error(matches, second, "training.learnin_rate")


# --- end to end --------------------------------------------------------------------------------------


def test_module_exit_code_and_no_traceback_end_to_end(spec_copy):
    path = write_spec(spec_copy, "subprocess_bad", setter("method", "name", value="compactr"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    match = ERROR_LINE.match(lines[0])
    assert match, lines[0]
    assert same_file(match["file"], path)
    assert match["key"] == "method.name"
    assert "did you mean 'compacter'" in match["message"]
