"""Every read model folded in memory: what replay builds before it writes tables in bulk."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.envelope import EventEnvelope
from projections.analytics import EventLogRow, Increments, add_analytics, event_log_row
from projections.orders import OrderRow, TradeRow, apply_order_event, trade_from_fill
from projections.positions import Position, apply_fill


@dataclass
class ReadModelState:
    """Orders, trades, positions, analytics and the event log, folded from envelopes."""

    orders: dict[str, OrderRow] = field(default_factory=dict)
    trades: dict[tuple[str, str], TradeRow] = field(default_factory=dict)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    # (account_id, the position after the fill), one per fill in notification order
    position_history: list[tuple[str, Position]] = field(default_factory=list)
    analytics: Increments = field(default_factory=Increments)
    event_log: list[EventLogRow] = field(default_factory=list)
    last_notification_id: int = 0
    count: int = 0

    def apply(self, envelope: EventEnvelope) -> None:
        """Fold one envelope; envelopes must come in notification-id order."""
        if envelope.notification_id <= self.last_notification_id:
            return
        self.last_notification_id = envelope.notification_id
        self.count += 1
        order: OrderRow | None = None
        if envelope.aggregate_type == "Order":
            before = self.orders.get(envelope.aggregate_id)
            order = apply_order_event(before, envelope, in_place=True)
            if order is not None:
                self.orders[order.order_id] = order
            if envelope.event_type == "OrderFilled" and order is not None:
                trade = trade_from_fill(order, envelope)
                key = (trade.order_id, trade.trade_id)
                if key not in self.trades:
                    self.trades[key] = trade
                    pkey = (trade.account_id, trade.symbol)
                    pos = self.positions.get(pkey) or Position(symbol=trade.symbol)
                    pos = self.positions[pkey] = apply_fill(pos, trade.to_fill())
                    self.position_history.append((trade.account_id, pos))
        add_analytics(self.analytics, envelope, order)
        self.event_log.append(event_log_row(envelope, order.symbol if order else None))
