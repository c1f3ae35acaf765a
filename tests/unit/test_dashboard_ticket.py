"""The order ticket's pure parts (dashboard/ticket.py): amounts, totals and fees in Decimal,
plain-word validation, the fat-finger check and the message that follows an order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dashboard import ticket
from dashboard.api_client import ApiClientError

MARKET: dict[str, Any] = {
    "symbol": "BTCUSDT", "price": "50000.00",
    "balances": {"USDT": {"free": "10000.00", "locked": "0"},
                 "BTC": {"free": "0.123456", "locked": "0"}},
    "rules": {"symbol": "BTCUSDT", "stepSize": "0.00001", "tickSize": "0.01",
              "baseAsset": "BTC", "quoteAsset": "USDT"},
}
BUY_MARKET = {"side": "BUY", "type": "MARKET", "qtyMode": "percent"}
SELL_MARKET = {"side": "SELL", "type": "MARKET", "qtyMode": "percent"}


def test_percent_of_quote_balance_becomes_a_quantity_floored_to_the_step() -> None:
    # 33 % of 10,000 USDT at 50,000 = 0.066 BTC exactly; 7 % = 0.014.
    assert ticket.percent_to_quantity(33, BUY_MARKET, None, MARKET) == "0.06600"
    # 1 % of 10,000 at 30,000.03 = 0.0033333... -> floored, never rounded up.
    market = {**MARKET, "price": "30000.03"}
    assert ticket.percent_to_quantity(1, BUY_MARKET, None, market) == "0.00333"


def test_percent_of_a_sell_uses_the_base_balance_and_a_limit_buy_its_price() -> None:
    assert ticket.percent_to_quantity(50, SELL_MARKET, None, MARKET) == "0.06172"
    limit = {**BUY_MARKET, "type": "LIMIT"}
    assert ticket.percent_to_quantity(100, limit, "40000", MARKET) == "0.25000"


def test_percent_without_a_price_waits_and_zero_balance_gives_empty() -> None:
    assert ticket.percent_to_quantity(50, BUY_MARKET, None, {**MARKET, "price": None}) is None
    assert ticket.percent_to_quantity(50, SELL_MARKET, None, {**MARKET, "balances": {}}) == ""


def test_numbers_show_available_total_and_the_expected_taker_fee() -> None:
    state = {"side": "BUY", "type": "MARKET", "qtyMode": "amount"}
    available, total, fee = ticket.ticket_numbers(
        "0.002", None, state, MARKET, {"maker": "0.001", "taker": "0.001"})
    assert available == "10000.00 USDT"
    assert total == "≈ 100.00 USDT"
    # A buy pays its fee in the base asset it receives: 0.002 * 0.1 % = 0.000002 BTC.
    assert fee == "≈ 0.000002 BTC (0.10 USDT) at 0.1%"


def test_a_sell_fee_is_in_the_quote_and_a_limit_pays_the_maker_rate() -> None:
    state = {"side": "SELL", "type": "LIMIT", "qtyMode": "amount"}
    available, total, fee = ticket.ticket_numbers(
        "0.1", "60000", state, MARKET, {"maker": "0.00075", "taker": "0.001"})
    assert available == "0.12346 BTC"
    assert total == "6000.00 USDT"
    assert fee == "≈ 4.5000 USDT at 0.075%"


def test_spend_mode_totals_the_quote_and_estimates_the_quantity() -> None:
    state = {"side": "BUY", "type": "MARKET", "qtyMode": "quote"}
    _, total, fee = ticket.ticket_numbers("100", None, state, MARKET, {"taker": "0"})
    assert total == "100.00 USDT (≈ 0.002 BTC)"
    assert fee == "≈ 0 BTC (0.00 USDT) at 0%"
    _, total, fee = ticket.ticket_numbers("abc", None, state, MARKET, None)
    assert (total, fee) == ("—", "—")


def test_without_commission_rates_the_fee_is_unknown() -> None:
    state = {"side": "BUY", "type": "MARKET", "qtyMode": "amount"}
    assert ticket.ticket_numbers("0.001", None, state, MARKET, None)[2] == "—"
    assert ticket.ticket_numbers("0.001", None, state, {**MARKET, "balancesError": "x"})[0] \
        == "unavailable"


def test_validation_speaks_plainly_per_field() -> None:
    limit = {"side": "BUY", "type": "LIMIT", "qtyMode": "amount"}
    assert ticket.field_errors(limit, "", "") == {
        "quantity": "Enter a quantity.", "price": "Enter a limit price."}
    assert ticket.field_errors(limit, "abc", "-5") == {
        "quantity": "Enter a quantity greater than zero, like 0.001.",
        "price": "Enter a price greater than zero."}
    spend = {"side": "BUY", "type": "MARKET", "qtyMode": "quote"}
    assert ticket.field_errors(spend, "0", None) == {
        "quantity": "Enter an amount greater than zero, like 100."}
    assert ticket.field_errors(spend, "1,000", None) == {}


def test_order_body_carries_a_fresh_client_order_id_and_the_right_amount_field() -> None:
    spend = ticket.order_body({"side": "BUY", "type": "MARKET", "qtyMode": "quote"},
                              "BTCUSDT", " 100 ", None)
    assert spend["quoteOrderQty"] == "100" and "quantity" not in spend
    # Spend applies to MARKET only: a LIMIT ticket's amount is a quantity.
    limit = ticket.order_body({"side": "SELL", "type": "LIMIT", "qtyMode": "quote"},
                              "ETHUSDT", "0.5", "3000.10")
    assert limit["quantity"] == "0.5" and limit["price"] == "3000.10"
    assert limit["timeInForce"] == "GTC" and "quoteOrderQty" not in limit
    assert spend["clientOrderId"] != limit["clientOrderId"]
    assert len(spend["clientOrderId"]) <= 36
    assert ticket.describe(spend) == "BUY 100 USDT of BTCUSDT"
    assert ticket.describe(limit) == "SELL 0.5 ETHUSDT"


def test_fat_finger_asks_through_the_market_beyond_5pct_or_resting_beyond_50pct() -> None:
    def body(side: str, price: str) -> dict[str, Any]:
        return {"symbol": "BTCUSDT", "side": side, "type": "LIMIT", "price": price,
                "quantity": "0.001"}
    assert ticket.fat_finger_warning(body("BUY", "52400"), MARKET) is None      # 4.8 % through
    warning = ticket.fat_finger_warning(body("BUY", "500000"), MARKET)
    assert warning == ("Your limit price 500000.00 is 900% above the market (50000.00).")
    assert ticket.fat_finger_warning(body("SELL", "47000"), MARKET) is not None  # 6 % through
    assert ticket.fat_finger_warning(body("BUY", "30000"), MARKET) is None       # 40 % resting
    assert ticket.fat_finger_warning(body("BUY", "20000"), MARKET) is not None   # 60 % resting
    market_order = {**body("BUY", "1"), "type": "MARKET"}
    assert ticket.fat_finger_warning(market_order, MARKET) is None
    assert ticket.confirm_question(body("BUY", "1"), None) == "Place BUY 0.001 BTCUSDT at 1?"


def test_the_message_follows_the_order_to_its_outcome() -> None:
    what = "BUY 0.001 BTCUSDT"
    assert ticket.order_message({"status": "SUBMITTED"}, what) == (
        "BUY 0.001 BTCUSDT sent to the exchange…", "pending")
    assert ticket.order_message({"status": "NEW", "price": "49000.5"}, what) == (
        "BUY 0.001 BTCUSDT is on the book at 49000.50", "ok")
    assert ticket.order_message({"status": "FILLED", "averagePrice": "50001.239"}, what) == (
        "BUY 0.001 BTCUSDT filled at 50001.24", "ok")
    text, kind = ticket.order_message(
        {"status": "REJECTED", "rejectReason": "insufficient balance: needs 0.9606895000000 USDT"},
        what)
    assert kind == "error" and text == "Rejected: Insufficient balance: needs 0.96 USDT"
    assert ticket.order_message({"status": "PENDING"}, what) == ("", "")


def test_api_errors_land_at_their_field_in_plain_words() -> None:
    qty = ApiClientError(422, "validation_failed",
                         "quantity: must be a decimal number (a JSON number or a string)",
                         {"fields": [{"field": "quantity", "message": "x"}]})
    assert ticket.error_outcome(qty) == ("", "form-message", "Enter a number, like 0.001.", "",
                                         "")
    price = ApiClientError(422, "filter_failed", "price: 1.000 is below 5.00",
                           {"field": "price"})
    assert ticket.error_outcome(price)[3] == "1 is below 5"
    network = ApiClientError(0, "network", "cannot reach the API (ConnectError)")
    assert ticket.error_outcome(network)[0] == ticket.NETWORK_MESSAGE
    assert "network" in ticket.error_outcome(network)[1]


def test_symbol_comes_from_the_trade_path() -> None:
    assert ticket.symbol_of("/trade/ethusdt") == "ETHUSDT"
    assert ticket.symbol_of("/analytics") == "BTCUSDT"


def test_close_reads_the_positions_size_and_asks_in_plain_words() -> None:
    from dashboard import position_close

    positions = [{"symbol": "ETHUSDT", "quantity": "-0.5"},
                 {"symbol": "BTCUSDT", "quantity": "0.00200000"}]
    assert position_close.position_size(positions, "BTCUSDT") == Decimal("0.002")
    assert position_close.position_size(positions, "SOLUSDT") == 0
    assert position_close.position_size(None, "BTCUSDT") == 0
    assert position_close.close_question("BTCUSDT", Decimal("0.00200000")) == (
        "Close your BTCUSDT position: SELL 0.002 at market (rounded down to the step)?")
    assert "BUY back 0.5" in position_close.close_question("ETHUSDT", Decimal("-0.5"))


def test_a_malformed_symbol_in_the_path_never_reaches_an_api_path() -> None:
    assert ticket.symbol_of("/trade/..%2Fadmin") == "BTCUSDT"
    assert ticket.symbol_of("/trade/BTC-USDT") == "BTCUSDT"


STOP = {"side": "SELL", "type": "STOP", "qtyMode": "amount"}


def test_a_stop_limit_needs_a_stop_and_a_limit_price() -> None:
    assert ticket.field_errors(STOP, "0.01", "", "") == {
        "price": "Enter a limit price.", "stopPrice": "Enter a stop price."}
    assert ticket.field_errors(STOP, "0.01", "48900", "-1") == {
        "stopPrice": "Enter a price greater than zero."}
    assert ticket.field_errors(STOP, "0.01", "48900", "49000") == {}
    # A LIMIT ticket does not ask for a stop.
    assert ticket.field_errors({**STOP, "type": "LIMIT"}, "0.01", "48900", None) == {}


def test_the_stop_side_of_the_market_picks_stop_loss_or_take_profit() -> None:
    # SELL below the market: a stop-loss; above: a take profit. BUY the other way round.
    assert ticket.stop_type("SELL", Decimal("49000"), MARKET) == "STOP_LOSS_LIMIT"
    assert ticket.stop_type("SELL", Decimal("51000"), MARKET) == "TAKE_PROFIT_LIMIT"
    assert ticket.stop_type("BUY", Decimal("51000"), MARKET) == "STOP_LOSS_LIMIT"
    assert ticket.stop_type("BUY", Decimal("49000"), MARKET) == "TAKE_PROFIT_LIMIT"
    # No live price yet: the API answers for the side.
    assert ticket.stop_type("BUY", Decimal("49000"), {}) == "STOP_LOSS_LIMIT"
    body = ticket.order_body(STOP, "BTCUSDT", "0.01", "48900", "49000", MARKET)
    assert body["type"] == "STOP_LOSS_LIMIT"
    assert (body["stopPrice"], body["price"], body["timeInForce"]) == ("49000", "48900", "GTC")
    assert ticket.confirm_question(body, None) == (
        "Place SELL 0.01 BTCUSDT, stop 49000, limit 48900?")
    # Numbers are computed at the limit price, and a stop order is not fat-finger checked.
    assert ticket.ticket_numbers("0.01", "48900", STOP, MARKET)[1] == "489.00 USDT"
    assert ticket.fat_finger_warning(body, MARKET) is None
    assert "stopPrice" not in ticket.order_body({**STOP, "type": "LIMIT"}, "BTCUSDT", "0.01",
                                                "48900", "49000", MARKET)


def test_a_stop_order_message_waits_for_its_stop_then_rests() -> None:
    what = "SELL 0.01 BTCUSDT"
    waiting = {"status": "NEW", "price": "48900", "stopPrice": "49000", "stopTriggered": False}
    assert ticket.order_message(waiting, what) == (
        "SELL 0.01 BTCUSDT waits for its stop at 49000.00 (then a limit at 48900.00)", "ok")
    assert ticket.order_message({**waiting, "stopTriggered": True}, what) == (
        "SELL 0.01 BTCUSDT is on the book at 48900.00", "ok")


def test_a_refused_stop_lands_at_the_stop_field_in_plain_words() -> None:
    reached = ApiClientError(
        422, "stop_would_trigger", "a SELL STOP_LOSS_LIMIT order's stopPrice must be below the "
        "current price 150 of SOLUSDT; 151 would trigger immediately",
        {"currentPrice": "150.00000000", "field": "stopPrice"})
    message, _, qty, price, stop = ticket.error_outcome(reached)
    assert (message, qty, price) == ("", "", "")
    assert stop == ("The market is already past this stop (the market is at 150), so it would "
                    "trigger at once. Move the stop further from the market.")
    tick = ApiClientError(422, "invalid_price", "stopPrice: 1.005 is not a multiple of 0.01",
                          {"field": "stopPrice"})
    assert ticket.error_outcome(tick)[4] == "1.005 is not a multiple of 0.01"


def test_an_exit_sells_the_ticket_quantity_or_the_open_position() -> None:
    amount = {"side": "BUY", "type": "MARKET", "qtyMode": "amount"}
    positions = [{"symbol": "BTCUSDT", "quantity": "0.003"}, {"symbol": "ETHUSDT",
                                                                "quantity": "-1"}]
    assert ticket.exit_quantity(amount, "0.002", positions, "BTCUSDT") == Decimal("0.002")
    assert ticket.exit_quantity(amount, "", positions, "BTCUSDT") == Decimal("0.003")
    # A spend amount is quote, not a quantity; a short has no long to protect.
    assert ticket.exit_quantity({**amount, "qtyMode": "quote"}, "100", positions,
                                "BTCUSDT") == Decimal("0.003")
    assert ticket.exit_quantity(amount, None, positions, "ETHUSDT") == 0
    body = ticket.exit_body("BTCUSDT", Decimal("0.00200"), "55000", "45000", "")
    assert {k: v for k, v in body.items() if k != "clientOrderId"} == {
        "type": "OCO", "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.002",
        "price": "55000", "stopPrice": "45000", "stopLimitPrice": "45000"}
    assert len(body["clientOrderId"]) <= 33
    assert ticket.exit_body("BTCUSDT", Decimal(1), "55000", "45000", "44900")[
        "stopLimitPrice"] == "44900"


def test_exit_checks_speak_plainly_per_field() -> None:
    assert ticket.exit_errors(Decimal(0), "", "", "") == {
        "quantity": "Enter the quantity to protect, or open a position first.",
        "price": "Enter a take-profit price.", "stopPrice": "Enter a stop-loss price."}
    assert ticket.exit_errors(Decimal(1), "45000", "55000", "") == {
        "price": "The take profit must be above the stop-loss."}
    assert ticket.exit_errors(Decimal(1), "55000", "45000", "x") == {
        "stopPrice": "The stop-loss limit must be a price greater than zero."}
    assert ticket.exit_errors(Decimal(1), "55000", "45000", "44900") == {}


def test_the_exit_message_follows_both_legs() -> None:
    what = "Exit SELL 0.002 BTCUSDT"
    tp = {"orderId": "2", "type": "LIMIT_MAKER", "status": "NEW", "price": "55000"}
    sl = {"orderId": "1", "type": "STOP_LOSS_LIMIT", "status": "NEW", "price": "44900",
          "stopPrice": "45000", "stopTriggered": False}
    assert ticket.list_message([tp], what) == ("Exit SELL 0.002 BTCUSDT sent to the exchange…",
                                               "pending")
    assert ticket.list_message([tp, sl], what) == (
        "Exit SELL 0.002 BTCUSDT on the book: take profit 55000.00, stop-loss 45000.00 "
        "(limit 44900.00)", "ok")
    assert ticket.list_message([tp, {**sl, "stopTriggered": True}], what)[0] == (
        "Exit SELL 0.002 BTCUSDT: stop-loss triggered, selling at 44900.00")
    filled = ticket.list_message(
        [{**tp, "status": "FILLED", "averagePrice": "55000"}, {**sl, "status": "EXPIRED"}], what)
    assert filled == ("Exit SELL 0.002 BTCUSDT: take profit filled at 55000.00", "ok")
    assert ticket.list_message([{**tp, "status": "CANCELED"}, {**sl, "status": "CANCELED"}],
                               what) == ("Exit SELL 0.002 BTCUSDT canceled", "pending")
    assert ticket.list_message([], what) == ("", "")
