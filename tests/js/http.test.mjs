// www/mqgate.js over the gateway's HTTP API (SSE stream + POST), against
// the real mqgated (a listener with "http_api": true) and a real mosquitto:
// the fallback when no WebSocket can be opened, transport: "sse", streams
// reopened by subscribe/unsubscribe without a message missed or twice,
// publishes and their errors, close codes, reconnects with recovery.
//   MQGATED=/abs/path/mqgated node --experimental-websocket --test tests/js/http.test.mjs

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { MqGate } from "../../www/mqgate.js";
import { sseParser, eventsQuery, httpError, authorization } from "../../www/mqgate-http.js";
import * as h from "./harness.mjs";

const missing = h.missingTools();
const FAST = { backoff: { min: 100, max: 1000, jitter: 0.3 }, anonymousWait: 1000 };

// Why this mqgated cannot be tested here, or null: it must serve the API.
async function noHttpApi() {
  if (missing) return missing;
  const broker = await h.startMosquitto();
  const gw = await h.startGateway(broker.port, { httpApi: true });
  try {
    const r = await fetch(`${gw.httpUrl}/api/publish`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "[]" });
    return r.status === 404 ? "this mqgated has no HTTP API (issue 13, daemon side)" : null;
  } catch (e) {
    return String(e);
  } finally {
    await gw.close();
    await broker.close();
  }
}
const skip = await noHttpApi();
const opts = { skip: skip || false, timeout: 60000 };

/** A WebSocket that can never be opened: what a proxy that breaks upgrades looks like. */
class BlockedWebSocket {
  constructor() {
    this.readyState = 0;
    BlockedWebSocket.tries++;
    setTimeout(() => {
      this.readyState = 3;
      if (this.onerror) this.onerror({});
      if (this.onclose) this.onclose({ code: 1006, reason: "", wasClean: false });
    }, 5);
  }
  close() {}
  send() {
    throw new Error("not open");
  }
}
BlockedWebSocket.tries = 0;

function tok(sub, roles, ttl = 600) {
  return { token: h.jwtHS256(h.JWT_SECRET, { sub, roles, exp: Math.floor(Date.now() / 1000) + ttl }) };
}

/** Collects what a handler gets. */
function inbox() {
  const got = [];
  const fn = (msg) => got.push(msg);
  fn.got = got;
  fn.values = () => got.map((m) => m.value);
  return fn;
}

function waitEvent(gw, type, pred = () => true, timeout = 15000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { off(); reject(new Error(`no "${type}" event within ${timeout} ms`)); }, timeout);
    const off = gw.on(type, (...a) => {
      if (!pred(...a)) return;
      clearTimeout(t);
      off();
      resolve(a);
    });
  });
}

describe("the HTTP transport's pure parts", () => {
  it("parses an event stream split anywhere, CR, LF or CRLF, comments dropped", () => {
    const text = ": ping\r\nevent: msg\r\nid: e1:5\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\nevent: status\ndata: x\n\n: c\rdata:y\r\r";
    for (let cut = 0; cut < text.length; cut++) {
      const p = sseParser();
      const evs = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))];
      assert.deepEqual(evs, [
        { event: "msg", data: "{\"a\":\n1}", id: "e1:5" },
        { event: "status", data: "x", id: null },
        { event: "message", data: "y", id: null },
      ], `cut at ${cut}`);
    }
  });

  it("builds the query of /api/events", () => {
    assert.equal(eventsQuery(["sensor/#", "device/+/status"], { qos: 1, history: 20, maxRate: 5, retained: false, since: { epoch: "k9", seq: 81 } }),
      "topic=sensor%2F%23&topic=device%2F%2B%2Fstatus&qos=1&history=20&max_rate=5&retained=false&since=k9%3A81");
    assert.equal(eventsQuery(["a"]), "topic=a");
  });

  it("maps refusals to the error codes a WebSocket session gets", () => {
    assert.deepEqual(httpError(403, '{"op":"error","code":"forbidden","message":"no"}'), { op: "error", code: "forbidden", message: "no" });
    for (const [status, code] of [[400, "bad_request"], [401, "auth_failed"], [403, "forbidden"], [413, "too_big"], [415, "bad_request"],
      [429, "rate_limited"], [502, "broker_rejected"], [503, "broker_unavailable"], [500, "internal"]]) {
      assert.equal(httpError(status, "<html>").code, code, String(status));
    }
  });

  it("sends a token as Bearer, a password as Basic (UTF-8), nothing for cookies", () => {
    assert.equal(authorization({ token: "a.b.c" }), "Bearer a.b.c");
    assert.equal(authorization({ user: "zoë", password: "pw:1" }), `Basic ${Buffer.from("zoë:pw:1").toString("base64")}`);
    assert.equal(authorization(null), null);
  });
});

describe("mqgate.js over the HTTP API against mqgated + mosquitto", opts, () => {
  let broker, gw;
  const clients = [];
  const client = (creds, o = {}) => {
    const c = new MqGate(gw.url, creds, { ...FAST, ...o });
    clients.push(c);
    return c;
  };

  before(async () => {
    broker = await h.startMosquitto();
    gw = await h.startGateway(broker.port, { httpApi: true, anonymousRole: "guest", extra: { history: h.HISTORY } });
  });

  after(async () => {
    for (const c of clients) c.close();
    if (gw) await gw.close();
    if (broker) await broker.close();
  });

  it("falls back to SSE + POST when no WebSocket can be opened, and says so", async () => {
    BlockedWebSocket.tries = 0;
    const c = client({ user: "alice", password: "alice-pw" }, { WebSocket: BlockedWebSocket });
    const seen = [];
    c.on("transport", (t) => seen.push(t));
    const who = await c.connect();
    assert.equal(who.user, "alice");
    assert.equal(c.transport, "sse");
    assert.deepEqual(seen, ["sse"]);
    assert.equal(BlockedWebSocket.tries, 1, "a WebSocket was tried first");
    const got = inbox();
    assert.equal(await c.subscribe("sensor/#", got, { qos: 1 }), 1);
    assert.deepEqual(c.roles, ["operator"], "the stream's hello gives the roles");
    assert.ok(c.epoch, "and the stream's epoch");
    assert.ok(c.allow && c.allow.publish.includes("device/+/cmd"), "and what the session may do");
    await h.eventually(() => c.broker === "up", { what: "the broker up" });
    await h.mqttPublish(broker.port, "sensor/fb/1", '{"t":1}', { qos: 1 });
    await h.eventually(() => got.got.length === 1, { what: "the message" });
    assert.deepEqual(got.values(), [{ t: 1 }]);
    assert.ok(got.got[0].seq >= 1 && got.got[0].ts > 0);
    // publishes go over POST, acked after the broker's PUBACK
    const sub = await h.mqttSubscribe(broker.port, "device/+/cmd");
    await c.publish("device/3/cmd", { on: true }, { qos: 1 });
    assert.equal((await sub.next()).payload.toString(), '{"on":true}');
    sub.stop();
    // a later reconnect tries the HTTP API first
    assert.equal(c._preferHttp, true);
  });

  it('transport: "sse" never opens a WebSocket', async () => {
    BlockedWebSocket.tries = 0;
    const c = client(tok("alice", ["operator"]), { transport: "sse", WebSocket: BlockedWebSocket });
    await c.connect();
    assert.equal(c.transport, "sse");
    assert.equal(BlockedWebSocket.tries, 0);
    assert.throws(() => new MqGate(gw.url, null, { transport: "carrier-pigeon" }), TypeError);
  });

  it("subscribe and unsubscribe reopen the stream: nothing missed, nothing twice, in order", async () => {
    const c = client(tok("alice", ["operator"]), { transport: "sse" });
    await c.connect();
    const got = inbox();
    await c.subscribe("sensor/#", got, { qos: 1 });
    const N = 300;
    const burst = h.mqttPublishLines(broker.port, "sensor/seq/1", Array.from({ length: N }, (_, i) => String(i + 1)));
    // while the burst flows: filters come and go, each change a new stream
    const other = inbox();
    for (let i = 0; i < 4; i++) {
      await c.subscribe("device/+/status", other);
      await c.unsubscribe("device/+/status");
    }
    await c.subscribe(`sensor/extra/${"x"}`, () => {});
    await burst;
    await h.eventually(() => got.got.filter((m) => m.topic === "sensor/seq/1").length >= N, { timeout: 10000, what: `${N} messages` })
      .catch((e) => {
        const v = got.got.filter((m) => m.topic === "sensor/seq/1").map((m) => `${m.value}@${m.seq}${m.history ? "h" : ""}`);
        e.message += `: got ${v.length}: ${v.join(" ")}`;
        throw e;
      });
    await h.sleep(300);
    const vals = got.got.filter((m) => m.topic === "sensor/seq/1").map((m) => m.value);
    assert.deepEqual(vals, Array.from({ length: N }, (_, i) => i + 1), "every message once, in order");
    const seqs = got.got.map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in seq order");
    assert.deepEqual(c.subscriptions().map((s) => s.filter).sort(), ["sensor/#", "sensor/extra/x"]);
  });

  it("a refused filter is refused with its code, the others stay", async () => {
    const c = client(tok("victor", ["viewer"]), { transport: "sse" });
    await c.connect();
    const got = inbox();
    await c.subscribe("sensor/#", got);
    await assert.rejects(c.subscribe("device/+/status", () => {}), (e) => e.code === "forbidden" && e.filter === "device/+/status");
    await assert.rejects(c.subscribe("bad/#/topic", () => {}), (e) => e.code === "bad_topic");
    await h.mqttPublish(broker.port, "sensor/ref/1", "5");
    await h.eventually(() => got.got.some((m) => m.topic === "sensor/ref/1"), { what: "messages still flowing" });
    assert.deepEqual(c.subscriptions().map((s) => s.filter), ["sensor/#"]);
    // publishing is refused as over a WebSocket
    await assert.rejects(c.publish("device/1/cmd", 1), (e) => e.code === "forbidden");
  });

  it("history over the stream: stored messages first, flagged", async () => {
    for (let i = 0; i < 5; i++) await h.mqttPublish(broker.port, "sensor/hist/sse", String(i), { qos: 1 });
    await h.sleep(200);
    const c = client(tok("alice", ["operator"]), { transport: "sse" });
    await c.connect();
    const got = inbox();
    await c.subscribe("sensor/hist/#", got, { history: 3 });
    await h.eventually(() => got.got.length >= 3, { what: "the replay" });
    assert.deepEqual(got.got.map((m) => [m.value, m.history]), [[2, true], [3, true], [4, true]]);
  });

  it("wrong credentials: auth_failed, no reconnect; none: auth_required unless anonymous", async () => {
    const bad = client({ user: "alice", password: "nope" }, { transport: "sse" });
    await assert.rejects(bad.connect(), (e) => e.code === "auth_failed");
    assert.equal(bad.lastClose.code, 4401);
    const anon = client(null, { transport: "sse" });
    const who = await anon.connect();
    assert.equal(who.anonymous, true);
    const got = inbox();
    await anon.subscribe("public/#", got);
    await h.mqttPublish(broker.port, "public/x", "1");
    await h.eventually(() => got.got.length === 1, { what: "a public message" });
  });

  it("the stream's close event carries the WebSocket close code: 4401 when the token expires", async () => {
    const c = client(tok("alice", ["operator"], 2), { transport: "sse" });
    await c.connect();
    await c.subscribe("sensor/#", () => {});
    const [detail] = await waitEvent(c, "close", () => true, 10000);
    assert.equal(detail.code, 4401);
    assert.equal(detail.authReason, "token_expired");
    assert.equal(detail.reconnectIn, null, "the same token would fail again");
  });

  it("after a cut connection it reconnects over SSE and recovers what it missed", async () => {
    const proxy = await h.startProxy(gw.port);
    try {
      const c = new MqGate(proxy.url, tok("alice", ["operator"]), { ...FAST, transport: "sse" });
      clients.push(c);
      await c.connect();
      const got = inbox();
      await c.subscribe("sensor/#", got, { qos: 1 });
      await h.mqttPublish(broker.port, "sensor/cut/1", "1", { qos: 1 });
      await h.eventually(() => got.got.length === 1, { what: "the first message" });
      proxy.cut({ hold: true });
      await waitEvent(c, "close");
      for (let i = 2; i <= 4; i++) await h.mqttPublish(broker.port, "sensor/cut/1", String(i), { qos: 1 });
      const rec = waitEvent(c, "recovery");
      proxy.release();
      const [r] = await rec;
      assert.deepEqual(r, { filter: "sensor/#", recovered: true, replayed: 3, reason: null, url: proxy.url, epoch: c.epoch });
      await h.eventually(() => got.got.length === 4, { what: "the missed messages" });
      assert.deepEqual(got.values(), [1, 2, 3, 4]);
      assert.equal(c.transport, "sse");
    } finally {
      await proxy.close();
    }
  });

  it("a gateway shutdown closes the stream with 1001; the client comes back and starts over", async () => {
    const c = client(tok("alice", ["operator"]), { transport: "sse" });
    await c.connect();
    const got = inbox();
    await c.subscribe("sensor/#", got);
    await h.mqttPublish(broker.port, "sensor/before/1", "6");
    await h.eventually(() => got.got.length === 1, { what: "a message before the restart" });
    const closed = waitEvent(c, "close");
    await gw.stop();
    const [detail] = await closed;
    assert.equal(detail.code, 1001);
    await gw.start();
    const [r] = await waitEvent(c, "recovery", () => true, 20000);
    assert.equal(r.recovered, false);
    assert.equal(r.reason, "restarted");
    await h.eventually(async () => {
      await h.mqttPublish(broker.port, "sensor/after/1", "7");
      return got.got.some((m) => m.topic === "sensor/after/1");
    }, { timeout: 15000, interval: 300, what: "messages after the restart" });
  });
});
