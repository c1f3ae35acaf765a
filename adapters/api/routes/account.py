"""Exchange keys: connect (or rotate), revoke, and show a masked hint. Never the keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from adapters.api.deps import ApiContext, Ctx, CurrentUser
from adapters.api.errors import ApiError
from adapters.api.schemas import ExchangeKeysOut, ExchangeKeysRequest
from commands.messages import ConnectExchangeKeys, RevokeExchangeKeys
from domain.account import EXCHANGE_ENVIRONMENTS, Account
from domain.errors import ValidationFailed

router = APIRouter(prefix="/api/account", tags=["account"])


def check_keys(ctx: ApiContext, api_key: str, secret_key: str,
               environment: str | None) -> tuple[str, str, str]:
    """Validate keys and their environment before anything is written."""
    api_key, secret_key = api_key.strip(), secret_key.strip()
    if not api_key or not secret_key:
        raise ValidationFailed("apiKey and secretKey are both required", field="apiKey")
    if len(api_key) > 256 or len(secret_key) > 256:
        raise ValidationFailed("apiKey and secretKey must be at most 256 characters",
                               field="apiKey")
    env = (environment or ctx.runtime.settings.exchange).strip().lower()
    if env not in EXCHANGE_ENVIRONMENTS:
        raise ValidationFailed(
            f"environment must be one of {', '.join(EXCHANGE_ENVIRONMENTS)}", field="environment")
    if env == "live" and not ctx.runtime.settings.allow_live_trading:
        raise ApiError(403, "live_trading_disabled",
                       "live keys are refused: this installation does not allow live trading")
    if ctx.keys_checker is not None:
        # One signed read-only call to the keys' own environment; a refusal (422) or an
        # unreachable exchange (503) stores nothing.
        ctx.keys_checker(api_key, secret_key, env)
    return api_key, secret_key, env


def keys_out(account: Account, exchange: str | None = None) -> ExchangeKeysOut:
    """Describe the account's keys; `exchange` is the environment this installation uses."""
    out = ExchangeKeysOut(connected=account.has_exchange_keys, apiKeyHint=account.api_key_hint,
                          environment=account.exchange_environment)
    if not account.has_exchange_keys:
        return out
    rejection = account.keys_rejection
    if rejection is not None:
        out.status = "rejected"
        out.reason = (f"keys rejected by the {rejection['environment']} exchange: "
                      f"{rejection['code']} {rejection['reason']}")
    elif exchange is not None and account.exchange_environment != exchange:
        out.status = "wrong_environment"
        out.reason = (f"these keys are for {account.exchange_environment} but this installation "
                      f"trades on {exchange}: they are not used; connect {exchange} keys")
    else:
        out.status = "active"
    return out


@router.put("/exchange-keys", status_code=status.HTTP_204_NO_CONTENT)
def put_keys(body: ExchangeKeysRequest, user: CurrentUser, ctx: Ctx) -> Response:
    """Connect exchange keys, or replace the connected ones; stored only encrypted."""
    api_key, secret_key, env = check_keys(ctx, body.apiKey, body.secretKey, body.environment)
    ctx.runtime.app.handle(ConnectExchangeKeys(account_id=user.account_id, api_key=api_key,
                                               secret_key=secret_key, environment=env))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/exchange-keys", status_code=status.HTTP_204_NO_CONTENT)
def delete_keys(user: CurrentUser, ctx: Ctx) -> Response:
    """Forget the connected keys (idempotent)."""
    ctx.runtime.app.handle(RevokeExchangeKeys(account_id=user.account_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/exchange-keys", response_model=ExchangeKeysOut)
def get_keys(user: CurrentUser, ctx: Ctx) -> ExchangeKeysOut:
    """Show whether keys are connected, a masked hint of the API key and the environment."""
    return keys_out(ctx.runtime.app.get_account(user.account_id), ctx.runtime.settings.exchange)


@router.get("/commission", responses={404: {"description": "not reported by the exchange yet"}})
def get_commission(user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    """The account's commission rates (maker, taker: fractions, "0.001" = 0.1 %) as the
    exchange last reported them with the balances: what the ticket's expected fee uses."""
    rates = ctx.require_read_models().commission(user.account_id)
    if rates is None:
        raise ApiError(404, "commission_unknown",
                       "the exchange has not reported this account's commission rates yet; "
                       "they arrive with its balances")
    return rates
