"""The query side: lists from the read models (eventually consistent, milliseconds behind)."""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from uuid import UUID

import anyio
from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from adapters.api.deps import ApiContext, Ctx, CurrentUser
from adapters.api.errors import ApiError
from adapters.api.serializers import dec, public_payload
from adapters.postgres.readmodels import HistoryFilter
from domain.errors import ValidationFailed
from domain.values import OrderStatus, Side, parse_enum
from projections.orders import TradeRow, iso

router = APIRouter(tags=["queries"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
SymbolFilter = Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9]+$")]


def _utc(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def mark_price(ctx: ApiContext, symbol: str) -> Decimal | None:
    """The latest price market data has seen for `symbol`, if any."""
    return ctx.runtime.symbols.reference_price(symbol)


def with_mark(position: dict[str, Any], mark: Decimal | None) -> dict[str, Any]:
    """Add markPrice and unrealizedPnl = (mark - entry) * quantity (None without a mark)."""
    out = dict(position)
    out["markPrice"] = dec(mark)
    try:
        qty = Decimal(str(position.get("quantity") or "0"))
        entry = Decimal(str(position.get("averageEntryPrice") or "0"))
    except InvalidOperation:
        qty, entry = Decimal(0), Decimal(0)
    out["unrealizedPnl"] = None if mark is None else dec((mark - entry) * qty)
    return out


NEXT_CURSOR_HEADER = "X-Next-Cursor"
FromBound = Annotated[str | None, Query(alias="from", max_length=40, description=(
    "first day (ISO date) or moment (ISO time) to include; none: from the start"))]
ToBound = Annotated[str | None, Query(max_length=40, description=(
    "last day to include (ISO date), or the moment to stop before (ISO time)"))]
SideFilter = Annotated[str | None, Query(max_length=8)]
Cursor = Annotated[str | None, Query(max_length=200, description=(
    f"the {NEXT_CURSOR_HEADER} header of the previous page (same filters)"))]


def encode_cursor(kind: str, key: tuple[datetime, Any] | None) -> str | None:
    """An opaque, URL-safe page cursor: the sort key of the last row served."""
    if key is None:
        return None
    text = f"{kind}|{key[0].isoformat()}|{key[1]}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> tuple[datetime, str] | None:
    """Read a cursor of `kind` back; a damaged or foreign one is a 422, never a 500."""
    if cursor is None or not cursor.strip():
        return None
    try:
        raw = cursor.strip()
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        got, moment, last = text.split("|")
        when = datetime.fromisoformat(moment)
        if got != kind or when.tzinfo is None or not last:
            raise ValueError(kind)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationFailed(f"cursor is not a cursor of this list; pass the "
                               f"{NEXT_CURSOR_HEADER} header of the previous page",
                               field="cursor") from None
    return when, last


def history_filter(symbol: str | None, side: str | None, from_: str | None, to: str | None,
                   statuses: tuple[str, ...] | None = None) -> HistoryFilter:
    """Check the filters the order and trade lists share."""
    start, end = parse_bound(from_, "from", end=False), parse_bound(to, "to", end=True)
    if start is not None and end is not None and start >= end:
        raise ValidationFailed("from must be before to", field="from")
    return HistoryFilter(symbol=symbol, statuses=statuses, start=start, end=end,
                         side=parse_enum(Side, side, "side").value if side else None)


def _one_paging(offset: int, cursor: str | None) -> None:
    if cursor and offset:
        raise ValidationFailed("use either cursor or offset, not both", field="offset")


def _next_page(response: Response, kind: str, key: tuple[datetime, Any] | None) -> None:
    next_cursor = encode_cursor(kind, key)
    if next_cursor:
        response.headers[NEXT_CURSOR_HEADER] = next_cursor


@router.get("/api/trading/orders")
def list_orders(user: CurrentUser, ctx: Ctx, response: Response,
                status: Annotated[str | None, Query(max_length=200, description=(
                    "one status or several, comma-separated"))] = None,
                symbol: SymbolFilter = None, side: SideFilter = None,
                from_: FromBound = None, to: ToBound = None, limit: Limit = 50,
                offset: Offset = 0, cursor: Cursor = None) -> list[dict[str, Any]]:
    """The account's orders, newest first; filter by status, symbol, side and creation time.

    More than `limit`: the response's X-Next-Cursor header goes in `cursor` for the next page.
    """
    statuses = None
    if status is not None and status.strip():
        statuses = tuple(dict.fromkeys(parse_enum(OrderStatus, s.strip(), "status").value
                                       for s in status.split(",") if s.strip()))
    after = decode_cursor("o", cursor)
    where = history_filter(symbol, side, from_, to, statuses)
    _one_paging(offset, cursor)
    orders, key = ctx.require_read_models().order_page(
        user.account_id, where, limit, offset, after=after and (after[0], _uuid(after[1])))
    _next_page(response, "o", key)
    return orders


@router.get("/api/trading/trades")
def list_trades(user: CurrentUser, ctx: Ctx, response: Response, symbol: SymbolFilter = None,
                side: SideFilter = None, from_: FromBound = None, to: ToBound = None,
                limit: Limit = 100, offset: Offset = 0,
                cursor: Cursor = None) -> list[dict[str, Any]]:
    """The account's fills, newest first; filter by symbol, side and time.

    More than `limit`: the response's X-Next-Cursor header goes in `cursor` for the next page.
    """
    after = decode_cursor("t", cursor)
    where = history_filter(symbol, side, from_, to)
    _one_paging(offset, cursor)
    trades, key = ctx.require_read_models().trade_page(
        user.account_id, where, limit, offset, after=after and (after[0], _int(after[1])))
    _next_page(response, "t", key)
    return trades


def _uuid(text: str) -> str:
    try:
        return str(UUID(text))
    except ValueError:
        raise ValidationFailed("cursor is damaged", field="cursor") from None


def _int(text: str) -> int:
    if not text.isdigit():
        raise ValidationFailed("cursor is damaged", field="cursor")
    return int(text)


CSV_COLUMNS = ("time", "tradeId", "orderId", "symbol", "side", "price", "quantity",
               "quoteQuantity", "fee", "feeAsset", "isMaker")


def parse_bound(value: str | None, name: str, end: bool) -> datetime | None:
    """Read a from/to bound: an ISO date (a whole UTC day) or an ISO time (UTC if no zone).

    A date as `to` includes that whole day; a time as `to` is exclusive.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"{name} must be an ISO 8601 date (2026-12-05) or time (2026-12-05T10:00:00Z)",
            field=name) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def csv_lines(trades: Iterator[TradeRow]) -> Iterator[str]:
    """The CSV text, a header then one line per trade (ISO times, exact decimals)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    for t in trades:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow((iso(t.time), t.trade_id, t.order_id, t.symbol, t.side, dec(t.price),
                         dec(t.quantity), dec(t.quote_quantity), dec(t.commission),
                         t.commission_asset, "true" if t.is_maker else "false"))
        yield buffer.getvalue()


@router.get("/api/trading/trades.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
def export_trades(user: CurrentUser, ctx: Ctx, from_: FromBound = None,
                  to: ToBound = None) -> StreamingResponse:
    """Every trade of the account in the range, with its fee and fee asset, as CSV."""
    start, end = parse_bound(from_, "from", end=False), parse_bound(to, "to", end=True)
    if start is not None and end is not None and start >= end:
        raise ValidationFailed("from must be before to", field="from")
    trades = ctx.require_read_models().trades_between(user.account_id, start, end)
    name = f"trades-{(from_ or 'start')[:10]}-{(to or 'now')[:10]}.csv"
    return StreamingResponse(csv_lines(trades), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/api/trading/positions")
def list_positions(user: CurrentUser, ctx: Ctx) -> list[dict[str, Any]]:
    """Positions per symbol with the mark price and unrealized PnL."""
    positions = ctx.require_read_models().list_positions(user.account_id)
    return [with_mark(p, mark_price(ctx, str(p.get("symbol")))) for p in positions]


@router.get("/api/trading/positions/history")
def position_history(user: CurrentUser, ctx: Ctx, symbol: SymbolFilter = None,
                     limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> list[dict[str, Any]]:
    """The position of each symbol after each fill, oldest first: realized PnL over time."""
    history: list[dict[str, Any]] = ctx.require_read_models().position_history(
        user.account_id, symbol=symbol, limit=limit)
    return history


@router.get("/api/trading/balances")
def list_balances(user: CurrentUser, ctx: Ctx) -> list[dict[str, Any]]:
    """Balances per asset as the exchange last reported them."""
    balances: list[dict[str, Any]] = ctx.require_read_models().list_balances(user.account_id)
    return balances


@router.get("/api/analytics")
def analytics(user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    """Orders and fills per minute, fill-latency histogram, rejection reasons."""
    result: dict[str, Any] = ctx.require_read_models().analytics(user.account_id)
    return result


@router.get("/api/audit/events")
def browse_events(
    user: CurrentUser, ctx: Ctx,
    symbol: SymbolFilter = None,
    eventType: Annotated[str | None, Query(max_length=64,
                                           pattern=r"^[A-Za-z]+$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    aggregateId: UUID | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """The event browser: this account's events in order, filtered."""
    events: list[dict[str, Any]] = ctx.require_read_models().browse_events(
        user.account_id, symbol=symbol, event_type=eventType, since=_utc(since),
        until=_utc(until), aggregate_id=aggregateId, limit=limit, offset=offset)
    for event in events:
        if isinstance(event.get("payload"), dict):
            event["payload"] = public_payload(event["payload"])
    return events


@router.get("/api/audit/verify")
async def verify_chain(user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    """Check this account's events against the audit hash chain (cached for 30 s).

    The full chain over every account is checked in the background and by the operator
    command `tradeledger audit verify`; this view tells nothing about other accounts.
    """
    if ctx.user_audit is None:
        raise ApiError(503, "unavailable", "the API is still starting")
    return await anyio.to_thread.run_sync(ctx.user_audit.verify, user.account_id)
