"""Postgres tables of the auth layer: sessions, hashed refresh tokens, throttle counters
and spent stream tokens.

They live in Postgres (not in process memory) so every API worker and instance agrees:
a session ended by one is refused by all, and login throttling holds across them.

A session is one login: it starts at sign-in, its refresh tokens rotate within it (one
family), and every access and stream token names it (`sid`). Logout ends it; a password
change or "sign out everywhere" ends all of an account's sessions; and it ends by itself
`session_max` after sign-in however often it is refreshed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from psycopg import sql
from psycopg_pool import ConnectionPool

from adapters.api.errors import unauthorized
from adapters.api.tokens import hash_token, new_refresh_token

LOGIN_MAX_FAILURES = 5  # per email and IP
LOGIN_MAX_FAILURES_PER_ACCOUNT = 20  # from any IP: slows a distributed guesser
LOGIN_MAX_FAILURES_PER_IP = 50  # over any emails: slows credential stuffing
LOGIN_WINDOW = timedelta(minutes=5)

REUSE_GRACE = timedelta(seconds=10)  # see AuthStore.rotate

_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.api_refresh_tokens (
    token_hash text PRIMARY KEY,
    account_id uuid NOT NULL,
    family_id uuid NOT NULL,
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    replaced_by text
);
CREATE INDEX IF NOT EXISTS api_refresh_tokens_family
    ON {schema}.api_refresh_tokens (family_id);
CREATE TABLE IF NOT EXISTS {schema}.api_login_failures (
    email text NOT NULL,
    client_ip text NOT NULL,
    failures integer NOT NULL,
    window_start timestamptz NOT NULL,
    PRIMARY KEY (email, client_ip)
);
CREATE TABLE IF NOT EXISTS {schema}.api_sessions (
    session_id uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz
);
CREATE INDEX IF NOT EXISTS api_sessions_account ON {schema}.api_sessions (account_id);
CREATE TABLE IF NOT EXISTS {schema}.api_throttle (
    key text PRIMARY KEY,
    hits integer NOT NULL,
    window_start timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.api_spent_stream_tokens (
    jti text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
"""


@dataclass(frozen=True)
class RefreshResult:
    """The new refresh token and whose it is."""

    token: str
    account_id: UUID
    session_id: UUID


class AuthStore:
    """Refresh tokens (stored as sha256, rotated on use, revocable) and login throttling."""

    def __init__(self, pool: ConnectionPool, schema: str, refresh_days: int,
                 successor_key: bytes = b"", session_max: timedelta | None = None) -> None:
        self._pool = pool
        self._schema = sql.Identifier(schema)
        self._refresh_ttl = timedelta(days=refresh_days)
        self._session_max = session_max or timedelta(days=max(30, refresh_days))
        # Successors are derived from the token they replace (HMAC under a server key), so
        # a replay within the grace interval gets the very same successor back, not a
        # new sibling each time; without the key nobody can compute one.
        self._successor_key = successor_key or secrets.token_bytes(32)

    def successor_of(self, token: str) -> str:
        digest = hmac.new(self._successor_key, token.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _q(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(schema=self._schema)

    def create_tables(self) -> None:
        """Create the tables once; the advisory lock keeps concurrent workers from racing."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('tradeledger_api_tables'))")
            conn.execute(self._q(_DDL))
            conn.execute(self._q("DELETE FROM {schema}.api_refresh_tokens "
                                 "WHERE expires_at < now() - interval '1 day'"))
            conn.execute(self._q("DELETE FROM {schema}.api_spent_stream_tokens "
                                 "WHERE expires_at < now()"))
            conn.execute(self._q("DELETE FROM {schema}.api_throttle "
                                 "WHERE window_start < now() - interval '1 day'"))

    # ---- refresh tokens ----------------------------------------------------------
    def issue(self, account_id: UUID) -> tuple[str, UUID]:
        """Start a session for a fresh sign-in; return its first refresh token and its id."""
        token = new_refresh_token()
        session_id = uuid4()
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(self._q("INSERT INTO {schema}.api_sessions (session_id, account_id) "
                                 "VALUES (%s, %s)"), (session_id, account_id))
            conn.execute(
                self._q("INSERT INTO {schema}.api_refresh_tokens "
                        "(token_hash, account_id, family_id, expires_at) VALUES (%s, %s, %s, %s)"),
                (hash_token(token), account_id, session_id,
                 min(datetime.now(UTC) + self._refresh_ttl,
                     datetime.now(UTC) + self._session_max)),
            )
        return token, session_id

    def rotate(self, token: str) -> RefreshResult:
        """Swap a live refresh token for its successor; a reused (already rotated) token
        ends its whole session, because only a thief or a replay presents it twice.

        Reuse interval: a token rotated less than REUSE_GRACE ago whose session is still
        live answers with the same successor it was rotated into. Two tabs (or a retried
        request whose answer was lost) racing one refresh then both keep the login; a replay
        after the interval, or after logout, still ends the session.
        """
        old_hash = hash_token(token)
        new_token = self.successor_of(token)
        new_hash = hash_token(new_token)
        outcome = "ok"
        account_id: UUID | None = None
        session_id: UUID | None = None
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                self._q("SELECT t.account_id, t.family_id, t.expires_at, t.revoked_at, "
                        "t.replaced_by, s.started_at, s.ended_at "
                        "FROM {schema}.api_refresh_tokens t LEFT JOIN {schema}.api_sessions s "
                        "ON s.session_id = t.family_id WHERE t.token_hash = %s FOR UPDATE OF t"),
                (old_hash,),
            ).fetchone()
            now = datetime.now(UTC)
            if row is None:
                outcome = "unknown"
            else:
                account_id, session_id, expires_at, revoked_at, replaced_by, started, ended = row
                live = started is not None and ended is None and now < started + self._session_max
                if not live:
                    outcome = "expired" if started is not None and ended is None else "unknown"
                elif revoked_at is not None:
                    if replaced_by == new_hash and now - revoked_at < REUSE_GRACE:
                        pass  # the same successor again
                    else:
                        outcome = "reused"
                        self._end(conn, "session_id", session_id)
                elif expires_at <= now:
                    outcome = "expired"
                else:
                    conn.execute(
                        self._q("INSERT INTO {schema}.api_refresh_tokens "
                                "(token_hash, account_id, family_id, expires_at) "
                                "VALUES (%s, %s, %s, %s) ON CONFLICT (token_hash) DO NOTHING"),
                        (new_hash, account_id, session_id,
                         min(now + self._refresh_ttl, started + self._session_max)),
                    )
                    conn.execute(
                        self._q("UPDATE {schema}.api_refresh_tokens "
                                "SET revoked_at = now(), replaced_by = %s WHERE token_hash = %s"),
                        (new_hash, old_hash),
                    )
        if outcome != "ok" or account_id is None or session_id is None:
            message = {"expired": "the sign-in has expired; sign in again",
                       "reused": "the refresh token was already used; sign in again"}.get(
                outcome, "the refresh token is not valid")
            raise unauthorized(message, "invalid_refresh_token")
        return RefreshResult(token=new_token, account_id=account_id, session_id=session_id)

    def _end(self, conn: Any, column: str, value: Any) -> list[UUID]:
        """End the sessions whose `column` (session_id or account_id) is `value`, and
        revoke their refresh tokens."""
        ended = [r[0] for r in conn.execute(
            sql.SQL("UPDATE {schema}.api_sessions SET ended_at = now() "
                    "WHERE {column} = %s AND ended_at IS NULL RETURNING session_id").format(
                schema=self._schema, column=sql.Identifier(column)), (value,))]
        conn.execute(
            self._q("UPDATE {schema}.api_refresh_tokens SET revoked_at = now() "
                    "WHERE family_id = ANY(%s) AND revoked_at IS NULL"), (ended,))
        return ended

    def revoke(self, token: str) -> UUID | None:
        """End the session a refresh token belongs to; return the session id."""
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                self._q("SELECT family_id FROM {schema}.api_refresh_tokens "
                        "WHERE token_hash = %s"), (hash_token(token),)).fetchone()
            if row is None:
                return None
            self._end(conn, "session_id", row[0])
        return UUID(str(row[0]))

    def end_session(self, session_id: UUID) -> None:
        with self._pool.connection() as conn, conn.transaction():
            self._end(conn, "session_id", session_id)

    def end_all_sessions(self, account_id: UUID) -> int:
        """End every session of an account (password change, sign out everywhere)."""
        with self._pool.connection() as conn, conn.transaction():
            return len(self._end(conn, "account_id", account_id))

    def session_live(self, session_id: UUID) -> bool:
        """Whether a session is still signed in (not ended, within its absolute lifetime)."""
        with self._pool.connection() as conn:
            row = conn.execute(
                self._q("SELECT ended_at IS NULL AND started_at + %s > now() "
                        "FROM {schema}.api_sessions WHERE session_id = %s"),
                (self._session_max, session_id)).fetchone()
        return bool(row and row[0])

    def spend_stream_token(self, jti: str, expires_at: float) -> bool:
        """Record a stream token as used; False when it was used before (single use)."""
        with self._pool.connection() as conn:
            row = conn.execute(
                self._q("INSERT INTO {schema}.api_spent_stream_tokens (jti, expires_at) "
                        "VALUES (%s, to_timestamp(%s) + interval '1 minute') "
                        "ON CONFLICT (jti) DO NOTHING RETURNING 1"),
                (jti, expires_at)).fetchone()
        return row is not None

    # ---- throttling ----------------------------------------------------------------
    def hit(self, budgets: list[tuple[str, int]], window: timedelta) -> float | None:
        """Count one attempt against each (key, limit) at once, atomically; return the
        seconds to wait when any budget is now exceeded, else None.

        Counting before the attempt runs (not after it failed) is what makes parallel
        attempts see each other: 30 at once get at most `limit` through.
        """
        wait: float | None = None
        with self._pool.connection() as conn, conn.transaction():
            for key, limit in sorted(budgets):  # sorted: no lock-order deadlocks
                row = conn.execute(
                    self._q("INSERT INTO {schema}.api_throttle AS t (key, hits, window_start) "
                            "VALUES (%s, 1, now()) ON CONFLICT (key) DO UPDATE SET "
                            "hits = CASE WHEN t.window_start + %s < now() THEN 1 "
                            "ELSE t.hits + 1 END, "
                            "window_start = CASE WHEN t.window_start + %s < now() THEN now() "
                            "ELSE t.window_start END RETURNING hits, window_start"),
                    (key, window, window)).fetchone()
                assert row is not None  # INSERT ... RETURNING always returns the row
                hits, started = row
                if hits > limit:
                    remaining = (started + window - datetime.now(UTC)).total_seconds()
                    wait = max(wait or 0.0, remaining, 1.0)
        return wait

    def refund(self, keys: list[str]) -> None:
        """Take back one counted attempt from each key (it succeeded)."""
        with self._pool.connection() as conn:
            conn.execute(self._q("UPDATE {schema}.api_throttle SET hits = greatest(hits - 1, 0) "
                                 "WHERE key = ANY(%s)"), (sorted(keys),))

    def clear(self, keys: list[str]) -> None:
        with self._pool.connection() as conn:
            conn.execute(self._q("DELETE FROM {schema}.api_throttle WHERE key = ANY(%s)"),
                         (keys,))
