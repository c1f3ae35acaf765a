"""Issue 15 on the write side: live exchangeInfo rules, keys refused for good, N = null,
and the stream dispatcher that never lets one account block another."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from decimal import Decimal
from uuid import uuid4

import pytest

from adapters.binance.symbols import (
    ExchangeInfoRefresher,
    SymbolCatalogAdapter,
    rules_from_exchange_info,
)
from adapters.binance.user_stream import EventDispatcher, report_from_execution
from commands.messages import (
    ConnectExchangeKeys,
    PlaceOrder,
    RecordExchangeKeysRejection,
    RegisterAccount,
)
from domain.errors import InvalidPrice, InvalidQuantity, SymbolNotTrading
from domain.order import Order
from domain.symbols import PercentPriceBySide
from domain.values import OrderType, Side
from tests.unit.fakes import make_app

D = Decimal

EXCHANGE_INFO = {"symbols": [{
    "symbol": "ETHUSDT", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "USDT",
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00",
         "tickSize": "0.01"},
        {"filterType": "LOT_SIZE", "minQty": "0.0001", "maxQty": "9000", "stepSize": "0.0001"},
        {"filterType": "NOTIONAL", "minNotional": "5", "applyMinToMarket": True},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "100",
         "stepSize": "0.001"},
        {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "1.2",
         "bidMultiplierDown": "0.8", "askMultiplierUp": "1.5", "askMultiplierDown": "0.9",
         "avgPriceMins": 5},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    ],
}, {"symbol": "BADUSDT"}]}


def eth() -> object:
    return rules_from_exchange_info(EXCHANGE_INFO)["ETHUSDT"]


def test_exchange_info_is_read_into_rules_with_every_filter() -> None:
    rules = rules_from_exchange_info(EXCHANGE_INFO)
    assert set(rules) == {"ETHUSDT", "BADUSDT"}  # a symbol without filters: no limits at all
    r = rules["ETHUSDT"]
    assert (r.step_size, r.tick_size, r.min_notional) == (D("0.0001"), D("0.01"), D("5"))
    assert (r.market_min_qty, r.market_max_qty, r.market_step_size) == (
        D("0.001"), D("100"), D("0.001"))
    assert r.percent_price == PercentPriceBySide(D("1.2"), D("0.8"), D("1.5"), D("0.9"))
    assert r.max_num_orders == 200 and r.status == "TRADING"


def test_a_symbol_not_trading_refuses_orders() -> None:
    rules = replace(rules_from_exchange_info(EXCHANGE_INFO)["ETHUSDT"], status="BREAK")
    with pytest.raises(SymbolNotTrading, match="BREAK") as info:
        rules.check(OrderType.MARKET, D("0.01"), None)
    assert info.value.code == "symbol_not_trading"


def test_more_decimals_than_step_or_tick_is_refused() -> None:
    rules = rules_from_exchange_info(EXCHANGE_INFO)["ETHUSDT"]
    with pytest.raises(InvalidQuantity, match="more decimals"):
        rules.check(OrderType.LIMIT, D("0.01005"), D("3000"), side=Side.BUY)
    with pytest.raises(InvalidPrice, match="more decimals"):
        rules.check(OrderType.LIMIT, D("0.01"), D("3000.001"), side=Side.BUY)
    rules.check(OrderType.LIMIT, D("0.0100000"), D("3000.000"), side=Side.BUY)  # zeros are fine


def test_market_lot_size_applies_to_market_orders_only() -> None:
    rules = rules_from_exchange_info(EXCHANGE_INFO)["ETHUSDT"]
    with pytest.raises(InvalidQuantity, match="MARKET"):
        rules.check(OrderType.MARKET, D("0.0005"), None)  # LOT_SIZE allows it, MARKET_LOT not
    with pytest.raises(InvalidQuantity, match="maximum 100 for MARKET"):
        rules.check(OrderType.MARKET, D("101"), None)
    rules.check(OrderType.LIMIT, D("101"), D("3000"), side=Side.BUY)
    rules.check(OrderType.MARKET, D("0.002"), None)


def test_percent_price_by_side_uses_the_side_and_the_live_price() -> None:
    rules = rules_from_exchange_info(EXCHANGE_INFO)["ETHUSDT"]
    ref = D("3000")
    rules.check(OrderType.LIMIT, D("0.01"), D("3600"), ref, Side.BUY)   # 1.2 x
    with pytest.raises(InvalidPrice, match="too far"):
        rules.check(OrderType.LIMIT, D("0.01"), D("3600.01"), ref, Side.BUY)
    with pytest.raises(InvalidPrice, match="too far"):
        rules.check(OrderType.LIMIT, D("0.01"), D("2699.99"), ref, Side.SELL)  # < 0.9 x
    rules.check(OrderType.LIMIT, D("0.01"), D("4500"), ref, Side.SELL)  # 1.5 x
    rules.check(OrderType.LIMIT, D("0.01"), D("9000"), None, Side.BUY)  # no price known: no band


@pytest.mark.parametrize("order_type", [OrderType.STOP_LOSS_LIMIT,
                                        OrderType.TAKE_PROFIT_LIMIT])
def test_percent_price_by_side_holds_a_stop_orders_price_when_placed(
        order_type: OrderType) -> None:
    # Binance's filters.md holds every order's `price` to the band, a stop order's too.
    rules = rules_from_exchange_info(EXCHANGE_INFO)["ETHUSDT"]
    ref = D("3000")
    with pytest.raises(InvalidPrice, match="too far") as info:
        rules.check(order_type, D("0.01"), D("2000"), ref, Side.SELL)  # < 0.9 x
    assert info.value.details["field"] == "price"
    with pytest.raises(InvalidPrice, match="too far"):
        rules.check(order_type, D("0.01"), D("3600.01"), ref, Side.BUY)  # > 1.2 x
    rules.check(order_type, D("0.01"), D("2700"), ref, Side.SELL)


def test_place_order_answers_with_the_live_rules_after_a_refresh() -> None:
    app = make_app()
    catalog = SymbolCatalogAdapter()
    app.symbols = catalog
    account = app.handle(RegisterAccount(email="r@example.com", password="p" * 12))

    def order(cid: str) -> PlaceOrder:
        return PlaceOrder(account_id=account, client_order_id=cid, symbol="ETHUSDT",
                          side="BUY", order_type="MARKET", quantity="0.01")

    app.handle(order("before"))  # the fallback table: trading
    info = {"symbols": [dict(EXCHANGE_INFO["symbols"][0], status="BREAK")]}
    refresher = ExchangeInfoRefresher(catalog, lambda: info)
    assert refresher.refresh() and catalog.live
    with pytest.raises(SymbolNotTrading):
        app.handle(order("during"))


def test_an_unreachable_exchange_keeps_the_fallback_table() -> None:
    catalog = SymbolCatalogAdapter()

    def down() -> object:
        raise ConnectionError("refused")

    assert not ExchangeInfoRefresher(catalog, down).refresh()
    assert not catalog.live and catalog.rules("BTCUSDT") is not None


def test_a_stale_rules_signal_refreshes_at_once() -> None:
    catalog = SymbolCatalogAdapter()
    calls: list[int] = []
    stale = threading.Event()

    def fetch() -> object:
        calls.append(1)
        return EXCHANGE_INFO

    refresher = ExchangeInfoRefresher(catalog, fetch, interval=3600, poll=0.02,
                                      stale_signals=[lambda: stale.is_set()])
    refresher.start()
    try:
        assert len(calls) == 1
        stale.set()
        deadline = time.monotonic() + 5
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(calls) >= 2
    finally:
        refresher.stop()


def trade_event(asset: object) -> dict[str, object]:
    return {"e": "executionReport", "c": "tlabc", "C": "", "i": 7, "s": "ETHUSDT", "X": "FILLED",
            "x": "TRADE", "t": 99, "L": "3000", "l": "0.01", "n": "0", "N": asset, "z": "0.01",
            "Z": "30", "m": False}


def test_a_null_commission_asset_is_no_asset_at_all() -> None:
    [fill] = report_from_execution(trade_event(None)).fills
    assert fill.commission_asset is None
    [fill] = report_from_execution(trade_event("BNB")).fills
    assert fill.commission_asset == "BNB"
    order = Order(account_id=uuid4(), client_order_id="x", symbol="ETHUSDT", side="BUY",
                  order_type="MARKET", quantity=D("0.01"), price=None, time_in_force=None,
                  actor="t")
    order.fill(trade_id="99", price=D("3000"), quantity=D("0.01"), commission=D(0),
               commission_asset=None, actor="t")
    assert order.commissions == {}


def test_a_keys_rejection_is_recorded_only_against_the_refused_keys() -> None:
    app = make_app()
    account = app.handle(RegisterAccount(email="k@example.com", password="p" * 12))
    app.handle(ConnectExchangeKeys(account_id=account, api_key="OLDKEY-123456",
                                   secret_key="old-secret", environment="testnet"))
    old = app.exchange_credentials(account).digest
    app.handle(ConnectExchangeKeys(account_id=account, api_key="NEWKEY-123456",
                                   secret_key="new-secret", environment="testnet"))
    refused_old = RecordExchangeKeysRejection(account, old, -2015, "Invalid API-key")
    assert not app.handle(refused_old)
    assert app.get_account(account).keys_rejection is None
    new = app.exchange_credentials(account).digest
    assert app.handle(RecordExchangeKeysRejection(account, new, -2015, "Invalid API-key"))
    assert app.get_account(account).keys_rejection == {
        "code": -2015, "reason": "Invalid API-key", "environment": "testnet"}
    assert not app.handle(RecordExchangeKeysRejection(account, new, -2015, "Invalid API-key"))
    app.handle(ConnectExchangeKeys(account_id=account, api_key="NEWER-1234567",
                                   secret_key="s", environment="testnet"))
    assert app.get_account(account).keys_rejection is None  # new keys: a clean slate


def test_one_stuck_account_never_blocks_another_and_overflow_reconciles() -> None:
    slow, fast = uuid4(), uuid4()
    release = threading.Event()
    handled: list[object] = []
    reconciled: list[object] = []

    def handle(account: object, message: dict[str, object]) -> None:
        if account == slow:
            release.wait(10)
        handled.append((account, message["n"]))

    dispatcher = EventDispatcher(handle, reconciled.append, threads=2, queue_size=3)
    try:
        for n in range(6):  # the first is taken, three wait, two do not fit
            dispatcher.offer(slow, {"n": n})
        assert dispatcher.dropped >= 2
        for n in range(3):
            assert dispatcher.offer(fast, {"n": n})
        deadline = time.monotonic() + 5
        while len([h for h in handled if h[0] == fast]) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [n for a, n in handled if a == fast] == [0, 1, 2]
        release.set()
        while slow not in reconciled and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reconciled == [slow]
        assert [n for a, n in handled if a == slow] == sorted(n for a, n in handled if a == slow)
    finally:
        release.set()
        dispatcher.close()


def test_filters_served_with_trailing_zeros_mean_their_value() -> None:
    info = {"symbols": [{**EXCHANGE_INFO["symbols"][0], "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
         "tickSize": "0.01000000"},
        {"filterType": "LOT_SIZE", "minQty": "0.00010000", "maxQty": "9000.00000000",
         "stepSize": "0.00010000"}]}]}
    rules = rules_from_exchange_info(info)["ETHUSDT"]
    # Binance serves 8 decimals; the tick is still 0.01 (a price rounded to it has 2 places).
    assert (str(rules.tick_size), str(rules.step_size)) == ("0.01", "0.0001")
    assert (str(rules.max_price), str(rules.max_qty)) == ("1000000", "9000")


def test_a_quantity_below_the_minimum_says_so_before_its_decimals() -> None:
    rules = rules_from_exchange_info(EXCHANGE_INFO)["ETHUSDT"]
    # Binance answers LOT_SIZE here, not -1111: the minimum is what the trader must fix.
    with pytest.raises(InvalidQuantity, match="below the minimum"):
        rules.check(OrderType.LIMIT, D("0.0000001"), D("3000"), side=Side.BUY)


def test_a_limit_the_exchange_does_not_set_is_served_as_null() -> None:
    from adapters.api.routes.market import _limit

    info = {"symbols": [{"symbol": "XUSDT", "filters": [
        {"filterType": "LOT_SIZE", "minQty": "1", "maxQty": "0", "stepSize": "1"}]}]}
    rules = rules_from_exchange_info(info)["XUSDT"]
    assert not rules.max_qty.is_finite()  # Binance's max 0: no maximum
    assert (_limit(rules.max_qty), _limit(D("9000"))) == (None, "9000")
