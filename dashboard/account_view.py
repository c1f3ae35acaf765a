"""The Account page, the header's PAPER / TESTNET / LIVE badge and the balance source.

Server callbacks on the API client: `GET /api/me` into the `me-store`; exchange keys
connect / replace / remove (with the exchange's verdict when it refuses them); password
change and sign out everywhere. The access token comes from the `auth` store through
`api_client.token_of`, the one place the dashboard's server side reads it.
"""

from __future__ import annotations

import time
from typing import Any

import dash
import httpx
from dash import Input, Output, State, callback, ctx, html

from dashboard import ids
from dashboard.api_client import ApiClient, ApiClientError, token_of
from dashboard.layout import MIN_PASSWORD_LENGTH

# The security API (issue 16): both end every session of the account, this one included.
PASSWORD_PATH = "/api/account/password"  # noqa: S105 - a route, not a secret
SIGN_OUT_EVERYWHERE_PATH = "/auth/logout-all"
KEYS_PATH = "/api/account/exchange-keys"

ENVIRONMENTS = {"paper": ("PAPER", "paper money on the bundled paper exchange"),
                "testnet": ("TESTNET", "test money on the Binance Spot Testnet"),
                "live": ("LIVE", "real money on Binance")}

_api_url = ""
_transport: httpx.BaseTransport | None = None  # tests hand in httpx.MockTransport


def configure(api_url: str, transport: httpx.BaseTransport | None = None) -> None:
    """Tell the callbacks where the server reaches the API."""
    global _api_url, _transport
    _api_url = api_url.rstrip("/")
    _transport = transport


def clicked(*clicks: int | None) -> None:
    """Go on only for a real click. The page container inserts the Account page with its
    buttons at n_clicks=0, and Dash then runs every callback they feed whose output (here:
    the `auth` store) was already on the page, prevent_initial_call or not."""
    if not any(clicks):
        raise dash.exceptions.PreventUpdate


def client(auth: Any) -> ApiClient:
    """An API client with the session's access token."""
    return ApiClient(_api_url, token_of(auth), transport=_transport)


def keys_state(me: dict[str, Any] | None) -> dict[str, Any]:
    """The exchange-keys part of /api/me, whatever optional fields it carries."""
    keys = (me or {}).get("exchangeKeys") or {}
    return keys if isinstance(keys, dict) else {}


def keys_rejected(keys: dict[str, Any]) -> str | None:
    """The exchange's reason when it refused the connected keys (issue 15's keys status)."""
    status = str(keys.get("status") or "").lower()
    if status in ("rejected", "keys_rejected", "invalid") or keys.get("rejected") is True:
        return str(keys.get("reason") or keys.get("rejectReason") or keys.get("message")
                   or "the exchange refused them")
    if status == "wrong_environment":
        return str(keys.get("reason") or "they belong to another exchange environment")
    return None


def badge(me: dict[str, Any] | None) -> tuple[str, str, str]:
    """(text, class, title) of the header badge."""
    keys = keys_state(me)
    env = str(keys.get("environment") or "").lower()
    if not keys.get("connected") or env not in ENVIRONMENTS:
        return "NO KEYS", "env-badge none", "no exchange keys: connect them on the Account page"
    text, title = ENVIRONMENTS[env]
    return text, f"env-badge {env}", title


def balance_source(me: dict[str, Any] | None) -> str:
    """One line under the ticket: where the balance comes from."""
    keys = keys_state(me)
    if not keys.get("connected"):
        return "No exchange keys: connect them on the Account page to see a balance."
    reason = keys_rejected(keys)
    if reason:
        return f"Balance unavailable: the exchange rejected your keys ({reason})."
    env = str(keys.get("environment") or "").lower()
    where = {"paper": "the bundled paper exchange (paper money)",
             "testnet": "the Binance Spot Testnet (test money)",
             "live": "Binance (real money)"}.get(env, env or "the exchange")
    return f"Balance from {where}, key {keys.get('apiKeyHint') or ''}".strip()


@callback(Output(ids.ME_STORE, "data"),
          Input(ids.AUTH, "data"), Input(ids.ME_REFRESH, "data"), Input(ids.PAGE_SHOWN, "data"))
def load_me(auth: Any, _refresh: Any, page: Any) -> Any:
    """Read /api/me when the session starts, when asked, and on the Account page (the page
    shown, not `route`: a symbol switch costs no server call here)."""
    if not token_of(auth):
        return None
    if ctx.triggered_id == ids.PAGE_SHOWN and page != "account":
        raise dash.exceptions.PreventUpdate
    try:
        return client(auth).get("/api/me")
    except ApiClientError:
        raise dash.exceptions.PreventUpdate from None


@callback(Output(ids.ENV_BADGE, "children"), Output(ids.ENV_BADGE, "className"),
          Output(ids.ENV_BADGE, "title"), Output(ids.ENV_BADGE, "style"),
          Output(ids.BALANCE_SOURCE, "children"),
          Input(ids.ME_STORE, "data"))
def show_badge(me: Any) -> tuple[Any, ...]:
    """The header's badge and the balance source under the ticket, from the last /api/me."""
    if not me:
        return "", "env-badge", "", {"display": "none"}, ""
    text, cls, title = badge(me)
    return text, cls, title, {}, balance_source(me)


# Apart from the badge: these outputs are on the Account page, which is mounted only while
# it is shown (Dash's page container); its `mounted` store runs this when it appears.
@callback(Output(ids.ACCOUNT_EMAIL, "children"),
          Output(ids.KEYS_STATUS, "children"), Output(ids.KEYS_SAVE, "children"),
          Output(ids.KEYS_ENV, "value"),
          Input(ids.ME_STORE, "data"), Input(ids.mounted("account"), "data"))
def show_keys(me: Any, _mounted: Any = None) -> tuple[Any, ...]:
    """The account's email and its keys' state, from the last /api/me."""
    if not me:
        return "", "", "Connect keys", dash.no_update
    keys = keys_state(me)
    reason = keys_rejected(keys)
    if not keys.get("connected"):
        status: Any = html.Span("No keys connected.", className="muted")
    elif reason:
        status = html.Span([html.Strong("Keys rejected: "), reason], className="down",
                           id=ids.KEYS_REJECTED)
    else:
        env = str(keys.get("environment") or "")
        where = ENVIRONMENTS.get(env, (env,))[0]
        status = html.Span([html.Strong("Connected: "),
                            f"{keys.get('apiKeyHint') or ''} on {where}"], className="up")
    env = str(keys.get("environment") or "")
    env_value = env if env in ENVIRONMENTS else "paper"
    return (me.get("email", ""), status,
            "Replace keys" if keys.get("connected") else "Connect keys", env_value)


def explain(exc: ApiClientError, what: str) -> str:
    """A user's sentence for an API error on the Account page."""
    if exc.status == 0:
        return "Cannot reach the API; try again in a moment."
    if exc.status in (404, 405):
        return f"{what} is not available on this server yet."
    if exc.code == "exchange_keys_rejected":
        return f"The exchange rejected these keys: {exc.message}"
    if exc.status == 503:
        return f"The exchange cannot be reached to check the keys: {exc.message}"
    return exc.message


@callback(Output(ids.KEYS_MESSAGE, "children"), Output(ids.KEYS_MESSAGE, "className"),
          Output(ids.KEYS_API_KEY, "value"), Output(ids.KEYS_SECRET_KEY, "value"),
          Output(ids.ME_REFRESH, "data", allow_duplicate=True),
          Input(ids.KEYS_SAVE, "n_clicks"), Input(ids.KEYS_REMOVE, "n_clicks"),
          State(ids.KEYS_API_KEY, "value"), State(ids.KEYS_SECRET_KEY, "value"),
          State(ids.KEYS_ENV, "value"), State(ids.AUTH, "data"), prevent_initial_call=True)
def change_keys(_save: int, _remove: int, api_key: str | None, secret: str | None,
                env: str | None, auth: Any) -> tuple[Any, ...]:
    """Connect, replace or remove the account's exchange keys."""
    clicked(_save, _remove)
    keep = dash.no_update
    try:
        if ctx.triggered_id == ids.KEYS_REMOVE:
            client(auth).delete(KEYS_PATH)
            return "Keys removed.", "form-message ok", "", "", _stamp()
        if not (api_key or "").strip() or not (secret or "").strip():
            return ("Enter both the API key and the secret key.", "form-message error", keep,
                    keep, keep)
        client(auth).put(KEYS_PATH, {"apiKey": api_key.strip(),  # type: ignore[union-attr]
                                     "secretKey": secret.strip(),  # type: ignore[union-attr]
                                     "environment": env or "paper"})
    except ApiClientError as exc:
        return explain(exc, "Changing keys"), "form-message error", keep, "", keep
    return "Keys connected.", "form-message ok", "", "", _stamp()


def _stamp() -> float:
    """A new value for `me-refresh`, so /api/me is read again."""
    return time.time()


@callback(Output(ids.PW_MESSAGE, "children"), Output(ids.PW_MESSAGE, "className"),
          Output(ids.AUTH, "data", allow_duplicate=True),
          Output(ids.PW_CURRENT, "value"), Output(ids.PW_NEW, "value"),
          Output(ids.PW_NEW2, "value"),
          Output(ids.LOGIN_NOTICE, "data"),
          Input(ids.PW_CHANGE, "n_clicks"),
          State(ids.PW_CURRENT, "value"), State(ids.PW_NEW, "value"), State(ids.PW_NEW2, "value"),
          State(ids.AUTH, "data"), prevent_initial_call=True)
def change_password(_n: int, current: str | None, new: str | None, again: str | None,
                    auth: Any) -> tuple[Any, ...]:
    """Change the password; the API ends every session, so the page signs out and says so
    on the sign-in page through the `login-notice` store (unless the API hands back a new
    token)."""
    clicked(_n)
    keep = dash.no_update
    if not current or not new:
        return ("Enter the current and the new password.", "form-message error", keep, keep,
                keep, keep, keep)
    if len(new) < MIN_PASSWORD_LENGTH:
        return (f"The new password needs at least {MIN_PASSWORD_LENGTH} characters.",
                "form-message error", keep, keep, keep, keep, keep)
    if new != again:
        return "The new passwords differ.", "form-message error", keep, keep, keep, keep, keep
    try:
        result = client(auth).post(PASSWORD_PATH, {"currentPassword": current,
                                                   "newPassword": new})
    except ApiClientError as exc:
        return explain(exc, "Password change"), "form-message error", keep, "", keep, keep, keep
    if isinstance(result, dict) and result.get("token"):
        return ("Password changed; your other sessions are signed out.", "form-message ok",
                {**(auth or {}), "token": result["token"]}, "", "", "", keep)
    return ("Password changed.", "form-message ok", None, "", "", "",
            "Password changed: every session has ended. Sign in with the new password.")


@callback(Output(ids.SIGNOUT_MESSAGE, "children"), Output(ids.SIGNOUT_MESSAGE, "className"),
          Output(ids.AUTH, "data", allow_duplicate=True),
          Input(ids.SIGNOUT_ALL, "n_clicks"), State(ids.AUTH, "data"), prevent_initial_call=True)
def sign_out_everywhere(_n: int, auth: Any) -> tuple[Any, ...]:
    """End every session of the account, this one included."""
    clicked(_n)
    try:
        client(auth).post(SIGN_OUT_EVERYWHERE_PATH)
    except ApiClientError as exc:
        return explain(exc, "Signing out everywhere"), "form-message error", dash.no_update
    return "Signed out everywhere.", "form-message ok", None
