"""The registration page (`/register`), with optional Binance Testnet keys."""

from __future__ import annotations

import dash
from dash import ClientsideFunction, Input, Output, State, clientside_callback, dcc, html

from dashboard import ids
from dashboard.layout import MIN_PASSWORD_LENGTH, field


def layout(**_path: str) -> html.Div:
    """The page's component tree."""
    return html.Div(id=ids.page("register"), className="page auth-page",
                    children=[html.Div(className="auth-card", children=[
                        html.H2("Create an account"),
                        field("Email", dcc.Input(id=ids.REG_EMAIL, type="email",
                                                  autoComplete="username")),
                        field("Password", dcc.Input(id=ids.REG_PASSWORD, type="password",
                                                     autoComplete="new-password"),
                               f"at least {MIN_PASSWORD_LENGTH} characters"),
                        html.Details(className="keys-box", children=[
                            html.Summary("Binance Testnet keys (optional)"),
                            field("API key", dcc.Input(id=ids.REG_API_KEY, type="text",
                                                        autoComplete="off")),
                            field("Secret key", dcc.Input(id=ids.REG_SECRET_KEY, type="password",
                                                           autoComplete="off")),
                            html.P("Stored encrypted; never shown again. Without keys you trade "
                                   "on the bundled paper exchange.", className="field-hint"),
                        ]),
                        html.Button("Register", id=ids.REGISTER_BTN, className="btn primary wide",
                                    n_clicks=0),
                        html.Div(id=ids.REGISTER_ERROR, className="form-error"),
                        html.P(["Have an account? ", dcc.Link("Sign in", href="/login",
                                                              id=ids.TO_LOGIN)]),
                    ])])


# In the browser: the refresh token is an HttpOnly cookie of the API (assets/05-session.js).
clientside_callback(ClientsideFunction("session", "register"),
                    Output(ids.AUTH, "data", allow_duplicate=True),
                    Output(ids.REGISTER_ERROR, "children"),
                    Input(ids.REGISTER_BTN, "n_clicks"), State(ids.REG_EMAIL, "value"),
                    State(ids.REG_PASSWORD, "value"), State(ids.REG_API_KEY, "value"),
                    State(ids.REG_SECRET_KEY, "value"), prevent_initial_call=True)


dash.register_page(__name__, path="/register", name="Create an account",
                   title="Create an account · TradeLedger", layout=layout)
