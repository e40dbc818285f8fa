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
    from harness.spec.invariant_catalog import DECLARED

    assert set(INVARIANTS) == set(DECLARED)


# harness/'s layers, bottom first: a module may import its own package and the layers below it, never above
# (imports inside functions count: a lazy import is still a dependency). The CLI sits on top.
LAYERS = [
    "errors",
    "limits",
    "inputs",
    "spec",
    "data",
    "model",
    "results",
    "train",
    "invariants",
    "bench",
    "cli",
    "__main__",
]


def harness_imports(path: Path) -> set[str]:
    """The harness modules `path` imports (dotted, under harness.), wherever the import statement is."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("harness.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "harness":
                found |= {f"harness.{alias.name}" for alias in node.names}
            elif node.module.startswith("harness."):
                found.add(node.module)
    return found


def layer_of(module: str) -> str:
    return module.split(".")[1]


def harness_modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (REPO / "harness").rglob("*.py")
    }


def test_harness_is_layered_and_imports_only_downwards():
    modules = harness_modules()
    assert {layer_of(m) for m in modules if m != "harness"} <= set(LAYERS)  # every module sits in a layer
    upward = sorted(
        f"{module} imports {target}"
        for module, path in modules.items()
        if module != "harness"
        for target in harness_imports(path)
        if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module))
    )
    assert not upward, upward


def test_harness_has_no_import_cycle():
    modules = harness_modules()
    graph = {m: {t for t in harness_imports(p) if t in modules and t != m} for m, p in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def cycle_from(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target] if target in path else [node, target]
            if target not in state and (found := cycle_from(target, [*path, target])):
                return found
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = cycle_from(module, [module])
            assert cycle is None, " -> ".join(cycle)


def test_each_module_invariant_lives_in_a_file_named_after_it():
    from harness.spec.invariant_catalog import DECLARED

    checks = REPO / "harness" / "invariants"
    assert [name for name in DECLARED if not (checks / f"{name}.py").is_file()] == []


def test_the_readme_layout_names_every_harness_module():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("\nharness/ ") : readme.index("\ntests/ ")]
    from harness.spec.invariant_catalog import DECLARED

    unnamed = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "harness").rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py")
        and path.stem not in DECLARED  # the rule "one module per invariant, named after it" covers these
        and (path.name not in block or (path.parent.name != "harness" and f"  {path.parent.name}/" not in block))
    ]
    assert unnamed == []
