/* The chart's hot path (dashboard/chart.py draws the rest, and gives the market stream its
 * URL). Why JS: a tick must reach the chart and the price without a server round trip, so
 * clientside callbacks turn the market stream's batches (an EventStream component, at most
 * two a second: Binance itself sends a kline every 1-2 s) into the market store and a
 * figure Patch. */
(function () {
  "use strict";
  const TL = window.TL;
  const NO = function () { return window.dash_clientside.no_update; };
  let shownKey = null, indicatorsAt = 0;

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    market: {
      /* route, settings, theme -> CHART_VIEW, only when it changes, or when the desk shows
       * again (its stream was closed meanwhile: candles were missed). */
      view: function (route, settings, _theme, prev) {
        const symbol = route && route.page === "trade" ? route.symbol : null;
        const s = settings || {};
        const view = symbol ? { symbol: symbol, interval: s.interval || "1m", indicators: s.indicators || [],
          dark: document.body.classList.contains("dark") } : null;
        const key = view ? symbol + ":" + view.interval : null, changed = key !== shownKey;
        shownKey = key;
        if (!view || (!changed && JSON.stringify(view) === JSON.stringify(prev))) return NO();
        return view;
      },

      /* The stream's batch -> the market store (symbol, price, 24 h change, rules: what the
       * ticket reads) and CHART_TICKS (the newest state of each candle of the batch). A new
       * drawing (CHART_META) brings its last close as the price until the first tick. */
      receive: function (message, symbols, view, meta, market) {
        const symbol = view ? view.symbol : null, key = view ? symbol + ":" + view.interval : null;
        const m = Object.assign({}, market && market.symbol === symbol ? market : { symbol: symbol, price: null, change: null });
        m.rules = TL.rules(symbols, symbol);
        const klines = {};
        if (TL.triggered("market-stream") && message && message.stream === key) {
          message.events.forEach(function (ev) {
            const d = ev.data || {};
            if (ev.type === "TICKER") {
              const change = d.change24h !== undefined ? d.change24h : d.priceChangePercent;
              if (change !== undefined && change !== null) m.change = String(change);
              if (d.price || d.lastPrice) m.price = String(d.price || d.lastPrice);
            } else if (ev.type === "KLINE") {
              const k = d.kline || d, t = Number(k.time !== undefined ? k.time : k.openTime);
              klines[t] = { t: t, o: +k.open, h: +k.high, l: +k.low, c: +k.close, v: +k.volume };
              m.price = String(k.close);
            }
          });
        }
        if (m.price === null && meta && meta.symbol === symbol && meta.last !== null) m.price = String(meta.last);
        const list = Object.keys(klines).map(function (t) { return klines[t]; }).sort(function (a, b) { return a.t - b.t; });
        const same = market && ["symbol", "price", "change"].every(function (f) { return market[f] === m[f]; })
          && JSON.stringify(market.rules) === JSON.stringify(m.rules);
        m.t = Date.now();
        return [same ? NO() : m, list.length ? { key: key, klines: list, n: message.n } : NO()];
      },

      /* Ticks -> the figure, patched in place (last candle updated, or one appended); the
       * pair's price and change labels; the live candles for the indicators at most once a
       * second. */
      tick: function (ticks, meta, market, fig, priceLabel, changeLabel) {
        const D = TL.D, out = [NO(), NO(), NO(), NO(), NO()];
        const m = market || {};
        if (!meta || meta.symbol !== m.symbol) return [NO(), "—", "—", "pair-change mono", NO()];
        const ch = m.change === undefined ? null : m.change, up = ch !== null && D.parse(ch) >= 0n;
        const price = m.price === null || m.price === undefined ? "—" : D.fixed(m.price, TL.priceDp(m.rules));
        const change = ch === null ? "—" : (up ? "+" : "") + D.fixed(ch, 2) + "%";
        if (price !== priceLabel || change !== changeLabel) { // unchanged labels: no re-render
          out[1] = price; out[2] = change;
          out[3] = "pair-change mono" + (ch === null ? "" : up ? " up" : " down");
        }
        const c = fig && fig.data && fig.data[0];
        if (!TL.triggered("chart-ticks") || !ticks || ticks.key !== meta.key || !c || c.name !== meta.symbol) return out;
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
        if (meta.indicators.length && Date.now() - indicatorsAt >= 1000) {
          indicatorsAt = Date.now();
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
        return TL.triggered("chart-meta") || JSON.stringify(rows) !== JSON.stringify(prev) ? rows : NO();
      },
    },
  });
})();
