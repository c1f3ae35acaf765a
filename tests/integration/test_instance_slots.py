"""Replicas of a consumer claim distinct partition-owner indexes with advisory locks."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from adapters.platform.runtime import resolve_instance
from tests.support.postgres import make_test_settings

pytestmark = pytest.mark.integration


def test_replicas_claim_distinct_slots_and_a_released_slot_is_taken_again(
        pg_url: str, tmp_path: Path) -> None:
    settings = make_test_settings(pg_url, "public", tmp_path, instances=2)
    name = f"test-{uuid.uuid4().hex[:8]}"
    first = resolve_instance(name, None, None, settings)
    second = resolve_instance(name, None, None, settings)
    try:
        assert {first[0], second[0]} == {0, 1} and first[1] == second[1] == 2
        first[2].close()  # that replica dies: its slot falls free
        third = resolve_instance(name, None, None, settings)
        assert third[0] == first[0]
        third[2].close()
    finally:
        second[2].close()


def test_an_explicit_index_is_used_as_given(pg_url: str, tmp_path: Path) -> None:
    settings = make_test_settings(pg_url, "public", tmp_path, instances=3, instance=2)
    assert resolve_instance("projector", None, None, settings)[:2] == (2, 3)
    assert resolve_instance("projector", 1, 4, settings)[:2] == (1, 4)
