/* dash-ag-grid cell renderers, the time formatter and the orders -> grid rows mapping.
 * Why JS: AG Grid draws cells in the browser, so a cell with more than text (a status badge
 * with its reason, a Cancel button) needs a renderer here, and a time in the reader's own
 * zone and locale needs the browser's clock. Order rows follow every order update on the
 * click -> FILLED path, so they are mapped here, with no server hop (docs/dashboard.md has
 * the measurement); the Trades and Positions rows are mapped on the server. */
(function () {
  "use strict";
  const TL = window.TL;
  const D = TL.D;
  const e = function () { return window.React.createElement.apply(null, arguments); };
  const funcs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});
  const fmt = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

  // The status badge, with the exchange's reason in the cell (not only a tooltip).
  funcs.OrderStatus = function (props) {
    const d = props.data || {};
    return e("div", { className: "status-cell" },
      // An order the worker cannot prove sent or not yet (issue 15) says so.
      e("span", { className: "status status-" + String(d.status || "").toLowerCase() + (d.unknown ? " status-unknown" : ""),
                  title: d.detail || d.reason || "" }, d.unknown ? d.status + " · outcome unknown, checking" : d.status),
      d.reason ? e("div", { className: "reject-reason" }, d.reason) : null);
  };

  // Cancel as a cell action: setData fills the grid's cellRendererData, which a server
  // callback (dashboard/grids.py) turns into DELETE /api/trading/orders/{id}, or for an OCO
  // leg DELETE /api/trading/order-lists/{orderListId} (both legs, as Binance's own cancel).
  const canceling = {};
  funcs.CancelButton = function (props) {
    if (!props.value) return null;
    const pending = canceling[props.data.orderId], list = props.data.orderListId;
    return e("button", {
      className: "btn tiny cancel-btn", disabled: !!pending,
      title: list == null ? "Cancel this order" : "Cancel both legs of this OCO exit",
      onClick: function () {
        canceling[props.data.orderId] = true;
        props.setData(list == null ? "cancel" : "cancel-list:" + list);
        props.api.refreshCells({ rowNodes: [props.node], force: true });
      },
    }, pending ? "Canceling…" : "Cancel");
  };

  // The Time columns (valueFormatter "fmtTime(params.value)"): rows keep the API's time, so
  // they sort by it and export it as is.
  fmt.fmtTime = function (value) {
    const d = new Date(value);
    return !value || isNaN(d.getTime()) ? "—" : d.toLocaleString(undefined, {
      month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  };

  /* The API's messages speak to programs: say the same to a trader, numbers trimmed (the
   * reject reason in the row; dashboard/ticket.py `friendly` is the same in Python). */
  TL.friendly = function (message) {
    let m = String(message || "");
    if (/decimal number|finite number/.test(m)) return "Enter a number, like 0.001.";
    m = m.replace(/^(quantity|price): /, "").replace(/(\d+\.\d*?[1-9])0+\b/g, "$1")
      .replace(/(\d+)\.0+\b/g, "$1").replace(/(\d+\.\d{2})\d+ (USDT|USDC|FDUSD|BUSD)/g, "$1 $2");
    return m.charAt(0).toUpperCase() + m.slice(1);
  };

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
      return on && t.PENDING ? Math.max(0, new Date(on) - new Date(t.PENDING)) + " ms to book" : "—";
    }
    return o.fillLatencyMs !== null && o.fillLatencyMs !== undefined ? o.fillLatencyMs + " ms" : "—";
  }
  TL.orderRows = function (orders, symbols) {
    return (orders || []).map(function (o) { return TL.orderRow(o, TL.rules(symbols, o.symbol)); });
  };
  TL.orderRow = function (o, rules) {
    const dp = TL.priceDp(rules);
    const st = String(o.status || "").toUpperCase();
    return {
      orderId: o.orderId, time: o.createdAt, symbol: o.symbol, side: o.side,
      type: o.type + (o.orderListId == null ? "" : " (OCO)"), orderListId: o.orderListId,
      // A stop order's trigger, with "triggered" once the market has reached it.
      stop: o.stopPrice ? num(o.stopPrice, dp) + (o.stopTriggered ? " triggered" : "") : "—",
      price: o.price ? num(o.price, dp) : "market", quantity: num(o.quantity), filled: num(o.filledQuantity),
      average: o.averagePrice ? num(o.averagePrice, dp) : "—", status: st,
      reason: o.rejectReason ? TL.friendly(o.rejectReason) : "", latency: latency(o),
      unknown: o.outcome === "UNKNOWN", detail: o.statusDetail || "",
      cancellable: TL.isOpen(o) && st !== "CANCEL_REQUESTED",
    };
  };
})();
