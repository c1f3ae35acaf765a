"""A small synchronous client for the server-side callbacks (analytics, audit).

The browser's access token travels in a dcc.Store and is passed per call; the dashboard
server keeps no session of its own.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import httpx

TIMEOUT_SECONDS = 10.0


# A symbol as it may go into an API path or query (BTCUSDT): the one check the views share.
SYMBOL_RE = re.compile(r"[A-Z0-9]{2,20}")


class ApiClientError(Exception):
    """The API answered with an error (or could not be reached)."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        # The API's error details: which field ("field", or "fields" for several) and more.
        self.details: dict[str, Any] = details or {}


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
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any:
        """POST JSON; the decoded body (None when empty), or ApiClientError."""
        return self.request("POST", path, body=body, headers=headers)

    def put(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """PUT JSON; the decoded body (None when empty), or ApiClientError."""
        return self.request("PUT", path, body=body)

    def delete(self, path: str) -> Any:
        """DELETE; the decoded body (None when empty), or ApiClientError."""
        return self.request("DELETE", path)

    def get_page(self, path: str, params: dict[str, Any] | None = None
                 ) -> tuple[Any, str | None]:
        """GET one page of a list: its rows and the cursor of the next page (None: last)."""
        response = self._send("GET", path, params=params)
        return (response.json() if response.content else [],
                response.headers.get("X-Next-Cursor") or None)

    def get_text(self, path: str, params: dict[str, Any] | None = None) -> str:
        """GET a text body (a CSV export), or raise ApiClientError with the API's message."""
        return self._send("GET", path, params=params, headers={"Accept": "text/csv"}).text

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> Any:
        """Send one request; the decoded JSON body (None when empty), or ApiClientError."""
        response = self._send(method, path, params=params, body=body, headers=headers)
        return response.json() if response.content else None

    def _send(self, method: str, path: str, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = _shared_client(self._base_url, self._transport).request(
                method, path, params=params, json=body,
                headers={**self._headers, **(headers or {})})
        except httpx.HTTPError as exc:
            raise ApiClientError(0, "network", f"cannot reach the API ({type(exc).__name__})"
                                 ) from None
        if response.is_error:
            try:
                data = response.json()
                error = data.get("error", {}) if isinstance(data, dict) else {}
            except ValueError:
                error = {}
            if not isinstance(error, dict):
                error = {}
            details = error.get("details")
            raise ApiClientError(response.status_code, str(error.get("code", "error")),
                                 str(error.get("message") or response.reason_phrase),
                                 details if isinstance(details, dict) else None)
        return response


# One pooled client per API URL (and test transport) for the whole dashboard process: a new
# httpx.Client per call built an SSL context and a TCP connection each time, which cost
# more than the call itself on the order path. The token goes per request, never on it.
_clients: dict[tuple[str, httpx.BaseTransport | None], httpx.Client] = {}
_clients_lock = threading.Lock()


def _shared_client(base_url: str, transport: httpx.BaseTransport | None) -> httpx.Client:
    key = (base_url, transport)  # the transport itself: an id could be reused
    with _clients_lock:
        client = _clients.get(key)
        if client is None or client.is_closed:
            client = _clients[key] = httpx.Client(base_url=base_url, timeout=TIMEOUT_SECONDS,
                                                  transport=transport)
        return client


def token_of(auth: Any) -> str | None:
    """The access token held in the `auth` store, if any."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return auth["token"]
    return None


def rows_of(data: Any, key: str) -> list[Any]:
    """A list the API sent bare or wrapped (`{key: [...]}` or `{items: [...]}`); [] else."""
    if isinstance(data, dict):
        data = data.get(key) or data.get("items") or []
    return list(data) if isinstance(data, list) else []
