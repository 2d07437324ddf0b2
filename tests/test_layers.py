"""The package's layers only point down, and no modules import each other in a circle.

Every `import` in rag/ and ui/ counts, including the lazy ones inside functions (they run too); for the layers,
imports under `if TYPE_CHECKING:` count as well (a type from above is a design smell too), for circles they do
not (they never run). The layers, bottom first, are in LAYERS; see docs/extending.md. Modules of one layer that
belong to different components (e.g. rag.ingest and rag.retrieve) are independent of each other: what both need
goes one floor down.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

# bottom first: per layer, its components and the module prefixes each holds (the longest matching prefix wins)
LAYERS: list[dict[str, tuple[str, ...]]] = [
    {"ground floor": ("rag.version", "rag.errors", "rag.types", "rag.core", "rag.text_units", "rag.prompts", "rag.openai_client")},
    {"config": ("rag.config",)},
    {"index": ("rag.index",)},
    {"ingest": ("rag.ingest",), "retrieve": ("rag.retrieve",), "generate": ("rag.generate",)},
    {"pipeline": ("rag.pipeline",)},
    {
        "evaluate": ("rag.evaluate",), "serve": ("rag.serve",), "interop": ("rag.interop",),
        "testing": ("rag.testing",),
    },
    {"cli": ("rag.cli", "rag.__main__"), "python api": ("rag", "rag.api")},  # `rag` itself: the public names
    {"ui": ("ui",)},
]

# pairs (importer, imported) of components that must stay apart although the layers would allow it: answering
# questions never needs the write side
APART = {("pipeline", "ingest")}


def _component(module: str) -> tuple[int, str]:
    """(layer, component) of a module."""
    best: tuple[int, str, str] | None = None
    for level, components in enumerate(LAYERS):
        for component, prefixes in components.items():
            for prefix in prefixes:
                if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[2])):
                    best = (level, component, prefix)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS in {__file__}"
    return best[0], best[1]


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in ("rag", "ui"):
        for path in sorted((REPO / root).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path, known: dict[str, Path], typing_too: bool) -> set[str]:
    """Project modules that `module` imports when it runs (at import time or inside functions), plus those it
    imports for type checking only when `typing_too`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node) and not typing_too:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {t for t in targets if t in known and t != module}


def _graph(typing_too: bool) -> dict[str, set[str]]:
    known = _modules()
    return {module: _imports(module, path, known, typing_too) for module, path in known.items()}


def test_imports_only_point_down() -> None:
    wrong = []
    for module, targets in _graph(typing_too=True).items():
        level, component = _component(module)
        for target in sorted(targets):
            target_level, target_component = _component(target)
            if target_component == component or (target_level < level and (component, target_component) not in APART):
                continue
            reason = "must stay apart" if target_level < level else "is not below"
            wrong.append(f"{module} imports {target} ({target_component} {reason} {component})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_circles() -> None:
    graph = _graph(typing_too=False)
    circles = [sorted(group) for group in _strongly_connected(graph) if len(group) > 1]
    assert not circles, "modules that import each other in a circle: " + "; ".join(" <-> ".join(c) for c in circles)


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (the graph is small, but recursion depth should not depend on it)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def test_the_library_never_imports_the_ui() -> None:
    """The UI's modules (ui/*.py, imported by their bare names as Streamlit runs them) stay out of rag/."""
    ui_names = {"ui", *(path.stem for path in (REPO / "ui").rglob("*.py"))}
    wrong = []
    for path in sorted((REPO / "rag").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            )
            wrong += [f"{path.relative_to(REPO)} imports {name}" for name in names if name.split(".")[0] in ui_names]
    assert not wrong, "\n".join(wrong)
