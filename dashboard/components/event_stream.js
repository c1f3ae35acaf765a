/* EventStream: the dashboard's Dash component for Server-Sent Events (dashboard/components).
 *
 * Why a component of our own: a trading desk's streams need named events (ORDER_UPDATE,
 * KLINE, ...), a resume from the last event id when the connection comes back, and a new URL
 * when a short-lived stream token has expired. dash-extensions' SSE/EventSource components
 * take only the default "message" event and one fixed URL. This one renders nothing; what it
 * receives goes into Dash props, so every flow from a stream is in the callback graph:
 *   url, stream (in)    the URL to open (null: closed); `stream` names the logical stream,
 *                       and a new URL with the same `stream` resumes it (lastEventId)
 *   message (out)       {stream, n, events: [{type, data, id, seq}]}, at most every batchMs;
 *                       with `keep` > 0 it repeats the last `keep` events: Dash runs a
 *                       callback once for several changes made before it ran, so a consumer
 *                       that must not miss one skips what it saw by `seq` (never reset)
 *   status (out)        "connecting" | "live" | "down"
 *   opened (out)        {stream, n}: n-th open of this stream (n > 1: events may be missed)
 *   expired (out)       counts the times the source closed for good: give it a new URL
 */
(function () {
  "use strict";
  const React = window.React;

  class EventStream extends React.Component {
    constructor(props) {
      super(props);
      this.es = null; this.stream = undefined; this.lastId = null; this.opens = 0;
      this.retry = 0; this.n = 0; this.queue = []; this.flushTimer = null; this.retryTimer = null;
      this.seq = 0; this.recent = [];
    }
    componentDidMount() { this.sync(); }
    componentDidUpdate(prev) {
      if (prev.url !== this.props.url || prev.stream !== this.props.stream) this.sync();
    }
    componentWillUnmount() { this.close(); clearTimeout(this.flushTimer); }
    render() { return null; }

    sync() {
      if (this.props.stream !== this.stream) { // another stream: nothing of the old one carries over
        this.stream = this.props.stream; this.lastId = null; this.opens = 0; this.retry = 0;
        this.queue = []; this.recent = [];
      }
      this.close();
      if (this.props.url) this.open(this.props.url); else this.setStatus("down");
    }
    setStatus(status) {
      if (this.status !== status) { this.status = status; this.props.setProps({ status: status }); }
    }
    close() {
      clearTimeout(this.retryTimer);
      if (this.es) { this.es.close(); this.es = null; }
    }
    open(url) {
      this.close();
      if (this.lastId !== null) {
        url += (url.indexOf("?") < 0 ? "?" : "&") + encodeURIComponent(this.props.resumeParam)
          + "=" + encodeURIComponent(this.lastId);
      }
      const es = (this.es = new EventSource(url));
      this.setStatus("connecting");
      es.onopen = () => {
        if (this.es !== es) return;
        this.retry = 0; this.opens += 1;
        this.setStatus("live");
        this.props.setProps({ opened: { stream: this.stream, n: this.opens } });
      };
      es.onerror = () => {
        if (this.es !== es) return;
        if (es.readyState !== EventSource.CLOSED) { this.setStatus("connecting"); return; }
        // Closed for good (an HTTP error such as an expired token's 401): ask for a new URL,
        // and open the one we have again if none comes (a public stream's URL never changes).
        this.es = null;
        this.setStatus("down");
        const delay = Math.min(this.props.maxRetryMs, 500 * Math.pow(2, this.retry++)) + Math.random() * 250;
        this.retryTimer = setTimeout(() => {
          this.props.setProps({ expired: (this.props.expired || 0) + 1 });
          this.retryTimer = setTimeout(() => { if (this.props.url) this.open(this.props.url); }, delay);
        }, delay);
      };
      (this.props.events || []).forEach((type) => es.addEventListener(type, (ev) => {
        if (this.es !== es) return;
        if (ev.lastEventId) this.lastId = ev.lastEventId;
        let data;
        try { data = JSON.parse(ev.data); } catch (e) { return; }
        this.queue.push({ type: type, data: data, id: ev.lastEventId || null, seq: ++this.seq });
        if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), this.props.batchMs);
      }));
    }
    flush() {
      this.flushTimer = null;
      if (!this.queue.length) return;
      let events = this.queue;
      this.queue = [];
      if (this.props.keep > 0) events = this.recent = this.recent.concat(events).slice(-this.props.keep);
      this.props.setProps({ message: { stream: this.stream, n: ++this.n, events: events } });
    }
  }
  EventStream.defaultProps = { events: [], batchMs: 100, maxRetryMs: 10000, resumeParam: "lastEventId", keep: 0 };

  window.tradeledger = Object.assign(window.tradeledger || {}, { EventStream: EventStream });
})();
