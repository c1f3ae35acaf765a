"""JWT access and stream tokens (HS256 pinned) and opaque refresh tokens.

Access tokens are short-lived and stateless; refresh tokens are random strings whose
sha256 is stored (adapters/api/auth_store.py) so they can be rotated and revoked.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from uuid import UUID

import jwt

from adapters.api.errors import unauthorized

ALGORITHM = "HS256"
STREAM_AUDIENCE = "tradeledger-stream"
STREAM_TOKEN_SECONDS = 60
LEEWAY_SECONDS = 5
_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "jti", "sid"]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: an account id, its email, and the session (login) the
    token belongs to."""

    account_id: UUID
    email: str
    token_id: str
    session_id: UUID
    expires_at: float = 0.0


class TokenService:
    """Issue and verify the API's JWTs."""

    CACHE_SIZE = 20_000

    def __init__(self, secret: str, issuer: str, audience: str, access_minutes: int) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.access_seconds = access_minutes * 60
        # token -> (expiry, principal) of tokens that verified. Checking a JWT costs more
        # than the rest of the auth path together; a repeat of the very same string (same
        # signature) needs only its expiry re-checked. Dict operations are atomic, so the
        # threadpool may share it.
        self._verified: dict[tuple[str, str], tuple[float, Principal]] = {}

    def __repr__(self) -> str:
        return f"TokenService(issuer={self.issuer!r}, audience={self.audience!r})"

    def _encode(self, account_id: UUID, email: str, session_id: UUID, audience: str,
                seconds: int) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": audience, "sub": str(account_id), "email": email,
                  "iat": now, "exp": now + seconds, "jti": uuid.uuid4().hex,
                  "sid": str(session_id)}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def access_token(self, account_id: UUID, email: str, session_id: UUID) -> str:
        return self._encode(account_id, email, session_id, self.audience, self.access_seconds)

    def stream_token(self, account_id: UUID, email: str, session_id: UUID) -> str:
        """A token good only for opening one SSE stream, within one minute."""
        return self._encode(account_id, email, session_id, STREAM_AUDIENCE,
                            STREAM_TOKEN_SECONDS)

    def verify(self, token: str, audience: str | None = None) -> Principal:
        """Check signature, algorithm, issuer, audience, expiry and required claims."""
        key = (token, audience or self.audience)
        hit = self._verified.get(key)
        if hit is not None:
            if time.time() < hit[0] + LEEWAY_SECONDS:
                return hit[1]
            self._verified.pop(key, None)
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], audience=audience or self.audience,
                issuer=self.issuer, leeway=LEEWAY_SECONDS, options={"require": _REQUIRED},
            )
            account_id = UUID(str(claims["sub"]))
            session_id = UUID(str(claims["sid"]))
        except jwt.ExpiredSignatureError:
            raise unauthorized("the access token has expired", "token_expired") from None
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise unauthorized("the access token is not valid", "invalid_token") from None
        principal = Principal(account_id=account_id, email=str(claims.get("email", "")),
                              token_id=str(claims["jti"]), session_id=session_id,
                              expires_at=float(claims["exp"]))
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[key] = (float(claims["exp"]), principal)
        return principal


def new_refresh_token() -> str:
    """Return a fresh opaque refresh token (256 random bits)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Return the sha256 hex digest under which a refresh token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()
