// Unit tests of www/mqgate.js that need no gateway: topic matching, base64,
// body encoding and decoding, backoff, and the session logic driven through
// a scripted fake WebSocket.
//   node --test tests/js/unit.test.mjs

import test, { afterEach } from "node:test";
import assert from "node:assert/strict";
import {
  MqGate, MqGateError, topicMatches, compileFilter, base64ToBytes, bytesToBase64,
  decodeMessage, encodeBody, backoffDelay, readAllow, readEpoch, SUBPROTOCOL,
  readProps, encodeProps, decodeBody,
} from "../../www/mqgate.js";
import { FakeWebSocket, tick } from "./fake-ws.mjs";

// ---------------------------------------------------------------------------
// topic matching

test("topicMatches: the MQTT rules", () => {
  const cases = [
    ["sensor/1/temp", "sensor/1/temp", true],
    ["sensor/1/temp", "sensor/1/tem", false],
    ["sensor/+/temp", "sensor/1/temp", true],
    ["sensor/+/temp", "sensor/1/2/temp", false],
    ["sensor/+/temp", "sensor//temp", true],
    ["sensor/+", "sensor", false],
    ["sensor/+", "sensor/", true],
    ["sensor/#", "sensor", true],
    ["sensor/#", "sensor/1", true],
    ["sensor/#", "sensor/1/2/3", true],
    ["sensor/#", "sensorx/1", false],
    ["#", "a", true],
    ["#", "a/b/c", true],
    ["#", "/", true],
    ["+", "a", true],
    ["+", "a/b", false],
    ["+/+", "/x", true],
    ["/+", "/x", true],
    ["+/#", "a", true],
    ["a/+/c/#", "a/b/c", true],
    ["a/+/c/#", "a/b/d", false],
    // $ topics are not matched by a leading wildcard
    ["#", "$SYS/broker/uptime", false],
    ["+/broker/uptime", "$SYS/broker/uptime", false],
    ["+/#", "$SYS/x", false],
    ["$SYS/#", "$SYS/broker/uptime", true],
    ["$SYS/+/uptime", "$SYS/broker/uptime", true],
    // a wildcard later on still matches
    ["a/+", "a/$b", true],
    // shared subscriptions route on the filter after the group
    ["$share/g/sensor/+", "sensor/1", true],
    ["$share/g/#", "x/y", true],
    ["$share/g/sensor/+", "g/sensor/1", false],
    // characters that are special in regular expressions are plain here
    ["a.b/(c)", "a.b/(c)", true],
    ["a.b/+", "axb/1", false],
    ["ünï/+", "ünï/cödé", true],
  ];
  for (const [f, t, want] of cases) {
    assert.equal(topicMatches(f, t), want, `${f} vs ${t}`);
    assert.equal(compileFilter(f)(t), want, `compiled ${f} vs ${t}`);
  }
});

// ---------------------------------------------------------------------------
// base64

test("base64: round trips and known vectors (RFC 4648)", () => {
  const vectors = [["", ""], ["f", "Zg=="], ["fo", "Zm8="], ["foo", "Zm9v"], ["foob", "Zm9vYg=="],
    ["fooba", "Zm9vYmE="], ["foobar", "Zm9vYmFy"]];
  const enc = new TextEncoder();
  for (const [plain, b64] of vectors) {
    assert.equal(bytesToBase64(enc.encode(plain)), b64);
    assert.deepEqual(base64ToBytes(b64), enc.encode(plain));
  }
  const all = new Uint8Array(256).map((_, i) => i);
  assert.equal(bytesToBase64(all), Buffer.from(all).toString("base64"));
  assert.deepEqual(base64ToBytes(Buffer.from(all).toString("base64")), all);
  for (let n = 0; n < 40; n++) {
    const b = new Uint8Array(n).map(() => (Math.random() * 256) | 0);
    assert.equal(bytesToBase64(b), Buffer.from(b).toString("base64"));
    assert.deepEqual(base64ToBytes(bytesToBase64(b)), b);
  }
  // unpadded input is accepted; ArrayBuffer and other views are bytes
  assert.deepEqual(base64ToBytes("Zm8"), enc.encode("fo"));
  assert.equal(bytesToBase64(enc.encode("foo").buffer), "Zm9v");
  assert.equal(bytesToBase64(new Uint16Array([0x6f66])), "Zm8=");
  assert.ok(base64ToBytes("") instanceof Uint8Array);
});

test("base64: bad input is refused", () => {
  for (const bad of ["Z", "Zm9v!", "Zm9=v", "Zm===", "Zg=", "é===", "Zm 9v"]) {
    assert.throws(() => base64ToBytes(bad), (e) => e instanceof MqGateError && e.code === "bad_base64", bad);
  }
});

// ---------------------------------------------------------------------------
// bodies

test("decodeMessage: payload, text, base64", () => {
  assert.deepEqual(decodeMessage({ op: "msg", topic: "a", payload: { t: 21.5 }, qos: 1, retain: false }),
    { topic: "a", qos: 1, retain: false, format: "json", value: { t: 21.5 } });
  assert.deepEqual(decodeMessage({ op: "msg", topic: "a", payload: null, qos: 0 }),
    { topic: "a", qos: 0, retain: false, format: "json", value: null });
  assert.deepEqual(decodeMessage({ op: "msg", topic: "a", text: "on", qos: 0, retain: true }),
    { topic: "a", qos: 0, retain: true, format: "text", value: "on" });
  assert.deepEqual(decodeMessage({ op: "msg", topic: "a", text: "", qos: 0 }).value, "");
  const bin = decodeMessage({ op: "msg", topic: "a", base64: "AP8=", qos: 2 });
  assert.equal(bin.format, "binary");
  assert.ok(bin.value instanceof Uint8Array);
  assert.deepEqual([...bin.value], [0, 255]);
});

test("encodeBody: the body forms of pub", () => {
  assert.deepEqual(encodeBody({ on: true }), { payload: { on: true } });
  assert.deepEqual(encodeBody(21.5), { payload: 21.5 });
  assert.deepEqual(encodeBody("hi"), { payload: "hi" });
  assert.deepEqual(encodeBody(null), { payload: null });
  assert.deepEqual(encodeBody(undefined), {});
  assert.deepEqual(encodeBody("hi", { text: true }), { text: "hi" });
  assert.deepEqual(encodeBody("AP8=", { base64: true }), { base64: "AP8=" });
  assert.deepEqual(encodeBody(new Uint8Array([0, 255])), { base64: "AP8=" });
  assert.deepEqual(encodeBody(new Uint8Array([1]).buffer), { base64: "AQ==" });
  assert.deepEqual(encodeBody(new Uint8Array([0, 255]), { base64: true }), { base64: "AP8=" });
  assert.throws(() => encodeBody(5, { text: true }), TypeError);
  assert.throws(() => encodeBody("x", { text: true, base64: true }), TypeError);
});

test("backoffDelay: exponential, capped, jittered", () => {
  const b = { min: 100, max: 1000, factor: 2, jitter: 0.5 };
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, b, () => 0)), [100, 200, 400, 800, 1000, 1000]);
  assert.deepEqual([0, 1, 4].map((a) => backoffDelay(a, b, () => 1)), [50, 100, 500]);
  for (let a = 0; a < 50; a++) {
    const d = backoffDelay(a, b);
    assert.ok(d >= 50 && d <= 1000, String(d));
  }
  assert.equal(backoffDelay(1e6, b, () => 0), 1000);
});

// ---------------------------------------------------------------------------
// session logic against a fake socket

function mk(creds, opts = {}) {
  FakeWebSocket.reset();
  const gw = new MqGate("ws://gw.test/ws", creds, {
    WebSocket: FakeWebSocket,
    transport: "websocket", // the HTTP fallback has tests of its own
    backoff: { min: 5, max: 20, jitter: 0 },
    anonymousWait: 50,
    ...opts,
  });
  gw.connect = ((orig) => function () {
    const p = orig.call(this);
    p.catch(() => {}); // tests that care await it themselves
    return p;
  })(gw.connect);
  made.push(gw);
  return gw;
}

// The next socket the client opens, once it has opened one that is connecting.
async function nextSocket(timeout = 3000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const ws = FakeWebSocket.last();
    if (ws && ws.readyState === 0) return ws;
    await tick(2);
  }
  throw new Error("the client opened no new socket");
}

// Every session a test makes is closed afterwards, also when it fails, so no
// reconnect timer keeps the process alive.
const made = [];
afterEach(() => {
  for (const gw of made.splice(0)) gw.close();
});

async function authed(gw, { user = "alice", roles = ["operator"] } = {}) {
  const ws = await nextSocket();
  ws.accept();
  const a = await ws.next("auth");
  ws.push({ op: "ok", id: a.id, user, roles });
  ws.push({ op: "status", broker: "up" });
  return { ws, auth: a };
}

test("session: password auth, offered subprotocol, status", async () => {
  const gw = mk({ user: "alice", password: "pw", otp: "123456" });
  const states = [];
  const brokers = [];
  gw.on("state", (s) => states.push(s));
  gw.on("broker", (b) => brokers.push(b));
  const p = gw.connect();
  const { ws, auth } = await authed(gw);
  assert.deepEqual(ws.protocols, [SUBPROTOCOL]);
  assert.equal(ws.url, "ws://gw.test/ws");
  assert.deepEqual(auth, { op: "auth", id: 1, user: "alice", password: "pw", otp: "123456" });
  assert.deepEqual(await p, { user: "alice", roles: ["operator"], anonymous: false });
  assert.deepEqual(states, ["connecting", "open", "authenticated"]);
  assert.deepEqual(brokers, ["up"]);
  assert.equal(gw.broker, "up");
  assert.deepEqual(gw.authMethods, ["password", "token"]);
  ws.push({ op: "status", broker: "down" });
  ws.push({ op: "status", broker: "down" });
  ws.push({ op: "status", broker: "up" });
  assert.deepEqual(brokers, ["up", "down", "up"]);
  gw.close();
  assert.equal(gw.state, "closed");
});

test("session: token auth; otp left out when empty", async () => {
  let gw = mk({ token: "abc.def.ghi" });
  gw.connect();
  let r = await authed(gw);
  assert.deepEqual(r.auth, { op: "auth", id: 1, token: "abc.def.ghi" });
  gw.close();
  gw = mk({ user: "bob", password: "pw", otp: "" });
  gw.connect();
  r = await authed(gw);
  assert.deepEqual(r.auth, { op: "auth", id: 1, user: "bob", password: "pw" });
  gw.close();
});

test("session: anonymous role, shown by a status frame without auth", async () => {
  const gw = mk(null);
  const p = gw.connect();
  const ws = await nextSocket();
  ws.accept();
  ws.push({ op: "status", broker: "up" });
  assert.deepEqual(await p, { user: "anonymous", roles: [], anonymous: true });
  assert.equal(gw.state, "authenticated");
  assert.equal(ws.sent.length, 0, "no auth sent");
  // upgrade on the same session
  const up = gw.authenticate({ user: "alice", password: "pw" });
  const a = await ws.next("auth");
  ws.push({ op: "ok", id: a.id, user: "alice", roles: ["operator"] });
  assert.deepEqual(await up, { user: "alice", roles: ["operator"], anonymous: false });
  gw.close();
});

test("session: anonymous listed in hello", async () => {
  const gw = mk(null);
  const p = gw.connect();
  (await nextSocket()).accept({ op: "hello", proto: 1, auth: ["password", "anonymous"] });
  assert.equal((await p).anonymous, true);
  gw.close();
});

test("session: no credentials and no anonymous role → auth_required, no reconnect", async () => {
  const gw = mk(null);
  const p = gw.connect();
  (await nextSocket()).accept();
  await assert.rejects(p, (e) => e.code === "auth_required" && e.methods.includes("password"));
  await tick(40);
  assert.equal(FakeWebSocket.instances.length, 1);
  assert.equal(gw.state, "closed");
});

test("session: hello with a user (cookie) is already authenticated", async () => {
  const gw = mk(null);
  const p = gw.connect();
  const ws = await nextSocket();
  ws.accept({ op: "hello", proto: 1, auth: ["token"], user: "carol", roles: ["viewer"] });
  assert.deepEqual(await p, { user: "carol", roles: ["viewer"], anonymous: false });
  assert.equal(ws.sent.length, 0);
  gw.close();
});

test("allow: auth's ok sets gw.allow before \"authenticated\"; an older gateway's ok leaves it null", async () => {
  let gw = mk({ user: "alice", password: "pw" });
  const seen = [];
  gw.on("authenticated", () => seen.push(gw.allow));
  let p = gw.connect();
  let ws = await nextSocket();
  ws.accept();
  let a = await ws.next("auth");
  const allow = { subscribe: ["sensor/#", "device/+/status"], publish: ["device/+/cmd"] };
  ws.push({ op: "ok", id: a.id, user: "alice", roles: ["operator"], allow });
  assert.deepEqual(await p, { user: "alice", roles: ["operator"], anonymous: false });
  assert.deepEqual(gw.allow, allow);
  assert.deepEqual(seen, [allow]);
  // a refresh that changes what the session may do is told again
  const r = gw.authenticate({ token: "t2" });
  a = await ws.next("auth");
  ws.push({ op: "ok", id: a.id, user: "alice", roles: ["viewer"], allow: { subscribe: ["sensor/#"], publish: [] } });
  assert.deepEqual(await r, { user: "alice", roles: ["viewer"], anonymous: false });
  assert.deepEqual(gw.allow, { subscribe: ["sensor/#"], publish: [] });
  assert.deepEqual(seen[1], { subscribe: ["sensor/#"], publish: [] });
  gw.close();

  gw = mk({ user: "alice", password: "pw" });
  p = gw.connect();
  ws = await nextSocket();
  ws.accept();
  a = await ws.next("auth");
  ws.push({ op: "ok", id: a.id, user: "alice", roles: ["operator"] });
  assert.deepEqual(await p, { user: "alice", roles: ["operator"], anonymous: false });
  assert.equal(gw.allow, null);
  gw.close();
});

test("allow: an anonymous hello carrying it is usable at once, before any status", async () => {
  const gw = mk(null, { anonymousWait: 5000 });
  const p = gw.connect();
  const ws = await nextSocket();
  const allow = { subscribe: ["sensor/#"], publish: [] };
  ws.accept({ op: "hello", proto: 1, auth: ["password"], allow });
  const who = await Promise.race([p, tick(1000).then(() => "still waiting")]);
  assert.deepEqual(who, { user: "anonymous", roles: [], anonymous: true });
  assert.deepEqual(gw.allow, allow);
  assert.equal(ws.sent.length, 0, "no auth sent");
  // with credentials the same hello is answered with auth, not taken as anonymous
  gw.close();
  const gw2 = mk({ user: "bob", password: "pw" });
  gw2.connect();
  const ws2 = await nextSocket();
  ws2.accept({ op: "hello", proto: 1, auth: ["password"], allow });
  assert.equal((await ws2.next("auth")).user, "bob");
  assert.equal(gw2.ready, false);
  gw2.close();
});

test("allow: a hello with a user (cookie) carries it too", async () => {
  const gw = mk(null);
  const p = gw.connect();
  const ws = await nextSocket();
  const allow = { subscribe: ["sensor/#"], publish: ["device/+/cmd"] };
  ws.accept({ op: "hello", proto: 1, auth: ["token"], user: "carol", roles: ["operator"], allow });
  assert.deepEqual(await p, { user: "carol", roles: ["operator"], anonymous: false });
  assert.deepEqual(gw.allow, allow);
  gw.close();
});

test("readAllow: keeps the string patterns of an object, else null", () => {
  assert.equal(readAllow(undefined), null);
  assert.equal(readAllow(null), null);
  assert.equal(readAllow("sensor/#"), null);
  assert.equal(readAllow(["sensor/#"]), null);
  assert.deepEqual(readAllow({}), { subscribe: [], publish: [] });
  assert.deepEqual(readAllow({ subscribe: ["a/#", 7, null, "", "b"], publish: "x" }),
    { subscribe: ["a/#", "b"], publish: [] });
});

test("session: auth_failed + 4401 → closed, no reconnect with the same credentials", async () => {
  const gw = mk({ user: "alice", password: "wrong" });
  const errors = [];
  gw.on("error", (e) => errors.push(e.code));
  const p = gw.connect();
  const ws = await nextSocket();
  ws.accept();
  const a = await ws.next("auth");
  ws.push({ op: "error", id: a.id, code: "auth_failed", message: "bad credentials" });
  ws.serverClose(4401);
  await assert.rejects(p, (e) => e.code === "auth_failed" && e.closeCode === 4401);
  await tick(50);
  assert.equal(FakeWebSocket.instances.length, 1, "did not reconnect");
  assert.equal(gw.state, "closed");
  assert.deepEqual(errors, ["auth_failed"]);
});

test("session: token_expired → a credentials function is asked for a new token", async () => {
  const asked = [];
  const gw = mk((ctx) => {
    asked.push(ctx.reason);
    return { token: `t${asked.length}` };
  });
  gw.connect();
  const first = await authed(gw);
  assert.equal(first.auth.token, "t1");
  first.ws.push({ op: "error", code: "token_expired", message: "expired" });
  first.ws.serverClose(4401);
  const second = await authed(gw);
  assert.equal(second.auth.token, "t2");
  assert.deepEqual(asked, [null, "token_expired"]);
  assert.equal(gw.state, "authenticated");
  gw.close();
});

test("session: credentials function returning null after auth failure stops", async () => {
  const gw = mk(({ reason }) => (reason ? null : { user: "a", password: "b" }));
  const p = gw.connect();
  const { ws } = await authed(gw);
  await p;
  ws.serverClose(4401);
  await tick(30);
  assert.equal(gw.state, "closed");
  assert.equal(FakeWebSocket.instances.length, 1);
});

test("session: 1001 → reconnect, re-authenticate, re-subscribe; queued publish sent", async () => {
  const gw = mk({ user: "alice", password: "pw" });
  const closes = [];
  gw.on("close", (d) => closes.push(d));
  gw.connect();
  const { ws } = await authed(gw);
  const got = [];
  const sp = gw.subscribe("sensor/#", (m) => got.push(m.topic), { qos: 1 });
  const s = await ws.next("sub");
  assert.deepEqual(s, { op: "sub", id: 2, topic: "sensor/#", qos: 1 });
  ws.push({ op: "ok", id: s.id, qos: 1 });
  assert.equal(await sp, 1);

  ws.serverClose(1001, "shutting down");
  assert.equal(gw.state, "closed");
  assert.equal(closes[0].code, 1001);
  assert.ok(closes[0].reconnectIn >= 0);
  const pub = gw.publish("device/1/cmd", { on: true }, { qos: 1 });

  const again = await authed(gw);
  assert.notEqual(again.ws, ws);
  assert.equal(again.auth.user, "alice");
  const s2 = await again.ws.next("sub");
  assert.equal(s2.topic, "sensor/#");
  assert.equal(s2.qos, 1);
  assert.ok(s2.id > s.id, "ids keep increasing");
  again.ws.push({ op: "ok", id: s2.id, qos: 1 });
  const pf = await again.ws.next("pub");
  assert.deepEqual(pf, { op: "pub", id: pf.id, topic: "device/1/cmd", payload: { on: true }, qos: 1 });
  again.ws.push({ op: "ok", id: pf.id });
  await pub;
  again.ws.push({ op: "msg", topic: "sensor/1/temp", payload: 1, qos: 1, retain: false });
  assert.deepEqual(got, ["sensor/1/temp"]);
  gw.close();
});

test("session: abnormal close (1006) also reconnects with backoff", async () => {
  const gw = mk({ token: "x" });
  const p = gw.connect();
  (await nextSocket()).fail(); // never opened (refused handshake, down gateway)
  (await nextSocket()).fail();
  await tick(60);
  assert.ok(FakeWebSocket.instances.length >= 3, `attempts: ${FakeWebSocket.instances.length}`);
  gw.close();
  await assert.rejects(p, (e) => e.code === "closed");
  const n = FakeWebSocket.instances.length;
  await tick(60);
  assert.equal(FakeWebSocket.instances.length, n, "close() stops reconnecting");
});

test("session: an 'error' that no 'close' follows still counts as a lost connection", async () => {
  const gw = mk({ token: "x" });
  const p = gw.connect();
  const ws = await nextSocket();
  ws.errorOnly();
  await tick(1100); // the fallback waits 1 s for a "close"
  const again = await nextSocket();
  assert.notEqual(again, ws);
  assert.equal(gw.lastClose.code, 1006);
  gw.close();
  await assert.rejects(p, (e) => e.code === "closed");
});

test("session: no hello within connectTimeout → abandoned and retried", async () => {
  const gw = mk({ token: "x" }, { connectTimeout: 40 });
  const p = gw.connect();
  const ws = await nextSocket();
  ws.accept(null); // TCP and WebSocket open, but the gateway says nothing
  const again = await nextSocket();
  assert.notEqual(again, ws);
  assert.equal(ws.readyState, 3, "the silent socket was closed");
  again.accept();
  const a = await again.next("auth");
  again.push({ op: "ok", id: a.id, user: "u", roles: [] });
  await p;
  await tick(60);
  assert.equal(FakeWebSocket.instances.length, 2, "a session that got its hello is not timed out");
  gw.close();
});

test("session: in-flight publish rejects 'disconnected' when the socket drops", async () => {
  const gw = mk({ token: "x" });
  gw.connect();
  const { ws } = await authed(gw);
  const p = gw.publish("a/b", 1, { qos: 1 });
  await ws.next("pub");
  ws.serverClose(1006);
  await assert.rejects(p, (e) => e.code === "disconnected");
  gw.close();
});

test("routing: a message reaches every matching handler once", async () => {
  const gw = mk({ token: "x" });
  gw.connect();
  const { ws } = await authed(gw);
  const log = [];
  const h1 = (m, f) => log.push(["h1", m.topic, f]);
  const h2 = (m, f) => log.push(["h2", m.topic, f]);
  const h3 = (m, f) => log.push(["h3", m.topic, f]);
  const subs = [
    gw.subscribe("sensor/#", h1),
    gw.subscribe("sensor/+/temp", h2),
    gw.subscribe("sensor/+/temp", h3), // a second handler on the same filter: one sub frame
    gw.subscribe("other", h1),
  ];
  const f1 = await ws.next("sub");
  const f2 = await ws.next("sub");
  const f3 = await ws.next("sub");
  assert.deepEqual([f1.topic, f2.topic, f3.topic], ["sensor/#", "sensor/+/temp", "other"]);
  for (const f of [f1, f2, f3]) ws.push({ op: "ok", id: f.id, qos: 0 });
  assert.deepEqual(await Promise.all(subs), [0, 0, 0, 0]);
  assert.equal(ws.sent.filter((f) => f.op === "sub").length, 3);

  ws.push({ op: "msg", topic: "sensor/1/temp", payload: 20, qos: 0, retain: false });
  ws.push({ op: "msg", topic: "sensor/1/hum", payload: 50, qos: 0, retain: false });
  ws.push({ op: "msg", topic: "$SYS/x", payload: 1, qos: 0, retain: false });
  assert.deepEqual(log, [
    ["h1", "sensor/1/temp", "sensor/#"],
    ["h2", "sensor/1/temp", "sensor/+/temp"],
    ["h3", "sensor/1/temp", "sensor/+/temp"],
    ["h1", "sensor/1/hum", "sensor/#"],
  ]);

  // removing one handler keeps the filter; removing the last unsubscribes
  log.length = 0;
  await gw.unsubscribe("sensor/+/temp", h2);
  assert.equal(ws.sent.filter((f) => f.op === "unsub").length, 0);
  const u = gw.unsubscribe("sensor/+/temp", h3);
  const uf = await ws.next("unsub");
  assert.deepEqual(uf, { op: "unsub", id: uf.id, topic: "sensor/+/temp" });
  ws.push({ op: "ok", id: uf.id });
  await u;
  ws.push({ op: "msg", topic: "sensor/2/temp", text: "x", qos: 0, retain: false });
  assert.deepEqual(log, [["h1", "sensor/2/temp", "sensor/#"]]);
  gw.close();
});

test("subscribe: forbidden rejects and forgets the handler", async () => {
  const gw = mk({ token: "x" });
  gw.connect();
  const { ws } = await authed(gw);
  const got = [];
  const p = gw.subscribe("#", (m) => got.push(m));
  const f = await ws.next("sub");
  ws.push({ op: "error", id: f.id, code: "forbidden", message: "no" });
  await assert.rejects(p, (e) => e instanceof MqGateError && e.code === "forbidden" && e.filter === "#");
  assert.deepEqual(gw.subscriptions(), []);
  ws.push({ op: "msg", topic: "a", payload: 1, qos: 0, retain: false });
  assert.equal(got.length, 0);
  gw.close();
});

test("subscribe before connect is sent once the session is ready; granted qos is returned", async () => {
  const gw = mk({ token: "x" });
  const p = gw.subscribe("a/+", () => {}, { qos: 2 });
  gw.connect();
  const { ws } = await authed(gw);
  const f = await ws.next("sub");
  assert.equal(f.qos, 2);
  ws.push({ op: "ok", id: f.id, qos: 1 });
  assert.equal(await p, 1);
  assert.deepEqual(gw.subscriptions(), [{ filter: "a/+", qos: 2, granted: 1, handlers: 1 }]);
  gw.close();
});

test("publish: error codes reject with MqGateError; ids are increasing integers", async () => {
  const gw = mk({ token: "x" });
  gw.connect();
  const { ws, auth } = await authed(gw);
  const p1 = gw.publish("device/1/cmd", "x", { text: true });
  const p2 = gw.publish("sensor/1", new Uint8Array([1, 2]), { retain: true });
  const a = await ws.next("pub");
  const b = await ws.next("pub");
  assert.deepEqual(a, { op: "pub", id: auth.id + 1, topic: "device/1/cmd", text: "x" });
  assert.deepEqual(b, { op: "pub", id: auth.id + 2, topic: "sensor/1", base64: "AQI=", retain: true });
  ws.push({ op: "ok", id: a.id });
  ws.push({ op: "error", id: b.id, code: "forbidden", message: "role viewer may not publish" });
  await p1;
  await assert.rejects(p2, (e) => e.code === "forbidden" && /viewer/.test(e.message));
  await assert.rejects(gw.publish("", 1), TypeError);
  await assert.rejects(gw.publish("a", 1, { qos: 3 }), TypeError);
  gw.close();
  await assert.rejects(gw.publish("a", 1), (e) => e.code === "closed");
});

test("incoming: bad JSON and binary frames raise 'error' events, session stays", async () => {
  const gw = mk({ token: "x" });
  gw.connect();
  const { ws } = await authed(gw);
  const errors = [];
  gw.on("error", (e) => errors.push(e.code));
  ws.push("{nope");
  ws.onmessage({ data: new ArrayBuffer(2) });
  ws.push({ op: "msg", topic: "a", base64: "!!", qos: 0 });
  ws.push({ op: "error", code: "rate_limited", message: "slow down" });
  assert.deepEqual(errors, ["protocol", "protocol", "bad_base64", "rate_limited"]);
  assert.equal(gw.state, "authenticated");
  gw.close();
});

test("resume token: an auth ok carrying a token is used for reconnects", async () => {
  const gw = mk({ user: "alice", password: "pw", otp: "111111" });
  gw.connect();
  let ws = await nextSocket();
  ws.accept();
  let a = await ws.next("auth");
  ws.push({ op: "ok", id: a.id, user: "alice", roles: [], token: "resume.jwt" });
  ws.serverClose(1001);
  ws = await nextSocket();
  ws.accept();
  a = await ws.next("auth");
  assert.deepEqual(a, { op: "auth", id: a.id, token: "resume.jwt" });
  gw.close();
});

test("ping resolves a round-trip time", async () => {
  const gw = mk({ token: "x" });
  gw.connect();
  const { ws } = await authed(gw);
  const p = gw.ping();
  const f = await ws.next("ping");
  ws.push({ op: "pong", id: f.id });
  assert.ok((await p) >= 0);
  gw.close();
});

test("url: http(s) becomes ws(s)", () => {
  assert.equal(new MqGate("https://h/ws", null, { WebSocket: FakeWebSocket }).url, "wss://h/ws");
  assert.equal(new MqGate("http://h:8080/ws", null, { WebSocket: FakeWebSocket }).url, "ws://h:8080/ws");
  assert.equal(new MqGate("wss://h/ws", null, { WebSocket: FakeWebSocket }).url, "wss://h/ws");
});

// ---------------------------------------------------------------------------
// stream state: seq/ts/history, history/maxRate/retained, recovery

const EPOCH = "k9Qx2-a_B";
const HELLO_E = (epoch = EPOCH) => ({ op: "hello", proto: 1, server: "fake", auth: ["token"], epoch });

// A session authenticated on a socket whose hello is `hello`.
async function streamSession(hello = HELLO_E(), opts = {}) {
  const gw = mk({ token: "x" }, opts);
  gw.connect();
  const ws = await openWith(hello);
  return { gw, ws };
}

async function openWith(hello) {
  const ws = await nextSocket();
  ws.accept(hello);
  const a = await ws.next("auth");
  ws.push({ op: "ok", id: a.id, user: "u", roles: [] });
  return ws;
}

// Answers the next sub frame with ok (extra fields merged); resolves the frame.
async function ackSub(ws, extra = {}) {
  const f = await ws.next("sub");
  ws.push({ op: "ok", id: f.id, qos: f.qos, ...extra });
  return f;
}

const live = (topic, seq, v = seq) => ({ op: "msg", topic, payload: v, qos: 0, retain: false, seq, ts: 1700000000000 + seq });
const replayed = (topic, seq, v = seq) => ({ ...live(topic, seq, v), history: true });

test("decodeMessage: seq, ts and history of stream messages; none for others", () => {
  assert.deepEqual(decodeMessage({ op: "msg", topic: "a", payload: 1, qos: 0, retain: false, seq: 42, ts: 1700000000123 }),
    { topic: "a", qos: 0, retain: false, format: "json", value: 1, seq: 42, ts: 1700000000123, history: false });
  assert.deepEqual(decodeMessage({ op: "msg", topic: "a", text: "x", qos: 1, seq: 7, ts: 5, history: true }),
    { topic: "a", qos: 1, retain: false, format: "text", value: "x", seq: 7, ts: 5, history: true });
  // the broker's retained replay and older gateways: nothing added
  for (const f of [{ op: "msg", topic: "a", payload: 1, qos: 0, retain: true },
    { op: "msg", topic: "a", payload: 1, seq: 0, ts: 5 }, { op: "msg", topic: "a", payload: 1, seq: "3" },
    { op: "msg", topic: "a", payload: 1, seq: 1.5 }]) {
    const m = decodeMessage(f);
    assert.equal("seq" in m || "ts" in m || "history" in m, false, JSON.stringify(f));
  }
});

test("readEpoch: 1 to 64 of [A-Za-z0-9_-], else null", () => {
  for (const ok of ["a", "k9Qx2", "A-_z", "x".repeat(64)]) assert.equal(readEpoch(ok), ok);
  for (const bad of [undefined, null, 5, "", "x".repeat(65), "a b", "a/b", "é", ["a"]]) assert.equal(readEpoch(bad), null, String(bad));
});

test("subscribe: history, maxRate and retained go into the sub frame; without them the frame is as before", async () => {
  const { gw, ws } = await streamSession();
  assert.equal(gw.epoch, EPOCH);
  const p1 = gw.subscribe("sensor/#", () => {}, { history: 50, maxRate: 2.5, retained: false, qos: 1 });
  const f1 = await ackSub(ws, { replayed: 0 });
  assert.deepEqual(f1, { op: "sub", id: f1.id, topic: "sensor/#", qos: 1, history: 50, max_rate: 2.5, retained: false });
  assert.equal(await p1, 1);
  const p2 = gw.subscribe("device/+/status", () => {}, { history: 0, maxRate: null, retained: true });
  const f2 = await ackSub(ws);
  assert.deepEqual(f2, { op: "sub", id: f2.id, topic: "device/+/status", qos: 0 });
  await p2;
  for (const [o, what] of [[{ history: -1 }, "history"], [{ history: 1.5 }, "history"], [{ history: 100001 }, "history"],
    [{ history: "5" }, "history"], [{ maxRate: 0.0 - 1 }, "maxRate"], [{ maxRate: 1001 }, "maxRate"],
    [{ maxRate: "2" }, "maxRate"], [{ maxRate: NaN }, "maxRate"], [{ retained: "no" }, "retained"]]) {
    await assert.rejects(gw.subscribe("x", () => {}, o), (e) => e instanceof TypeError && e.message.includes(what), JSON.stringify(o));
  }
  assert.deepEqual(gw.subscriptions().map((x) => x.filter), ["sensor/#", "device/+/status"]);
  gw.close();
});

test("history: replayed messages expose seq/ts/history, then live; the handler gets each once", async () => {
  const { gw, ws } = await streamSession();
  const got = [];
  const p = gw.subscribe("sensor/#", (m) => got.push([m.topic, m.seq, m.ts, m.history]), { history: 50 });
  await ackSub(ws, { replayed: 2 });
  await p;
  ws.push(replayed("sensor/1", 5));
  ws.push(replayed("sensor/2", 7));
  ws.push(live("sensor/1", 9));
  ws.push(live("sensor/1", 9)); // the same message twice: once
  ws.push({ op: "msg", topic: "sensor/3", payload: 1, qos: 0, retain: true }); // retained replay: no seq
  assert.deepEqual(got, [
    ["sensor/1", 5, 1700000000005, true],
    ["sensor/2", 7, 1700000000007, true],
    ["sensor/1", 9, 1700000000009, false],
    ["sensor/3", undefined, undefined, undefined],
  ]);
  gw.close();
});

// Subscribes filter (options o) and has the gateway answer with ok extra.
async function held(gw, ws, filter, handler, o = {}, extra = {}) {
  const p = gw.subscribe(filter, handler, o);
  await ackSub(ws, extra);
  await p;
}

test("reconnect: resubscribes with since {epoch, last seq} and history as the fallback; 'recovery' before the replay", async () => {
  const { gw, ws } = await streamSession();
  const log = [];
  gw.on("recovery", (r) => log.push(["recovery", r]));
  await held(gw, ws, "sensor/#", (m) => log.push([m.topic, m.seq, m.history]), { history: 50, qos: 1 }, { replayed: 1 });
  ws.push(replayed("sensor/1", 3));
  ws.push(live("sensor/1", 8));
  ws.push(live("sensor/2", 11));
  ws.serverClose(1006);
  const ws2 = await openWith(HELLO_E());
  const f = await ws2.next("sub");
  assert.deepEqual(f, { op: "sub", id: f.id, topic: "sensor/#", qos: 1, since: { epoch: EPOCH, seq: 11 }, history: 50 });
  ws2.push({ op: "ok", id: f.id, qos: 1, replayed: 2, recovered: true });
  ws2.push(replayed("sensor/2", 11)); // already had it
  ws2.push(replayed("sensor/1", 12));
  ws2.push(replayed("sensor/2", 14));
  ws2.push(live("sensor/1", 15));
  assert.deepEqual(log, [
    ["sensor/1", 3, true], ["sensor/1", 8, false], ["sensor/2", 11, false],
    ["recovery", { filter: "sensor/#", recovered: true, replayed: 2, reason: null, url: "ws://gw.test/ws", epoch: EPOCH }],
    ["sensor/1", 12, true], ["sensor/2", 14, true], ["sensor/1", 15, false],
  ]);
  // and again: the position moved on with what came after the reconnect
  ws2.serverClose(1006);
  const ws3 = await openWith(HELLO_E());
  assert.deepEqual((await ws3.next("sub")).since, { epoch: EPOCH, seq: 15 });
  gw.close();
});

test("reconnect: a filter in step resumes after the session's last live message, also one of another filter", async () => {
  const { gw, ws } = await streamSession();
  await held(gw, ws, "a/#", () => {});
  await held(gw, ws, "b/#", () => {}, { history: 5 }, { replayed: 0 });
  await held(gw, ws, "c/#", () => {}, { maxRate: 1 });
  ws.push(live("a/1", 3));
  ws.push(live("c/1", 4));
  ws.push(live("b/1", 10));
  ws.push(live("x/1", 12)); // reached the session through no filter of this client
  ws.serverClose(1006);
  const ws2 = await openWith(HELLO_E());
  const subs = [await ws2.next("sub"), await ws2.next("sub"), await ws2.next("sub")];
  assert.deepEqual(subs.map((f) => [f.topic, f.since && f.since.seq, f.history, f.max_rate]), [
    ["a/#", 12, undefined, undefined],
    ["b/#", 12, 5, undefined],
    // max_rate holds messages back: only its own messages are its position
    ["c/#", 4, undefined, 1],
  ]);
  gw.close();
});

test("reconnect: a filter still receiving its replay resumes after the last replayed message", async () => {
  const { gw, ws } = await streamSession();
  await held(gw, ws, "a/#", () => {});
  await held(gw, ws, "b/#", () => {}, { history: 50 }, { replayed: 3 });
  ws.push(replayed("b/1", 2));
  ws.push(live("a/1", 20)); // another filter's live message, meanwhile
  ws.push(replayed("b/2", 4));
  ws.serverClose(1006); // one replayed message and b's live ones not received yet
  const ws2 = await openWith(HELLO_E());
  const [fa, fb] = [await ws2.next("sub"), await ws2.next("sub")];
  assert.deepEqual([fa.since, fb.since], [{ epoch: EPOCH, seq: 20 }, { epoch: EPOCH, seq: 4 }]);
  gw.close();
});

// Filter "s/#" with history 10 received live seq, then the connection
// dropped and the client reconnected to a gateway saying hello2: the
// recovery events and the seqs the handler got.
async function reconnectedAfter(seq, hello2) {
  const { gw, ws } = await streamSession();
  const events = [];
  gw.on("recovery", (r) => events.push(r));
  const got = [];
  await held(gw, ws, "s/#", (m) => got.push(m.seq), { history: 10 }, { replayed: 0 });
  ws.push(live("s/1", seq));
  ws.serverClose(1006);
  return { gw, events, got, ws2: await openWith(hello2) };
}

test("reconnect: the gateway could not recover (gap) → recovered false, the history fallback follows", async () => {
  const { gw, events, got, ws2 } = await reconnectedAfter(30, HELLO_E());
  const f = await ws2.next("sub");
  assert.deepEqual(f.since, { epoch: EPOCH, seq: 30 });
  ws2.push({ op: "ok", id: f.id, qos: 0, replayed: 2, recovered: false });
  ws2.push(replayed("s/1", 29)); // the fallback: newest stored, some already seen
  ws2.push(replayed("s/1", 31));
  assert.deepEqual(events, [{ filter: "s/#", recovered: false, replayed: 2, reason: "gap", url: "ws://gw.test/ws", epoch: EPOCH }]);
  assert.deepEqual(got, [30, 31]);
  gw.close();
});

test("reconnect: a new epoch (gateway restarted) → no since, history only, 'restarted'; positions start over", async () => {
  const { gw, events, got, ws2 } = await reconnectedAfter(500, HELLO_E("other"));
  assert.equal(gw.epoch, "other");
  const f = await ws2.next("sub");
  assert.deepEqual(f, { op: "sub", id: f.id, topic: "s/#", qos: 0, history: 10 });
  ws2.push({ op: "ok", id: f.id, qos: 0, replayed: 1 });
  ws2.push(replayed("s/1", 2)); // a small seq of the new epoch is new
  ws2.push(live("s/1", 3));
  assert.deepEqual(events, [{ filter: "s/#", recovered: false, replayed: 1, reason: "restarted", url: "ws://gw.test/ws", epoch: "other" }]);
  assert.deepEqual(got, [500, 2, 3]);
  ws2.serverClose(1006);
  const ws3 = await openWith(HELLO_E("other"));
  assert.deepEqual((await ws3.next("sub")).since, { epoch: "other", seq: 3 });
  gw.close();
});

test("one URL, another epoch after a reconnect (a load balancer moved the session, or a restart): 'epoch' {epoch, previous, url}, then 'recovery'; none while the epoch stays", async () => {
  const { gw, ws } = await streamSession();
  const told = [];
  gw.on("epoch", (e) => told.push(["epoch", e]));
  gw.on("gateway", (e) => told.push(["gateway", e]));
  gw.on("recovery", (r) => told.push(["recovery", r.reason, r.epoch]));
  await held(gw, ws, "s/#", () => {}, { history: 10 }, { replayed: 0 });
  ws.push(live("s/1", 40));
  ws.serverClose(1006);
  const ws2 = await openWith(HELLO_E()); // the same gateway: no event
  await ackSub(ws2, { recovered: true, replayed: 0 });
  assert.deepEqual(told, [["recovery", null, EPOCH]]);
  ws2.serverClose(1006);
  const ws3 = await openWith(HELLO_E("behind-lb-2"));
  await ackSub(ws3, { replayed: 3 });
  assert.deepEqual(told.slice(1), [
    ["epoch", { epoch: "behind-lb-2", previous: EPOCH, url: "ws://gw.test/ws" }],
    ["recovery", "restarted", "behind-lb-2"],
  ]);
  gw.close();
});

test("reconnect: nothing received yet → no since ('no_position')", async () => {
  const { gw, ws } = await streamSession();
  const events = [];
  gw.on("recovery", (r) => events.push(r));
  await held(gw, ws, "quiet/#", () => {});
  ws.serverClose(1006);
  const ws2 = await openWith(HELLO_E());
  const f = await ackSub(ws2);
  assert.equal(f.since, undefined);
  assert.deepEqual(events, [{ filter: "quiet/#", recovered: false, replayed: 0, reason: "no_position", url: "ws://gw.test/ws", epoch: EPOCH }]);
  gw.close();
});

test("a gateway without epoch: frames as before, messages routed as before, recovery reported as unsupported", async () => {
  const { gw, ws } = await streamSession({ op: "hello", proto: 1, auth: ["token"] });
  assert.equal(gw.epoch, null);
  const events = [];
  gw.on("recovery", (r) => events.push(r));
  const got = [];
  await held(gw, ws, "sensor/#", (m) => got.push(m.value), { qos: 1 });
  ws.push({ op: "msg", topic: "sensor/1", payload: 1, qos: 1, retain: false });
  ws.serverClose(1001);
  const ws2 = await openWith({ op: "hello", proto: 1, auth: ["token"] });
  const f = await ws2.next("sub");
  assert.deepEqual(f, { op: "sub", id: f.id, topic: "sensor/#", qos: 1 });
  ws2.push({ op: "ok", id: f.id, qos: 1 });
  await tick();
  ws2.push({ op: "msg", topic: "sensor/1", payload: 2, qos: 1, retain: false });
  assert.deepEqual(events, [{ filter: "sensor/#", recovered: false, replayed: 0, reason: "unsupported", url: "ws://gw.test/ws", epoch: null }]);
  assert.deepEqual(got, [1, 2]);
  // a gateway with epoch but an ok without "recovered" for a since: not recovered
  gw.close();
  const s2 = await streamSession();
  const ev2 = [];
  s2.gw.on("recovery", (r) => ev2.push(r));
  await held(s2.gw, s2.ws, "a", () => {});
  s2.ws.push(live("a", 4));
  s2.ws.serverClose(1006);
  const w2 = await openWith(HELLO_E());
  assert.ok((await ackSub(w2)).since);
  assert.deepEqual(ev2, [{ filter: "a", recovered: false, replayed: 0, reason: "unsupported", url: "ws://gw.test/ws", epoch: EPOCH }]);
  s2.gw.close();
});

test("routing: replayed messages only reach filters that asked for a replay; stream messages wait for the filter's ok", async () => {
  const { gw, ws } = await streamSession();
  const wide = [], narrow = [];
  await held(gw, ws, "sensor/#", (m) => wide.push(m.seq));
  ws.push(live("sensor/1/t", 40));
  const p = gw.subscribe("sensor/1/+", (m) => narrow.push(m.seq), { history: 3 });
  const f = await ws.next("sub");
  ws.push(live("sensor/1/t", 41)); // before the narrow filter's ok: not its
  ws.push({ op: "ok", id: f.id, qos: 0, replayed: 3 });
  await p;
  for (const seq of [39, 40, 41]) ws.push(replayed("sensor/1/t", seq));
  ws.push(live("sensor/1/t", 42));
  assert.deepEqual(wide, [40, 41, 42], "no old messages replayed into the filter that did not ask");
  assert.deepEqual(narrow, [39, 40, 41, 42]);
  gw.close();
});

test("retained: false keeps the broker's retained replay from that filter only", async () => {
  const { gw, ws } = await streamSession();
  const a = [], b = [];
  await held(gw, ws, "x/#", (m) => a.push(m.value), { retained: false });
  await held(gw, ws, "x/+", (m) => b.push(m.value));
  ws.push({ op: "msg", topic: "x/1", payload: "r", qos: 0, retain: true });
  ws.push(live("x/1", 5, "l"));
  assert.deepEqual(a, ["l"]);
  assert.deepEqual(b, ["r", "l"]);
  gw.close();
});

test("setMaxRate: re-sub with max_rate and no retained replay; refused → previous rate kept; carried by the resubscription", async () => {
  const { gw, ws } = await streamSession();
  const errors = [];
  gw.on("error", (e) => errors.push(e.code));
  await held(gw, ws, "sensor/#", () => {}, { history: 20, qos: 1 }, { replayed: 0 });
  let p = gw.setMaxRate("sensor/#", 2);
  let f = await ackSub(ws);
  assert.deepEqual(f, { op: "sub", id: f.id, topic: "sensor/#", qos: 1, retained: false, max_rate: 2 });
  await p;
  p = gw.setMaxRate("sensor/#", 5);
  f = await ws.next("sub");
  ws.push({ op: "error", id: f.id, code: "rate_limited", message: "slow down" });
  await assert.rejects(p, (e) => e.code === "rate_limited" && e.filter === "sensor/#");
  assert.deepEqual(gw.subscriptions().map((x) => x.filter), ["sensor/#"], "still held");
  // subscribe with a different maxRate on a held filter changes it too
  await gw.subscribe("sensor/#", () => {}, { maxRate: null });
  f = await ackSub(ws);
  assert.deepEqual(f, { op: "sub", id: f.id, topic: "sensor/#", qos: 1, retained: false });
  await assert.rejects(gw.setMaxRate("nope/#", 1), TypeError);
  await assert.rejects(gw.setMaxRate("sensor/#", 0 - 3), TypeError);
  // while disconnected the new rate waits for the resubscription
  ws.serverClose(1006);
  await gw.setMaxRate("sensor/#", 0.5);
  const ws2 = await openWith(HELLO_E());
  f = await ws2.next("sub");
  assert.equal(f.max_rate, 0.5);
  assert.equal(f.history, 20);
  assert.deepEqual(errors, []);
  gw.close();
});

test("setMaxRate while the first sub is on its way: sent again once it is answered", async () => {
  const { gw, ws } = await streamSession();
  const p = gw.subscribe("a/#", () => {});
  const f1 = await ws.next("sub");
  await gw.setMaxRate("a/#", 3);
  ws.push({ op: "ok", id: f1.id, qos: 0 });
  await p;
  const f2 = await ackSub(ws);
  assert.equal(f1.max_rate, undefined);
  assert.equal(f2.max_rate, 3);
  gw.close();
});

// ---------------------------------------------------------------------------
// the integration harness's own credential helpers

test("harness: TOTP matches RFC 6238 (SHA-1) vectors, JWT is well formed", async () => {
  const h = await import("./harness.mjs");
  const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"
  assert.equal(h.totp(secret, { time: 59 * 1000 }), "287082");
  assert.equal(h.totp(secret, { time: 1111111109 * 1000 }), "081804");
  assert.equal(h.totp(secret, { time: 1234567890 * 1000 }), "005924");
  const jwt = h.jwtHS256("k", { sub: "a", exp: 1 });
  const parts = jwt.split(".");
  assert.equal(parts.length, 3);
  const [head, body] = parts.slice(0, 2).map((p) => JSON.parse(Buffer.from(p, "base64url").toString()));
  assert.deepEqual(head, { alg: "HS256", typ: "JWT" });
  assert.deepEqual(body, { sub: "a", exp: 1 });
});

// ---------------------------------------------------------------------------
// MQTT 5 properties and request

test("props: a msg's props decoded (camelCase, correlation as bytes); malformed members left out", () => {
  const m = decodeMessage({
    op: "msg", topic: "a", payload: 1, qos: 0, retain: false,
    props: { user: [["k", "v"], ["k", "w"], ["bad"], [1, 2]], content_type: "c",
      response_topic: "r/1", correlation: "AQID", expiry: 30, other: 1 },
  });
  assert.deepEqual(m.props, { user: [["k", "v"], ["k", "w"]], contentType: "c", responseTopic: "r/1",
    correlation: new Uint8Array([1, 2, 3]), expiry: 30 });
  assert.equal("props" in decodeMessage({ op: "msg", topic: "a", text: "x", qos: 0, retain: false }), false);
  assert.equal(readProps({ user: [], expiry: -1, content_type: 5 }), null);
  assert.equal(readProps([]), null);
  assert.equal(readProps(null), null);
});

test("props: encodeProps gives the wire form and refuses malformed members", () => {
  assert.deepEqual(encodeProps({ user: [["a", "1"]], contentType: "t", responseTopic: "r",
    correlation: new Uint8Array([255]), expiry: 5 }),
  { user: [["a", "1"]], content_type: "t", response_topic: "r", correlation: "/w==", expiry: 5 });
  assert.deepEqual(encodeProps({ user: new Map([["m", "n"]]), correlation: "AA==" }),
    { user: [["m", "n"]], correlation: "AA==" });
  assert.deepEqual(encodeProps({}), {});
  for (const bad of [null, [], { user: [["a"]] }, { user: "a" }, { contentType: 1 },
    { responseTopic: [] }, { expiry: 0 }, { expiry: 1.5 }, { expiry: 2 ** 32 }]) {
    assert.throws(() => encodeProps(bad), TypeError, JSON.stringify(bad));
  }
});

test("publish with props sends them; a malformed one rejects before anything is sent", async () => {
  const gw = mk({ token: "x" });
  gw.connect();
  const { ws } = await authed(gw);
  const p = gw.publish("d/1", { on: 1 }, { qos: 1, props: { contentType: "application/json", user: [["a", "b"]] } });
  const f = await ws.next("pub");
  assert.deepEqual(f, { op: "pub", id: f.id, topic: "d/1", payload: { on: 1 }, qos: 1,
    props: { content_type: "application/json", user: [["a", "b"]] } });
  ws.push({ op: "ok", id: f.id });
  await p;
  await assert.rejects(gw.publish("d/1", 1, { props: { expiry: 0 } }), TypeError);
  gw.close();
});

test("request: sends op request with timeout_ms and resolves the response's body and props", async () => {
  const gw = mk({ token: "x" });
  gw.connect();
  const { ws } = await authed(gw);
  const p = gw.request("device/7/rpc", { get: "firmware" }, { timeoutMs: 2000, props: { user: [["t", "1"]] } });
  const f = await ws.next("request");
  assert.deepEqual(f, { op: "request", id: f.id, topic: "device/7/rpc", payload: { get: "firmware" },
    props: { user: [["t", "1"]] }, timeout_ms: 2000 });
  ws.push({ op: "ok", id: f.id, response: { payload: { firmware: "1.4.2" }, props: { content_type: "j" } } });
  assert.deepEqual(await p, { format: "json", value: { firmware: "1.4.2" }, props: { contentType: "j" } });

  const t = gw.request("device/7/rpc", "x", { text: true });
  const f2 = await ws.next("request");
  assert.deepEqual(f2, { op: "request", id: f2.id, topic: "device/7/rpc", text: "x" });
  ws.push({ op: "ok", id: f2.id, response: { base64: "/w==" } });
  assert.deepEqual(await t, { format: "binary", value: new Uint8Array([255]) });
  gw.close();
});

test("request: the gateway's timeout and limit errors reject with their code; bad options reject at once", async () => {
  const gw = mk({ token: "x" });
  gw.connect();
  const { ws } = await authed(gw);
  const p = gw.request("d/rpc", 1, { timeoutMs: 10 });
  const f = await ws.next("request");
  ws.push({ op: "error", id: f.id, code: "timeout", message: "no response in time" });
  await assert.rejects(p, (e) => e instanceof MqGateError && e.code === "timeout");
  const q = gw.request("d/rpc", 1);
  const g = await ws.next("request");
  ws.push({ op: "error", id: g.id, code: "limit_exceeded", message: "too many" });
  await assert.rejects(q, (e) => e.code === "limit_exceeded");
  for (const o of [{ timeoutMs: 0 }, { timeoutMs: 60001 }, { timeoutMs: 1.5 }, { qos: 3 },
    { props: { expiry: "1" } }]) {
    await assert.rejects(gw.request("d/rpc", 1, o), TypeError, JSON.stringify(o));
  }
  await assert.rejects(gw.request("", 1), TypeError);
  gw.close();
});

test("request: a client-side timeout beyond timeoutMs when the gateway never answers", async () => {
  const gw = mk({ token: "x" });
  gw.connect();
  const { ws } = await authed(gw);
  const p = gw.request("d/rpc", 1, { timeoutMs: 5, timeout: 30 });
  await ws.next("request");
  await assert.rejects(p, (e) => e.code === "timeout");
  gw.close();
});

// ---------------------------------------------------------------------------
// several gateways: failover

const GW1 = "ws://gw.test/ws";
const GW2 = "ws://gw2.test/ws";
const GW3 = "wss://gw3.test:8443/mq";

test("several URLs: url as a list or options.urls, resolved, duplicates dropped; one URL as before", () => {
  const o = { WebSocket: FakeWebSocket };
  assert.deepEqual(new MqGate([GW1, "http://gw2.test/ws"], null, o).urls, [GW1, GW2]);
  assert.deepEqual(new MqGate(GW1, null, { ...o, urls: [GW2, GW1, GW3] }).urls, [GW1, GW2, GW3]);
  assert.deepEqual(new MqGate(null, null, { ...o, urls: [GW2] }).urls, [GW2]);
  const one = new MqGate(GW1, null, o);
  assert.deepEqual(one.urls, [GW1]);
  assert.equal(one.url, GW1);
  assert.equal(one.apiUrl, "http://gw.test");
  const two = new MqGate([GW1, GW3], null, o);
  assert.equal(two.url, GW1, "the first URL first");
  assert.throws(() => new MqGate([], null, o), TypeError);
  assert.throws(() => new MqGate([GW1, ""], null, o), TypeError);
  assert.throws(() => new MqGate([GW1, 7], null, o), TypeError);
  // the HTTP API's base: one per URL
  assert.throws(() => new MqGate([GW1, GW2], null, { ...o, apiUrl: "http://x" }), TypeError);
  assert.throws(() => new MqGate([GW1, GW2], null, { ...o, apiUrl: ["http://x"] }), TypeError);
  assert.equal(new MqGate(GW1, null, { ...o, apiUrl: "https://x/p/" }).apiUrl, "https://x/p");
});

test("failover: a failed attempt moves to the next URL; the backoff grows per round over all of them, capped", async () => {
  const gw = mk({ token: "x" }, { urls: [GW2, GW3] });
  const closes = [];
  gw.on("close", (d) => closes.push(d));
  gw.connect();
  const tried = [];
  for (let i = 0; i < 9; i++) {
    const ws = await nextSocket();
    tried.push(ws.url);
    ws.fail();
  }
  assert.deepEqual(tried, [GW1, GW2, GW3, GW1, GW2, GW3, GW1, GW2, GW3]);
  // backoff {min 5, max 20, jitter 0}: one delay per round of three URLs
  assert.deepEqual(closes.map((c) => c.reconnectIn), [5, 5, 5, 10, 10, 10, 20, 20, 20]);
  assert.deepEqual(closes.slice(0, 3).map((c) => [c.url, c.nextUrl]), [[GW1, GW2], [GW2, GW3], [GW3, GW1]]);
  // the gateway that answers ends the backoff
  const ws = await nextSocket();
  assert.equal(ws.url, GW1);
  ws.accept();
  const a = await ws.next("auth");
  ws.push({ op: "ok", id: a.id, user: "u", roles: [] });
  await tick();
  assert.equal(gw.state, "authenticated");
  assert.equal(gw.url, GW1);
  ws.serverClose(1006);
  assert.equal(closes.at(-1).reconnectIn, 5);
  gw.close();
});

test("failover: jittered delays stay within the round's bounds", async () => {
  const gw = mk({ token: "x" }, { urls: [GW2], backoff: { min: 4, max: 16, jitter: 0.5 } });
  const delays = [];
  gw.on("close", (d) => delays.push(d.reconnectIn));
  gw.connect();
  for (let i = 0; i < 8; i++) (await nextSocket()).fail();
  const bounds = [[2, 4], [2, 4], [4, 8], [4, 8], [8, 16], [8, 16], [8, 16], [8, 16]];
  delays.forEach((d, i) => assert.ok(d >= bounds[i][0] && d <= bounds[i][1], `attempt ${i}: ${d}`));
  gw.close();
});

test("failover: 1001 moves on at once; a dropped connection tries the same gateway first; the working one is remembered", async () => {
  const gw = mk({ token: "x" }, { urls: [GW2, GW3] });
  const moves = [];
  gw.on("gateway", (g) => moves.push(g));
  gw.connect();
  let { ws } = await authed(gw);
  assert.equal(ws.url, GW1);
  ws.serverClose(1006); // a network cut: the same gateway may resume exactly
  ({ ws } = await authed(gw));
  assert.equal(ws.url, GW1);
  ws.serverClose(1001, "gateway shutting down");
  ({ ws } = await authed(gw));
  assert.equal(ws.url, GW2, "a gateway shutting down is left for the next one");
  assert.equal(gw.url, GW2);
  assert.deepEqual(moves, [{ url: GW2, previous: GW1, epoch: null }]);
  assert.equal(gw.stats.failovers, 1);
  // GW2 drains too, GW3 is down: GW1 again
  ws.serverClose(1001);
  (await nextSocket()).fail();
  ({ ws } = await authed(gw));
  assert.equal(ws.url, GW1);
  // close() and connect() again: the gateway that worked last first
  gw.close();
  gw.connect();
  ({ ws } = await authed(gw));
  assert.equal(ws.url, GW1);
  gw.close();
});

test("failover to a gateway of another epoch: no since, history; 'recovery' says failover, with the gateway and its epoch", async () => {
  const gw = mk({ token: "x" }, { urls: [GW2] });
  gw.connect();
  const ws = await openWith(HELLO_E("epochA"));
  const events = [];
  gw.on("recovery", (r) => events.push(r));
  const told = [];
  gw.on("gateway", (g) => told.push(g));
  const got = [];
  await held(gw, ws, "s/#", (m) => got.push([m.seq, m.history]), { history: 10 });
  ws.push(live("s/1", 900));
  ws.serverClose(1001);
  const ws2 = await openWith(HELLO_E("epochB"));
  assert.equal(ws2.url, GW2);
  assert.equal(gw.epoch, "epochB");
  const f = await ws2.next("sub");
  assert.deepEqual(f, { op: "sub", id: f.id, topic: "s/#", qos: 0, history: 10 }, "no since: another gateway's seq means nothing here");
  ws2.push({ op: "ok", id: f.id, qos: 0, replayed: 2 });
  ws2.push(replayed("s/1", 5));
  ws2.push(replayed("s/2", 6));
  ws2.push(live("s/1", 7)); // seqs of the new epoch are new, however small
  assert.deepEqual(told, [{ url: GW2, previous: GW1, epoch: "epochB" }]);
  assert.deepEqual(events, [{ filter: "s/#", recovered: false, replayed: 2, reason: "failover", url: GW2, epoch: "epochB" }]);
  assert.deepEqual(got, [[900, false], [5, true], [6, true], [7, false]]);
  // a cut on GW2: resumes there exactly, with since of epochB
  ws2.serverClose(1006);
  const ws3 = await openWith(HELLO_E("epochB"));
  assert.equal(ws3.url, GW2);
  assert.deepEqual((await ws3.next("sub")).since, { epoch: "epochB", seq: 7 });
  gw.close();
});

test("failover and publishes: in flight → 'disconnected' (outcome unknown, never resent); made meanwhile → sent once to the next gateway", async () => {
  const gw = mk({ token: "x" }, { urls: [GW2] });
  gw.connect();
  const { ws } = await authed(gw);
  const inFlight = gw.publish("a/1", 1, { qos: 1 });
  await ws.next("pub");
  const acked = gw.publish("a/2", 2, { qos: 1 });
  const f2 = await ws.next("pub");
  ws.push({ op: "ok", id: f2.id });
  await acked;
  ws.readyState = 2; // the gateway's close frame on its way: nothing more goes out on it
  const onClosing = gw.publish("a/3", 3, { qos: 1 });
  ws.serverClose(1001);
  await assert.rejects(inFlight, (e) => e.code === "disconnected" && e.closeCode === 1001);
  const meanwhile = gw.publish("a/4", 4, { qos: 1 });
  const again = await authed(gw);
  assert.equal(again.ws.url, GW2);
  const sent = [];
  for (let i = 0; i < 2; i++) {
    const f = await again.ws.next("pub");
    sent.push(f.topic);
    again.ws.push({ op: "ok", id: f.id });
  }
  await onClosing;
  await meanwhile;
  assert.deepEqual(sent, ["a/3", "a/4"]);
  assert.deepEqual(again.ws.sent.filter((f) => f.op === "pub").map((f) => f.topic), ["a/3", "a/4"], "a/1 is not resent");
  assert.deepEqual(ws.sent.filter((f) => f.op === "pub").map((f) => f.topic), ["a/1", "a/2"]);
  gw.close();
});
