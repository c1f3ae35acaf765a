/* TradeLedger dashboard core: the API client the browser still needs (the session, the stream
 * token, the REST resync of the streams), decimal display helpers for the rows still mapped
 * here, batching into dcc.Stores, and the resumable SSE client.
 *
 * Live data arrives over SSE and is pushed into dcc.Store components with
 * dash_clientside.set_props, batched every ~100 ms, so an update re-renders only the
 * component that shows it, never the page.
 */
(function () {
  "use strict";
  const TL = (window.TL = window.TL || {});

  // ---------------------------------------------------------------- config & session
  TL.apiUrl = ((window.TL_CONFIG || {}).apiUrl || "").replace(/\/$/, "");
  // ---------------------------------------------------------------- API client
  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message || "request failed");
      this.status = status;
      this.code = code || "error";
      this.details = details || {};
    }
  }
  TL.ApiError = ApiError;

  TL.api = async function (path, opts) {
    opts = opts || {};
    const method = opts.method || "GET";
    const headers = { Accept: "application/json" };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    if (path.indexOf("/auth/") === 0) headers["X-Refresh-Cookie"] = "1";
    const s = TL.getSession();
    if (opts.auth !== false && s) headers.Authorization = "Bearer " + s.token;
    let res;
    try {
      res = await fetch(TL.apiUrl + path, {
        method: method,
        headers: headers,
        body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
        credentials: opts.credentials || "same-origin",
      });
    } catch (e) {
      throw new ApiError(0, "network", "cannot reach the API");
    }
    if (res.status === 401 && opts.auth !== false && opts.retry !== false) {
      if (await refreshSession()) return TL.api(path, Object.assign({}, opts, { retry: false }));
      TL.setSession(null);
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = text; }
    }
    if (!res.ok) {
      const err = (data && data.error) || {};
      throw new ApiError(res.status, err.code, err.message || res.statusText, err.details);
    }
    return data;
  };

  // Lists may come bare or wrapped ({items: [...]}, {orders: [...]}).
  TL.asList = function (data, key) {
    if (Array.isArray(data)) return data;
    if (!data || typeof data !== "object") return [];
    for (const k of [key, "items", "data", "results"]) {
      if (k && Array.isArray(data[k])) return data[k];
    }
    return [];
  };

  // ---------------------------------------------------------------- decimals (BigInt, 18 dp)
  // Prices and quantities are shown exactly: never through floats.
  const SCALE = 18;
  const ONE = 10n ** 18n;
  const D = (TL.D = {});
  D.parse = function (value) {
    if (value === null || value === undefined) return null;
    let s = String(value).trim();
    if (!/^-?(\d+\.?\d*|\.\d+)(e-?\d+)?$/i.test(s)) return null;
    if (/e/i.test(s)) s = Number(s).toFixed(SCALE); // only for exotic inputs
    const neg = s.startsWith("-");
    if (neg) s = s.slice(1);
    const parts = s.split(".");
    const frac = ((parts[1] || "") + "0".repeat(SCALE)).slice(0, SCALE);
    const v = BigInt(parts[0] || "0") * ONE + BigInt(frac || "0");
    return neg ? -v : v;
  };
  D.format = function (v, dp) {
    if (v === null || v === undefined) return "";
    const neg = v < 0n;
    if (neg) v = -v;
    const i = v / ONE;
    let f = (v % ONE).toString().padStart(SCALE, "0");
    if (dp !== undefined) f = f.slice(0, dp);
    else f = f.replace(/0+$/, "");
    return (neg ? "-" : "") + i.toString() + (f ? "." + f : "");
  };
  D.decimals = function (step) {
    const s = String(step || "");
    if (s.indexOf(".") < 0) return 0;
    return s.split(".")[1].replace(/0+$/, "").length;
  };
  // Display a decimal string with a fixed number of places (display only).
  D.fixed = function (value, dp) {
    const v = D.parse(value);
    if (v === null) return value === null || value === undefined ? "—" : String(value);
    const neg = v < 0n;
    const abs = neg ? -v : v;
    const unit = 10n ** BigInt(SCALE - dp);
    const rounded = ((abs + unit / 2n) / unit) * unit;
    return (neg && rounded !== 0n ? "-" : "") + D.format(rounded, dp).replace(/\.$/, "");
  };

  // ---------------------------------------------------------------- batching into stores
  const pending = {};
  let flushTimer = null;
  // `props` may be a function of what is pending, to add to it (events that must not be lost).
  TL.setStore = function (id, props) {
    pending[id] = Object.assign(pending[id] || {}, typeof props === "function" ? props(pending[id] || {}) : props);
    if (!flushTimer) flushTimer = setTimeout(TL.flush, 100);
  };
  TL.flush = function () {
    flushTimer = null;
    const ids = Object.keys(pending);
    for (const id of ids) {
      const props = pending[id];
      delete pending[id];
      try {
        window.dash_clientside.set_props(id, props);
      } catch (e) {
        /* the component is not mounted yet; the next flush will carry fresh state */
      }
    }
  };

  // ---------------------------------------------------------------- resumable SSE
  /* One EventSource with the rules of a short-lived token: the browser's own reconnect keeps
   * Last-Event-ID; a 401 (or any HTTP error) closes the source for good, so we fetch a new
   * token and open a new one, passing the last id we saw; `onOpen` resyncs from REST, and
   * consumers merge by id/version so a replayed event never duplicates a row. */
  class LiveStream {
    constructor(name, opts) {
      this.name = name;
      this.opts = opts;
      this.es = null;
      this.lastId = null;
      this.retry = 0;
      this.timer = null;
      this.closed = true;
      this.status = "down";
    }
    setStatus(status) {
      if (this.status === status) return;
      this.status = status;
      if (this.opts.onStatus) this.opts.onStatus(status);
    }
    async open() {
      this.closed = false;
      clearTimeout(this.timer);
      if (this.es) { this.es.close(); this.es = null; }
      this.setStatus("connecting");
      let url;
      try {
        url = await this.opts.url(this.lastId);
      } catch (e) {
        return this.scheduleReopen();
      }
      if (this.closed) return;
      const es = new EventSource(url);
      this.es = es;
      const self = this;
      es.onopen = function () {
        if (self.es !== es) return;
        self.retry = 0;
        self.setStatus("live");
        if (self.opts.onOpen) self.opts.onOpen();
      };
      es.onerror = function () {
        if (self.es !== es) return;
        if (es.readyState === EventSource.CLOSED) {
          self.setStatus("down");
          self.scheduleReopen();
        } else {
          self.setStatus("connecting");
        }
      };
      const dispatch = function (type) {
        return function (ev) {
          if (self.es !== es) return;
          if (ev.lastEventId) self.lastId = ev.lastEventId;
          let data = null;
          try { data = JSON.parse(ev.data); } catch (e) { return; }
          self.opts.onEvent(type, data, ev.lastEventId);
        };
      };
      for (const type of this.opts.events || []) es.addEventListener(type, dispatch(type));
      es.onmessage = dispatch("message");
    }
    scheduleReopen() {
      if (this.closed) return;
      clearTimeout(this.timer);
      const delay = Math.min(10000, 500 * Math.pow(2, this.retry++)) + Math.random() * 250;
      const self = this;
      this.timer = setTimeout(function () { self.open(); }, delay);
    }
    close() {
      this.closed = true;
      clearTimeout(this.timer);
      if (this.es) { this.es.close(); this.es = null; }
      this.setStatus("down");
    }
  }
  TL.LiveStream = LiveStream;

  TL.streamToken = async function () {
    const data = await TL.api("/api/stream-token", { method: "POST" });
    return data.token;
  };

})();
