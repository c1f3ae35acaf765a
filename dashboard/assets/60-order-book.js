/* The order book's browser side (dashboard/order_book.py): its live feed and its rows.
 *
 * One market stream per tab. A browser keeps at most six HTTP/1.1 connections per host, and
 * a tab already holds two SSE streams to the API (the user's, the chart's market stream); a
 * third for the book left two tabs with no connection to send an order on. So the book adds
 * no stream of its own: the chart's market stream asks for the depth and trades channels too
 * and hands their DEPTH and MARKET_TRADE events to TL.onMarketBook (30-market.js). Without a
 * market stream the book shows its REST snapshot. It stays in JS because the ladder is
 * refilled in place four times a second: a Dash re-render of 50 rows would lose clicks. */
(function () {
  "use strict";
  const ROWS = 30;
  const st = { symbol: null, book: null, trades: [], timer: null, clicks: 0, apiUrl: null };

  function push() {
    if (st.timer) return;
    st.timer = setTimeout(function () {
      st.timer = null;
      if (!st.symbol || !window.dash_clientside || !window.dash_clientside.set_props) return;
      window.dash_clientside.set_props("book-store", { data: {
        symbol: st.symbol, book: st.book, trades: st.trades.slice(-ROWS) } });
    }, 250); // at most four renders a second
  }
  function addTrades(list) {
    const last = st.trades.length ? st.trades[st.trades.length - 1].id : -1;
    list.forEach(function (t) { if (t && t.id > last) st.trades.push(t); });
    st.trades.sort(function (a, b) { return a.id - b.id; });
    if (st.trades.length > 2 * ROWS) st.trades.splice(0, st.trades.length - ROWS);
    push();
  }
  window.TL = window.TL || {};
  window.TL.onMarketBook = function (type, symbol, data) {
    if (String(symbol).toUpperCase() !== st.symbol || !data) return;
    if (type === "DEPTH") { st.book = data; push(); } else addTrades([data]);
  };

  // One delegated listener: clicks on a level or a trade, whatever was redrawn meanwhile.
  document.addEventListener("click", function (ev) {
    const row = ev.target && ev.target.closest ? ev.target.closest("[data-book-price]") : null;
    if (!row || !window.dash_clientside) return;
    st.clicks += 1;
    window.dash_clientside.set_props("book-price-click", { data: {
      price: row.getAttribute("data-book-price"), side: row.getAttribute("data-book-side"),
      symbol: st.symbol, n: st.clicks } });
  });

  function plain(s, keep) { // "50005.00000000" -> "50005.00": Binance pads to 8 decimals
    const text = String(s);
    if (text.indexOf(".") < 0) return text;
    const parts = text.split(".");
    let frac = parts[1].replace(/0+$/, "");
    while (frac.length < keep) frac += "0";
    return frac ? parts[0] + "." + frac : parts[0];
  }
  function put(row, price, cells, depth) {
    if (price === null) {
      row.style.visibility = "hidden";
      row.removeAttribute("data-book-price");
      return;
    }
    row.style.visibility = "";
    row.setAttribute("data-book-price", price);
    cells.forEach(function (text, i) { row.children[i].textContent = text; });
    if (depth !== null) row.style.setProperty("--depth", depth + "%");
  }
  function side(name, levels, bestFirst) {
    const rows = Array.from(document.querySelectorAll("#book-ladder .book-row." + name));
    if (!bestFirst) rows.reverse(); // asks: the best one sits next to the spread
    levels = levels.slice(0, rows.length); // as many levels as the layout drew rows
    let total = 0;
    const cum = levels.map(function (l) { total += Number(l[1]); return total; });
    rows.forEach(function (row, i) {
      const l = levels[i];
      if (!l) { put(row, null); return; }
      put(row, l[0], [plain(l[0], 2), plain(l[1], 0), plain(cum[i].toFixed(8), 0)],
          Math.round(100 * cum[i] / (total || 1)));
    });
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.book = {
      /* route -> the symbol the book follows; a REST snapshot of it at once. */
      follow: function (route, config) {
        const symbol = route && route.page === "trade" ? route.symbol : null;
        if (symbol === st.symbol) return window.dash_clientside.no_update;
        st.symbol = symbol; st.book = null; st.trades = [];
        if (!symbol || !config || !config.apiUrl) return { symbol: null };
        const base = config.apiUrl + "/api/market/" + encodeURIComponent(symbol);
        const json = function (r) { return r.ok ? r.json() : null; };
        fetch(base + "/depth?limit=20").then(json).then(function (b) {
          if (b && st.symbol === symbol && !st.book) { st.book = b; push(); }
        }).catch(function () { /* the stream fills it */ });
        fetch(base + "/trades?limit=" + ROWS).then(json).then(function (ts) {
          if (ts && st.symbol === symbol) addTrades(ts);
        }).catch(function () { /* the stream fills it */ });
        push();
        return { symbol: symbol };
      },
      /* book-store -> the pre-drawn rows, filled in place; returns the spread line. */
      render: function (data) {
        const book = data && data.book;
        side("ask", book ? book.asks || [] : [], false);
        side("bid", book ? book.bids || [] : [], true);
        const trades = data && data.trades ? data.trades.slice().reverse() : [];
        document.querySelectorAll("#book-trades .book-row").forEach(function (row, i) {
          const t = trades[i];
          if (!t) { put(row, null); return; }
          row.classList.toggle("down", t.side === "SELL");
          row.classList.toggle("up", t.side !== "SELL");
          put(row, t.price, [plain(t.price, 2), plain(t.qty, 0),
                             new Date(Number(t.time)).toISOString().slice(11, 19)], null);
        });
        if (!book || !book.bids || !book.asks || !book.bids.length || !book.asks.length) {
          return "waiting for the book…";
        }
        const bid = Number(book.bids[0][0]), ask = Number(book.asks[0][0]);
        const dp = Math.max(2, (plain(book.asks[0][0], 2).split(".")[1] || "").length);
        const bp = 20000 * (ask - bid) / (ask + bid);
        return "Spread " + (ask - bid).toFixed(dp) + " (" + bp.toFixed(2) + " bp)";
      },
  };
})();
