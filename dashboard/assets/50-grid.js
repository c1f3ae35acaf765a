/* dash-ag-grid cell renderers and the orders -> grid rows mapping.
 * Why JS: AG Grid draws cells in the browser, so a cell with more than text (a status badge
 * with its reason, a Cancel button) needs a renderer here; and rows follow every order
 * update on the click -> FILLED path, so mapping them stays clientside (no server hop). */
(function () {
  "use strict";
  const TL = window.TL;
  const D = TL.D;
  const e = function () { return window.React.createElement.apply(null, arguments); };
  const funcs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

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
  // leg DELETE /api/trading/order-lists/{orderListId}.
  funcs.CancelButton = function (props) {
    if (!props.value) return null;
    const pending = TL.canceling && TL.canceling[props.data.orderId];
    return e("button", {
      className: "btn tiny cancel-btn", disabled: !!pending,
      title: props.data.orderListId == null ? "Cancel this order" : "Cancel both legs of this OCO exit",
      onClick: function () {
        TL.canceling = TL.canceling || {};
        TL.canceling[props.data.orderId] = true;
        // An OCO leg cancels its whole list (both legs), as Binance's cancel of a leg would.
        const list = props.data.orderListId;
        props.setData(list == null ? "cancel" : "cancel-list:" + list);
        props.api.refreshCells({ rowNodes: [props.node], force: true });
      },
    }, pending ? "Canceling…" : "Cancel");
  };

  function num(v, dp) {
    if (v === null || v === undefined || v === "") return "—";
    if (dp !== undefined) return D.fixed(v, dp);
    const x = D.parse(v);
    return x === null ? String(v) : D.format(x);
  }
  TL.orderRow = function (o, latency) {
    const dp = TL.priceDp(o.symbol);
    const st = String(o.status || "").toUpperCase();
    return {
      orderId: o.orderId, time: TL.fmtTime(o.createdAt), symbol: o.symbol, side: o.side,
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
