"""The wallet and PnL summary of the signed-in account (projections/summary.py has the maths)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import anyio
from fastapi import APIRouter

from adapters.api.deps import ApiContext, Ctx, CurrentUser
from adapters.api.routes.market import market_cache
from adapters.api.serializers import dec
from projections.positions import Position
from projections.summary import Amounts, summarize

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/account", tags=["account"])
QUOTE_ASSET = "USDT"


def _amounts(a: Amounts) -> dict[str, str | None]:
    return {"today": dec(a.today), "total": dec(a.total)}


async def day_open_prices(ctx: ApiContext, start: dict[str, Position]) -> dict[str, Decimal]:
    """Today's opening price (the 1d candle's open) of each symbol held at 00:00 UTC."""
    market = ctx.market
    opens: dict[str, Decimal] = {}
    if market is None:
        return opens
    for symbol in sorted(s for s, p in start.items() if p.quantity != 0):
        def fetch(name: str = symbol) -> Awaitable[list[dict[str, Any]]]:
            return market.klines(name, "1d", 1)

        try:
            candles = await market_cache(ctx).get(("klines", symbol, "1d", 1), fetch)
            opens[symbol] = Decimal(str(candles[-1]["open"]))
        except (Exception, InvalidOperation) as exc:  # unknown today's open: today's figure is null
            log.debug("day open of %s unavailable: %s", symbol, exc)
    return opens


@router.get("/summary")
async def account_summary(user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    """Equity in USDT, realized and unrealized PnL (today, total), fees in USDT, win rate."""
    models = ctx.require_read_models()
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def read() -> tuple[list[Position], dict[str, Position], dict[str, Decimal], tuple[int, int]]:
        return (models.list_positions_raw(user.account_id),
                models.positions_before(user.account_id, midnight),
                models.balance_totals(user.account_id), models.closing_fills(user.account_id))

    positions, start, balances, (wins, losses) = await anyio.to_thread.run_sync(read)
    summary = summarize(positions, start, balances, ctx.runtime.symbols.reference_price,
                        await day_open_prices(ctx, start), wins, losses, QUOTE_ASSET)
    return {
        "quoteAsset": summary.quote_asset,
        "equity": dec(summary.equity),
        "unpricedAssets": list(summary.unpriced_assets),
        "realizedPnl": _amounts(summary.realized),
        "unrealizedPnl": _amounts(summary.unrealized),
        "fees": _amounts(summary.fees),
        "netPnl": _amounts(summary.net),
        "winRate": dec(summary.win_rate.quantize(Decimal("0.0001"))
                       if summary.win_rate is not None else None),
        "wins": summary.wins,
        "losses": summary.losses,
        "dayStart": midnight.isoformat(),
        "asOf": now.isoformat(),
    }
