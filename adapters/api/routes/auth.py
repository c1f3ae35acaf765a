"""Registration, login, token refresh, logout (one session or all), password change;
`GET /api/me`."""

from __future__ import annotations

import contextlib
import logging
from uuid import UUID

import anyio
from fastapi import APIRouter, Request, Response, status

from adapters.api.auth_store import (
    LOGIN_MAX_FAILURES,
    LOGIN_MAX_FAILURES_PER_ACCOUNT,
    LOGIN_MAX_FAILURES_PER_IP,
    LOGIN_WINDOW,
)
from adapters.api.deps import (
    ACCESS_COOKIE,
    COOKIE_MODE_HEADER,
    REFRESH_COOKIE,
    REFRESH_PATH,
    ApiContext,
    Ctx,
    CurrentUser,
    client_ip,
)
from adapters.api.errors import ApiError, too_many_requests, unauthorized
from adapters.api.routes.account import check_keys, keys_out
from adapters.api.schemas import (
    AuthResponse,
    ChangePasswordRequest,
    LoginRequest,
    LogoutRequest,
    MeOut,
    RefreshRequest,
    RegisterRequest,
)
from commands.messages import ChangePassword, ConnectExchangeKeys, RegisterAccount
from domain.account import normalize_email
from domain.errors import ValidationFailed

log = logging.getLogger(__name__)
router = APIRouter(tags=["auth"])


def cookie_secure(ctx: ApiContext, request: Request) -> bool:
    """Whether auth cookies get the Secure flag (settings.cookie_secure).

    "auto" keeps it everywhere except plain HTTP to localhost, so a TLS proxy in front of
    the API (which talks plain HTTP to it) does not silently lose it.
    """
    mode = ctx.runtime.settings.cookie_secure
    if mode != "auto":
        return mode == "always"
    host = (request.url.hostname or "").lower()
    return request.url.scheme == "https" or host not in ("localhost", "127.0.0.1", "::1")


def _session(ctx: ApiContext, request: Request, response: Response, account_id: UUID,
             email: str, refresh_token: str, session_id: UUID) -> AuthResponse:
    """Build the auth response and set the HttpOnly cookies: the access token (used by SSE
    in browsers) and, for browser clients that ask, the refresh token on /auth only."""
    token = ctx.tokens.access_token(account_id, email, session_id)
    secure = cookie_secure(ctx, request)
    response.set_cookie(
        ACCESS_COOKIE, token, max_age=ctx.tokens.access_seconds, path="/api", httponly=True,
        samesite="strict", secure=secure,
    )
    response.headers["Cache-Control"] = "no-store"
    in_cookie = (request.headers.get(COOKIE_MODE_HEADER) == "1"
                 or REFRESH_COOKIE in request.cookies)
    if in_cookie:
        # A browser keeps its refresh token where scripts cannot read it: a successful XSS
        # gets at most one short-lived access token, never the 14-day login.
        response.set_cookie(
            REFRESH_COOKIE, refresh_token, max_age=ctx.runtime.settings.refresh_token_days * 86400,
            path=REFRESH_PATH, httponly=True, samesite="strict", secure=secure,
        )
    return AuthResponse(token=token, refreshToken=None if in_cookie else refresh_token,
                        expiresIn=ctx.tokens.access_seconds,
                        user={"id": account_id, "email": email})  # type: ignore[arg-type]


def _throttle_ip(ctx: ApiContext, request: Request, what: str) -> None:
    """Refuse a client address over its budget of registrations or refreshes."""
    if ctx.auth_limiter is None:
        return
    wait = ctx.auth_limiter.acquire((what, client_ip(request)))
    if wait:
        raise too_many_requests(f"too many {what} requests from this address; slow down", wait)


@router.post("/auth/register", status_code=status.HTTP_201_CREATED, response_model=AuthResponse)
def register(body: RegisterRequest, ctx: Ctx, request: Request,
             response: Response) -> AuthResponse:
    """Create an account (optionally with exchange keys) and sign it in."""
    _throttle_ip(ctx, request, "registration")
    app = ctx.runtime.app
    email = normalize_email(body.email)
    keys = None
    if body.binanceApiKey is not None or body.binanceSecretKey is not None:
        if not body.binanceApiKey or not body.binanceSecretKey:
            raise ValidationFailed("binanceApiKey and binanceSecretKey go together",
                                   field="binanceSecretKey")
        # Checked before the account exists, so a bad key never leaves half a registration.
        keys = check_keys(ctx, body.binanceApiKey, body.binanceSecretKey, body.environment)
    account_id = app.handle(RegisterAccount(email=email, password=body.password))
    if keys is not None:
        app.handle(ConnectExchangeKeys(account_id=account_id, api_key=keys[0],
                                       secret_key=keys[1], environment=keys[2]))
    if ctx.on_account_registered is not None:
        try:
            ctx.on_account_registered(account_id)
        except Exception:  # the account exists; a failed side job must not undo the signup
            log.exception("on_account_registered hook failed for account %s", account_id)
    refresh, session_id = ctx.require_auth_store().issue(account_id)
    return _session(ctx, request, response, account_id, email, refresh, session_id)


@router.post("/auth/login", response_model=AuthResponse)
def login(body: LoginRequest, ctx: Ctx, request: Request, response: Response) -> AuthResponse:
    """Exchange email and password for tokens.

    Every attempt is counted before the password is checked, against three budgets:
    per email and address, per email, per address. Parallel guesses therefore see each
    other, and a success gives its count back.
    """
    store = ctx.require_auth_store()
    try:
        email = normalize_email(body.email)
    except ValidationFailed:
        email = body.email.strip().lower()[:320]
    ip = client_ip(request)
    pair, per_account, per_ip = f"login:{email}|{ip}", f"login-account:{email}", f"login-ip:{ip}"
    wait = store.hit([(pair, LOGIN_MAX_FAILURES), (per_account, LOGIN_MAX_FAILURES_PER_ACCOUNT),
                      (per_ip, LOGIN_MAX_FAILURES_PER_IP)], LOGIN_WINDOW)
    if wait is not None:
        raise too_many_requests("too many failed sign-ins; try again later", wait)
    account_id = ctx.runtime.app.authenticate(email, body.password)
    store.clear([pair])
    store.refund([per_account, per_ip])
    refresh, session_id = store.issue(account_id)
    return _session(ctx, request, response, account_id, email, refresh, session_id)


@router.post("/auth/refresh", response_model=AuthResponse)
def refresh(ctx: Ctx, request: Request, response: Response,
            body: RefreshRequest | None = None) -> AuthResponse:
    """Swap a refresh token (the body's, or the HttpOnly cookie's) for a new access token
    and the next refresh token (rotation, within the login's absolute lifetime)."""
    _throttle_ip(ctx, request, "refresh")
    token = body.refreshToken if body is not None else request.cookies.get(REFRESH_COOKIE)
    if not token or len(token) > 512:
        raise unauthorized("a refresh token is required", "invalid_refresh_token")
    rotated = ctx.require_auth_store().rotate(token)
    account = ctx.runtime.app.get_account(rotated.account_id)
    return _session(ctx, request, response, account.id, account.email, rotated.token,
                    rotated.session_id)


def _clear_cookies(response: Response) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/api")
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_PATH)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(ctx: Ctx, request: Request, response: Response,
                 body: LogoutRequest | None = None) -> Response:
    """End this login: its refresh tokens and every access token issued to it stop working.

    The session is found from the refresh token (body or cookie) or from a bearer token.
    """
    store = ctx.require_auth_store()
    refresh_token = (body.refreshToken if body is not None and body.refreshToken
                     else request.cookies.get(REFRESH_COOKIE))
    if refresh_token and len(refresh_token) <= 512:
        ended = await anyio.to_thread.run_sync(store.revoke, refresh_token)
        if ended is not None:
            ctx.sessions.forget(ended)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        with contextlib.suppress(ApiError):
            principal = ctx.tokens.verify(header[7:].strip())
            await anyio.to_thread.run_sync(store.end_session, principal.session_id)
            ctx.sessions.forget(principal.session_id)
    response.status_code = status.HTTP_204_NO_CONTENT
    _clear_cookies(response)
    return response


@router.post("/auth/logout-all", status_code=status.HTTP_204_NO_CONTENT)
async def logout_everywhere(user: CurrentUser, ctx: Ctx, response: Response) -> Response:
    """Sign out everywhere: end every session of this account, this one included."""
    store = ctx.require_auth_store()
    await anyio.to_thread.run_sync(store.end_all_sessions, user.account_id)
    ctx.sessions.forget_account(user.account_id)
    response.status_code = status.HTTP_204_NO_CONTENT
    _clear_cookies(response)
    return response


@router.post("/api/account/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(body: ChangePasswordRequest, user: CurrentUser, ctx: Ctx,
                    request: Request, response: Response) -> Response:
    """Change the password (the current one is required); every session ends, this one
    included, so a stolen token or refresh token stops working too."""
    store = ctx.require_auth_store()
    key = f"password:{user.account_id}"
    wait = store.hit([(key, LOGIN_MAX_FAILURES)], LOGIN_WINDOW)
    if wait is not None:
        raise too_many_requests("too many wrong passwords; try again later", wait)
    ctx.runtime.app.handle(ChangePassword(account_id=user.account_id,
                                          current_password=body.currentPassword,
                                          new_password=body.newPassword))
    store.clear([key])
    store.end_all_sessions(user.account_id)
    ctx.sessions.forget_account(user.account_id)
    response.status_code = status.HTTP_204_NO_CONTENT
    _clear_cookies(response)
    return response


@router.get("/api/me", response_model=MeOut)
def me(user: CurrentUser, ctx: Ctx) -> MeOut:
    """Who the token belongs to, and whether exchange keys are connected."""
    account = ctx.runtime.app.get_account(user.account_id)
    return MeOut(id=account.id, email=account.email,
                 exchangeKeys=keys_out(account, ctx.runtime.settings.exchange))
