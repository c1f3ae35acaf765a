"""The order ticket, All-in-One style: its ids, its layout and its server callbacks.

Side, type and quantity mode live in the `ticket-state` store; % of the balance becomes a
quantity, and quantities become totals and fees, with Decimal floored to the symbol's step;
validation is shown at the field in plain words; a price far from the market (or Shift+Enter)
asks first; the order is placed through the API client with a fresh clientOrderId, and the
message under the button follows that order to its outcome. The pure parts are functions at
the top so that tests/unit/test_dashboard_ticket.py can check them without a browser.
"""

from __future__ import annotations

import re
import secrets
import time
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from dash import Input, Output, Patch, State, callback, clientside_callback, ctx, dcc, html
from dash import no_update as NO

from dashboard import ids
from dashboard.api_client import SYMBOL_RE, ApiClient, ApiClientError, token_of
from dashboard.order_book import PRICE_CLICK_STORE

# ---- ids --------------------------------------------------------------------------------
TICKET = "ticket"
STATE = "ticket-state"
SIDE_BUY, SIDE_SELL = "side-buy", "side-sell"
TYPE_MARKET, TYPE_LIMIT, TYPE_STOP = "type-market", "type-limit", "type-stop"
MODE_AMOUNT, MODE_QUOTE, MODE_PCT = "qty-mode-amount", "qty-mode-quote", "qty-mode-pct"
SYMBOL_SELECT = "symbol-select"
PRICE_FIELD, PRICE, PRICE_ERROR = "price-field", "ticket-price", "price-error"
QTY_LABEL, QTY, QTY_ERROR = "qty-label", "ticket-qty", "qty-error"
STOP_FIELD, STOP, STOP_ERROR = "stop-field", "ticket-stop", "stop-error"
# "Attach exit": an OCO SELL (take profit above, stop-loss below) for a bought quantity.
EXIT_TOGGLE, EXIT_BOX, EXIT_PLACE = "exit-toggle", "exit-box", "exit-place"
EXIT_TP, EXIT_SL, EXIT_SL_LIMIT = "exit-tp", "exit-sl", "exit-sl-limit"
EXIT_TP_ERROR, EXIT_SL_ERROR, EXIT_MESSAGE = "exit-tp-error", "exit-sl-error", "exit-message"
PCT_FIELD, PCT = "pct-field", "ticket-pct"
PCT_BUTTONS = (10, 25, 50, 75, 100)
AVAILABLE, TOTAL, FEE = "ticket-available", "ticket-total", "ticket-fee"
PLACE, PLACE_KEYED = "place-btn", "place-keyed"
CONFIRM_BOX, CONFIRM_TEXT = "confirm-box", "confirm-text"
CONFIRM_YES, CONFIRM_NO = "confirm-yes", "confirm-no"
MESSAGE = "ticket-message"
PENDING = "ticket-pending"          # the order body waiting for a confirmation
FOLLOWED = "ticket-order"           # {orderId, what}: the order the message follows
FOLLOWED_STATE = "ticket-order-update"  # that order as the orders store last had it
COMMISSION = "commission-store"     # the account's commission rates (GET /api/account/commission)
COMMISSION_RETRY = "commission-retry"  # asks again every 2 s (30 s at most) while unknown
TICKET_MARKET = "ticket-market"     # the market store, at most once a second (for the numbers)
# Shared stores and components owned by the shell (dashboard/ids.py).
BALANCE_SOURCE = ids.BALANCE_SOURCE
URL, AUTH, MARKET, ORDERS, LIVE_STATUS = (ids.URL, ids.AUTH, ids.MARKET_STORE, ids.ORDERS_STORE,
                                          ids.LIVE_STATUS)
POSITIONS = ids.POSITIONS_STORE
BALANCES = ids.BALANCES_STORE  # {balances, balancesError} (dashboard/live_account.py)
# Ticket types that carry a limit price ("STOP" is the Stop-limit choice, see stop_type).
PRICED = ("LIMIT", "STOP")

DEFAULT_SYMBOL = "BTCUSDT"
DEFAULT_STEP = "0.00001"
# The fat-finger thresholds: through the market (buy above, sell below) and resting away.
THROUGH_PCT, RESTING_PCT = Decimal(5), Decimal(50)
NETWORK_MESSAGE = "Cannot reach the API; your order was not sent."
HIDE, SHOW = {"display": "none"}, {"display": ""}

_api_url = ""


def configure(api_url: str) -> None:
    """Tell the callbacks where the API is (the server's view of it)."""
    global _api_url
    _api_url = api_url


# ---- pure parts -------------------------------------------------------------------------
def decimal_or_none(value: Any) -> Decimal | None:
    """A finite Decimal from user text (commas and spaces tolerated), else None."""
    if value is None:
        return None
    text = str(value).strip().replace(",", "").replace(" ", "")
    if not text:
        return None
    try:
        out = Decimal(text)
    except InvalidOperation:
        return None
    return out if out.is_finite() else None


def plain(value: Decimal) -> str:
    """A Decimal without exponent or trailing zeros: 0.00100000 -> "0.001"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def fixed(value: Any, dp: int) -> str:
    """Round half up to `dp` decimals for display; "—" when not a number."""
    number = decimal_or_none(value)
    if number is None:
        return "—"
    return format(number.quantize(Decimal(1).scaleb(-dp), ROUND_HALF_UP), "f")


def decimals(step: Any) -> int:
    """How many decimals a step or tick has: "0.00010000" -> 4."""
    number = decimal_or_none(step)
    if number is None or number <= 0:
        return 0
    return max(0, -number.normalize().as_tuple().exponent)  # type: ignore[operator]


def floor_to(value: Decimal, step: Any) -> Decimal:
    """Round down to a multiple of `step` (no step: unchanged)."""
    size = decimal_or_none(step)
    if size is None or size <= 0:
        return value
    return (value / size).to_integral_value(ROUND_DOWN) * size


def rules_of(market: dict[str, Any] | None) -> dict[str, Any]:
    """The symbol's filters as the market store carries them, with safe defaults."""
    rules = dict((market or {}).get("rules") or {})
    symbol = str(rules.get("symbol") or (market or {}).get("symbol") or DEFAULT_SYMBOL)
    rules.setdefault("quoteAsset", "USDT")
    rules["quoteAsset"] = rules["quoteAsset"] or "USDT"
    if not rules.get("baseAsset"):
        rules["baseAsset"] = symbol.removesuffix(rules["quoteAsset"])
    rules["stepSize"] = rules.get("stepSize") or DEFAULT_STEP
    return rules


def with_balances(market: dict[str, Any] | None, balances: dict[str, Any] | None
                  ) -> dict[str, Any]:
    """The market store with the balances store's `balances` and `balancesError` in it."""
    return {**(market or {}), **(balances or {})}


def free_balance(market: dict[str, Any] | None, asset: str) -> Decimal:
    """The free balance of one asset (zero when unknown)."""
    entry = ((market or {}).get("balances") or {}).get(asset) or {}
    return decimal_or_none(entry.get("free")) or Decimal(0)


def reference_price(state: dict[str, Any], price_text: Any,
                    market: dict[str, Any] | None) -> Decimal | None:
    """The price the numbers are computed at: the limit price, else the last market price."""
    if state.get("type") in PRICED:
        price = decimal_or_none(price_text)
        if price is not None and price > 0:
            return price
    market_price = decimal_or_none((market or {}).get("price"))
    return market_price if market_price is not None and market_price > 0 else None


def percent_to_quantity(pct: Any, state: dict[str, Any], price_text: Any,
                        market: dict[str, Any] | None) -> str | None:
    """% of the available balance (the quote asset for a buy, the base for a sell) as a
    quantity floored to the step; None when it cannot be computed yet (no price)."""
    share = decimal_or_none(pct)
    if share is None:
        return None
    rules = rules_of(market)
    if state.get("side") == "BUY":
        price = reference_price(state, price_text, market)
        if price is None:
            return None
        qty = floor_to(free_balance(market, rules["quoteAsset"]) * share / 100 / price,
                       rules["stepSize"])
    else:
        qty = floor_to(free_balance(market, rules["baseAsset"]) * share / 100, rules["stepSize"])
    return format(qty.quantize(Decimal(1).scaleb(-decimals(rules["stepSize"]))), "f") \
        if qty > 0 else ""


def spends(state: dict[str, Any]) -> bool:
    """Whether the amount field is quote to spend (or receive): Spend mode, MARKET only."""
    return state.get("qtyMode") == "quote" and state.get("type", "MARKET") == "MARKET"


def commission_rate(commission: dict[str, Any] | None, order_type: str) -> Decimal | None:
    """The rate this order most likely pays: taker for MARKET, maker for a resting LIMIT."""
    if not isinstance(commission, dict):
        return None
    return decimal_or_none(commission.get("taker" if order_type == "MARKET" else "maker"))


def ticket_numbers(amount: Any, price_text: Any, state: dict[str, Any],
                   market: dict[str, Any] | None,
                   commission: dict[str, Any] | None = None) -> tuple[str, str, str]:
    """(available, total, expected fee) as the ticket shows them."""
    market = market or {}
    rules = rules_of(market)
    buy = state.get("side") == "BUY"
    asset = rules["quoteAsset"] if buy else rules["baseAsset"]
    balances = market.get("balances") or {}
    if market.get("balancesError"):
        available = "unavailable"
    elif asset in balances:
        dp = 2 if buy else decimals(rules["stepSize"])
        available = f"{fixed(free_balance(market, asset), dp)} {asset}"
    elif balances:
        available = f"0 {asset}"
    else:
        available = "—"
    value = decimal_or_none(amount)
    price = reference_price(state, price_text, market)
    order_type = str(state.get("type") or "MARKET")
    if value is None or value <= 0:
        return available, "—", "—"
    qty: Decimal | None
    if spends(state):
        quote_total, qty = value, (floor_to(value / price, rules["stepSize"]) if price else None)
        total = f"{fixed(value, 2)} {rules['quoteAsset']}"
        if qty is not None:
            total += f" (≈ {plain(qty)} {rules['baseAsset']})"
    elif price is None:
        return available, "—", "—"
    else:
        quote_total, qty = value * price, value
        approx = "≈ " if order_type == "MARKET" else ""
        total = f"{approx}{fixed(quote_total, 2)} {rules['quoteAsset']}"
    rate = commission_rate(commission, order_type)
    if rate is None:
        return available, total, "—"
    # Binance takes the fee from what the order receives: the base on a buy, the quote on
    # a sell (docs/paper-exchange.md); the quote value is shown either way.
    if buy and qty is not None:
        fee_base = qty * rate
        fee = f"≈ {plain(fee_base.quantize(Decimal('1e-8'), ROUND_HALF_UP))} " \
              f"{rules['baseAsset']} ({fixed(quote_total * rate, 2)} {rules['quoteAsset']})"
    else:
        fee = f"≈ {fixed(quote_total * rate, 4)} {rules['quoteAsset']}"
    return available, total, f"{fee} at {plain(rate * 100)}%"


def friendly(message: Any) -> str:
    """The API speaks to programs; say the same to a trader, numbers trimmed."""
    text = str(message or "")
    if re.search(r"decimal number|finite number", text):
        return "Enter a number, like 0.001."
    text = re.sub(r"^(quantity|price|quoteOrderQty|stopPrice|stopLimitPrice): ", "", text)
    text = re.sub(r"(\d+\.\d*?[1-9])0+\b", r"\1", text)
    text = re.sub(r"(\d+)\.0+\b", r"\1", text)
    text = re.sub(r"(\d+\.\d{2})\d+ (USDT|USDC|FDUSD|BUSD)", r"\1 \2", text)
    return text[:1].upper() + text[1:]


def new_client_order_id() -> str:
    """A fresh clientOrderId for each order (the API makes placing it idempotent)."""
    return f"web-{int(time.time() * 1000):x}-{secrets.token_hex(4)}"


def field_errors(state: dict[str, Any], amount: Any, price: Any,
                 stop: Any = None) -> dict[str, str]:
    """What is wrong with the ticket's fields, in plain words, by field."""
    errors: dict[str, str] = {}
    value = decimal_or_none(amount)
    spend = spends(state)
    if not str(amount or "").strip():
        errors["quantity"] = "Enter an amount to spend." if spend else "Enter a quantity."
    elif value is None or value <= 0:
        errors["quantity"] = ("Enter an amount greater than zero, like 100." if spend else
                              "Enter a quantity greater than zero, like 0.001.")
    if state.get("type") in PRICED:
        _price_error(errors, "price", price, "Enter a limit price.")
    if state.get("type") == "STOP":
        _price_error(errors, "stopPrice", stop, "Enter a stop price.")
    return errors


def _price_error(errors: dict[str, str], key: str, text: Any, missing: str) -> None:
    """A required positive price field: what is wrong with it, if anything."""
    value = decimal_or_none(text)
    if not str(text or "").strip():
        errors[key] = missing
    elif value is None or value <= 0:
        errors[key] = "Enter a price greater than zero."


def stop_type(side: str, stop: Decimal, market: dict[str, Any] | None) -> str:
    """Which Binance type a Stop-limit ticket is, from where its stop sits against the
    market, as Binance's own spot ticket decides: a SELL stop below the market (or a BUY
    stop above, a breakout buy) is a STOP_LOSS_LIMIT; a SELL stop above (or a BUY stop
    below) is a TAKE_PROFIT_LIMIT. The trader states one thing, the trigger price, and can
    never pick the type whose stop is already reached. No live price yet: STOP_LOSS_LIMIT,
    and the API answers for the side."""
    last = decimal_or_none((market or {}).get("price"))
    if last is None or last <= 0 or stop == last:
        return "STOP_LOSS_LIMIT"
    return "STOP_LOSS_LIMIT" if (stop > last) == (side == "BUY") else "TAKE_PROFIT_LIMIT"


def order_body(state: dict[str, Any], symbol: str, amount: Any, price: Any, stop: Any = None,
               market: dict[str, Any] | None = None) -> dict[str, Any]:
    """The POST /api/trading/orders body of a checked ticket."""
    body: dict[str, Any] = {"symbol": symbol, "side": state.get("side", "BUY"),
                            "type": state.get("type", "MARKET"),
                            "clientOrderId": new_client_order_id()}
    value = str(decimal_or_none(amount))
    if spends(state):
        body["quoteOrderQty"] = value
    else:
        body["quantity"] = value
    if body["type"] in PRICED:
        body["price"] = str(decimal_or_none(price))
        body["timeInForce"] = "GTC"
    stop_price = decimal_or_none(stop)
    if body["type"] == "STOP" and stop_price is not None:
        body["type"] = stop_type(body["side"], stop_price, market)
        body["stopPrice"] = str(stop_price)
    return body


def describe(body: dict[str, Any]) -> str:
    """"BUY 0.001 BTCUSDT", or "BUY 100 USDT of BTCUSDT" for a spend order."""
    if body.get("quoteOrderQty"):
        quote = f"{body['quoteOrderQty']} {rules_of({'symbol': body['symbol']})['quoteAsset']}"
        if body["side"] == "SELL":
            return f"SELL {body['symbol']} for {quote}"
        return f"BUY {quote} of {body['symbol']}"
    return f"{body['side']} {body['quantity']} {body['symbol']}"


def fat_finger_warning(body: dict[str, Any], market: dict[str, Any] | None) -> str | None:
    """A limit that trades through the market by more than 5 % (buy above, sell below), or
    rests more than 50 % away (a digit too many or too few): the words that ask first."""
    if body.get("type") != "LIMIT":
        return None
    last = decimal_or_none((market or {}).get("price"))
    price = decimal_or_none(body.get("price"))
    if last is None or last <= 0 or price is None:
        return None
    off = abs(price - last) * 100 / last
    crosses = (body["side"] == "BUY") == (price > last)
    if off <= (THROUGH_PCT if crosses else RESTING_PCT):
        return None
    dp = decimals(rules_of(market).get("tickSize") or "0.01")
    return (f"Your limit price {fixed(price, dp)} is {fixed(off, 0)}% "
            f"{'above' if price > last else 'below'} the market ({fixed(last, dp)}).")


def confirm_question(body: dict[str, Any], warning: str | None) -> str:
    """The confirmation's text."""
    where = f" at {body['price']}" if body.get("price") else " at market"
    if body.get("stopPrice"):
        where = f", stop {body['stopPrice']}, limit {body['price']}"
    return (f"{warning} " if warning else "") + f"Place {describe(body)}{where}?"


def order_message(order: dict[str, Any] | None, what: str, tick: Any = "0.01") -> tuple[str, str]:
    """(text, kind) of the message that follows an order: sent, on the book, filled at,
    rejected with the exchange's reason. Empty text: nothing new to say."""
    if not order:
        return "", ""
    status = str(order.get("status") or "").upper()
    dp = decimals(tick)
    if status == "FILLED":
        at = f" at {fixed(order['averagePrice'], dp)}" if order.get("averagePrice") else ""
        return f"{what} filled{at}", "ok"
    if status == "PARTIALLY_FILLED":
        return f"{what} partly filled", "ok"
    if status in ("NEW", "ACCEPTED"):
        if order.get("stopPrice") and not order.get("stopTriggered"):
            return (f"{what} waits for its stop at {fixed(order['stopPrice'], dp)} "
                    f"(then a limit at {fixed(order.get('price'), dp)})", "ok")
        return f"{what} is on the book at {fixed(order.get('price'), dp)}", "ok"
    if status == "REJECTED":
        reason = order.get("rejectReason") or order.get("rejectCode") or \
            "the exchange refused the order"
        return f"Rejected: {friendly(reason)}", "error"
    if status in ("CANCELED", "EXPIRED"):
        return f"{what} {status.lower()}", "pending"
    if status == "SUBMITTED":
        return f"{what} sent to the exchange…", "pending"
    return "", ""


LEG_NAMES = {"LIMIT_MAKER": "take profit", "STOP_LOSS_LIMIT": "stop-loss"}


def list_message(legs: list[dict[str, Any]], what: str, tick: Any = "0.01") -> tuple[str, str]:
    """(text, kind) of the message that follows an OCO exit through its two legs: on the
    book with both prices, the stop triggered, which leg filled, or refused."""
    if not legs:
        return "", ""
    dp = decimals(tick)
    by_status = {str(leg.get("status") or "").upper(): leg for leg in legs}
    for status in ("FILLED", "PARTIALLY_FILLED"):
        if status in by_status:
            leg = by_status[status]
            name = LEG_NAMES.get(str(leg.get("type")), "an exit leg")
            at = f" at {fixed(leg['averagePrice'], dp)}" if leg.get("averagePrice") else ""
            done = "filled" if status == "FILLED" else "partly filled"
            return f"{what}: {name} {done}{at}", "ok"
    if "REJECTED" in by_status:
        leg = by_status["REJECTED"]
        reason = leg.get("rejectReason") or leg.get("rejectCode") or \
            "the exchange refused the order list"
        return f"Exit rejected: {friendly(reason)}", "error"
    if len(legs) == 2 and all(s in ("CANCELED", "EXPIRED") for s in by_status):
        return f"{what} canceled", "pending"
    stop_leg = next((leg for leg in legs if leg.get("type") == "STOP_LOSS_LIMIT"), {})
    if stop_leg.get("stopTriggered") and str(stop_leg.get("status")).upper() == "NEW":
        return (f"{what}: stop-loss triggered, selling at {fixed(stop_leg.get('price'), dp)}",
                "ok")
    if len(legs) == 2 and set(by_status) <= {"NEW", "ACCEPTED"}:
        take = next((leg for leg in legs if leg.get("type") == "LIMIT_MAKER"), {})
        return (f"{what} on the book: take profit {fixed(take.get('price'), dp)}, stop-loss "
                f"{fixed(stop_leg.get('stopPrice'), dp)} (limit "
                f"{fixed(stop_leg.get('price'), dp)})", "ok")
    return f"{what} sent to the exchange…", "pending"


def exit_quantity(state: dict[str, Any], amount: Any, positions: Any, symbol: str) -> Decimal:
    """What an attached exit sells: the ticket's quantity (the BUY just placed), else the
    open long position of the symbol; zero when there is neither."""
    value = None if spends(state) else decimal_or_none(amount)
    if value is not None and value > 0:
        return value
    for position in positions or []:
        if isinstance(position, dict) and position.get("symbol") == symbol:
            size = decimal_or_none(position.get("quantity")) or Decimal(0)
            return size if size > 0 else Decimal(0)
    return Decimal(0)


def exit_errors(quantity: Decimal, take: Any, stop: Any, stop_limit: Any) -> dict[str, str]:
    """What is wrong with an exit, by field (quantity, price, stopPrice), in plain words."""
    errors: dict[str, str] = {}
    if quantity <= 0:
        errors["quantity"] = "Enter the quantity to protect, or open a position first."
    _price_error(errors, "price", take, "Enter a take-profit price.")
    _price_error(errors, "stopPrice", stop, "Enter a stop-loss price.")
    if str(stop_limit or "").strip():
        limit = decimal_or_none(stop_limit)
        if limit is None or limit <= 0:
            errors["stopPrice"] = "The stop-loss limit must be a price greater than zero."
    tp, sl = decimal_or_none(take), decimal_or_none(stop)
    if not errors and tp is not None and sl is not None and tp <= sl:
        errors["price"] = "The take profit must be above the stop-loss."
    return errors


def exit_body(symbol: str, quantity: Decimal, take: Any, stop: Any,
              stop_limit: Any) -> dict[str, Any]:
    """The POST /api/trading/order-lists body of a checked exit: an OCO SELL whose
    stop-loss sells at its own limit (the stop price itself when left empty)."""
    limit = decimal_or_none(stop_limit) or decimal_or_none(stop)
    return {"type": "OCO", "symbol": symbol, "side": "SELL", "quantity": plain(quantity),
            "price": str(decimal_or_none(take)), "stopPrice": str(decimal_or_none(stop)),
            "stopLimitPrice": str(limit), "clientOrderId": new_client_order_id()}


def stop_error(exc: ApiClientError) -> str:
    """A refused stop price in plain words: already reached, or not a valid price."""
    details = exc.details if isinstance(exc.details, dict) else {}
    if exc.code == "stop_would_trigger":
        now = decimal_or_none(details.get("currentPrice"))
        at = f" (the market is at {plain(now)})" if now is not None else ""
        return (f"The market is already past this stop{at}, so it would trigger at once. "
                "Move the stop further from the market.")
    return friendly(exc.message)


def error_outcome(exc: ApiClientError) -> tuple[str, str, str, str, str]:
    """(message, class, quantity error, price error, stop error) for a refused placement."""
    if exc.code == "network":
        return NETWORK_MESSAGE, "form-message error network", "", "", ""
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    field = exc.details.get("field") if isinstance(exc.details, dict) else None
    if not field and isinstance(fields, list) and len(fields) == 1:
        field = fields[0].get("field")
    if isinstance(fields, list) and len(fields) > 1:
        text = "; ".join(f"{f.get('field')}: {friendly(f.get('message'))}" for f in fields)
        return text, "form-message error", "", "", ""
    if exc.code == "stop_would_trigger" or field == "stopPrice":
        return "", "form-message", "", "", stop_error(exc)
    if field in ("quantity", "quoteOrderQty"):
        return "", "form-message", friendly(exc.message), "", ""
    if field == "price":
        return "", "form-message", "", friendly(exc.message), ""
    return friendly(exc.message), "form-message error", "", "", ""


def symbol_of(pathname: Any) -> str:
    """The symbol of a /trade/<SYMBOL> path (the default elsewhere)."""
    parts = [p for p in str(pathname or "").split("/") if p]
    if len(parts) >= 2 and parts[0] == "trade" and SYMBOL_RE.fullmatch(parts[1].upper()):
        return parts[1].upper()  # only a well-formed symbol ever reaches an API path
    return DEFAULT_SYMBOL


# ---- layout -----------------------------------------------------------------------------
def _field(label: str, component: Any, label_id: str | None = None) -> html.Label:
    span = html.Span(label, className="field-label", **({"id": label_id} if label_id else {}))
    return html.Label([span, component], className="field")


def _seg(label: str, cid: str, classes: str, title: str | None = None) -> html.Button:
    return html.Button(label, id=cid, className=classes, n_clicks=0,
                       **({"title": title} if title else {}))


def layout() -> html.Div:
    """Buy/Sell, Market/Limit, amount by quantity, spend or % of balance, price, total,
    expected fee, place, the confirmation and the message."""
    return html.Div(className="panel ticket", id=TICKET, children=[
        dcc.Store(id=STATE, data={"side": "BUY", "type": "MARKET", "qtyMode": "amount"}),
        dcc.Store(id=PENDING), dcc.Store(id=FOLLOWED), dcc.Store(id=FOLLOWED_STATE),
        dcc.Store(id=COMMISSION), dcc.Store(id=TICKET_MARKET),
        dcc.Interval(id=COMMISSION_RETRY, interval=2_000, max_intervals=15, disabled=True),
        html.Div(className="seg side-seg", children=[
            _seg("Buy", SIDE_BUY, "seg-btn buy active", "Buy (B)"),
            _seg("Sell", SIDE_SELL, "seg-btn sell", "Sell (S)"),
        ]),
        html.Div(className="seg type-seg", children=[
            _seg("Market", TYPE_MARKET, "seg-btn active", "Market (M)"),
            _seg("Limit", TYPE_LIMIT, "seg-btn", "Limit (L)"),
            _seg("Stop-limit", TYPE_STOP, "seg-btn", "A limit order placed when the market "
                 "reaches the stop price (stop-loss or take-profit, from where the stop sits)"),
        ]),
        _field("Symbol", dcc.Dropdown(id=SYMBOL_SELECT, options=[DEFAULT_SYMBOL],
                                      value=DEFAULT_SYMBOL, clearable=False, searchable=True)),
        html.Div(id=STOP_FIELD, style=HIDE, children=[
            _field("Stop price", dcc.Input(id=STOP, type="text", inputMode="decimal",
                                           placeholder="triggers at", debounce=False)),
            html.Div(id=STOP_ERROR, className="field-error"),
        ]),
        html.Div(id=PRICE_FIELD, style=HIDE, children=[
            _field("Limit price", dcc.Input(id=PRICE, type="text", inputMode="decimal",
                                            placeholder="price", debounce=False)),
            html.Div(id=PRICE_ERROR, className="field-error"),
        ]),
        html.Div(className="seg qty-mode", children=[
            _seg("Amount", MODE_AMOUNT, "seg-btn small active"),
            _seg("Spend", MODE_QUOTE, "seg-btn small", "Spend an amount of the quote asset "
                 "(MARKET orders)"),
            _seg("% of balance", MODE_PCT, "seg-btn small"),
        ]),
        _field("Quantity", dcc.Input(id=QTY, type="text", inputMode="decimal",
                                     placeholder="quantity", debounce=False), QTY_LABEL),
        html.Div(id=QTY_ERROR, className="field-error"),
        html.Div(id=PCT_FIELD, style=HIDE, children=[
            dcc.Slider(id=PCT, min=0, max=100, step=1, value=0,
                       marks={0: "0%", 25: "25%", 50: "50%", 75: "75%", 100: "100%"},
                       tooltip={"placement": "bottom", "always_visible": False}),
            html.Div(className="pct-buttons", children=[
                html.Button(f"{pct}%", id=f"pct-{pct}", className="btn tiny", n_clicks=0)
                for pct in PCT_BUTTONS
            ]),
        ]),
        *(html.Div(className="ticket-row", children=[
            html.Span(label, className="muted"), html.Span("—", id=cid, className="mono")])
          for label, cid in (("Available", AVAILABLE), ("Total", TOTAL), ("Fee", FEE))),
        html.Button("Buy BTCUSDT", id=PLACE, className="btn buy wide", n_clicks=0,
                    title="Place order (Shift+Enter)"),
        # Shift+Enter clicks this one (assets/40-ui.js): a keystroke always asks first.
        html.Button(id=PLACE_KEYED, n_clicks=0, style=HIDE, tabIndex="-1",
                    **{"aria-hidden": "true"}),
        html.Div(id=CONFIRM_BOX, className="confirm-box", style=HIDE, role="alertdialog",
                 children=[
            html.Div(id=CONFIRM_TEXT, className="confirm-text"),
            html.Div(className="confirm-actions", children=[
                html.Button("Place order", id=CONFIRM_YES, className="btn small primary",
                            n_clicks=0),
                html.Button("Cancel", id=CONFIRM_NO, className="btn small", n_clicks=0),
            ]),
        ]),
        html.Div(id=MESSAGE, className="form-message", role="status"),
        html.Button("Attach exit", id=EXIT_TOGGLE, className="btn small wide", n_clicks=0,
                    title="Sell the quantity above (or your open position) at a take profit "
                          "or a stop-loss, whichever comes first (OCO)"),
        html.Div(id=EXIT_BOX, className="exit-box", style=HIDE, children=[
            _field("Take profit", dcc.Input(id=EXIT_TP, type="text", inputMode="decimal",
                                            placeholder="sell above the market")),
            html.Div(id=EXIT_TP_ERROR, className="field-error"),
            _field("Stop-loss", dcc.Input(id=EXIT_SL, type="text", inputMode="decimal",
                                          placeholder="stop below the market")),
            _field("Stop-loss limit", dcc.Input(id=EXIT_SL_LIMIT, type="text",
                                                inputMode="decimal",
                                                placeholder="empty: the stop-loss price")),
            html.Div(id=EXIT_SL_ERROR, className="field-error"),
            html.Button("Place exit", id=EXIT_PLACE, className="btn small primary wide",
                        n_clicks=0),
        ]),
        html.Div(id=BALANCE_SOURCE, className="field-hint balance-source"),
        html.P("Shortcuts: B buy · S sell · M market · L limit · Q quantity · "
               "Shift+Enter place · 1-5 timeframe", className="field-hint shortcuts"),
    ])


# ---- callbacks --------------------------------------------------------------------------
# One callback per choice, each patching only its own key: two quick shortcut presses (B
# then L) never start from the same stale state and undo each other.
def _choice(key: str, options: dict[str, str]) -> None:
    @callback(Output(STATE, "data", allow_duplicate=True),
              [Input(cid, "n_clicks") for cid in options], prevent_initial_call=True)
    def _pick(*_clicks: int) -> Any:
        if ctx.triggered_id not in options:
            return NO
        patch = Patch()
        patch[key] = options[str(ctx.triggered_id)]
        return patch


_choice("side", {SIDE_BUY: "BUY", SIDE_SELL: "SELL"})
_choice("type", {TYPE_MARKET: "MARKET", TYPE_LIMIT: "LIMIT", TYPE_STOP: "STOP"})
_choice("qtyMode", {MODE_AMOUNT: "amount", MODE_QUOTE: "quote", MODE_PCT: "percent"})


@callback(Output(PRICE, "value", allow_duplicate=True), Output(STATE, "data", allow_duplicate=True),
          Input(PRICE_CLICK_STORE, "data"), State(URL, "pathname"), State(STATE, "data"),
          prevent_initial_call=True)
def price_from_book(click: dict[str, Any] | None, pathname: str | None,
                    state: dict[str, Any] | None) -> tuple[Any, Any]:
    """A click on a price in the order book or the tape makes the ticket a LIMIT at it (a
    spend amount is for MARKET orders only, so that mode falls back to a quantity)."""
    if not click or not click.get("price") or click.get("symbol") != symbol_of(pathname):
        return NO, NO
    patch = Patch()
    patch["type"] = "LIMIT"
    if (state or {}).get("qtyMode") == "quote":
        patch["qtyMode"] = "amount"
    return str(click["price"]), patch


@callback(
    Output(SIDE_BUY, "className"), Output(SIDE_SELL, "className"),
    Output(TYPE_MARKET, "className"), Output(TYPE_LIMIT, "className"),
    Output(TYPE_STOP, "className"), Output(STOP_FIELD, "style"),
    Output(MODE_AMOUNT, "className"), Output(MODE_QUOTE, "className"),
    Output(MODE_PCT, "className"), Output(MODE_QUOTE, "disabled"),
    Output(PRICE_FIELD, "style"), Output(PCT_FIELD, "style"),
    Output(QTY_LABEL, "children"), Output(QTY, "placeholder"),
    Output(PLACE, "children"), Output(PLACE, "className"),
    Input(STATE, "data"), Input(URL, "pathname"),
)
def ticket_view(state: dict[str, Any] | None, pathname: str | None) -> tuple[Any, ...]:
    """Draw the ticket for its state: active buttons, which fields show, the place label."""
    state = state or {}
    symbol = symbol_of(pathname)
    buy = state.get("side") != "SELL"
    order_type = state.get("type")
    limit = order_type in PRICED
    mode = state.get("qtyMode", "amount")
    # Spend is a MARKET order's amount: on a LIMIT ticket the amount is a quantity.
    spend = spends(state)
    quote = rules_of({"symbol": symbol})["quoteAsset"]

    def seg(on: bool, extra: str = "") -> str:
        return f"seg-btn{extra}" + (" active" if on else "")
    label = (f"{'Spend' if buy else 'Receive'} ({quote})" if spend else "Quantity")
    return (
        seg(buy, " buy"), seg(not buy, " sell"), seg(not limit), seg(order_type == "LIMIT"),
        seg(order_type == "STOP"), SHOW if order_type == "STOP" else HIDE,
        seg(mode == "amount" or (mode == "quote" and limit), " small"), seg(spend, " small"),
        seg(mode == "percent", " small"), limit,
        SHOW if limit else HIDE, SHOW if mode == "percent" else HIDE,
        label, f"amount in {quote}" if spend else "quantity",
        f"{'Buy' if buy else 'Sell'} {symbol}", f"btn wide {'buy' if buy else 'sell'}",
    )


@callback(Output(PCT, "value"), [Input(f"pct-{p}", "n_clicks") for p in PCT_BUTTONS],
          prevent_initial_call=True)
def pct_button(*_clicks: int) -> Any:
    """A 10/25/50/75/100 % button moves the slider."""
    return int(str(ctx.triggered_id).removeprefix("pct-")) if ctx.triggered_id else NO


@callback(Output(QTY, "value"), Input(PCT, "value"), Input(STATE, "data"),
          State(PRICE, "value"), State(MARKET, "data"), State(BALANCES, "data"),
          prevent_initial_call=True)
def percent_to_qty(pct: Any, state: dict[str, Any] | None, price: Any,
                   market: dict[str, Any] | None, balances: dict[str, Any] | None) -> Any:
    """% of the available balance -> the amount field, floored to the symbol's step."""
    state = state or {}
    if state.get("qtyMode") != "percent" or pct is None:
        return NO
    out = percent_to_quantity(pct, state, price, with_balances(market, balances))
    return NO if out is None else out


# The market store changes with every tick (~4/s); the ticket's numbers need a new price
# about once a second, but another symbol or its rules at once (balances come from their
# own store). This gate keeps the server hops of an idle ticket to one a second per tab.
clientside_callback(
    """function (market, last) {
        const m = market || {}, l = last || {};
        const same = m.symbol === l.symbol && JSON.stringify(m.rules) === JSON.stringify(l.rules);
        if (same && (m.t || 0) - (l.t || 0) < 1000) return window.dash_clientside.no_update;
        return m;
    }""",
    Output(TICKET_MARKET, "data"), Input(MARKET, "data"), State(TICKET_MARKET, "data"),
)


@callback(Output(AVAILABLE, "children"), Output(TOTAL, "children"), Output(FEE, "children"),
          Input(QTY, "value"), Input(PRICE, "value"), Input(STATE, "data"),
          Input(TICKET_MARKET, "data"), Input(COMMISSION, "data"), Input(BALANCES, "data"))
def numbers(amount: Any, price: Any, state: dict[str, Any] | None,
            market: dict[str, Any] | None, commission: dict[str, Any] | None,
            balances: dict[str, Any] | None = None) -> tuple[str, ...]:
    """Available balance, total and expected fee for what the ticket holds now."""
    return ticket_numbers(amount, price, state or {}, with_balances(market, balances),
                          commission)


@callback(Output(COMMISSION, "data"), Output(COMMISSION_RETRY, "disabled"),
          Input(AUTH, "data"), Input(ids.PAGE_SHOWN, "data"),
          Input(COMMISSION_RETRY, "n_intervals"), State(COMMISSION, "data"))
def load_commission(auth: Any, page: Any, _retry: Any, known: Any) -> tuple[Any, bool]:
    """The account's commission rates (fees before placing): once per sign-in, and on a
    trade page visit while still unknown; a new account's rates arrive with its first
    balance snapshot, so while the API has none yet it asks again every 2 s for 30 s. It
    follows the page shown, not the path, so a symbol switch costs no server call."""
    token = token_of(auth)
    if not token or page != "trade":
        return NO, True
    if ctx.triggered_id in (ids.PAGE_SHOWN, COMMISSION_RETRY) and known:
        return NO, True
    try:
        return ApiClient(_api_url, token).get("/api/account/commission"), True
    except ApiClientError:
        return None, False  # the fee shows "—" meanwhile; placing does not depend on it


PLACE_OUTPUTS = (
    Output(MESSAGE, "children"), Output(MESSAGE, "className"), Output(QTY_ERROR, "children"),
    Output(PRICE_ERROR, "children"), Output(STOP_ERROR, "children"), Output(CONFIRM_BOX, "style"),
    Output(CONFIRM_TEXT, "children"), Output(PENDING, "data"), Output(FOLLOWED, "data"),
)


@callback(
    *PLACE_OUTPUTS,
    Input(PLACE, "n_clicks"), Input(PLACE_KEYED, "n_clicks"), Input(CONFIRM_YES, "n_clicks"),
    Input(CONFIRM_NO, "n_clicks"),
    State(STATE, "data"), State(QTY, "value"), State(PRICE, "value"), State(STOP, "value"),
    State(URL, "pathname"), State(MARKET, "data"), State(AUTH, "data"), State(PENDING, "data"),
    prevent_initial_call=True,
)
def place(_n: int, _keyed: int, _yes: int, _no: int, state: dict[str, Any] | None,
          amount: Any, price: Any, stop: Any, pathname: Any, market: dict[str, Any] | None,
          auth: Any, pending: dict[str, Any] | None) -> tuple[Any, ...]:
    """Check the ticket, ask first when it looks like a slip, then place the order."""
    trigger = ctx.triggered_id
    if trigger == CONFIRM_NO:
        return "", "form-message", "", "", "", HIDE, "", None, NO
    if trigger == CONFIRM_YES:
        if not pending:
            return NO, NO, NO, NO, NO, HIDE, "", None, NO
        body = pending
    else:
        state = state or {}
        errors = field_errors(state, amount, price, stop)
        if errors:
            return ("", "form-message", errors.get("quantity", ""), errors.get("price", ""),
                    errors.get("stopPrice", ""), HIDE, "", None, NO)
        body = order_body(state, symbol_of(pathname), amount, price, stop, market)
        warning = fat_finger_warning(body, market)
        if warning or trigger == PLACE_KEYED:
            return ("", "form-message", "", "", "", SHOW, confirm_question(body, warning), body,
                    NO)
    try:
        answer = ApiClient(_api_url, token_of(auth)).post("/api/trading/orders", body)
    except ApiClientError as exc:
        return (*error_outcome(exc), HIDE, "", None, NO)
    what = describe(body)
    status = (answer or {}).get("status") or "PENDING"
    return (f"{what} sent ({status})…", "form-message pending", "", "", "", HIDE, "", None,
            {"orderId": (answer or {}).get("orderId"), "what": what,
             "tick": rules_of(market).get("tickSize") or "0.01"})


@callback(Output(EXIT_BOX, "style"), Input(EXIT_TOGGLE, "n_clicks"), prevent_initial_call=True)
def toggle_exit(clicks: int) -> Any:
    """"Attach exit" opens and closes the exit's fields."""
    return SHOW if clicks % 2 else HIDE


@callback(
    Output(MESSAGE, "children", allow_duplicate=True),
    Output(MESSAGE, "className", allow_duplicate=True),
    Output(QTY_ERROR, "children", allow_duplicate=True),
    Output(EXIT_TP_ERROR, "children"), Output(EXIT_SL_ERROR, "children"),
    Output(FOLLOWED, "data", allow_duplicate=True),
    Input(EXIT_PLACE, "n_clicks"),
    State(STATE, "data"), State(QTY, "value"), State(EXIT_TP, "value"), State(EXIT_SL, "value"),
    State(EXIT_SL_LIMIT, "value"), State(URL, "pathname"), State(POSITIONS, "data"),
    State(MARKET, "data"), State(AUTH, "data"),
    prevent_initial_call=True,
)
def place_exit(_n: int, state: dict[str, Any] | None, amount: Any, take: Any, stop: Any,
               stop_limit: Any, pathname: Any, positions: Any, market: dict[str, Any] | None,
               auth: Any) -> tuple[Any, ...]:
    """Attach an exit: an OCO SELL of the ticket's quantity (or the open position), take
    profit above the market and stop-loss below; the message then follows both legs."""
    symbol = symbol_of(pathname)
    quantity = floor_to(exit_quantity(state or {}, amount, positions, symbol),
                        rules_of(market).get("stepSize"))
    errors = exit_errors(quantity, take, stop, stop_limit)
    if errors:
        return ("", "form-message", errors.get("quantity", ""), errors.get("price", ""),
                errors.get("stopPrice", ""), NO)
    body = exit_body(symbol, quantity, take, stop, stop_limit)
    try:
        answer = ApiClient(_api_url, token_of(auth)).post("/api/trading/order-lists", body)
    except ApiClientError as exc:
        message, kind, qty_error, price_error, stop_err = error_outcome(exc)
        return message, kind, qty_error, price_error, stop_err, NO
    what = f"Exit SELL {body['quantity']} {symbol}"
    legs = [leg.get("orderId") for leg in (answer or {}).get("orders") or []]
    return (f"{what} sent…", "form-message pending", "", "", "",
            {"orderIds": legs, "orderListId": (answer or {}).get("orderListId"), "what": what,
             "tick": rules_of(market).get("tickSize") or "0.01"})


# The orders store holds up to 500 orders: only the followed one goes to the server.
# An exit follows its two legs (orderIds) and goes to the server as {orderIds, legs}.
clientside_callback(
    """function (orders, followed) {
        const want = !followed ? [] : (followed.orderIds || [followed.orderId]);
        const found = (orders || []).filter(function (x) {
            return x.orderId != null && want.indexOf(x.orderId) >= 0;
        }).map(function (o) {
            return {orderId: o.orderId, status: o.status, version: o.version, type: o.type,
                    averagePrice: o.averagePrice, price: o.price, stopPrice: o.stopPrice,
                    stopTriggered: o.stopTriggered, rejectReason: o.rejectReason,
                    rejectCode: o.rejectCode};
        });
        if (!found.length) return window.dash_clientside.no_update;
        return followed.orderIds ? {orderIds: followed.orderIds, legs: found} : found[0];
    }""",
    Output(FOLLOWED_STATE, "data"), Input(ORDERS, "data"), Input(FOLLOWED, "data"),
)


@callback(Output(MESSAGE, "children", allow_duplicate=True),
          Output(MESSAGE, "className", allow_duplicate=True),
          Input(FOLLOWED_STATE, "data"), State(FOLLOWED, "data"), prevent_initial_call=True)
def follow(order: dict[str, Any] | None, followed: dict[str, Any] | None) -> tuple[Any, Any]:
    """The message follows the order it announced, so it never stays "sent"."""
    if not order or not followed:
        return NO, NO
    what, tick = str(followed.get("what") or ""), followed.get("tick") or "0.01"
    if followed.get("orderIds"):
        if order.get("orderIds") != followed.get("orderIds"):
            return NO, NO
        text, kind = list_message(list(order.get("legs") or []), what, tick)
    elif order.get("orderId") != followed.get("orderId"):
        return NO, NO
    else:
        text, kind = order_message(order, what, tick)
    return (text, f"form-message {kind}") if text else (NO, NO)


@callback(Output(MESSAGE, "children", allow_duplicate=True),
          Output(MESSAGE, "className", allow_duplicate=True),
          Input(LIVE_STATUS, "className"), State(MESSAGE, "className"),
          prevent_initial_call=True)
def clear_network_error(live: Any, kind: Any) -> tuple[Any, Any]:
    """"Cannot reach the API" goes once the live stream is back."""
    if "network" in str(kind or "") and "live" in str(live or "").split():
        return "", "form-message"
    return NO, NO
