"""`tradeledger dashboard`: serve the Dash app (waitress when installed, else Flask's server)."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dashboard", help="serve the trading dashboard")
    parser.add_argument("--host", default=None,
                        help="interface to bind (default: TRADELEDGER_API_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: TRADELEDGER_DASHBOARD_PORT, 8050)")
    parser.add_argument("--api-url", default=None,
                        help="where this server reaches the API (default: TRADELEDGER_API_URL, "
                        "else http://API_HOST:API_PORT)")
    parser.add_argument("--public-api-url", default=None,
                        help="where browsers reach the API when it differs from --api-url "
                        "(default: TRADELEDGER_PUBLIC_API_URL)")
    parser.set_defaults(func=cmd_dashboard)


def serve(host: str, port: int, api_url: str, public_api_url: str | None = None) -> None:
    """Serve until interrupted."""
    from dashboard.app import create_dash_app

    app = create_dash_app(api_url, public_api_url)
    try:
        from waitress import serve as waitress_serve
    except ImportError:
        log.warning("waitress is not installed; using Flask's development server")
        app.run(host=host, port=port, debug=False)
        return
    waitress_serve(app.server, host=host, port=port, threads=8, ident="tradeledger-dashboard")


def _env(name: str, default: str) -> str:
    return os.environ.get(f"TRADELEDGER_{name}") or default


def cmd_dashboard(args: argparse.Namespace) -> int:
    # The dashboard imports nothing of ours but dashboard/*: it reads the same TRADELEDGER_*
    # variables as adapters/platform/settings.py instead of importing it.
    logging.basicConfig(level=_env("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    api_host = _env("API_HOST", "127.0.0.1")
    host = args.host or api_host
    port = args.port or int(_env("DASHBOARD_PORT", "8050"))
    api_url = (args.api_url or os.environ.get("TRADELEDGER_API_URL")
               or f"http://{api_host}:{_env('API_PORT', '8000')}")
    public = args.public_api_url or os.environ.get("TRADELEDGER_PUBLIC_API_URL")
    print(f"dashboard: http://{host}:{port}  (API {public or api_url})", flush=True)
    serve(host, port, api_url, public)
    return 0
