"""The live symbol catalog: trading rules read from the exchange's exchangeInfo.

Binance changes exchangeInfo at run time (filters, a symbol's status such as BREAK, the
Testnet's CANCEL_ONLY periods), so the rules the API validates orders with are loaded at
start and refreshed: every `exchange_info_refresh_seconds`, and at once when an order was
refused with -1013 (a filter) or -1111 (precision), which says our copy is stale. The paper
exchange's table (adapters/markets.py) is only the fallback while the exchange cannot be
reached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.symbols import TRADING, PercentPriceBySide, SymbolRules

log = logging.getLogger(__name__)

UNLIMITED = Decimal("Infinity")
# OrderRejected codes that mean "your copy of exchangeInfo is stale".
STALE_RULES_CODES = frozenset({"-1013", "-1111"})
ORDER_REJECTED_TOPIC = "domain.order:Order.OrderRejected"


class SymbolCatalogAdapter:
    """SymbolCatalog over a set of rules, with reference prices fed by market data.

    Starts with the paper exchange's table; `set_rules` swaps in the exchange's live rules.
    """

    def __init__(self, rules: dict[str, SymbolRules] | None = None) -> None:
        if rules is None:
            from adapters.paper_exchange.markets import DEFAULT_MARKETS

            rules = {s: m.rules for s, m in DEFAULT_MARKETS.items()}
        self._rules = dict(rules)
        self._prices: dict[str, Decimal] = {}
        self._lock = threading.Lock()
        self.live = False  # True once the exchange's exchangeInfo replaced the table

    def rules(self, symbol: str) -> SymbolRules | None:
        return self._rules.get(symbol)

    def symbols(self) -> list[str]:
        return sorted(self._rules)

    def set_rules(self, rules: dict[str, SymbolRules]) -> None:
        """Replace every symbol's rules at once (readers see the old or the new set)."""
        self._rules = dict(rules)
        self.live = True

    def reference_price(self, symbol: str) -> Decimal | None:
        with self._lock:
            return self._prices.get(symbol)

    def update_price(self, symbol: str, price: Decimal) -> None:
        with self._lock:
            self._prices[symbol] = price


def _dec(value: Any, default: Decimal = Decimal(0)) -> Decimal:
    """A filter value as a Decimal without the exchange's trailing zeros ("0.01000000" is
    0.01), so tick and step sizes round prices and quantities to what they mean."""
    try:
        number = Decimal(str(value)) if value not in (None, "") else default
    except InvalidOperation:
        return default
    exponent = number.normalize().as_tuple().exponent
    if not isinstance(exponent, int):
        return number  # Infinity
    return number.normalize() if exponent <= 0 else number.quantize(Decimal(1))


def rules_from_symbol(info: dict[str, Any]) -> SymbolRules:
    """Build one symbol's rules from its exchangeInfo entry."""
    filters = {f.get("filterType"): f for f in info.get("filters", ())}
    price = filters.get("PRICE_FILTER", {})
    lot = filters.get("LOT_SIZE", {})
    notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
    market_lot = filters.get("MARKET_LOT_SIZE")
    band = filters.get("PERCENT_PRICE_BY_SIDE")
    max_orders = filters.get("MAX_NUM_ORDERS")
    max_price = _dec(price.get("maxPrice"))
    max_qty = _dec(lot.get("maxQty"))
    return SymbolRules(
        symbol=str(info["symbol"]), base_asset=str(info.get("baseAsset", "")),
        quote_asset=str(info.get("quoteAsset", "")),
        step_size=_dec(lot.get("stepSize")), tick_size=_dec(price.get("tickSize")),
        min_qty=_dec(lot.get("minQty")), max_qty=max_qty or UNLIMITED,
        min_price=_dec(price.get("minPrice")), max_price=max_price or UNLIMITED,
        min_notional=_dec(notional.get("minNotional")),
        status=str(info.get("status", TRADING)),
        market_min_qty=_dec(market_lot.get("minQty")) if market_lot else None,
        market_max_qty=_dec(market_lot.get("maxQty")) if market_lot else None,
        market_step_size=_dec(market_lot.get("stepSize")) if market_lot else None,
        percent_price=PercentPriceBySide(
            bid_up=_dec(band.get("bidMultiplierUp")), bid_down=_dec(band.get("bidMultiplierDown")),
            ask_up=_dec(band.get("askMultiplierUp")), ask_down=_dec(band.get("askMultiplierDown")),
        ) if band else None,
        max_num_orders=int(max_orders.get("maxNumOrders", max_orders.get("limit", 0)) or 0)
        if max_orders else None,
    )


def rules_from_exchange_info(data: dict[str, Any]) -> dict[str, SymbolRules]:
    """Build the rules of every symbol in an exchangeInfo answer (unreadable ones skipped)."""
    rules: dict[str, SymbolRules] = {}
    for info in data.get("symbols", ()):
        try:
            rule = rules_from_symbol(info)
        except (KeyError, TypeError, ValueError):
            log.warning("exchangeInfo: skipping unreadable symbol %r", info.get("symbol"))
            continue
        rules[rule.symbol] = rule
    return rules


def exchange_info_fetcher(api_url: str | None, testnet: bool = False,
                          timeout: tuple[float, float] = (3.05, 10.0)) -> Callable[[], Any]:
    """Return a function that fetches exchangeInfo with python-binance (public, no keys)."""
    def fetch() -> Any:
        from binance import Client

        client = Client(requests_params={"timeout": timeout}, testnet=testnet, ping=False)
        if api_url:
            client.API_URL = api_url
        try:
            return client.get_exchange_info()
        finally:
            client.close_connection()

    return fetch


class RejectionWatch:
    """Tell whether an order was refused for stale rules (-1013/-1111) since the last look.

    Reads only OrderRejected notifications of the event store, from where it started.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._next = int(app.recorder.max_notification_id() or 0) + 1

    def __call__(self) -> bool:
        stale = False
        # Up to the log's end as it is now, then move past it even when nothing matched, so
        # each look scans only what was appended since the last one.
        end = int(self.app.recorder.max_notification_id() or 0)
        while self._next <= end:
            page = self.app.recorder.select_notifications(
                self._next, 500, stop=end, topics=[ORDER_REJECTED_TOPIC])
            if not page:
                break
            for n in page:
                event: Any = self.app.mapper.to_domain_event(n)
                if str(getattr(event, "code", "")) in STALE_RULES_CODES:
                    stale = True
            self._next = page[-1].id + 1
        self._next = max(self._next, end + 1)
        return stale


class ExchangeInfoRefresher:
    """Keep a SymbolCatalogAdapter's rules equal to the exchange's exchangeInfo."""

    def __init__(self, catalog: SymbolCatalogAdapter, fetch: Callable[[], Any], *,
                 interval: float = 300.0, retry: float = 30.0,
                 stale_signals: Iterable[Callable[[], bool]] = (), poll: float = 2.0) -> None:
        self.catalog = catalog
        self._fetch = fetch
        self.interval = interval
        self.retry = retry
        self.poll = poll
        self._signals = list(stale_signals)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loaded_at: float | None = None  # time.time() of the last successful load
        self.refreshes = 0

    def refresh(self) -> bool:
        """Load exchangeInfo now; False (rules unchanged) when the exchange cannot answer."""
        try:
            rules = rules_from_exchange_info(self._fetch())
        except Exception as exc:  # unreachable, 5xx, rate limited: keep what we have
            log.warning("exchangeInfo not loaded (%s: %s); keeping the %s rules",
                        type(exc).__name__, exc, "live" if self.catalog.live else "fallback")
            return False
        if not rules:
            log.warning("exchangeInfo listed no symbols; keeping the current rules")
            return False
        self.catalog.set_rules(rules)
        self.loaded_at = time.time()
        self.refreshes += 1
        log.info("exchangeInfo loaded: %d symbols", len(rules))
        return True

    def refresh_soon(self) -> None:
        """Ask for a refresh at once (after a -1013/-1111 refusal)."""
        self._wake.set()

    def start(self) -> None:
        """Load once now (the fallback table stays if that fails) and refresh in the background."""
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="exchange-info", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            if self._stop.is_set():
                return
            due = self.interval if self.catalog.live else self.retry
            woken = self._wake.is_set()
            self._wake.clear()
            if not woken:
                woken = any(self._stale(signal) for signal in self._signals)
            if woken or time.monotonic() - last >= due:
                self.refresh()
                last = time.monotonic()

    @staticmethod
    def _stale(signal: Callable[[], bool]) -> bool:
        try:
            return signal()
        except Exception:
            log.debug("stale-rules signal failed", exc_info=True)
            return False
