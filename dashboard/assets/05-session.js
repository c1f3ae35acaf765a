/* The session: sign in, register, sign out, and the access token's refresh.
 *
 * Why this is JS and not a server callback (issue 18 allows either; docs/dashboard.md,
 * "Session"): the refresh token is an HttpOnly cookie of the API's origin, path /auth
 * (docs/security.md). Only the browser's own request to the API can receive it and send it
 * back; a sign-in made by the dashboard's server would get the cookie itself, and proxying
 * /auth through the dashboard would put every user's sign-in behind the dashboard's one
 * address, where the API's per-address sign-in budgets would be shared by all. Refresh
 * tokens rotate and a reused one revokes the login, so the tabs of one browser must take
 * turns: a cross-tab Web Lock, which only the browser has.
 * What leaves here is the `auth` store ({token, user}); server callbacks read the token
 * from it (dashboard/api_client.py token_of). */
(function () {
  "use strict";
  const TL = (window.TL = window.TL || {});
  const NO = function () { return window.dash_clientside.no_update; };

  TL.session = null; // {token, user:{id,email}}; the refresh token is an HttpOnly cookie

  function readStoredSession() {
    try {
      const raw = window.localStorage.getItem("auth");
      const data = raw ? JSON.parse(raw) : null;
      return data && data.token ? data : null;
    } catch (e) {
      return null;
    }
  }
  TL.getSession = function () {
    if (!TL.session) TL.session = readStoredSession();
    return TL.session;
  };
  // Refresh the access token a minute before it expires, so the token the server-side
  // callbacks read from the auth store is always current.
  let refreshTimer = null;
  TL.scheduleRefresh = function () {
    clearTimeout(refreshTimer);
    const s = TL.session;
    if (!s || !s.token) return;
    const exp = tokenExp(s.token);
    if (!exp) return;
    const wait = Math.max(5000, exp * 1000 - Date.now() - 60000);
    refreshTimer = setTimeout(function () { refreshSession(); }, wait);
  };
  TL.setSession = function (session) {
    TL.session = session && session.token ? session : null;
    TL.scheduleRefresh();
    // Keep the dcc.Store (and with it localStorage, shared by every tab) in step.
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props("auth", { data: TL.session });
    }
  };
  // Another tab logged in, refreshed or logged out.
  window.addEventListener("storage", function (ev) {
    if (ev.key === "auth") TL.session = readStoredSession();
  });

  function tokenExp(token) {
    try {
      return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).exp || 0;
    } catch (e) {
      return 0;
    }
  }
  TL.tokenExp = tokenExp;

  /* Refresh tokens rotate and a reused one revokes the whole login, so tabs must never
   * refresh with the same one: a cross-tab Web Lock serialises them, and inside it a tab
   * first adopts a fresh token another tab already obtained. */
  let refreshing = null;
  async function doRefresh(staleToken) {
    const cur = readStoredSession();
    if (cur && cur.token !== staleToken && tokenExp(cur.token) * 1000 > Date.now() + 60000) {
      TL.session = cur;
      TL.scheduleRefresh();
      return true;
    }
    const s = cur || TL.session;
    if (!s) return false;
    try {
      // The refresh token travels only in its HttpOnly cookie (path /auth): no script,
      // an injected one included, can read it.
      const res = await fetch(TL.apiUrl + "/auth/refresh", {
        method: "POST",
        headers: { Accept: "application/json", "X-Refresh-Cookie": "1" },
        credentials: "include",
      });
      if (!res.ok) return false;
      const data = await res.json();
      const next = Object.assign({}, s, normaliseAuth(data));
      // Written straight away so a tab waiting on the lock sees it.
      window.localStorage.setItem("auth", JSON.stringify(next));
      TL.setSession(next);
      return true;
    } catch (e) {
      return false;
    }
  }
  function refreshSession() {
    const stale = TL.session ? TL.session.token : null;
    if (!refreshing) {
      const run = function () { return doRefresh(stale); };
      refreshing = (navigator.locks ? navigator.locks.request("tl-refresh", run) : run())
        .finally(function () { refreshing = null; });
    }
    return refreshing;
  }

  TL.refreshSession = refreshSession;

  function normaliseAuth(data) {
    const out = { token: data.token || data.accessToken || data.access_token, user: data.user };
    if (!out.user) delete out.user;
    return out;
  }
  TL.normaliseAuth = normaliseAuth;

  // A refused sign-in in plain words (the API's field messages joined when there are several).
  function errorText(e) {
    if (!(e instanceof TL.ApiError)) return String(e && e.message ? e.message : e);
    if (e.code === "network") return "Cannot reach the API; try again in a moment.";
    const fields = (e.details && e.details.fields) || [];
    if (fields.length < 2) return TL.friendly(e.message);
    return fields.map(function (f) { return (f.field ? f.field + ": " : "") + TL.friendly(f.message); }).join("; ");
  }

  // Clientside callbacks (namespace "session", wired in dashboard/app.py).
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    session: {
      login: async function (n, nSubmit, email, password) {
        if (!n && !nSubmit) return [NO(), NO()];
        if (!email || !password) return [NO(), "Enter your email and password."];
        try {
          const data = await TL.api("/auth/login", { method: "POST", body: { email: email, password: password }, auth: false, credentials: "include" });
          return [TL.normaliseAuth(data), ""];
        } catch (e) {
          return [NO(), errorText(e)];
        }
      },

      register: async function (n, email, password, apiKey, secretKey) {
        if (!n) return [NO(), NO()];
        if (!email || !password) return [NO(), "Enter an email and a password."];
        const body = { email: email, password: password };
        if (apiKey || secretKey) { body.binanceApiKey = apiKey || ""; body.binanceSecretKey = secretKey || ""; }
        try {
          const data = await TL.api("/auth/register", { method: "POST", body: body, auth: false, credentials: "include" });
          return [TL.normaliseAuth(data), ""];
        } catch (e) {
          return [NO(), errorText(e)];
        }
      },

      logout: function (n) {
        if (!n) return NO();
        const s = TL.getSession();
        if (s) {
          TL.api("/auth/logout", { method: "POST", body: {}, credentials: "include", retry: false }).catch(function () { /* best effort */ });
        }
        return null;
      }
    },
  });
})();
