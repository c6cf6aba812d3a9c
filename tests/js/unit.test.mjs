// Unit tests of www/mqgate.js that need no gateway: topic matching, base64,
// body encoding and decoding, backoff, and the session logic driven through
// a scripted fake WebSocket.
//   node --test tests/js/unit.test.mjs

import test, { afterEach } from "node:test";
import assert from "node:assert/strict";
import {
  MqGate, MqGateError, topicMatches, compileFilter, base64ToBytes, bytesToBase64,
  decodeMessage, encodeBody, backoffDelay, readAllow, SUBPROTOCOL,
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
