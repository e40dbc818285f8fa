"""The layout rules of GUIDE.md that code review alone would let slip."""

from __future__ import annotations

import ast
import re
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


# impl's own layers: the building blocks (impl/layers) import only each other; the machinery (registry, inject,
# state) no other impl module; the methods sit on both; nothing imports a method but its package (the registry
# loads them by name), and `impl` itself exports the machinery.
IMPL_IMPORTS = {
    "impl.layers": {"impl.layers"},
    "impl.registry": set(),
    "impl.inject": set(),
    "impl.state": set(),
    "impl.methods": {"impl.layers", "impl.inject", "impl.registry", "impl.methods"},
    "impl": {"impl.inject", "impl.registry", "impl.state"},
}


def package_imports(path: Path, package: str) -> set[str]:
    """The modules of `package` that `path` imports (dotted), wherever the import statement is."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith(f"{package}.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == package:
                found |= {f"{package}.{alias.name}" for alias in node.names}
            elif node.module.startswith(f"{package}."):
                found.add(node.module)
    return found


def modules_of(package: str) -> dict[str, Path]:
    return {
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (REPO / package).rglob("*.py")
    }


def impl_part(module: str) -> str:
    """`impl.layers.phm` -> `impl.layers`, `impl.registry` -> itself, `impl` -> itself."""
    return ".".join(module.split(".")[:2])


def test_impl_is_layered():
    modules = modules_of("impl")
    assert {impl_part(m) for m in modules} <= set(IMPL_IMPORTS)  # every module sits in a part
    wrong = sorted(
        f"{module} imports {target}"
        for module, path in modules.items()
        for target in package_imports(path, "impl")
        if impl_part(target) not in IMPL_IMPORTS[impl_part(module)]
    )
    assert not wrong, wrong


EQUATION = re.compile(r"\S = \S")  # `lhs = rhs`, spaced: an equation, not a keyword default (`n=4`)


def test_every_impl_layer_module_states_its_equation():
    """A layer's module docstring carries the paper's equation: the first thing its reader meets."""
    missing = [
        path.name
        for path in sorted((REPO / "impl" / "layers").glob("[!_]*.py"))
        if not EQUATION.search(ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "")
    ]
    assert missing == []


def impl_private_names() -> set[str]:
    """The private names impl defines: module-level `_x` (functions, classes, constants) and `self._x` attributes."""
    private = set()
    for path in (REPO / "impl").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                private.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                private |= {target.id for target in targets if isinstance(target, ast.Name)}
        for node in ast.walk(tree):
            stored = isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
            if stored and isinstance(node.value, ast.Name) and node.value.id == "self":
                private.add(node.attr)
    return {name for name in private if is_private(name)}


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_harness_reads_no_private_name_of_impl():
    """Never `from impl.x import _y`, `import impl._x`, `impl.x._y`, nor `obj._y` for a name impl keeps private."""
    private = impl_private_names()
    assert {"_owners", "_members", "_Enter"} <= private  # the collection works (IntrinsicSAID's)
    found = []
    for path in sorted((REPO / "harness").rglob("*.py")):
        where = str(path.relative_to(REPO))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "impl":
                names = [*node.module.split("."), *(alias.name for alias in node.names)]
                found += [f"{where}:{node.lineno} imports {node.module}: {n}" for n in names if is_private(n)]
            elif isinstance(node, ast.Import):
                found += [
                    f"{where}:{node.lineno} imports {alias.name}"
                    for alias in node.names
                    if alias.name.split(".")[0] == "impl" and any(map(is_private, alias.name.split(".")))
                ]
            elif isinstance(node, ast.Attribute) and is_private(node.attr):
                root = node.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                own = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")  # harness's own object
                if (node.attr in private and not own) or (isinstance(root, ast.Name) and root.id == "impl"):
                    found.append(f"{where}:{node.lineno} reads .{node.attr}")
    assert found == []


def test_spec_folder_is_data_only():
    assert not list((REPO / "spec").rglob("*.py"))


def test_every_method_has_a_module_named_like_it():
    for name in method_names():
        assert (REPO / "impl" / "methods" / f"{name}.py").is_file(), name


def test_every_declared_invariant_has_a_check():
    """A name the catalog declares (so validation accepts it, or `--recipe` runs it) has a registered check for
    `harness check`; a module invariant and a recipe invariant never share a name."""
    from harness.invariants import INVARIANTS
    from harness.spec.invariant_catalog import DECLARED, RECIPE

    assert not set(DECLARED) & set(RECIPE)
    assert set(INVARIANTS) == set(DECLARED) | set(RECIPE)


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


def layer_of(module: str) -> str:
    return module.split(".")[1]


def test_harness_is_layered_and_imports_only_downwards():
    modules = modules_of("harness")
    assert {layer_of(m) for m in modules if m != "harness"} <= set(LAYERS)  # every module sits in a layer
    upward = sorted(
        f"{module} imports {target}"
        for module, path in modules.items()
        if module != "harness"
        for target in package_imports(path, "harness")
        if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module))
    )
    assert not upward, upward


def test_harness_has_no_import_cycle():
    modules = modules_of("harness")
    graph = {m: {t for t in package_imports(p, "harness") if t in modules and t != m} for m, p in modules.items()}
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


def registered_in(path: Path) -> list[str]:
    """The names `path` registers: each `@invariant("name")` decorator."""
    return [
        decorator.args[0].value
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef)
        for decorator in node.decorator_list
        if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "invariant"
    ]


def test_each_invariant_lives_in_a_file_named_after_it():
    """One file per invariant, module and recipe alike: `harness/invariants/<name>.py` registers `name` and no
    other; no other file registers one."""
    from harness.spec.invariant_catalog import DECLARED, RECIPE

    registered = {path.stem: registered_in(path) for path in sorted((REPO / "harness" / "invariants").glob("*.py"))}
    assert {stem: names for stem, names in registered.items() if names} == {
        name: [name] for name in [*DECLARED, *RECIPE]
    }


def test_the_contributing_layout_names_every_harness_module():
    contributing = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    block = contributing[contributing.index("\nharness/ ") : contributing.index("\ntests/ ")]
    from harness.spec.invariant_catalog import DECLARED, RECIPE

    unnamed = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "harness").rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py")
        and path.stem not in {*DECLARED, *RECIPE}  # the rule "one module per invariant, named after it" covers these
        and (path.name not in block or (path.parent.name != "harness" and f"  {path.parent.name}/" not in block))
    ]
    assert unnamed == []


OURS = ("harness", "impl")


def renamed_imports(source: str) -> list[str]:
    """`import harness.x as y` / `from harness.x import m as y` (and impl's): one of our names under another."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{a.name} as {a.asname}" for a in node.names if a.asname and a.name.split(".")[0] in OURS]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in OURS:
            found += [f"{node.module}.{a.name} as {a.asname}" for a in node.names if a.asname]
    return found


def test_no_name_of_ours_is_imported_under_another_name_in_harness_or_impl():
    """One name per thing: `from harness.cli import options as types` gave one module two names."""
    assert renamed_imports("from harness.cli import options\nimport numpy as np\n") == []
    broken = "from harness.cli import options as types\nimport impl.registry as r\n"
    assert renamed_imports(broken) == ["harness.cli.options as types", "impl.registry as r"]
    offenders = {
        str(path.relative_to(REPO)): found
        for folder in OURS
        for path in (REPO / folder).rglob("*.py")
        if (found := renamed_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
