/* Clientside callbacks (namespace "tl"), keyboard shortcuts, cancel buttons, price alerts
 * and the theme. */
(function () {
  "use strict";
  const TL = window.TL;
  const D = TL.D;
  const h = TL.h;
  const NO = function () { return window.dash_clientside.no_update; };
  const PAGES = ["login", "register", "trade", "analytics", "audit"];
  const PUBLIC = new Set(["login", "register"]);

  function triggered() {
    const ctx = window.dash_clientside.callback_context;
    return ctx && ctx.triggered && ctx.triggered.length ? ctx.triggered[0].prop_id.split(".")[0] : null;
  }
  function errorText(e) {
    if (!(e instanceof TL.ApiError)) return String(e && e.message ? e.message : e);
    const fields = e.details && e.details.fields;
    if (fields && fields.length > 1) {
      return fields.map(function (f) { return (f.field ? f.field + ": " : "") + f.message; }).join("; ");
    }
    return e.message;
  }

  // ---------------------------------------------------------------- theme
  TL.applyTheme = function (theme) {
    document.body.classList.toggle("dark", theme === "dark");
    try { window.localStorage.setItem("tl-theme", theme); } catch (e) { /* private mode */ }
  };
  TL.applyTheme((function () {
    try { return window.localStorage.getItem("tl-theme") || "light"; } catch (e) { return "light"; }
  })());

  // ---------------------------------------------------------------- price alerts
  TL.alerts = {
    key: "tl-alerts",
    list: function () {
      try { return JSON.parse(window.localStorage.getItem(this.key) || "[]"); } catch (e) { return []; }
    },
    save: function (list) {
      window.localStorage.setItem(this.key, JSON.stringify(list));
      TL.setStore("alerts-store", { data: list });
    },
    add: function (symbol, price, current) {
      const p = D.parse(price), c = D.parse(current);
      if (p === null || p <= 0n) throw new Error("enter a price greater than zero");
      const list = this.list();
      list.unshift({
        id: String(Date.now()) + Math.floor(Math.random() * 1000), symbol: symbol, price: String(price).trim(),
        // "crosses": the direction is the side of the price we are not on yet.
        direction: c === null || p >= c ? "above" : "below", createdAt: new Date().toISOString(),
        firedAt: null,
      });
      this.save(list);
    },
    remove: function (id) { this.save(this.list().filter(function (a) { return a.id !== id; })); },
    check: function (symbol, price) {
      const v = D.parse(price);
      if (v === null) return;
      let changed = false;
      const list = this.list();
      list.forEach(function (a) {
        if (a.firedAt || a.symbol !== symbol) return;
        const p = D.parse(a.price);
        if ((a.direction === "above" && v >= p) || (a.direction === "below" && v <= p)) {
          a.firedAt = new Date().toISOString();
          a.firedPrice = String(price);
          changed = true;
          TL.toast("Price alert", symbol + " crossed " + a.price + " (now " + price + ")", "info");
        }
      });
      if (changed) this.save(list);
    },
  };
  // Alerts on symbols other than the one on screen are checked from the ticker.
  setInterval(function () {
    const pending = TL.alerts.list().filter(function (a) { return !a.firedAt && a.symbol !== TL.market.symbol; });
    const symbols = Array.from(new Set(pending.map(function (a) { return a.symbol; })));
    symbols.forEach(function (s) {
      TL.api("/api/market/" + s + "/ticker", { auth: !!TL.getSession() }).then(function (t) {
        TL.alerts.check(s, t.price || t.lastPrice);
      }).catch(function () { /* try again later */ });
    });
  }, 5000);
  // A fire in another tab shows up here too.
  window.addEventListener("storage", function (ev) {
    if (ev.key === TL.alerts.key) TL.setStore("alerts-store", { data: TL.alerts.list() });
  });

  // ---------------------------------------------------------------- cancel buttons, keys
  document.addEventListener("click", function (ev) {
    const btn = ev.target.closest ? ev.target.closest("[data-cancel-order]") : null;
    if (btn) {
      const id = btn.getAttribute("data-cancel-order");
      btn.disabled = true;
      btn.textContent = "Canceling…";
      TL.api("/api/trading/orders/" + id, { method: "DELETE" }).catch(function (e) {
        btn.disabled = false;
        btn.textContent = "Cancel";
        TL.toast("Cancel refused", errorText(e), "error");
      });
      return;
    }
    const pct = ev.target.closest ? ev.target.closest("[data-pct]") : null;
    if (pct) {
      window.dash_clientside.set_props("ticket-pct", { value: Number(pct.getAttribute("data-pct")) });
      return;
    }
    const rm = ev.target.closest ? ev.target.closest("[data-remove-alert]") : null;
    if (rm) TL.alerts.remove(rm.getAttribute("data-remove-alert"));
  });

  function typing(el) {
    if (!el) return false;
    const tag = (el.tagName || "").toUpperCase();
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }
  function click(id) { const el = document.getElementById(id); if (el) el.click(); }
  const TF = ["1m", "5m", "1h", "1d", "1w"];
  document.addEventListener("keydown", function (ev) {
    const page = TL.route && TL.route.page;
    if (page !== "trade" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    // Shift+Enter places the order even from the quantity field; nothing else fires while typing.
    if (ev.key === "Enter" && ev.shiftKey) { ev.preventDefault(); click("place-btn"); return; }
    if (typing(ev.target)) return;
    const k = ev.key.toLowerCase();
    if (k === "b") click("side-buy");
    else if (k === "s") click("side-sell");
    else if (k === "m") click("type-market");
    else if (k === "l") click("type-limit");
    else if (k === "q") { ev.preventDefault(); const q = document.getElementById("ticket-qty"); if (q) q.focus(); }
    else if (/^[1-5]$/.test(k)) click("tf-" + TF[Number(k) - 1]);
  });

  // ---------------------------------------------------------------- table renderers
  function cls(s) { return "status status-" + String(s || "").toLowerCase(); }
  // Without dp: the exact value, trailing zeros dropped ("0.00100000" -> "0.001").
  function num(v, dp) {
    if (v === null || v === undefined || v === "") return "—";
    if (dp !== undefined) return D.fixed(v, dp);
    const x = D.parse(v);
    return x === null ? String(v) : D.format(x);
  }
  function pnlCell(v) {
    const x = D.parse(v);
    const c = x === null ? "" : x > 0n ? "up" : x < 0n ? "down" : "";
    return h("Td", { className: "mono " + c }, num(v, 2));
  }
  function table(headers, rows, empty) {
    if (!rows.length) return h("Div", { className: "empty" }, empty);
    return h("Table", { className: "data-table" }, [
      h("Thead", {}, h("Tr", {}, headers.map(function (x) { return h("Th", {}, x); }))),
      h("Tbody", {}, rows),
    ]);
  }

  // ---------------------------------------------------------------- callbacks
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    tl: {
      init: function (config) {
        if (config && config.apiUrl) TL.apiUrl = config.apiUrl;
        TL.loadSymbols();
        TL.setStore("alerts-store", { data: TL.alerts.list() });
        return NO();
      },

      // Route: which page shows, which symbol; logged-out visitors go to /login.
      route: function (pathname, auth) {
        const parts = (pathname || "/").split("/").filter(Boolean);
        let page = parts[0] || "trade";
        if (PAGES.indexOf(page) < 0) page = "trade";
        const loggedIn = !!(auth && auth.token);
        let redirect = NO();
        if (!loggedIn && !PUBLIC.has(page)) { page = "login"; redirect = "/login"; }
        else if (loggedIn && PUBLIC.has(page)) { page = "trade"; redirect = "/trade/" + ((TL.route && TL.route.symbol) || "BTCUSDT"); }
        let symbol = (TL.route && TL.route.symbol) || "BTCUSDT";
        if (page === "trade" && parts[1]) symbol = parts[1].toUpperCase();
        TL.route = { page: page, symbol: symbol };
        if (page === "audit" && parts[1]) TL.route.orderId = parts[1];
        const styles = PAGES.map(function (p) { return { display: p === page ? "" : "none" }; });
        const navCls = ["trade", "analytics", "audit"].map(function (p) { return "nav-link" + (p === page ? " active" : ""); });
        return [TL.route, redirect].concat(styles, navCls, [{ display: loggedIn ? "" : "none" }]);
      },

      // Session on/off: open or close the user stream.
      session: function (auth) {
        if (auth && auth.token) {
          TL.session = auth;
          TL.scheduleRefresh();
          TL.startAccount();
          TL.loadSymbols();
          return [auth.user && auth.user.email ? auth.user.email : "", { display: "" }];
        }
        TL.session = null;
        TL.stopAccount();
        return ["", { display: "none" }];
      },

      // Symbol chosen in the dropdown: a history push to /trade/SYMBOL (no reload).
      symbolPicked: function (value) {
        if (!value || !TL.route || TL.route.page !== "trade" || value === TL.route.symbol) return NO();
        return "/trade/" + value;
      },

      // The trade page's symbol and chart settings drive the chart and the ticket labels.
      tradeView: function (route, settings) {
        if (!route || route.page !== "trade") { TL.chart.stop(); return [NO(), NO(), NO(), NO(), NO(), NO(), NO()]; }
        const s = settings || { interval: "1m", indicators: [] };
        TL.chart.configure(route.symbol, s.interval || "1m", s.indicators || []);
        const tfCls = ["1m", "5m", "1h", "1d", "1w"].map(function (tf) { return "tf-btn" + (tf === s.interval ? " active" : ""); });
        return [route.symbol, route.symbol].concat(tfCls);
      },

      // Held in JS for the same reason as the ticket; the stored value seeds it once.
      chartSettings: function () {
        const settings = (TL.chartSettings = TL.chartSettings ||
          Object.assign({ interval: "1m", indicators: [] }, arguments[6] || {}));
        const ctx = window.dash_clientside.callback_context;
        ((ctx && ctx.triggered) || []).forEach(function (tr) {
          const t = tr.prop_id.split(".")[0];
          if (t.indexOf("tf-") === 0 && tr.value) settings.interval = t.slice(3);
        });
        settings.indicators = arguments[5] || [];
        return Object.assign({}, settings);
      },

      // The ticket's state lives in JS, not in the store's State: two quick shortcut presses
      // would otherwise both start from the same stale state and the second would undo the first.
      ticketState: function () {
        const st = (TL.ticket = TL.ticket || { side: "BUY", type: "MARKET", qtyMode: "amount" });
        const ctx = window.dash_clientside.callback_context;
        ((ctx && ctx.triggered) || []).forEach(function (tr) {
          const t = tr.prop_id.split(".")[0];
          if (!tr.value) return;
          if (t === "side-buy") st.side = "BUY";
          if (t === "side-sell") st.side = "SELL";
          if (t === "type-market") st.type = "MARKET";
          if (t === "type-limit") st.type = "LIMIT";
          if (t === "qty-mode-amount") st.qtyMode = "amount";
          if (t === "qty-mode-pct") st.qtyMode = "percent";
        });
        return Object.assign({}, st);
      },

      ticketView: function (st, route) {
        const sym = (route && route.symbol) || "";
        const buy = st.side === "BUY";
        return [
          "seg-btn buy" + (buy ? " active" : ""), "seg-btn sell" + (!buy ? " active" : ""),
          "seg-btn" + (st.type === "MARKET" ? " active" : ""), "seg-btn" + (st.type === "LIMIT" ? " active" : ""),
          "seg-btn small" + (st.qtyMode === "amount" ? " active" : ""), "seg-btn small" + (st.qtyMode === "percent" ? " active" : ""),
          { display: st.type === "LIMIT" ? "" : "none" }, { display: st.qtyMode === "percent" ? "" : "none" },
          (buy ? "Buy " : "Sell ") + sym, "btn wide " + (buy ? "buy" : "sell"),
        ];
      },

      // % of the available balance -> a quantity on the symbol's step (decimal maths).
      pctToQty: function (pct, st, price, market) {
        if (!st || st.qtyMode !== "percent" || pct === null || pct === undefined) return NO();
        const m = market || {};
        const rules = m.rules || {};
        const bal = m.balances || {};
        const px = D.parse(st.type === "LIMIT" && price ? price : m.price);
        const step = D.parse(rules.stepSize || "0.00001");
        let qty;
        if (st.side === "BUY") {
          const free = D.parse((bal[rules.quoteAsset || "USDT"] || {}).free || "0");
          if (!px || px <= 0n) return NO();
          qty = D.div(D.mul(free, D.parse(String(pct))) / 100n, px);
        } else {
          const free = D.parse((bal[rules.baseAsset] || {}).free || "0");
          qty = D.mul(free, D.parse(String(pct))) / 100n;
        }
        qty = D.floorTo(qty, step);
        return qty > 0n ? D.format(qty, D.decimals(rules.stepSize || "0.00001")) : "";
      },

      ticketNumbers: function (qty, price, st, market) {
        const m = market || {};
        const rules = m.rules || {};
        const bal = m.balances || {};
        const asset = st.side === "BUY" ? (rules.quoteAsset || "USDT") : rules.baseAsset;
        let avail = "—";
        if (m.balancesError) avail = "unavailable";
        else if (bal[asset]) avail = D.fixed(bal[asset].free, st.side === "BUY" ? 2 : D.decimals(rules.stepSize || "0.00001")) + " " + asset;
        else if (asset && Object.keys(bal).length) avail = "0 " + asset;
        const q = D.parse(qty);
        const p = D.parse(st.type === "LIMIT" ? price : m.price);
        let total = "—";
        if (q !== null && p !== null && q > 0n && p > 0n) {
          total = (st.type === "MARKET" ? "≈ " : "") + D.fixed(D.format(D.mul(q, p)), 2) + " " + (rules.quoteAsset || "USDT");
        }
        return [avail, total];
      },

      placeOrder: async function (n, st, qty, price, route) {
        if (!n) return [NO(), NO()];
        const body = {
          symbol: route.symbol, side: st.side, type: st.type, quantity: String(qty || "").trim(),
          clientOrderId: "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 8),
        };
        if (st.type === "LIMIT") { body.price = String(price || "").trim(); body.timeInForce = "GTC"; }
        if (!body.quantity) return ["Enter a quantity.", "form-message error"];
        if (st.type === "LIMIT" && !body.price) return ["Enter a limit price.", "form-message error"];
        try {
          const res = await TL.api("/api/trading/orders", { method: "POST", body: body });
          TL.loadBalances();
          return [st.side + " " + body.quantity + " " + body.symbol + " accepted (" + (res.status || "PENDING") + ")", "form-message ok"];
        } catch (e) {
          return [errorText(e), "form-message error"];
        }
      },

      login: async function (n, nSubmit, email, password) {
        if (!n && !nSubmit) return [NO(), NO()];
        if (!email || !password) return [NO(), "Enter your email and password."];
        try {
          const data = await TL.api("/auth/login", { method: "POST", body: { email: email, password: password }, auth: false, credentials: "include" });
          return [TL.normaliseAuth(data), ""];
        } catch (e) {
          return [NO(), errorText(e)];
        }
      },

      register: async function (n, email, password, apiKey, secretKey) {
        if (!n) return [NO(), NO()];
        if (!email || !password) return [NO(), "Enter an email and a password."];
        const body = { email: email, password: password };
        if (apiKey || secretKey) { body.binanceApiKey = apiKey || ""; body.binanceSecretKey = secretKey || ""; }
        try {
          const data = await TL.api("/auth/register", { method: "POST", body: body, auth: false, credentials: "include" });
          return [TL.normaliseAuth(data), ""];
        } catch (e) {
          return [NO(), errorText(e)];
        }
      },

      logout: function (n) {
        if (!n) return NO();
        const s = TL.getSession();
        if (s) {
          TL.api("/auth/logout", { method: "POST", body: {}, credentials: "include", retry: false }).catch(function () { /* best effort */ });
        }
        return null;
      },

      theme: function (n) {
        const dark = document.body.classList.contains("dark");
        if (n) TL.applyTheme(dark ? "light" : "dark");
        const nowDark = document.body.classList.contains("dark");
        if (n && TL.chart.symbol) TL.chart.render();
        return nowDark ? "☀" : "☾";
      },

      ordersTable: function (list) {
        const rows = (list || []).map(function (o) {
          const dp = TL.priceDp(o.symbol);
          const open = TL.isOpen(o) && String(o.status).toUpperCase() !== "CANCEL_REQUESTED";
          return h("Tr", { id: "order-" + o.orderId, className: "row-" + String(o.status).toLowerCase() }, [
            h("Td", {}, TL.fmtTime(o.createdAt)),
            h("Td", {}, o.symbol),
            h("Td", { className: String(o.side).toUpperCase() === "BUY" ? "up" : "down" }, o.side),
            h("Td", {}, o.type),
            h("Td", { className: "mono" }, o.price ? num(o.price, dp) : "market"),
            h("Td", { className: "mono" }, num(o.quantity)),
            h("Td", { className: "mono" }, num(o.filledQuantity)),
            h("Td", { className: "mono" }, o.averagePrice ? num(o.averagePrice, dp) : "—"),
            h("Td", {}, h("Span", { className: cls(o.status) + (o.outcome === "UNKNOWN" ? " status-unknown" : ""),
                                    title: o.statusDetail || o.rejectReason || "" },
                          o.outcome === "UNKNOWN" ? o.status + " · outcome unknown, checking" : o.status)),
            h("Td", { className: "mono" }, o.fillLatencyMs !== null && o.fillLatencyMs !== undefined ? o.fillLatencyMs + " ms" : "—"),
            h("Td", {}, open ? h("Button", { className: "btn tiny cancel-btn", "data-cancel-order": o.orderId }, "Cancel") : ""),
          ]);
        });
        return table(["Time", "Symbol", "Side", "Type", "Price", "Qty", "Filled", "Avg price", "Status", "Latency", ""], rows, "No orders yet.");
      },

      tradesTable: function (list) {
        const rows = (list || []).map(function (t) {
          const dp = TL.priceDp(t.symbol);
          return h("Tr", { id: "trade-" + t.tradeId }, [
            h("Td", {}, TL.fmtTime(t.time)),
            h("Td", {}, t.symbol),
            h("Td", { className: String(t.side).toUpperCase() === "BUY" ? "up" : "down" }, t.side),
            h("Td", { className: "mono" }, num(t.price, dp)),
            h("Td", { className: "mono" }, num(t.quantity)),
            h("Td", { className: "mono" }, num(t.quoteQuantity, 2)),
            h("Td", { className: "mono" }, num(t.commission) + " " + (t.commissionAsset || "")),
            h("Td", {}, t.isMaker ? "maker" : "taker"),
          ]);
        });
        return table(["Time", "Symbol", "Side", "Price", "Qty", "Total", "Fee", "Role"], rows, "No trades yet.");
      },

      positionsTable: function (list) {
        const rows = (list || []).filter(function (p) { return D.parse(p.quantity) !== 0n || D.parse(p.realizedPnl) !== 0n; }).map(function (p) {
          const dp = TL.priceDp(p.symbol);
          return h("Tr", { id: "position-" + p.symbol }, [
            h("Td", {}, p.symbol),
            h("Td", { className: "mono" }, num(p.quantity)),
            h("Td", { className: "mono" }, num(p.averageEntryPrice, dp)),
            h("Td", { className: "mono" }, p.markPrice ? num(p.markPrice, dp) : "—"),
            pnlCell(p.unrealizedPnl),
            pnlCell(p.realizedPnl),
            h("Td", { className: "mono" }, num(p.fees)),
          ]);
        });
        return table(["Symbol", "Size", "Entry", "Mark", "Unrealized PnL", "Realized PnL", "Fees"], rows, "No positions yet.");
      },

      addAlert: function (n, price, route) {
        if (!n) return [NO(), NO()];
        try {
          TL.alerts.add((route && route.symbol) || "BTCUSDT", price, TL.market.price);
          return ["", ""];
        } catch (e) {
          return [NO(), e.message];
        }
      },

      alertsList: function (list) {
        return (list || []).map(function (a) {
          return h("Li", { className: "alert-item" + (a.firedAt ? " fired" : "") }, [
            h("Span", {}, a.symbol + " " + (a.direction === "above" ? "≥ " : "≤ ") + a.price),
            h("Span", { className: "muted" }, a.firedAt ? "fired " + TL.fmtTime(a.firedAt) : "set " + TL.fmtTime(a.createdAt)),
            h("Button", { className: "btn tiny", "data-remove-alert": a.id, title: "Remove" }, "×"),
          ]);
        });
      },
    },
  });
})();
