"""The mutation list and its runner's checks (the mutants themselves run with `tox -e mutants`)."""

from __future__ import annotations

import pytest

from tests.mutants.run import BadMutants, Mutant, baseline_selections, load_mutants


def test_the_list_holds_at_least_40_distinct_mutants_of_impl():
    mutants = load_mutants()  # each `find` occurs exactly once in its file, ids unique
    assert len(mutants) >= 40
    assert all(m.file.startswith("impl/") for m in mutants)
    assert len({(m.file, m.find, m.replace) for m in mutants}) == len(mutants)
    assert len({m.file for m in mutants}) >= 15


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
    path = tmp_path / "mutants.yaml"
    path.write_text(f"- id: one\n  file: impl/layers/bias.py\n  {entry}\n  bug: b\n  files: [tests]\n")
    with pytest.raises(BadMutants, match=r"mutant 1 \(one\): " + message):
        load_mutants(path)


def test_the_unmutated_selections_run_once_per_set_of_files():
    def mutant(name: str, files: tuple[str, ...], k: str | None) -> Mutant:
        return Mutant(name, "impl/x.py", "a", "b", "bug", files, k)

    mutants = [mutant("a", ("t1",), "x"), mutant("b", ("t1",), "y"), mutant("c", ("t2",), None)]
    mutants.append(mutant("d", ("t2",), "z"))  # t2 runs whole: c selects all of it
    assert baseline_selections(mutants) == [("t1", "-k", "(x) or (y)"), ("t2",)]
