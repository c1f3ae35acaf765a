"""A Binance-compatible paper exchange: python-binance's Client and AsyncClient work against
it unchanged (REST, market streams and the WS-API user-data stream). See docs/paper-exchange.md.

Exports load lazily so `tradeledger` sub-commands that do not serve it skip importing aiohttp.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ApiKeys": "adapters.paper_exchange.runner",
    "BackgroundPaperExchange": "adapters.paper_exchange.runner",
    "main": "adapters.paper_exchange.runner",
    "request_keys": "adapters.paper_exchange.runner",
    "run_paper_exchange": "adapters.paper_exchange.runner",
    "start_subprocess": "adapters.paper_exchange.runner",
    "PaperExchange": "adapters.paper_exchange.server",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
