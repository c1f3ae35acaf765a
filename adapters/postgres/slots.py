"""Instance slots: replica i of n claims index i with a session-level advisory lock."""

from __future__ import annotations

import hashlib
import time

import psycopg


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)


def claim_instance_slot(database_url: str, name: str, instances: int,
                        wait_seconds: float = 60.0) -> tuple[int, psycopg.Connection]:
    """Return (index, connection holding the lock); keep the connection open while running.

    A replica that dies releases its slot with its connection, so a restarted one takes it.
    """
    conn = psycopg.connect(database_url, autocommit=True)
    key = _lock_key(f"tradeledger-slot:{name}")
    deadline = time.monotonic() + wait_seconds
    while True:
        for index in range(instances):
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (key, index)).fetchone()
            if row and row[0]:
                return index, conn
        if time.monotonic() > deadline:
            conn.close()
            raise RuntimeError(
                f"all {instances} {name} slots are taken; raise TRADELEDGER_INSTANCES")
        time.sleep(1.0)
