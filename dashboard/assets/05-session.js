/* The session: sign in, register, sign out, and the access token's refresh.
 *
 * Why this is JS and not a server callback (docs/dashboard.md, "Session"): the refresh token
 * is an HttpOnly cookie of the API's origin, path /auth (docs/security.md). Only the
 * browser's own request to the API can receive it and send it back; a sign-in made by the
 * dashboard's server would get the cookie itself, and proxying /auth through the dashboard
 * would put every user's sign-in behind the dashboard's one address, where the API's
 * per-address sign-in budgets would be shared by all. Refresh tokens rotate and a reused one
 * revokes the login, so the tabs of one browser take turns: a cross-tab Web Lock, which only
 * the browser has. Everything leaves through the `auth` store ({token, user}) as callback
 * outputs; server callbacks read the token from it (dashboard/api_client.py token_of). */
(function () {
  "use strict";
  const TL = (window.TL = window.TL || {});
  const NO = function () { return window.dash_clientside.no_update; };

  function stored() { // the auth store's localStorage copy: another tab may have written it
    try {
      const data = JSON.parse(window.localStorage.getItem("auth") || "null");
      return data && data.token ? data : null;
    } catch (e) { return null; }
  }
  function fresh(session) { // more than a minute left
    try {
      const claims = JSON.parse(atob(session.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      return (claims.exp || 0) * 1000 > Date.now() + 60000;
    } catch (e) { return false; }
  }
  function normalise(data) {
    const out = { token: data.token || data.accessToken || data.access_token, user: data.user };
    if (!out.user) delete out.user;
    return out;
  }

  /* POST to the API's /auth routes with the refresh cookie: {data} or {error} in plain words
   * (the API's field messages joined when there are several). */
  async function post(path, body, token) {
    const headers = { Accept: "application/json", "X-Refresh-Cookie": "1" };
    if (token) headers.Authorization = "Bearer " + token;
    if (body) headers["Content-Type"] = "application/json"; // no body: the cookie's token
    let res;
    try {
      res = await fetch(TL.apiUrl + path, { method: "POST", headers: headers, body: body ? JSON.stringify(body) : undefined, credentials: "include" });
    } catch (e) { return { error: "Cannot reach the API; try again in a moment.", status: 0 }; }
    const data = await res.json().catch(function () { return null; });
    if (res.ok) return { data: data || {} };
    const err = (data && data.error) || {}, fields = (err.details && err.details.fields) || [];
    return { status: res.status, error: fields.length < 2 ? TL.friendly(err.message || res.statusText)
      : fields.map(function (f) { return (f.field ? f.field + ": " : "") + TL.friendly(f.message); }).join("; ") };
  }

  /* A new access token, one tab at a time: inside the lock a tab first adopts a fresh token
   * another tab already obtained. The refresh token travels only in its HttpOnly cookie.
   * Resolves to the new session, null when the API refused (signed out), undefined when it
   * could not be asked (try again later). */
  let refreshing = null;
  TL.refreshSession = function (staleToken) {
    const run = async function () {
      const cur = stored();
      if (cur && cur.token !== staleToken && fresh(cur)) return cur;
      const got = await post("/auth/refresh");
      if (got.error) return got.status === 401 || got.status === 403 ? null : undefined;
      const next = Object.assign({}, cur || {}, normalise(got.data));
      window.localStorage.setItem("auth", JSON.stringify(next)); // seen by a tab waiting on the lock
      return next;
    };
    if (!refreshing) {
      refreshing = (navigator.locks ? navigator.locks.request("tl-refresh", run) : run())
        .finally(function () { refreshing = null; });
    }
    return refreshing;
  };

  // Clientside callbacks (namespace "session", wired in dashboard/app.py and the pages).
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    session: {
      login: async function (n, nSubmit, email, password) {
        if (!n && !nSubmit) return [NO(), NO()];
        if (!email || !password) return [NO(), "Enter your email and password."];
        const got = await post("/auth/login", { email: email, password: password });
        return got.error ? [NO(), got.error] : [normalise(got.data), ""];
      },

      register: async function (n, email, password, apiKey, secretKey) {
        if (!n) return [NO(), NO()];
        if (!email || !password) return [NO(), "Enter an email and a password."];
        const body = { email: email, password: password };
        if (apiKey || secretKey) { body.binanceApiKey = apiKey || ""; body.binanceSecretKey = secretKey || ""; }
        const got = await post("/auth/register", body);
        return got.error ? [NO(), got.error] : [normalise(got.data), ""];
      },

      logout: function (n, auth) {
        if (!n) return NO();
        if (auth && auth.token) post("/auth/logout", {}, auth.token); // best effort
        return null;
      },

      /* Every few seconds: a token with less than a minute left is refreshed, so the token
       * the server callbacks read is always current; a refused refresh signs out. */
      keep: async function (_n, auth) {
        if (!auth || !auth.token || fresh(auth)) return NO();
        const next = await TL.refreshSession(auth.token);
        return next === undefined ? NO() : next;
      },
    },
  });
})();
