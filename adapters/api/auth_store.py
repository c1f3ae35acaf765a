"""Postgres tables of the auth layer: hashed refresh tokens and failed-login counters.

Both live in Postgres (not in process memory) so every API worker and instance agrees:
a refresh token revoked by one is refused by all, and login throttling holds across them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from psycopg import sql
from psycopg_pool import ConnectionPool

from adapters.api.errors import unauthorized
from adapters.api.tokens import hash_token, new_refresh_token

LOGIN_MAX_FAILURES = 5
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
"""


@dataclass(frozen=True)
class RefreshResult:
    """The new refresh token and whose it is."""

    token: str
    account_id: UUID


class AuthStore:
    """Refresh tokens (stored as sha256, rotated on use, revocable) and login throttling."""

    def __init__(self, pool: ConnectionPool, schema: str, refresh_days: int) -> None:
        self._pool = pool
        self._schema = sql.Identifier(schema)
        self._refresh_ttl = timedelta(days=refresh_days)

    def _q(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(schema=self._schema)

    def create_tables(self) -> None:
        """Create the tables once; the advisory lock keeps concurrent workers from racing."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('tradeledger_api_tables'))")
            conn.execute(self._q(_DDL))
            conn.execute(self._q("DELETE FROM {schema}.api_refresh_tokens "
                                 "WHERE expires_at < now() - interval '1 day'"))

    # ---- refresh tokens ----------------------------------------------------------
    def issue(self, account_id: UUID, family_id: UUID | None = None) -> str:
        """Store and return a new refresh token, starting a new family unless one is given."""
        token = new_refresh_token()
        with self._pool.connection() as conn:
            conn.execute(
                self._q("INSERT INTO {schema}.api_refresh_tokens "
                        "(token_hash, account_id, family_id, expires_at) VALUES (%s, %s, %s, %s)"),
                (hash_token(token), account_id, family_id or uuid4(),
                 datetime.now(UTC) + self._refresh_ttl),
            )
        return token

    def rotate(self, token: str) -> RefreshResult:
        """Swap a live refresh token for a new one; a reused (already rotated) token revokes
        its whole family, because only a thief or a replay presents it twice.

        Reuse interval: a token rotated less than REUSE_GRACE ago whose login is still live
        is rotated once more into the same family instead. Two tabs (or a retried request
        whose answer was lost) racing one refresh then both keep the login; a replay after
        the interval, or after logout, still revokes everything.
        """
        old_hash = hash_token(token)
        new_token = new_refresh_token()
        outcome = "ok"
        account_id: UUID | None = None
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                self._q("SELECT account_id, family_id, expires_at, revoked_at, replaced_by "
                        "FROM {schema}.api_refresh_tokens WHERE token_hash = %s FOR UPDATE"),
                (old_hash,),
            ).fetchone()
            if row is None:
                outcome = "unknown"
            else:
                account_id, family_id, expires_at, revoked_at, replaced_by = row
                just_rotated = (
                    revoked_at is not None and replaced_by is not None
                    and datetime.now(UTC) - revoked_at < REUSE_GRACE
                    and conn.execute(
                        self._q("SELECT 1 FROM {schema}.api_refresh_tokens "
                                "WHERE family_id = %s AND revoked_at IS NULL LIMIT 1"),
                        (family_id,)).fetchone() is not None
                )
                if just_rotated:
                    conn.execute(
                        self._q("INSERT INTO {schema}.api_refresh_tokens "
                                "(token_hash, account_id, family_id, expires_at) "
                                "VALUES (%s, %s, %s, %s)"),
                        (hash_token(new_token), account_id, family_id,
                         datetime.now(UTC) + self._refresh_ttl),
                    )
                elif revoked_at is not None:
                    outcome = "reused"
                    conn.execute(
                        self._q("UPDATE {schema}.api_refresh_tokens SET revoked_at = now() "
                                "WHERE family_id = %s AND revoked_at IS NULL"),
                        (family_id,),
                    )
                elif expires_at <= datetime.now(UTC):
                    outcome = "expired"
                else:
                    new_hash = hash_token(new_token)
                    conn.execute(
                        self._q("INSERT INTO {schema}.api_refresh_tokens "
                                "(token_hash, account_id, family_id, expires_at) "
                                "VALUES (%s, %s, %s, %s)"),
                        (new_hash, account_id, family_id, datetime.now(UTC) + self._refresh_ttl),
                    )
                    conn.execute(
                        self._q("UPDATE {schema}.api_refresh_tokens "
                                "SET revoked_at = now(), replaced_by = %s WHERE token_hash = %s"),
                        (new_hash, old_hash),
                    )
        if outcome != "ok" or account_id is None:
            message = {"expired": "the refresh token has expired",
                       "reused": "the refresh token was already used; sign in again"}.get(
                outcome, "the refresh token is not valid")
            raise unauthorized(message, "invalid_refresh_token")
        return RefreshResult(token=new_token, account_id=account_id)

    def revoke(self, token: str) -> UUID | None:
        """Revoke a refresh token and every token rotated from the same login."""
        with self._pool.connection() as conn:
            row = conn.execute(
                self._q("UPDATE {schema}.api_refresh_tokens t SET revoked_at = now() "
                        "FROM {schema}.api_refresh_tokens s "
                        "WHERE s.token_hash = %s AND t.family_id = s.family_id "
                        "AND t.revoked_at IS NULL RETURNING t.account_id"),
                (hash_token(token),),
            ).fetchone()
        return row[0] if row else None

    # ---- login throttling --------------------------------------------------------
    def login_retry_after(self, email: str, client_ip: str) -> float | None:
        """Seconds until this email+IP may try again, or None when it may try now."""
        with self._pool.connection() as conn:
            row = conn.execute(
                self._q("SELECT failures, window_start FROM {schema}.api_login_failures "
                        "WHERE email = %s AND client_ip = %s"),
                (email, client_ip),
            ).fetchone()
        if row is None or row[0] < LOGIN_MAX_FAILURES:
            return None
        remaining = (row[1] + LOGIN_WINDOW - datetime.now(UTC)).total_seconds()
        return remaining if remaining > 0 else None

    def record_login_failure(self, email: str, client_ip: str) -> None:
        """Count a failure in the current window, starting a new window when it has passed."""
        with self._pool.connection() as conn:
            conn.execute(
                self._q(
                    "INSERT INTO {schema}.api_login_failures AS f "
                    "(email, client_ip, failures, window_start) VALUES (%s, %s, 1, now()) "
                    "ON CONFLICT (email, client_ip) DO UPDATE SET "
                    "failures = CASE WHEN f.window_start + %s < now() THEN 1 "
                    "ELSE f.failures + 1 END, "
                    "window_start = CASE WHEN f.window_start + %s < now() THEN now() "
                    "ELSE f.window_start END"),
                (email, client_ip, LOGIN_WINDOW, LOGIN_WINDOW),
            )

    def clear_login_failures(self, email: str, client_ip: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                self._q("DELETE FROM {schema}.api_login_failures "
                        "WHERE email = %s AND client_ip = %s"),
                (email, client_ip),
            )
