"""The Account page's server callbacks against a fake HTTP transport: what the user reads
when the API refuses keys, or does not offer an endpoint yet."""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from dashboard import account_view

AUTH = {"token": "access-token"}


@pytest.fixture
def api() -> Iterator[list[httpx.Request]]:
    """Route the callbacks' requests to `answer` and record them."""
    seen: list[httpx.Request] = []
    yield seen
    account_view.configure("")


def serve(seen: list[httpx.Request], answer: Callable[[httpx.Request], httpx.Response]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    account_view.configure("http://api.test", httpx.MockTransport(handler))


def triggered(component: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call a callback as Dash would after a click on `component`."""
    def run() -> Any:
        context_value.set(AttributeDict(
            triggered_inputs=[{"prop_id": f"{component}.n_clicks", "value": 1}]))
        return fn(*args)

    return contextvars.copy_context().run(run)


def error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


def test_rejected_keys_show_the_exchanges_verdict_and_nothing_is_kept(
        api: list[httpx.Request]) -> None:
    serve(api, lambda r: error(422, "exchange_keys_rejected",
                               "Invalid API-key, IP, or permissions for action."))
    message, cls, _key, secret, _ = triggered("keys-save", account_view.change_keys, 1, 0,
                                             "abc", "def", "testnet", AUTH)
    assert message == ("The exchange rejected these keys: Invalid API-key, IP, or "
                       "permissions for action.")
    assert "error" in cls and secret == ""
    sent = json.loads(api[0].content)
    assert api[0].method == "PUT" and sent["environment"] == "testnet"
    assert api[0].headers["Authorization"] == "Bearer access-token"


def test_unreachable_exchange_and_missing_endpoints_are_explained(
        api: list[httpx.Request]) -> None:
    serve(api, lambda r: error(503, "exchange_unavailable", "Binance did not answer"))
    message = triggered("keys-save", account_view.change_keys, 1, 0, "a", "b", "paper", AUTH)[0]
    assert message.startswith("The exchange cannot be reached")
    serve(api, lambda r: httpx.Response(404, json={"detail": "Not Found"}))
    message = triggered("pw-change", account_view.change_password, 1, "old password!",
                        "a new long password", "a new long password", AUTH)[0]
    assert message == "Password change is not available on this server yet."
    result = triggered("signout-all", account_view.sign_out_everywhere, 1, AUTH)
    assert "not available" in result[0] and result[2] is not None  # still signed in


def test_password_change_checks_locally_then_adopts_new_tokens(
        api: list[httpx.Request]) -> None:
    serve(api, lambda r: httpx.Response(200, json={"token": "new"}))
    short = triggered("pw-change", account_view.change_password, 1, "old", "short", "short",
                      AUTH)
    assert "10 characters" in short[0] and not api
    differ = triggered("pw-change", account_view.change_password, 1, "old",
                       "long enough one", "long enough two", AUTH)
    assert differ[0] == "The new passwords differ." and not api
    done = triggered("pw-change", account_view.change_password, 1, "old",
                     "long enough one", "long enough one", AUTH)
    assert done[2] == {"token": "new"}  # the refresh token stays in its HttpOnly cookie
    assert json.loads(api[0].content) == {"currentPassword": "old",
                                          "newPassword": "long enough one"}


def test_a_password_change_that_ends_every_session_signs_the_page_out(
        api: list[httpx.Request]) -> None:
    serve(api, lambda r: httpx.Response(204))
    done = triggered("pw-change", account_view.change_password, 1, "old",
                     "long enough one", "long enough one", AUTH)
    assert done[2] is None and "Sign in with the new password" in done[6]


def test_badge_and_balance_source_follow_the_keys() -> None:
    paper = {"exchangeKeys": {"connected": True, "environment": "paper",
                              "apiKeyHint": "ab**cd"}}
    assert account_view.badge(paper)[0] == "PAPER"
    assert "paper money" in account_view.balance_source(paper)
    assert account_view.badge({"exchangeKeys": {"connected": False}})[0] == "NO KEYS"
    rejected = {"exchangeKeys": {"connected": True, "environment": "testnet",
                                 "status": "rejected", "reason": "Invalid API-key"}}
    assert "rejected your keys (Invalid API-key)" in account_view.balance_source(rejected)


def test_buttons_inserted_with_the_page_do_nothing_until_clicked(
        api: list[httpx.Request]) -> None:
    """The page container inserts the Account page with every n_clicks at 0, and Dash runs
    the callbacks those buttons feed; none may sign out, change or remove anything."""
    import dash

    serve(api, lambda r: httpx.Response(204))
    for component, fn, args in (
            ("signout-all", account_view.sign_out_everywhere, (0, AUTH)),
            ("pw-change", account_view.change_password, (0, "old", "long enough one",
                                                         "long enough one", AUTH)),
            ("keys-remove", account_view.change_keys, (0, 0, "a", "b", "paper", AUTH))):
        with pytest.raises(dash.exceptions.PreventUpdate):
            triggered(component, fn, *args)
    assert api == []
