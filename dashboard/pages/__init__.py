"""The dashboard's pages, one `dash.register_page` module each; `dashboard.app` imports them
once its Dash app exists (Dash requires it), and Dash's page container draws them."""

PAGE_MODULES = ("login", "register", "trade", "history", "analytics", "audit", "account")
