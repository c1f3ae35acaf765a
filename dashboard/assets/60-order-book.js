/* The order book's browser side (dashboard/order_book.py): its live merge, its rows and a
 * click on them. Why JS: the ladder is refilled in place up to twice a second (with the
 * market stream's batches); a Dash re-render of its rows would replace them under the
 * pointer and lose clicks, so the rows are drawn once and `render` writes their text. */
(function () {
  "use strict";
  const ROWS = 30;

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
      /* The REST snapshot (a new symbol) and the market stream's DEPTH and MARKET_TRADE
       * events -> the book store: the newest book, the last trades by id. */
      receive: function (message, snapshot, book) {
        const symbol = snapshot ? snapshot.symbol : null;
        const cur = book && book.symbol === symbol ? book : { symbol: symbol, book: null, trades: [] };
        const next = { symbol: symbol, book: cur.book, trades: cur.trades.slice() };
        const addTrades = function (list) {
          const last = next.trades.length ? next.trades[next.trades.length - 1].id : -1;
          (list || []).forEach(function (t) { if (t && t.id > last) next.trades.push(t); });
          next.trades.sort(function (a, b) { return a.id - b.id; });
          next.trades = next.trades.slice(-ROWS);
        };
        if (TL.triggered("book-snapshot") && snapshot) {
          if (!next.book) next.book = snapshot.book;
          addTrades(snapshot.trades);
        }
        if (TL.triggered("market-stream") && message && symbol
            && String(message.stream).split(":")[0] === symbol) {
          message.events.forEach(function (ev) {
            if (ev.type === "DEPTH" && ev.data) next.book = ev.data;
            else if (ev.type === "MARKET_TRADE") addTrades([ev.data]);
          });
        }
        return next;
      },
      /* A click on a row (its n_clicks) -> the price `render` wrote there, for the ticket;
       * `n` counts clicks, so the same price twice still changes the store. */
      click: function (_clicks, book, prev) {
        const t = window.dash_clientside.callback_context.triggered[0];
        if (!t || !t.value) return window.dash_clientside.no_update;
        const row = document.getElementById(t.prop_id.slice(0, t.prop_id.lastIndexOf(".")));
        const price = row && row.getAttribute("data-book-price");
        if (!price) return window.dash_clientside.no_update; // an empty row
        return { price: price, side: row.getAttribute("data-book-side"), symbol: book ? book.symbol : null,
          n: ((prev && prev.n) || 0) + 1 };
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
