"""Live updates per user over SSE: ORDER_UPDATE, TRADE and POSITION, resumable by id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse

from adapters.api.deps import Ctx, CurrentUser, StreamUser
from adapters.api.errors import ApiError
from adapters.api.schemas import StreamToken
from adapters.api.tokens import STREAM_TOKEN_SECONDS
from adapters.platform.metrics import SSE_CLIENTS
from domain.errors import ValidationFailed

router = APIRouter(tags=["stream"])
PING_SECONDS = 15
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def parse_last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 18:
        raise ValidationFailed("Last-Event-ID must be a non-negative integer",
                               field="Last-Event-ID")
    return int(text)


@router.post("/api/stream-token", response_model=StreamToken)
def stream_token(user: CurrentUser, ctx: Ctx) -> StreamToken:
    """A one-minute token for `GET /api/stream?token=...` (browsers' EventSource cannot
    send headers); it opens streams and nothing else."""
    return StreamToken(token=ctx.tokens.stream_token(user.account_id, user.email),
                       expiresIn=STREAM_TOKEN_SECONDS)


@router.get("/api/stream", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "ORDER_UPDATE, TRADE, POSITION events"}})
async def stream(
    user: StreamUser,
    ctx: Ctx,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID",
                                                       max_length=32)] = None,
    lastEventId: Annotated[str | None, Query(max_length=32)] = None,
) -> EventSourceResponse:
    """This user's changes as they happen; with Last-Event-ID, first what was missed."""
    hub = ctx.hub
    if hub is None:
        raise ApiError(503, "unavailable", "live updates are not available yet")
    last = parse_last_event_id(last_event_id_header or lastEventId)
    account = str(user.account_id)

    async def events() -> AsyncIterator[dict[str, Any]]:
        with SSE_CLIENTS.labels(stream="user").track_inprogress():
            async for event in _changes(hub, account, last):
                yield event

    return EventSourceResponse(events(), ping=PING_SECONDS, headers=SSE_HEADERS)


async def _changes(hub: Any, account: str, last: int | None) -> AsyncIterator[dict[str, Any]]:
    """The SSE events of one account's change feed."""
    async for item in hub.changes(account, last):
        if isinstance(item, int):
            # Tells the client the stream is live; carries no id, so resuming is unaffected.
            yield {"event": "READY", "data": json.dumps({"seq": item})}
            continue
        yield {"id": str(item.seq), "event": item.kind,
               "data": json.dumps(item.data, separators=(",", ":"))}
