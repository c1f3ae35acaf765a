"""Arrows point inward: domain <- commands, projections <- adapters; dashboard talks HTTP only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"domain", "commands", "projections", "adapters", "dashboard"}
ALLOWED = {
    "domain": {"domain", "eventsourcing.domain"},
    "commands": {"domain", "commands", "eventsourcing"},
    "projections": {"domain", "projections", "eventsourcing.domain"},
    "dashboard": {"dashboard"},
}


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def allowed(package: str, name: str) -> bool:
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top == "__future__":
        return True
    rules = ALLOWED[package]
    if package == "dashboard":
        return top not in OURS or top == "dashboard"
    return any(name == rule or name.startswith(rule + ".") for rule in rules) or (
        top not in OURS and top != "eventsourcing" and package == "commands"
        and top in {"typing_extensions"}
    )


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_its_layer_may(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports_of(path):
            if not allowed(package, name):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "\n".join(offenders)


# ---- the module graph: every import, including those inside functions and under
# TYPE_CHECKING (ast.walk sees them all), resolved to our own modules --------------------

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    """Every module of our packages, by dotted name."""
    return {_module_name(path): path
            for package in sorted(OURS) for path in (ROOT / package).rglob("*.py")}


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules that `name` imports (`from p import m` counts m when it is a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = our_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_our_modules() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    source = "def f():\n    from adapters.platform import settings\n"
    tree_targets = [n.module for n in ast.walk(ast.parse(source))
                    if isinstance(n, ast.ImportFrom)]
    assert tree_targets == ["adapters.platform"]


def test_adapters_has_no_loose_module() -> None:
    loose = sorted(p.name for p in (ROOT / "adapters").glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"put these in a folder named for their role: {loose}"


def _role(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "adapters" and len(parts) > 1 else None


def test_adapters_never_import_processes_or_cli() -> None:
    offenders = [f"{name} imports {target}"
                 for name, targets in import_graph().items()
                 if _role(name) not in ("processes", "cli")
                 for target in targets if _role(target) in ("processes", "cli")]
    assert offenders == [], "\n".join(offenders)


def test_no_process_imports_another_process() -> None:
    offenders = [f"{name} imports {target}"
                 for name, targets in import_graph().items() if _role(name) == "processes"
                 for target in targets
                 if _role(target) == "processes" and target != "adapters.processes"
                 and target.split(".")[2] != name.split(".")[2]]
    assert offenders == [], "\n".join(offenders)


def test_only_the_console_entry_point_imports_the_cli() -> None:
    offenders = [f"{name} imports {target}"
                 for name, targets in import_graph().items() if _role(name) != "cli"
                 for target in targets if _role(target) == "cli"]
    assert offenders == [], "\n".join(offenders)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'tradeledger = "adapters.cli:main"' in pyproject
