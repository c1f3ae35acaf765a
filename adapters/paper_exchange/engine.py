"""The paper exchange's matching engine: accounts, balances, orders and fills.

Users trade only against the simulated market, never against each other. MARKET orders fill
at once at the last price plus/minus a 1 bp half spread; LIMIT orders that cross on arrival
fill at that price too (taker), the rest rests and fills at its limit price (maker) when the
last price reaches it. Fills of 1,000 quote or more are split into three trades (50/30/20%).
Commission is `commission_rate` of what the user receives: the base asset on a BUY, the quote
on a SELL, rounded up to 8 decimals (0 by default, as on the Testnet; Binance charges 0.001
without BNB discounts).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from adapters.paper_exchange import errors as e
from adapters.paper_exchange.filters import SymbolState
from adapters.paper_exchange.formats import account_position, execution_report, list_status
from adapters.paper_exchange.market import MarketSimulator
from adapters.paper_exchange.markets import Market
from adapters.paper_exchange.models import ZERO, Account, Balance, Order, Trade
from adapters.paper_exchange.store import Store

UserEventSink = Callable[[str, dict[str, Any]], None]
EIGHT = Decimal("0.00000001")
SPLIT_NOTIONAL = Decimal(1000)
SPLIT_PARTS = (Decimal("0.5"), Decimal("0.3"))
DEFAULT_BALANCES: dict[str, Decimal] = {
    "USDT": Decimal(100_000), "BTC": Decimal(1), "ETH": Decimal(10), "BNB": Decimal(50),
    "SOL": Decimal(100), "ADA": Decimal(20_000), "XRP": Decimal(20_000),
    "DOGE": Decimal(100_000), "LINK": Decimal(500),
}
SIDES = ("BUY", "SELL")
STOP_TYPES = ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER", *STOP_TYPES)
TIME_IN_FORCE = ("GTC", "IOC", "FOK")


# OCO legs (Binance's orderList/oco): a limit-side leg (LIMIT_MAKER or TAKE_PROFIT_LIMIT) and
# a stop-loss leg (STOP_LOSS_LIMIT); the market STOP_LOSS / TAKE_PROFIT types are not served.
OCO_LIMIT_TYPES = ("LIMIT_MAKER", "TAKE_PROFIT_LIMIT")
OCO_STOP_TYPES = ("STOP_LOSS_LIMIT",)


@dataclass(frozen=True)
class OcoLeg:
    """One leg of a parsed POST /api/v3/orderList/oco (`above...` or `below...` params)."""

    type: str
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str | None = None
    client_order_id: str | None = None


@dataclass(frozen=True)
class OcoRequest:
    """A parsed POST /api/v3/orderList/oco."""

    symbol: str
    side: str
    quantity: Decimal | None
    above: OcoLeg
    below: OcoLeg
    list_client_order_id: str | None = None


@dataclass(frozen=True)
class OrderRequest:
    """A parsed POST /api/v3/order."""

    symbol: str
    side: str
    type: str
    time_in_force: str | None = None
    quantity: Decimal | None = None
    quote_order_qty: Decimal | None = None
    price: Decimal | None = None
    client_order_id: str | None = None
    stop_price: Decimal | None = None


class Engine:
    """Accounts, orders and the matching of orders against the simulated prices."""

    def __init__(self, store: Store, market: MarketSimulator, markets: dict[str, Market],
                 clock: Callable[[], int], states: dict[str, SymbolState] | None = None,
                 commission_rate: Decimal = ZERO) -> None:
        self._store = store
        self.market = market
        self.markets = markets
        self.states = states if states is not None else {s: SymbolState() for s in markets}
        self.commission_rate = commission_rate
        self._clock = clock
        self.accounts = store.load_accounts()
        self.funding = store.load_funding()
        self.orders: dict[int, Order] = {o.order_id: o for o in store.load_orders()}
        self.open: dict[int, Order] = {}
        # Open orders per (key, symbol), kept as orders open and close: MAX_NUM_ORDERS in O(1).
        self._open_count: dict[tuple[str, str], int] = {}
        for order in self.orders.values():
            if order.is_open:
                self._track_open(order)
        # Orders that queries do not see yet (query_lag): order id -> monotonic time it shows.
        self.hidden: dict[int, float] = {}
        self.trades: list[Trade] = store.load_trades()
        # Ids continue after the highest stored one: an id reaches a client only after its
        # order or trade is committed, so none is ever reused, and no counter has to be
        # written with every order. State dirs from before kept counters in meta: honoured.
        self._next_order_id = max(int(store.get_meta("next_order_id") or 1),
                                  max(self.orders, default=0) + 1)
        self._next_trade_id = max(int(store.get_meta("next_trade_id") or 1),
                                  self.trades[-1].trade_id + 1 if self.trades else 1)
        # OCO order lists: list id -> its legs' order ids (rebuilt from the legs).
        self.lists: dict[int, list[int]] = {}
        for order in self.orders.values():
            if order.order_list_id >= 0:
                self.lists.setdefault(order.order_list_id, []).append(order.order_id)
        self._next_list_id = max(int(store.get_meta("next_list_id") or 1),
                                 max(self.lists, default=0) + 1)
        self.sinks: list[UserEventSink] = []
        self._pending: list[tuple[str, dict[str, Any]]] = []

    # -- keys -----------------------------------------------------------------------------

    def issue_keys(self, balances: dict[str, Decimal] | None = None) -> Account:
        """Create an API key pair funded with `balances` (default: DEFAULT_BALANCES)."""
        account = Account(secrets.token_hex(32), secrets.token_hex(32), self._clock())
        funding = dict(DEFAULT_BALANCES if balances is None else balances)
        for asset, amount in funding.items():
            account.balances[asset] = Balance(amount)
        with self._store.transaction():
            self._store.save_account(account)
            self._store.save_funding(account.api_key, funding)
        self.accounts[account.api_key] = account
        self.funding[account.api_key] = funding
        return account

    def reset(self) -> int:
        """Wipe every order and trade and fund each account anew (the Testnet's reset).

        Ids keep growing across the reset (stored in meta), so no id is ever reused.
        Returns the number of orders removed.
        """
        removed = len(self.orders)
        with self._store.transaction():
            self._store.set_meta("next_order_id", str(self._next_order_id))
            self._store.set_meta("next_trade_id", str(self._next_trade_id))
            self._store.set_meta("next_list_id", str(self._next_list_id))
            self._store.wipe()
            for key, account in self.accounts.items():
                funding = self.funding.get(key, DEFAULT_BALANCES)
                account.balances = {a: Balance(v) for a, v in funding.items()}
                self._store.save_account(account)
        self.orders.clear()
        self.lists.clear()
        self.open.clear()
        self._open_count.clear()
        self.trades.clear()
        self.hidden.clear()
        self._pending.clear()
        return removed

    # -- orders ---------------------------------------------------------------------------

    def place_order(self, account: Account, req: OrderRequest) -> tuple[Order, list[Trade]]:
        """Validate, accept and execute an order; return it with the fills it got at once."""
        market = self._market(req.symbol)
        rules = market.rules
        state = self.states[req.symbol]
        if not state.accepts_orders:
            raise e.error(e.MARKET_CLOSED)
        price, qty = self._validate(req, market, state)
        if self._open_count.get((account.api_key, req.symbol), 0) >= state.max_num_orders:
            raise e.filter_failure("MAX_NUM_ORDERS")
        client_id = req.client_order_id or "web_" + secrets.token_hex(11)
        if any(o.client_order_id == client_id and o.api_key == account.api_key
               for o in self.open.values()):
            raise e.error(e.DUPLICATE_ORDER)
        tif = req.time_in_force or "GTC"
        if req.type == "LIMIT_MAKER" and self._marketable(req.side, price, req.symbol):
            raise e.error(e.WOULD_TAKE)
        # Funds: a resting order locks what it may spend; a MARKET order needs it free now.
        if req.side == "BUY":
            need = price * qty if req.type != "MARKET" else (
                req.quote_order_qty or self.market.ask(req.symbol) * qty)
            asset = rules.quote_asset
        else:
            need, asset = qty, rules.base_asset
        if account.balance(asset).free < need:
            raise e.error(e.INSUFFICIENT_BALANCE)
        now = self._clock()
        order = Order(
            order_id=self._take_order_id(), api_key=account.api_key, symbol=req.symbol,
            client_order_id=client_id, side=req.side, type=req.type, time_in_force=tif,
            price=price if req.type != "MARKET" else ZERO, orig_qty=qty,
            orig_quote_order_qty=req.quote_order_qty or ZERO, time=now, update_time=now,
            stop_price=req.stop_price or ZERO, working=req.type not in STOP_TYPES,
            working_time=-1 if req.type in STOP_TYPES else now,
        )
        fills: list[Trade] = []
        with self._store.transaction():
            self.orders[order.order_id] = order
            if req.type != "MARKET":
                order.locked = need
                bal = account.balance(asset)
                bal.free -= need
                bal.locked += need
            self._changed(order, "NEW", {asset} if req.type != "MARKET" else set())
            if req.type == "MARKET":
                fills = self._fill_market(order)
            elif order.working:  # a stop order waits off the book for its trigger
                fills = self._fill_on_arrival(order)
        self._flush()
        return order, fills

    def place_oco(self, account: Account, req: OcoRequest) -> list[Order]:
        """Validate and accept an OCO order list; return its two legs (the stop-loss leg
        first; each carries the list's id). Neither leg can execute on arrival: their
        prices straddle the market."""
        market = self._market(req.symbol)
        state = self.states[req.symbol]
        if not state.accepts_orders:
            raise e.error(e.MARKET_CLOSED)
        if req.side not in SIDES:
            raise e.error(e.INVALID_SIDE)
        if req.quantity is None:
            raise e.mandatory("quantity")
        above_types, below_types = ((OCO_LIMIT_TYPES, OCO_STOP_TYPES) if req.side == "SELL"
                                    else (OCO_STOP_TYPES, OCO_LIMIT_TYPES))
        if req.above.type not in above_types or req.below.type not in below_types:
            raise e.error(e.INVALID_ORDER_TYPE)
        last = self.market.price(req.symbol)
        if not _oco_level(req.above) > last > _oco_level(req.below):
            raise e.error(e.OCO_PRICES)
        legs = sorted((req.above, req.below), key=lambda leg: leg.type not in OCO_STOP_TYPES)
        requests = [OrderRequest(
            symbol=req.symbol, side=req.side, type=leg.type, time_in_force=leg.time_in_force,
            quantity=req.quantity, price=leg.price, stop_price=leg.stop_price,
            client_order_id=leg.client_order_id or "web_" + secrets.token_hex(11))
            for leg in legs]
        for leg_req in requests:
            self._validate(leg_req, market, state)
        if self._open_count.get((account.api_key, req.symbol), 0) + 2 > state.max_num_orders:
            raise e.filter_failure("MAX_NUM_ORDERS")
        ids = [r.client_order_id for r in requests]
        if ids[0] == ids[1] or any(o.client_order_id in ids and o.api_key == account.api_key
                                   for o in self.open.values()):
            raise e.error(e.DUPLICATE_ORDER)
        list_cid = req.list_client_order_id or "web_" + secrets.token_hex(11)
        # One lock for the list: the base quantity (SELL) or the dearer leg's quote (BUY).
        rules = market.rules
        if req.side == "BUY":
            need = max(r.price * req.quantity for r in requests if r.price is not None)
            asset = rules.quote_asset
        else:
            need, asset = req.quantity, rules.base_asset
        if account.balance(asset).free < need:
            raise e.error(e.INSUFFICIENT_BALANCE)
        list_id = self._next_list_id
        self._next_list_id += 1
        now = self._clock()
        orders = []
        with self._store.transaction():
            for leg_req in requests:
                stop = leg_req.type in STOP_TYPES
                assert leg_req.price is not None and leg_req.client_order_id is not None
                order = Order(
                    order_id=self._take_order_id(), api_key=account.api_key,
                    symbol=req.symbol, client_order_id=leg_req.client_order_id, side=req.side,
                    type=leg_req.type, time_in_force=leg_req.time_in_force or "GTC",
                    price=leg_req.price, orig_qty=req.quantity, orig_quote_order_qty=ZERO,
                    time=now, update_time=now, stop_price=leg_req.stop_price or ZERO,
                    working=not stop, working_time=-1 if stop else now,
                    order_list_id=list_id, list_client_order_id=list_cid)
                self.orders[order.order_id] = order
                orders.append(order)
            orders[0].locked = need
            bal = account.balance(asset)
            bal.free -= need
            bal.locked += need
            self.lists[list_id] = [o.order_id for o in orders]
            for i, order in enumerate(orders):
                self._changed(order, "NEW", {asset} if i == 0 else set())
            self._list_changed(list_id)
        self._flush()
        return orders

    def list_legs(self, list_id: int) -> list[Order]:
        """Return an order list's legs, in the order they were placed."""
        return [self.orders[i] for i in self.lists.get(list_id, ())]

    def get_list(self, account: Account, list_id: int | None,
                 list_client_id: str | None) -> int:
        """Return the id of one of the account's order lists (-2013 if there is none)."""
        found = self._find_list(account, list_id, list_client_id)
        if found is None:
            raise e.error(e.NO_SUCH_ORDER_LIST)
        return found

    def open_lists(self, account: Account) -> list[int]:
        """Return the ids of the account's order lists that still execute."""
        return [list_id for list_id, legs in self.lists.items()
                if self.orders[legs[0]].api_key == account.api_key
                and any(self.orders[i].is_open for i in legs)]

    def cancel_list(self, account: Account, symbol: str, list_id: int | None,
                    list_client_id: str | None) -> int:
        """Cancel every open leg of an order list (-2011 if none is open)."""
        self._market(symbol)
        if not self.states[symbol].accepts_cancels:
            raise e.error(e.MARKET_CLOSED)
        found = self._find_list(account, list_id, list_client_id)
        legs = self.list_legs(found) if found is not None else []
        if not legs or legs[0].symbol != symbol or not any(o.is_open for o in legs):
            raise e.error(e.UNKNOWN_ORDER_LIST)
        self._cancel_legs(legs)
        return legs[0].order_list_id

    def _find_list(self, account: Account, list_id: int | None,
                   list_client_id: str | None) -> int | None:
        if list_id is not None:
            legs = self.lists.get(list_id)
            if legs and self.orders[legs[0]].api_key == account.api_key:
                return list_id
            return None
        for found, legs in reversed(self.lists.items()):  # the newest with that client id
            first = self.orders[legs[0]]
            if first.api_key == account.api_key and first.list_client_order_id == list_client_id:
                return found
        return None

    def _cancel_legs(self, legs: list[Order], cancel_id: str | None = None,
                     canceled: Order | None = None) -> None:
        """Cancel the open legs of one list (in one transaction) and announce the list done."""
        with self._store.transaction():
            for order in legs:
                if not order.is_open:
                    continue
                order.status = "CANCELED"
                order.update_time = self._clock()
                assets = self._release(order)
                self._changed(order, "CANCELED", assets,
                              cancel_id=cancel_id if order is canceled else None)
            self._list_changed(legs[0].order_list_id)
        self._flush()

    def _fire_list(self, order: Order) -> None:
        """One leg of an OCO started to execute (triggered, or reached as a LIMIT_MAKER):
        the other leg expires, and what it had locked now backs this one."""
        if order.order_list_id < 0:
            return
        siblings = [o for o in self.list_legs(order.order_list_id)
                    if o is not order and o.is_open]
        if not siblings:
            return
        for other in siblings:
            order.locked += other.locked
            other.locked = ZERO
            other.status = "EXPIRED"
            other.update_time = self._clock()
            self._changed(other, "EXPIRED", set())
        self._list_changed(order.order_list_id)

    def _list_changed(self, list_id: int) -> None:
        """Queue the list's `listStatus` user-data event."""
        legs = self.list_legs(list_id)
        self._pending.append((legs[0].api_key, list_status(legs, self._clock())))

    def _validate(self, req: OrderRequest, market: Market,
                  state: SymbolState) -> tuple[Decimal, Decimal]:
        rules = market.rules
        if req.side not in SIDES:
            raise e.error(e.INVALID_SIDE)
        if req.type not in TYPES:
            raise e.error(e.INVALID_ORDER_TYPE)
        if req.type == "MARKET":
            if req.price is not None:
                raise e.not_required("price")
            if req.time_in_force is not None:
                raise e.not_required("timeInForce")
            if req.quantity is None and req.quote_order_qty is None:
                raise e.BinanceError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, "
                                     "but both were empty/null!")
            if req.quantity is not None and req.quote_order_qty is not None:
                raise e.BinanceError(-1128, "Combination of optional parameters invalid.")
            ref = self.market.price(req.symbol)
            if req.quote_order_qty is not None:
                if req.quote_order_qty <= 0:
                    raise e.illegal("quoteOrderQty", "greater than 0")
                side_price = (self.market.ask if req.side == "BUY" else self.market.bid)(
                    req.symbol)
                qty = _floor(req.quote_order_qty / side_price, rules.step_size)
            else:
                assert req.quantity is not None
                qty = req.quantity
            self._check_lot(qty, market)
            max_qty = state.market_max_qty or rules.max_qty
            step = state.market_step_size
            if (qty < state.market_min_qty or qty > max_qty
                    or (step and (qty - state.market_min_qty) % step != 0)):
                raise e.filter_failure("MARKET_LOT_SIZE")
            if qty * ref < rules.min_notional:
                raise e.filter_failure("NOTIONAL")
            return ref, qty
        if req.type not in STOP_TYPES and req.stop_price is not None:
            raise e.not_required("stopPrice")
        if req.type == "LIMIT" or req.type in STOP_TYPES:
            if req.time_in_force is None:
                raise e.mandatory("timeInForce")
            if req.time_in_force not in TIME_IN_FORCE:
                raise e.error(e.INVALID_TIF)
        elif req.time_in_force is not None:
            raise e.not_required("timeInForce")
        if req.quote_order_qty is not None:
            raise e.not_required("quoteOrderQty")
        if req.quantity is None:
            raise e.mandatory("quantity")
        if req.price is None:
            raise e.mandatory("price")
        price, qty = req.price, req.quantity
        if (price < rules.min_price or price > rules.max_price
                or (price - rules.min_price) % rules.tick_size != 0):
            raise e.filter_failure("PRICE_FILTER")
        self._check_lot(qty, market)
        if req.type in STOP_TYPES:  # its price is checked against the market on trigger
            self._check_stop(req, market)
        else:
            self._check_percent_price(req.symbol, req.side, price, state)
        if price * qty < rules.min_notional or price * qty > state.max_notional:
            raise e.filter_failure("NOTIONAL")
        return price, qty

    def _check_stop(self, req: OrderRequest, market: Market) -> None:
        """A stop order needs a stopPrice on the price grid that the last price has not
        reached yet (Binance: -2010 "Order would trigger immediately.")."""
        rules = market.rules
        stop = req.stop_price
        if stop is None:
            raise e.mandatory("stopPrice")
        if (stop < rules.min_price or stop > rules.max_price
                or (stop - rules.min_price) % rules.tick_size != 0):
            raise e.filter_failure("PRICE_FILTER")
        if _stop_reached(req.type, req.side, stop, self.market.price(req.symbol)):
            raise e.error(e.WOULD_TRIGGER)

    def _check_percent_price(self, symbol: str, side: str, price: Decimal,
                             state: SymbolState) -> None:
        ref = (self.market.avg_price(symbol) if state.avg_price_mins
               else self.market.price(symbol))
        if side == "BUY":
            low, high = state.bid_multiplier_down, state.bid_multiplier_up
        else:
            low, high = state.ask_multiplier_down, state.ask_multiplier_up
        if price < ref * low or price > ref * high:
            raise e.filter_failure("PERCENT_PRICE_BY_SIDE")

    @staticmethod
    def _check_lot(qty: Decimal, market: Market) -> None:
        r = market.rules
        if qty < r.min_qty or qty > r.max_qty or (qty - r.min_qty) % r.step_size != 0:
            raise e.filter_failure("LOT_SIZE")

    def _market(self, symbol: str) -> Market:
        market = self.markets.get(symbol)
        if market is None:
            raise e.error(e.INVALID_SYMBOL)
        return market

    def _marketable(self, side: str, price: Decimal, symbol: str) -> bool:
        if side == "BUY":
            return price >= self.market.ask(symbol)
        return price <= self.market.bid(symbol)

    def _fill_market(self, order: Order) -> list[Trade]:
        price = (self.market.ask if order.side == "BUY" else self.market.bid)(order.symbol)
        return [self._fill(order, qty, price, is_maker=False)
                for qty in self._slices(order.orig_qty, price, order.symbol)]

    def _fill_on_arrival(self, order: Order) -> list[Trade]:
        fills: list[Trade] = []
        if self._marketable(order.side, order.price, order.symbol):
            taker_price = (self.market.ask if order.side == "BUY" else self.market.bid)(
                order.symbol)
            available = self._available(order)
            if order.time_in_force == "FOK" and available < order.orig_qty:
                return self._expire(order)
            for qty in self._slices(available, taker_price, order.symbol):
                fills.append(self._fill(order, qty, taker_price, is_maker=False))
        if order.is_open and order.time_in_force in ("IOC", "FOK"):
            self._expire(order)
        return fills

    def _trigger(self, order: Order) -> None:
        """Put a stop order whose stopPrice was reached on the book as a LIMIT order:
        reported NEW again, now working; it takes at once if its price crosses."""
        now = self._clock()
        order.working, order.working_time, order.update_time = True, now, now
        self._fire_list(order)
        self._changed(order, "NEW", set())
        self._fill_on_arrival(order)

    def _available(self, order: Order) -> Decimal:
        """Return how much of the order the market's (test-capped) liquidity can fill now."""
        liquidity = self.market.symbols[order.symbol].liquidity
        if liquidity is None:
            return order.remaining
        step = self.markets[order.symbol].rules.step_size
        return min(order.remaining, _floor(liquidity, step))

    def _slices(self, qty: Decimal, price: Decimal, symbol: str) -> list[Decimal]:
        if qty <= 0:
            return []
        if qty * price < SPLIT_NOTIONAL:
            return [qty]
        step = self.markets[symbol].rules.step_size
        parts = [_floor(qty * f, step) for f in SPLIT_PARTS]
        parts = [p for p in parts if p > 0]
        return [*parts, qty - sum(parts, ZERO)]

    def _fill(self, order: Order, qty: Decimal, price: Decimal, is_maker: bool) -> Trade:
        """Book one trade: move balances, update the order, store and announce it."""
        rules = self.markets[order.symbol].rules
        account = self.accounts[order.api_key]
        base, quote = account.balance(rules.base_asset), account.balance(rules.quote_asset)
        quote_qty = price * qty
        now = self._clock()
        if order.side == "BUY":
            commission = (qty * self.commission_rate).quantize(EIGHT, ROUND_UP)
            commission_asset = rules.base_asset
            base.free += qty - commission
            if order.type == "MARKET":
                quote.free -= quote_qty
            else:
                release = min(order.locked, order.price * qty)
                order.locked -= release
                quote.locked -= release
                quote.free += release - quote_qty
        else:
            commission = (quote_qty * self.commission_rate).quantize(EIGHT, ROUND_UP)
            commission_asset = rules.quote_asset
            quote.free += quote_qty - commission
            if order.type == "MARKET":
                base.free -= qty
            else:
                order.locked -= qty
                base.locked -= qty
        order.executed_qty += qty
        order.cum_quote += quote_qty
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        order.update_time = now
        liquidity = self.market.symbols[order.symbol].liquidity
        if liquidity is not None and order.type != "MARKET":
            self.market.symbols[order.symbol].liquidity = liquidity - qty
        trade = Trade(
            trade_id=self._next_trade_id, order_id=order.order_id, api_key=order.api_key,
            symbol=order.symbol, side=order.side, price=price, qty=qty, quote_qty=quote_qty,
            commission=commission, commission_asset=commission_asset, time=now,
            is_maker=is_maker,
        )
        self._next_trade_id += 1
        self._store.save_trade(trade)
        self.trades.append(trade)
        self.market.record_trade(order.symbol, qty, quote_qty)
        if order.status == "FILLED":
            self._release(order)
        self._changed(order, "TRADE", {rules.base_asset, rules.quote_asset}, trade)
        return trade

    def _expire(self, order: Order) -> list[Trade]:
        order.status = "EXPIRED"
        order.update_time = self._clock()
        assets = self._release(order)
        self._changed(order, "EXPIRED", assets)
        return []

    def _release(self, order: Order) -> set[str]:
        """Return whatever the order still has locked to the free balance."""
        rules = self.markets[order.symbol].rules
        asset = rules.quote_asset if order.side == "BUY" else rules.base_asset
        if order.locked:
            bal = self.accounts[order.api_key].balance(asset)
            bal.locked -= order.locked
            bal.free += order.locked
            order.locked = ZERO
        return {asset}

    def cancel_order(self, account: Account, symbol: str, order_id: int | None,
                     client_id: str | None, cancel_id: str | None) -> Order:
        """Cancel an open order (-2011 if it is unknown or no longer open)."""
        self._market(symbol)
        if not self.states[symbol].accepts_cancels:
            raise e.error(e.MARKET_CLOSED)
        order = self._find(account, symbol, order_id, client_id)
        if order is None or not order.is_open:
            raise e.error(e.UNKNOWN_ORDER)
        if order.order_list_id >= 0:  # canceling a leg cancels its whole list (Binance)
            self._cancel_legs(self.list_legs(order.order_list_id),
                              cancel_id or "web_" + secrets.token_hex(11), order)
            return order
        with self._store.transaction():
            order.status = "CANCELED"
            order.update_time = self._clock()
            assets = self._release(order)
            self._changed(order, "CANCELED", assets,
                          cancel_id=cancel_id or "web_" + secrets.token_hex(11))
        self._flush()
        return order

    def get_order(self, account: Account, symbol: str, order_id: int | None,
                  client_id: str | None) -> Order:
        """Return one of the account's orders (-2013 if there is no such order)."""
        self._market(symbol)
        order = self._find(account, symbol, order_id, client_id)
        if order is None or (self.hidden and not self._visible(order.order_id)):
            raise e.error(e.NO_SUCH_ORDER)
        return order

    def hide(self, order_id: int, seconds: float) -> None:
        """Keep an order out of query answers for `seconds` (query_lag)."""
        self.hidden[order_id] = time.monotonic() + seconds

    def _visible(self, order_id: int) -> bool:
        """Tell whether queries may see an order; forget lags that have ended."""
        until = self.hidden.get(order_id)
        if until is None:
            return True
        if time.monotonic() < until:
            return False
        del self.hidden[order_id]
        return True

    def _find(self, account: Account, symbol: str, order_id: int | None,
              client_id: str | None) -> Order | None:
        if order_id is not None:
            order = self.orders.get(order_id)
            if order and order.api_key == account.api_key and order.symbol == symbol:
                return order
            return None
        # The newest order with that client id (ids are reusable once an order is closed).
        for order in reversed(self.orders.values()):  # newest first: ids only grow
            if (order.api_key == account.api_key and order.symbol == symbol
                    and order.client_order_id == client_id):
                return order
        return None

    def open_orders(self, account: Account, symbol: str | None) -> list[Order]:
        """Return the account's open orders, on one symbol or all."""
        if symbol is not None:
            self._market(symbol)
        return [o for o in self.open.values()
                if o.api_key == account.api_key
                and (symbol is None or o.symbol == symbol)
                and (not self.hidden or self._visible(o.order_id))]

    def all_orders(self, account: Account, symbol: str, from_id: int | None,
                   start: int | None, end: int | None, limit: int) -> list[Order]:
        """Return the account's orders on a symbol, as /api/v3/allOrders filters them."""
        self._market(symbol)
        found = [o for o in self.orders.values()
                 if o.api_key == account.api_key and o.symbol == symbol
                 and (from_id is None or o.order_id >= from_id)
                 and (start is None or o.time >= start) and (end is None or o.time <= end)
                 and (not self.hidden or self._visible(o.order_id))]
        found.sort(key=lambda o: o.order_id)
        return found[:limit] if from_id is not None or start is not None else found[-limit:]

    def my_trades(self, account: Account, symbol: str, order_id: int | None,
                  from_id: int | None, start: int | None, end: int | None,
                  limit: int) -> list[Trade]:
        """Return the account's trades on a symbol, as /api/v3/myTrades filters them."""
        self._market(symbol)
        found = [t for t in self.trades
                 if t.api_key == account.api_key and t.symbol == symbol
                 and (order_id is None or t.order_id == order_id)
                 and (from_id is None or t.trade_id >= from_id)
                 and (start is None or t.time >= start) and (end is None or t.time <= end)
                 and (not self.hidden or self._visible(t.order_id))]
        return found[:limit] if from_id is not None or start is not None else found[-limit:]

    # -- matching -------------------------------------------------------------------------

    def match(self, symbol: str) -> None:
        """Fill resting orders on `symbol` that the last price has reached."""
        if not self.states[symbol].accepts_orders:
            return  # a closed market does not trade
        last = self.market.price(symbol)
        resting = sorted(
            (o for o in self.open.values() if o.symbol == symbol),
            key=lambda o: o.order_id,
        )
        triggered = [o for o in resting if not o.working
                     and _stop_reached(o.type, o.side, o.stop_price, last)]
        # A stop order's trigger fires its OCO before a sibling LIMIT_MAKER could fill.
        crossed = [o for o in resting if o.working
                   and ((o.side == "BUY" and last <= o.price)
                        or (o.side == "SELL" and last >= o.price))]
        if not crossed and not triggered:
            return
        with self._store.transaction():
            for order in triggered:
                if order.is_open:  # its OCO sibling may have fired first
                    self._trigger(order)
            for order in crossed:
                if not order.is_open:
                    continue
                self._fire_list(order)
                for qty in self._slices(self._available(order), order.price, symbol):
                    self._fill(order, qty, order.price, is_maker=True)
        self._flush()

    # -- internals ------------------------------------------------------------------------

    def _track_open(self, order: Order) -> None:
        self.open[order.order_id] = order
        key = (order.api_key, order.symbol)
        self._open_count[key] = self._open_count.get(key, 0) + 1

    def _take_order_id(self) -> int:
        order_id = self._next_order_id
        self._next_order_id += 1
        return order_id

    def _changed(self, order: Order, execution: str, assets: set[str],
                 trade: Trade | None = None, cancel_id: str | None = None) -> None:
        """Persist the order and balances (written at commit), queue the user-data events."""
        account = self.accounts[order.api_key]
        if order.is_open:
            if order.order_id not in self.open:
                self._track_open(order)
        elif self.open.pop(order.order_id, None) is not None:
            key = (order.api_key, order.symbol)
            self._open_count[key] -= 1
        self._store.save_order(order)
        self._store.save_balances(account, assets)
        now = self._clock()
        self._pending.append((order.api_key, execution_report(
            order, execution, now, trade, cancel_id)))
        if assets:
            self._pending.append((order.api_key, account_position(account, assets, now)))

    def _flush(self) -> None:
        """Send the events of a committed change to the user-data subscribers."""
        pending, self._pending = self._pending, []
        for api_key, event in pending:
            for sink in self.sinks:
                sink(api_key, event)


def _oco_level(leg: OcoLeg) -> Decimal:
    """The price at which an OCO leg starts to execute: its stop, or a LIMIT_MAKER's price."""
    level = leg.stop_price if leg.type != "LIMIT_MAKER" else leg.price
    if level is None:
        raise e.mandatory("stopPrice" if leg.type != "LIMIT_MAKER" else "price")
    return level


def _stop_reached(order_type: str, side: str, stop: Decimal, last: Decimal) -> bool:
    """Binance's trigger rule: a stop-loss fires when the price moves against its side (a
    SELL as the price falls to the stop), a take-profit when it moves the other way."""
    falling = (order_type == "STOP_LOSS_LIMIT") == (side == "SELL")
    return last <= stop if falling else last >= stop


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_DOWN) * step
