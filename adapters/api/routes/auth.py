"""Registration, login, token refresh and logout; `GET /api/me`."""

from __future__ import annotations

import logging
from uuid import UUID

from fastapi import APIRouter, Request, Response, status

from adapters.api.deps import ACCESS_COOKIE, ApiContext, Ctx, CurrentUser, client_ip
from adapters.api.errors import too_many_requests
from adapters.api.routes.account import check_keys, keys_out
from adapters.api.schemas import (
    AuthResponse,
    LoginRequest,
    LogoutRequest,
    MeOut,
    RefreshRequest,
    RegisterRequest,
)
from commands.messages import ConnectExchangeKeys, RegisterAccount
from domain.account import normalize_email
from domain.errors import AuthenticationFailed, ValidationFailed

log = logging.getLogger(__name__)
router = APIRouter(tags=["auth"])


def _session(ctx: ApiContext, request: Request, response: Response, account_id: UUID,
             email: str, refresh_token: str) -> AuthResponse:
    """Build the auth response and set the HttpOnly access cookie (used by SSE in browsers)."""
    token = ctx.tokens.access_token(account_id, email)
    response.set_cookie(
        ACCESS_COOKIE, token, max_age=ctx.tokens.access_seconds, path="/api", httponly=True,
        samesite="strict", secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return AuthResponse(token=token, refreshToken=refresh_token,
                        expiresIn=ctx.tokens.access_seconds,
                        user={"id": account_id, "email": email})  # type: ignore[arg-type]


@router.post("/auth/register", status_code=status.HTTP_201_CREATED, response_model=AuthResponse)
def register(body: RegisterRequest, ctx: Ctx, request: Request,
             response: Response) -> AuthResponse:
    """Create an account (optionally with exchange keys) and sign it in."""
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
    refresh = ctx.require_auth_store().issue(account_id)
    return _session(ctx, request, response, account_id, email, refresh)


@router.post("/auth/login", response_model=AuthResponse)
def login(body: LoginRequest, ctx: Ctx, request: Request, response: Response) -> AuthResponse:
    """Exchange email and password for tokens; repeated failures are throttled per email+IP."""
    store = ctx.require_auth_store()
    try:
        email = normalize_email(body.email)
    except ValidationFailed:
        email = body.email.strip().lower()[:320]
    ip = client_ip(request)
    wait = store.login_retry_after(email, ip)
    if wait is not None:
        raise too_many_requests("too many failed sign-ins; try again later", wait)
    try:
        account_id = ctx.runtime.app.authenticate(email, body.password)
    except AuthenticationFailed:
        store.record_login_failure(email, ip)
        raise
    store.clear_login_failures(email, ip)
    return _session(ctx, request, response, account_id, email, store.issue(account_id))


@router.post("/auth/refresh", response_model=AuthResponse)
def refresh(body: RefreshRequest, ctx: Ctx, request: Request, response: Response) -> AuthResponse:
    """Swap a refresh token for a new access token and a new refresh token (rotation)."""
    rotated = ctx.require_auth_store().rotate(body.refreshToken)
    account = ctx.runtime.app.get_account(rotated.account_id)
    return _session(ctx, request, response, account.id, account.email, rotated.token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(ctx: Ctx, response: Response, body: LogoutRequest | None = None) -> Response:
    """Revoke the refresh token (and its rotations) and clear the access cookie."""
    if body is not None and body.refreshToken:
        ctx.require_auth_store().revoke(body.refreshToken)
    response.status_code = status.HTTP_204_NO_CONTENT
    response.delete_cookie(ACCESS_COOKIE, path="/api")
    return response


@router.get("/api/me", response_model=MeOut)
def me(user: CurrentUser, ctx: Ctx) -> MeOut:
    """Who the token belongs to, and whether exchange keys are connected."""
    account = ctx.runtime.app.get_account(user.account_id)
    return MeOut(id=account.id, email=account.email,
                 exchangeKeys=keys_out(account, ctx.runtime.settings.exchange))
