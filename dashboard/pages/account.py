"""The Account page (`/account`): keys, password, sessions (dashboard/account_view.py)."""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboard import ids
from dashboard.layout import MIN_PASSWORD_LENGTH, field


def layout(**_path: str) -> html.Div:
    """Exchange keys, password, sessions: drawn and driven by dashboard/account_view.py."""
    env_options = [{"label": "Paper exchange (bundled)", "value": "paper"},
                   {"label": "Binance Spot Testnet", "value": "testnet"},
                   {"label": "Binance live", "value": "live"}]
    return html.Div(id=ids.page("account"), className="page account-page",
                    children=[
        dcc.Store(id=ids.mounted("account"), data=True),
        html.Div(className="page-title", children=[html.H2("Account"),
                                                   html.Span(id=ids.ACCOUNT_EMAIL,
                                                             className="muted")]),
        html.Div(className="account-grid", children=[
            html.Div(className="panel", id=ids.KEYS_PANEL, children=[
                html.H4("Exchange keys"),
                html.Div(id=ids.KEYS_STATUS, className="keys-status"),
                field("API key", dcc.Input(id=ids.KEYS_API_KEY, type="text",
                                            autoComplete="off")),
                field("Secret key", dcc.Input(id=ids.KEYS_SECRET_KEY, type="password",
                                               autoComplete="off")),
                field("Environment", dcc.Dropdown(id=ids.KEYS_ENV, options=env_options,
                                                   value="paper", clearable=False)),
                html.Div(className="button-row", children=[
                    html.Button("Connect keys", id=ids.KEYS_SAVE, className="btn primary",
                                n_clicks=0),
                    html.Button("Remove keys", id=ids.KEYS_REMOVE, className="btn", n_clicks=0),
                ]),
                html.Div(id=ids.KEYS_MESSAGE, className="form-message", role="status"),
                html.P("Keys are checked with the exchange, then stored encrypted; they are "
                       "never shown again.", className="field-hint"),
            ]),
            html.Div(className="panel", id=ids.PASSWORD_PANEL, children=[
                html.H4("Password"),
                field("Current password", dcc.Input(id=ids.PW_CURRENT, type="password",
                                                     autoComplete="current-password")),
                field("New password", dcc.Input(id=ids.PW_NEW, type="password",
                                                 autoComplete="new-password"),
                       f"at least {MIN_PASSWORD_LENGTH} characters"),
                field("Repeat the new password", dcc.Input(id=ids.PW_NEW2, type="password",
                                                            autoComplete="new-password")),
                html.Button("Change password", id=ids.PW_CHANGE, className="btn primary",
                            n_clicks=0),
                html.Div(id=ids.PW_MESSAGE, className="form-message", role="status"),
                html.P("Changing the password signs out every other session.",
                       className="field-hint"),
            ]),
            html.Div(className="panel", id=ids.SESSIONS_PANEL, children=[
                html.H4("Sessions"),
                html.P("Signed in somewhere you no longer use? End every session, this one "
                       "included.", className="muted"),
                html.Button("Sign out everywhere", id=ids.SIGNOUT_ALL, className="btn sell",
                            n_clicks=0),
                html.Div(id=ids.SIGNOUT_MESSAGE, className="form-message", role="status"),
            ]),
        ]),
    ])


dash.register_page(__name__, path="/account", name="Account",
                   title="Account · TradeLedger", layout=layout)
