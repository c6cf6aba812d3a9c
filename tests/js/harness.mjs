// Test harness: runs a real mosquitto and a real mqgated on free loopback
// ports with generated configs, and speaks MQTT through mosquitto's own
// command-line clients. Shared by tests/js and tests/browser.
//
// Environment:
//   MQGATED    absolute path of the daemon [<repo>/mqgated]
//   MOSQUITTO  [/usr/sbin/mosquitto]; MOSQUITTO_PUB, MOSQUITTO_SUB [/usr/bin/…]
//   MQG_KEEP   set to keep the temporary directories (configs, logs)

import { spawn, execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, writeFileSync, rmSync, accessSync, constants } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, "../..");
export const WWW = path.join(REPO, "www");
export const MQGATED = process.env.MQGATED || path.join(REPO, "mqgated");
export const MOSQUITTO = process.env.MOSQUITTO || "/usr/sbin/mosquitto";
export const MOSQUITTO_PUB = process.env.MOSQUITTO_PUB || "/usr/bin/mosquitto_pub";
export const MOSQUITTO_SUB = process.env.MOSQUITTO_SUB || "/usr/bin/mosquitto_sub";

const children = new Set();
process.on("exit", () => {
  for (const c of children) {
    try { c.kill("SIGKILL"); } catch { /* gone */ }
  }
});

export function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Why the integration tests cannot run here, or null when they can. */
export function missingTools() {
  if (!path.isAbsolute(MQGATED)) return `MQGATED must be an absolute path (got ${MQGATED})`;
  for (const p of [MQGATED, MOSQUITTO, MOSQUITTO_PUB, MOSQUITTO_SUB]) {
    if (!executable(p)) return `${p} is missing or not executable`;
  }
  if (typeof WebSocket !== "function") return "no global WebSocket: run node with --experimental-websocket";
  return null;
}

export function tmpdir(prefix = "mqgate-test-") {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    path: d,
    file(name, text) {
      const p = path.join(d, name);
      writeFileSync(p, text);
      return p;
    },
    remove() {
      if (!process.env.MQG_KEEP) rmSync(d, { recursive: true, force: true });
    },
  };
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port, { timeout = 10000, proc } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (proc && proc.exitCode !== null) throw new Error(`process exited (${proc.exitCode}) before listening on ${port}`);
    const ok = await new Promise((resolve) => {
      const c = net.connect({ port, host: "127.0.0.1" });
      c.once("connect", () => { c.destroy(); resolve(true); });
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeout} ms`);
    await sleep(50);
  }
}

/** Resolves once nothing accepts TCP connections on 127.0.0.1:port. */
export async function waitForPortClosed(port, { timeout = 10000 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const open = await new Promise((resolve) => {
      const c = net.connect({ port, host: "127.0.0.1" });
      c.once("connect", () => { c.destroy(); resolve(true); });
      c.once("error", () => resolve(false));
    });
    if (!open) return;
    if (Date.now() > deadline) throw new Error(`127.0.0.1:${port} still listens after ${timeout} ms`);
    await sleep(50);
  }
}

function run(cmd, args, { name, env } = {}) {
  const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: env || process.env });
  children.add(proc);
  proc.log = "";
  const add = (d) => {
    proc.log += d.toString();
    if (proc.log.length > 1 << 20) proc.log = proc.log.slice(-(1 << 19));
    if (process.env.MQG_VERBOSE) process.stderr.write(`[${name}] ${d}`);
  };
  proc.stdout.on("data", add);
  proc.stderr.on("data", add);
  proc.exited = new Promise((resolve) => proc.on("exit", (code, signal) => {
    children.delete(proc);
    resolve({ code, signal });
  }));
  return proc;
}

async function stopProc(proc, { signal = "SIGTERM", timeout = 8000 } = {}) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return proc ? proc.exited : null;
  proc.kill(signal);
  const t = setTimeout(() => proc.kill("SIGKILL"), timeout);
  const r = await proc.exited;
  clearTimeout(t);
  return r;
}

// ---------------------------------------------------------------------------
// mosquitto

/**
 * Starts mosquitto on 127.0.0.1 (a free port unless given). Returns
 * {port, stop(), start(), kill(), log()}; start() restarts it on the same port.
 */
export async function startMosquitto({ port, dir } = {}) {
  port = port || (await freePort());
  const own = !dir;
  dir = dir || tmpdir("mqgate-mosq-");
  const conf = dir.file("mosquitto.conf", [
    `listener ${port} 127.0.0.1`,
    "allow_anonymous true",
    "persistence false",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "log_type notice",
    "",
  ].join("\n"));
  const m = {
    port,
    proc: null,
    async start() {
      m.proc = run(MOSQUITTO, ["-c", conf], { name: "mosquitto" });
      await waitForPort(port, { proc: m.proc });
    },
    async stop() {
      await stopProc(m.proc);
      await waitForPortClosed(port);
    },
    async kill() {
      await stopProc(m.proc, { signal: "SIGKILL" });
    },
    log() {
      return m.proc ? m.proc.log : "";
    },
    async close() {
      await m.stop();
      if (own) dir.remove();
    },
  };
  await m.start();
  return m;
}

/**
 * Publishes with mosquitto_pub. message: string, or a Buffer/Uint8Array
 * (sent byte for byte through stdin). Resolves when mosquitto_pub is done.
 */
export function mqttPublish(port, topic, message, { qos = 0, retain = false, props } = {}) {
  return new Promise((resolve, reject) => {
    const args = ["-h", "127.0.0.1", "-p", String(port), "-t", topic, "-q", String(qos)];
    if (retain) args.push("-r");
    // props: MQTT 5 properties as mosquitto_pub -D publish NAME VALUE...
    // ([["user-property", "k", "v"], ["content-type", "c"], ...])
    if (props) {
      args.push("-V", "mqttv5");
      for (const p of props) args.push("-D", "publish", ...p);
    }
    const binary = typeof message !== "string";
    if (binary) args.push("-s");
    else if (message === "") args.push("-n");
    else args.push("-m", message);
    const p = spawn(MOSQUITTO_PUB, args, { stdio: [binary ? "pipe" : "ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    if (binary) p.stdin.end(Buffer.from(message));
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`mosquitto_pub ${topic}: exit ${code}: ${err}`))));
  });
}

/**
 * Publishes each of lines (strings) to topic with one mosquitto_pub -l, as
 * fast as it goes. Resolves when mosquitto_pub is done.
 */
export function mqttPublishLines(port, topic, lines, { qos = 1 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(MOSQUITTO_PUB, ["-h", "127.0.0.1", "-p", String(port), "-t", topic, "-q", String(qos), "-l"],
      { stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`mosquitto_pub -l ${topic}: exit ${code}: ${err}`))));
    p.stdin.end(lines.join("\n") + "\n");
  });
}

/**
 * Subscribes with mosquitto_sub and resolves once the broker acknowledged the
 * subscription. Returns {messages: [{topic, payload: Buffer, retain}],
 * next(timeout): Promise<message>, stop()}.
 */
export async function mqttSubscribe(port, filter, { qos = 1 } = {}) {
  // -F: %t topic, %r retain, %x payload as hex; one line per message ("@" is
  // an escape in -F formats, hence the plain marker).
  const args = ["-h", "127.0.0.1", "-p", String(port), "-t", filter, "-q", String(qos), "-d", "-F", "MQGMSG %t %r %x"];
  // stdbuf: mosquitto_sub's stdout is block-buffered into a pipe otherwise.
  const p = spawn("stdbuf", ["-oL", MOSQUITTO_SUB, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(p);
  p.on("exit", () => children.delete(p));
  const messages = [];
  const waiters = [];
  let buf = "";
  let subscribed;
  const ready = new Promise((r) => (subscribed = r));
  p.stdout.on("data", (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (/SUBACK/.test(line)) subscribed();
      const m = /^MQGMSG (\S+) ([01]) ?([0-9a-f]*)$/.exec(line);
      if (!m) continue;
      const msg = { topic: m[1], retain: m[2] === "1", payload: Buffer.from(m[3], "hex") };
      messages.push(msg);
      const w = waiters.shift();
      if (w) w(msg);
    }
  });
  await Promise.race([ready, sleep(5000).then(() => { throw new Error("mosquitto_sub got no SUBACK"); })]);
  let taken = 0;
  return {
    messages,
    /** The next message not returned before (waits up to timeout ms). */
    next(timeout = 5000) {
      if (taken < messages.length) return Promise.resolve(messages[taken++]);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no MQTT message on ${filter} within ${timeout} ms`)), timeout);
        waiters.push((m) => {
          clearTimeout(t);
          taken++;
          resolve(m);
        });
      });
    },
    stop() {
      p.kill("SIGTERM");
    },
  };
}

// ---------------------------------------------------------------------------
// credentials

/** A crypt(3) SHA-512 ("$6$") hash of password, as the users file wants. */
export function cryptSha512(password) {
  const salt = randomBytes(9).toString("base64").replace(/[^A-Za-z0-9./]/g, ".");
  return execFileSync("openssl", ["passwd", "-6", "-salt", salt, "-stdin"], { input: password + "\n" })
    .toString().trim();
}

/** Lines of a users file: [{name, password, roles, totp?}] → text. */
export function usersFile(users) {
  return users.map((u) => [u.name, cryptSha512(u.password), u.roles.join(","), ...(u.totp ? [u.totp] : [])].join(":"))
    .join("\n") + "\n";
}

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

export function randomBase32(n = 32) {
  const b = randomBytes(n);
  let s = "";
  for (const x of b) s += B32[x & 31];
  return s;
}

function base32Decode(s) {
  const out = [];
  let acc = 0, bits = 0;
  for (const ch of s.replace(/=+$/, "").toUpperCase()) {
    const v = B32.indexOf(ch);
    if (v < 0) throw new Error("bad base32");
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP: SHA-1, 30 s steps, 6 digits. step offset lets a test use a fresh code. */
export function totp(secretBase32, { time = Date.now(), offset = 0 } = {}) {
  const counter = Math.floor(time / 1000 / 30) + offset;
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const h = createHmac("sha1", base32Decode(secretBase32)).update(msg).digest();
  const o = h[h.length - 1] & 0xf;
  const code = ((h.readUInt32BE(o) & 0x7fffffff) % 1000000).toString();
  return code.padStart(6, "0");
}

function b64url(x) {
  return Buffer.from(x).toString("base64url");
}

/** An HS256 JWT. claims: {sub, roles, exp (s since epoch), …}. */
export function jwtHS256(secret, claims) {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

// ---------------------------------------------------------------------------
// the gateway

export const JWT_SECRET = "test-secret-0123456789abcdef0123456789";

/** The role table the tests use unless they pass their own. */
export const ROLES = {
  viewer: { subscribe: ["sensor/#"] },
  operator: { subscribe: ["sensor/#", "device/+/status", "device/+/cmd"], publish: ["device/+/cmd"], max_qos: 2 },
  guest: { subscribe: ["sensor/#", "public/#"] },
};

/** Users the tests sign in as (passwords in clear here, hashed in the file). */
export const USERS = [
  { name: "alice", password: "alice-pw", roles: ["operator"] },
  { name: "victor", password: "victor-pw", roles: ["viewer"] },
  { name: "otto", password: "otto-pw", roles: ["operator"], totp: randomBase32() },
];

/**
 * Starts mqgated against the broker on brokerPort. opts: {anonymousRole,
 * staticDir, httpApi (the listener serves the HTTP API), roles, users,
 * port, limits, extra (merged into the config)}.
 * Returns {port, url, httpUrl, config, stop(), start(), log()}; start()
 * runs it again with the same config and port.
 */
export async function startGateway(brokerPort, opts = {}) {
  const dir = tmpdir("mqgate-gw-");
  const port = opts.port || (await freePort());
  const listener = { bind: "127.0.0.1", port, path: "/ws" };
  if (opts.staticDir) listener.static_dir = opts.staticDir;
  if (opts.httpApi) listener.http_api = true;
  const config = {
    listeners: [listener],
    broker: {
      uris: [`tcp://127.0.0.1:${brokerPort}`],
      client_id: `mqgate-test-${port}`,
      mqtt_version: 5,
      keepalive_s: 5,
      reconnect_min_s: 1,
      reconnect_max_s: 2,
    },
    auth: {
      users_file: dir.file("users", usersFile(opts.users || USERS)),
      jwt: { alg: "HS256", secret_file: dir.file("jwt.secret", JWT_SECRET) },
      anonymous_role: opts.anonymousRole ?? null,
      timeout_s: 10,
    },
    roles: opts.roles || ROLES,
    limits: { ping_interval_s: 5, ...(opts.limits || {}) },
    log: { level: process.env.MQG_LOG_LEVEL || "debug" },
    ...(opts.extra || {}),
  };
  const file = dir.file("mqgate.json", JSON.stringify(config, null, 2));
  const env = { ...process.env };
  delete env.http_proxy;
  delete env.https_proxy;
  const g = {
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    config,
    file,
    proc: null,
    logs: "",
    async start() {
      g.proc = run(MQGATED, ["-c", file], { name: "mqgated", env });
      try {
        await waitForPort(port, { proc: g.proc });
      } catch (e) {
        e.message += `\n--- mqgated log ---\n${g.proc.log}`;
        throw e;
      }
    },
    /** SIGTERM (sessions get 1001); resolves {code, signal}. */
    async stop() {
      const r = await stopProc(g.proc);
      if (g.proc) g.logs += g.proc.log;
      return r;
    },
    /** SIGKILL: no close frames, sockets reset; resolves {code, signal}. */
    async kill() {
      const r = await stopProc(g.proc, { signal: "SIGKILL" });
      if (g.proc) g.logs += g.proc.log;
      return r;
    },
    log() {
      return g.logs + (g.proc ? g.proc.log : "");
    },
    async close() {
      await g.stop();
      dir.remove();
    },
  };
  await g.start();
  return g;
}

/** Polls fn until it returns a truthy value (or throws after timeout ms). */
export async function eventually(fn, { timeout = 5000, interval = 25, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await sleep(interval);
  }
}

export { existsSync };

// ---------------------------------------------------------------------------
// network failures and gateway features

/**
 * A TCP proxy to 127.0.0.1:targetPort on a free port, for a network failure
 * between a client and a gateway that keeps running. Returns {port, url,
 * httpUrl, cut({hold}), release(), close()}: cut() breaks every connection
 * through it; with hold: true new connections then wait (accepted, nothing
 * forwarded) until release().
 */
export async function startProxy(targetPort) {
  const pairs = new Set();
  let held = null;
  const forward = (c) => {
    const u = net.connect({ port: targetPort, host: "127.0.0.1" });
    const pair = { c, u };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      c.destroy();
      u.destroy();
    };
    for (const s of [c, u]) {
      s.on("error", end);
      s.on("close", end);
    }
    c.pipe(u);
    u.pipe(c);
  };
  const server = net.createServer((c) => {
    if (held) {
      c.pause();
      c.on("error", () => {});
      held.push(c);
    } else forward(c);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    cut({ hold = false } = {}) {
      if (hold && !held) held = [];
      for (const { c, u } of [...pairs]) {
        c.resetAndDestroy();
        u.destroy();
      }
    },
    release() {
      const waiting = held || [];
      held = null;
      for (const c of waiting) if (!c.destroyed) forward(c);
    },
    connections() {
      return pairs.size;
    },
    close() {
      this.cut();
      for (const c of held || []) c.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

/**
 * The first frame (hello) a gateway on 127.0.0.1:port sends, read over a
 * plain socket: needs no WebSocket implementation in node.
 */
export function readHello(port, { path: wsPath = "/ws", timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const c = net.connect({ port, host: "127.0.0.1" });
    let buf = Buffer.alloc(0);
    let head = true;
    const t = setTimeout(() => done(new Error(`no hello from 127.0.0.1:${port} within ${timeout} ms`)), timeout);
    const done = (err, v) => {
      clearTimeout(t);
      c.destroy();
      err ? reject(err) : resolve(v);
    };
    c.on("error", (e) => done(e));
    c.on("connect", () => c.write([
      `GET ${wsPath} HTTP/1.1`, `Host: 127.0.0.1:${port}`, "Upgrade: websocket", "Connection: Upgrade",
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`, "Sec-WebSocket-Version: 13",
      "Sec-WebSocket-Protocol: mqgate.v1", "", ""].join("\r\n")));
    c.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (head) {
        const i = buf.indexOf("\r\n\r\n");
        if (i < 0) return;
        const status = buf.subarray(0, buf.indexOf("\r\n")).toString();
        if (!/^HTTP\/1\.1 101/.test(status)) return done(new Error(`handshake refused: ${status}`));
        buf = buf.subarray(i + 4);
        head = false;
      }
      // one unmasked server frame: FIN + text, 7/16/64-bit length
      if (buf.length < 2) return;
      let len = buf[1] & 0x7f, off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      if (buf.length < off + len) return;
      try {
        done(null, JSON.parse(buf.subarray(off, off + len).toString()));
      } catch (e) {
        done(e);
      }
    });
  });
}

/**
 * Why the tests of stream state (protocol.md, "Extensions of version 1":
 * epoch/seq/ts, History, max_rate) cannot run against this mqgated, or null
 * when its hello carries an epoch. Starts and stops a broker and a gateway.
 */
export async function noStreamPositions() {
  const missing = missingTools();
  if (missing && !missing.startsWith("no global WebSocket")) return missing;
  const broker = await startMosquitto();
  let gw = null;
  try {
    gw = await startGateway(broker.port);
    const hello = await readHello(gw.port);
    return typeof hello.epoch === "string" && hello.epoch !== ""
      ? null
      : "this mqgated's hello carries no epoch: no stream positions or history yet (issue 12, daemon side)";
  } finally {
    if (gw) await gw.close();
    await broker.close();
  }
}

/** The history section tests give a gateway (config.md, "Keys added to version 1"). */
export const HISTORY = { filters: ["sensor/#"], qos: 1, messages: 100, max_age_s: 3600 };

/**
 * An MQTT 5 device (python3-paho-mqtt) answering every request on filter:
 * to its response topic, with its correlation data, the payload
 * {"echo": <the request's payload as text>} and the user property
 * ["handled", "yes"]. Resolves { close() } once subscribed.
 */
export async function startResponder(port, filter) {
  const script = `
import json, sys, paho.mqtt.client as m
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
def on_message(c, u, msg):
    p = Properties(PacketTypes.PUBLISH)
    p.CorrelationData = msg.properties.CorrelationData
    p.UserProperty = ("handled", "yes")
    c.publish(msg.properties.ResponseTopic,
              json.dumps({"echo": msg.payload.decode("utf-8", "replace")}), 1, properties=p)
c = m.Client("responder", protocol=m.MQTTv5)
c.on_message = on_message
c.on_subscribe = lambda *a: print("ready", flush=True)
c.connect("127.0.0.1", int(sys.argv[1]))
c.subscribe(sys.argv[2], 1)
c.loop_forever()
`;
  const p = spawn(process.env.PYTHON3 || "/usr/bin/python3", ["-c", script, String(port), filter],
    { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("the responder did not subscribe")), 10000);
    p.stdout.on("data", (d) => { if (String(d).includes("ready")) { clearTimeout(t); resolve(); } });
    p.on("exit", (code) => { clearTimeout(t); reject(new Error(`responder exited ${code}`)); });
  });
  return { close: () => p.kill("SIGTERM") };
}
