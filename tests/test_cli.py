"""The happy paths and contracts of `python -m harness {validate,budget,check,ls,show}` (in-process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main
from harness.invariants.hypothesis_settings import load_settings
from harness.spec.loader import spec_files
from impl.registry import get
from impl.registry import names as method_names

REPO = Path(__file__).resolve().parent.parent
SPEC_DIR = REPO / "spec"
METHODS = set(method_names())  # what the registry holds; ls must list exactly these
BUDGET_KEYS = {
    "method",
    "model",
    "trainable_params",
    "total_params",
    "trainable_percent",
    "expected_trainable_params",
    "published_percent",
    "ok",
}


@pytest.fixture(autouse=True)
def _restore_hypothesis_settings():
    """`check` loads the hypothesis settings `check` globally; give the rest of the session its own back."""
    yield
    load_settings("dev")


def run_cli(capsys, *argv: str | Path) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def copy_with_budget(spec_copy: Path, name: str, delta: int) -> tuple[Path, int]:
    """spec_copy/<name>.yaml with budget.trainable_params changed by `delta`; returns it and the true count."""
    path = spec_copy / f"{name}.yaml"
    data = read(path)
    true_count = data["budget"]["trainable_params"]
    data["budget"]["trainable_params"] = true_count + delta
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path, true_count


def decimals(value: float) -> int:
    text = repr(float(value))
    return len(text.split(".")[1])


# --- validate ----------------------------------------------------------------------------------------


def test_validate_without_arguments_validates_every_spec(capsys):
    paths = spec_files(SPEC_DIR)
    assert {p.stem for p in paths} >= METHODS
    rc, out, err = run_cli(capsys, "validate")
    assert rc == EXIT_OK, err
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == len(paths)
    for line in lines:
        assert line.endswith(": valid"), line
    assert {Path(line.removesuffix(": valid")).resolve() for line in lines} == {p.resolve() for p in paths}


def test_validate_spec_dir(spec_copy, capsys):
    rc, out, err = run_cli(capsys, "validate", "--spec-dir", spec_copy)
    assert rc == EXIT_OK, err
    assert sorted(out.splitlines()) == sorted(f"{p}: valid" for p in spec_files(spec_copy))


def test_validate_empty_spec_dir(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = run_cli(capsys, "validate", "--spec-dir", empty)
    assert rc == EXIT_BAD_INPUT
    assert out == ""
    assert "Traceback" not in err
    assert str(empty) in err
    assert "no spec files" in err


# --- budget ------------------------------------------------------------------------------------------


def test_budget_json_matches_the_spec(capsys):
    spec = read(SPEC_DIR / "compacter.yaml")
    defaults = read(SPEC_DIR / "_defaults" / f"{spec['defaults']}.yaml")
    rc, out, err = run_cli(capsys, "budget", SPEC_DIR / "compacter.yaml", "--json")
    assert rc == EXIT_OK, err
    report = json.loads(out)
    assert set(report) >= BUDGET_KEYS, BUDGET_KEYS - set(report)
    assert report["method"] == spec["method"]["name"]
    assert report["model"] == spec.get("model", defaults["model"])
    assert report["trainable_params"] == spec["budget"]["trainable_params"]
    assert report["expected_trainable_params"] == spec["budget"]["trainable_params"]
    assert report["published_percent"] == spec["budget"]["published_percent"]
    assert report["total_params"] > report["trainable_params"] > 0
    published = spec["budget"]["published_percent"]
    assert round(report["trainable_percent"], decimals(published)) == round(published, decimals(published))
    assert report["ok"] is True


def test_budget_text(capsys):
    spec = read(SPEC_DIR / "compacter.yaml")
    rc, out, _ = run_cli(capsys, "budget", SPEC_DIR / "compacter.yaml")
    assert rc == EXIT_OK
    assert f"{spec['budget']['trainable_params']:,} trainable parameters" in out
    assert "count matches" in out
    assert f"rounds to the published {spec['budget']['published_percent']}%" in out


def test_budget_differing_from_the_spec_exits_1(spec_copy, capsys):
    path, true_count = copy_with_budget(spec_copy, "compacter", +1)
    rc, out, err = run_cli(capsys, "budget", path, "--json")
    assert rc == EXIT_FAILED, err
    report = json.loads(out)
    assert report["ok"] is False
    assert report["trainable_params"] == true_count
    assert report["expected_trainable_params"] == true_count + 1


def test_budget_differing_text_says_so(spec_copy, capsys):
    path, true_count = copy_with_budget(spec_copy, "compacter", +1)
    rc, out, _ = run_cli(capsys, "budget", path)
    assert rc == EXIT_FAILED
    assert f"DIFFERS from the spec's {true_count + 1:,}" in out


def test_budget_on_another_model_has_nothing_to_compare(capsys):
    spec = read(SPEC_DIR / "compacter.yaml")
    rc, out, err = run_cli(capsys, "budget", "--model", "t5_large", SPEC_DIR / "compacter.yaml", "--json")
    assert rc == EXIT_OK, err
    report = json.loads(out)
    assert set(report) >= BUDGET_KEYS
    assert report["model"] == "t5_large"
    assert report["expected_trainable_params"] is None
    assert report["published_percent"] is None
    assert report["ok"] is None
    # t5-large has more and wider blocks than the spec's t5-base: more adapter parameters
    assert report["trainable_params"] > spec["budget"]["trainable_params"]


# --- check -------------------------------------------------------------------------------------------


def test_check_runs_every_invariant_of_the_spec(capsys):
    invariants = list(read(SPEC_DIR / "compacter_pp.yaml")["invariants"])
    rc, out, err = run_cli(capsys, "check", SPEC_DIR / "compacter_pp.yaml")
    assert rc == EXIT_OK, out + err
    lines = out.splitlines()
    results = [line for line in lines if line.startswith(("PASS ", "FAIL "))]
    assert [line.split(":")[0] for line in results] == [f"PASS {name}" for name in invariants]
    assert lines[-1] == f"{len(invariants)} passed, 0 failed"


def test_check_exits_1_when_an_invariant_fails(spec_copy, capsys):
    path, true_count = copy_with_budget(spec_copy, "compacter_pp", +1)
    rc, out, _ = run_cli(capsys, "check", path, "--only", "budget", "trainable_set")
    assert rc == EXIT_FAILED
    lines = out.splitlines()
    budget_line = next(line for line in lines if line.split(":")[0].endswith(" budget"))
    assert budget_line.startswith("FAIL budget:")
    assert f"{true_count:,}" in budget_line
    assert f"{true_count + 1:,}" in budget_line
    assert any(line.startswith("PASS trainable_set:") for line in lines)
    assert lines[-1] == "1 passed, 1 failed"


def test_check_only_one_invariant(capsys):
    rc, out, err = run_cli(capsys, "check", SPEC_DIR / "compacter.yaml", "--only", "kron_sum")
    assert rc == EXIT_OK, out + err
    results = [line for line in out.splitlines() if line.startswith(("PASS ", "FAIL "))]
    assert len(results) == 1
    assert results[0].startswith("PASS kron_sum:")
    assert out.splitlines()[-1] == "1 passed, 0 failed"


def test_check_only_an_invariant_the_spec_does_not_list(spec_copy, capsys):
    path = spec_copy / "compacter.yaml"
    data = read(path)
    del data["invariants"]["kron_sum"]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    rc, out, err = run_cli(capsys, "check", path, "--only", "kron_sum")
    assert rc == EXIT_BAD_INPUT
    assert "PASS" not in out
    assert "Traceback" not in out + err
    assert err.startswith(f"{path}: invariants: ")
    assert "kron_sum" in err


def test_check_only_an_unknown_invariant(capsys):
    rc, out, err = run_cli(capsys, "check", SPEC_DIR / "compacter.yaml", "--only", "kron_summ")
    assert rc == EXIT_BAD_INPUT
    assert "PASS" not in out
    assert "kron_summ" in err
    assert "Traceback" not in out + err


# --- ls ----------------------------------------------------------------------------------------------


def test_ls_lists_methods_and_specs(capsys):
    rc, out, _ = run_cli(capsys, "ls")
    assert rc == EXIT_OK
    lines = out.splitlines()
    heads = [i for i, line in enumerate(lines) if not line.startswith(" ")]
    assert [lines[i].split(" ")[0] for i in heads] == ["methods:", "specs", "invariants:"]
    methods = {line.split()[0] for line in lines[heads[0] + 1 : heads[1]]}
    specs = {line.split()[0] for line in lines[heads[1] + 1 : heads[2]]}
    assert methods == METHODS
    assert specs == {p.stem for p in spec_files(SPEC_DIR)}
    for name in METHODS & specs:
        spec = read(SPEC_DIR / f"{name}.yaml")
        assert f"{spec['budget']['trainable_params']:,} trainable" in out


def test_ls_json(capsys):
    rc, out, _ = run_cli(capsys, "ls", "--json")
    assert rc == EXIT_OK
    listing = json.loads(out)
    assert {"methods", "specs", "invariants"} <= set(listing)
    assert set(listing["methods"]) == METHODS
    assert set(listing["specs"]) == {p.stem for p in spec_files(SPEC_DIR)}
    for name, entry in listing["specs"].items():
        spec = read(SPEC_DIR / f"{name}.yaml")
        assert entry["method"] == spec["method"]["name"]
        assert entry["trainable_params"] == spec["budget"]["trainable_params"]
        assert set(spec["invariants"]) <= set(listing["invariants"])


def test_ls_reports_an_invalid_spec_without_failing(spec_copy, capsys):
    path = spec_copy / "compacter.yaml"
    data = read(path)
    data["method"]["name"] = "compactr"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    rc, out, _ = run_cli(capsys, "ls", "--spec-dir", spec_copy, "--json")
    assert rc == EXIT_OK
    entry = json.loads(out)["specs"]["compacter"]
    assert any("did you mean 'compacter'" in line for line in entry["errors"])


# --- show --------------------------------------------------------------------------------------------


def check_resolved(resolved: dict[str, Any]) -> None:
    spec = read(SPEC_DIR / "compacter.yaml")
    defaults = read(SPEC_DIR / "_defaults" / f"{spec['defaults']}.yaml")
    assert "defaults" not in resolved
    assert resolved["name"] == spec["name"]
    # from _defaults/paper.yaml
    assert resolved["training"]["warmup_steps"] == defaults["training"]["warmup_steps"] == 500
    assert resolved["model"] == defaults["model"]
    assert resolved["paper"]["title"] == defaults["paper"]["title"]
    assert resolved["tasks"] == defaults["tasks"]
    # from the spec, over the defaults (mappings merge key by key)
    assert resolved["training"]["learning_rate"] == spec["training"]["learning_rate"] == 0.003
    assert resolved["paper"]["where"] == spec["paper"]["where"] != defaults["paper"]["where"]
    assert resolved["budget"] == spec["budget"]
    # the method's arguments: the spec's, and the builder's defaults for the rest
    args = resolved["method"]["args"]
    method = get(spec["method"]["name"])
    assert set(args) == set(method.parameters())
    for name, value in spec["method"]["args"].items():
        assert args[name] == value, name
    unstated = set(method.defaults()) - set(spec["method"]["args"])
    assert unstated, "the spec states every argument: nothing to fill in"
    for name in unstated:
        assert args[name] == method.defaults()[name], name


def test_show_prints_the_resolved_spec_as_yaml(capsys):
    rc, out, _ = run_cli(capsys, "show", SPEC_DIR / "compacter.yaml")
    assert rc == EXIT_OK
    check_resolved(yaml.safe_load(out))


def test_show_json(capsys):
    rc, out, _ = run_cli(capsys, "show", SPEC_DIR / "compacter.yaml", "--json")
    assert rc == EXIT_OK
    resolved = json.loads(out)
    check_resolved(resolved)


def test_show_json_equals_show_yaml(capsys):
    _, as_json, _ = run_cli(capsys, "show", SPEC_DIR / "compacter.yaml", "--json")
    _, as_yaml, _ = run_cli(capsys, "show", SPEC_DIR / "compacter.yaml")
    assert json.loads(as_json) == yaml.safe_load(as_yaml)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["ls"],
        ["ls", "--json"],
        ["validate", "{bad}"],  # a schema error: the method and invariant checks still run, the build does not
    ],
)
def test_answers_without_importing_torch_or_transformers(spec_copy, argv):
    """`--help`, `ls` and `validate` of a spec with a schema error answer at once: nothing imports torch."""
    import subprocess
    import sys

    bad = spec_copy / "compacter_pp.yaml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("learning_rate: 3.0e-3", 'learning_rate: "fast"'))
    probe = (
        "import sys, harness.cli\n"
        "try:\n    code = harness.cli.main(sys.argv[1:])\nexcept SystemExit as done:\n    code = done.code\n"
        "print(code, sorted(m for m in ('torch', 'transformers') if m in sys.modules), file=sys.stderr)"
    )
    args = [a.format(bad=bad) for a in argv]
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=REPO, check=False)
    code, imported = done.stderr.strip().splitlines()[-1].split(" ", 1)
    assert imported == "[]", done.stderr
    assert int(code) == (EXIT_BAD_INPUT if argv[0] == "validate" else EXIT_OK), done.stderr
    if argv[0] == "validate":
        assert done.stderr.startswith(f"{bad}: training.learning_rate: Input should be a valid number"), done.stderr


def test_a_reader_that_quits_early_gets_no_traceback():
    """`python -m harness ls | head -0`: stdout's reader is gone before the first write; the command stops
    quietly with 141 (128 + SIGPIPE), as a shell's writer would, and writes nothing on stderr."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader quits before the command writes anything
    try:
        done = subprocess.run([sys.executable, "-m", "harness", "ls"], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    finally:
        os.close(write)
    assert done.stderr == ""
    assert done.returncode == 141
