/* Live account state (orders, trades, positions, balances) and market state (symbols, ticker,
 * candles) fed by REST snapshots plus SSE, merged idempotently. */
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
    if (TL.chart) TL.chart.overlaysChanged();
  }
  function publishTrades() {
    const list = Array.from(trades.values()).sort(function (a, b) {
      return Number(b.time || 0) - Number(a.time || 0) || String(b.time).localeCompare(a.time);
    }).slice(0, 500);
    TL.setStore("trades-store", { data: list });
    if (TL.chart) TL.chart.overlaysChanged();
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
  function normaliseSymbol(s) {
    if (typeof s === "string") return { symbol: s };
    const out = Object.assign({}, s);
    (s.filters || []).forEach(function (f) {
      if (f.filterType === "LOT_SIZE") { out.stepSize = out.stepSize || f.stepSize; out.minQty = out.minQty || f.minQty; }
      if (f.filterType === "PRICE_FILTER") out.tickSize = out.tickSize || f.tickSize;
      if (f.filterType === "NOTIONAL" || f.filterType === "MIN_NOTIONAL") out.minNotional = out.minNotional || f.minNotional;
    });
    out.stepSize = out.stepSize || out.step_size;
    out.tickSize = out.tickSize || out.tick_size;
    out.baseAsset = out.baseAsset || out.base_asset || (out.symbol || "").replace(/USDT$/, "");
    out.quoteAsset = out.quoteAsset || out.quote_asset || "USDT";
    return out;
  }
  TL.loadSymbols = async function () {
    try {
      const data = await TL.api("/api/market/symbols", { auth: false });
      const list = TL.asList(data, "symbols").map(normaliseSymbol);
      TL.state.symbols = {};
      list.forEach(function (s) { TL.state.symbols[s.symbol] = s; });
      TL.state.symbolList = list.map(function (s) { return s.symbol; }).sort();
      TL.setStore("symbol-select", { options: TL.state.symbolList });
      TL.publishMarket();
    } catch (e) { /* retried on next navigation */ }
  };
  TL.rules = function (symbol) {
    return TL.state.symbols[symbol] || normaliseSymbol(symbol || "BTCUSDT");
  };

  TL.market = { symbol: null, price: null, change: null, ticker: null };
  TL.publishMarket = function () {
    TL.setStore("market-store", {
      data: {
        symbol: TL.market.symbol,
        price: TL.market.price,
        change: TL.market.change,
        balances: TL.state.balances,
        balancesError: TL.state.balancesError || null,
        rules: TL.rules(TL.market.symbol),
        t: Date.now(),
      },
    });
  };
  function priceDp(symbol) {
    const r = TL.rules(symbol);
    return r.tickSize ? D.decimals(r.tickSize) : 2;
  }
  TL.priceDp = priceDp;
  TL.setPrice = function (price) {
    TL.market.price = String(price);
    TL.setStore("pair-price", { children: D.fixed(price, priceDp(TL.market.symbol)) });
    TL.remark(TL.market.symbol, TL.market.price);
    TL.publishMarket();
  };
  TL.applyTicker = function (symbol, t) {
    if (symbol !== TL.market.symbol || !t) return;
    TL.market.ticker = t;
    const change = t.change24h !== undefined ? t.change24h : t.priceChangePercent;
    if (change !== undefined && change !== null) {
      TL.market.change = String(change);
      const up = D.parse(String(change)) >= 0n;
      TL.setStore("pair-change", {
        children: (up ? "+" : "") + D.fixed(change, 2) + "%",
        className: "pair-change mono " + (up ? "up" : "down"),
      });
    }
    if (t.price || t.lastPrice) TL.setPrice(t.price || t.lastPrice);
  };
  TL.loadTicker = async function (symbol) {
    try {
      const t = await TL.api("/api/market/" + symbol + "/ticker", { auth: false });
      TL.applyTicker(symbol, t);
    } catch (e) { /* shown as "—" */ }
  };
})();
