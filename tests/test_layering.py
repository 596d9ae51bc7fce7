"""The house's walls (docs/architecture.md).

* Packages depend one way: app → realtime → meetings.
* Inside the domain, parts depend one way: evaluation → proceedings → planning → organisation
  → foundation; a consequence that flows upward goes through ``foundation.events``.
* No import cycle inside a package, and no import hidden inside a function (that is how the
  old cycles were kept loadable); ``if TYPE_CHECKING:`` imports are for annotations only and
  are not counted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "realtime", "meetings")
FORBIDDEN = {"meetings": {"app", "realtime"}, "realtime": {"app"}}
#: The domain's parts, lowest first: each may import only itself and those before it.
DOMAIN_PARTS = ("foundation", "organisation", "planning", "proceedings", "evaluation")
#: Imports allowed inside a function: documented optional dependencies only. None today.
FUNCTION_IMPORT_ALLOWED: set[tuple[str, str]] = set()


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            yield ".".join(parts), path


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def runtime_imports(path: Path, module: str) -> list[tuple[str, int]]:
    """Modules imported when the file runs (absolute names), with their line numbers.
    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int]] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                continue
            if isinstance(node, ast.Import):
                found.extend((alias.name, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                found.append((target, node.lineno))
                found.extend((f"{target}.{alias.name}", node.lineno) for alias in node.names)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt) and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    visit([child])

    visit(tree.body)
    return found


def graph() -> dict[str, set[str]]:
    known = dict(modules())
    edges: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        for target, _ in runtime_imports(path, module):
            if target in known and target != module:
                edges[module].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                strongconnect(w)
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

    for v in edges:
        if v not in index:
            strongconnect(v)
    return found


def _is_ancestor(candidate: str, module: str) -> bool:
    return module.startswith(candidate + ".")


def test_lower_layers_never_import_higher_ones():
    violations = []
    for module, path in modules():
        package = module.split(".")[0]
        for target, line in runtime_imports(path, module):
            if target.split(".")[0] in FORBIDDEN.get(package, set()):
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert violations == []


def test_domain_has_no_web_dependencies():
    for module, path in modules():
        if module.split(".")[0] == "meetings":
            imported = {t.split(".")[0] for t, _ in runtime_imports(path, module)}
            assert not imported & {"starlette", "uvicorn", "websockets", "jinja2"}, path


def test_domain_parts_depend_one_way():
    rank = {part: i for i, part in enumerate(DOMAIN_PARTS)}
    violations = []
    for module, path in modules():
        names = module.split(".")
        if names[0] != "meetings" or len(names) < 2 or names[1] not in rank:
            continue
        for target, line in runtime_imports(path, module):
            parts = target.split(".")
            if parts[0] == "meetings" and len(parts) > 1 and parts[1] in rank and rank[parts[1]] > rank[names[1]]:
                violations.append(f"{path.relative_to(ROOT)}:{line} ({names[1]}) imports {target}")
    assert violations == [], "a lower part of the domain imports a higher one; publish an event instead"


def test_no_import_cycle_inside_a_package():
    edges = graph()
    # A package's __init__ importing its own modules is how a package is built, not a cycle.
    for module in edges:
        edges[module] = {t for t in edges[module] if not _is_ancestor(t, module)}
    assert cycles(edges) == []


def test_no_import_inside_a_function():
    hidden = []
    for module, path in modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    name = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                    if (module, name or "") not in FUNCTION_IMPORT_ALLOWED:
                        hidden.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name} inside {func.name}()")
    assert hidden == []


def test_the_layering_checks_can_fail():
    """The cycle finder and the import reader see what they must (guards the guards)."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    imports = dict(runtime_imports(ROOT / "meetings" / "evaluation" / "three_month.py",
                                   "meetings.evaluation.three_month"))
    assert "meetings.proceedings.attendance" in imports and "meetings.foundation.events" in imports
