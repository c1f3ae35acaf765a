/* Live account state (orders, trades, positions, balances) fed by REST snapshots plus SSE,
 * merged idempotently, and the market state the ticket reads (symbol, price, rules). */
(function () {
  "use strict";
  const TL = window.TL;
  const D = TL.D;

  // ---------------------------------------------------------------- account state
  const orders = new Map(); // orderId -> order (highest version wins)
  const trades = new Map(); // tradeId -> trade
  const positions = new Map(); // symbol -> position
  TL.state = { orders, trades, positions, balances: {}, symbols: {}, symbolList: [] };

  const OPEN = new Set(["PENDING", "SUBMITTED", "NEW", "ACCEPTED", "PARTIALLY_FILLED",
    "CANCEL_REQUESTED"]);
  TL.isOpen = function (o) { return OPEN.has(String(o.status || "").toUpperCase()); };

  function version(o) {
    const v = Number(o.version);
    return isNaN(v) ? 0 : v;
  }
  function mergeOrder(o) {
    if (!o || !o.orderId) return false;
    const cur = orders.get(o.orderId);
    if (cur && version(cur) > version(o)) return false;
    if (cur && version(cur) === version(o) && cur.status === o.status) return false;
    orders.set(o.orderId, Object.assign({}, cur || {}, o));
    return true;
  }
  function mergeTrade(t) {
    if (!t || !t.tradeId) return false;
    const key = t.orderId + ":" + t.tradeId;
    if (trades.has(key)) return false;
    trades.set(key, t);
    return true;
  }
  function mergePosition(p) {
    if (!p || !p.symbol) return false;
    const cur = positions.get(p.symbol);
    if (cur && cur.updatedAt && p.updatedAt && cur.updatedAt > p.updatedAt) return false;
    if (p.markPrice) TL.marks[p.symbol] = String(p.markPrice);
    positions.set(p.symbol, withMark(Object.assign({}, cur || {}, p)));
    return true;
  }
  /* Unrealized PnL follows the price: a position from the stream carries no mark, and the
   * REST one a mark of its own moment, so both are re-marked with the latest price seen. */
  TL.marks = {};
  function withMark(p) {
    const mark = TL.marks[p.symbol];
    const m = D.parse(mark), q = D.parse(p.quantity), e = D.parse(p.averageEntryPrice);
    if (m === null || q === null || e === null) return p;
    p.markPrice = mark;
    p.unrealizedPnl = D.format(D.mul(m - e, q));
    return p;
  }
  TL.remark = function (symbol, price) {
    TL.marks[symbol] = String(price);
    const p = positions.get(symbol);
    if (!p) return;
    positions.set(symbol, withMark(Object.assign({}, p)));
    publishPositions();
  };

  function byTimeDesc(key) {
    return function (a, b) {
      const x = String(a[key] || ""), y = String(b[key] || "");
      return x < y ? 1 : x > y ? -1 : 0;
    };
  }
  function publishOrders() {
    const list = Array.from(orders.values()).sort(byTimeDesc("createdAt")).slice(0, 500);
    TL.setStore("orders-store", { data: list });
  }
  function publishTrades() {
    const list = Array.from(trades.values()).sort(function (a, b) {
      return Number(b.time || 0) - Number(a.time || 0) || String(b.time).localeCompare(a.time);
    }).slice(0, 500);
    TL.setStore("trades-store", { data: list });
  }
  function publishPositions() {
    TL.setStore("positions-store", { data: Array.from(positions.values()) });
  }

  TL.snapshot = async function () {
    const [o, t, p] = await Promise.allSettled([
      TL.api("/api/trading/orders?limit=500"),
      TL.api("/api/trading/trades?limit=500"),
      TL.api("/api/trading/positions"),
    ]);
    if (o.status === "fulfilled") { TL.asList(o.value, "orders").forEach(mergeOrder); publishOrders(); }
    if (t.status === "fulfilled") { TL.asList(t.value, "trades").forEach(mergeTrade); publishTrades(); }
    if (p.status === "fulfilled") {
      TL.asList(p.value, "positions").forEach(mergePosition);
      publishPositions();
    }
    TL.loadBalances();
  };

  // Balances: [{asset, free, locked}] or {balances: [...]} or {ASSET: {free, locked}}.
  TL.loadBalances = async function () {
    try {
      const data = await TL.api("/api/trading/balances");
      const out = {};
      let list = TL.asList(data, "balances");
      if (!list.length && data && typeof data === "object" && !Array.isArray(data)) {
        list = Object.keys(data).filter(function (k) { return typeof data[k] === "object"; })
          .map(function (k) { return Object.assign({ asset: k }, data[k]); });
      }
      list.forEach(function (b) { out[b.asset] = { free: String(b.free), locked: String(b.locked || "0") }; });
      TL.state.balances = out;
      TL.state.balancesError = null;
    } catch (e) {
      TL.state.balancesError = e.message;
    }
    TL.publishMarket();
  };
  // Balances are exchange snapshots the worker stores as they arrive; poll them gently too.
  setInterval(function () {
    if (TL.getSession() && !TL.userStream.closed && document.visibilityState === "visible") {
      TL.loadBalances();
    }
  }, 15000);
  // Marks of the symbols not on screen come with the positions route.
  setInterval(function () {
    if (!TL.getSession() || TL.userStream.closed || document.visibilityState !== "visible") return;
    TL.api("/api/trading/positions").then(function (list) {
      TL.asList(list, "positions").forEach(function (p) {
        if (p.symbol === TL.market.symbol) delete p.markPrice; // the live tick is newer
        mergePosition(p);
      });
      publishPositions();
    }).catch(function () { /* next round */ });
  }, 5000);
  let balanceTimer = null;
  function scheduleBalances() {
    clearTimeout(balanceTimer);
    balanceTimer = setTimeout(TL.loadBalances, 400);
  }

  function setLive(status) {
    const titles = { live: "live", connecting: "reconnecting", down: "disconnected" };
    TL.setStore("live-status", { className: "live-dot " + status, title: titles[status] });
    TL.setStore("live-label", { children: status === "live" ? "live" : titles[status] });
  }

  TL.userStream = new TL.LiveStream("user", {
    events: ["ORDER_UPDATE", "TRADE", "POSITION", "RESET", "ALERT"],
    url: async function (lastId) {
      const token = await TL.streamToken();
      let url = TL.apiUrl + "/api/stream?token=" + encodeURIComponent(token);
      if (lastId) url += "&lastEventId=" + encodeURIComponent(lastId);
      return url;
    },
    onStatus: setLive,
    // Every (re)open resyncs from REST: whatever the stream cannot replay is caught up here,
    // and the merge rules make anything seen twice a no-op.
    onOpen: function () { TL.snapshot(); },
    onEvent: function (type, data) {
      if (type === "RESET") { TL.snapshot(); return; } // more was missed than a replay sends
      const payload = data && (data.order || data.trade || data.position) ? (data.order || data.trade || data.position) : data;
      if (type === "ORDER_UPDATE" || (type === "message" && payload.orderId && payload.status)) {
        if (mergeOrder(payload)) {
          publishOrders();
        }
        scheduleBalances();
      } else if (type === "TRADE") {
        if (mergeTrade(payload)) publishTrades();
        scheduleBalances();
      } else if (type === "POSITION") {
        if (mergePosition(payload)) publishPositions();
      } else if (type === "ALERT" && TL.onAlert) {
        TL.onAlert(payload);
      }
    },
  });

  TL.startAccount = function () {
    if (TL.userStream.closed) TL.userStream.open();
  };
  TL.stopAccount = function () {
    TL.userStream.close();
    orders.clear(); trades.clear(); positions.clear();
    TL.state.balances = {};
    publishOrders(); publishTrades(); publishPositions();
  };

  // ---------------------------------------------------------------- market state
  /* Symbols and their rules are read by the server (dashboard/chart.py) and put here by the
   * `market.rules` callback; the price and the 24 h change come with the market stream
   * (30-market.js). `market-store` carries them, with the balances, to the ticket. */
  TL.rules = function (symbol) {
    const s = String(symbol || "BTCUSDT");
    return TL.state.symbols[s] || { symbol: s, baseAsset: s.replace(/USDT$/, ""), quoteAsset: "USDT" };
  };
  TL.market = { symbol: null, price: null, change: null };
  TL.marketData = function () {
    return {
      symbol: TL.market.symbol, price: TL.market.price, change: TL.market.change,
      balances: TL.state.balances, balancesError: TL.state.balancesError || null,
      rules: TL.rules(TL.market.symbol), t: Date.now(),
    };
  };
  TL.publishMarket = function () { TL.setStore("market-store", { data: TL.marketData() }); };
  TL.priceDp = function (symbol) {
    const r = TL.rules(symbol);
    return r.tickSize ? D.decimals(r.tickSize) : 2;
  };
  TL.setPrice = function (price) {
    TL.market.price = String(price);
    TL.remark(TL.market.symbol, TL.market.price);
    TL.publishMarket();
  };
  TL.applyTicker = function (symbol, t) {
    if (symbol !== TL.market.symbol || !t) return;
    const change = t.change24h !== undefined ? t.change24h : t.priceChangePercent;
    if (change !== undefined && change !== null) TL.market.change = String(change);
    if (t.price || t.lastPrice) TL.setPrice(t.price || t.lastPrice);
  };
})();
