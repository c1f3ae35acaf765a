"""A lighter `requests.Session` for python-binance talking to the bundled paper exchange.

python-binance calls `session.get/post/delete(url, headers=..., data=..., params=...,
timeout=...)`. Before any byte goes out, `requests.Session.request` merges the session's
cookies, hooks, auth, proxies and environment into a new request, parses and re-quotes the
URL, and afterwards runs hooks, stores cookies and looks for redirects. For the paper
exchange on loopback none of that applies (no cookies, auth, proxy or redirect; the URLs are
python-binance's own, already encoded), and on the 2-core bench machine it was 0.3 of the
~1 ms of CPU a call took (docs/benchmarks.md). This session prepares such a request
directly and hands it to the same connection adapter (urllib3 with keep-alive), so the
bytes on the wire, the Response and requests' exceptions (which the gateway maps to
"maybe sent" or not) are those of a plain Session. Anything else -- other arguments, cookies
or proxies set, trust_env on -- takes requests' full path.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.models import RequestEncodingMixin
from requests.structures import CaseInsensitiveDict


class LoopbackSession(requests.Session):
    """A Session whose plain calls skip requests' per-call merging (see the module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # no proxy or .netrc lookups for a server on this machine

    def request(self, method: str, url: Any, params: Any = None, data: Any = None,  # type: ignore[override]
                headers: Any = None, timeout: Any = None, **kwargs: Any) -> requests.Response:
        # Session.post passes json=None, Session.get allow_redirects=True: neither matters
        # here (no JSON body; the paper exchange never redirects, an API answer is final).
        if kwargs.get("json") is None:
            kwargs.pop("json", None)
        kwargs.pop("allow_redirects", None)
        if (kwargs or self.trust_env or self.cookies or self.auth or self.proxies
                or not isinstance(url, str) or not isinstance(params, str | None)):
            return super().request(method, url, params=params, data=data, headers=headers,
                                   timeout=timeout, **kwargs)
        prepared = requests.PreparedRequest()
        prepared.method = method.upper()
        # python-binance hands GET parameters over already encoded.
        prepared.url = f"{url}?{params}" if params else url
        merged: CaseInsensitiveDict[str | bytes] = CaseInsensitiveDict(self.headers)
        if headers:
            merged.update(headers)
        body = (RequestEncodingMixin._encode_params(data)
                if isinstance(data, list | tuple | dict) else data)
        if body:
            merged["Content-Length"] = str(len(body.encode() if isinstance(body, str) else body))
        elif prepared.method not in ("GET", "HEAD"):
            merged["Content-Length"] = "0"
        prepared.headers = merged
        prepared.body = body or None
        adapter = self.get_adapter(prepared.url)
        response = adapter.send(prepared, stream=False, timeout=timeout, verify=self.verify,
                                cert=self.cert, proxies={})
        response.content  # noqa: B018 - read the body now: the connection goes back to the pool
        return response
