"""Order and trade history: server-side filters and cursor paging beyond 500 rows, over real
read models (Postgres, the real projector)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest

from adapters.platform.bootstrap import Runtime
from commands.messages import RecordFill
from tests.support.api import LIMIT_ORDER, User, project, register

pytestmark = pytest.mark.integration
D = Decimal
ORDERS, TRADES = "/api/trading/orders", "/api/trading/trades"


def place(api: Any, user: User, **overrides: str) -> UUID:
    answer = api.post(ORDERS, headers=user.headers, json={**LIMIT_ORDER, **overrides})
    assert answer.status_code == 202, answer.text
    return UUID(answer.json()["orderId"])


def pages(api: Any, user: User, url: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Follow X-Next-Cursor to the end."""
    out, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = api.get(url, headers=user.headers, params=query)
        assert answer.status_code == 200, answer.text
        out.append(answer.json())
        cursor = answer.headers.get("X-Next-Cursor")
        if cursor is None:
            return out


def test_filters_by_symbol_side_status_and_time(api: Any, runtime: Runtime) -> None:
    user = register(api)
    btc_buy = place(api, user)
    btc_sell = place(api, user, side="SELL", price="99000.00")
    eth_buy = place(api, user, symbol="ETHUSDT", quantity="0.01", price="3000.00")
    for order_id, trade_id, price in ((btc_buy, "h-1", "90000.00"), (eth_buy, "h-2", "3000.00")):
        qty = "0.001" if order_id == btc_buy else "0.01"
        runtime.app.handle(RecordFill(order_id=order_id, trade_id=trade_id, price=D(price),
                                      quantity=D(qty), commission=D(0), commission_asset="USDT"))
    project(runtime)

    def ids(url: str, **params: str) -> set[str]:
        answer = api.get(url, headers=user.headers, params=params)
        assert answer.status_code == 200, answer.text
        return {row["orderId"] for row in answer.json()}

    assert ids(ORDERS, symbol="btcusdt") == {str(btc_buy), str(btc_sell)}  # hideOtherPairs
    assert ids(ORDERS, side="sell") == {str(btc_sell)}
    assert ids(ORDERS, status="FILLED") == {str(btc_buy), str(eth_buy)}
    assert ids(ORDERS, status="filled,pending", symbol="BTCUSDT", side="BUY") == {str(btc_buy)}
    assert ids(ORDERS, status="PENDING") == {str(btc_sell)}
    assert ids(TRADES, symbol="ETHUSDT") == {str(eth_buy)}
    assert ids(TRADES, side="SELL") == set()
    with psycopg.connect(runtime.database_url) as conn, conn.transaction():
        schema = runtime.settings.database_schema
        conn.execute(f'UPDATE "{schema}".orders_view SET created_at = created_at - '
                     "interval '3 days' WHERE order_id = %s", (str(btc_sell),))
        conn.execute(f'UPDATE "{schema}".trades_view SET time = time - '
                     "interval '3 days' WHERE order_id = %s", (str(eth_buy),))
    today = datetime.now(UTC).date()
    two_days_ago = (today - timedelta(days=2)).isoformat()
    assert ids(ORDERS, **{"from": two_days_ago}) == {str(btc_buy), str(eth_buy)}
    assert ids(ORDERS, to=two_days_ago) == {str(btc_sell)}
    assert ids(TRADES, **{"from": today.isoformat()}) == {str(btc_buy)}
    assert ids(TRADES, to=two_days_ago) == {str(eth_buy)}

    for url, params, field in (
            (ORDERS, {"status": "FILLED,NOPE"}, "status"), (ORDERS, {"side": "LONG"}, "side"),
            (TRADES, {"from": "soon"}, "from"), (TRADES, {"from": today.isoformat(),
                                                          "to": two_days_ago}, "from"),
            (ORDERS, {"cursor": "not-a-cursor"}, "cursor"),
            (TRADES, {"cursor": "bzE"}, "cursor")):
        answer = api.get(url, headers=user.headers, params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["error"]["code"] == "validation_failed", answer.text


def test_cursor_pages_through_more_than_500_orders_and_trades(api: Any,
                                                              runtime: Runtime) -> None:
    user = register(api)
    account = user.id
    schema = runtime.settings.database_schema
    # 1,203 orders and trades written straight into the read models: paging is a read-side
    # concern, and 1,203 placements through the write side would only slow the test down.
    with psycopg.connect(runtime.database_url) as conn, conn.transaction():
        conn.execute(
            f'INSERT INTO "{schema}".orders_view (order_id, account_id, client_order_id, '
            "symbol, side, type, quantity, status, filled_quantity, filled_quote, commission, "
            "created_at, updated_at, status_times, version, last_notification_id) "
            "SELECT gen_random_uuid(), %s, 'c' || i, 'BTCUSDT', 'BUY', 'LIMIT', 1, 'NEW', 0, 0, "
            "'{}'::jsonb, now() - (i / 3) * interval '1 second', now(), '{}'::jsonb, 1, i "
            "FROM generate_series(1, 1203) AS i", (account,))
        conn.execute(
            f'INSERT INTO "{schema}".trades_view (order_id, trade_id, account_id, symbol, side, '
            "price, quantity, quote_quantity, commission, commission_asset, is_maker, time, "
            "notification_id) SELECT gen_random_uuid(), 't' || i, %s, 'BTCUSDT', 'BUY', 1, 1, "
            "1, 0, 'USDT', false, now() - (i / 3) * interval '1 second', 1000000 + i "
            "FROM generate_series(1, 1203) AS i", (account,))

    order_pages = pages(api, user, ORDERS, limit=500)
    assert [len(p) for p in order_pages] == [500, 500, 203]
    orders = [o for p in order_pages for o in p]
    assert len({o["orderId"] for o in orders}) == 1203  # none twice, none skipped
    assert [o["createdAt"] for o in orders] == sorted((o["createdAt"] for o in orders),
                                                      reverse=True)
    trade_pages = pages(api, user, TRADES, limit=500, symbol="BTCUSDT")
    assert [len(p) for p in trade_pages] == [500, 500, 203]
    assert len({t["tradeId"] for p in trade_pages for t in p}) == 1203
    # The old paging still works, and the two cannot be mixed.
    old = api.get(ORDERS, headers=user.headers, params={"limit": 10, "offset": 500}).json()
    assert [o["orderId"] for o in old] == [o["orderId"] for o in orders[500:510]]
    first = api.get(ORDERS, headers=user.headers, params={"limit": 5})
    mixed = api.get(ORDERS, headers=user.headers,
                    params={"cursor": first.headers["X-Next-Cursor"], "offset": 5})
    assert mixed.status_code == 422
    foreign = api.get(TRADES, headers=user.headers,
                      params={"cursor": first.headers["X-Next-Cursor"]})
    assert foreign.status_code == 422  # an orders cursor on the trades list
    last = api.get(ORDERS, headers=user.headers, params={"limit": 1203})
    assert last.status_code == 422  # limit stays at most 500: more is what the cursor is for
