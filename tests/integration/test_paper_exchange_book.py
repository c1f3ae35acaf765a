"""The paper exchange's order book and tape through python-binance: `depth`, `trades`,
`<symbol>@depth<levels>@100ms` and `<symbol>@trade`, agreeing with where orders fill."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from binance import AsyncClient, BinanceSocketManager, Client

from adapters.paper_exchange import BackgroundPaperExchange
from tests.support.paper_exchange import PaperExchangeHandle, binance_client, binance_module_marks

pytestmark = binance_module_marks()

D = Decimal


@pytest.fixture
def exchange(binance_on_paper: PaperExchangeHandle) -> Iterator[PaperExchangeHandle]:
    """The session's paper exchange; the symbols a test pins walk again afterwards."""
    pinned: list[str] = []
    original = binance_on_paper.set_price

    def set_price(symbol: str, price: Decimal | str, **kw: Any) -> dict[str, Any]:
        pinned.append(symbol)
        return original(symbol, price, **kw)

    binance_on_paper.set_price = set_price  # type: ignore[method-assign]
    yield binance_on_paper
    binance_on_paper.set_price = original  # type: ignore[method-assign]
    for symbol in set(pinned):
        price = requests.get(f"{binance_on_paper.url}/api/v3/ticker/price",
                             params={"symbol": symbol}, timeout=5).json()["price"]
        original(symbol, price, freeze=False)


@pytest.fixture
def client(exchange: PaperExchangeHandle) -> Iterator[Client]:
    """A python-binance Client with a fresh, default-funded key pair."""
    with binance_client(exchange) as c:
        yield c


def _levels(side: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(D(p), D(q)) for p, q in side]


def test_depth_is_sorted_around_the_prices_market_orders_fill_at(exchange: PaperExchangeHandle,
                                                                  client: Client) -> None:
    exchange.set_price("BTCUSDT", "50000")
    book = client.get_order_book(symbol="BTCUSDT", limit=5)
    bids, asks = _levels(book["bids"]), _levels(book["asks"])
    assert len(bids) == len(asks) == 5 and isinstance(book["lastUpdateId"], int)
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert len({p for p, _ in bids}) == 5 and all(q > 0 for _, q in bids + asks)
    assert bids[0][0] < asks[0][0]
    buy = client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
    sell = client.order_market_sell(symbol="BTCUSDT", quantity="0.001")
    assert D(buy["fills"][0]["price"]) == asks[0][0] == D("50005")
    assert D(sell["fills"][0]["price"]) == bids[0][0] == D("49995")
    # Every fill moves the book's update id on.
    assert client.get_order_book(symbol="BTCUSDT", limit=5)["lastUpdateId"] > book["lastUpdateId"]


def test_a_liquidity_cap_is_the_size_of_the_best_level(exchange: PaperExchangeHandle,
                                                       client: Client) -> None:
    exchange.set_price("ETHUSDT", "2000", liquidity="0.25")
    book = client.get_order_book(symbol="ETHUSDT", limit=10)
    assert D(book["asks"][0][1]) == D(book["bids"][0][1]) == D("0.25")
    assert len(book["asks"]) == 10


@pytest.mark.parametrize(("limit", "weight", "levels"),
                         [(None, 5, 100), (100, 5, 100), (500, 25, 500), (1000, 50, 1000),
                          (5000, 250, 5000), (6000, 250, 5000)])
def test_depth_weight_and_levels_follow_the_limit(exchange: PaperExchangeHandle,
                                                  limit: int | None, weight: int,
                                                  levels: int) -> None:
    url = f"{exchange.url}/api/v3/depth"
    params: dict[str, Any] = {"symbol": "SOLUSDT"}
    first = requests.get(url, params=params | {"limit": 5}, timeout=5)
    if limit is not None:
        params["limit"] = limit
    second = requests.get(url, params=params, timeout=10)
    used = int(second.headers["X-MBX-USED-WEIGHT-1M"]) - int(first.headers["X-MBX-USED-WEIGHT-1M"])
    assert used == weight
    body = second.json()
    assert len(body["bids"]) == len(body["asks"]) == levels


def test_depth_of_an_unknown_symbol_is_1121(exchange: PaperExchangeHandle) -> None:
    res = requests.get(f"{exchange.url}/api/v3/depth", params={"symbol": "NOPEUSDT"}, timeout=5)
    assert res.status_code == 400 and res.json()["code"] == -1121


def test_recent_trades_show_a_users_fill_on_the_tape(exchange: PaperExchangeHandle,
                                                     client: Client) -> None:
    exchange.set_price("LINKUSDT", "20")
    fill = client.order_market_buy(symbol="LINKUSDT", quantity="1.5")["fills"][0]
    trades = client.get_recent_trades(symbol="LINKUSDT", limit=50)
    ids = [t["id"] for t in trades]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    last = trades[-1]
    assert (last["price"], last["qty"]) == (fill["price"], "1.50000000")
    assert last["isBuyerMaker"] is False  # the user bought from the book
    assert D(last["quoteQty"]) == D(fill["price"]) * D("1.5")
    assert len(client.get_recent_trades(symbol="LINKUSDT", limit=1)) == 1


def test_depth_and_trade_streams_deliver_books_and_prints(exchange: PaperExchangeHandle,
                                                          client: Client) -> None:
    exchange.set_price("BNBUSDT", "600")

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
        aclient = await AsyncClient.create()
        try:
            bm = BinanceSocketManager(aclient)
            async with bm.depth_socket("BNBUSDT", depth=BinanceSocketManager.WEBSOCKET_DEPTH_10,
                                       interval=100) as stream:
                books = [await asyncio.wait_for(stream.recv(), 5) for _ in range(2)]
            async with bm.trade_socket("BNBUSDT") as stream:
                await asyncio.sleep(0.3)  # subscribed before the fill
                await asyncio.to_thread(client.order_market_sell, symbol="BNBUSDT",
                                        quantity="0.2")
                trade = await asyncio.wait_for(stream.recv(), 5)
            async with bm.multiplex_socket(["bnbusdt@depth5@100ms", "bnbusdt@depth20"]) as s:
                combined = [await asyncio.wait_for(s.recv(), 5) for _ in range(2)]
            return books, trade, combined
        finally:
            await aclient.close_connection()

    books, trade, combined = asyncio.run(scenario())
    for book in books:
        assert len(book["bids"]) == len(book["asks"]) == 10
        assert D(book["bids"][0][0]) == D("599.94") and D(book["asks"][0][0]) == D("600.06")
    assert trade["e"] == "trade" and trade["s"] == "BNBUSDT"
    assert (D(trade["p"]), D(trade["q"]), trade["m"]) == (D("599.94"), D("0.2"), True)
    sizes = {c["stream"]: len(c["data"]["bids"]) for c in combined}
    assert sizes == {"bnbusdt@depth5@100ms": 5, "bnbusdt@depth20": 20}


def test_book_and_tape_ids_keep_growing_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"

    def read(server: BackgroundPaperExchange) -> tuple[int, int]:
        base = server.url + "/api/v3/"
        book = requests.get(base + "depth", params={"symbol": "XRPUSDT", "limit": 5}, timeout=5)
        trades = requests.get(base + "trades", params={"symbol": "XRPUSDT", "limit": 1},
                              timeout=5).json()
        return book.json()["lastUpdateId"], trades[-1]["id"] if trades else 0

    with BackgroundPaperExchange(state, history_days=1, tick_ms=50) as first:
        keys = PaperExchangeHandle(first).issue_keys()
        c = Client(keys.api_key, keys.secret_key, ping=False)
        c.API_URL = first.url + "/api"
        c.order_market_buy(symbol="XRPUSDT", quantity="10")  # at least one print on the tape
        c.close_connection()
        before = read(first)
    with BackgroundPaperExchange(state, history_days=1, tick_ms=50) as second:
        after = read(second)
        while after[1] == 0:  # the tape starts empty: wait for the walk's first print
            time.sleep(0.05)
            after = read(second)
    assert before[1] > 0
    assert after[0] > before[0] and after[1] > before[1]
