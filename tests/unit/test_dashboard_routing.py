"""The URL decides the page; the session decides whether it may be shown (dashboard/routing.py)."""

from __future__ import annotations

from dashboard.routing import Route, resolve, toggle_menu


def test_a_signed_out_visitor_is_sent_to_login_from_any_private_page() -> None:
    for path in ("/", "/trade/ETHUSDT", "/analytics", "/audit/abc", "/account", "/nowhere"):
        assert resolve(path, signed_in=False).redirect == "/login"
    assert resolve("/register", signed_in=False) == Route("register", "BTCUSDT")
    assert resolve("/login", signed_in=False) == Route("login", "BTCUSDT")


def test_a_signed_in_trader_skips_the_sign_in_pages_for_the_desk_of_the_last_symbol() -> None:
    route = resolve("/login", signed_in=True, last_symbol="SOLUSDT")
    assert route.page == "trade" and route.redirect == "/trade/SOLUSDT"
    assert resolve("/", signed_in=True).redirect == "/trade/BTCUSDT"
    assert resolve("/nowhere", signed_in=True).redirect == "/trade/BTCUSDT"


def test_the_symbol_and_the_audited_order_come_from_the_path() -> None:
    assert resolve("/trade/ethusdt", signed_in=True) == Route("trade", "ETHUSDT")
    assert resolve("/trade", signed_in=True, last_symbol="ETHUSDT") == Route("trade", "ETHUSDT")
    audit = resolve("/audit/0b7f", signed_in=True, last_symbol="ETHUSDT")
    assert audit.store() == {"page": "audit", "symbol": "ETHUSDT", "orderId": "0b7f"}
    assert resolve("/analytics", signed_in=True).store() == {"page": "analytics",
                                                             "symbol": "BTCUSDT"}


def test_the_menu_button_opens_and_closes_the_nav() -> None:
    assert toggle_menu(1, "nav") == "nav open"
    assert toggle_menu(2, "nav open") == "nav"
