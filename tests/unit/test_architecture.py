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
