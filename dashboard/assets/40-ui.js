/* Clientside callbacks (namespace "tl"), keyboard shortcuts, cancel buttons, price alerts
 * and the theme. */
(function () {
  "use strict";
  const TL = window.TL;
  const D = TL.D;
  const NO = function () { return window.dash_clientside.no_update; };

  function triggered() {
    const ctx = window.dash_clientside.callback_context;
    return ctx && ctx.triggered && ctx.triggered.length ? ctx.triggered[0].prop_id.split(".")[0] : null;
  }
  /* The API's messages speak to programs ("must be a decimal number (a JSON number or a
   * string)", "0.9606895000000 USDT"): say the same to a trader, numbers trimmed. */
  function friendly(message) {
    let m = String(message || "");
    if (/decimal number|finite number/.test(m)) return "Enter a number, like 0.001.";
    m = m.replace(/^(quantity|price): /, "");
    m = m.replace(/(\d+\.\d*?[1-9])0+\b/g, "$1").replace(/(\d+)\.0+\b/g, "$1");
    m = m.replace(/(\d+\.\d{2})\d+ (USDT|USDC|FDUSD|BUSD)/g, "$1 $2");
    return m.charAt(0).toUpperCase() + m.slice(1);
  }
  TL.friendly = friendly;
  function errorText(e) {
    if (!(e instanceof TL.ApiError)) return String(e && e.message ? e.message : e);
    if (e.code === "network") return "Cannot reach the API; your order was not sent.";
    const fields = e.details && e.details.fields;
    if (fields && fields.length > 1) {
      return fields.map(function (f) { return (f.field ? f.field + ": " : "") + friendly(f.message); }).join("; ");
    }
    return friendly(e.message);
  }
  TL.errorText = errorText;
  // Which ticket field an API error is about ("quantity", "price"), if any.
  function errorField(e) {
    const d = (e && e.details) || {};
    if (d.field) return d.field;
    if (d.fields && d.fields.length === 1) return d.fields[0].field;
    return null;
  }

  // ---------------------------------------------------------------- the ticket's message
  /* The message follows the order it announced: sent -> on the book / filled / rejected
   * (with the exchange's reason), so it never stays "sent" after the outcome. */
  TL.ticketOrder = null;
  function showTicket(text, kind) {
    TL.setStore("ticket-message", { children: text, className: "form-message " + kind });
  }
  TL.onOrderUpdate = function (o) {
    const t = TL.ticketOrder;
    if (!t || !o || o.orderId !== t.orderId) return;
    const what = o.side + " " + o.quantity + " " + o.symbol;
    const st = String(o.status || "").toUpperCase();
    const dp = TL.priceDp(o.symbol);
    if (st === "FILLED") showTicket(what + " filled" + (o.averagePrice ? " at " + D.fixed(o.averagePrice, dp) : ""), "ok");
    else if (st === "PARTIALLY_FILLED") showTicket(what + " partly filled", "ok");
    else if (st === "NEW" || st === "ACCEPTED") showTicket(what + " is on the book at " + D.fixed(o.price, dp), "ok");
    else if (st === "REJECTED") showTicket("Rejected: " + friendly(o.rejectReason || o.rejectCode || "the exchange refused the order"), "error");
    else if (st === "CANCELED" || st === "EXPIRED") showTicket(what + " " + st.toLowerCase(), "pending");
    else if (st === "SUBMITTED") showTicket(what + " sent to the exchange…", "pending");
  };
  // A "cannot reach the API" message goes once the API answers again (stream or request).
  TL.onLive = TL.onReachable = function () {
    if (TL.ticketNetworkError) { TL.ticketNetworkError = false; showTicket("", ""); }
  };

  // ---------------------------------------------------------------- theme
  TL.applyTheme = function (theme) {
    document.body.classList.toggle("dark", theme === "dark");
    try { window.localStorage.setItem("tl-theme", theme); } catch (e) { /* private mode */ }
  };
  TL.applyTheme((function () {
    try { return window.localStorage.getItem("tl-theme") || "light"; } catch (e) { return "light"; }
  })());

  // ---------------------------------------------------------------- price alerts
  // Alerts live on the server (dashboard/alerts_view.py); the stream says when one fires.
  TL.onAlert = function (a) {
    const dp = TL.priceDp(a.symbol);
    TL.toast("Price alert", a.symbol + " crossed " + D.fixed(a.price, dp) + " (now " + D.fixed(a.firedPrice, dp) + ")", "info");
    TL.setStore("alerts-refresh", { data: Date.now() });
  };

  // ---------------------------------------------------------------- % buttons, keys
  document.addEventListener("click", function (ev) {
    const pct = ev.target.closest ? ev.target.closest("[data-pct]") : null;
    if (pct) {
      window.dash_clientside.set_props("ticket-pct", { value: Number(pct.getAttribute("data-pct")) });
    }
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
    if (ev.key === "Enter" && ev.shiftKey) {
      // A keystroke is easy to hit by accident: it always asks before placing.
      ev.preventDefault();
      TL.confirmNext = true;
      click("place-btn");
      return;
    }
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
  // Without dp: the exact value, trailing zeros dropped ("0.00100000" -> "0.001").
  function num(v, dp) {
    if (v === null || v === undefined || v === "") return "—";
    if (dp !== undefined) return D.fixed(v, dp);
    const x = D.parse(v);
    return x === null ? String(v) : D.format(x);
  }
  /* A MARKET order's latency is placed -> filled; a LIMIT order's is placed -> on the book,
   * since the time it rests there is the market's, not ours. */
  function latency(o) {
    const t = o.statusTimes || {};
    if (String(o.type).toUpperCase() === "LIMIT") {
      const on = t.NEW || t.ACCEPTED || t.PARTIALLY_FILLED || t.FILLED;
      if (!on || !t.PENDING) return "—";
      return Math.max(0, new Date(on) - new Date(t.PENDING)) + " ms to book";
    }
    return o.fillLatencyMs !== null && o.fillLatencyMs !== undefined ? o.fillLatencyMs + " ms" : "—";
  }
  /* A fee in its own asset, and its value in the quote asset when it was paid in the base. */
  function feeText(t) {
    const r = TL.rules(t.symbol);
    const asset = t.commissionAsset || "";
    let out = num(t.commission) + " " + asset;
    const c = D.parse(t.commission), p = D.parse(t.price);
    if (asset && asset === r.baseAsset && c !== null && p !== null && c !== 0n) {
      out += " (≈ " + D.fixed(D.format(D.mul(c, p)), 2) + " " + r.quoteAsset + ")";
    }
    return out;
  }
  function positionFees(p) {
    const quote = TL.rules(p.symbol).quoteAsset || "USDT";
    let out = num(p.fees, 2) + " " + quote;
    Object.keys(p.otherFees || {}).forEach(function (a) { out += " + " + num(p.otherFees[a]) + " " + a; });
    return out;
  }

  // ---------------------------------------------------------------- callbacks
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    tl: {
      init: function (config) {
        if (config && config.apiUrl) TL.apiUrl = config.apiUrl;
        TL.loadSymbols();
        return NO();
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
        TL.route = route; // the route store (dashboard/routing.py), for the keys and the dropdown
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

      // Outputs: message, its class, qty error, price error, confirm box style, its text.
      placeOrder: async function (n, yes, no, st, qty, price, route, market) {
        const trig = triggered();
        const hide = { display: "none" };
        if (!trig) return [NO(), NO(), NO(), NO(), NO(), NO()];
        if (trig === "confirm-no") { TL.pendingOrder = null; return ["", "form-message", "", "", hide, ""]; }
        let body;
        if (trig === "confirm-yes") {
          body = TL.pendingOrder;
          TL.pendingOrder = null;
          if (!body) return [NO(), NO(), NO(), NO(), hide, ""];
        } else {
          const confirmFirst = !!TL.confirmNext;
          TL.confirmNext = false;
          body = {
            symbol: route.symbol, side: st.side, type: st.type, quantity: String(qty || "").trim(),
            clientOrderId: "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 8),
          };
          if (st.type === "LIMIT") { body.price = String(price || "").trim(); body.timeInForce = "GTC"; }
          const q = D.parse(body.quantity);
          if (!body.quantity) return ["", "form-message", "Enter a quantity.", "", hide, ""];
          if (q === null || q <= 0n) return ["", "form-message", "Enter a quantity greater than zero, like 0.001.", "", hide, ""];
          if (st.type === "LIMIT") {
            const p = D.parse(body.price);
            if (!body.price) return ["", "form-message", "", "Enter a limit price.", hide, ""];
            if (p === null || p <= 0n) return ["", "form-message", "", "Enter a price greater than zero.", hide, ""];
          }
          /* Fat-finger check: a limit that would trade through the market by more than 5 %
           * (buy above, sell below), or one more than 50 % away on the resting side (a digit
           * too many or too few), asks first. */
          const dp = TL.priceDp(body.symbol);
          const mkt = D.parse((market || {}).price);
          let warn = null;
          if (st.type === "LIMIT" && mkt && mkt > 0n) {
            const p = D.parse(body.price);
            const off = D.div((p > mkt ? p - mkt : mkt - p) * 100n, mkt);
            const crosses = (st.side === "BUY") === (p > mkt);
            if (off > D.parse(crosses ? "5" : "50")) {
              warn = "Your limit price " + D.fixed(body.price, dp) + " is " + D.fixed(D.format(off), 0) + "% " + (p > mkt ? "above" : "below") + " the market (" + D.fixed((market || {}).price, dp) + ").";
            }
          }
          if (warn || confirmFirst) {
            TL.pendingOrder = body;
            const what = body.side + " " + body.quantity + " " + body.symbol + (body.price ? " at " + body.price : " at market");
            return ["", "form-message", "", "", { display: "" }, (warn ? warn + " " : "") + "Place " + what + "?"];
          }
        }
        try {
          const res = await TL.api("/api/trading/orders", { method: "POST", body: body });
          TL.loadBalances();
          TL.ticketOrder = { orderId: res.orderId };
          const known = TL.state.orders.get(res.orderId);
          const msg = body.side + " " + body.quantity + " " + body.symbol + " sent (" + (res.status || "PENDING") + ")…";
          if (known && known.status !== "PENDING") setTimeout(function () { TL.onOrderUpdate(known); }, 0);
          return [msg, "form-message pending", "", "", hide, ""];
        } catch (e) {
          TL.ticketNetworkError = e.code === "network";
          const field = errorField(e);
          if (field === "quantity") return ["", "form-message", errorText(e), "", hide, ""];
          if (field === "price") return ["", "form-message", "", errorText(e), hide, ""];
          return [errorText(e), "form-message error", "", "", hide, ""];
        }
      },

      theme: function (n) {
        const dark = document.body.classList.contains("dark");
        if (n) TL.applyTheme(dark ? "light" : "dark");
        const nowDark = document.body.classList.contains("dark");
        if (n && TL.chart.symbol) TL.chart.render();
        return nowDark ? "☀" : "☾";
      },

      // Orders into the grid's rows; AG Grid keys them by orderId and updates in place.
      orderRows: function (list) {
        return (list || []).map(function (o) { return TL.orderRow(o, latency); });
      },

      // The server's indicator series into the chart (drawn with the next frame).
      indicatorsIn: function (data) {
        TL.chart.setIndicators(data);
        return Date.now();
      },

      // Trades and positions into their grids' rows (keyed by trade and by symbol).
      tradeRows: function (list) {
        return (list || []).map(function (t) {
          const dp = TL.priceDp(t.symbol);
          return {
            rowId: t.orderId + ":" + t.tradeId, time: TL.fmtTime(t.time), symbol: t.symbol,
            side: t.side, price: num(t.price, dp), quantity: num(t.quantity),
            total: num(t.quoteQuantity, 2), fee: feeText(t), role: t.isMaker ? "maker" : "taker",
          };
        });
      },

      positionRows: function (list) {
        return (list || []).filter(function (p) { return D.parse(p.quantity) !== 0n || D.parse(p.realizedPnl) !== 0n; }).map(function (p) {
          const dp = TL.priceDp(p.symbol);
          return {
            symbol: p.symbol, size: num(p.quantity), entry: num(p.averageEntryPrice, dp),
            mark: p.markPrice ? num(p.markPrice, dp) : "—", unrealized: num(p.unrealizedPnl, 2),
            realized: num(p.realizedPnl, 2), fees: positionFees(p),
          };
        });
      },
    },
  });
})();
