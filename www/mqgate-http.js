// mqgate-http.js: the HTTP transport of mqgate.js (docs/protocol.md, "HTTP
// API"), for networks where a WebSocket cannot be opened: the gateway's
// Server-Sent Events stream (GET /api/events) carries what a WebSocket
// session receives, and requests go over POST /api/publish.
//
// HttpSocket offers mqgate.js the part of the WebSocket interface it
// drives (readyState, send, close, onopen/onmessage/onerror/onclose), so
// that one session logic serves both transports. It translates:
//   - the session: a probe (POST /api/publish of an empty array, with the
//     credentials) says whether they are accepted; then a hello is handed
//     to the client, and each stream's own hello follows as it opens;
//   - sub / unsub: an SSE stream carries one set of topics, so a change
//     opens a new stream with the new set (and `since`, the last seq seen,
//     or `history` when a new filter asks for it) while the old one keeps
//     delivering; once the new one has answered every topic, the old one
//     is dropped and the new one's events are taken, messages the old one
//     already delivered being dropped by seq. Nothing is missed, nothing
//     twice. The per-topic `ok` events answer the sub requests;
//   - pub: POST /api/publish; the HTTP answer becomes the ok / error frame;
//   - ping: GET /healthz;
//   - auth (a sign-in on an anonymous session, a token refresh): a new
//     stream (or probe) with the new credentials;
//   - the stream's `close` event closes this socket with its code (4401
//     token expired, 4408 too slow, 1001 shutdown, ...); a stream that ends
//     otherwise closes it with 1006.
// The stream is read with fetch(), not EventSource: EventSource can send
// neither an Authorization header (Bearer, Basic) nor show the HTTP status
// of a refusal, and the client needs both.

import { compileFilter, bytesToBase64 } from "./mqgate.js";

/** The error code of an HTTP refusal whose body carries none. */
export function httpErrorCode(status) {
  switch (status) {
    case 400: return "bad_request";
    case 401: return "auth_failed";
    case 403: return "forbidden";
    case 413: return "too_big";
    case 415: return "bad_request";
    case 429: return "rate_limited";
    case 502: return "broker_rejected";
    case 503: return "broker_unavailable";
    default: return status >= 500 ? "internal" : "http_" + status;
  }
}

/** The error object of an HTTP refusal: the body's, or one made from the status. */
export function httpError(status, body) {
  let f = null;
  try {
    f = JSON.parse(body);
  } catch { /* not JSON */ }
  if (f && typeof f === "object" && !Array.isArray(f) && typeof f.code === "string") {
    return { op: "error", code: f.code, message: typeof f.message === "string" ? f.message : f.code };
  }
  return { op: "error", code: httpErrorCode(status), message: `HTTP ${status}` };
}

/**
 * An incremental parser of a text/event-stream (the HTML standard's
 * rules): push(text) returns the events completed by it, each {event,
 * data, id}; comments (": ping") are dropped. CR, LF and CRLF end lines.
 */
export function sseParser() {
  let buf = "";
  let data = [];
  let event = "";
  let id = null;
  let sawCR = false;
  const line = (l, out) => {
    if (l === "") {
      if (data.length) out.push({ event: event || "message", data: data.join("\n"), id });
      data = [];
      event = "";
      id = null;
      return;
    }
    if (l.charCodeAt(0) === 58 /* : */) return;
    const c = l.indexOf(":");
    const field = c < 0 ? l : l.slice(0, c);
    let value = c < 0 ? "" : l.slice(c + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") event = value;
    else if (field === "id" && value.indexOf("\0") < 0) id = value;
  };
  return {
    push(text) {
      const out = [];
      if (sawCR && text.charCodeAt(0) === 10) text = text.slice(1);
      sawCR = false;
      buf += text;
      let start = 0;
      for (let i = 0; i < buf.length; i++) {
        const ch = buf.charCodeAt(i);
        if (ch !== 10 && ch !== 13) continue;
        line(buf.slice(start, i), out);
        if (ch === 13) {
          if (i + 1 === buf.length) sawCR = true;
          else if (buf.charCodeAt(i + 1) === 10) i++;
        }
        start = i + 1;
      }
      buf = buf.slice(start);
      return out;
    },
  };
}

/** The query of GET /api/events for filters (in order) and the stream's options. */
export function eventsQuery(filters, { qos = 0, history = 0, maxRate = 0, retained = true, since = null } = {}) {
  const q = new URLSearchParams();
  for (const f of filters) q.append("topic", f);
  if (qos) q.set("qos", String(qos));
  if (history) q.set("history", String(history));
  if (maxRate) q.set("max_rate", String(maxRate));
  if (!retained) q.set("retained", "false");
  if (since) q.set("since", `${since.epoch}:${since.seq}`);
  return q.toString();
}

/** The Authorization header credentials call for (none: cookies only). */
export function authorization(creds) {
  if (!creds) return null;
  if (typeof creds.token === "string") return `Bearer ${creds.token}`;
  if (typeof creds.user === "string") {
    return `Basic ${bytesToBase64(new TextEncoder().encode(`${creds.user}:${creds.password ?? ""}`))}`;
  }
  return null;
}

// The user a JWT names (display only: the gateway checks the token), or null.
function tokenUser(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const c = JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
    return typeof c.sub === "string" ? c.sub : null;
  } catch {
    return null;
  }
}

// The stream-wide options of a set of filters: the highest QoS, the least
// restrictive max_rate (none when one filter has none), retained when one
// wants it.
function streamOptions(list) {
  let qos = 0, rate = 0, rated = list.length > 0, retained = false;
  for (const s of list) {
    qos = Math.max(qos, s.qos);
    if (s.maxRate > 0) rate = Math.max(rate, s.maxRate);
    else rated = false;
    if (s.retained) retained = true;
  }
  return { qos, maxRate: rated ? rate : 0, retained };
}

const TOPIC_REFUSALS = new Set(["bad_topic", "bad_request", "forbidden", "limit_exceeded"]);

/**
 * A session of the gateway over HTTP. base: the gateway's HTTP origin
 * (http[s]://host:port, a path prefix allowed); opts: {creds, epoch (the
 * client's last known stream epoch), filters() (the client's filters:
 * [[filter, {qos, maxRate, retained}]]), fetch}.
 */
export class HttpSocket {
  constructor(base, opts) {
    this.url = base.replace(/\/+$/, "");
    this.protocol = "";
    this.readyState = 0;
    this.onopen = this.onmessage = this.onerror = this.onclose = null;
    this._fetch = opts.fetch || globalThis.fetch.bind(globalThis);
    this._creds = opts.creds || null;
    this._epoch = opts.epoch || null;     // what the client was told
    this._filters = opts.filters;
    this._stream = null;       // the stream delivering: {filters, opts, ctrl, oks}
    this._next = null;         // a stream opening to replace it
    this._pending = new Map(); // filter → [request ids waiting for its ok]
    this._unsubs = [];         // unsub ids answered once no stream carries the filter
    this._authId = null;       // an auth request answered by the next stream's hello
    this._lastSeq = 0;         // greatest live seq delivered
    this._sinceOf = new Map(); // filter → {epoch, seq} the client resumes it from
    this._historyOf = new Map(); // filter → history the client asked for it
    this._oneByOne = false;    // after a refusal of several new filters
    this._refusedFilters = new Set();
    this._syncQueued = false;
    this._closed = false;
    this._probe();
  }

  // --- the WebSocket interface --------------------------------------------

  send(data) {
    if (this.readyState !== 1) throw new Error("HttpSocket: not open");
    const f = JSON.parse(data);
    switch (f.op) {
      case "sub":
        this._onSub(f);
        break;
      case "unsub":
        this._unsubs.push(f.id);
        this._queueSync();
        break;
      case "pub":
        this._publish(f);
        break;
      case "ping":
        this._ping(f);
        break;
      case "auth":
        this._auth(f);
        break;
      default:
        this._deliver({ op: "error", id: f.id, code: "unknown_op", message: `${f.op} is not offered over HTTP` });
    }
  }

  close(code = 1000, reason = "") {
    this._end(code, reason, true);
  }

  // --- opening --------------------------------------------------------------

  // The request's credentials: the Authorization header the client's own
  // call for, else the browser's cookies. (A browser answered 401 with a
  // Basic challenge on a request that carried its cookies may show its own
  // sign-in dialog; with the header it never does.)
  _req(init) {
    const headers = { ...init.headers };
    const a = authorization(this._creds);
    if (a) headers.Authorization = a;
    return { cache: "no-store", ...init, headers, credentials: a ? "omit" : "include" };
  }

  // Whether the credentials are accepted, by a publish of nothing:
  // {status, body}, or null (the session lost) when the gateway cannot be
  // reached.
  async _check() {
    try {
      const r = await this._fetch(`${this.url}/api/publish`, this._req({
        method: "POST", headers: { "Content-Type": "application/json" }, body: "[]",
      }));
      return { status: r.status, body: await r.text() };
    } catch {
      this._end(1006, "", false);
      return null;
    }
  }

  async _probe() {
    const r = await this._check();
    if (!r || this._closed) return;
    const body = r.body;
    if (r.status === 404) {
      this._end(1006, "no HTTP API on this listener", false);
      return;
    }
    // Without credentials, a refusal means that some are needed: the
    // client is told so as by a hello without a user (it asks for them).
    const needed = r.status === 401 && !this._creds;
    if (!needed && (r.status === 401 || r.status === 403 || r.status >= 500)) {
      this._refused(r.status, body);
      return;
    }
    this.readyState = 1;
    if (this.onopen) this.onopen({});
    const hello = { op: "hello", proto: 1, auth: ["password", "token"], transport: "sse" };
    if (needed) {
      this._deliver(hello);
      return;
    }
    if (this._epoch) hello.epoch = this._epoch;
    const user = this._creds ? (this._creds.user ?? tokenUser(this._creds.token)) : null;
    if (typeof user === "string") {
      hello.user = user;
      hello.roles = [];
    } else if (!this._creds) hello.anonymous = true;
    this._deliver(hello);
  }

  // A refusal of the session as a whole: the error, then the close code a
  // WebSocket session would get.
  _refused(status, body, id) {
    const err = httpError(status, body);
    if (id !== undefined) err.id = id;
    this._deliver(err);
    this._end(status === 401 ? 4401 : 1006, err.message, false);
  }

  // --- subscriptions --------------------------------------------------------

  _onSub(f) {
    const list = this._pending.get(f.topic) || [];
    list.push(f.id);
    this._pending.set(f.topic, list);
    this._refusedFilters.delete(f.topic);
    if (f.since && typeof f.since.epoch === "string") this._sinceOf.set(f.topic, f.since);
    if (f.history) this._historyOf.set(f.topic, f.history);
    this._queueSync();
  }

  _queueSync() {
    if (this._syncQueued) return;
    this._syncQueued = true;
    queueMicrotask(() => {
      this._syncQueued = false;
      this._sync();
    });
  }

  // What the client holds now, as the stream should carry it.
  _wanted() {
    const list = [];
    for (const [filter, s] of this._filters()) if (!this._refusedFilters.has(filter)) list.push({ filter, qos: s.qos, maxRate: s.maxRate || 0, retained: s.retained });
    return list;
  }

  _shape(filters, o) {
    return JSON.stringify([filters, o.qos, o.maxRate]);
  }

  // Brings the streams in line with what the client holds: answers what
  // the current stream already answers, opens a new one otherwise.
  _sync() {
    if (this._closed || this._next) return;
    const cur = this._stream;
    let wanted = this._wanted();
    const held = new Set(cur ? cur.filters : []);
    if (this._oneByOne) {
      const fresh = wanted.filter((w) => !held.has(w.filter));
      if (fresh.length > 1) wanted = wanted.filter((w) => held.has(w.filter) || w === fresh[0]);
    }
    const filters = wanted.map((w) => w.filter);
    const o = streamOptions(wanted);
    if (cur && this._authId === null && this._shape(filters, o) === this._shape(cur.filters, cur.opts)) {
      this._answer(cur);
      this._answerUnsubs();
      if (this._oneByOne && this._wanted().length > filters.length) this._queueSync();
      else this._oneByOne = false;
      return;
    }
    if (filters.length === 0) {
      // Nothing to carry: no stream (an auth is answered by a probe).
      if (cur) this._drop(cur);
      this._stream = null;
      this._answerUnsubs();
      if (this._authId !== null) this._reauth();
      return;
    }
    // since: where every held filter is (all delivered up to _lastSeq),
    // else where the client resumes them from; history when a filter new
    // to the streams asks for it (since would replace it).
    const fresh = filters.filter((f) => !held.has(f));
    let history = 0, since = null, freshHistory = false;
    for (const f of filters) {
      const hN = this._historyOf.get(f) || 0;
      if (hN > history) history = hN;
      if (hN && fresh.includes(f) && !this._sinceOf.has(f)) freshHistory = true;
    }
    if (!freshHistory) {
      let seq = Infinity, epoch = null;
      for (const f of filters) {
        const p = held.has(f) && this._epoch && this._lastSeq > 0 ? { epoch: this._epoch, seq: this._lastSeq } : this._sinceOf.get(f);
        if (!p) continue;
        if (epoch !== null && p.epoch !== epoch) {
          seq = Infinity;
          break;
        }
        epoch = p.epoch;
        seq = Math.min(seq, p.seq);
      }
      if (epoch && seq !== Infinity) since = { epoch, seq };
    }
    // The broker's retained replay only for the filters new to the streams.
    const retained = wanted.some((w) => w.retained && fresh.includes(w.filter));
    o.retained = retained;
    this._open({ filters, opts: o, fresh, history, since, replaced: cur });
  }

  _open(st) {
    st.ctrl = new AbortController();
    st.oks = new Map();
    st.buffer = [];
    st.live = false;
    st.hello = null;
    st.freshMatch = st.fresh.map(compileFilter);
    this._next = st;
    const query = eventsQuery(st.filters, { ...st.opts, history: st.history, since: st.since });
    this._read(st, `${this.url}/api/events?${query}`).catch(() => {});
  }

  async _read(st, url) {
    let r;
    try {
      r = await this._fetch(url, this._req({ signal: st.ctrl.signal, headers: { Accept: "text/event-stream" } }));
    } catch {
      this._streamEnded(st, null);
      return;
    }
    if (r.status !== 200) {
      const body = await r.text().catch(() => "");
      this._streamRefused(st, r.status, body);
      return;
    }
    const parser = sseParser();
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const ev of parser.push(dec.decode(value, { stream: true }))) {
          if (st.ctrl.signal.aborted) return;
          this._event(st, ev);
        }
      }
    } catch { /* aborted or cut */ }
    this._streamEnded(st, null);
  }

  _event(st, ev) {
    let f;
    try {
      f = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!f || typeof f !== "object") return;
    if (f.op === "close") {
      this._streamEnded(st, f);
      return;
    }
    if (!st.live) {
      if (f.op === "hello") st.hello = f;
      else if (f.op === "ok" && typeof f.topic === "string") st.oks.set(f.topic, f);
      else if (f.op === "msg" && f.history !== true && Number.isSafeInteger(f.seq) && st.firstLive === undefined) st.firstLive = f.seq;
      st.buffer.push(f);
      if (!st.ready && st.hello && st.filters.every((t) => st.oks.has(t))) {
        st.ready = true;
        this._oldIdle(st);
      }
      this._maybeSwitch(st);
      return;
    }
    this._take(st, f);
    const next = this._next;
    if (st === this._stream && next && next.ready) {
      this._oldIdle(next);
      this._maybeSwitch(next);
    }
  }

  // The new stream st, once it answered every topic, replaces the old one
  // when the old one has delivered what came before the new one's first
  // live message (it may lag behind, with messages on their way), or has
  // been quiet for a while (nothing on its way), or st holds too much.
  _maybeSwitch(st) {
    if (!st.ready || st !== this._next) return;
    if (!this._stream || st.buffer.length > 20000 ||
        (st.firstLive !== undefined && this._lastSeq >= st.firstLive - 1)) this._switch(st);
  }

  _oldIdle(st) {
    clearTimeout(st.idle);
    st.idle = setTimeout(() => {
      if (st === this._next && st.ready) this._switch(st);
    }, 250);
  }

  // The new stream answered every topic: it replaces the old one.
  _switch(st) {
    clearTimeout(st.idle);
    const old = this._stream;
    const point = this._lastSeq;
    if (old) this._drop(old);
    this._stream = st;
    this._next = null;
    st.live = true;
    st.point = point;
    const epoch = readEpochOf(st.hello);
    const restarted = this._epoch !== null && epoch !== null && epoch !== this._epoch && (old || this._lastSeq > 0 || this._sinceOf.size > 0);
    const known = this._epoch;
    this._epoch = epoch;
    if (this._authId !== null) {
      const id = this._authId;
      this._authId = null;
      this._deliver({ op: "ok", id, user: st.hello.user, roles: st.hello.roles, allow: st.hello.allow });
    } else if (!old || epoch !== known) {
      // The first stream says who the session is and where the stream is.
      this._deliver(st.hello);
    }
    if (restarted) {
      // The gateway restarted under the session: it starts over as after
      // a lost connection.
      this._end(1006, "the gateway restarted", false);
      return;
    }
    for (const f of st.filters) {
      this._sinceOf.delete(f);
      this._historyOf.delete(f);
    }
    for (const f of st.buffer) if (f.op !== "hello") this._take(st, f);
    st.buffer = null;
    this._answer(st);
    this._answerUnsubs();
    this._queueSync(); // what changed meanwhile
  }

  // One event of the stream that delivers.
  _take(st, f) {
    switch (f.op) {
      case "ok":
        if (typeof f.topic === "string") {
          st.oks.set(f.topic, f);
          this._answer(st);
        }
        return;
      case "msg": {
        const seq = f.seq;
        if (Number.isSafeInteger(seq)) {
          // A replay past where the old stream stopped is what it would
          // have delivered live.
          if (f.history === true && seq > st.point && !st.freshMatch.some((m) => m(f.topic))) delete f.history;
          if (f.history !== true && seq > this._lastSeq) this._lastSeq = seq;
        } else if (f.retain === true && st.replaced && !st.freshMatch.some((m) => m(f.topic))) {
          return; // the retained replay of a filter held already
        }
        this._deliver(f);
        return;
      }
      case "hello":
        return;
      default:
        if (f.op === "error") delete f.id;
        this._deliver(f);
    }
  }

  // Answers the sub requests that stream st carries.
  _answer(st) {
    for (const [filter, ids] of this._pending) {
      const ok = st.oks.get(filter);
      if (!ok || !st.filters.includes(filter)) continue;
      this._pending.delete(filter);
      for (const id of ids) {
        const r = { ...ok, id };
        delete r.topic;
        this._deliver(r);
      }
    }
  }

  _answerUnsubs() {
    const ids = this._unsubs;
    this._unsubs = [];
    for (const id of ids) this._deliver({ op: "ok", id });
  }

  _drop(st) {
    clearTimeout(st.idle);
    st.dropped = true;
    st.ctrl.abort();
  }

  _streamRefused(st, status, body) {
    if (this._closed || st.dropped) return;
    this._next = null;
    const err = httpError(status, body);
    if (status === 401 || !TOPIC_REFUSALS.has(err.code)) {
      if (this._authId !== null) {
        const id = this._authId;
        this._authId = null;
        this._refused(status, body, id);
      } else this._refused(status, body);
      return;
    }
    // A topic was refused: the whole request is. With one new filter it is
    // that one; with several, they are tried one by one.
    if (st.fresh.length > 1) {
      this._oneByOne = true;
      this._queueSync();
      return;
    }
    const filter = st.fresh[0];
    const ids = this._pending.get(filter) || [];
    this._pending.delete(filter);
    this._refusedFilters.add(filter); // until the client asks for it again
    for (const id of ids) this._deliver({ ...err, id });
    if (ids.length === 0) this._deliver(err);
    this._queueSync();
  }

  // A stream ended: with a close event, or cut. The stream that delivers
  // ending ends the session; one still opening is given up.
  _streamEnded(st, closeEvent) {
    if (this._closed || st.dropped) return;
    st.dropped = true;
    if (st === this._next && !st.live) {
      this._next = null;
      if (!this._stream) {
        this._end(closeEvent ? closeEvent.code : 1006, closeEvent ? closeEvent.reason || "" : "", !!closeEvent);
        return;
      }
      if (closeEvent) {
        this._end(closeEvent.code, closeEvent.reason || "", true);
        return;
      }
      setTimeout(() => this._queueSync(), 1000); // tried again, not at once
      return;
    }
    if (st === this._stream) {
      if (closeEvent) this._end(typeof closeEvent.code === "number" ? closeEvent.code : 1006, closeEvent.reason || "", true);
      else this._end(1006, "", false);
    }
  }

  // --- requests ---------------------------------------------------------------

  async _publish(f) {
    const id = f.id;
    const body = { ...f };
    delete body.op;
    delete body.id;
    let r, text;
    try {
      r = await this._fetch(`${this.url}/api/publish`, this._req({
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      }));
      text = await r.text();
    } catch {
      // The outcome is unknown, as with a WebSocket lost with the request
      // in flight: the session is taken as lost.
      this._end(1006, "", false);
      return;
    }
    if (r.status === 200) this._deliver({ op: "ok", id });
    else if (r.status === 401) this._refused(r.status, text, id);
    else if (goingAway(r.status, text)) {
      // The gateway is shutting down: what it did not answer may or may not
      // have reached the broker, as with a WebSocket closed 1001 with the
      // publish in flight; the session ends as its stream's close would.
      this._end(1001, "gateway shutting down", true);
    } else this._deliver({ ...httpError(r.status, text), id });
  }

  async _ping(f) {
    try {
      await this._fetch(`${this.url}/healthz`, { cache: "no-store", credentials: "omit" });
    } catch {
      this._end(1006, "", false);
      return;
    }
    this._deliver({ op: "pong", id: f.id });
  }

  // New credentials: a new stream (or a probe when none is held) says
  // whether they are accepted.
  _auth(f) {
    this._creds = typeof f.token === "string" ? { token: f.token } : { user: f.user, password: f.password };
    this._authId = f.id;
    if (this._next) {
      this._drop(this._next);
      this._next = null;
    }
    this._queueSync();
  }

  async _reauth() {
    const id = this._authId;
    this._authId = null;
    const r = await this._check();
    if (!r) return;
    if (r.status === 401 || r.status === 403) {
      this._refused(r.status, r.body, id);
      return;
    }
    const user = this._creds.user ?? tokenUser(this._creds.token);
    this._deliver({ op: "ok", id, user, roles: [] });
  }

  // --- to the client ----------------------------------------------------------

  _deliver(f) {
    if (this._closed || !this.onmessage) return;
    this.onmessage({ data: JSON.stringify(f) });
  }

  _end(code, reason, wasClean) {
    if (this._closed) return;
    this._closed = true;
    this.readyState = 3;
    for (const st of [this._stream, this._next]) if (st) this._drop(st);
    this._stream = this._next = null;
    const cb = this.onclose;
    setTimeout(() => cb && cb({ code, reason, wasClean }), 0);
  }
}

// A publish's answer that says the gateway is shutting down (503, its
// message naming the shutdown).
export function goingAway(status, body) {
  if (status !== 503) return false;
  const e = httpError(status, body);
  return e.code === "broker_unavailable" && /shutting down/.test(e.message);
}

function readEpochOf(hello) {
  const e = hello && hello.epoch;
  return typeof e === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(e) ? e : null;
}
