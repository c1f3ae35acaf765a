"""A small synchronous client for the server-side callbacks (analytics, audit).

The browser's access token travels in a dcc.Store and is passed per call; the dashboard
server keeps no session of its own.
"""

from __future__ import annotations

from typing import Any

import httpx

TIMEOUT_SECONDS = 10.0


class ApiClientError(Exception):
    """The API answered with an error (or could not be reached)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ApiClient:
    """GET JSON from the TradeLedger API with a bearer token."""

    def __init__(self, base_url: str, token: str | None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._transport = transport

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """Return the decoded JSON body, or raise ApiClientError with the API's message."""
        try:
            with httpx.Client(base_url=self._base_url, headers=self._headers,
                              timeout=TIMEOUT_SECONDS, transport=self._transport) as client:
                response = client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ApiClientError(0, "network", f"cannot reach the API ({type(exc).__name__})"
                                 ) from None
        if response.is_error:
            try:
                error = response.json().get("error", {})
            except ValueError:
                error = {}
            raise ApiClientError(response.status_code, str(error.get("code", "error")),
                                 str(error.get("message") or response.reason_phrase))
        return response.json()


def token_of(auth: Any) -> str | None:
    """The access token held in the `auth` store, if any."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return auth["token"]
    return None
