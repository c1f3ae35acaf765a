"""Live updates per user over SSE: ORDER_UPDATE, TRADE and POSITION, resumable by id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse

from adapters.api.deps import ApiContext, Ctx, CurrentUser, StreamUser
from adapters.api.errors import ApiError
from adapters.api.hub import Reset
from adapters.api.schemas import StreamToken
from adapters.api.tokens import STREAM_TOKEN_SECONDS
from adapters.platform.metrics import SSE_CLIENTS
from domain.errors import ValidationFailed

router = APIRouter(tags=["stream"])
PING_SECONDS = 15
SEND_TIMEOUT_SECONDS = 30  # a client that reads nothing for this long is dropped
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
TOTAL = "total"


class StreamSlot:
    """One open stream counted against its owner's cap and the process's; released once."""

    def __init__(self, ctx: ApiContext, owner: str, per_owner: int) -> None:
        counts = ctx.streams
        if counts.get(TOTAL, 0) >= ctx.runtime.settings.streams_total:
            raise ApiError(429, "too_many_streams", "the server has too many open streams; "
                           "try again later", headers={"Retry-After": "5"})
        if counts.get(owner, 0) >= per_owner:
            raise ApiError(429, "too_many_streams",
                           f"at most {per_owner} open streams are allowed; close one first",
                           headers={"Retry-After": "5"}, limit=per_owner)
        counts[owner] = counts.get(owner, 0) + 1
        counts[TOTAL] = counts.get(TOTAL, 0) + 1
        self._counts, self._owner, self._open = counts, owner, True

    def release(self) -> None:
        if not self._open:
            return
        self._open = False
        for key in (self._owner, TOTAL):
            left = self._counts.get(key, 1) - 1
            if left > 0:
                self._counts[key] = left
            else:
                self._counts.pop(key, None)


def stream_response(events: AsyncIterator[dict[str, Any]], slot: StreamSlot
                    ) -> EventSourceResponse:
    """An SSE response that holds `slot` until the stream ends, with a send timeout."""

    async def guarded() -> AsyncIterator[dict[str, Any]]:
        try:
            async for event in events:
                yield event
        finally:
            slot.release()

    # No `background=`: sse_starlette runs it beside the stream and ends the stream when it
    # returns. The generator's finally runs on every ending (close, error, cancel).
    return EventSourceResponse(guarded(), ping=PING_SECONDS, headers=SSE_HEADERS,
                               send_timeout=SEND_TIMEOUT_SECONDS)


def parse_last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise ValidationFailed("Last-Event-ID must be a non-negative integer",
                               field="Last-Event-ID")
    return int(text)


@router.post("/api/stream-token", response_model=StreamToken)
def stream_token(user: CurrentUser, ctx: Ctx) -> StreamToken:
    """A one-minute, single-use token for `GET /api/stream?token=...` (browsers'
    EventSource cannot send headers); it opens one stream and nothing else."""
    return StreamToken(token=ctx.tokens.stream_token(user.account_id, user.email,
                                                     user.session_id),
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
    slot = StreamSlot(ctx, "user:" + account, ctx.runtime.settings.streams_per_user)

    async def events() -> AsyncIterator[dict[str, Any]]:
        with SSE_CLIENTS.labels(stream="user").track_inprogress():
            async for event in _changes(hub, account, last):
                yield event

    return stream_response(events(), slot)


async def _changes(hub: Any, account: str, last: int | None) -> AsyncIterator[dict[str, Any]]:
    """The SSE events of one account's change feed."""
    async for item in hub.changes(account, last):
        if isinstance(item, Reset):
            # More was missed than a stream replays: reload, then follow from here.
            yield {"id": str(int(item)), "event": "RESET",
                   "data": json.dumps({"seq": int(item)})}
            continue
        if isinstance(item, int):
            # Tells the client the stream is live; carries no id, so resuming is unaffected.
            yield {"event": "READY", "data": json.dumps({"seq": item})}
            continue
        yield {"id": str(item.seq), "event": item.kind,
               "data": json.dumps(item.data, separators=(",", ":"))}
