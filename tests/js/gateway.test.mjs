// www/mqgate.js against the real mqgated and a real mosquitto.
//   MQGATED=/abs/path/mqgated node --experimental-websocket --test tests/js/
// Skips (with the reason) when the daemon or mosquitto is missing.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { MqGate, connect, readEpoch } from "../../www/mqgate.js";
import * as h from "./harness.mjs";

const missing = h.missingTools();
const opts = { skip: missing || false, timeout: 60000 };
// The stream-state tests need a daemon whose hello carries an epoch.
const noStream = missing || (await h.noStreamPositions());
const FAST = { backoff: { min: 100, max: 1000, jitter: 0.3 }, anonymousWait: 1500 };

/** Credentials as a JWT (most tests); password sign-in has tests of its own. */
function tok(sub, roles, ttl = 600) {
  return { token: h.jwtHS256(h.JWT_SECRET, { sub, roles, exp: Math.floor(Date.now() / 1000) + ttl }) };
}
const ALICE = () => tok("alice", ["operator"]);
const VICTOR = () => tok("victor", ["viewer"]);

/** Collects the messages a handler gets; next() waits for one. */
function inbox() {
  const got = [];
  const waiters = [];
  const fn = (msg, filter) => {
    const m = { ...msg, filter };
    got.push(m);
    const w = waiters.shift();
    if (w) w(m);
  };
  let taken = 0;
  fn.got = got;
  fn.next = (timeout = 5000) => {
    if (taken < got.length) return Promise.resolve(got[taken++]);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no message within ${timeout} ms (got ${got.length})`)), timeout);
      waiters.push((m) => { clearTimeout(t); taken++; resolve(m); });
    });
  };
  fn.quiet = async (ms = 300) => {
    const n = got.length;
    await h.sleep(ms);
    assert.equal(got.length, n, `unexpected messages: ${JSON.stringify(got.slice(n))}`);
  };
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

describe("mqgate.js against mqgated + mosquitto", opts, () => {
  let broker, gw;
  const sessions = [];
  const open = async (creds, o = {}) => {
    const s = new MqGate(gw.url, creds, { ...FAST, ...o });
    sessions.push(s);
    await s.connect();
    return s;
  };

  before(async () => {
    broker = await h.startMosquitto();
    gw = await h.startGateway(broker.port);
  });

  after(async () => {
    for (const s of sessions) s.close();
    if (gw) await gw.close();
    if (broker) await broker.close();
  });

  it("password auth: hello, ok with user and roles, status up", async () => {
    const s = new MqGate(gw.url, { user: "alice", password: "alice-pw" }, FAST);
    sessions.push(s);
    const states = [];
    s.on("state", (st) => states.push(st));
    const hello = waitEvent(s, "hello");
    const brokerUp = waitEvent(s, "broker", (b) => b === "up");
    hello.catch(() => {}); // awaited below; not unhandled when connect() fails first
    brokerUp.catch(() => {});
    const who = await s.connect();
    assert.deepEqual(who, { user: "alice", roles: ["operator"], anonymous: false });
    const [frame] = await hello;
    assert.equal(frame.proto, 1);
    assert.ok(frame.auth.includes("password") && frame.auth.includes("token"), JSON.stringify(frame.auth));
    await brokerUp;
    assert.equal(s.broker, "up");
    assert.deepEqual(states, ["connecting", "open", "authenticated"]);
    assert.ok((await s.ping()) >= 0);
    s.close();
  });

  it("token auth (HS256 JWT)", async () => {
    const token = h.jwtHS256(h.JWT_SECRET, { sub: "tina", roles: ["viewer"], exp: Math.floor(Date.now() / 1000) + 600 });
    const s = await open({ token });
    assert.equal(s.user, "tina");
    assert.deepEqual(s.roles, ["viewer"]);
    s.close();
  });

  it("password + TOTP", async () => {
    const otto = h.USERS.find((u) => u.name === "otto");
    const s = await open({ user: "otto", password: otto.password, otp: h.totp(otto.totp) });
    assert.equal(s.user, "otto");
    s.close();
  });

  it("wrong password: auth_failed, closed 4401, no reconnect with the same credentials", async () => {
    const s = new MqGate(gw.url, { user: "alice", password: "nope" }, FAST);
    sessions.push(s);
    await assert.rejects(s.connect(), (e) => e.code === "auth_failed");
    assert.equal(s.lastClose.code, 4401);
    await h.sleep(500);
    assert.equal(s.state, "closed");
    assert.equal(s.stats.reconnects, 0);
  });

  it("bad token signature → auth_failed", async () => {
    const token = h.jwtHS256("not-the-secret", { sub: "tina", roles: ["viewer"], exp: Math.floor(Date.now() / 1000) + 600 });
    await assert.rejects(open({ token }), (e) => e.code === "auth_failed");
  });

  it("token refresh on the same session; another user's token is forbidden", async () => {
    const s = await open(ALICE());
    const me = await s.authenticate(ALICE());
    assert.equal(me.user, "alice");
    await assert.rejects(s.authenticate(VICTOR()), (e) => e.code === "forbidden");
    assert.equal(s.user, "alice");
    assert.equal(s.state, "authenticated");
    s.close();
  });

  it("token expiry: static credentials stop with token_expired", async () => {
    const s = new MqGate(gw.url, tok("alice", ["operator"], 2), FAST);
    sessions.push(s);
    await s.connect();
    const [detail] = await waitEvent(s, "close", () => true, 10000);
    assert.equal(detail.code, 4401);
    assert.equal(detail.authReason, "token_expired");
    assert.equal(detail.reconnectIn, null);
    await h.sleep(300);
    assert.equal(s.state, "closed");
  });

  it("token expiry: a credentials function is asked for a fresh token and the session resumes", async () => {
    const reasons = [];
    const s = new MqGate(gw.url, ({ reason }) => {
      reasons.push(reason);
      return tok("alice", ["operator"], reasons.length === 1 ? 2 : 600);
    }, FAST);
    sessions.push(s);
    await s.connect();
    const got = inbox();
    await s.subscribe("sensor/expiry/#", got);
    await waitEvent(s, "close", (d) => d.authReason === "token_expired", 10000);
    await waitEvent(s, "state", (st) => st === "authenticated", 10000);
    assert.deepEqual(reasons, [null, "token_expired"]);
    await h.eventually(() => s.subscriptions()[0].granted !== null, { what: "re-subscription" });
    await h.mqttPublish(broker.port, "sensor/expiry/1", "3");
    assert.equal((await got.next()).value, 3);
    s.close();
  });

  it("no credentials and no anonymous role → auth_required", async () => {
    const s = new MqGate(gw.url, null, FAST);
    sessions.push(s);
    await assert.rejects(s.connect(), (e) => e.code === "auth_required" && e.methods.includes("password"));
    assert.equal(s.stats.reconnects, 0);
  });

  it("subscribe routes each message to every matching handler once; payload/text/base64 decode", async () => {
    const s = await open(ALICE());
    const all = inbox();
    const temp = inbox();
    assert.equal(await s.subscribe("sensor/#", all, { qos: 1 }), 1);
    assert.equal(await s.subscribe("sensor/+/temp", temp, { qos: 0 }), 0);

    await h.mqttPublish(broker.port, "sensor/1/temp", '{"t":21.50}', { qos: 1 });
    let m = await all.next();
    assert.equal(m.topic, "sensor/1/temp");
    assert.equal(m.format, "json");
    assert.deepEqual(m.value, { t: 21.5 });
    assert.equal(m.retain, false);
    m = await temp.next();
    assert.equal(m.filter, "sensor/+/temp");
    assert.deepEqual(m.value, { t: 21.5 });

    await h.mqttPublish(broker.port, "sensor/1/hum", "not json");
    m = await all.next();
    assert.equal(m.format, "text");
    assert.equal(m.value, "not json");

    await h.mqttPublish(broker.port, "sensor/1/raw", Buffer.from([0x00, 0xff, 0xc3]));
    m = await all.next();
    assert.equal(m.format, "binary");
    assert.ok(m.value instanceof Uint8Array);
    assert.deepEqual([...m.value], [0x00, 0xff, 0xc3]);

    await h.mqttPublish(broker.port, "sensor/1/empty", "");
    m = await all.next();
    assert.equal(m.format, "text");
    assert.equal(m.value, "");

    await temp.quiet(300);
    assert.equal(all.got.length, 4, "each message once");
    assert.equal(temp.got.length, 1);

    // unsubscribing one filter leaves the other
    await s.unsubscribe("sensor/#");
    await h.mqttPublish(broker.port, "sensor/2/temp", "19");
    m = await temp.next();
    assert.equal(m.value, 19);
    await h.mqttPublish(broker.port, "sensor/2/hum", "55");
    await all.quiet(400);
    s.close();
  });

  it("retained messages replay after subscribe with retain: true", async () => {
    await h.mqttPublish(broker.port, "sensor/retained/x", '{"v":7}', { retain: true, qos: 1 });
    const a = await open(VICTOR());
    const b = await open(VICTOR());
    const ia = inbox();
    const ib = inbox();
    await a.subscribe("sensor/retained/+", ia);
    let m = await ia.next();
    assert.equal(m.retain, true);
    assert.deepEqual(m.value, { v: 7 });
    // also for a second session subscribing the same filter later
    await b.subscribe("sensor/retained/+", ib);
    m = await ib.next();
    assert.equal(m.retain, true);
    await h.mqttPublish(broker.port, "sensor/retained/x", "", { retain: true, qos: 1 });
    a.close();
    b.close();
  });

  it("publish: acked, and the broker gets the payload, text and base64 bytes", async () => {
    const s = await open(ALICE());
    const sub = await h.mqttSubscribe(broker.port, "device/+/cmd");
    await s.publish("device/7/cmd", { on: true }, { qos: 1 });
    let m = await sub.next();
    assert.equal(m.topic, "device/7/cmd");
    assert.equal(m.payload.toString(), '{"on":true}');
    await s.publish("device/7/cmd", "plain words", { text: true, qos: 2 });
    m = await sub.next();
    assert.equal(m.payload.toString(), "plain words");
    await s.publish("device/7/cmd", new Uint8Array([1, 2, 255]));
    m = await sub.next();
    assert.deepEqual([...m.payload], [1, 2, 255]);
    await s.publish("device/7/cmd", 42.5);
    m = await sub.next();
    assert.equal(m.payload.toString(), "42.5");
    sub.stop();
    s.close();
  });

  it("forbidden publish and subscribe reject with code forbidden; bad topic with bad_topic", async () => {
    const s = await open(VICTOR());
    await assert.rejects(s.publish("device/7/cmd", { on: true }, { qos: 1 }), (e) => e.code === "forbidden");
    await assert.rejects(s.subscribe("#", () => {}), (e) => e.code === "forbidden" && e.filter === "#");
    await assert.rejects(s.subscribe("sensor/#/x", () => {}), (e) => e.code === "bad_topic");
    assert.deepEqual(s.subscriptions(), []);
    // the session is still fine
    assert.equal(await s.subscribe("sensor/#", () => {}), 0);
    s.close();
  });

  it("anonymous role: usable without auth, may upgrade", async () => {
    const g2 = await h.startGateway(broker.port, { anonymousRole: "guest" });
    try {
      const s = new MqGate(g2.url, null, FAST);
      sessions.push(s);
      const up = waitEvent(s, "broker", (b) => b === "up");
      up.catch(() => {});
      const who = await s.connect();
      assert.equal(who.anonymous, true);
      await up;
      const got = inbox();
      await s.subscribe("public/#", got);
      await h.mqttPublish(broker.port, "public/news", '"hi"');
      assert.equal((await got.next()).value, "hi");
      await assert.rejects(s.publish("device/1/cmd", 1), (e) => e.code === "forbidden");
      const me = await s.authenticate(ALICE());
      assert.deepEqual(me, { user: "alice", roles: ["operator"], anonymous: false });
      await s.publish("device/1/cmd", 1, { qos: 1 });
      s.close();
    } finally {
      await g2.close();
    }
  });

  it("allow: hello of an anonymous session and auth's ok say what the session may do", async (t) => {
    const roles = {
      ...h.ROLES,
      mine: { subscribe: ["users/%u/#", "sensor/#"], publish: ["users/%u/cmd"] },
      more: { subscribe: ["sensor/#"] },
    };
    const g2 = await h.startGateway(broker.port, { anonymousRole: "guest", roles });
    const sorted = (a) => (a ? { subscribe: [...a.subscribe].sort(), publish: [...a.publish].sort() } : a);
    try {
      const s = new MqGate(g2.url, null, FAST);
      sessions.push(s);
      await s.connect();
      if (!s.hello.allow) t.todo("this mqgated sends no \"allow\" (issue 10, item 24)");
      assert.deepEqual(sorted(s.allow), { subscribe: ["public/#", "sensor/#"], publish: [] }, "guest");
      await s.authenticate(tok("alice", ["mine", "more"]));
      // %u replaced, no duplicates
      assert.deepEqual(sorted(s.allow), { subscribe: ["sensor/#", "users/alice/#"], publish: ["users/alice/cmd"] }, "alice");
      s.close();
    } finally {
      await g2.close();
    }
  });

  it("broker down → status down; back up → status up, subscriptions still deliver", async () => {
    const s = await open(ALICE());
    const got = inbox();
    await s.subscribe("sensor/outage/#", got, { qos: 1 });
    const down = waitEvent(s, "broker", (b) => b === "down");
    await broker.stop();
    await down;
    assert.equal(s.broker, "down");
    assert.equal(s.state, "authenticated", "the session stays up");
    const up = waitEvent(s, "broker", (b) => b === "up", 20000);
    await broker.start();
    await up;
    await h.eventually(async () => {
      await h.mqttPublish(broker.port, "sensor/outage/1", "1");
      await h.sleep(100);
      return got.got.length > 0;
    }, { timeout: 10000, interval: 200, what: "a message after the broker came back" });
    s.close();
  });

  it("a publish while the broker is down is acked once it is back", async () => {
    const s = await open(ALICE());
    const down = waitEvent(s, "broker", (b) => b === "down");
    await broker.stop();
    await down;
    let acked = false;
    const p = s.publish("device/9/cmd", { buffered: true }, { qos: 1 }).then(() => (acked = true));
    await h.sleep(300);
    assert.equal(acked, false, "not acked while the broker is down");
    await broker.start();
    await p;
    s.close();
  });

  it("gateway restart (1001) → reconnect, re-authenticate, re-subscribe", async () => {
    const s = await open(ALICE());
    const got = inbox();
    await s.subscribe("sensor/restart/+", got, { qos: 1 });
    const closed = waitEvent(s, "close");
    await gw.stop();
    const [detail] = await closed;
    assert.equal(detail.code, 1001);
    assert.ok(detail.reconnectIn !== null, "will reconnect");
    const again = waitEvent(s, "state", (st) => st === "authenticated", 20000);
    await gw.start();
    await again;
    assert.equal(s.user, "alice");
    await h.eventually(() => s.subscriptions()[0].granted !== null, { what: "re-subscription" });
    await h.eventually(async () => {
      await h.mqttPublish(broker.port, "sensor/restart/1", "5");
      await h.sleep(100);
      return got.got.length > 0;
    }, { timeout: 10000, interval: 200, what: "a message after the gateway restart" });
    assert.equal(got.got[0].value, 5);
    s.close();
  });

  it("props: a device's MQTT 5 properties reach the handler; a publish's reach the broker", async () => {
    const s = await open(ALICE());
    const box = inbox();
    await s.subscribe("sensor/props/#", box);
    await h.mqttPublish(broker.port, "sensor/props/1", "{}", { qos: 1, props: [
      ["user-property", "unit", "C"], ["content-type", "application/json"],
      ["response-topic", "device/1/cmd"], ["correlation-data", "abc"], ["message-expiry-interval", "60"]] });
    const m = await box.next();
    assert.deepEqual(m.props.user, [["unit", "C"]]);
    assert.equal(m.props.contentType, "application/json");
    assert.equal(m.props.responseTopic, "device/1/cmd");
    assert.deepEqual([...m.props.correlation], [..."abc"].map((c) => c.charCodeAt(0)));
    assert.ok(m.props.expiry > 50 && m.props.expiry <= 60, `expiry ${m.props.expiry}`);
    await h.mqttPublish(broker.port, "sensor/props/2", "x", { qos: 1 });
    assert.equal("props" in (await box.next()), false);
    await assert.rejects(s.publish("device/1/cmd", 1, { props: { user: [["a", "\n"]] } }),
      (e) => e.code === "bad_request");
  });

  it("request: a device answers, the promise resolves its body and props; no answer → timeout", async () => {
    const dev = await h.startResponder(broker.port, "device/+/cmd");
    try {
      const s = await open(ALICE());
      const r = await s.request("device/5/cmd", { get: "firmware" }, { timeoutMs: 5000 });
      assert.deepEqual(r, { format: "json", value: { echo: '{"get":"firmware"}' },
        props: { user: [["handled", "yes"]] } });
    } finally {
      dev.close();
    }
    const s = await open(ALICE());
    await assert.rejects(s.request("device/6/cmd", 1, { timeoutMs: 200 }), (e) => e.code === "timeout");
  });

  it("connect() helper", async () => {
    const s = await connect(gw.url, VICTOR(), FAST);
    sessions.push(s);
    assert.equal(s.ready, true);
    s.close();
  });
});

// Stream state (protocol.md, "Extensions of version 1": stream positions,
// History, Rate-limited subscriptions) through the library: a gateway with
// history for sensor/#, reached directly or through a proxy that can fail.
describe("mqgate.js stream state against mqgated + mosquitto", { skip: noStream || false, timeout: 120000 }, () => {
  let broker, gw, proxy;
  const sessions = [];
  const brokerUp = (s) => h.eventually(() => s.broker === "up", { timeout: 15000, what: "the gateway's broker connection" });
  // A session whose gateway is connected to the broker (a publish before
  // that would be lost).
  const open = async (creds = ALICE(), o = {}, url = proxy.url) => {
    const s = new MqGate(url, creds, { ...FAST, ...o });
    sessions.push(s);
    await s.connect();
    await brokerUp(s);
    return s;
  };
  const values = (box) => box.got.map((m) => m.value);

  // Resolves once a session subscribed to filter (directly) has received n
  // messages: the gateway has them, so its history does too.
  async function gatewayHas(filter, n) {
    const w = await open(VICTOR(), {}, gw.url);
    const box = inbox();
    await w.subscribe(filter, box);
    return { box, done: () => h.eventually(() => box.got.length >= n, { timeout: 10000, what: `${n} messages on ${filter}` }), close: () => w.close() };
  }

  before(async () => {
    broker = await h.startMosquitto();
    gw = await h.startGateway(broker.port, { extra: { history: h.HISTORY } });
    proxy = await h.startProxy(gw.port);
  });

  after(async () => {
    for (const s of sessions) s.close();
    if (proxy) await proxy.close();
    if (gw) await gw.close();
    if (broker) await broker.close();
  });

  it("hello carries the epoch; live messages expose seq (increasing) and ts", async () => {
    const s = await open();
    assert.ok(readEpoch(s.epoch), `epoch ${s.epoch}`);
    const box = inbox();
    await s.subscribe("sensor/seq/#", box);
    const t0 = Date.now();
    for (let i = 1; i <= 3; i++) await h.mqttPublish(broker.port, "sensor/seq/1", String(i), { qos: 1 });
    for (let i = 0; i < 3; i++) await box.next();
    const seqs = box.got.map((m) => m.seq);
    assert.ok(seqs.every(Number.isSafeInteger) && seqs[0] < seqs[1] && seqs[1] < seqs[2], `seqs ${seqs}`);
    for (const m of box.got) {
      assert.equal(m.history, false);
      assert.ok(m.ts >= t0 - 1000 && m.ts <= Date.now() + 1000, `ts ${m.ts} near ${t0}`);
    }
  });

  it("history: a new subscription gets the newest stored messages first, flagged, in seq order, then live ones", async () => {
    const watch = await gatewayHas("sensor/hist/#", 5);
    for (let i = 1; i <= 5; i++) await h.mqttPublish(broker.port, "sensor/hist/1", String(i), { qos: 1 });
    await watch.done();
    const s = await open();
    const box = inbox();
    await s.subscribe("sensor/hist/#", box, { history: 3 });
    await h.eventually(() => box.got.length >= 3, { what: "three replayed messages" });
    assert.deepEqual(box.got.map((m) => [m.value, m.history]), [[3, true], [4, true], [5, true]]);
    // the same message has the same seq in every session
    assert.deepEqual(box.got.map((m) => m.seq), watch.box.got.slice(2).map((m) => m.seq));
    await h.mqttPublish(broker.port, "sensor/hist/1", "6", { qos: 1 });
    const live = await h.eventually(() => box.got.find((x) => x.value === 6), { what: "the live message" });
    assert.equal(live.history, false);
    assert.ok(live.seq > box.got[2].seq);
    await box.quiet(300);
    assert.deepEqual(values(box), [3, 4, 5, 6]);
    watch.close();
  });

  it("retained: false: no broker retained replay for that subscription", async () => {
    await h.mqttPublish(broker.port, "device/5/status", '{"on":true}', { qos: 1, retain: true });
    const s = await open();
    const none = inbox();
    const some = inbox();
    await s.subscribe("device/5/status", none, { retained: false });
    await none.quiet(500);
    const s2 = await open();
    await s2.subscribe("device/5/status", some);
    assert.equal((await some.next()).retain, true);
    await h.mqttPublish(broker.port, "device/5/status", "", { qos: 1, retain: true });
  });

  it("recovery across a dropped connection: since, 'recovery' recovered, exactly the missed messages, once, in order", async () => {
    const s = await open();
    const box = inbox();
    await s.subscribe("sensor/rec/#", box, { history: 10, qos: 1 });
    for (let i = 1; i <= 3; i++) await h.mqttPublish(broker.port, "sensor/rec/1", String(i), { qos: 1 });
    await h.eventually(() => box.got.length >= 3, { what: "three live messages" });
    const watch = await gatewayHas("sensor/rec/#", 4);
    const recovery = waitEvent(s, "recovery", () => true, 30000);
    proxy.cut({ hold: true });
    await waitEvent(s, "close");
    for (let i = 4; i <= 7; i++) await h.mqttPublish(broker.port, "sensor/rec/1", String(i), { qos: 1 });
    await watch.done();
    proxy.release();
    const [r] = await recovery;
    assert.deepEqual(r, { filter: "sensor/rec/#", recovered: true, replayed: 4, reason: null, url: proxy.url, epoch: s.epoch });
    await h.eventually(() => box.got.length >= 7, { what: "the missed messages" });
    await h.mqttPublish(broker.port, "sensor/rec/1", "8", { qos: 1 });
    await h.eventually(() => box.got.length >= 8, { what: "a live message after the replay" });
    await box.quiet(300);
    assert.deepEqual(values(box), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(box.got.map((m) => m.history), [false, false, false, true, true, true, true, false]);
    const seqs = box.got.map((m) => m.seq);
    assert.ok(seqs.every((x, i) => i === 0 || x > seqs[i - 1]), `seqs increase: ${seqs}`);
    watch.close();
  });

  it("max_rate: a burst is thinned to the newest message per interval; setMaxRate(null) lifts it", async () => {
    const s = await open();
    const box = inbox();
    await s.subscribe("sensor/rate/#", box, { maxRate: 2 });
    const burst = (from) => h.mqttPublishLines(broker.port, "sensor/rate/1", Array.from({ length: 20 }, (_, i) => String(from + i)));
    await burst(1);
    await h.eventually(() => box.got.some((m) => m.value === 20), { timeout: 3000, what: "the newest message of the burst" });
    await box.quiet(700);
    const got = values(box);
    assert.ok(got.length <= 5, `at most a few of 20 at 2/s: ${got}`);
    assert.ok(got.every((v, i) => i === 0 || v > got[i - 1]), `in order: ${got}`);
    await s.setMaxRate("sensor/rate/#", null);
    await burst(21);
    await h.eventually(() => box.got.some((m) => m.value === 40), { what: "the second burst" });
    await box.quiet(300);
    assert.deepEqual(values(box).filter((v) => v > 20), Array.from({ length: 20 }, (_, i) => 21 + i));
  });

  it("after a broker outage recovery fails ('gap') and history applies instead", async () => {
    const s = await open();
    const box = inbox();
    await s.subscribe("sensor/gap/#", box, { history: 5 });
    await h.mqttPublish(broker.port, "sensor/gap/1", "1", { qos: 1 });
    await box.next();
    const down = waitEvent(s, "broker", (b) => b === "down");
    await broker.stop();
    await down;
    const up = waitEvent(s, "broker", (b) => b === "up", 20000);
    await broker.start();
    await up;
    const recovery = waitEvent(s, "recovery", () => true, 30000);
    proxy.cut();
    const [r] = await recovery;
    assert.equal(r.recovered, false);
    assert.equal(r.reason, "gap");
    assert.equal(r.filter, "sensor/gap/#");
  });

  it("after a gateway restart recovery fails ('restarted'): a new epoch, history only", async () => {
    const s = await open(ALICE(), {}, gw.url);
    const box = inbox();
    await s.subscribe("sensor/restart2/#", box, { history: 5 });
    await h.mqttPublish(broker.port, "sensor/restart2/1", "1", { qos: 1 });
    await box.next();
    const before = s.epoch;
    const recovery = waitEvent(s, "recovery", () => true, 30000);
    await gw.stop();
    await gw.start();
    const [r] = await recovery;
    assert.notEqual(s.epoch, before, "a new epoch");
    assert.ok(readEpoch(s.epoch));
    assert.deepEqual({ ...r, replayed: 0 }, { filter: "sensor/restart2/#", recovered: false, replayed: 0, reason: "restarted", url: gw.url, epoch: s.epoch });
    await brokerUp(s);
    await h.mqttPublish(broker.port, "sensor/restart2/1", "2", { qos: 1 });
    await h.eventually(() => box.got.some((m) => m.value === 2), { what: "a live message after the restart" });
  });
});
