// www/mqgate.js with several gateways: two real mqgated (history, the HTTP
// API) on one real mosquitto, a client given both URLs. One gateway is
// taken out (SIGTERM: graceful drain, 1001; SIGKILL: sockets reset) while a
// device publishes a stream through the broker and the client publishes its
// own: the client must be on the other gateway within seconds, its
// subscription restored with a history backfill, the application told
// (close, "gateway", "recovery" with the gateway and its epoch), and every
// publish the client got an ok for at the broker; the others rejected
// "disconnected" (sent, outcome unknown) or sent once to the other gateway
// (not sent before the close).
//   MQGATED=/abs/path/mqgated node --experimental-websocket --test tests/js/failover.test.mjs

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { MqGate, readEpoch } from "../../www/mqgate.js";
import * as h from "./harness.mjs";

const noStream = h.missingTools() || (await h.noStreamPositions());
const FAST = { backoff: { min: 200, max: 2000, jitter: 0.5 } };
// Seconds within which the sessions of a gateway taken out are on another.
const MOVE_MS = 5000;

function tok(sub, roles, ttl = 600) {
  return { token: h.jwtHS256(h.JWT_SECRET, { sub, roles, exp: Math.floor(Date.now() / 1000) + ttl }) };
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

// A device publishing 1, 2, 3, ... to topic through the broker (QoS 1,
// one mosquitto_pub each) until stop(); resolves the values published.
function deviceStream(port, topic, everyMs = 30) {
  let running = true;
  const sent = [];
  const done = (async () => {
    for (let n = 1; running; n++) {
      await h.mqttPublish(port, topic, String(n), { qos: 1 });
      sent.push(n);
      await h.sleep(everyMs);
    }
    return sent;
  })();
  return { sent, stop: () => { running = false; return done; } };
}

// The client publishing {n} at QoS 1 every everyMs without waiting for the
// answers, as a dashboard's operator would; each outcome recorded.
// fire() publishes one more at once.
function clientStream(gw, topic, everyMs = 20) {
  const outcomes = [];
  const fire = () => {
    const o = { n: outcomes.length + 1, state: "pending", code: null, at: Date.now() };
    outcomes.push(o);
    gw.publish(topic, { n: o.n }, { qos: 1 }).then(
      () => { o.state = "ok"; },
      (e) => { o.state = "failed"; o.code = e.code; },
    );
  };
  const timer = setInterval(fire, everyMs);
  return { outcomes, fire, stop: () => clearInterval(timer) };
}

describe("failover between two real gateways (one mosquitto)", { skip: noStream || false, timeout: 180000 }, () => {
  let broker, gws;
  const sessions = [];

  before(async () => {
    broker = await h.startMosquitto();
    gws = [];
    for (let i = 0; i < 2; i++) gws.push(await h.startGateway(broker.port, { httpApi: true, extra: { history: h.HISTORY } }));
  });

  after(async () => {
    for (const s of sessions) s.close();
    for (const g of gws || []) await g.close();
    if (broker) await broker.close();
  });

  // Both gateways connected to the broker (a publish before would be lost).
  const brokerUp = () => Promise.all(gws.map((g) => h.eventually(async () => (await fetch(`${g.httpUrl}/healthz`)).status === 200,
    { timeout: 15000, interval: 100, what: `gateway ${g.port} connected to the broker` })));

  // The scenario: out is "stop" (SIGTERM) or "kill" (SIGKILL) of the
  // gateway the client is on.
  async function scenario(t, opts) {
    const [a] = gws;
    const streams = [];
    try {
      await brokerUp();
      await failover(t, opts, streams);
    } finally {
      for (const s of streams) s.stop();
      // Gateway A back for the next test, with a new epoch.
      if (a.proc.exitCode !== null || a.proc.signalCode !== null) await a.start();
    }
  }

  async function failover(t, { transport, out, tag }, streams) {
    const [a, b] = gws;
    const topic = `sensor/${tag}/1`;
    const cmd = `device/${tag}/cmd`;
    const atBroker = await h.mqttSubscribe(broker.port, cmd, { qos: 1 });
    streams.push(atBroker);
    const c = new MqGate([a.url, b.url], tok("alice", ["operator"]), { ...FAST, transport });
    sessions.push(c);
    streams.push({ stop: () => c.close() });
    const told = { close: [], gateway: [], recovery: [] };
    for (const ev of Object.keys(told)) c.on(ev, (d) => told[ev].push({ ...d, t: Date.now() }));
    await c.connect();
    assert.equal(c.url, a.url, "the first URL first");
    assert.equal(c.transport, transport);

    const got = [];
    await c.subscribe(`sensor/${tag}/#`, (m) => got.push({ v: m.value, history: m.history, epoch: c.epoch, t: Date.now() }), { qos: 1, history: 100 });
    const epochA = c.epoch; // over HTTP, told by the first stream
    assert.ok(readEpoch(epochA));
    const device = deviceStream(broker.port, topic);
    const pubs = clientStream(c, cmd);
    streams.push(device, pubs);
    await h.eventually(() => got.length >= 10, { timeout: 10000, what: "the device's stream through gateway A" });
    await h.eventually(() => pubs.outcomes.filter((o) => o.state === "ok").length >= 10, { what: "acked publishes through gateway A" });

    // Take gateway A out.
    const t0 = Date.now();
    const moved = waitEvent(c, "gateway", () => true, 20000);
    const recovered = waitEvent(c, "recovery", () => true, 20000);
    const exited = out === "stop" ? a.stop() : a.kill();
    for (let i = 0; i < 30; i++) pubs.fire(); // a burst in flight at the signal
    const [move] = await moved;
    const moveMs = Date.now() - t0;
    const [rec] = await recovered;
    const exit = await exited;
    const exitMs = Date.now() - t0;
    t.diagnostic(`${transport}, ${out === "stop" ? "SIGTERM" : "SIGKILL"}: on gateway B after ${moveMs} ms; A exited after ${exitMs} ms (${JSON.stringify(exit)})`);

    // On the other gateway within seconds, the application told.
    assert.ok(moveMs < MOVE_MS, `moved after ${moveMs} ms`);
    assert.equal(c.url, b.url);
    assert.notEqual(c.epoch, epochA, "gateway B has its own epoch");
    // Over HTTP the epoch comes with the first stream, after the session is usable.
    assert.deepEqual(move, { url: b.url, previous: a.url, epoch: transport === "sse" ? null : c.epoch });
    const close = told.close[0];
    assert.equal(close.url, a.url);
    if (out === "stop") {
      assert.deepEqual(exit, { code: 0, signal: null });
      // A draining gateway closes with 1001. On a loaded machine the close
      // frame can be lost to a reset (the client's burst still unread by
      // the gateway when it closes): 1006, and the client tries A again
      // (refused) before B.
      assert.ok(close.code === 1001 || close.code === 1006, `close code ${close.code}`);
      if (close.code === 1001) assert.equal(close.nextUrl, b.url, "1001: straight to the other gateway");
      else t.diagnostic(`the close came as ${close.code}: ${JSON.stringify(told.close.map((d) => [d.code, d.url, d.nextUrl]))}`);
    }
    // The subscription restored, from history: another epoch's position
    // means nothing to B.
    assert.equal(rec.filter, `sensor/${tag}/#`);
    assert.equal(rec.recovered, false);
    assert.equal(rec.reason, "failover");
    assert.equal(rec.url, b.url);
    assert.equal(rec.epoch, c.epoch);
    assert.ok(rec.replayed > 0, `history backfill: ${rec.replayed} replayed`);
    assert.equal(c.subscriptions().length, 1);

    // Live data again through B.
    const onB = () => got.filter((m) => m.epoch === c.epoch);
    await h.eventually(() => onB().some((m) => m.history === false), { timeout: 10000, what: "live messages through gateway B" });
    const liveMs = onB().find((m) => m.history === false).t - t0;
    t.diagnostic(`first live message through B ${liveMs} ms after the signal; ${rec.replayed} replayed`);
    assert.ok(liveMs < MOVE_MS + 2000, `live again after ${liveMs} ms`);
    // The replay came first, flagged, then live ones.
    const firstLive = onB().findIndex((m) => m.history === false);
    assert.ok(onB().slice(0, firstLive).every((m) => m.history === true));
    assert.equal(onB().filter((m) => m.history).length, rec.replayed);

    await h.sleep(300);
    pubs.stop();
    const sent = await device.stop();
    // Every device message reached the application, live or from the backfill.
    await h.eventually(() => got.some((m) => m.v === sent.at(-1)), { timeout: 10000, what: "the device's last message" });
    const seen = new Set(got.map((m) => m.v));
    const missing = sent.filter((n) => !seen.has(n));
    assert.deepEqual(missing, [], "device messages missed across the failover");

    // Every publish settled: acked ones at the broker, the others rejected
    // "disconnected" (in flight at the close).
    await h.eventually(() => pubs.outcomes.every((o) => o.state !== "pending"), { timeout: 15000, what: "every publish answered" });
    const acked = pubs.outcomes.filter((o) => o.state === "ok").map((o) => o.n);
    const failed = pubs.outcomes.filter((o) => o.state === "failed");
    assert.deepEqual([...new Set(failed.map((o) => o.code))].filter((x) => x !== "disconnected"), [], "failures other than disconnected");
    const atB = pubs.outcomes.filter((o) => o.state === "ok" && o.at >= t0).length;
    assert.ok(atB > 0, "publishes made during and after the failover went through B");
    const arrived = () => new Set(atBroker.messages.map((m) => JSON.parse(m.payload.toString()).n));
    await h.eventually(() => acked.every((n) => arrived().has(n)), { timeout: 10000, what: "every acked publish at the broker" })
      .catch(() => assert.deepEqual(acked.filter((n) => !arrived().has(n)), [], "acked publishes not at the broker"));
    t.diagnostic(`${pubs.outcomes.length} publishes: ${acked.length} acked (all at the broker), ${failed.length} rejected "disconnected"` +
      ` (${failed.filter((o) => arrived().has(o.n)).length} of them reached it anyway); ${sent.length} device messages, none missed`);
  }

  it("SIGTERM (drain) over WebSocket: on the other gateway within seconds, subscription and history restored, no acked publish lost", async (t) => {
    await scenario(t, { transport: "websocket", out: "stop", tag: "drainws" });
  });

  it("SIGTERM (drain) over the HTTP API (SSE + POST): the same", async (t) => {
    await scenario(t, { transport: "sse", out: "stop", tag: "drainsse" });
  });

  it("SIGKILL over WebSocket: the same without a close frame", async (t) => {
    await scenario(t, { transport: "websocket", out: "kill", tag: "killws" });
  });

  it("a gateway that is down at connect(): the next URL, and back to the first only when the second fails", async () => {
    const [a, b] = gws;
    await a.kill();
    try {
      const c = new MqGate([a.url, b.url], tok("alice", ["operator"]), { ...FAST, transport: "websocket" });
      sessions.push(c);
      const closes = [];
      c.on("close", (d) => closes.push(d));
      const t0 = Date.now();
      await c.connect();
      assert.equal(c.url, b.url);
      assert.ok(Date.now() - t0 < 3000, `connected after ${Date.now() - t0} ms`);
      assert.deepEqual(closes.map((d) => [d.url, d.nextUrl]), [[a.url, b.url]]);
      c.close();
    } finally {
      await a.start();
    }
  });
});
