"""The dashboard's own Dash component (EventStream): its props reach the renderer, and Dash
serves its JS like any component library's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dash._callback as registry
import pytest

import dashboard
from dashboard.app import create_dash_app
from dashboard.components import EventStream


def test_event_stream_is_a_dash_component_of_our_namespace() -> None:
    stream = EventStream(id="s", url=None, events=["KLINE"], batchMs=250)
    assert stream.to_plotly_json() == {
        "props": {"id": "s", "url": None, "events": ["KLINE"], "batchMs": 250},
        "type": "EventStream", "namespace": "tradeledger"}


@pytest.fixture
def module_callbacks_kept() -> Iterator[None]:
    """Serving a page moves the module-level callbacks into that app; give them back, for
    the tests that build an app after this one."""
    saved = (dict(registry.GLOBAL_CALLBACK_MAP), list(registry.GLOBAL_CALLBACK_LIST),
             list(registry.GLOBAL_INLINE_SCRIPTS))
    yield
    registry.GLOBAL_CALLBACK_MAP.update(saved[0])
    registry.GLOBAL_CALLBACK_LIST[:] = saved[1]
    registry.GLOBAL_INLINE_SCRIPTS[:] = saved[2]


@pytest.mark.usefixtures("module_callbacks_kept")
def test_dash_serves_the_components_js_with_the_page() -> None:
    [dist] = dashboard._js_dist
    source = Path(dashboard.__file__).parent / dist["relative_package_path"]
    assert "window.tradeledger" in source.read_text()  # the namespace the renderer looks in
    client = create_dash_app("http://127.0.0.1:1").server.test_client()
    page = client.get("/").get_data(as_text=True)
    assert "_dash-component-suites/dashboard/components/event_stream" in page
    served = client.get("/_dash-component-suites/dashboard/components/event_stream.js")
    assert served.status_code == 200 and b"class EventStream" in served.data
