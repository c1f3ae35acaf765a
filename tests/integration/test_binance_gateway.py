"""BinanceGateway (python-binance Client) against the paper exchange over real HTTP."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from adapters.binance.gateway import BinanceGateway, resolve_endpoints
from adapters.platform.crypto import ConfigurationError
from adapters.platform.settings import Settings
from commands.ports import ExchangeCredentials, ExchangeOrderRequest, ExchangeOrderStatus
from domain.errors import (
    ExchangeDuplicateOrder,
    ExchangeOrderUnknown,
    ExchangeRejected,
    ExchangeUnavailable,
)

pytestmark = pytest.mark.integration
D = Decimal


@pytest.fixture(params=["ws", "rest"])
def gateway(paper_exchange, request) -> Iterator[BinanceGateway]:  # type: ignore[no-untyped-def]
    """The gateway with orders over the WS-API connection, and over REST only."""
    paper_exchange.clear_faults()
    gw = BinanceGateway("paper", paper_exchange.api_url, paper_exchange.ws_api_url,
                        backoff=0.05, timeout=(1.0, 1.5), order_transport=request.param)
    yield gw
    ws_api = gw.ws_api()
    # The WS variant really went over the WS-API (no silent fall back to REST).
    assert ws_api is None or ws_api.connections_opened <= 1
    gw.close()
    paper_exchange.clear_faults()


@pytest.fixture
def creds(paper_exchange) -> ExchangeCredentials:  # type: ignore[no-untyped-def]
    keys = paper_exchange.issue_keys()
    return ExchangeCredentials(keys.api_key, keys.secret_key, "paper")


def coid() -> str:
    return "tl" + uuid.uuid4().hex


def market(symbol: str = "ETHUSDT", qty: str = "0.5", side: str = "BUY",
           client_order_id: str | None = None) -> ExchangeOrderRequest:
    return ExchangeOrderRequest(symbol, side, "MARKET", D(qty), None, None,
                                client_order_id or coid())


def limit(price: str, qty: str = "0.01", symbol: str = "BTCUSDT", side: str = "BUY",
          client_order_id: str | None = None) -> ExchangeOrderRequest:
    return ExchangeOrderRequest(symbol, side, "LIMIT", D(qty), D(price), "GTC",
                                client_order_id or coid())


def test_market_order_fills_at_once_with_trades_and_commission(  # type: ignore[no-untyped-def]
        gateway, creds, paper_exchange) -> None:
    # The session's exchange is shared: tests of the paper exchange leave ETH near 2,000,
    # where 0.5 ETH straddles the 1,000 USDT split threshold. Start it well above.
    paper_exchange.set_price("ETHUSDT", "3400.00", freeze=False)
    report = gateway.submit_order(creds, market(qty="0.5"))  # ~1,700 USDT: three trades
    assert report.status is ExchangeOrderStatus.FILLED
    assert len(report.fills) == 3
    assert sum(f.quantity for f in report.fills) == D("0.5") == report.cumulative_quantity
    assert sum(f.price * f.quantity for f in report.fills) == report.cumulative_quote
    for fill in report.fills:
        assert fill.commission_asset == "ETH"  # a BUY pays in the asset it receives
        assert fill.commission == (fill.quantity * D("0.001")).quantize(D("0.00000001"))
    # A query gives the same trades (from myTrades), for reconciliation.
    queried = gateway.query_order(creds, "ETHUSDT", report.client_order_id)
    assert queried is not None and queried.fills == tuple(
        f.__class__(f.trade_id, f.price, f.quantity, f.commission, f.commission_asset, False)
        for f in report.fills)


def test_limit_order_rests_then_fills_when_the_price_crosses(  # type: ignore[no-untyped-def]
        gateway, creds, paper_exchange) -> None:
    paper_exchange.set_price("BTCUSDT", "60000.00")
    report = gateway.submit_order(creds, limit("59000.00", qty="0.01"))
    assert report.status is ExchangeOrderStatus.NEW and report.fills == ()
    assert [o.client_order_id for o in gateway.open_orders(creds)] == [report.client_order_id]
    paper_exchange.set_price("BTCUSDT", "58990.00")
    filled = gateway.query_order(creds, "BTCUSDT", report.client_order_id)
    assert filled is not None and filled.status is ExchangeOrderStatus.FILLED
    assert [(f.price, f.quantity, f.is_maker) for f in filled.fills] == [
        (D("59000"), D("0.01"), True)]
    assert gateway.open_orders(creds) == []


def test_history_from_a_time_is_consistent_when_an_older_order_trades_after_it(  # type: ignore[no-untyped-def]
        gateway, creds, paper_exchange) -> None:
    # allOrders from startTime lists the orders placed since; myTrades the trades made
    # since. A limit placed before that fills after is not listed, and is no sign of lag:
    # read as lag, an order of unknown outcome could never be proven absent (chaos seed
    # 841144 left an OCO in CANCEL_REQUESTED that way).
    paper_exchange.set_price("BTCUSDT", "60000.00")
    resting = gateway.submit_order(creds, limit("59000.00", qty="0.01"))
    time.sleep(0.05)
    since = time.time()
    time.sleep(0.05)
    paper_exchange.set_price("BTCUSDT", "58990.00")
    filled = gateway.query_order(creds, "BTCUSDT", resting.client_order_id)
    assert filled is not None and filled.status is ExchangeOrderStatus.FILLED
    history = gateway.order_history(creds, "BTCUSDT", since=since)
    assert resting.exchange_order_id not in history.order_ids  # placed before `since`
    assert history.complete and history.consistent
    # Listed from the order's own id, it is there with its trade.
    listed = gateway.order_history(creds, "BTCUSDT", from_order_id=resting.exchange_order_id)
    assert resting.exchange_order_id in listed.order_ids and listed.consistent


def test_cancel_then_cancel_again_is_unknown_order(gateway, creds, paper_exchange) -> None:  # type: ignore[no-untyped-def]
    paper_exchange.set_price("BTCUSDT", "60000.00")
    placed = gateway.submit_order(creds, limit("50000.00"))
    canceled = gateway.cancel_order(creds, "BTCUSDT", placed.client_order_id)
    assert canceled.status is ExchangeOrderStatus.CANCELED
    assert canceled.client_order_id == placed.client_order_id
    with pytest.raises(ExchangeOrderUnknown) as err:
        gateway.cancel_order(creds, "BTCUSDT", placed.client_order_id)
    assert err.value.exchange_code == -2011
    assert gateway.query_order(creds, "BTCUSDT", coid()) is None  # -2013


@pytest.mark.parametrize(("request_", "code"), [
    (market(qty="0.00005"), -1013),  # off the LOT_SIZE step
    (market(symbol="FOOUSDT"), -1121),
    (market(symbol="BTCUSDT", qty="5"), -2010),  # ~480k USDT: insufficient balance
])
def test_refusals_map_to_exchange_rejected_with_binance_codes(  # type: ignore[no-untyped-def]
        gateway, creds, request_, code) -> None:
    with pytest.raises(ExchangeRejected) as err:
        gateway.submit_order(creds, request_)
    assert err.value.exchange_code == code
    assert not err.value.transient


def test_duplicate_open_client_order_id_maps_to_duplicate_order(  # type: ignore[no-untyped-def]
        gateway, creds, paper_exchange) -> None:
    paper_exchange.set_price("BTCUSDT", "60000.00")
    request = limit("50000.00")
    gateway.submit_order(creds, request)
    with pytest.raises(ExchangeDuplicateOrder):
        gateway.submit_order(creds, request)


def test_bad_key_and_bad_signature_are_refusals(gateway, creds) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ExchangeRejected) as bad_key:
        gateway.submit_order(ExchangeCredentials("nokey" * 8, creds.secret_key, "paper"),
                             market())
    assert bad_key.value.exchange_code == -2015
    with pytest.raises(ExchangeRejected) as bad_sig:
        gateway.submit_order(ExchangeCredentials(creds.api_key, "0" * 64, "paper"), market())
    assert bad_sig.value.exchange_code == -1022


def test_clock_drift_is_a_transient_refusal_and_resyncs(gateway, creds) -> None:  # type: ignore[no-untyped-def]
    gateway.client(creds).timestamp_offset = -120_000
    with pytest.raises(ExchangeRejected) as err:
        gateway.submit_order(creds, market())
    assert err.value.exchange_code == -1021 and err.value.transient
    assert gateway.submit_order(creds, market()).status is ExchangeOrderStatus.FILLED


@pytest.mark.parametrize("mode", ["error503", "timeout", "hang"])
def test_no_answer_is_an_unknown_outcome_and_submit_is_not_retried(  # type: ignore[no-untyped-def]
        gateway, creds, paper_exchange, mode) -> None:
    paper_exchange.set_fault(mode, 2.0, execute=True)
    request = market()
    with pytest.raises(ExchangeUnavailable) as err:
        gateway.submit_order(creds, request)
    assert err.value.maybe_sent
    paper_exchange.clear_faults()
    # It was executed once, and only once: the gateway did not send it again.
    found = gateway.query_order(creds, request.symbol, request.client_order_id)
    assert found is not None and found.status is ExchangeOrderStatus.FILLED
    assert [o["clientOrderId"] for o in gateway.all_orders(creds, "ETHUSDT")].count(
        request.client_order_id) == 1


def test_queries_are_retried_through_a_short_outage(gateway, creds, paper_exchange) -> None:  # type: ignore[no-untyped-def]
    placed = gateway.submit_order(creds, market())
    paper_exchange.set_fault("error503", 0.1)
    found = gateway.query_order(creds, "ETHUSDT", placed.client_order_id)
    assert found is not None and found.status is ExchangeOrderStatus.FILLED


def test_connection_refused_is_known_not_sent(creds) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = BinanceGateway("paper", f"http://127.0.0.1:{port}/api", retries=0)
    with pytest.raises(ExchangeUnavailable) as err:
        gw.submit_order(creds, market())
    assert not err.value.maybe_sent


def test_balances_come_from_the_account_endpoint(gateway, creds) -> None:  # type: ignore[no-untyped-def]
    balances = {b["asset"]: b for b in gateway.account_balances(creds)}
    assert balances["USDT"]["free"] == D("100000")


def test_live_trading_needs_an_explicit_opt_in(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError, match="ALLOW_LIVE_TRADING"):
        resolve_endpoints(Settings(exchange="live", data_dir=tmp_path))
    assert resolve_endpoints(Settings(exchange="live", allow_live_trading=True,
                                      data_dir=tmp_path))[0] == "live"
    assert resolve_endpoints(Settings(exchange="testnet", data_dir=tmp_path)) == (
        "testnet", None, None)
    with pytest.raises(ConfigurationError, match="PAPER_EXCHANGE_URL"):
        resolve_endpoints(Settings(exchange="paper", paper_exchange_url=None,
                                   data_dir=tmp_path))
    assert resolve_endpoints(Settings(paper_exchange_url="http://127.0.0.1:9900/",
                                      data_dir=tmp_path)) == (
        "paper", "http://127.0.0.1:9900/api", "ws://127.0.0.1:9900/ws-api/v3")
