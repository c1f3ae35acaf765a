/* The trade page's market stream and the chart's hot path (dashboard/chart.py draws the rest).
 * Why JS: the stream is an EventSource with a one-minute token to renew and a Last-Event-ID
 * to resume from (TL.LiveStream, 10-core.js), which no Dash component offers; and a tick must
 * reach the chart without a server round trip, so a clientside callback patches the figure.
 * One market stream per tab (browsers allow six connections per host): it also carries the
 * order book's DEPTH and MARKET_TRADE events (60-order-book.js). */
(function () {
  "use strict";
  const TL = window.TL;
  const NO = function () { return window.dash_clientside.no_update; };
  /* Each tick re-renders the dcc.Graph (Patch -> Plotly); at four a second the main thread
   * ran long tasks often enough that a dropped stream was noticed ~0.1 s later
   * (docs/dashboard.md, 2026-12-06 timings). Binance itself sends a kline every 1-2 s. */
  const TICK_MS = 500;
  const feed = (TL.marketFeed = { key: null, stream: null, klines: {}, timer: null, n: 0, indAt: 0, labels: null });

  // Stream news into CHART_TICKS, the latest update of each candle, at most twice a second.
  function push() {
    if (feed.timer) return;
    feed.timer = setTimeout(function () {
      feed.timer = null;
      const klines = Object.keys(feed.klines).map(function (t) { return feed.klines[t]; });
      klines.sort(function (a, b) { return a.t - b.t; });
      feed.klines = {};
      try {
        window.dash_clientside.set_props("chart-ticks", { data: { key: feed.key, klines: klines, n: ++feed.n } });
      } catch (e) { /* not mounted yet: the next tick carries fresh state */ }
    }, TICK_MS);
  }

  function open(symbol, interval, key) {
    let opened = false;
    const stream = (TL.marketStream = new TL.LiveStream("market", {
      events: ["KLINE", "TICKER", "DEPTH", "MARKET_TRADE"],
      url: async function () {
        let url = TL.apiUrl + "/api/market/" + symbol + "/stream?interval=" + interval + "&channels=kline,depth,trades";
        if (TL.getSession()) {
          try { url += "&token=" + encodeURIComponent(await TL.streamToken()); } catch (e) { /* public */ }
        }
        return url;
      },
      onEvent: function (type, d) {
        if (feed.key !== key) return;
        if (type === "DEPTH" || type === "MARKET_TRADE") { if (TL.onMarketBook) TL.onMarketBook(type, symbol, d); return; }
        if (type === "TICKER") { TL.applyTicker(symbol, d); push(); return; }
        if (type !== "KLINE") return;
        const k = d.kline || d, t = Number(k.time !== undefined ? k.time : k.openTime);
        feed.klines[t] = { t: t, o: +k.open, h: +k.high, l: +k.low, c: +k.close, v: +k.volume };
        TL.setPrice(k.close);
        push();
      },
      // Back after a gap: the server draws again from history, so missed candles appear.
      onOpen: function () {
        if (opened) window.dash_clientside.set_props("chart-reload", { data: Date.now() });
        opened = true;
      },
    }));
    feed.stream = stream;
    stream.open();
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    market: {
      /* route, settings, theme -> CHART_VIEW, only when it changes; (re)opens the stream. */
      view: function (route, settings, _theme, prev) {
        const symbol = route && route.page === "trade" ? route.symbol : null;
        const s = settings || {};
        const view = symbol ? { symbol: symbol, interval: s.interval || "1m", indicators: s.indicators || [],
          dark: document.body.classList.contains("dark") } : null;
        const key = view ? symbol + ":" + view.interval : null, changed = key !== feed.key;
        if (changed) {
          if (feed.stream) feed.stream.close();
          feed.stream = null; feed.key = key; feed.klines = {};
          if (symbol && symbol !== TL.market.symbol) {
            TL.market.symbol = symbol; TL.market.price = null; TL.market.change = null;
            TL.publishMarket();
          }
          if (view) open(symbol, view.interval, key);
        }
        // Back on the desk (the stream was closed meanwhile) draws again too: candles were missed.
        if (!view || (!changed && JSON.stringify(view) === JSON.stringify(prev))) return NO();
        return view;
      },

      /* Ticks -> the figure, patched in place (last candle updated, or one appended); the
       * pair's price and change; the live candles for the indicators at most once a second.
       * A new drawing (CHART_META) brings its last close as the price until the first tick. */
      tick: function (ticks, meta, fig) {
        const D = TL.D, out = [NO(), NO(), NO(), NO(), NO()];
        if (!meta || meta.symbol !== TL.market.symbol) {
          feed.labels = null;
          return [NO(), "—", "—", "pair-change mono", NO()];
        }
        const ctx = window.dash_clientside.callback_context;
        const byMeta = ctx.triggered.some(function (t) { return t.prop_id.indexOf("chart-meta") === 0; });
        if (byMeta && meta.last !== null && TL.market.price === null) TL.setPrice(String(meta.last));
        out[1] = TL.market.price === null ? "—" : D.fixed(TL.market.price, TL.priceDp(meta.symbol));
        const ch = TL.market.change, up = ch !== null && D.parse(ch) >= 0n;
        out[2] = ch === null ? "—" : (up ? "+" : "") + D.fixed(ch, 2) + "%";
        out[3] = "pair-change mono" + (ch === null ? "" : up ? " up" : " down");
        const labels = out.slice(1, 4).join("|"); // unchanged labels: no re-render
        if (labels === feed.labels) { out[1] = out[2] = out[3] = NO(); } else feed.labels = labels;
        const c = fig && fig.data && fig.data[0];
        if (byMeta || !ticks || ticks.key !== meta.key || !c || c.name !== meta.symbol || !ticks.klines.length) return out;
        const p = new window.dash_clientside.Patch();
        let last = c.x.length ? c.x[c.x.length - 1] : -Infinity;
        ticks.klines.forEach(function (k) {
          const vals = { open: k.o, high: k.h, low: k.l, close: k.c }, colour = k.c >= k.o ? meta.up : meta.down;
          if (k.t === last) {
            Object.keys(vals).forEach(function (f) { p.assign(["data", 0, f, -1], vals[f]); });
            p.assign(["data", 1, "y", -1], k.v).assign(["data", 1, "marker", "color", -1], colour);
          } else if (k.t > last) {
            Object.keys(vals).forEach(function (f) { p.extend(["data", 0, f], [vals[f]]); });
            p.extend(["data", 0, "x"], [k.t]).extend(["data", 1, "x"], [k.t]).extend(["data", 1, "y"], [k.v])
              .extend(["data", 1, "marker", "color"], [colour]);
            last = k.t;
          }
        });
        if (p.operations.length) out[0] = p.build();
        if (meta.indicators.length && Date.now() - feed.indAt >= 1000) {
          feed.indAt = Date.now();
          out[4] = { key: meta.key, klines: ticks.klines };
        }
        return out;
      },

      /* The server's indicator series with the live candle, patched into their traces only
       * if the figure drawn is still the one they were computed for. */
      indicators: function (data, meta) {
        if (!data || !meta || data.key !== meta.key || JSON.stringify(data.traces) !== JSON.stringify(meta.traces)) return NO();
        const p = new window.dash_clientside.Patch();
        Object.keys(data.traces).forEach(function (name) {
          p.assign(["data", data.traces[name], "x"], data.t).assign(["data", data.traces[name], "y"], data.series[name]);
        });
        return p.build();
      },

      /* Orders and trades (up to 500 each) -> this symbol's open priced orders and fills in
       * the chart's window, so only those travel to the server's overlays callback. */
      overlayRows: function (orders, trades, meta, prev) {
        if (!meta) return NO();
        const time = function (t) { return typeof t.time === "number" ? t.time : new Date(t.time).getTime(); };
        const rows = {
          key: meta.key,
          orders: (orders || []).filter(function (o) { return o.symbol === meta.symbol && TL.isOpen(o) && o.price; })
            .map(function (o) {
              return { type: o.type, side: o.side, quantity: o.quantity, price: o.price, stopPrice: o.stopPrice,
                stopTriggered: o.stopTriggered, orderListId: o.orderListId };
            }),
          fills: (trades || []).filter(function (t) { return t.symbol === meta.symbol && time(t) >= (meta.t0 || 0); })
            .map(function (t) { return { side: t.side, quantity: t.quantity, price: t.price, time: time(t) }; }),
        };
        const ctx = window.dash_clientside.callback_context;
        const redrawn = ctx.triggered.some(function (t) { return t.prop_id.indexOf("chart-meta") === 0; });
        return redrawn || JSON.stringify(rows) !== JSON.stringify(prev) ? rows : NO();
      },

      /* The symbols' rules (read by the server) into the JS state the market store carries. */
      rules: function (symbols) {
        TL.state.symbols = symbols || {};
        return TL.marketData();
      },
    },
  });
})();
