/* The user stream's events and REST snapshots merged into the account's row stores.
 * Why JS: the rows are on the click -> FILLED path (a server hop per batch made it slower,
 * docs/dashboard.md). The stream itself is the EventStream component and its URL and
 * snapshots are server callbacks (dashboard/live_account.py). */
(function () {
  "use strict";
  const NO = function () { return window.dash_clientside.no_update; };
  const KINDS = { ORDER_UPDATE: "order", TRADE: "trade", POSITION: "position" };
  // The newest event each callback has seen: a message repeats the last ones (EventStream `keep`).
  const seen = { merge: 0, balances: 0, reset: 0 };
  function fresh(message, who) {
    const events = ((message && message.events) || []).filter(function (ev) { return ev.seq > seen[who]; });
    events.forEach(function (ev) { seen[who] = Math.max(seen[who], ev.seq); });
    return events;
  }

  // Each kind: its key, and whether a row replaces the one held (by version, by time).
  const rules = {
    order: { key: function (o) { return o.orderId; }, newer: function (o, cur) {
      const v = Number(o.version) || 0, cv = Number(cur.version) || 0;
      return v > cv || (v === cv && cur.status !== o.status);
    } },
    trade: { key: function (t) { return t.tradeId ? t.orderId + ":" + t.tradeId : null; },
      newer: function () { return false; } }, // a trade never changes
    position: { key: function (p) { return p.symbol; }, newer: function (p, cur) {
      return !(cur.updatedAt && p.updatedAt && cur.updatedAt > p.updatedAt);
    } },
  };
  function keyed(kind, rows) {
    const map = new Map();
    (rows || []).forEach(function (r) { map.set(rules[kind].key(r), r); });
    return map;
  }
  function add(kind, map, row) {
    const key = row && rules[kind].key(row);
    if (!key) return false;
    const cur = map.get(key);
    if (cur && !rules[kind].newer(row, cur)) return false;
    map.set(key, Object.assign({}, cur || {}, row));
    return true;
  }
  function newest(map, field) { // up to 500 rows, newest first
    return Array.from(map.values()).sort(function (a, b) {
      const x = String(a[field] || ""), y = String(b[field] || "");
      return x < y ? 1 : x > y ? -1 : 0;
    }).slice(0, 500);
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    live: {
      /* message (the stream's batch) or snapshot (REST) -> orders, trades, positions stores,
       * the batch's ALERT events, and the Orders grid's rows. */
      merge: function (message, snapshot, orders, trades, positions, symbols) {
        const bySnapshot = TL.triggered("user-snapshot");
        if (bySnapshot && snapshot && snapshot.clear) return [[], [], [], NO(), []];
        const maps = { order: keyed("order", orders), trade: keyed("trade", trades), position: keyed("position", positions) };
        const changed = {}, alerts = [];
        const put = function (kind, row) { if (add(kind, maps[kind], row)) changed[kind] = true; };
        if (bySnapshot && snapshot) {
          ["order", "trade", "position"].forEach(function (k) { (snapshot[k + "s"] || []).forEach(function (r) { put(k, r); }); });
        }
        if (TL.triggered("user-stream")) {
          fresh(message, "merge").forEach(function (ev) {
            const d = ev.data, payload = (d && (d.order || d.trade || d.position)) || d;
            if (ev.type === "ALERT") alerts.push(payload);
            else if (KINDS[ev.type]) put(KINDS[ev.type], payload);
          });
        }
        const rows = changed.order ? newest(maps.order, "createdAt") : null;
        return [rows || NO(), changed.trade ? newest(maps.trade, "time") : NO(),
          changed.position ? Array.from(maps.position.values()) : NO(),
          alerts.length ? alerts : NO(), rows ? TL.orderRows(rows, symbols) : NO()];
      },

      // RESET in a batch: the server reads a snapshot again (live_account.py says why apart).
      resetDue: function (message) {
        return fresh(message, "reset").some(function (ev) { return ev.type === "RESET"; }) ? Date.now() : NO();
      },

      /* Balances follow fills: read them 400 ms after a batch with an order or trade event,
       * once the exchange's new balance has reached the API. */
      balancesDue: function (message) {
        const due = fresh(message, "balances").some(function (ev) { return ev.type === "ORDER_UPDATE" || ev.type === "TRADE"; });
        if (!due) return NO();
        return new Promise(function (resolve) { setTimeout(function () { resolve(Date.now()); }, 400); });
      },
    },
  });
})();
