"""The sign-in page (`/login`)."""

from __future__ import annotations

from typing import Any

import dash
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html

from dashboard import ids
from dashboard.api_client import token_of
from dashboard.layout import field


def layout(**_path: str) -> html.Div:
    """The page's component tree."""
    return html.Div(id=ids.page("login"), className="page auth-page",
                    children=[dcc.Store(id=ids.mounted("login"), data=True),
                              html.Div(className="auth-card", children=[
                        html.H2("Sign in"),
                        field("Email", dcc.Input(id=ids.LOGIN_EMAIL, type="email",
                                                  autoComplete="username", debounce=False)),
                        field("Password", dcc.Input(id=ids.LOGIN_PASSWORD, type="password",
                                                     autoComplete="current-password")),
                        html.Button("Sign in", id=ids.LOGIN_BTN, className="btn primary wide",
                                    n_clicks=0),
                        html.Div(id=ids.LOGIN_ERROR, className="form-error"),
                        html.P(["No account? ", dcc.Link("Register", href="/register",
                                                         id=ids.TO_REGISTER)]),
                    ])])


# In the browser: the refresh token is an HttpOnly cookie of the API (assets/05-session.js).
clientside_callback(ClientsideFunction("session", "login"),
                    Output(ids.AUTH, "data", allow_duplicate=True),
                    Output(ids.LOGIN_ERROR, "children"),
                    Input(ids.LOGIN_BTN, "n_clicks"), Input(ids.LOGIN_PASSWORD, "n_submit"),
                    State(ids.LOGIN_EMAIL, "value"), State(ids.LOGIN_PASSWORD, "value"),
                    prevent_initial_call=True)


@callback(Output(ids.LOGIN_ERROR, "children", allow_duplicate=True),
          Input(ids.LOGIN_NOTICE, "data"), Input(ids.mounted("login"), "data"),
          prevent_initial_call="initial_duplicate")
def show_notice(notice: str | None, _mounted: Any = None) -> str:
    """Say why the visitor is here (the password changed and every session ended)."""
    return notice or ""


@callback(Output(ids.LOGIN_NOTICE, "data", allow_duplicate=True),
          Input(ids.AUTH, "data"), State(ids.LOGIN_NOTICE, "data"), prevent_initial_call=True)
def forget_notice(auth: Any, notice: str | None) -> None:
    """Signed in again: the notice has been read."""
    if not notice or token_of(auth) is None:
        raise dash.exceptions.PreventUpdate
    return None


dash.register_page(__name__, path="/login", name="Sign in",
                   title="Sign in · TradeLedger", layout=layout)
