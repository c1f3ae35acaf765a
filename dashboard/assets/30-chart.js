/* The candlestick + volume chart, drawn in the browser. History comes from the klines route;
 * live kline updates extend or replace the last candle and redraw with Plotly.react on the
 * chart's own div, so a tick never goes through a Dash callback or re-renders the page. */
(function () {
  "use strict";
  const TL = window.TL;
  const chart = (TL.chart = {
    symbol: null, interval: "1m", indicators: [], candles: [], stream: null, dirty: false,
    loadSeq: 0, theme: "light",
  });
  const HISTORY = 300;

  // Display-only numbers: the chart needs floats; money maths elsewhere stays in decimals.
  function toCandle(k) {
    return {
      t: Number(k.time !== undefined ? k.time : k.openTime),
      o: parseFloat(k.open), h: parseFloat(k.high), l: parseFloat(k.low),
      c: parseFloat(k.close), v: parseFloat(k.volume),
    };
  }

  // ---------------------------------------------------------------- indicators
  /* Indicators are computed on the Dash server (dashboard/indicators.py): the chart sends its
   * times and closes into `chart-closes` (at once on a new view, then at most once a second)
   * and draws what comes back in `indicator-store`, matched to candles by time. */
  chart.ind = {};
  let closesTimer = null, closesAt = 0;
  function sendCloses() {
    closesTimer = null;
    closesAt = Date.now();
    if (!chart.indicators.length || !chart.candles.length) return;
    TL.setStore("chart-closes", { data: {
      key: chart.symbol + ":" + chart.interval, want: chart.indicators.slice(),
      t: chart.candles.map(function (k) { return k.t; }), c: chart.candles.map(function (k) { return k.c; }),
    } });
  }
  chart.requestIndicators = function (now) {
    if (now) { clearTimeout(closesTimer); return sendCloses(); }
    if (!closesTimer) closesTimer = setTimeout(sendCloses, Math.max(0, 1000 - (Date.now() - closesAt)));
  };
  chart.setIndicators = function (data) {
    chart.ind = data || {};
    if (chart.candles.length) chart.scheduleTick();
  };
  // One server series on the chart's x axis (null where the server has no value yet).
  function series(name, x) {
    const d = chart.ind;
    if (!d || d.key !== chart.symbol + ":" + chart.interval || !d[name]) return x.map(function () { return null; });
    const at = new Map();
    d.t.forEach(function (t, i) { at.set(t, d[name][i]); });
    return x.map(function (t) { const v = at.get(t); return v === undefined ? null : v; });
  }

  // ---------------------------------------------------------------- figure
  function palette() {
    const dark = document.body.classList.contains("dark");
    return dark
      ? { bg: "#131722", grid: "#242a38", text: "#c9d1e0", up: "#26a69a", down: "#ef5350" }
      : { bg: "#ffffff", grid: "#eceff4", text: "#2b3040", up: "#16a34a", down: "#dc2626" };
  }

  chart.figure = function () {
    const c = chart.candles, pal = palette(), ind = chart.indicators;
    const x = c.map(function (k) { return k.t; });
    const close = c.map(function (k) { return k.c; });
    const showRsi = ind.indexOf("rsi") >= 0;
    const data = [
      {
        type: "candlestick", name: chart.symbol, x: x, xaxis: "x", yaxis: "y",
        open: c.map(function (k) { return k.o; }), high: c.map(function (k) { return k.h; }),
        low: c.map(function (k) { return k.l; }), close: close,
        increasing: { line: { color: pal.up }, fillcolor: pal.up },
        decreasing: { line: { color: pal.down }, fillcolor: pal.down },
        showlegend: false,
      },
      {
        type: "bar", name: "Volume", x: x, y: c.map(function (k) { return k.v; }), yaxis: "y2",
        marker: { color: c.map(function (k) { return k.c >= k.o ? pal.up : pal.down; }), opacity: 0.5 },
        showlegend: false, hovertemplate: "%{y}<extra>volume</extra>",
      },
    ];
    if (ind.indexOf("sma") >= 0) {
      data.push({ type: "scatter", mode: "lines", name: "SMA 20", x: x, y: series("sma", x), line: { color: "#f59e0b", width: 1.4 } });
    }
    if (ind.indexOf("ema") >= 0) {
      data.push({ type: "scatter", mode: "lines", name: "EMA 20", x: x, y: series("ema", x), line: { color: "#8b5cf6", width: 1.4 } });
    }
    if (ind.indexOf("bb") >= 0) {
      data.push({ type: "scatter", mode: "lines", name: "BB upper", x: x, y: series("bbUpper", x), line: { color: "#3b82f6", width: 1, dash: "dot" } });
      data.push({ type: "scatter", mode: "lines", name: "BB lower", x: x, y: series("bbLower", x), line: { color: "#3b82f6", width: 1, dash: "dot" }, fill: "tonexty", fillcolor: "rgba(59,130,246,0.06)" });
    }
    if (showRsi) {
      data.push({ type: "scatter", mode: "lines", name: "RSI 14", x: x, y: series("rsi", x), yaxis: "y3", line: { color: "#ec4899", width: 1.2 } });
    }
    // The user's fills on this symbol, inside the visible window, each on the candle it
    // happened in: a fill's own time, later than the last candle's open, would widen the
    // x axis and leave a blank strip on the right.
    const t0 = x.length ? x[0] : 0;
    const step = x.length > 1 ? x[x.length - 1] - x[x.length - 2] : 0;
    const tLast = x.length ? x[x.length - 1] : Infinity;
    const onCandle = function (t) {
      return Math.min(tLast, step > 0 ? t0 + Math.floor((tradeTime(t) - t0) / step) * step : tradeTime(t));
    };
    const fills = Array.from(TL.state.trades.values()).filter(function (t) {
      return t.symbol === chart.symbol && tradeTime(t) >= t0;
    });
    ["BUY", "SELL"].forEach(function (side) {
      const f = fills.filter(function (t) { return String(t.side).toUpperCase() === side; });
      if (!f.length) return;
      data.push({
        type: "scatter", mode: "markers", name: side === "BUY" ? "Buys" : "Sells",
        x: f.map(onCandle), y: f.map(function (t) { return parseFloat(t.price); }),
        text: f.map(function (t) { return side + " " + t.quantity + " @ " + t.price; }),
        hovertemplate: "%{text}<extra></extra>",
        marker: {
          symbol: side === "BUY" ? "triangle-up" : "triangle-down", size: 11,
          color: side === "BUY" ? pal.up : pal.down, line: { color: pal.text, width: 1 },
        },
      });
    });
    // Open limit and stop orders as horizontal lines.
    const shapes = [], annotations = [];
    // Lines far outside the candles would squash them (shapes count in autorange): those
    // orders get a marker on the chart's top or bottom edge instead.
    let lo = Infinity, hi = -Infinity;
    c.forEach(function (k) { if (k.l < lo) lo = k.l; if (k.h > hi) hi = k.h; });
    // Near the market (within 5 % of the last close) an order is always a line.
    const lastClose = c.length ? c[c.length - 1].c : 0;
    const pad = Math.max((hi - lo) * 0.15, lastClose * 0.05);
    function orderLine(y, color, label, dash) {
      if (isFinite(lo) && (y < lo - pad || y > hi + pad)) {
        const above = y > hi;
        annotations.push({ xref: "paper", x: 1, xanchor: "right", yref: "y domain", y: above ? 1 : 0, yanchor: above ? "top" : "bottom", text: label + (above ? " ↑" : " ↓"), showarrow: false, font: { size: 10, color: color }, bgcolor: pal.bg });
        return;
      }
      shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: y, y1: y, line: { color: color, width: 1, dash: dash } });
      annotations.push({ xref: "paper", x: 1, xanchor: "right", yref: "y", y: y, yanchor: "bottom", text: label, showarrow: false, font: { size: 10, color: color } });
    }
    // A limit rests at its price; a stop order (STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT) is a
    // "stop" line at its trigger until the market reaches it, then a limit line. The two
    // legs of an OCO exit say TP (the LIMIT_MAKER take profit) and SL (the stop-loss).
    const STOP_TYPES = { STOP_LOSS_LIMIT: true, TAKE_PROFIT_LIMIT: true };
    Array.from(TL.state.orders.values()).forEach(function (o) {
      const type = String(o.type).toUpperCase();
      if (o.symbol !== chart.symbol || !TL.isOpen(o) || !o.price) return;
      if (type !== "LIMIT" && type !== "LIMIT_MAKER" && !STOP_TYPES[type]) return;
      const color = String(o.side).toUpperCase() === "BUY" ? pal.up : pal.down;
      const leg = o.orderListId == null ? "" : (type === "LIMIT_MAKER" ? "TP " : "SL ");
      const what = leg + o.side + " " + o.quantity;
      if (STOP_TYPES[type] && o.stopPrice && !o.stopTriggered) {
        orderLine(parseFloat(o.stopPrice), color, what + " stop " + o.stopPrice + " → " + o.price, "dashdot");
        return;
      }
      orderLine(parseFloat(o.price), color, what + " @ " + o.price, "dash");
    });
    const layout = {
      uirevision: chart.symbol + ":" + chart.interval,
      height: 460, margin: { l: 10, r: 60, t: 10, b: 30 },
      paper_bgcolor: pal.bg, plot_bgcolor: pal.bg, font: { color: pal.text, size: 11 },
      showlegend: ind.length > 0, legend: { orientation: "h", x: 0, y: 1.02, font: { size: 10 } },
      xaxis: { type: "date", rangeslider: { visible: false }, gridcolor: pal.grid, showspikes: true, spikemode: "across", spikethickness: 1 },
      yaxis: { side: "right", gridcolor: pal.grid, domain: showRsi ? [0.42, 1] : [0.24, 1], tickformat: "", fixedrange: false },
      yaxis2: { side: "right", gridcolor: pal.grid, domain: showRsi ? [0.24, 0.38] : [0, 0.2], showticklabels: false },
      shapes: shapes, annotations: annotations, hovermode: "x", dragmode: "pan",
    };
    if (showRsi) {
      layout.yaxis3 = { side: "right", gridcolor: pal.grid, domain: [0, 0.18], range: [0, 100], tickvals: [30, 70] };
    }
    return { data: data, layout: layout };
  };
  function tradeTime(t) {
    const v = t.time;
    return typeof v === "number" ? v : new Date(v).getTime();
  }

  function graphDiv() {
    const el = document.getElementById("price-chart");
    return el ? el.querySelector(".js-plotly-plot") : null;
  }

  // Full render through Dash (a new symbol, timeframe, indicator set or theme).
  // Indicators need a minimum of candles; say so instead of drawing an empty line.
  const NEEDS = { sma: 20, ema: 20, bb: 20, rsi: 15 };
  const NAMES = { sma: "SMA 20", ema: "EMA 20", bb: "Bollinger", rsi: "RSI 14" };
  function indicatorNote() {
    const short = chart.indicators.filter(function (i) { return NEEDS[i] && chart.candles.length < NEEDS[i]; });
    if (!short.length || !chart.candles.length) return "";
    return short.map(function (i) { return NAMES[i]; }).join(", ") + " need" + (short.length > 1 ? "" : "s") +
      " at least " + Math.max.apply(null, short.map(function (i) { return NEEDS[i]; })) +
      " candles; this timeframe has " + chart.candles.length + ". Pick a shorter timeframe.";
  }
  chart.render = function () {
    if (!chart.symbol) return;
    TL.setStore("chart-note", { children: indicatorNote() });
    chart.requestIndicators(true);
    const fig = chart.figure();
    TL.setStore("price-chart", { figure: fig });
  };
  // Tick render: straight to Plotly, batched to ~4 frames a second.
  chart.scheduleTick = function () {
    if (chart.dirty) return;
    chart.dirty = true;
    setTimeout(function () {
      chart.dirty = false;
      const gd = graphDiv();
      if (!gd || !window.Plotly || !gd.data) return chart.render();
      const fig = chart.figure();
      window.Plotly.react(gd, fig.data, Object.assign({}, fig.layout, { width: undefined }));
    }, 250);
  };
  chart.overlaysChanged = function () { if (chart.candles.length) chart.scheduleTick(); };

  function applyKline(k) {
    const c = toCandle(k);
    const cs = chart.candles;
    const last = cs[cs.length - 1];
    if (last && c.t === last.t) cs[cs.length - 1] = c;
    else if (!last || c.t > last.t) {
      cs.push(c);
      if (cs.length > HISTORY) cs.shift();
    } else return; // an old candle: history already has it
    TL.setPrice(k.close);
    chart.requestIndicators(false);
    chart.scheduleTick();
  }

  chart.load = async function (symbol, interval) {
    const seq = ++chart.loadSeq;
    chart.symbol = symbol;
    chart.interval = interval;
    if (chart.stream) { chart.stream.close(); chart.stream = null; }
    try {
      const data = await TL.api("/api/market/" + symbol + "/klines?interval=" + interval + "&limit=" + HISTORY, { auth: !!TL.getSession() });
      if (seq !== chart.loadSeq) return;
      chart.candles = TL.asList(data, "klines").map(toCandle).sort(function (a, b) { return a.t - b.t; });
      const last = chart.candles[chart.candles.length - 1];
      if (last) TL.setPrice(String(last.c));
      chart.render();
      TL.setStore("chart-error", { children: "" });
    } catch (e) {
      if (seq !== chart.loadSeq) return;
      chart.candles = [];
      chart.render();
      TL.setStore("chart-error", { children: "Chart unavailable: " + e.message });
    }
    if (seq !== chart.loadSeq) return;
    chart.stream = new TL.LiveStream("market", {
      // One market stream per tab (a browser allows six connections per host): it also
      // carries the order book's DEPTH and MARKET_TRADE events (60-order-book.js).
      events: ["KLINE", "TICKER", "DEPTH", "MARKET_TRADE"],
      url: async function () {
        let url = TL.apiUrl + "/api/market/" + symbol + "/stream?interval=" + interval +
          "&channels=kline,depth,trades";
        if (TL.getSession()) {
          try { url += "&token=" + encodeURIComponent(await TL.streamToken()); } catch (e) { /* public */ }
        }
        return url;
      },
      onEvent: function (type, k) {
        if (seq !== chart.loadSeq) return;
        if (type === "DEPTH" || type === "MARKET_TRADE") {
          if (TL.onMarketBook) TL.onMarketBook(type, symbol, k);
        } else if (type === "TICKER") TL.applyTicker(symbol, k);
        else applyKline(k.kline || k);
      },
      // After a gap, re-read history so missed candles appear.
      onOpen: function () {
        if (chart.stream && chart.stream.retry === 0 && chart.stream.opened) chart.refreshHistory(seq);
        if (chart.stream) chart.stream.opened = true;
      },
    });
    chart.stream.open();
  };
  chart.refreshHistory = async function (seq) {
    try {
      const data = await TL.api("/api/market/" + chart.symbol + "/klines?interval=" + chart.interval + "&limit=" + HISTORY, { auth: !!TL.getSession() });
      if (seq !== chart.loadSeq) return;
      chart.candles = TL.asList(data, "klines").map(toCandle).sort(function (a, b) { return a.t - b.t; });
      chart.scheduleTick();
    } catch (e) { /* keep what we have */ }
  };

  chart.configure = function (symbol, interval, indicators) {
    const needLoad = symbol !== chart.symbol || interval !== chart.interval;
    chart.indicators = indicators || [];
    if (needLoad) {
      TL.market.symbol = symbol;
      TL.market.change = null;
      TL.setStore("pair-price", { children: "—" });
      TL.setStore("pair-change", { children: "—", className: "pair-change mono" });
      chart.load(symbol, interval);
      TL.loadTicker(symbol);
    } else {
      chart.render();
    }
  };
  chart.stop = function () {
    chart.loadSeq++;
    if (chart.stream) { chart.stream.close(); chart.stream = null; }
    chart.symbol = null;
  };
  setInterval(function () {
    if (chart.symbol && document.visibilityState === "visible") TL.loadTicker(chart.symbol);
  }, 15000);
})();
