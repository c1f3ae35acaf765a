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
      // A keystroke is easy to hit by accident: this button's callback (dashboard/ticket.py)
      // always asks before placing.
      ev.preventDefault();
      click("place-keyed");
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
        return NO();
      },

      // Session on/off: open or close the user stream.
      session: function (auth) {
        if (auth && auth.token) {
          TL.session = auth;
          TL.scheduleRefresh();
          TL.startAccount();
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
        if (!route || route.page !== "trade") return [NO(), NO(), NO(), NO(), NO(), NO(), NO()];
        const s = settings || { interval: "1m", indicators: [] };
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

      theme: function (n) {
        const dark = document.body.classList.contains("dark");
        if (n) TL.applyTheme(dark ? "light" : "dark");
        const nowDark = document.body.classList.contains("dark");
        return nowDark ? "☀" : "☾";
      },

      // Orders into the grid's rows; AG Grid keys them by orderId and updates in place.
      orderRows: function (list) {
        return (list || []).map(function (o) { return TL.orderRow(o, latency); });
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
