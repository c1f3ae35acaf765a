/* Helpers of the clientside callbacks: the API's address, exact decimals for the labels and
 * rows drawn here, and the symbols' rules and order states they read. */
(function () {
  "use strict";
  const TL = (window.TL = window.TL || {});
  TL.apiUrl = ((window.TL_CONFIG || {}).apiUrl || "").replace(/\/$/, "");

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
  // Display a decimal string with a fixed number of places, half up (display only).
  D.fixed = function (value, dp) {
    const v = D.parse(value);
    if (v === null) return value === null || value === undefined ? "—" : String(value);
    const neg = v < 0n;
    const abs = neg ? -v : v;
    const unit = 10n ** BigInt(SCALE - dp);
    const rounded = ((abs + unit / 2n) / unit) * unit;
    return (neg && rounded !== 0n ? "-" : "") + D.format(rounded, dp).replace(/\.$/, "");
  };

  // ---------------------------------------------------------------- symbols and orders
  // A symbol's rules from the symbols store (dashboard/chart.py load_symbols); defaults while unknown.
  TL.rules = function (symbols, symbol) {
    const s = String(symbol || "BTCUSDT");
    return (symbols || {})[s] || { symbol: s, baseAsset: s.replace(/USDT$/, ""), quoteAsset: "USDT" };
  };
  TL.priceDp = function (rules) { // the places of the tick size ("0.01000000" -> 2)
    const step = String((rules && rules.tickSize) || "");
    return step.indexOf(".") < 0 ? 2 : step.split(".")[1].replace(/0+$/, "").length;
  };
  // Whether an input of the running clientside callback, by component id, triggered it.
  TL.triggered = function (id) {
    return window.dash_clientside.callback_context.triggered.some(function (t) { return t.prop_id.indexOf(id + ".") === 0; });
  };
  const OPEN = new Set(["PENDING", "SUBMITTED", "NEW", "ACCEPTED", "PARTIALLY_FILLED", "CANCEL_REQUESTED"]);
  TL.isOpen = function (o) { return OPEN.has(String(o.status || "").toUpperCase()); };
})();
