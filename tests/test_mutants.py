"""The mutation lists and their runner's checks (the mutants themselves run with `tox -e mutants`)."""

from __future__ import annotations

import pytest

from tests.mutants.run import BadMutants, Mutant, baseline_selections, load_lists, load_mutants, summary, verdict


def test_the_impl_list_holds_at_least_40_distinct_mutants_of_impl():
    mutants = load_lists(["impl"])  # each `find` occurs exactly once in its file, ids unique
    assert len(mutants) >= 40
    assert all(m.file.startswith("impl/") and m.list == "impl" for m in mutants)
    assert len({(m.file, m.find, m.replace) for m in mutants}) == len(mutants)
    assert len({m.file for m in mutants}) >= 15


def test_the_harness_list_holds_at_least_50_distinct_mutants_each_naming_its_property():
    mutants = load_lists(["harness"])
    assert len(mutants) >= 50
    assert all(m.file.startswith("harness/") and m.list == "harness" and m.by for m in mutants)
    assert len({(m.file, m.find, m.replace) for m in mutants}) == len(mutants)
    areas = {m.file.split("/")[1] for m in mutants}  # train, data, results, model, spec, ...
    assert {"train", "data", "results"} <= areas
    assert len({m.id for m in load_lists()}) == len(load_lists())  # ids unique over both lists


@pytest.mark.parametrize(
    "entry, message",
    [
        ("find: 'no such text'\n  replace: 'x'", r"`find` occurs 0 times in impl/layers/bias.py"),
        ("find: 'return x + self.bias'\n  replace: 'return x + self.bias'", r"`find` occurs 1 times .* and a change"),
        ("find: 'return x + self.bias'", r"keys .*required"),
    ],
    ids=["absent", "no-change", "no-replace"],
)
def test_a_bad_mutant_is_refused_with_its_number_and_reason(tmp_path, entry, message):
    path = tmp_path / "impl.yaml"
    path.write_text(f"- id: one\n  file: impl/layers/bias.py\n  {entry}\n  bug: b\n  files: [tests]\n")
    with pytest.raises(BadMutants, match=r"mutant 1 \(one\): " + message):
        load_mutants(path)


@pytest.mark.parametrize(
    "entry, message",
    [
        ("file: harness/train/batching.py\n  by: x", None),
        ("file: harness/train/batching.py", r"keys .*required \[.*'by'"),
        ("file: impl/layers/bias.py\n  by: x", r"impl/layers/bias.py is not under harness/ \(the harness list\)"),
        ("file: harness/train/batching.py\n  by: '('", r"`by` is not a regular expression"),
    ],
    ids=["good", "no-by", "other-tree", "bad-by"],
)
def test_a_harness_mutant_changes_harness_and_names_the_test_meant_to_kill_it(tmp_path, entry, message):
    (tmp_path / "harness").mkdir()
    path = tmp_path / "harness" / "train.yaml"
    find = "return x + self.bias" if "impl/" in entry else "def steps_per_epoch"
    path.write_text(f"- id: one\n  {entry}\n  find: '{find}'\n  replace: 'y'\n  bug: b\n  files: [tests]\n")
    if message is None:
        assert [m.id for m in load_lists(["harness"], tmp_path)] == ["one"]
    else:
        with pytest.raises(BadMutants, match=r"mutant 1 \(one\): " + message):
            load_lists(["harness"], tmp_path)


def test_an_id_used_in_both_lists_is_refused(tmp_path):
    (tmp_path / "harness").mkdir()
    (tmp_path / "impl.yaml").write_text(
        "- {id: one, file: impl/layers/bias.py, find: 'return x + self.bias', replace: y, bug: b, files: [t]}\n"
    )
    (tmp_path / "harness" / "a.yaml").write_text(
        "- {id: one, file: harness/train/batching.py, find: 'def steps_per_epoch', replace: y, bug: b, files: [t],"
        " by: x}\n"
    )
    with pytest.raises(BadMutants, match="mutant one: the id is used twice"):
        load_lists(["impl", "harness"], tmp_path)


def mutant(name: str, files: tuple[str, ...] = ("t",), k: str | None = None, **keys) -> Mutant:
    return Mutant(name, "harness/x.py", "a", "b", "bug", files, k, **keys)


def test_the_unmutated_selections_run_once_per_set_of_files():
    mutants = [mutant("a", ("t1",), "x"), mutant("b", ("t1",), "y"), mutant("c", ("t2",), None)]
    mutants.append(mutant("d", ("t2",), "z"))  # t2 runs whole: c selects all of it
    assert baseline_selections(mutants) == [("t1", "-k", "(x) or (y)"), ("t2",)]


@pytest.mark.parametrize(
    "keys, outcome, test, whole, expected",
    [
        ({"by": "test_order"}, "failed", "tests/t.py::test_order_is_fresh[rte]", None, "killed"),
        ({"by": "test_order"}, "failed", "tests/t.py::test_something_else", None, "misattributed"),
        ({}, "failed", "tests/t.py::test_anything", None, "killed"),  # an impl mutant names no test
        ({"by": "test_order"}, "timeout", "", None, "killed"),
        ({"by": "test_order"}, "passed", "", ("failed", "tests/u.py::test_order"), "misattributed"),
        ({"by": "test_order"}, "passed", "", ("passed", ""), "survived"),
        ({"by": "test_order", "survives": "equivalent: x"}, "passed", "", None, "explained"),
        ({"by": "test_order"}, "empty", "", None, "empty"),
    ],
    ids=["meant", "elsewhere", "impl", "timeout", "whole-suite-only", "survived", "explained", "no-test"],
)
def test_a_kill_counts_for_its_property_only_when_the_named_test_fails(keys, outcome, test, whole, expected):
    assert verdict(mutant("m", **keys), outcome, test, whole) == expected


def test_each_list_is_reported_apart_and_held_to_its_bar():
    harness = [mutant(f"h{i}", list="harness") for i in range(20)]
    impl = [mutant("i0", list="impl")]
    by_id = {m.id: m for m in harness + impl}
    results = [{"id": m.id, "verdict": "killed", "by": "t", "seconds": 6.0} for m in harness[:19] + impl]
    results.append({"id": "h19", "verdict": "explained", "by": "", "seconds": 6.0})
    lines, ok = summary(results, by_id, "harness")
    assert ok and lines[0] == "harness: killed 19 of 20 (95%) in 2.0 min"
    assert lines[1].startswith("  survived, explained: h19")
    results[0]["verdict"] = "misattributed"  # still a kill, but not by its property: the list fails
    assert not summary(results, by_id, "harness")[1]
    results[0]["verdict"], results[1]["verdict"] = "killed", "explained"  # 18 of 20 = 90 % < 95 %
    lines, ok = summary(results, by_id, "harness")
    assert not ok and lines[0].startswith("harness: killed 18 of 20 (90%)")
    assert summary(results, by_id, "impl") == (["impl: killed 1 of 1 (100%) in 0.1 min"], True)
