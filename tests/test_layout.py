"""The layout rules of GUIDE.md that code review alone would let slip."""

from __future__ import annotations

import ast
from pathlib import Path

from impl.registry import names as method_names

REPO = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_impl_never_imports_harness_or_deepspeed():
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_modules(path) & {"harness", "deepspeed"})
        for path in (REPO / "impl").rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_spec_folder_is_data_only():
    assert not list((REPO / "spec").rglob("*.py"))


def test_every_method_has_a_module_named_like_it():
    for name in method_names():
        assert (REPO / "impl" / "methods" / f"{name}.py").is_file(), name


def test_every_declared_invariant_has_a_check():
    """A name the catalog declares (so validation accepts it) has a registered check for `harness check`."""
    from harness.invariants import INVARIANTS
    from harness.invariants.catalog import DECLARED

    assert set(INVARIANTS) == set(DECLARED)
