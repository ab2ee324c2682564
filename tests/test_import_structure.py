"""The package's structure, read from its source: every import of lightmark's own modules at the top of its
module, no package importing one above it (models < landmarks < benchmarks < search < reports < cli, with
the top-level helpers such as errors.py below all of them), and no import cycle between modules.

Function-local imports hid a cycle once (search/study.py -> live.py -> study.py); these checks keep the
structure visible. Only the project's own modules are checked: deferring a heavy optional dependency
(onnxruntime, psycopg2, ...) inside a function is allowed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lightmark"
LAYERS = ("models", "data", "heatmaps", "training", "deploy", "benchmarks", "search", "tabular", "reports",
          "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The project modules an import statement loads (the most specific existing module per name)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    found = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name.startswith("lightmark") and name != "lightmark":
            found.append(name)
    return sorted(set(found))


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """(import node, at module level) for every import; `if TYPE_CHECKING:` blocks are not imports at run time."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top: set[int] = set()
    skipped: set[int] = set()
    for stmt in tree.body:
        if _is_type_checking(stmt):
            skipped.update(id(n) for n in ast.walk(stmt))
        elif isinstance(stmt, ast.Try | ast.If):
            top.update(id(n) for n in stmt.body if isinstance(n, ast.Import | ast.ImportFrom))
        top.add(id(stmt))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skipped:
            yield node, id(node) in top


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    local: list[str] = []
    for name, path in MODULES.items():
        for node, at_top in _imports(path):
            targets = [t for t in _targets(name, path.name == "__init__.py", node) if t != name]
            if targets and not at_top:
                local.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {', '.join(targets)}")
            edges[name].update(targets)
    return edges, local


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) >= 2 and parts[1] in LAYERS else -1


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_checker_sees_the_package():
    assert {"lightmark.models.spec", "lightmark.search.study", "lightmark.cli.main"} <= set(MODULES)
    edges, _ = _graph()
    assert "lightmark.models.spec" in edges["lightmark.models.hourglass"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _layer("lightmark.cli.main") > _layer("lightmark.search.study") > _layer("lightmark.errors")


def test_project_imports_are_at_the_top_of_their_module():
    _, local = _graph()
    assert not local, "function-local imports of lightmark's own modules:\n" + "\n".join(local)


def test_no_package_imports_one_above_it():
    edges, _ = _graph()
    upward = [f"{a} -> {b}" for a, targets in edges.items() for b in sorted(targets) if _layer(b) > _layer(a)]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycles():
    cycles = _cycles(_graph()[0])
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_every_folder_has_a_layer():
    """A new folder must take its place in the import order (LAYERS), or its imports go unchecked."""
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(LAYERS), f"folders without a layer: {folders - set(LAYERS)}; layers without a folder: " \
                                   f"{set(LAYERS) - folders}"


MAX_FOLDER_LINES = 4000  # a folder a reader can hold in an afternoon; split it by job past this


def test_no_folder_holds_more_than_4000_lines():
    sizes = {layer: sum(len(p.read_text().splitlines()) for p in (PACKAGE / layer).rglob("*.py")) for layer in LAYERS}
    assert max(sizes.values()) <= MAX_FOLDER_LINES, f"lines per folder: {sizes}"
