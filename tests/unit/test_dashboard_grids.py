"""The Orders grid's Cancel cell (dashboard/grids.py): the API path it calls, from
well-formed ids only; an OCO leg cancels its whole list."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import dash
import httpx
import pytest

from dashboard import grids

ORDER = str(uuid.uuid4())
LIST = str(uuid.uuid4())


@pytest.fixture
def calls() -> Iterator[list[str]]:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer t"
        seen.append(f"{request.method} {request.url.path}")
        return httpx.Response(202, json={"status": "CANCEL_REQUESTED"})

    grids.configure("http://api.test", httpx.MockTransport(answer))
    yield seen
    grids.configure("")


def cancel(value: Any, row_id: str = ORDER) -> Any:
    return grids.cancel_order(
        {"rowId": row_id, "value": value}, {"token": "t"})


def test_cancel_deletes_the_order_and_an_oco_leg_its_list(calls: list[str]) -> None:
    cancel("cancel")
    cancel(f"cancel-list:{LIST}")
    assert calls == [f"DELETE /api/trading/orders/{ORDER}",
                     f"DELETE /api/trading/order-lists/{LIST}"]


def test_a_malformed_id_never_reaches_an_api_path(calls: list[str]) -> None:
    for value, row in (("cancel-list:../admin", ORDER), ("cancel", "../x"), ("other", ORDER)):
        with pytest.raises(dash.exceptions.PreventUpdate):
            cancel(value, row)
    assert calls == []
