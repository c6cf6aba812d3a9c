// mqgate.js: browser (and Node >= 20) client for the mqgate JSON-over-WebSocket
// protocol, version 1. An ES module with no dependencies and no build step;
// where no WebSocket can be opened it speaks the gateway's HTTP API
// (mqgate-http.js, served beside it) with the same API.
//
//   import { MqGate } from "./mqgate.js";
//   const gw = new MqGate("wss://gw.example.com/ws", { user: "alice", password: "…" });
//   gw.on("broker", (s) => console.log("broker", s));
//   await gw.connect();
//   await gw.subscribe("sensor/+/temp", (msg) => console.log(msg.topic, msg.value));
//   await gw.publish("device/7/cmd", { on: true }, { qos: 1 });
//
// The wire contract is docs/protocol.md; this file only speaks it.

import { HttpSocket } from "./mqgate-http.js";

export const SUBPROTOCOL = "mqgate.v1";

/** States a session goes through; "authenticated" means usable (also anonymously). */
export const STATES = Object.freeze(["idle", "connecting", "open", "authenticated", "closed"]);

/** An error carrying the gateway's error code (or a client-side one). */
export class MqGateError extends Error {
  constructor(code, message, extra) {
    super(message || code);
    this.name = "MqGateError";
    this.code = code;
    if (extra) Object.assign(this, extra);
  }
}

// ---------------------------------------------------------------------------
// Topic matching

/**
 * Does MQTT topic filter `filter` match topic name `topic`?
 * '+' is one whole level, '#' the last level and everything below (also the
 * parent: "a/#" matches "a"), and a filter whose first level is a wildcard
 * does not match topics that begin with '$'. "$share/GROUP/" is stripped.
 */
export function topicMatches(filter, topic) {
  return compileFilter(filter)(topic);
}

/** Returns a function (topic) => boolean for one filter; cheaper when reused. */
export function compileFilter(filter) {
  let f = String(filter);
  if (f.startsWith("$share/")) {
    const rest = f.indexOf("/", 7);
    f = rest < 0 ? "" : f.slice(rest + 1);
  }
  const levels = f.split("/");
  const wildFirst = levels[0] === "+" || levels[0] === "#";
  if (f.indexOf("+") < 0 && f.indexOf("#") < 0) return (topic) => topic === f;
  return (topic) => {
    if (wildFirst && topic.charCodeAt(0) === 36 /* $ */) return false;
    const t = topic.split("/");
    for (let i = 0; i < levels.length; i++) {
      const l = levels[i];
      if (l === "#") return true;
      if (i >= t.length) return false;
      if (l !== "+" && l !== t[i]) return false;
    }
    return levels.length === t.length;
  };
}

// ---------------------------------------------------------------------------
// Base64 (standard alphabet, padding optional on input)

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_INV = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) t[B64.charCodeAt(i)] = i;
  return t;
})();

/** Decodes standard base64 into a Uint8Array; throws MqGateError("bad_base64"). */
export function base64ToBytes(s) {
  s = String(s);
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 61 /* = */) end--;
  if (s.length - end > 2 || end % 4 === 1) throw new MqGateError("bad_base64", "invalid base64 length");
  if (s.length % 4 !== 0 && s.length !== end) throw new MqGateError("bad_base64", "invalid base64 padding");
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0, bits = 0, o = 0;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? B64_INV[c] : -1;
    if (v < 0) throw new MqGateError("bad_base64", `invalid base64 character at ${i}`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** Encodes bytes (Uint8Array, ArrayBuffer or any ArrayBufferView) as padded base64. */
export function bytesToBase64(bytes) {
  const b = toBytes(bytes);
  let s = "";
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    s += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  if (i < b.length) {
    const n = (b[i] << 16) | ((i + 1 < b.length ? b[i + 1] : 0) << 8);
    s += B64[n >> 18] + B64[(n >> 12) & 63];
    s += i + 1 < b.length ? B64[(n >> 6) & 63] + "=" : "==";
  }
  return s;
}

function isBinary(v) {
  return v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

function toBytes(v) {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError("expected bytes");
}

// ---------------------------------------------------------------------------
// Message bodies

/**
 * Turns an incoming "msg" frame into a message object:
 *   { topic, qos, retain, format: "json"|"text"|"binary", value }
 * value is the JSON value, the string, or a Uint8Array. A message of the
 * gateway's stream (protocol extension "Stream positions") also has seq (its
 * position), ts (when the gateway received it, ms since the Unix epoch) and
 * history (true when replayed from the gateway's history); the broker's
 * retained replay and older gateways have none of them.
 */
export function decodeMessage(frame) {
  const msg = {
    topic: frame.topic,
    qos: frame.qos | 0,
    retain: frame.retain === true,
    ...decodeBody(frame),
  };
  if (isSeq(frame.seq)) {
    msg.seq = frame.seq;
    if (Number.isFinite(frame.ts)) msg.ts = frame.ts;
    msg.history = frame.history === true;
  }
  return msg;
}

/**
 * The body of a msg or of a request's response: { format, value } (see
 * decodeMessage), with props when the frame carries MQTT 5 properties
 * (readProps()).
 */
export function decodeBody(frame) {
  let format, value;
  if (Object.prototype.hasOwnProperty.call(frame, "payload")) {
    format = "json";
    value = frame.payload;
  } else if (typeof frame.base64 === "string") {
    format = "binary";
    value = base64ToBytes(frame.base64);
  } else {
    format = "text";
    value = typeof frame.text === "string" ? frame.text : "";
  }
  const out = { format, value };
  const props = readProps(frame.props);
  if (props) out.props = props;
  return out;
}

/**
 * A msg's "props" (protocol extension "MQTT 5 properties") as
 *   { user: [[name, value], ...], contentType, responseTopic,
 *     correlation: Uint8Array, expiry }
 * with only the members the frame had (malformed ones left out); null
 * when it has none.
 */
export function readProps(p) {
  if (!p || typeof p !== "object" || Array.isArray(p)) return null;
  const out = {};
  if (Array.isArray(p.user)) {
    const user = p.user.filter((u) => Array.isArray(u) && u.length === 2 &&
      typeof u[0] === "string" && typeof u[1] === "string").map((u) => [u[0], u[1]]);
    if (user.length) out.user = user;
  }
  if (typeof p.content_type === "string") out.contentType = p.content_type;
  if (typeof p.response_topic === "string") out.responseTopic = p.response_topic;
  if (typeof p.correlation === "string") {
    try {
      out.correlation = base64ToBytes(p.correlation);
    } catch (e) {
      // malformed: left out
    }
  }
  if (Number.isSafeInteger(p.expiry) && p.expiry >= 0) out.expiry = p.expiry;
  return Object.keys(out).length ? out : null;
}

/**
 * The wire form of publish/request props (see readProps for the members;
 * correlation: bytes or a base64 string; expiry: seconds, an integer >= 1).
 * Throws TypeError on a malformed member; the gateway checks the rest.
 */
export function encodeProps(props) {
  if (props === null || typeof props !== "object" || Array.isArray(props)) {
    throw new TypeError("props must be an object");
  }
  const out = {};
  if (props.user !== undefined) {
    const pairs = props.user instanceof Map ? [...props.user] : props.user;
    if (!Array.isArray(pairs) || !pairs.every((u) => Array.isArray(u) && u.length === 2 &&
        typeof u[0] === "string" && typeof u[1] === "string")) {
      throw new TypeError("props.user must be [name, value] pairs of strings");
    }
    out.user = pairs.map((u) => [u[0], u[1]]);
  }
  if (props.contentType !== undefined) {
    if (typeof props.contentType !== "string") throw new TypeError("props.contentType must be a string");
    out.content_type = props.contentType;
  }
  if (props.responseTopic !== undefined) {
    if (typeof props.responseTopic !== "string") throw new TypeError("props.responseTopic must be a string");
    out.response_topic = props.responseTopic;
  }
  if (props.correlation !== undefined) {
    out.correlation = typeof props.correlation === "string"
      ? props.correlation
      : bytesToBase64(toBytes(props.correlation));
  }
  if (props.expiry !== undefined) {
    if (!Number.isSafeInteger(props.expiry) || props.expiry < 1 || props.expiry > 4294967295) {
      throw new TypeError("props.expiry must be an integer from 1 to 4294967295");
    }
    out.expiry = props.expiry;
  }
  return out;
}

function isSeq(x) {
  return Number.isSafeInteger(x) && x >= 1;
}

const EPOCH_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** hello's "epoch" when it is one (protocol: 1 to 64 of [A-Za-z0-9_-]), else null. */
export function readEpoch(e) {
  return typeof e === "string" && EPOCH_RE.test(e) ? e : null;
}

/**
 * Builds the body fields of a "pub" request from (body, options):
 *   options.text === true   → body (a string) is sent as its UTF-8 bytes
 *   options.base64 === true → body is a base64 string, or bytes to encode
 *   bytes (Uint8Array, ArrayBuffer, views) → base64
 *   undefined               → empty payload (with retain: clears it)
 *   anything else           → "payload": the JSON value
 */
export function encodeBody(body, options = {}) {
  if (options.text && options.base64) throw new TypeError("publish: text and base64 are exclusive");
  if (options.text) {
    if (typeof body !== "string") throw new TypeError("publish: text body must be a string");
    return { text: body };
  }
  if (options.base64) {
    if (typeof body === "string") return { base64: body };
    if (isBinary(body)) return { base64: bytesToBase64(body) };
    throw new TypeError("publish: base64 body must be a string or bytes");
  }
  if (body === undefined) return {};
  if (isBinary(body)) return { base64: bytesToBase64(body) };
  return { payload: body };
}

// ---------------------------------------------------------------------------
// Backoff

/**
 * Delay before reconnect attempt number `attempt` (0-based): exponential from
 * `min` ms by `factor` up to `max` ms, with "equal jitter": a random delay in
 * [d·(1−jitter), d]. `random` is injectable for tests.
 */
export function backoffDelay(attempt, { min = 500, max = 30000, factor = 2, jitter = 0.5 } = {}, random = Math.random) {
  const d = Math.min(max, min * Math.pow(factor, Math.min(attempt, 64)));
  return Math.round(d * (1 - jitter * random()));
}

// ---------------------------------------------------------------------------
// The client

const DEFAULTS = {
  reconnect: true,
  backoff: { min: 500, max: 30000, factor: 2, jitter: 0.5 },
  requestTimeout: 0,       // ms, 0: none (publishes may wait out a broker outage)
  anonymousWait: 3000,     // ms to wait for proof of anonymous access after hello
  offlineQueue: 256,       // requests held while (re)connecting; 0 disables
  connectTimeout: 15000,   // ms from opening the socket to the gateway's hello; 0: none
  protocols: [SUBPROTOCOL],
  WebSocket: undefined,    // a WebSocket constructor; default globalThis.WebSocket
  // "auto": a WebSocket, or the HTTP API (SSE + POST) when one cannot be
  // opened; "websocket" or "sse": only that one.
  transport: "auto",
  apiUrl: undefined,       // the HTTP API's base [the WebSocket URL's origin, http(s):]; with several URLs, one per URL
  urls: undefined,         // more gateway URLs, after the constructor's url (see MqGate)
  fetch: undefined,        // a fetch implementation; default globalThis.fetch
};

// The HTTP API's base for a WebSocket URL: its origin, as http(s).
function apiBase(wsUrl) {
  const m = /^(wss?):\/\/([^/?#]+)/i.exec(wsUrl);
  if (!m) return wsUrl;
  return `${m[1].toLowerCase() === "wss" ? "https" : "http"}://${m[2]}`;
}

function resolveUrl(url) {
  const g = globalThis;
  let u = String(url);
  if (!/^[a-z][a-z0-9+.-]*:/i.test(u) && g.location && g.location.href) {
    u = new URL(u, g.location.href).href;
  }
  return u.replace(/^http(s?):/i, "ws$1:");
}

// The gateway URLs of a session: url (a string, or a list of them) then
// options.urls, resolved, without duplicates.
function gatewayUrls(url, more) {
  const list = [];
  const items = (x) => (x == null ? [] : Array.isArray(x) ? x : [x]);
  for (const u of [...items(url), ...items(more)]) {
    if ((typeof u !== "string" && !(u instanceof URL)) || String(u) === "") {
      throw new TypeError("MqGate: a gateway URL must be a non-empty string");
    }
    const r = resolveUrl(u);
    if (!list.includes(r)) list.push(r);
  }
  if (list.length === 0) throw new TypeError("MqGate: no gateway URL");
  return list;
}

// The HTTP API's base of each gateway URL: options.apiUrl (a string with
// one URL, a list as long as the URLs with several), else each URL's origin.
function apiUrls(urls, apiUrl) {
  const trim = (u) => String(u).replace(/\/+$/, "");
  if (apiUrl == null || apiUrl === "") return urls.map(apiBase);
  if (Array.isArray(apiUrl)) {
    if (apiUrl.length !== urls.length) throw new TypeError("MqGate: apiUrl must list one base per gateway URL");
    return apiUrl.map(trim);
  }
  if (urls.length > 1) throw new TypeError("MqGate: with several gateway URLs, apiUrl must be a list of one base per URL");
  return [trim(apiUrl)];
}

function hasCreds(c) {
  return !!c && (typeof c.token === "string" || typeof c.user === "string");
}

/**
 * The "allow" field of hello or of auth's ok (protocol extension "What a
 * session may do"): {subscribe, publish}, each a list of topic patterns;
 * null when the gateway sent none (an older gateway) or not an object.
 */
export function readAllow(a) {
  if (!a || typeof a !== "object" || Array.isArray(a)) return null;
  const list = (x) => (Array.isArray(x) ? x.filter((p) => typeof p === "string" && p !== "") : []);
  return { subscribe: list(a.subscribe), publish: list(a.publish) };
}

/**
 * A gateway session that survives disconnects.
 *
 * new MqGate(url, credentials?, options?)
 *   url: a gateway URL, or a list of them (options.urls adds more; url may
 *   then be null). With several, the session fails over: an attempt that
 *   fails, or a close 1001 (the gateway shutting down), moves to the next
 *   URL; a connection that drops after it was usable tries the same
 *   gateway first; the backoff grows per round over all URLs; connect()
 *   starts with the gateway that worked last. Filters start over from
 *   their history on a gateway of another epoch ("recovery" reason
 *   "failover"); a publish in flight at a close rejects "disconnected"
 *   and is never resent, one made while reconnecting goes to the next
 *   gateway once.
 *   credentials: {token} | {user, password, otp?} | null (anonymous, or a
 *   token the handshake carries as a cookie) | a function
 *   (ctx) => credentials | Promise<credentials> called before every
 *   connection attempt, ctx = {attempt, reason, hello, resumable}; reason is
 *   null, or "auth_failed" / "token_expired" after the gateway refused the
 *   last ones, and returning null then stops reconnecting. Returning
 *   undefined keeps the previous credentials (and a resume token, when the
 *   gateway handed one out: resumable is true then; useful with one-time
 *   codes, which cannot be sent twice).
 */
export class MqGate {
  constructor(url, credentials = null, options = {}) {
    this.options = { ...DEFAULTS, ...options, backoff: { ...DEFAULTS.backoff, ...(options.backoff || {}) } };
    if (!["auto", "websocket", "sse"].includes(this.options.transport)) {
      throw new TypeError('MqGate: transport must be "auto", "websocket" or "sse"');
    }
    this.urls = gatewayUrls(url, this.options.urls);
    this._apiUrls = apiUrls(this.urls, this.options.apiUrl);
    this._at = 0;                // index in urls of the gateway of this (or the next) attempt
    this._home = 0;              // index of the last gateway a session was usable on
    this._readyUrl = null;       // the URL of the last session that became usable
    this.url = this.urls[0];     // the gateway of the current (or next) connection
    this.apiUrl = this._apiUrls[0];
    this._credSource = typeof credentials === "function" ? credentials : null;
    this._creds = typeof credentials === "function" ? null : credentials;
    this._resumeToken = null;    // a token the gateway may hand out in auth's ok

    this.state = "idle";
    this.user = null;
    this.roles = [];
    this.anonymous = false;
    this.allow = null;           // {subscribe, publish} patterns, null: not told
    this.broker = null;          // "up" | "down" | null (unknown)
    this.hello = null;           // the last hello frame
    this.epoch = null;           // the gateway's stream epoch (hello), null: none
    this._epochUrl = null;       // the URL whose hello told this.epoch
    this.authMethods = [];       // from hello
    this.lastClose = null;       // {code, reason, wasClean}
    this.transport = null;       // "websocket" | "sse": the one of the session, null before one opened
    this.stats = { received: 0, sent: 0, messages: 0, reconnects: 0, failovers: 0 };

    this._ws = null;
    this._gen = 0;               // increments per socket: stale callbacks are ignored
    this._listeners = new Map();
    this._nextId = 1;
    this._pending = new Map();   // id → {kind, resolve, reject, timer}
    this._queue = [];            // requests held while not ready
    this._subs = new Map();      // filter → Sub
    this._pos = 0;               // greatest live seq received on this socket
    this._attempt = 0;
    this._timer = null;
    this._anonTimer = null;
    this._connectTimer = null;
    this._stopped = true;
    this._errorCode = null;      // last error code that came without an id
    this._authVia = null;        // "resume" | "creds" while an auth is in flight
    this._authRequired = false;
    this._connectWaiters = [];
    this._preferHttp = false;    // the HTTP API worked last: tried first
  }

  // --- events -----------------------------------------------------------------

  /**
   * Events: "state" (state, detail), "broker" ("up"|"down"), "error"
   * (MqGateError), "hello" (frame), "authenticated" ({user, roles,
   * anonymous}: also when the identity changes; gw.allow is set by then),
   * "message" (msg) for every msg frame, "close" ({code, reason, reconnectIn,
   * authReason}), "recovery" ({filter, recovered, replayed, reason}) once
   * per filter re-subscribed after a reconnect (see subscribe), "transport"
   * ("websocket"|"sse") when a connection opens with another transport
   * than before (gw.transport), "gateway" ({url, previous, epoch}) when a
   * session becomes usable on another gateway URL than the last one,
   * "epoch" ({epoch, previous, url}) when a gateway's hello tells another
   * stream epoch than the last one: another gateway took the session (also
   * behind one load-balanced URL) or the gateway restarted; its filters'
   * "recovery" events follow.
   * "close" also carries url (the gateway that closed) and nextUrl (the
   * next attempt's, null when none follows); "recovery" carries url and
   * epoch (the gateway that answered). Over HTTP, "close" carries the code of the
   * stream's close event (the WebSocket close code: 4401, 4408, 1001, …),
   * 1006 for a stream cut. Returns a function that removes the listener.
   */
  on(type, fn) {
    let set = this._listeners.get(type);
    if (!set) this._listeners.set(type, (set = new Set()));
    set.add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    const set = this._listeners.get(type);
    if (set) set.delete(fn);
  }

  once(type, fn) {
    const off = this.on(type, (...a) => {
      off();
      fn(...a);
    });
    return off;
  }

  _emit(type, ...args) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        if (type !== "error") this._emit("error", e);
        else setTimeout(() => { throw e; });
      }
    }
  }

  _setState(state, detail = {}) {
    if (this.state === state && state !== "closed") return;
    this.state = state;
    this._emit("state", state, detail);
  }

  /** True when requests may be sent: authenticated, or anonymous. */
  get ready() {
    return this.state === "authenticated";
  }

  // --- lifecycle --------------------------------------------------------------

  /**
   * Starts the session and keeps it up with reconnects (unless
   * options.reconnect is false). Resolves {user, roles, anonymous} once the
   * session is usable; gw.allow then holds what the session may do, when
   * the gateway says. Rejects when authentication fails for good
   * ("auth_failed", "token_expired"), when the gateway wants credentials and
   * none were given ("auth_required", err.methods lists the methods), or
   * when close() comes first ("closed").
   */
  connect() {
    if (this.ready) return Promise.resolve(this._who());
    const p = new Promise((resolve, reject) => this._connectWaiters.push({ resolve, reject }));
    if (this._stopped) {
      this._stopped = false;
      this._attempt = 0;
      this._at = this._home; // the gateway that worked last
      this._authRequired = false;
      clearTimeout(this._timer);
      this._open(null);
    }
    return p;
  }

  /** Replaces the credentials used by the next connection attempts. */
  setCredentials(credentials) {
    this._credSource = typeof credentials === "function" ? credentials : null;
    this._creds = typeof credentials === "function" ? null : credentials;
    this._resumeToken = null;
  }

  /** Closes the session for good (no reconnect); pending requests reject. */
  close(code = 1000, reason = "") {
    const err = new MqGateError("closed", "session closed by the client");
    this._stopped = true;
    clearTimeout(this._timer);
    clearTimeout(this._connectTimer);
    this._timer = null;
    const ws = this._ws;
    this._ws = null;
    this._gen++;
    this._teardown(err);
    if (ws && ws.readyState <= 1) {
      try { ws.close(code, reason); } catch { /* already closing */ }
    }
    this.broker = null;
    this._setState("closed", { code, reason, reconnectIn: null, byClient: true });
  }

  /**
   * Authenticates the open session: upgrades an anonymous one, or refreshes
   * a token for the same user. The credentials are kept for reconnects.
   * Resolves {user, roles, anonymous}.
   */
  async authenticate(credentials) {
    if (!this._ws || this._ws.readyState !== 1 || !this.hello) {
      throw new MqGateError("not_connected", "no open session");
    }
    const fields = authFields(credentials);
    this._authVia = "creds";
    let ok;
    try {
      ok = await this._request({ op: "auth", ...fields }, { direct: true, kind: "auth" });
    } finally {
      // After auth_failed the gateway closes with 4401; after forbidden (a
      // token of another user) the session goes on as it was.
      this._authVia = null;
    }
    this._creds = credentials; // a credentials function, if any, is still asked first
    this._resumeToken = typeof ok.token === "string" ? ok.token : null;
    this._becomeReady(ok.user, ok.roles, false, ok.allow);
    return this._who();
  }

  _who() {
    return { user: this.user, roles: this.roles, anonymous: this.anonymous };
  }

  async _open(reason) {
    const gen = ++this._gen;
    this.url = this.urls[this._at];
    this.apiUrl = this._apiUrls[this._at];
    this._setState("connecting", { attempt: this._attempt, reason, url: this.url });
    if (this._credSource) {
      let c;
      try {
        c = await this._credSource({ attempt: this._attempt, reason, hello: this.hello, resumable: !!this._resumeToken });
      } catch (e) {
        this._emit("error", e instanceof MqGateError ? e : new MqGateError("credentials", String((e && e.message) || e)));
      }
      if (gen !== this._gen || this._stopped) return;
      if (c === null && reason) {
        this._final(new MqGateError(reason, "authentication required"));
        return;
      }
      if (c !== undefined) {
        this._creds = c;
        this._resumeToken = null;
      }
    }
    this._errorCode = null;
    this._authVia = null;
    this.hello = null;
    this._pos = 0;
    // The transport: the one asked for, or the one that worked last, the
    // other one following at once when it cannot be opened ("auto").
    const mode = this.options.transport;
    const WS = this.options.WebSocket || globalThis.WebSocket;
    const canHttp = typeof (this.options.fetch || globalThis.fetch) === "function";
    let order = mode === "sse" ? ["sse"] : mode === "websocket" ? ["websocket"]
      : this._preferHttp ? ["sse", "websocket"] : ["websocket", "sse"];
    order = order.filter((t) => (t === "sse" ? canHttp : typeof WS === "function"));
    if (order.length === 0) {
      this._final(new MqGateError("no_websocket", "no WebSocket implementation available"));
      return;
    }
    this._attach(gen, order);
  }

  // Opens the first transport of order on socket gen; when it closes
  // before it opened, the next one is tried at once.
  _attach(gen, order) {
    const kind = order[0];
    let ws;
    try {
      ws = kind === "sse"
        ? new HttpSocket(this.apiUrl, {
          creds: this._resumeToken ? { token: this._resumeToken } : this._creds,
          // The stream epoch the client knows, when it is this gateway's
          // (another gateway's is not: the first stream tells it).
          epoch: this._epochUrl === this.url ? this.epoch : null,
          filters: () => [...this._subs],
          fetch: this.options.fetch,
        })
        : new (this.options.WebSocket || globalThis.WebSocket)(this.url, this.options.protocols);
    } catch (e) {
      if (order.length > 1) return this._attach(gen, order.slice(1));
      this._final(new MqGateError("bad_url", String((e && e.message) || e)));
      return;
    }
    this._ws = ws;
    let closed = false;
    let opened = false;
    let errorTimer = null;
    const done = (code, reason, wasClean) => {
      if (closed) return;
      closed = true;
      clearTimeout(errorTimer);
      if (gen !== this._gen) return;
      if (!opened && order.length > 1 && !this._stopped) {
        this._attach(gen, order.slice(1));
        return;
      }
      clearTimeout(this._connectTimer);
      this._onClose(code, reason, wasClean);
    };
    const abandon = () => {
      try { ws.close(); } catch { /* not open yet */ }
      done(1006, "", false);
    };
    // No hello in time (a gateway that accepts TCP but never answers).
    clearTimeout(this._connectTimer);
    if (this.options.connectTimeout > 0) this._connectTimer = setTimeout(abandon, this.options.connectTimeout);
    ws.onopen = () => {
      if (gen !== this._gen) return;
      if (ws.protocol && !this.options.protocols.includes(ws.protocol)) {
        try { ws.close(1000, "unexpected subprotocol"); } catch { /* closing */ }
        return;
      }
      opened = true;
      this._preferHttp = kind === "sse";
      if (this.transport !== kind) {
        this.transport = kind;
        this._emit("transport", kind);
      }
      this._setState("open", { transport: kind });
    };
    ws.onmessage = (ev) => {
      if (gen !== this._gen) return;
      if (!this.hello) clearTimeout(this._connectTimer);
      this._onData(ev.data);
    };
    // Browsers follow "error" with "close"; some WebSocket implementations
    // (Node 20's, on a reset during the handshake) never do.
    ws.onerror = () => {
      clearTimeout(errorTimer);
      errorTimer = setTimeout(abandon, 1000);
    };
    ws.onclose = (ev) => done(ev.code, ev.reason || "", ev.wasClean);
  }

  _onData(data) {
    if (typeof data !== "string") {
      this._emit("error", new MqGateError("protocol", "binary frame from the gateway"));
      return;
    }
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      this._emit("error", new MqGateError("protocol", "the gateway sent invalid JSON"));
      return;
    }
    if (!f || typeof f !== "object") return;
    this.stats.received++;
    switch (f.op) {
      case "msg":
        this._onMsg(f);
        break;
      case "ok":
      case "pong":
        this._settle(f, null);
        break;
      case "error": {
        const err = new MqGateError(f.code || "internal", f.message || f.code || "error", { frame: f });
        if (f.id !== undefined && this._pending.has(f.id)) this._settle(f, err);
        else {
          this._errorCode = err.code;
          this._emit("error", err);
        }
        break;
      }
      case "status":
        this._onStatus(f);
        break;
      case "hello":
        this._onHello(f);
        break;
      default:
        break; // ops added by later gateways are ignored
    }
  }

  _onHello(f) {
    this.hello = f;
    const epoch = readEpoch(f.epoch);
    if (this.ready && this.epoch === null && epoch !== null) {
      // A session that learns its stream's epoch after it became usable
      // (over HTTP, with the first stream): what its filters received so
      // far is of that epoch.
      for (const s of this._subs.values()) {
        if (s.posEpoch === null) {
          s.posEpoch = epoch;
          s.posUrl = this.url;
        }
      }
    }
    const previous = this.epoch;
    this.epoch = epoch;
    this._epochUrl = this.url;
    if (epoch !== null && previous !== null && epoch !== previous) {
      // Another stream: the gateway restarted, or the session moved to
      // another one (behind one load-balanced URL, the only sign of it).
      this._emit("epoch", { epoch, previous, url: this.url });
    }
    this.authMethods = Array.isArray(f.auth) ? f.auth.slice() : [];
    this._emit("hello", f);
    if (typeof f.user === "string") {
      // The handshake carried a valid token (cookie or bearer header).
      this._becomeReady(f.user, f.roles, false, f.allow);
      return;
    }
    if (this._resumeToken) {
      this._sendAuth({ token: this._resumeToken }, "resume");
      return;
    }
    if (hasCreds(this._creds)) {
      this._sendAuth(this._creds, "creds");
      return;
    }
    // A hello that says what the session may do, without a user, is that
    // of a session acting with the anonymous role.
    if (f.anonymous === true || this.authMethods.includes("anonymous") || readAllow(f.allow)) {
      this._becomeReady("anonymous", f.roles, true, f.allow);
      return;
    }
    // Without credentials the session is usable only when the gateway grants
    // an anonymous role, which shows as a status frame that needs no auth.
    clearTimeout(this._anonTimer);
    this._anonTimer = setTimeout(() => {
      if (this.ready || !this._ws) return;
      const err = new MqGateError("auth_required", "the gateway requires authentication", { methods: this.authMethods });
      this._authRequired = true;
      this._stopped = true;
      this._settleConnect(err);
      try { this._ws.close(1000, "credentials required"); } catch { /* closing */ }
    }, this.options.anonymousWait);
  }

  _sendAuth(creds, via) {
    let fields;
    try {
      fields = authFields(creds);
    } catch (e) {
      this._final(e);
      return;
    }
    this._authVia = via;
    const gen = this._gen;
    this._request({ op: "auth", ...fields }, { direct: true, kind: "auth" }).then(
      (ok) => {
        if (typeof ok.token === "string") this._resumeToken = ok.token;
        if (gen !== this._gen || !this._ws) return; // the socket closed since the ok
        this._authVia = null;
        this._becomeReady(ok.user, ok.roles, false, ok.allow);
      },
      (err) => {
        // The gateway closes with 4401 next; _onClose decides what follows.
        if (err.code === "disconnected") return;
        this._errorCode = err.code;
        this._emit("error", err);
      }
    );
  }

  _onStatus(f) {
    if (!this.ready && !this._authVia && this._ws && !this._stopped) {
      this._becomeReady("anonymous", [], true);
    }
    const b = f.broker === "down" ? "down" : "up";
    if (b !== this.broker) {
      this.broker = b;
      this._emit("broker", b);
    }
  }

  _becomeReady(user, roles, anonymous, allow) {
    clearTimeout(this._anonTimer);
    const was = this.ready;
    this.user = user;
    this.roles = Array.isArray(roles) ? roles.slice() : [];
    this.anonymous = anonymous;
    this.allow = readAllow(allow);
    if (was) {
      this._emit("authenticated", this._who());
      return;
    }
    this._attempt = 0;
    this._home = this._at;
    const previous = this._readyUrl;
    this._readyUrl = this.url;
    this._setState("authenticated", this._who());
    if (previous !== null && previous !== this.url) {
      // Failed over: the application hears which gateway took the session
      // (its filters' "recovery" events follow).
      this.stats.failovers++;
      this._emit("gateway", { url: this.url, previous, epoch: this.epoch });
    }
    this._emit("authenticated", this._who());
    // A filter held before this connection resumes where it stopped.
    for (const [filter, s] of this._subs) this._sendSub(filter, s, undefined, s.granted !== null ? "resume" : "new");
    const q = this._queue;
    this._queue = [];
    for (const r of q) this._dispatch(r);
    this._settleConnect(null);
  }

  _settleConnect(err) {
    const w = this._connectWaiters;
    this._connectWaiters = [];
    for (const { resolve, reject } of w) err ? reject(err) : resolve(this._who());
  }

  _onClose(code, reason, wasClean) {
    clearTimeout(this._anonTimer);
    this._ws = null;
    this.lastClose = { code, reason, wasClean };
    this.broker = null;
    const wasReady = this.state === "authenticated";
    if (wasReady) this.state = "open"; // no longer ready

    let authReason = null;
    if (code === 4401 && this._authVia !== "resume") {
      authReason = this._errorCode === "token_expired" ? "token_expired" : "auth_failed";
    } else if (this._authRequired) {
      authReason = "auth_required";
    }
    if (code === 4401 && this._authVia === "resume") this._resumeToken = null;

    // Same static credentials would fail the same way: only a credentials
    // function may retry after an authentication failure.
    let reconnectIn = null;
    const url = this.url;
    if (!this._stopped && this.options.reconnect &&
        (!authReason || (this._credSource && authReason !== "auth_required"))) {
      // With several gateways: a gateway that failed (or is shutting down:
      // 1001) is left for the next one; one that worked is tried again
      // first (a dropped connection, resumed exactly there). The backoff
      // grows per round over all of them.
      const n = this.urls.length;
      if (n > 1 && !authReason && (!wasReady || code === 1001)) this._at = (this._at + 1) % n;
      reconnectIn = backoffDelay(Math.floor(this._attempt / n), this.options.backoff);
      this._attempt++;
      this.stats.reconnects++;
    } else {
      this._stopped = true;
    }

    const lost = new MqGateError("disconnected", `connection closed (${code}${reason ? " " + reason : ""})`, { closeCode: code });
    if (reconnectIn === null) {
      const err = authReason && authReason !== "auth_required"
        ? new MqGateError(authReason, authReason === "token_expired" ? "token expired" : "authentication failed", { closeCode: code })
        : lost;
      this._settleConnect(err);
    }
    this._teardown(lost);
    const detail = { code, reason, reconnectIn, authReason, url, nextUrl: reconnectIn === null ? null : this.urls[this._at] };
    this._emit("close", detail);
    this._setState("closed", detail);
    if (reconnectIn !== null) {
      this._timer = setTimeout(() => {
        this._timer = null;
        if (!this._stopped) this._open(authReason);
      }, reconnectIn);
    }
  }

  _final(err) {
    this._stopped = true;
    this._teardown(err);
    this._settleConnect(err);
    this._emit("error", err);
    this._setState("closed", { reconnectIn: null, error: err });
  }

  // Rejects what was in flight on the lost socket. While the session will
  // reconnect, subscriptions survive and their waiters are answered by the
  // re-subscription; once stopped, everything rejects.
  _teardown(err) {
    clearTimeout(this._anonTimer);
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      this._pending.delete(id);
      p.reject(err);
    }
    if (this._stopped) {
      for (const s of this._subs.values()) {
        const w = s.waiters;
        s.waiters = [];
        for (const x of w) x.reject(err);
      }
      const q = this._queue;
      this._queue = [];
      for (const r of q) r.reject(err);
      this._settleConnect(err);
    }
  }

  _send(frame) {
    this.stats.sent++;
    this._ws.send(JSON.stringify(frame));
  }

  // Sends a request with a fresh id (now, or once ready); resolves the
  // ok/pong frame, rejects an MqGateError. onOk(frame), when given, runs
  // as the ok is read, before any later frame.
  _request(frame, { timeout = this.options.requestTimeout, direct = false, kind = frame.op, onOk = null } = {}) {
    return new Promise((resolve, reject) => {
      const r = { frame, resolve, reject, timeout, kind, onOk };
      const open = !!this._ws && this._ws.readyState === 1;
      if (direct) {
        if (!open) reject(new MqGateError("not_connected", "no open session"));
        else this._dispatch(r);
      } else if (this.ready && open) {
        this._dispatch(r);
      } else if (this._stopped) {
        reject(new MqGateError("closed", "the session is closed; call connect()"));
      } else if (this._queue.length >= this.options.offlineQueue) {
        reject(new MqGateError("queue_full", "too many requests waiting for the connection"));
      } else {
        this._queue.push(r);
      }
    });
  }

  _dispatch(r) {
    const id = this._nextId++;
    const frame = { op: r.frame.op, id, ...r.frame };
    frame.id = id;
    const p = { kind: r.kind, resolve: r.resolve, reject: r.reject, timer: null, onOk: r.onOk };
    if (r.timeout > 0) {
      p.timer = setTimeout(() => {
        this._pending.delete(id);
        r.reject(new MqGateError("timeout", `no reply to ${frame.op} within ${r.timeout} ms`));
      }, r.timeout);
    }
    this._pending.set(id, p);
    this._send(frame);
  }

  _settle(f, err) {
    const p = this._pending.get(f.id);
    if (!p) return;
    this._pending.delete(f.id);
    clearTimeout(p.timer);
    if (!err && p.onOk) {
      try {
        p.onOk(f);
      } catch (e) {
        this._emit("error", e);
      }
    }
    err ? p.reject(err) : p.resolve(f);
  }

  // --- requests ---------------------------------------------------------------

  /**
   * Subscribes handler(msg, filter) to an MQTT topic filter. A message whose
   * topic matches reaches every matching handler once. The filter is held at
   * the gateway once however many handlers share it, and subscribed again
   * after every reconnect. Resolves the granted QoS; rejects with the
   * gateway's error (e.g. "forbidden"), and then the handler is forgotten.
   * A second handler on a filter already held does not replay retained
   * messages (the replay would reach the first handler again).
   *
   * Options of the filter (protocol extensions "History" and "Rate-limited
   * subscriptions"), taken from the subscribe that adds the filter:
   *   history  — replay up to that many stored messages per topic first
   *              (msg.history true); a gateway without history replays none
   *   retained — false: no broker retained replay for this filter [true]
   *   maxRate  — at most that many messages per second per topic (0 < r ≤
   *              1000; 0 or null: no limit); a later subscribe or
   *              setMaxRate() changes it
   * The filter remembers the last seq it received. After a reconnect to a
   * gateway with the same epoch it asks for everything after it ("since",
   * with history as the fallback) and emits "recovery" {filter, recovered,
   * replayed, reason} once the gateway answered, before the replayed
   * messages: recovered false means messages may be missing (reason
   * "gap", "restarted", "no_position" or "unsupported") and what the filter
   * shows should be reloaded from the replay that follows.
   */
  subscribe(filter, handler, { qos = 0, timeout, history, maxRate, retained } = {}) {
    if (typeof filter !== "string" || filter === "") return Promise.reject(new TypeError("subscribe: filter must be a non-empty string"));
    if (typeof handler !== "function") return Promise.reject(new TypeError("subscribe: handler must be a function"));
    if (qos !== 0 && qos !== 1 && qos !== 2) return Promise.reject(new TypeError("subscribe: qos must be 0, 1 or 2"));
    if (history !== undefined && !(Number.isInteger(history) && history >= 0 && history <= 100000)) {
      return Promise.reject(new TypeError("subscribe: history must be an integer from 0 to 100000"));
    }
    if (retained !== undefined && typeof retained !== "boolean") return Promise.reject(new TypeError("subscribe: retained must be a boolean"));
    let rate;
    try {
      rate = maxRate === undefined ? undefined : checkRate(maxRate, "subscribe");
    } catch (e) {
      return Promise.reject(e);
    }
    let s = this._subs.get(filter);
    if (!s) {
      s = {
        qos, granted: null, handlers: new Set(), match: compileFilter(filter), waiters: [], batch: null, sentQos: -1,
        history: history || 0, retained: retained !== false, maxRate: rate || 0, rateDirty: false,
        // the stream position: seq received per topic and overall (in epoch posEpoch)
        seen: new Map(), pos: 0, posEpoch: null, posUrl: null,
        // sockets (this._gen) on which the gateway acked it, replays to it,
        // and it is in step with the stream (no replay to come)
        okGen: -1, replayGen: -1, syncGen: -1, expect: 0,
      };
      this._subs.set(filter, s);
    } else if (rate !== undefined && rate !== s.maxRate) {
      this.setMaxRate(filter, rate).catch((e) => this._emit("error", e));
    }
    s.handlers.add(handler);
    if (s.granted !== null && qos <= s.qos && !s.batch) return Promise.resolve(s.granted);
    s.qos = Math.max(s.qos, qos);
    return new Promise((resolve, reject) => {
      const w = { resolve, reject, handler };
      if (s.batch && qos <= s.sentQos) s.batch.push(w);
      else {
        s.waiters.push(w);
        if (this.ready) this._sendSub(filter, s, timeout, s.granted !== null || s.batch ? "update" : "new");
      }
    });
  }

  /**
   * Sets or changes the max rate of a held filter (messages per second per
   * topic; 0 or null: no limit). Resolves once the gateway applied it (at
   * once while not connected: the next subscription carries it); rejects
   * with the gateway's error (e.g. "rate_limited"), the filter staying held
   * at its previous rate. The change does not replay retained messages.
   */
  setMaxRate(filter, maxRate) {
    const s = this._subs.get(filter);
    if (!s) return Promise.reject(new TypeError(`setMaxRate: ${filter} is not subscribed`));
    let rate;
    try {
      rate = checkRate(maxRate, "setMaxRate");
    } catch (e) {
      return Promise.reject(e);
    }
    const was = s.maxRate;
    s.maxRate = rate;
    if (!this.ready || s.okGen !== this._gen) {
      s.rateDirty = !!s.batch; // a sub on its way carries the old rate
      return Promise.resolve();
    }
    const frame = { op: "sub", topic: filter, qos: s.qos, retained: false };
    if (rate) frame.max_rate = rate;
    return this._request(frame, { direct: true, kind: "sub" }).then(
      (ok) => {
        if (this._subs.get(filter) === s && typeof ok.qos === "number") s.granted = ok.qos;
      },
      (err) => {
        if (s.maxRate === rate && err.code !== "disconnected") s.maxRate = was;
        err.filter = filter;
        throw err;
      }
    );
  }

  // Sends the sub of filter. mode: "new" (first time: history), "resume"
  // (held before this socket: since), "update" (held: a higher qos).
  _sendSub(filter, s, timeout, mode) {
    const batch = s.waiters;
    s.waiters = [];
    s.batch = batch;
    s.sentQos = s.qos;
    const gen = this._gen;
    const frame = { op: "sub", topic: filter, qos: s.qos };
    if (s.maxRate) frame.max_rate = s.maxRate;
    if (!s.retained) frame.retained = false;
    let resume = null;
    if (mode === "new" || mode === "resume") {
      if (mode === "resume") {
        resume = this._resumePoint(s);
        if (resume.since) frame.since = resume.since;
      }
      if (s.history) frame.history = s.history;
      if (s.posEpoch !== this.epoch) {
        s.seen.clear();
        s.pos = 0;
        s.posEpoch = this.epoch;
        s.posUrl = this.url;
      }
    }
    s.rateDirty = false;
    const onOk = (ok) => {
      if (s.batch === batch) s.batch = null;
      if (this._subs.get(filter) !== s) return;
      s.granted = typeof ok.qos === "number" ? ok.qos : s.sentQos;
      if (gen === this._gen) this._subscribed(s, mode, frame, ok, gen);
      for (const x of batch) x.resolve(s.granted);
      if (resume && gen === this._gen) this._emit("recovery", recoveryOf(filter, frame, ok, resume, this));
      if (s.rateDirty && this.ready) this.setMaxRate(filter, s.maxRate).catch((e) => this._emit("error", e));
    };
    this._request(frame, { timeout, direct: true, kind: "sub", onOk }).then(
      () => {},
      (err) => {
        if (s.batch === batch) s.batch = null;
        if (this._subs.get(filter) !== s) return;
        if (err.code === "disconnected" || err.code === "not_connected") {
          s.waiters.unshift(...batch); // answered by the re-subscription
          return;
        }
        err.filter = filter;
        if (s.granted === null) {
          this._subs.delete(filter);
          for (const x of s.waiters) batch.push(x);
          s.waiters = [];
        }
        for (const x of batch) {
          if (s.granted === null) s.handlers.delete(x.handler);
          x.reject(err);
        }
        if (batch.length === 0) {
          // A re-subscription after reconnect failed (roles changed?).
          this._subs.delete(filter);
          this._emit("error", err);
        }
      }
    );
  }

  // Where a filter held before this socket resumes: {since, reason, from},
  // since null (and why) when the gateway cannot be asked for the gap;
  // from: where its position was taken ({epoch, url, pos}).
  _resumePoint(s) {
    const from = { epoch: s.posEpoch, url: s.posUrl, pos: s.pos };
    if (!this.epoch) return { since: null, reason: "unsupported", from };
    if (s.posEpoch !== this.epoch) return { since: null, reason: s.posEpoch ? movedReason(from, this.url) : "no_position", from };
    if (s.pos < 1) return { since: null, reason: "no_position", from };
    return { since: { epoch: this.epoch, seq: s.pos }, reason: null, from };
  }

  // The gateway acked frame on socket gen: stream messages are routed to s
  // from now on; a replay of ok.replayed messages may come first.
  _subscribed(s, mode, frame, ok, gen) {
    s.okGen = gen;
    if (mode !== "new" && mode !== "resume") return; // held already: no replay
    if (frame.history !== undefined || frame.since !== undefined) s.replayGen = gen;
    s.expect = replayedOf(ok);
    if (s.expect > 0) return;
    // In step at once: every later message of the stream reaching this
    // session comes after the ones it already received.
    s.syncGen = gen;
    if (!s.maxRate && this._pos > s.pos) s.pos = this._pos;
  }

  /**
   * Removes handler from filter, or every handler when none is given; when
   * none remains, unsubscribes at the gateway. Resolves when done.
   */
  unsubscribe(filter, handler) {
    const s = this._subs.get(filter);
    if (!s) return Promise.resolve();
    if (handler) {
      s.handlers.delete(handler);
      if (s.handlers.size > 0) return Promise.resolve();
    }
    this._subs.delete(filter);
    const err = new MqGateError("unsubscribed", "unsubscribed before the gateway answered");
    for (const x of [...s.waiters, ...(s.batch || [])]) x.reject(err);
    if (!this.ready) return Promise.resolve(); // nothing held at the gateway now
    return this._request({ op: "unsub", topic: filter }, { direct: true }).then(() => undefined);
  }

  /** The filters held: [{filter, qos, granted (null while pending), handlers}]. */
  subscriptions() {
    return [...this._subs].map(([filter, s]) => ({ filter, qos: s.qos, granted: s.granted, handlers: s.handlers.size }));
  }

  /**
   * Publishes body to topic (body forms: see encodeBody). Resolves when the
   * gateway acks it (QoS 0: handed to MQTT, 1: PUBACK, 2: PUBCOMP); rejects
   * MqGateError with the gateway's code ("forbidden", "rate_limited", …).
   * While reconnecting the request waits (up to options.offlineQueue of
   * them); if the connection drops with it in flight it rejects
   * "disconnected": the outcome is unknown.
   */
  publish(topic, body, { qos = 0, retain = false, text, base64, timeout, props } = {}) {
    let frame;
    try {
      frame = bodyFrame("pub", topic, body, { qos, text, base64, props });
    } catch (e) {
      return Promise.reject(e);
    }
    if (retain) frame.retain = true;
    return this._request(frame, { timeout }).then(() => undefined);
  }

  /**
   * MQTT 5 request/response (protocol extension "request"): publishes body
   * to topic (as publish: qos, text, base64, props other than
   * responseTopic and correlation, which the gateway sets) and resolves the
   * device's answer { format, value, props? } (as a message's body).
   * Rejects MqGateError "timeout" when no answer came within timeoutMs
   * (1 to 60000 ms, the gateway's default 10000), "limit_exceeded" with
   * too many requests waiting, "broker_unavailable" when the broker
   * connection went down meanwhile, and the publish's errors. The client
   * itself gives up options.requestTimeout (if set) or 5 s after
   * timeoutMs, whichever is later.
   */
  request(topic, body, { timeoutMs, qos = 0, text, base64, props, timeout } = {}) {
    let frame;
    try {
      frame = bodyFrame("request", topic, body, { qos, text, base64, props });
      if (timeoutMs !== undefined) {
        if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60000) {
          throw new TypeError("request: timeoutMs must be an integer from 1 to 60000");
        }
        frame.timeout_ms = timeoutMs;
      }
    } catch (e) {
      return Promise.reject(e);
    }
    const wait = (timeoutMs === undefined ? 10000 : timeoutMs) + 5000;
    if (timeout === undefined) timeout = Math.max(wait, this.options.requestTimeout || 0);
    return this._request(frame, { timeout }).then((ok) =>
      decodeBody(ok.response && typeof ok.response === "object" ? ok.response : {}));
  }

  /** Round trip to the gateway; resolves the time in ms. */
  ping({ timeout } = {}) {
    const t0 = now();
    const direct = !!this._ws && this._ws.readyState === 1 && !!this.hello;
    return this._request({ op: "ping" }, { timeout, direct }).then(() => now() - t0);
  }

  // --- incoming messages ------------------------------------------------------

  _onMsg(f) {
    let msg;
    try {
      msg = decodeMessage(f);
    } catch (e) {
      this._emit("error", e);
      return;
    }
    this.stats.messages++;
    this._emit("message", msg);
    const topic = msg.topic;
    if (typeof topic !== "string") return;
    const gen = this._gen;
    const seq = msg.seq;
    const live = seq !== undefined && !msg.history;
    if (live && seq > this._pos) this._pos = seq;
    let called = null;
    for (const [filter, s] of this._subs) {
      if (!s.match(topic)) {
        // Live messages reach the session in seq order: a filter in step
        // has received everything of its own up to this one.
        if (live && s.syncGen === gen && !s.maxRate && seq > s.pos) s.pos = seq;
        continue;
      }
      if (msg.retain && !s.retained) continue;
      if (seq !== undefined && !this._take(s, topic, seq, msg.history, gen)) continue;
      for (const h of s.handlers) {
        if (called === null) called = new Set();
        else if (called.has(h)) continue;
        called.add(h);
        try {
          h(msg, filter);
        } catch (e) {
          this._emit("error", e);
        }
      }
    }
  }

  // Whether stream message (topic, seq) is for filter s, noting it when it
  // is: after the gateway acked s on this socket, replayed messages only
  // when s asked for a replay, and never one s already received.
  _take(s, topic, seq, history, gen) {
    if (s.okGen !== gen || (history && s.replayGen !== gen)) return false;
    const last = s.seen.get(topic);
    if (last !== undefined && seq <= last) return false;
    s.seen.set(topic, seq);
    if (seq > s.pos) s.pos = seq;
    if (history) {
      if (s.expect > 0) s.expect--;
    } else if (s.syncGen !== gen) {
      s.syncGen = gen; // the first live message after its replay
      s.expect = 0;
    }
    return true;
  }
}

// The frame of a pub or request: topic, body fields, qos, props.
function bodyFrame(op, topic, body, { qos, text, base64, props }) {
  const what = op === "pub" ? "publish" : op;
  if (typeof topic !== "string" || topic === "") throw new TypeError(`${what}: topic must be a non-empty string`);
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new TypeError(`${what}: qos must be 0, 1 or 2`);
  const frame = { op, topic, ...encodeBody(body, { text, base64 }) };
  if (qos) frame.qos = qos;
  if (props !== undefined) frame.props = encodeProps(props);
  return frame;
}

function checkRate(r, what) {
  if (r === null || r === 0) return 0;
  if (typeof r !== "number" || !(r > 0 && r <= 1000)) throw new TypeError(`${what}: maxRate must be a number above 0 and at most 1000, or 0/null`);
  return r;
}

function replayedOf(ok) {
  return Number.isSafeInteger(ok.replayed) && ok.replayed > 0 ? ok.replayed : 0;
}

// Why a position of another epoch cannot be resumed on the gateway at url:
// another gateway took the session, or the same one restarted.
function movedReason(from, url) {
  return from.url !== url ? "failover" : "restarted";
}

// The "recovery" event of a re-subscription answered by ok, on session gw
// (its gateway's url and epoch as of the ok).
function recoveryOf(filter, frame, ok, resume, gw) {
  const replayed = replayedOf(ok);
  const at = { url: gw.url, epoch: gw.epoch };
  if (!frame.since) {
    let reason = resume.reason;
    if (reason === "unsupported" && at.epoch) {
      // The gateway's epoch came after the sub went (over HTTP, with its
      // first stream, after a failover).
      reason = !resume.from.epoch || resume.from.pos < 1 ? "no_position" : movedReason(resume.from, at.url);
    }
    return { filter, recovered: false, replayed, reason, ...at };
  }
  const recovered = ok.recovered === true;
  return { filter, recovered, replayed, reason: recovered ? null : typeof ok.recovered === "boolean" ? "gap" : "unsupported", ...at };
}

function authFields(c) {
  if (!c) throw new MqGateError("bad_credentials", "no credentials");
  if (typeof c.token === "string") return { token: c.token };
  if (typeof c.user === "string") {
    const f = { user: c.user, password: String(c.password ?? "") };
    if (c.otp != null && c.otp !== "") f.otp = String(c.otp);
    return f;
  }
  throw new MqGateError("bad_credentials", "credentials need a token or a user");
}

function now() {
  return globalThis.performance && performance.now ? performance.now() : Date.now();
}

/** Shorthand: creates an MqGate, connects it, and resolves it once usable. */
export async function connect(url, credentials = null, options = {}) {
  const gw = new MqGate(url, credentials, options);
  await gw.connect();
  return gw;
}

export default MqGate;
