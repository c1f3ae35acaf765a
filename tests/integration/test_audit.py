"""Tamper evidence over the stored events, `audit verify`, and time travel."""

from __future__ import annotations

import psycopg
import pytest

from adapters.cli import main
from adapters.platform.bootstrap import Runtime
from adapters.postgres.replay import replay, resolve_projections, verify_audit
from domain.order import order_id_for
from projections.audit import order_state_at
from tests.integration.test_projections import envelopes, make_activity, project

pytestmark = pytest.mark.integration


def tamper(url: str, schema: str, notification_id: int) -> None:
    """Alter a stored event in place, as someone with database access could."""
    with psycopg.connect(url) as conn:
        conn.execute(
            f'UPDATE "{schema}".tradeledger_events SET state = '
            "convert_to(replace(convert_from(state, 'UTF8'), '0.006', '0.600'), 'UTF8') "
            "WHERE notification_id = %s", (notification_id,))


def test_audit_verify_names_the_event_updated_in_place(
        runtime: Runtime, cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    make_activity(runtime.app, orders=2)
    schema, url = runtime.settings.database_schema, runtime.database_url
    items = envelopes(runtime.app)
    project(runtime, items)
    assert main(["audit", "verify"]) == 0
    assert f"OK: {len(items)} events" in capsys.readouterr().out

    fills = [e for e in items if e.event_type == "OrderFilled"
             and e.payload["quantity"] == "0.006"]
    target = fills[0]
    tamper(url, schema, target.notification_id)
    tamper(url, schema, fills[1].notification_id)
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"TAMPERED: event {target.notification_id} " in out
    assert target.aggregate_id in out and "altered in place" in out

    # Rebuilding the chain would bless the change: replay refuses unless forced.
    refused = replay(runtime.app, url, schema, resolve_projections("audit"))
    assert "TAMPERED" in refused.refused
    with psycopg.connect(url) as conn:
        assert not verify_audit(conn, schema).ok


def test_the_chain_replays_identically_and_new_events_extend_it(runtime: Runtime) -> None:
    make_activity(runtime.app, orders=1)
    schema, url = runtime.settings.database_schema, runtime.database_url
    project(runtime, envelopes(runtime.app)[:4])  # chain catches up from the store anyway
    with psycopg.connect(url) as conn:
        assert verify_audit(conn, schema).checked == 4
    project(runtime, envelopes(runtime.app))
    with psycopg.connect(url) as conn:
        before = conn.execute(f'SELECT * FROM "{schema}".audit_chain ORDER BY 1').fetchall()
    replay(runtime.app, url, schema, resolve_projections("audit"))
    with psycopg.connect(url) as conn:
        after = conn.execute(f'SELECT * FROM "{schema}".audit_chain ORDER BY 1').fetchall()
        assert verify_audit(conn, schema).ok
    assert after == before and len(after) == len(envelopes(runtime.app))


def test_time_travel_returns_the_state_at_every_version_and_time(runtime: Runtime) -> None:
    account = make_activity(runtime.app, orders=1)
    order_id = order_id_for(account, "b0")
    events = list(runtime.app.events.get(order_id))
    expected = ["PENDING", "SUBMITTED", "NEW", "PARTIALLY_FILLED", "FILLED"]
    assert len(events) == len(expected)
    for version, status in enumerate(expected, 1):
        state = order_state_at(events, version=version)
        assert state is not None and state.status.value == status
        same = runtime.app.get_order(order_id, version=version)
        assert (state.status, state.filled_quantity) == (same.status, same.filled_quantity)
        at = order_state_at(events, at=events[version - 1].timestamp)
        assert at is not None and at.version == version
