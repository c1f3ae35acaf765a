"""The dashboard's own Dash components (their JS beside this file, served by Dash from the
`dashboard` package: see `_js_dist` in dashboard/__init__.py)."""

from __future__ import annotations

from typing import Any

from dash.development.base_component import Component, _explicitize_args

STREAM_STATUSES = ("connecting", "live", "down")


class EventStream(Component):
    """A Server-Sent Events source as a Dash component (event_stream.js).

    In: `url` (None closes it), `stream` (names the logical stream; a new `url` with the same
    `stream` resumes from the last event id, sent as the `resumeParam` query parameter),
    `events` (the named event types to receive), `batchMs`, `maxRetryMs`, `keep`.
    Out: `message` ({stream, n, events: [{type, data, id, seq}]}, at most every `batchMs`;
    with `keep` > 0 it repeats the last `keep` events, since Dash runs a callback once for
    several changes made before it ran: a consumer that must see every event skips the
    `seq`s it has seen, which never restart),
    `status` (one of STREAM_STATUSES), `opened` ({stream, n}, n > 1 on a reopen, when events
    may have been missed) and `expired` (a count: the source closed for good and wants a
    new URL, for example a fresh stream token)."""

    _children_props: list[str] = []
    _base_nodes = ["children"]
    _namespace = "tradeledger"
    _type = "EventStream"
    _PROPS = ["id", "url", "stream", "events", "batchMs", "maxRetryMs", "resumeParam", "keep",
              "message", "status", "opened", "expired"]

    @_explicitize_args
    def __init__(self, id: str | None = None, url: str | None = None,
                 stream: str | None = None, events: list[str] | None = None,
                 batchMs: int | None = None, maxRetryMs: int | None = None,
                 resumeParam: str | None = None, keep: int | None = None,
                 message: Any = None,
                 status: str | None = None, opened: Any = None, expired: int | None = None,
                 **kwargs: Any) -> None:
        self._prop_names = list(self._PROPS)
        self._valid_wildcard_attributes: list[str] = []
        self.available_properties = list(self._PROPS)
        self.available_wildcard_properties: list[str] = []
        explicit = kwargs.pop("_explicit_args")
        values = {**locals(), **kwargs}
        super().__init__(**{k: values[k] for k in explicit})
