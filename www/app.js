// The mqgate dashboard: sign in, watch topics, chart numeric values, publish.
// Plain ES module over mqgate.js. Messages only update the model; the page is
// drawn on requestAnimationFrame, so hundreds of messages a second cost one
// repaint per frame, not one per message.

import { MqGate, compileFilter } from "./mqgate.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const GATEWAY = gatewayUrl(params.get("ws"));
const WS_URL = GATEWAY.url;
const FILTERS_KEY = "mqgate.filters";
const RATES_KEY = "mqgate.rates";
// Stored messages asked for per topic when subscribing (?history=N; 0: none).
const HISTORY = historyParam(params.get("history"));
// ?transport=sse or websocket: only that one; else a WebSocket, and the
// HTTP API (SSE + POST) where one cannot be opened.
const TRANSPORT = ["sse", "websocket"].includes(params.get("transport")) ? params.get("transport") : "auto";

const MAX_ROWS = 500;          // topics shown in the table
const MAX_CHARTS = 24;         // numeric series charted
const SERIES_POINTS = 600;     // points kept per series
const CHART_WINDOW_MS = 60000; // time shown by a chart
const AGE_EVERY_MS = 500;      // how often ages are refreshed
const CHART_EVERY_MS = 1000;   // charts scroll at least this often

// The gateway this page talks to: the one of the site that served it. ?ws=
// may choose another path of the same site (a listener with another
// "path"), never another host or port, nor ws: from an https: page: a link
// to this dashboard must not be able to send the password typed here to
// someone else. Returns {url, ignored}: ignored is the refused value.
function gatewayUrl(asked) {
  const secure = location.protocol === "https:";
  const own = `${secure ? "wss" : "ws"}://${location.host}/ws`;
  if (asked === null || asked === "") return { url: own, ignored: null };
  let u = null;
  try {
    u = new URL(asked, own);
  } catch { /* refused below */ }
  const ok = u && (u.protocol === "wss:" || (u.protocol === "ws:" && !secure)) &&
    u.host === location.host && !u.username && !u.password;
  return ok ? { url: u.href, ignored: null } : { url: own, ignored: asked };
}

function historyParam(v) {
  const n = v === null ? 50 : Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 100000 ? n : 50;
}

// ---------------------------------------------------------------------------
// model

const topics = new Map();      // topic → entry
const sortedTopics = [];       // topic names, sorted, of entries that have a row
const series = new Map();      // "topic\u0000field" → series
const dirtyTopics = new Set();
const dirtySeries = new Set();
let seriesDropped = 0;
let topicsDropped = 0;
let msgTotal = 0;
let msgWindow = 0;

// Times are the gateway's: a message of its stream says when the gateway
// received it (ts), others are stamped on arrival. clockOffset is how far
// this browser's clock is ahead of the gateway's, learnt from live messages
// (the smallest arrival − ts seen on this connection).
let clockOffset = null;

function gatewayNow() {
  return Date.now() - (clockOffset || 0);
}

function onMessage(msg, filter) {
  const stream = msg.seq !== undefined;
  if (stream && !msg.history && msg.ts !== undefined) {
    const d = Date.now() - msg.ts;
    if (clockOffset === null || d < clockOffset) clockOffset = d;
  }
  let e = topics.get(msg.topic);
  if (e && stream && isStale(e, msg)) return;
  msgTotal++;
  msgWindow++;
  if (!e) {
    e = { topic: msg.topic, text: "", format: "", at: 0, count: 0, retain: false, row: null, ageText: "", seq: 0, epoch: null };
    topics.set(msg.topic, e);
  }
  e.format = msg.format;
  e.value = msg.value;
  e.text = null; // formatted lazily, once per frame
  e.at = stream && msg.ts !== undefined ? msg.ts : gatewayNow();
  if (stream) {
    e.seq = msg.seq;
    e.epoch = gw.epoch;
  }
  e.count++;
  e.retain = msg.retain;
  e.history = msg.history === true;
  if (e.history) noteReplayed(filter);
  dirtyTopics.add(e);
  if (msg.format === "json") recordNumbers(msg.topic, msg.value, e.at);
}

// A message older than what the topic shows (another filter's replay):
// by seq within one epoch, by time across epochs.
function isStale(e, msg) {
  if (e.epoch !== null && e.epoch === gw.epoch) return msg.seq <= e.seq;
  return msg.ts !== undefined && msg.ts <= e.at;
}

// Messages of the filter's topics may be missing after its last point: the
// line of each of its charts is broken there.
function markGap(filter) {
  const match = compileFilter(filter);
  for (const s of series.values()) {
    if (!match(s.topic) || s.len === 0) continue;
    const last = (s.start + s.len - 1) % SERIES_POINTS;
    if (!Number.isNaN(s.v[last])) pushPoint(s, s.t[last], NaN);
  }
}

// Numbers in a payload: the value itself, or each numeric field of an object
// (nested objects as dotted paths, two levels down).
function recordNumbers(topic, v, at) {
  if (typeof v === "number") {
    addPoint(topic, "", v, at);
  } else if (v && typeof v === "object" && !Array.isArray(v)) {
    walk(v, "", 0);
  }
  function walk(o, prefix, depth) {
    for (const k in o) {
      const x = o[k];
      if (typeof x === "number" && Number.isFinite(x)) addPoint(topic, prefix + k, x, at);
      else if (depth < 2 && x && typeof x === "object" && !Array.isArray(x)) walk(x, `${prefix}${k}.`, depth + 1);
    }
  }
}

function addPoint(topic, field, value, at) {
  const key = `${topic}\u0000${field}`;
  let s = series.get(key);
  if (!s) {
    if (series.size >= MAX_CHARTS) {
      seriesDropped++;
      return;
    }
    s = {
      key, topic, field,
      t: new Float64Array(SERIES_POINTS), v: new Float64Array(SERIES_POINTS),
      start: 0, len: 0, last: value, card: null,
    };
    series.set(key, s);
  }
  pushPoint(s, at, value);
  s.last = value;
}

// value NaN: a gap
function pushPoint(s, at, value) {
  const i = (s.start + s.len) % SERIES_POINTS;
  s.t[i] = at;
  s.v[i] = value;
  if (s.len < SERIES_POINTS) s.len++;
  else s.start = (s.start + 1) % SERIES_POINTS;
  dirtySeries.add(s);
}

// ---------------------------------------------------------------------------
// rendering, once per animation frame

let frames = 0;
let rateSince = performance.now();
let lastAges = 0;
let lastCharts = 0;
let topicFilter = "";

function frame(now) {
  frames++;
  if (now - rateSince >= 1000) {
    const secs = (now - rateSince) / 1000;
    const fps = Math.round(frames / secs), mps = Math.round(msgWindow / secs);
    setReadout($("fps"), fps);
    setReadout($("mps"), mps);
    const peak = window.mqgateApp.peak;
    if (mps > peak.mps) peak.mps = mps;
    if (mps > 0 && (peak.minFpsUnderLoad === null || fps < peak.minFpsUnderLoad)) peak.minFpsUnderLoad = fps;
    frames = 0;
    msgWindow = 0;
    rateSince = now;
  }
  setReadout($("msg-total"), msgTotal);
  setReadout($("topic-count"), topics.size);

  for (const v of dirtySubs) renderSub(v);
  dirtySubs.clear();
  if (dirtyTopics.size) {
    for (const e of dirtyTopics) renderTopic(e);
    dirtyTopics.clear();
    $("topics-empty").hidden = topics.size > 0;
    const more = $("topics-more");
    more.hidden = topicsDropped === 0;
    if (topicsDropped) more.textContent = `${topicsDropped} more topics are not listed.`;
  }
  const wall = gatewayNow();
  if (now - lastAges >= AGE_EVERY_MS) {
    lastAges = now;
    for (const e of topics.values()) if (e.row) renderAge(e, wall);
  }
  if (now - lastCharts >= CHART_EVERY_MS) {
    lastCharts = now;
    for (const s of series.values()) dirtySeries.add(s);
  }
  if (dirtySeries.size) {
    for (const s of dirtySeries) drawSeries(s, wall);
    dirtySeries.clear();
    $("charts-empty").hidden = series.size > 0;
    const more = $("charts-more");
    more.hidden = seriesDropped === 0;
    if (seriesDropped) more.textContent = `Only the first ${MAX_CHARTS} numeric series are charted.`;
  }
  requestAnimationFrame(frame);
}

function setReadout(el, n) {
  const s = String(n);
  if (el.dataset.value !== s) {
    el.dataset.value = s;
    el.textContent = s;
  }
}

function formatValue(e) {
  switch (e.format) {
    case "json":
      return JSON.stringify(e.value) ?? "";
    case "text":
      return e.value === "" ? "(empty)" : e.value;
    case "binary": {
      const b = e.value;
      let hex = "";
      for (let i = 0; i < Math.min(b.length, 24); i++) hex += b[i].toString(16).padStart(2, "0") + " ";
      return `(${b.length} bytes) ${hex.trim()}${b.length > 24 ? " …" : ""}`;
    }
    default:
      return "";
  }
}

function renderTopic(e) {
  if (!e.row) {
    if (sortedTopics.length >= MAX_ROWS) {
      if (!e.dropped) {
        e.dropped = true;
        topicsDropped++;
      }
      return;
    }
    e.row = makeRow(e);
  }
  let text = formatValue(e);
  if (text.length > 300) text = text.slice(0, 300) + "…";
  const cell = e.row.cells[1];
  if (cell.firstChild.textContent !== text) cell.firstChild.textContent = text;
  cell.dataset.format = e.format;
  e.row.dataset.retain = e.retain ? "true" : "false";
  e.row.dataset.count = String(e.count);
  e.row.dataset.history = e.history ? "true" : "false";
  renderAge(e, gatewayNow());
  // Alternating between two identical animations restarts the highlight
  // without forcing a layout.
  e.row.dataset.flash = e.row.dataset.flash === "a" ? "b" : "a";
}

function makeRow(e) {
  const tr = document.createElement("tr");
  tr.dataset.topic = e.topic;
  const th = document.createElement("th");
  th.scope = "row";
  th.textContent = e.topic;
  const val = document.createElement("td");
  val.className = "value";
  val.appendChild(document.createElement("span"));
  const age = document.createElement("td");
  age.className = "age";
  tr.append(th, val, age);
  tr.hidden = !matchesFilter(e.topic);
  // sorted insertion
  let lo = 0, hi = sortedTopics.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sortedTopics[mid] < e.topic) lo = mid + 1;
    else hi = mid;
  }
  const before = lo < sortedTopics.length ? topics.get(sortedTopics[lo]).row : null;
  sortedTopics.splice(lo, 0, e.topic);
  $("topic-rows").insertBefore(tr, before);
  return tr;
}

function renderAge(e, wall) {
  const s = formatAge(wall - e.at);
  if (s !== e.ageText) {
    e.ageText = s;
    e.row.cells[2].textContent = s;
  }
}

function formatAge(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

function matchesFilter(topic) {
  return topicFilter === "" || topic.toLowerCase().includes(topicFilter);
}

// --- charts ---

let chartColors = null;

function colors() {
  if (!chartColors) {
    const cs = getComputedStyle(document.documentElement);
    chartColors = {
      line: cs.getPropertyValue("--chart-line").trim() || "#1565c0",
      grid: cs.getPropertyValue("--chart-grid").trim() || "#ddd",
      text: cs.getPropertyValue("--muted").trim() || "#555",
    };
  }
  return chartColors;
}
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  chartColors = null;
  for (const s of series.values()) dirtySeries.add(s);
});

function makeCard(s) {
  const fig = document.createElement("figure");
  fig.className = "chart";
  fig.dataset.topic = s.topic;
  fig.dataset.field = s.field;
  const cap = document.createElement("figcaption");
  const name = document.createElement("span");
  name.className = "chart-name";
  name.textContent = s.field ? `${s.topic} · ${s.field}` : s.topic;
  const last = document.createElement("span");
  last.className = "chart-last";
  cap.append(name, last);
  const canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  const range = document.createElement("span");
  range.className = "chart-range";
  fig.append(cap, canvas, range);
  $("chart-grid").appendChild(fig);
  return { fig, canvas, last, range, label: name.textContent, w: 0, h: 0 };
}

function fmtNum(x) {
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 0.01 || a >= 1e6) ? x.toPrecision(3) : String(+x.toFixed(2));
}

function drawSeries(s, wall) {
  if (!s.card) s.card = makeCard(s);
  const c = s.card;
  const lastText = fmtNum(s.last);
  if (c.last.textContent !== lastText) c.last.textContent = lastText;

  const dpr = window.devicePixelRatio || 1;
  const cssW = c.canvas.clientWidth || 280;
  const cssH = c.canvas.clientHeight || 72;
  const W = Math.round(cssW * dpr), H = Math.round(cssH * dpr);
  if (c.canvas.width !== W || c.canvas.height !== H) {
    c.canvas.width = W;
    c.canvas.height = H;
  }
  const ctx = c.canvas.getContext("2d");
  ctx.clearRect(0, 0, W, H);
  let t0 = wall - CHART_WINDOW_MS;
  let min = Infinity, max = -Infinity, first = -1;
  for (let k = 0; k < s.len; k++) {
    const i = (s.start + k) % SERIES_POINTS;
    if (s.t[i] < t0) continue;
    if (first < 0) first = k;
    const v = s.v[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const col = colors();
  ctx.strokeStyle = col.grid;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(0, H - 0.5);
  ctx.lineTo(W, H - 0.5);
  ctx.stroke();
  if (first < 0 || min > max) { // nothing, or only a gap
    c.range.textContent = "no values in the last minute";
    c.canvas.setAttribute("aria-label", `${c.label}: no values in the last minute`);
    return;
  }
  if (min === max) {
    min -= 1;
    max += 1;
  }
  // Less than a minute of data: show its own span (at least 10 s).
  t0 = Math.max(t0, Math.min(s.t[(s.start + first) % SERIES_POINTS], wall - 10000));
  const span = wall - t0;
  const pad = 4 * dpr;
  const x = (t) => ((t - t0) / span) * (W - 2 * pad) + pad;
  const y = (v) => H - pad - ((v - min) / (max - min)) * (H - 2 * pad);
  ctx.strokeStyle = col.line;
  ctx.lineWidth = 1.5 * dpr;
  ctx.lineJoin = "round";
  ctx.beginPath();
  // Several points on one pixel column are drawn as that column's vertical span.
  let colX = -1, colMin = 0, colMax = 0, started = false;
  const flush = () => {
    if (colX < 0) return;
    if (!started) {
      ctx.moveTo(colX, y(colMin));
      started = true;
    } else ctx.lineTo(colX, y(colMin));
    if (colMax !== colMin) ctx.lineTo(colX, y(colMax));
  };
  let lastI = -1;
  for (let k = first; k < s.len; k++) {
    const i = (s.start + k) % SERIES_POINTS;
    const px = Math.round(x(s.t[i]));
    const v = s.v[i];
    if (Number.isNaN(v)) { // a gap: lift the pen
      flush();
      colX = -1;
      started = false;
      continue;
    }
    lastI = i;
    if (px !== colX) {
      flush();
      colX = px;
      colMin = colMax = v;
    } else {
      if (v < colMin) colMin = v;
      if (v > colMax) colMax = v;
    }
  }
  flush();
  ctx.stroke();
  ctx.fillStyle = col.line;
  ctx.beginPath();
  ctx.arc(x(s.t[lastI]), y(s.v[lastI]), 2.5 * dpr, 0, Math.PI * 2);
  ctx.fill();
  const rangeText = `min ${fmtNum(min === max - 2 ? min + 1 : min)} · max ${fmtNum(min === max - 2 ? max - 1 : max)}`;
  if (c.range.textContent !== rangeText) {
    c.range.textContent = rangeText;
    c.canvas.setAttribute("aria-label", `${c.label}: latest ${lastText}, ${rangeText} over the last minute`);
  }
}

// ---------------------------------------------------------------------------
// session

let gw = null;
let entered = null;      // credentials typed by the user: memory only, never stored
let pendingAsk = null;   // {resolve} while the library waits for the form
let inDashboard = false;
let anonymousAllowed = false;

function credentialSource({ attempt, reason, resumable }) {
  if (reason === "auth_failed") {
    return ask(entered ? "Sign-in failed: check your credentials." : "The gateway refused the session; sign in.", true);
  }
  if (reason === "token_expired") {
    return ask("Your session expired. Sign in again.", true);
  }
  if (attempt > 0 && entered && entered.otp && !resumable) {
    // One-time codes are single use: reconnecting needs a fresh one.
    return ask("The connection was lost. Enter a new one-time code to reconnect.", false, true);
  }
  return entered || null;
}

// Shows the sign-in form and resolves the credentials submitted with it.
function ask(message, isError, otpOnly = false) {
  showSignIn(message, isError);
  const st = $("conn-status");
  st.dataset.state = "closed";
  st.textContent = "Waiting for you to sign in";
  if (otpOnly && entered) {
    $("user").value = entered.user || "";
    $("password").value = entered.password || "";
    $("otp").value = "";
    setMethod("password");
    $("otp").focus();
  }
  if (pendingAsk) pendingAsk.resolve(undefined);
  return new Promise((resolve) => {
    pendingAsk = { resolve };
  });
}

function start() {
  const session = new MqGate(WS_URL, credentialSource, {
    backoff: { min: 500, max: 15000 },
    transport: TRANSPORT,
  });
  gw = session;
  window.mqgateApp.gw = session;
  session.on("state", (state, d) => session === gw && onState(state, d));
  session.on("broker", (b) => session === gw && onBroker(b));
  session.on("authenticated", (who) => session === gw && onAuthenticated(who));
  session.on("hello", (h) => session === gw && onHello(h));
  session.on("error", (e) => session === gw && console.warn("mqgate:", e.code || "", e.message));
  session.on("recovery", (r) => session === gw && onRecovery(r));
  session.on("transport", (t) => session === gw && showTransport(t));
  connectSession(session);
}

function connectSession(session) {
  session.connect().catch((e) => {
    if (session !== gw) return;
    if (e.code === "auth_required") {
      if (entered) connectSession(session);
      else showSignIn("");
    } else if (e.code !== "closed") {
      showSignIn(errorText(e), true);
    }
  });
}

function onHello(h) {
  const methods = Array.isArray(h.auth) ? h.auth : [];
  const radios = document.querySelectorAll('input[name="method"]');
  let firstAllowed = null;
  for (const r of radios) {
    const ok = methods.length === 0 || methods.includes(r.value);
    r.closest("label").hidden = !ok;
    if (ok && !firstAllowed) firstAllowed = r.value;
  }
  const current = document.querySelector('input[name="method"]:checked');
  if (current && current.closest("label").hidden && firstAllowed) setMethod(firstAllowed);
  $("method-choice").hidden = methods.filter((m) => m === "password" || m === "token").length < 2;
}

function onState(state, d) {
  const el = $("conn-status");
  el.dataset.state = state;
  let text;
  switch (state) {
    case "connecting":
      text = d.attempt ? `Reconnecting (attempt ${d.attempt + 1})…` : "Connecting…";
      break;
    case "open":
      text = "Connected, signing in…";
      break;
    case "authenticated":
      text = connectedText();
      recoveries.clear();
      connectedAt = new Date();
      clockOffset = null; // perhaps another gateway
      break;
    case "closed":
      if (d.reconnectIn != null) {
        text = `Disconnected${d.code ? ` (${d.code})` : ""}; retrying in ${Math.max(1, Math.round(d.reconnectIn / 1000))} s`;
        if (!inDashboard && $("signin").hidden && !d.authReason) showSignIn("The gateway is not reachable yet; retrying.");
      }
      else if (d.authReason === "auth_required") text = "Sign in to continue";
      else text = "Disconnected";
      break;
    default:
      text = state;
  }
  el.textContent = text;
  if (state !== "authenticated") {
    onBroker(null);
    $("stream-status").hidden = true; // about the last reconnect: shown again by the next one
  }
}

// Which transport the session uses; the HTTP one says why when it was not
// asked for.
function showTransport(t) {
  const el = $("transport");
  el.hidden = false;
  el.dataset.transport = t;
  document.body.dataset.transport = t;
  el.textContent = t === "sse"
    ? (TRANSPORT === "sse" ? "over HTTP (Server-Sent Events)" : "over HTTP (Server-Sent Events): no WebSocket could be opened")
    : "over WebSocket";
}

function connectedText() {
  return gw.anonymous ? "Connected without signing in" : "Connected";
}

function onBroker(b) {
  const banner = $("broker-banner");
  banner.hidden = b !== "down";
  document.body.dataset.broker = b || "unknown";
  const live = $("broker-status");
  const text = b === "down" ? "" : b === "up" ? "Broker connected." : "";
  if (live.textContent !== text && b !== null) live.textContent = text;
}

function onAuthenticated(who) {
  const id = $("identity");
  id.hidden = false;
  id.textContent = who.anonymous ? "Guest" : `${who.user}${who.roles.length ? ` (${who.roles.join(", ")})` : ""}`;
  $("sign-out").hidden = false;
  $("sign-out").textContent = who.anonymous ? "Sign in" : "Sign out";
  // a sign-in on an anonymous session changes no state, only the identity
  if (gw.state === "authenticated") $("conn-status").textContent = connectedText();
  showAllowed(gw.allow);
  if (who.anonymous) {
    anonymousAllowed = true;
    $("continue-anon").hidden = false;
    if (!inDashboard) showSignIn("You may sign in, or continue without signing in.");
    else followAllowed(gw.allow);
    return;
  }
  enterDashboard();
}

function enterDashboard() {
  hideSignIn();
  $("main").hidden = false;
  const allow = gw.allow;
  if (!inDashboard) {
    inDashboard = true;
    const start = initialFilters(allow);
    filterSource = start.source;
    for (const f of start.filters) addFilter(f.filter, f.qos);
    showNoFilters();
  } else {
    followAllowed(allow);
  }
}

// What the session may do, from the gateway's "allow": the publish panel
// only when there is something to publish to, with its patterns on offer,
// and the subscribe patterns as suggestions. Without "allow" (an older
// gateway) everything stays on offer and the gateway refuses what it must.
function showAllowed(allow) {
  const pub = allow ? allow.publish : null;
  $("publish-panel").hidden = !!pub && pub.length === 0;
  $("request-panel").hidden = !!pub && pub.length === 0;
  const box = $("pub-patterns");
  const list = $("pub-pattern-list");
  list.textContent = "";
  box.hidden = !pub || pub.length === 0;
  for (const pattern of pub || []) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "link";
    b.textContent = pattern;
    b.setAttribute("aria-label", `Publish to ${pattern}`);
    b.addEventListener("click", () => usePattern(pattern, true));
    li.appendChild(b);
    list.appendChild(li);
  }
  if (pub && pub.length) {
    $("pub-topic").placeholder = pub[0];
    if ($("pub-topic").value === "") usePattern(pub[0], false);
  }
  const sugg = $("sub-suggestions");
  sugg.textContent = "";
  for (const pattern of allow ? allow.subscribe : []) {
    const o = document.createElement("option");
    o.value = pattern;
    sugg.appendChild(o);
  }
  if (allow && allow.subscribe.length) $("sub-filter").placeholder = allow.subscribe[0];
}

// Fills the topic field with a name the pattern allows: each wildcard level
// becomes "1", selected when focus is asked for, so that typing replaces it.
function usePattern(pattern, focus) {
  const levels = pattern.split("/");
  const wild = levels.findIndex((l) => l === "+" || l === "#");
  const name = levels.map((l) => (l === "+" || l === "#" ? "1" : l)).join("/");
  const input = $("pub-topic");
  input.value = name;
  if (!focus) return;
  input.focus();
  if (wild >= 0) {
    const at = levels.slice(0, wild).join("/").length + (wild > 0 ? 1 : 0);
    input.setSelectionRange(at, at + 1);
  }
}

function showSignIn(message, isError = false) {
  $("signin").hidden = false;
  const m = $("signin-message");
  m.textContent = message || "";
  m.classList.toggle("error", !!isError);
  $("signin-submit").disabled = false;
  if (!inDashboard) $("main").hidden = true;
  const first = document.querySelector('input[name="method"]:checked').value === "token" ? $("token") : $("user");
  if (!first.value) first.focus();
}

function hideSignIn() {
  $("signin").hidden = true;
  $("signin-message").textContent = "";
}

function setMethod(m) {
  const r = document.querySelector(`input[name="method"][value="${m}"]`);
  if (r) r.checked = true;
  $("password-fields").hidden = m !== "password";
  $("token-fields").hidden = m !== "token";
}

function readCredentials() {
  const method = document.querySelector('input[name="method"]:checked').value;
  if (method === "token") {
    const token = $("token").value.trim();
    return token ? { token } : null;
  }
  const user = $("user").value.trim();
  if (!user) return null;
  const c = { user, password: $("password").value };
  const otp = $("otp").value.trim();
  if (otp) c.otp = otp;
  return c;
}

function onSignIn(ev) {
  ev.preventDefault();
  const creds = readCredentials();
  if (!creds) {
    showSignIn("Enter a user name, or a token.", true);
    return;
  }
  entered = creds;
  $("password").value = "";
  $("otp").value = "";
  $("signin-message").textContent = "Signing in…";
  $("signin-message").classList.remove("error");
  $("signin-submit").disabled = true;
  if (pendingAsk) {
    const p = pendingAsk;
    pendingAsk = null;
    p.resolve(creds);
  } else if (gw.ready) {
    // An anonymous session: upgrade it in place. A refusal closes it (4401)
    // and the credential source asks again.
    gw.authenticate(creds).catch(() => {});
  } else if (gw.state === "closed" || gw.state === "idle") {
    connectSession(gw); // restarts a stopped session; joins a pending retry
  }
  // Otherwise a connection is under way and the credential source hands it
  // `entered` on the next attempt.
}

function signOut() {
  const old = gw;
  gw = null;
  entered = null;
  inDashboard = false;
  if (pendingAsk) {
    pendingAsk.resolve(null);
    pendingAsk = null;
  }
  old.close();
  clearData();
  $("identity").hidden = true;
  $("sign-out").hidden = true;
  $("main").hidden = true;
  $("sub-list").textContent = "";
  subViews.clear();
  $("stream-status").hidden = true;
  start();
}

function clearData() {
  topics.clear();
  series.clear();
  sortedTopics.length = 0;
  dirtyTopics.clear();
  dirtySeries.clear();
  topicsDropped = seriesDropped = msgTotal = 0;
  $("topic-rows").textContent = "";
  $("chart-grid").textContent = "";
  $("topics-empty").hidden = false;
  $("charts-empty").hidden = false;
}

function errorText(e) {
  const code = e && e.code ? e.code : "error";
  const msg = e && e.message && e.message !== code ? `: ${e.message}` : "";
  return `${code}${msg}`;
}

// ---------------------------------------------------------------------------
// subscriptions

// Where the filters of the session came from: "param" (?sub=), "saved" (the
// user's earlier choice), "allow" (what the gateway says the session may
// subscribe to: they follow it when the identity changes, and are not
// saved), "fallback" ("#", for a gateway that does not say), "user".
let filterSource = null;

function initialFilters(allow) {
  const given = params.get("sub");
  if (given !== null) return { source: "param", filters: parseFilters(given) };
  const saved = localStorage.getItem(FILTERS_KEY);
  if (saved !== null) return { source: "saved", filters: parseFilters(saved) };
  if (allow) return { source: "allow", filters: allowedFilters(allow) };
  return { source: "fallback", filters: parseFilters("#") };
}

function parseFilters(list) {
  return list.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
    const m = /^(.*)@([012])$/.exec(s);
    return m ? { filter: m[1], qos: +m[2] } : { filter: s, qos: 0 };
  });
}

// A shared subscription would take messages away from the group's other
// members: never one by default.
function allowedFilters(allow) {
  return allow.subscribe.filter((p) => !p.startsWith("$share/")).map((filter) => ({ filter, qos: 0 }));
}

// After a sign-in on an anonymous session, a refresh or a reconnect: the
// default filters become those of the new identity.
function followAllowed(allow) {
  if (filterSource !== "allow" || !allow) return;
  const want = allowedFilters(allow);
  for (const li of [...$("sub-list").children]) {
    if (!want.some((f) => f.filter === li.dataset.filter)) removeFilter(li);
  }
  for (const f of want) {
    if (![...$("sub-list").children].some((li) => li.dataset.filter === f.filter)) addFilter(f.filter, f.qos);
  }
  showNoFilters();
}

function showNoFilters() {
  const none = filterSource === "allow" && $("sub-list").children.length === 0;
  $("topics-empty").textContent = none ? "Your role may not subscribe to any topic." : "No messages yet.";
}

function saveFilters() {
  if (filterSource === "allow") return;
  const items = [...$("sub-list").children].filter((li) => li.dataset.status !== "error");
  localStorage.setItem(FILTERS_KEY, items.map((li) => `${li.dataset.filter}@${li.dataset.qos}`).join(","));
}

function removeFilter(li) {
  if (gw) gw.unsubscribe(li.dataset.filter).catch(noop);
  subViews.delete(li.dataset.filter);
  li.remove();
}

const noop = () => {};

// What the list shows of each filter: filter → {filter, li, status, rate,
// granted, error, replayed (messages from history since the last
// (re)subscription), recovery (the last "recovery" event), maxRate,
// rateError}.
const subViews = new Map();
const dirtySubs = new Set();

// At most that many messages per second per topic (protocol: max_rate).
const RATE_CHOICES = [["", "no limit"], ["20", "20/s"], ["10", "10/s"], ["5", "5/s"], ["2", "2/s"], ["1", "1/s"], ["0.2", "1 per 5 s"]];

function addFilter(filter, qos) {
  const v = subViews.get(filter) || makeSubView(filter);
  v.li.dataset.qos = String(qos);
  v.li.dataset.status = "pending";
  v.granted = v.error = v.recovery = null;
  v.replayed = 0;
  renderSub(v);
  subscribeView(v, qos, HISTORY);
}

function subscribeView(v, qos, history) {
  const session = gw;
  session.subscribe(v.filter, onMessage, { qos, history, maxRate: v.maxRate || null }).then(
    (granted) => {
      v.li.dataset.status = "ok";
      v.granted = granted;
      renderSub(v);
      saveFilters();
    },
    (e) => {
      // A gateway keeping fewer messages per topic than asked refuses the
      // history: subscribe without.
      if (e.code === "bad_request" && history && session === gw) {
        subscribeView(v, qos, 0);
        return;
      }
      v.li.dataset.status = "error";
      v.li.dataset.code = e.code || "";
      v.error = e;
      renderSub(v);
      saveFilters();
    }
  );
}

function makeSubView(filter) {
  const li = document.createElement("li");
  li.dataset.filter = filter;
  const name = document.createElement("code");
  name.textContent = filter;
  const status = document.createElement("span");
  status.className = "sub-status";
  const rate = document.createElement("select");
  rate.className = "sub-rate";
  rate.title = "At most this many messages per second per topic; the newest always arrives";
  rate.setAttribute("aria-label", `Max messages per second per topic for ${filter}`);
  const saved = savedRates()[filter];
  const maxRate = typeof saved === "number" && saved > 0 && saved <= 1000 ? saved : 0;
  const v = { filter, li, status, rate, granted: null, error: null, replayed: 0, recovery: null, maxRate, rateError: null };
  const choices = RATE_CHOICES.slice();
  if (v.maxRate && !choices.some(([x]) => Number(x) === v.maxRate)) choices.push([String(v.maxRate), `${v.maxRate}/s`]);
  for (const [value, label] of choices) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    rate.appendChild(o);
  }
  rate.value = v.maxRate ? choices.find(([x]) => Number(x) === v.maxRate)[0] : "";
  rate.addEventListener("change", () => setRate(v, rate.value === "" ? 0 : Number(rate.value)));
  li.dataset.maxRate = String(v.maxRate);
  const rm = document.createElement("button");
  rm.type = "button";
  rm.className = "link";
  rm.textContent = "Remove";
  rm.setAttribute("aria-label", `Unsubscribe from ${filter}`);
  rm.addEventListener("click", () => {
    filterSource = "user";
    removeFilter(li);
    saveFilters();
  });
  li.append(name, status, rate, rm);
  $("sub-list").appendChild(li);
  subViews.set(filter, v);
  return v;
}

// The max rate chosen on the page: applied at once when the filter is
// held, else by its next subscription; kept for the next visit.
function setRate(v, rate) {
  const was = v.maxRate;
  v.maxRate = rate;
  v.rateError = null;
  v.li.dataset.rateState = "pending";
  saveRates();
  renderSub(v);
  const session = gw;
  if (!session || v.li.dataset.status === "error") {
    v.li.dataset.rateState = "ok";
    v.li.dataset.maxRate = String(rate);
    return;
  }
  session.setMaxRate(v.filter, rate || null).then(
    () => {
      v.li.dataset.rateState = "ok";
      v.li.dataset.maxRate = String(rate);
      renderSub(v);
    },
    (e) => {
      if (session !== gw || v.maxRate !== rate) return;
      if (e instanceof TypeError) { // not held now: its next subscription carries it
        v.li.dataset.rateState = "ok";
        v.li.dataset.maxRate = String(rate);
        return;
      }
      v.maxRate = was;
      v.rate.value = was ? String(was) : "";
      v.rateError = e;
      v.li.dataset.rateState = "error";
      saveRates();
      renderSub(v);
    }
  );
}

function savedRates() {
  try {
    const r = JSON.parse(localStorage.getItem(RATES_KEY) || "{}");
    return r && typeof r === "object" ? r : {};
  } catch {
    return {};
  }
}

function saveRates() {
  const r = savedRates();
  for (const v of subViews.values()) {
    if (v.maxRate > 0 && v.maxRate <= 1000) r[v.filter] = v.maxRate;
    else delete r[v.filter];
  }
  localStorage.setItem(RATES_KEY, JSON.stringify(r));
}

function noteReplayed(filter) {
  const v = subViews.get(filter);
  if (!v) return;
  v.replayed++;
  dirtySubs.add(v);
}

function renderSub(v) {
  const parts = [];
  if (v.li.dataset.status === "pending") parts.push("subscribing…");
  else if (v.error) parts.push(v.error.code === "forbidden" ? "not allowed for your role" : errorText(v.error));
  else {
    parts.push(`QoS ${v.granted}`);
    if (v.recovery) parts.push(v.recovery.recovered ? "recovered" : "started over");
    if (v.replayed) parts.push(`${v.replayed} from history`);
  }
  if (v.rateError) parts.push(`max rate not changed: ${errorText(v.rateError)}`);
  const text = parts.join(" · ");
  if (v.status.textContent !== text) v.status.textContent = text;
  v.li.dataset.recovery = v.recovery ? (v.recovery.recovered ? "recovered" : "started-over") : "";
}

// ---------------------------------------------------------------------------
// recovery after a reconnect

const REASONS = {
  gap: "the gateway no longer held everything missed",
  restarted: "the gateway restarted",
  failover: "another gateway took over",
  no_position: "nothing had arrived to resume from",
  unsupported: "this gateway cannot replay what was missed",
};
const recoveries = new Map(); // filter → "recovery" event, since the last (re)connection
let connectedAt = null;

function onRecovery(r) {
  const v = subViews.get(r.filter);
  if (v) {
    v.recovery = r;
    v.replayed = 0;
    dirtySubs.add(v);
  }
  if (!r.recovered) markGap(r.filter);
  recoveries.set(r.filter, r);
  const all = [...recoveries.values()];
  const lost = all.filter((x) => !x.recovered);
  const replayed = all.reduce((n, x) => n + x.replayed, 0);
  const el = $("stream-status");
  el.hidden = false;
  el.dataset.recovery = lost.length ? "started-over" : "recovered";
  const when = (connectedAt || new Date()).toLocaleTimeString();
  el.textContent = lost.length === 0
    ? `Reconnected at ${when}: nothing was missed${replayed ? ` (${count(replayed, "message")} caught up)` : ""}.`
    : `Reconnected at ${when}, but started over for ${lost.map((x) => x.filter).join(", ")} ` +
      `(${REASONS[lost[0].reason] || lost[0].reason}): messages published meanwhile may be missing` +
      `${replayed ? `; ${count(replayed, "stored message")} loaded` : ""}.`;
}

function count(n, what) {
  return `${n} ${what}${n === 1 ? "" : "s"}`;
}

// ---------------------------------------------------------------------------
// publishing

let pubCount = 0;

function onPublish(ev) {
  ev.preventDefault();
  const out = $("pub-result");
  const topic = $("pub-topic").value.trim();
  const raw = $("pub-body").value;
  const format = $("pub-format").value;
  const qos = +$("pub-qos").value;
  const retain = $("pub-retain").checked;
  if (!topic) {
    showResult("error", "bad_topic", "Enter a topic.");
    return;
  }
  let body;
  if (format === "json") {
    if (raw.trim() === "") body = undefined;
    else {
      try {
        body = JSON.parse(raw);
      } catch (e) {
        showResult("error", "bad_json", `The body is not valid JSON (${e.message}). Choose "Text" to send it as it is.`);
        return;
      }
    }
  } else body = raw;
  const n = ++pubCount;
  const t0 = performance.now();
  out.dataset.result = "pending";
  out.textContent = `Publishing #${n} to ${topic}…`;
  gw.publish(topic, body, { qos, retain, text: format === "text" }).then(
    () => {
      const ms = Math.round(performance.now() - t0);
      showResult("ok", "", `#${n} acknowledged: ${topic} (QoS ${qos}${retain ? ", retained" : ""}) in ${ms} ms.`);
      logPublish(n, topic, "ok", "ack");
    },
    (e) => {
      showResult("error", e.code || "error", `#${n} refused: ${errorText(e)}`);
      logPublish(n, topic, "error", e.code || "error");
    }
  );
}

function showResult(result, code, text) {
  const out = $("pub-result");
  out.dataset.result = result;
  out.dataset.code = code;
  out.textContent = text;
}

function logPublish(n, topic, result, code) {
  const li = document.createElement("li");
  li.dataset.result = result;
  li.textContent = `#${n} ${topic}: ${code}`;
  const log = $("pub-log");
  log.prepend(li);
  while (log.children.length > 5) log.lastChild.remove();
}

// ---------------------------------------------------------------------------
// requests: a device's answer, or the timeout

let reqCount = 0;

function onRequest(ev) {
  ev.preventDefault();
  const out = $("req-result");
  const pre = $("req-answer");
  const topic = $("req-topic").value.trim();
  const raw = $("req-body").value;
  const timeoutMs = Math.round(+$("req-timeout").value || 5000);
  const say = (result, code, text) => {
    out.dataset.result = result;
    out.dataset.code = code;
    out.textContent = text;
  };
  pre.hidden = true;
  pre.textContent = "";
  if (!topic) return say("error", "bad_topic", "Enter a topic.");
  if (!(timeoutMs >= 1 && timeoutMs <= 60000)) return say("error", "bad_request", "The timeout is 1 to 60000 ms.");
  let body;
  if (raw.trim() !== "") {
    try {
      body = JSON.parse(raw);
    } catch (e) {
      body = raw;      // not JSON: sent as text
    }
  }
  const n = ++reqCount;
  const t0 = performance.now();
  say("pending", "", `Request #${n} to ${topic}: waiting up to ${timeoutMs} ms…`);
  gw.request(topic, body, { timeoutMs, text: typeof body === "string" }).then(
    (r) => {
      const ms = Math.round(performance.now() - t0);
      say("ok", "", `#${n} answered in ${ms} ms.`);
      pre.textContent = answerText(r);
      pre.hidden = false;
    },
    (e) => {
      if (e.code === "timeout") say("error", "timeout", `#${n}: no answer within ${timeoutMs} ms.`);
      else say("error", e.code || "error", `#${n} failed: ${errorText(e)}`);
    }
  );
}

function answerText(r) {
  const value = r.format === "json" ? JSON.stringify(r.value, null, 2)
    : r.format === "text" ? r.value : `(${r.value.length} bytes of binary data)`;
  const props = r.props && r.props.user ? "\n" + r.props.user.map(([k, v]) => `${k}: ${v}`).join("\n") : "";
  return value + props;
}

// ---------------------------------------------------------------------------
// wiring

function init() {
  // For tests and curious people at the console.
  window.mqgateApp = { gw: null, topics, series, history: HISTORY, peak: { mps: 0, minFpsUnderLoad: null } };
  $("gateway-url").textContent = `Gateway: ${WS_URL}`;
  if (GATEWAY.ignored !== null) {
    $("gateway-url").textContent += ` (the link's ws=${GATEWAY.ignored} is not this site's gateway: ignored)`;
    console.warn("mqgate: ignored ?ws= pointing away from this site:", GATEWAY.ignored);
  }
  $("signin-form").addEventListener("submit", onSignIn);
  for (const r of document.querySelectorAll('input[name="method"]')) {
    r.addEventListener("change", () => setMethod(r.value));
  }
  $("continue-anon").addEventListener("click", () => {
    if (gw.ready && gw.anonymous) enterDashboard();
    else if (pendingAsk) {
      // After a refused sign-in: start over as a guest.
      entered = null;
      signOut();
    }
  });
  $("sign-out").addEventListener("click", () => {
    if (gw && gw.ready && gw.anonymous) showSignIn("Sign in to do more than a guest may.");
    else signOut();
  });
  $("sub-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = $("sub-filter").value.trim();
    if (!f) return;
    filterSource = "user";
    addFilter(f, +$("sub-qos").value);
    $("sub-filter").value = "";
  });
  $("topic-filter").addEventListener("input", (ev) => {
    topicFilter = ev.target.value.trim().toLowerCase();
    for (const e of topics.values()) if (e.row) e.row.hidden = !matchesFilter(e.topic);
  });
  $("pub-form").addEventListener("submit", onPublish);
  $("req-form").addEventListener("submit", onRequest);
  setMethod("password");
  start();
  requestAnimationFrame(frame);
}

init();
