"""The order book screen: a depth ladder with the spread, and the recent market trades.

Data flow (all in the browser; the book is a hot path at up to 10 updates a second):
`route` (the trade page's symbol) -> `connect` opens `EventSource(/api/market/{symbol}/stream
?channels=depth,trades)` after a REST snapshot (`/depth`, `/trades`), and closes it when the
trader leaves the trade page or switches symbol, so the API subscribes to the exchange only
while someone watches. DEPTH and MARKET_TRADE events update JS state that is pushed into
BOOK_STORE at most four times a second; `render` draws the ladder and the trades from it.

A click on a price (a ladder level or a trade) sets PRICE_CLICK_STORE to
`{price, side ("bid" | "ask" | "trade"), symbol, n}` (`n` grows with each click, so clicking
the same price twice still changes the store). The order ticket reads it to fill its price.
"""

from __future__ import annotations

from string import Template

from dash import Input, Output, clientside_callback, dcc, html

PANEL = "order-book-panel"
BOOK_STORE = "book-store"  # {symbol, book: {bids, asks, lastUpdateId}, trades: [...]}
CONNECTION_STORE = "book-connection"  # {symbol}: the stream this page holds open
PRICE_CLICK_STORE = "book-price-click"  # {price, side, symbol, n}: read by the ticket
LADDER = "book-ladder"
SPREAD = "book-spread"
TRADES = "book-trades"
LEVELS = 10  # per side on screen (the stream carries 20)
TRADE_ROWS = 30


def _row(side: str) -> html.Div:
    return html.Div(className=f"book-row {side}", style={"visibility": "hidden"},
                    **{"data-book-side": side}, children=[
        html.Span(className="book-price"), html.Span(className="book-qty"),
        html.Span(className="book-total" + (" muted" if side == "trade" else "")),
    ])


def layout() -> html.Div:
    """The panel: the ladder (asks above, bids below, the spread between), then the trades.

    The rows are drawn once and filled in place by `render`: redrawn rows would be replaced
    under the pointer several times a second, and a click on them would get lost.
    """
    return html.Div(className="panel order-book", id=PANEL, children=[
        html.H4("Order book"),
        html.Div(className="book-head muted", children=[
            html.Span("Price"), html.Span("Amount"), html.Span("Total"),
        ]),
        html.Div(id=LADDER, className="book-ladder mono", children=[
            *[_row("ask") for _ in range(LEVELS)],
            html.Div("connecting…", id=SPREAD, className="book-spread"),
            *[_row("bid") for _ in range(LEVELS)],
        ]),
        html.H4("Market trades", className="book-trades-title"),
        html.Div(className="book-head muted", children=[
            html.Span("Price"), html.Span("Amount"), html.Span("Time"),
        ]),
        html.Div(id=TRADES, className="book-trades mono",
                 children=[_row("trade") for _ in range(TRADE_ROWS)]),
        dcc.Store(id=BOOK_STORE),
        dcc.Store(id=CONNECTION_STORE),
        dcc.Store(id=PRICE_CLICK_STORE),
    ])


clientside_callback(
    Template("""
    function (route, config) {
        const nu = window.dash_clientside.no_update;
        const st = window.__tlBook || (window.__tlBook = {
            es: null, symbol: null, book: null, trades: [], timer: null, clicks: 0});
        if (!st.listening) {
            st.listening = true;
            // One delegated listener: the ladder is redrawn constantly, its rows with it.
            document.addEventListener("click", function (ev) {
                const row = ev.target && ev.target.closest
                    ? ev.target.closest("[data-book-price]") : null;
                if (!row) return;
                st.clicks += 1;
                window.dash_clientside.set_props("$click", {data: {
                    price: row.getAttribute("data-book-price"),
                    side: row.getAttribute("data-book-side"),
                    symbol: st.symbol, n: st.clicks}});
            });
        }
        const symbol = route && route.page === "trade" ? route.symbol : null;
        if (symbol === st.symbol) return nu;
        if (st.es) { st.es.close(); st.es = null; }
        st.symbol = symbol; st.book = null; st.trades = [];
        if (!symbol || !config || !config.apiUrl) return {symbol: null};
        const base = config.apiUrl + "/api/market/" + encodeURIComponent(symbol);
        function push() {
            if (st.timer) return;
            st.timer = setTimeout(function () {
                st.timer = null;
                if (st.symbol !== symbol) return;
                window.dash_clientside.set_props("$store", {data: {
                    symbol: symbol, book: st.book, trades: st.trades.slice(-$rows)}});
            }, 250);
        }
        function addTrades(list) {
            const last = st.trades.length ? st.trades[st.trades.length - 1].id : -1;
            list.forEach(function (t) { if (t.id > last) st.trades.push(t); });
            st.trades.sort(function (a, b) { return a.id - b.id; });
            if (st.trades.length > 2 * $rows) {
                st.trades.splice(0, st.trades.length - $rows);
            }
            push();
        }
        function json(r) { return r.ok ? r.json() : null; }
        fetch(base + "/depth?limit=20").then(json).then(function (b) {
            if (b && st.symbol === symbol && !st.book) { st.book = b; push(); }
        }).catch(function () {});
        fetch(base + "/trades?limit=$rows").then(json).then(function (ts) {
            if (ts && st.symbol === symbol) addTrades(ts);
        }).catch(function () {});
        const es = new EventSource(base + "/stream?channels=depth,trades");
        es.addEventListener("DEPTH", function (e) {
            if (st.symbol !== symbol) return;
            st.book = JSON.parse(e.data); push();
        });
        es.addEventListener("MARKET_TRADE", function (e) {
            if (st.symbol === symbol) addTrades([JSON.parse(e.data)]);
        });
        st.es = es;
        return {symbol: symbol};
    }
    """).substitute(click=PRICE_CLICK_STORE, store=BOOK_STORE, rows=TRADE_ROWS),
    Output(CONNECTION_STORE, "data"),
    Input("route", "data"), Input("config", "data"),
)


clientside_callback(
    Template("""
    function (data) {
        function plain(s, keep) {  // "50005.00000000" -> "50005.00": Binance pads to 8
            const text = String(s);
            if (text.indexOf(".") < 0) return text;
            const parts = text.split(".");
            let frac = parts[1].replace(/0+$$/, "");
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
            const rows = Array.from(document.querySelectorAll("#$ladder .book-row." + name));
            if (!bestFirst) rows.reverse();  // asks: the best one sits next to the spread
            let total = 0;
            const cum = levels.map(function (l) { total += Number(l[1]); return total; });
            rows.forEach(function (row, i) {
                const l = levels[i];
                if (!l) { put(row, null); return; }
                put(row, l[0], [plain(l[0], 2), plain(l[1], 0), plain(cum[i].toFixed(8), 0)],
                    Math.round(100 * cum[i] / (total || 1)));
            });
        }
        const book = data && data.book;
        side("ask", book ? (book.asks || []).slice(0, $levels) : [], false);
        side("bid", book ? (book.bids || []).slice(0, $levels) : [], true);
        const trades = data && data.trades ? data.trades.slice().reverse() : [];
        document.querySelectorAll("#$trades .book-row").forEach(function (row, i) {
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
    }
    """).substitute(levels=LEVELS, ladder=LADDER, trades=TRADES),
    Output(SPREAD, "children"),
    Input(BOOK_STORE, "data"),
)
