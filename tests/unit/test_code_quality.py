"""The house style is enforced, not hoped for: ruff over the tree, mypy --strict on domain,
commands, projections and adapters (configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=240, check=False)


def test_ruff_finds_nothing() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_passes_on_every_layer_but_the_dashboard() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
