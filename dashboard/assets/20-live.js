/* Live account state (orders, trades, positions, balances) fed by REST snapshots plus SSE,
 * merged idempotently, and the market state the ticket reads (symbol, price, rules). */
(function () {
  "use strict";
  const TL = window.TL;
  const D = TL.D;

  // ---------------------------------------------------------------- account state
  /* Why JS: the user stream needs named events, token renewal and Last-Event-ID resume, which
   * no Dash SSE component has (docs/dashboard.md), and its rows are on the click -> FILLED
   * path. It merges rows idempotently into the three stores; balances, marks, the status dot
   * and the Trades/Positions rows are server callbacks (dashboard/live_account.py). */
  const orders = new Map(); // orderId -> order (highest version wins)
  const trades = new Map(); // orderId:tradeId -> trade
  const positions = new Map(); // symbol -> position
  TL.state = { orders, trades, positions, symbols: {} };

  const OPEN = new Set(["PENDING", "SUBMITTED", "NEW", "ACCEPTED", "PARTIALLY_FILLED",
    "CANCEL_REQUESTED"]);
  TL.isOpen = function (o) { return OPEN.has(String(o.status || "").toUpperCase()); };

  const merge = {
    order: function (o) {
      if (!o || !o.orderId) return false;
      const cur = orders.get(o.orderId), v = Number(o.version) || 0, cv = cur ? Number(cur.version) || 0 : -1;
      if (cv > v || (cv === v && cur.status === o.status)) return false;
      orders.set(o.orderId, Object.assign({}, cur || {}, o));
      return true;
    },
    trade: function (t) {
      const key = t && t.tradeId ? t.orderId + ":" + t.tradeId : null;
      if (!key || trades.has(key)) return false;
      trades.set(key, t);
      return true;
    },
    position: function (p) {
      if (!p || !p.symbol) return false;
      const cur = positions.get(p.symbol);
      if (cur && cur.updatedAt && p.updatedAt && cur.updatedAt > p.updatedAt) return false;
      positions.set(p.symbol, Object.assign({}, cur || {}, p));
      return true;
    },
  };
  function newest(map, key) {
    return Array.from(map.values()).sort(function (a, b) {
      const x = String(a[key] || ""), y = String(b[key] || "");
      return x < y ? 1 : x > y ? -1 : 0;
    }).slice(0, 500);
  }
  const publish = {
    order: function () { TL.setStore("orders-store", { data: newest(orders, "createdAt") }); },
    trade: function () { TL.setStore("trades-store", { data: newest(trades, "time") }); },
    position: function () { TL.setStore("positions-store", { data: Array.from(positions.values()) }); },
  };
  // Balances follow fills: the server callback reads them 400 ms after an order or trade event.
  let balanceTimer = null;
  function balancesDue() {
    clearTimeout(balanceTimer);
    balanceTimer = setTimeout(function () { TL.setStore("balances-due", { data: Date.now() }); }, 400);
  }

  // Every (re)open resyncs from REST: whatever the stream cannot replay is caught up here, and
  // the merge rules make anything seen twice a no-op. (Here, not on the server: the rows must
  // land in these maps, and it is on the path of recovering from a lost connection.)
  TL.snapshot = async function () {
    const got = await Promise.allSettled([TL.api("/api/trading/orders?limit=500"),
      TL.api("/api/trading/trades?limit=500"), TL.api("/api/trading/positions")]);
    ["order", "trade", "position"].forEach(function (kind, i) {
      if (got[i].status !== "fulfilled") return;
      TL.asList(got[i].value, kind + "s").forEach(merge[kind]);
      publish[kind]();
    });
  };

  const KINDS = { ORDER_UPDATE: "order", TRADE: "trade", POSITION: "position" };
  TL.userStream = new TL.LiveStream("user", {
    events: ["ORDER_UPDATE", "TRADE", "POSITION", "RESET", "ALERT"],
    url: async function (lastId) {
      const token = await TL.streamToken();
      let url = TL.apiUrl + "/api/stream?token=" + encodeURIComponent(token);
      if (lastId) url += "&lastEventId=" + encodeURIComponent(lastId);
      return url;
    },
    onStatus: function (status) { TL.setStore("live-store", { data: { status: status } }); },
    onOpen: function () { TL.snapshot(); },
    onEvent: function (type, data) {
      if (type === "RESET") return TL.snapshot(); // more was missed than a replay sends
      const payload = (data && (data.order || data.trade || data.position)) || data;
      // Every alert of a batch reaches the store (two may fire in the same 100 ms).
      if (type === "ALERT") return TL.setStore("alert-fired", function (p) { return { data: (p.data || []).concat([payload]) }; });
      const kind = KINDS[type] || (payload && payload.orderId && payload.status ? "order" : null);
      if (kind && merge[kind](payload)) publish[kind]();
      if (kind === "order" || kind === "trade") balancesDue();
    },
  });

  // Session on/off (the auth store): open or close the user stream.
  TL.account = function (auth) {
    if (auth && auth.token) {
      TL.session = auth;
      TL.scheduleRefresh();
      if (TL.userStream.closed) TL.userStream.open();
      return;
    }
    TL.session = null;
    TL.userStream.close();
    orders.clear(); trades.clear(); positions.clear();
    publish.order(); publish.trade(); publish.position();
  };

  // ---------------------------------------------------------------- market state
  /* Symbols and their rules are read by the server (dashboard/chart.py) and put here by the
   * `market.rules` callback; the price and the 24 h change come with the market stream
   * (30-market.js). `market-store` carries them to the ticket (the balances have a store of
   * their own, dashboard/live_account.py). */
  TL.rules = function (symbol) {
    const s = String(symbol || "BTCUSDT");
    return TL.state.symbols[s] || { symbol: s, baseAsset: s.replace(/USDT$/, ""), quoteAsset: "USDT" };
  };
  TL.market = { symbol: null, price: null, change: null };
  TL.marketData = function () {
    return {
      symbol: TL.market.symbol, price: TL.market.price, change: TL.market.change,
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
    TL.publishMarket();
  };
  TL.applyTicker = function (symbol, t) {
    if (symbol !== TL.market.symbol || !t) return;
    const change = t.change24h !== undefined ? t.change24h : t.priceChangePercent;
    if (change !== undefined && change !== null) TL.market.change = String(change);
    if (t.price || t.lastPrice) TL.setPrice(t.price || t.lastPrice);
  };
})();
