"""Shared pytest set-up. Fixture modules live in tests/support/ and are plugins here."""

from __future__ import annotations

import importlib.util
import os
import warnings

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"websockets\..*")
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"binance\..*")

_FIXTURE_MODULES = [
    "tests.support.postgres",
    "tests.support.kafka",
    "tests.support.paper_exchange",
    "tests.support.system",
]
pytest_plugins = [m for m in _FIXTURE_MODULES if importlib.util.find_spec(m) is not None]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """Under CI=true a skipped integration, e2e or browser test counts as a failure."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and any(
        item.get_closest_marker(m) for m in ("integration", "e2e", "browser", "chaos")
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must run every test: {report.longrepr}"
