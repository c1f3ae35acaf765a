"""Fixtures of the unit tests."""

from __future__ import annotations

import pytest

from tests.unit.execution_world import World, make_world


@pytest.fixture
def world() -> World:
    """The execution manager on an in-memory exchange and fake time."""
    return make_world()
