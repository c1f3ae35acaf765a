/* Clientside callbacks (namespace "tl"), keyboard shortcuts and the theme. Toasts, the alert
 * toast and the Trades/Positions rows are server callbacks (dashboard/toasts.py,
 * dashboard/live_account.py). */
(function () {
  "use strict";
  const TL = window.TL;
  const NO = function () { return window.dash_clientside.no_update; };

  // Theme: a class on <body> set before the first paint, so a dark page never flashes light.
  TL.applyTheme = function (theme) {
    document.body.classList.toggle("dark", theme === "dark");
    try { window.localStorage.setItem("tl-theme", theme); } catch (e) { /* private mode */ }
  };
  TL.applyTheme((function () {
    try { return window.localStorage.getItem("tl-theme") || "light"; } catch (e) { return "light"; }
  })());

  /* Keyboard shortcuts: Dash has no document-level key events, so a listener here clicks the
   * buttons the callbacks already handle (ignored while typing, but Shift+Enter). */
  function click(id) { const el = document.getElementById(id); if (el) el.click(); }
  const TF = ["1m", "5m", "1h", "1d", "1w"];
  document.addEventListener("keydown", function (ev) {
    if (!TL.route || TL.route.page !== "trade" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "Enter" && ev.shiftKey) {
      // Easy to hit by accident: this button's callback (dashboard/ticket.py) always asks first.
      ev.preventDefault();
      return click("place-keyed");
    }
    const el = ev.target, tag = ((el && el.tagName) || "").toUpperCase();
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (el && el.isContentEditable)) return;
    const k = ev.key.toLowerCase();
    if (k === "b") click("side-buy");
    else if (k === "s") click("side-sell");
    else if (k === "m") click("type-market");
    else if (k === "l") click("type-limit");
    else if (k === "q") { ev.preventDefault(); const q = document.getElementById("ticket-qty"); if (q) q.focus(); }
    else if (/^[1-5]$/.test(k)) click("tf-" + TF[Number(k) - 1]);
  });

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    tl: {
      init: function (config) {
        if (config && config.apiUrl) TL.apiUrl = config.apiUrl;
        return NO();
      },

      // Symbol chosen in the dropdown: a history push to /trade/SYMBOL (no reload). Clientside:
      // it starts the symbol switch, a measured path.
      symbolPicked: function (value, route) {
        if (!value || !route || route.page !== "trade" || value === route.symbol) return NO();
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

      // The theme toggles in the browser (a class on <body>, read by CSS and the chart).
      theme: function (n) {
        if (n) TL.applyTheme(document.body.classList.contains("dark") ? "light" : "dark");
        return document.body.classList.contains("dark") ? "☀" : "☾";
      },

      // The symbols' rules arrived: the Orders rows again, with their tick sizes (the live
      // account's merge, 20-live.js, writes them on every order update).
      orderRows: function (symbols, list) { return TL.orderRows(list, symbols); },
    },
  });
})();
