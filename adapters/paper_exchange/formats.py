"""Binance JSON shapes for orders, trades, accounts, exchangeInfo and user-data events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from adapters.paper_exchange.filters import SymbolState, filters_json
from adapters.paper_exchange.markets import Market
from adapters.paper_exchange.models import Account, Order, Trade, fmt

# Binance's production rate without BNB discount; the Testnet charges 0 (our default).
BINANCE_COMMISSION_RATE = Decimal("0.001")


def exchange_info(markets: dict[str, Market], states: dict[str, SymbolState],
                  rate_limits: list[dict[str, Any]], now: int) -> dict[str, Any]:
    """Build the /api/v3/exchangeInfo body for some markets."""
    return {
        "timezone": "UTC",
        "serverTime": now,
        "rateLimits": rate_limits,
        "exchangeFilters": [],
        "symbols": [_symbol(m, states[s]) for s, m in markets.items()],
    }


def _symbol(market: Market, state: SymbolState) -> dict[str, Any]:
    r = market.rules
    return {
        "symbol": r.symbol, "status": state.status,
        "baseAsset": r.base_asset, "baseAssetPrecision": 8,
        "quoteAsset": r.quote_asset, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
                       "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": False, "ocoAllowed": True, "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
        "cancelReplaceAllowed": False, "amendAllowed": False,
        "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "filters": filters_json(market, state),
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER",
                                            "EXPIRE_BOTH"],
    }


def order_ack(order: Order) -> dict[str, Any]:
    """Build the ACK response to POST /api/v3/order."""
    return {"symbol": order.symbol, "orderId": order.order_id,
            "orderListId": order.order_list_id,
            "clientOrderId": order.client_order_id, "transactTime": order.time}


def order_result(order: Order) -> dict[str, Any]:
    """Build the RESULT response to POST /api/v3/order."""
    return {
        **order_ack(order),
        "price": fmt(order.price), "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty),
        "origQuoteOrderQty": fmt(order.orig_quote_order_qty),
        "cummulativeQuoteQty": fmt(order.cum_quote), "status": order.status,
        "timeInForce": order.time_in_force, "type": order.type, "side": order.side,
        "workingTime": working_time(order), "selfTradePreventionMode": "EXPIRE_MAKER",
        **stop_fields(order),
    }


def working_time(order: Order) -> int:
    """When the order went on the book: -1 for a stop order that has not triggered."""
    return order.working_time if order.stop_price else order.time


def stop_fields(order: Order) -> dict[str, Any]:
    """`stopPrice`, which Binance includes in an order's answers only for stop orders."""
    return {"stopPrice": fmt(order.stop_price)} if order.stop_price else {}


def order_full(order: Order, fills: list[Trade]) -> dict[str, Any]:
    """Build the FULL response to POST /api/v3/order, with its fills."""
    return {
        **order_result(order),
        "fills": [
            {"price": fmt(t.price), "qty": fmt(t.qty), "commission": fmt(t.commission),
             "commissionAsset": t.commission_asset, "tradeId": t.trade_id}
            for t in fills
        ],
    }


def order_status(order: Order) -> dict[str, Any]:
    """Build the GET /api/v3/order body (also used by openOrders and allOrders)."""
    return {
        "symbol": order.symbol, "orderId": order.order_id, "orderListId": order.order_list_id,
        "clientOrderId": order.client_order_id, "price": fmt(order.price),
        "origQty": fmt(order.orig_qty), "executedQty": fmt(order.executed_qty),
        "cummulativeQuoteQty": fmt(order.cum_quote), "status": order.status,
        "timeInForce": order.time_in_force, "type": order.type, "side": order.side,
        "stopPrice": fmt(order.stop_price), "icebergQty": fmt(Decimal(0)), "time": order.time,
        "updateTime": order.update_time, "isWorking": order.working,
        "workingTime": working_time(order),
        "origQuoteOrderQty": fmt(order.orig_quote_order_qty),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def order_canceled(order: Order, orig_client_order_id: str, cancel_id: str,
                   now: int) -> dict[str, Any]:
    """Build the DELETE /api/v3/order body."""
    return {
        "symbol": order.symbol, "origClientOrderId": orig_client_order_id,
        "orderId": order.order_id, "orderListId": order.order_list_id,
        "clientOrderId": cancel_id,
        "transactTime": now, "price": fmt(order.price), "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty), "origQuoteOrderQty":
            fmt(order.orig_quote_order_qty),
        "cummulativeQuoteQty": fmt(order.cum_quote), "status": order.status,
        "timeInForce": order.time_in_force, "type": order.type, "side": order.side,
        **stop_fields(order), "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def my_trade(trade: Trade, order_list_id: int = -1) -> dict[str, Any]:
    """Build one /api/v3/myTrades entry."""
    return {
        "symbol": trade.symbol, "id": trade.trade_id, "orderId": trade.order_id,
        "orderListId": order_list_id, "price": fmt(trade.price), "qty": fmt(trade.qty),
        "quoteQty": fmt(trade.quote_qty), "commission": fmt(trade.commission),
        "commissionAsset": trade.commission_asset, "time": trade.time,
        "isBuyer": trade.side == "BUY", "isMaker": trade.is_maker, "isBestMatch": True,
    }


def account_info(account: Account, now: int, omit_zero: bool,
                 commission_rate: Decimal) -> dict[str, Any]:
    """Build the /api/v3/account body."""
    balances = [
        {"asset": a, "free": fmt(b.free), "locked": fmt(b.locked)}
        for a, b in sorted(account.balances.items())
        if not (omit_zero and b.free == 0 and b.locked == 0)
    ]
    rate = fmt(commission_rate)
    bps = int(commission_rate * 10_000)
    return {
        "makerCommission": bps, "takerCommission": bps, "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {"maker": rate, "taker": rate, "buyer": fmt(Decimal(0)),
                            "seller": fmt(Decimal(0))},
        "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
        "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now,
        "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"],
        "uid": int(account.api_key[:8], 16),
    }


def execution_report(order: Order, execution: str, now: int, trade: Trade | None = None,
                     cancel_id: str | None = None) -> dict[str, Any]:
    """Build an `executionReport` user-data event (for a cancel, `c` is the cancel's id)."""
    zero = fmt(Decimal(0))
    return {
        "e": "executionReport", "E": now, "s": order.symbol,
        "c": cancel_id or order.client_order_id,
        "S": order.side, "o": order.type, "f": order.time_in_force, "q": fmt(order.orig_qty),
        "p": fmt(order.price), "P": fmt(order.stop_price), "F": zero,
        "g": order.order_list_id,
        "C": order.client_order_id if cancel_id else "", "x": execution,
        "X": order.status, "r": "NONE", "i": order.order_id,
        "l": fmt(trade.qty) if trade else zero, "z": fmt(order.executed_qty),
        "L": fmt(trade.price) if trade else zero,
        "n": fmt(trade.commission) if trade else "0",
        "N": trade.commission_asset if trade else None,
        "T": trade.time if trade else now, "t": trade.trade_id if trade else -1, "I": 0,
        "w": order.is_open and order.working, "m": trade.is_maker if trade else False, "M": False,
        "O": order.time, "Z": fmt(order.cum_quote),
        "Y": fmt(trade.quote_qty) if trade else zero,
        "Q": fmt(order.orig_quote_order_qty), "W": working_time(order), "V": "EXPIRE_MAKER",
    }


def order_list(legs: list[Order], now: int) -> dict[str, Any]:
    """Build the body Binance answers about an OCO order list (GET /api/v3/orderList and
    openOrderList entries): EXECUTING while its contingency is live, ALL_DONE once one leg
    executed, expired the other, or both were canceled."""
    first = legs[0]
    done = any(not o.is_open or o.executed_qty or (o.stop_price and o.working) for o in legs)
    return {
        "orderListId": first.order_list_id, "contingencyType": "OCO",
        "listStatusType": "ALL_DONE" if done else "EXEC_STARTED",
        "listOrderStatus": "ALL_DONE" if done else "EXECUTING",
        "listClientOrderId": first.list_client_order_id, "transactionTime": now,
        "symbol": first.symbol,
        "orders": [{"symbol": o.symbol, "orderId": o.order_id,
                    "clientOrderId": o.client_order_id} for o in legs],
    }


def list_status(legs: list[Order], now: int) -> dict[str, Any]:
    """Build a `listStatus` user-data event for an OCO order list."""
    body = order_list(legs, now)
    return {
        "e": "listStatus", "E": now, "s": body["symbol"], "g": body["orderListId"],
        "c": "OCO", "l": body["listStatusType"], "L": body["listOrderStatus"], "r": "NONE",
        "C": body["listClientOrderId"], "T": now,
        "O": [{"s": o["symbol"], "i": o["orderId"], "c": o["clientOrderId"]}
              for o in body["orders"]],
    }


def account_position(account: Account, assets: set[str], now: int) -> dict[str, Any]:
    """Build an `outboundAccountPosition` user-data event for the assets that changed."""
    return {
        "e": "outboundAccountPosition", "E": now, "u": now,
        "B": [{"a": a, "f": fmt(account.balance(a).free), "l": fmt(account.balance(a).locked)}
              for a in sorted(assets)],
    }
