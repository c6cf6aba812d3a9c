// The dashboard (www/) served by the real mqgated from its static_dir,
// against a real mosquitto, in every browser of drivers.mjs: Debian's
// Chromium (playwright-core) and Debian's Firefox ESR (puppeteer-core over
// WebDriver BiDi). One list of scenarios; each runs in each browser.
//
//   cd tests/browser && npm ci
//   MQGATED=/abs/path/mqgated node --test tests/browser/
//
// Environment: MQGATED (absolute), CHROMIUM [/usr/bin/chromium], FIREFOX
// [/usr/bin/firefox-esr], BROWSERS (e.g. "firefox": only those); see
// tests/js/harness.mjs for the rest. Screenshots go to
// tests/browser/artifacts/BROWSER/. No browser is ever downloaded.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as h from "../js/harness.mjs";
import { DRIVERS } from "./drivers.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = path.join(HERE, "artifacts");

// The harness wants a global WebSocket only for the node client tests.
const missing = h.missingTools();
const noTools = missing && !missing.startsWith("no global WebSocket") ? missing : null;
const STEP = { timeout: 45000 };
// The stream-state tests need a daemon whose hello carries an epoch.
const noStreamDaemon = noTools || (await h.noStreamPositions());

async function shot(page, name) {
  const dir = path.join(ARTIFACTS, page.tag);
  mkdirSync(dir, { recursive: true });
  await page.screenshot(path.join(dir, `${name}.png`));
}

/** Text of the value cell of a topic's row ("" when there is no row yet). */
function rowValue(page, topic) {
  return page.evaluate((t) => {
    const tr = [...document.querySelectorAll("#topic-rows tr")].find((r) => r.dataset.topic === t);
    return tr ? tr.cells[1].textContent : "";
  }, topic);
}

/** Launches the browser of driver drv; its page is tagged for screenshots. */
async function launchIn(drv) {
  const browser = await drv.launch();
  browser.page.tag = drv.name.split(" ")[0].toLowerCase();
  browser.page.onConsole((type, text) => {
    if (process.env.MQG_VERBOSE) process.stderr.write(`[${drv.name} ${type}] ${text}\n`);
  });
  return browser;
}

/**
 * Mosquitto, mqgated serving www/ (startGateway options merged in) and the
 * browser of drv for the tests of one describe block: {broker, gw,
 * browser, page} once its before hook ran, stopped by its after hook.
 */
function dashboardEnv(drv, gatewayOptions = {}) {
  const env = {};
  before(async () => {
    env.broker = await h.startMosquitto();
    env.gw = await h.startGateway(env.broker.port, { staticDir: h.WWW, ...gatewayOptions });
    env.browser = await launchIn(drv);
    env.page = env.browser.page;
  });
  after(async () => {
    if (env.browser) await env.browser.close();
    if (env.gw) await env.gw.close();
    if (env.broker) await env.broker.close();
  });
  return env;
}

// Records, for each row of the topic table, what its first paint showed
// (age and whether the value came from history): installed before the page
// loads.
function recordFirstPaint() {
  window.__firstPaint = {};
  document.addEventListener("DOMContentLoaded", () => {
    new MutationObserver((mutations) => {
      for (const m of mutations) {
        for (const n of m.addedNodes) {
          if (n.nodeType === 1 && n.matches("#topic-rows tr") && !(n.dataset.topic in window.__firstPaint)) {
            window.__firstPaint[n.dataset.topic] = { age: n.cells[2].textContent, history: n.dataset.history };
          }
        }
      }
    }).observe(document.body, { childList: true, subtree: true });
  });
}

/** A chart's points as [t, v] (v null for a gap), oldest first. */
function chartPoints(page, topic, field) {
  return page.evaluate(([key]) => {
    const s = window.mqgateApp.series.get(key);
    if (!s) return [];
    const out = [];
    for (let k = 0; k < s.len; k++) {
      const i = (s.start + k) % s.t.length;
      out.push([s.t[i], Number.isNaN(s.v[i]) ? null : s.v[i]]);
    }
    return out;
  }, [`${topic}\u0000${field}`]);
}

async function signIn(page, user = "alice", password = "alice-pw") {
  await page.waitForSelector("#signin:not([hidden])");
  await page.fill("#user", user);
  await page.fill("#password", password);
  await page.click("#signin-submit");
  await page.waitForSelector("#main:not([hidden])");
}

// A TCP server that records every connection and every byte sent to it:
// the stand-in for an attacker's wss:// server.
async function recorder() {
  const rec = { connections: 0, bytes: "", port: 0 };
  const server = net.createServer((c) => {
    rec.connections++;
    c.on("data", (d) => (rec.bytes += d.toString("latin1")));
    c.on("error", () => {});
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  rec.port = server.address().port;
  rec.close = () => new Promise((r) => server.close(r));
  return rec;
}

// Replaces the page's WebSocket, before anything of the page runs, with one
// that can never be opened (as behind a proxy that breaks upgrades), and
// counts the attempts.
function blockWebSocket() {
  window.__wsTries = 0;
  window.WebSocket = class BlockedWebSocket {
    constructor(url) {
      window.__wsTries++;
      this.url = url;
      this.readyState = 0;
      setTimeout(() => {
        this.readyState = 3;
        if (this.onerror) this.onerror(new Event("error"));
        if (this.onclose) this.onclose({ code: 1006, reason: "", wasClean: false });
      }, 10);
    }
    send() {
      throw new DOMException("not open", "InvalidStateError");
    }
    close() {}
  };
}

/** Every scenario, in the browser of driver drv. */
function scenarios(drv) {
  const skip = drv.skip || noTools;
  const noStream = drv.skip || noStreamDaemon;
  const withDashboard = (gatewayOptions) => dashboardEnv(drv, gatewayOptions);
  const launch = () => launchIn(drv);

  describe(`dashboard in ${drv.name} against mqgated + mosquitto`, { skip: skip || false }, () => {
    let broker, gw, browser, page;

    before(async () => {
      broker = await h.startMosquitto();
      gw = await h.startGateway(broker.port, { staticDir: h.WWW });
      browser = await launch();
      page = browser.page;
    });

    after(async () => {
      if (page && !page.isClosed()) await shot(page, "99-final").catch(() => {});
      if (browser) await browser.close();
      if (gw) await gw.close();
      if (broker) await broker.close();
    });

    it("serves the dashboard from static_dir with the right content types", STEP, async () => {
      const types = {};
      page.onResponse((url, status, headers) => {
        types[new URL(url).pathname] = headers["content-type"] || "";
      });
      const resp = await page.goto(`${gw.httpUrl}/?sub=${encodeURIComponent("sensor/#,device/+/status@1")}`);
      assert.equal(resp.status(), 200);
      await page.waitForSelector("#signin:not([hidden])");
      assert.match(types["/"] || "", /^text\/html/);
      assert.match(types["/app.js"] || "", /^(text|application)\/javascript/);
      assert.match(types["/mqgate.js"] || "", /^(text|application)\/javascript/);
      assert.match(types["/style.css"] || "", /^text\/css/);
      // every form control has an accessible name
      const unlabelled = await page.evaluate(() =>
        [...document.querySelectorAll("input, select, textarea")]
          .filter((el) => el.type !== "hidden" && el.labels.length === 0 && !el.getAttribute("aria-label"))
          .map((el) => el.id || el.name));
      assert.deepEqual(unlabelled, []);
      await shot(page, "01-signin");
    });

    it("a wrong password is refused, the right one signs in", STEP, async () => {
      await page.fill("#user", "alice");
      await page.fill("#password", "wrong");
      await page.click("#signin-submit");
      await page.waitForFunction(() => /failed/i.test(document.getElementById("signin-message").textContent));
      assert.equal(await page.isHidden("#main"), true);
      await shot(page, "02-signin-refused");
      await page.fill("#user", "alice");
      await page.fill("#password", "alice-pw");
      await page.click("#signin-submit");
      await page.waitForSelector("#main:not([hidden])");
      assert.match(await page.textContent("#identity"), /alice/);
      await page.waitForSelector('#sub-list li[data-filter="sensor/#"][data-status="ok"]');
      await page.waitForSelector('#sub-list li[data-filter="device/+/status"][data-status="ok"]');
      await page.waitForFunction(() => document.body.dataset.broker === "up");
      assert.equal(await page.isHidden("#broker-banner"), true);
    });

    it("shows a simulated sensor's value change, with a chart per numeric field", STEP, async () => {
      await h.mqttPublish(broker.port, "sensor/1/env", '{"t":21.5,"h":40}');
      await page.waitForFunction(() => /21\.5/.test(document.querySelector('#topic-rows tr[data-topic="sensor/1/env"] td.value')?.textContent || ""));
      for (let i = 1; i <= 10; i++) {
        await h.mqttPublish(broker.port, "sensor/1/env", JSON.stringify({ t: 21.5 + i / 2, h: 40 + i }));
      }
      await h.mqttPublish(broker.port, "sensor/2/temp", "18.25");
      await h.mqttPublish(broker.port, "sensor/3/state", "open");
      await page.waitForFunction(() => /26/.test(document.querySelector('#topic-rows tr[data-topic="sensor/1/env"] td.value')?.textContent || ""));
      assert.match(await rowValue(page, "sensor/1/env"), /"t":26/);
      await page.waitForFunction(() => document.querySelector('#topic-rows tr[data-topic="sensor/3/state"]'));
      assert.equal(await rowValue(page, "sensor/3/state"), "open");
      assert.equal(await rowValue(page, "sensor/2/temp"), "18.25");
      // charts: sensor/1/env · t, sensor/1/env · h, sensor/2/temp
      await page.waitForSelector('.chart[data-topic="sensor/1/env"][data-field="t"]');
      await page.waitForSelector('.chart[data-topic="sensor/1/env"][data-field="h"]');
      await page.waitForSelector('.chart[data-topic="sensor/2/temp"][data-field=""]');
      await page.waitForFunction(() => document.querySelector('.chart[data-topic="sensor/1/env"][data-field="t"] .chart-last').textContent === "26.5");
      const painted = await page.evaluate(() => {
        const c = document.querySelector('.chart[data-topic="sensor/1/env"][data-field="t"] canvas');
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
      });
      assert.ok(painted > 50, `the chart has a line (${painted} pixels)`);
      await shot(page, "03-values");
    });

    it("stays responsive under a burst of messages (rendering per frame)", STEP, async (t) => {
      const before = await page.evaluate(() => +document.getElementById("msg-total").dataset.value);
      // Ten topics at once, 300 messages each: mosquitto_pub -l sends one
      // message per stdin line, as fast as it goes.
      const { spawn } = await import("node:child_process");
      await Promise.all(Array.from({ length: 10 }, (_, n) => new Promise((resolve, reject) => {
        const lines = [];
        for (let i = 0; i < 300; i++) lines.push(JSON.stringify({ t: 20 + n + Math.sin(i / 20) * 5 }));
        const p = spawn(h.MOSQUITTO_PUB, ["-h", "127.0.0.1", "-p", String(broker.port), "-t", `sensor/burst/${n}`, "-l"],
          { stdio: ["pipe", "ignore", "inherit"] });
        p.on("exit", (c) => (c === 0 ? resolve() : reject(new Error(`mosquitto_pub -l: ${c}`))));
        p.stdin.end(lines.join("\n") + "\n");
      })));
      await page.waitForFunction((n) => +document.getElementById("msg-total").dataset.value >= n + 3000, before, { timeout: 30000 });
      // the page answers at once, and it kept drawing frames
      const t0 = Date.now();
      await page.evaluate(() => 1);
      assert.ok(Date.now() - t0 < 1000, "page responsive");
      await page.waitForFunction(() => +document.getElementById("fps").dataset.value > 5, null, { timeout: 5000 });
      const peak = await page.evaluate(() => window.mqgateApp.peak);
      t.diagnostic(`burst of 10 x 300: peak ${peak.mps} msg/s, lowest ${peak.minFpsUnderLoad} fps while messages arrived`);
      assert.equal(await page.count('#topic-rows tr[data-topic^="sensor/burst/"]'), 10);
    });

    it("publishes a command and shows the ack", STEP, async () => {
      const sub = await h.mqttSubscribe(broker.port, "device/+/cmd");
      await page.fill("#pub-topic", "device/7/cmd");
      await page.fill("#pub-body", '{"on": true}');
      await page.selectOption("#pub-qos", "1");
      await page.click("#pub-send");
      await page.waitForSelector('#pub-result[data-result="ok"]');
      assert.match(await page.textContent("#pub-result"), /acknowledged/);
      const m = await sub.next();
      assert.equal(m.topic, "device/7/cmd");
      assert.equal(m.payload.toString(), '{"on":true}');
      sub.stop();
      await shot(page, "04-publish-ack");
    });

    it("shows a forbidden publish refused with its code", STEP, async () => {
      await page.fill("#pub-topic", "sensor/1/env");
      await page.fill("#pub-body", "1");
      await page.click("#pub-send");
      await page.waitForSelector('#pub-result[data-result="error"]');
      assert.equal(await page.getAttribute("#pub-result", "data-code"), "forbidden");
      assert.match(await page.textContent("#pub-result"), /forbidden/);
      // bad JSON is caught before sending
      await page.fill("#pub-topic", "device/7/cmd");
      await page.fill("#pub-body", "{nope");
      await page.click("#pub-send");
      await page.waitForSelector('#pub-result[data-code="bad_json"]');
      await page.fill("#pub-body", '{"on": false}');
      await shot(page, "05-publish-forbidden");
    });

    it("sends a request and shows the device's answer, then a timeout", STEP, async () => {
      const dev = await h.startResponder(broker.port, "device/+/cmd");
      try {
        await page.fill("#req-topic", "device/7/cmd");
        await page.fill("#req-body", '{"get": "firmware"}');
        await page.fill("#req-timeout", "5000");
        await page.click("#req-send");
        await page.waitForSelector('#req-result[data-result="ok"]');
        assert.match(await page.textContent("#req-result"), /answered/);
        const answer = await page.textContent("#req-answer");
        assert.match(answer, /"echo": "\{\\"get\\":\\"firmware\\"\}"/);
        assert.match(answer, /handled: yes/);
        await shot(page, "05b-request-answer");
      } finally {
        dev.close();
      }
      await page.fill("#req-topic", "device/8/cmd");
      await page.fill("#req-timeout", "300");
      await page.click("#req-send");
      await page.waitForSelector('#req-result[data-code="timeout"]');
      assert.match(await page.textContent("#req-result"), /no answer within 300 ms/);
      assert.equal(await page.isHidden("#req-answer"), true);
    });

    it("shows the broker-down banner when mosquitto stops", STEP, async () => {
      await broker.stop();
      await page.waitForSelector("#broker-banner:not([hidden])", { timeout: 20000 });
      assert.match(await page.textContent("#broker-banner"), /broker down/i);
      assert.equal(await page.getAttribute("#broker-banner", "role"), "alert");
      await shot(page, "06-broker-down");
    });

    it("recovers when mosquitto is back: banner gone, values flow again", STEP, async () => {
      await broker.start();
      await page.waitForSelector("#broker-banner", { state: "hidden", timeout: 30000 });
      await page.waitForFunction(() => document.body.dataset.broker === "up");
      await h.eventually(async () => {
        await h.mqttPublish(broker.port, "sensor/1/env", '{"t":30.5,"h":55}');
        return /30\.5/.test(await rowValue(page, "sensor/1/env"));
      }, { timeout: 15000, interval: 500, what: "a value after the broker came back" });
      await shot(page, "07-recovered");
    });

    it("reconnects after a gateway restart", STEP, async () => {
      await gw.stop();
      await page.waitForFunction(() => document.getElementById("conn-status").dataset.state !== "authenticated");
      await gw.start();
      await page.waitForFunction(() => document.getElementById("conn-status").dataset.state === "authenticated", null, { timeout: 30000 });
      await h.eventually(async () => {
        await h.mqttPublish(broker.port, "sensor/1/env", '{"t":31.5,"h":56}');
        return /31\.5/.test(await rowValue(page, "sensor/1/env"));
      }, { timeout: 15000, interval: 500, what: "a value after the gateway restart" });
    });

    it("fits a phone-size screen", STEP, async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(300);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scrolling (${overflow} px too wide)`);
      await shot(page, "08-phone");
      await page.setViewportSize({ width: 1280, height: 900 });
    });

    it("signs out, then signs in with a token; a filter the role may not have is marked", STEP, async () => {
      await page.click("#sign-out");
      await page.waitForSelector("#signin:not([hidden])");
      assert.equal(await page.isHidden("#main"), true);
      await page.check('input[name="method"][value="token"]');
      const token = h.jwtHS256(h.JWT_SECRET, { sub: "tina", roles: ["viewer"], exp: Math.floor(Date.now() / 1000) + 600 });
      await page.fill("#token", token);
      await page.click("#signin-submit");
      await page.waitForSelector("#main:not([hidden])");
      assert.match(await page.textContent("#identity"), /tina \(viewer\)/);
      // the filters saved from alice's session come back; a viewer may not hold device/+/status
      await page.waitForSelector('#sub-list li[data-filter="sensor/#"][data-status="ok"]');
      await page.waitForSelector('#sub-list li[data-filter="device/+/status"][data-status="error"][data-code="forbidden"]');
      await h.mqttPublish(broker.port, "sensor/9/temp", "9.5");
      await page.waitForFunction(() => document.querySelector('#topic-rows tr[data-topic="sensor/9/temp"]'));
      assert.equal(await page.count('#topic-rows tr[data-topic="sensor/1/env"]'), 0, "the previous user's data is gone");
      await shot(page, "09-token-viewer");
    });

    it("raised no script errors", () => {
      assert.deepEqual(browser.errors, []);
    });
  });

  describe(`dashboard with a one-time code (${drv.name})`, { skip: skip || false }, () => {
    const env = withDashboard();
    const otto = h.USERS.find((u) => u.name === "otto");

    it("signs in with password and one-time code", STEP, async () => {
      await env.page.goto(`${env.gw.httpUrl}/?sub=${encodeURIComponent("sensor/#")}`);
      await env.page.waitForSelector("#signin:not([hidden])");
      await env.page.fill("#user", "otto");
      await env.page.fill("#password", otto.password);
      await env.page.fill("#otp", h.totp(otto.totp));
      await env.page.click("#signin-submit");
      await env.page.waitForSelector("#main:not([hidden])");
      assert.match(await env.page.textContent("#identity"), /otto/);
      assert.equal(await env.page.inputValue("#password"), "", "the password is not left in the form");
    });

    it("after a gateway restart asks for a new code (codes are single use), then resumes", STEP, async () => {
      await env.gw.stop();
      await env.gw.start();
      await env.page.waitForFunction(() => /one-time code/i.test(document.getElementById("signin-message").textContent), null, { timeout: 20000 });
      assert.equal(await env.page.inputValue("#user"), "otto", "user kept");
      await shot(env.page, "12-otp-again");
      // the code of the next 30 s step: valid (±1 step) and not the one used before
      await env.page.fill("#otp", h.totp(otto.totp, { offset: 1 }));
      await env.page.click("#signin-submit");
      await env.page.waitForFunction(() => document.getElementById("conn-status").dataset.state === "authenticated", null, { timeout: 20000 });
      assert.equal(await env.page.isHidden("#signin"), true);
      await h.eventually(async () => {
        await h.mqttPublish(env.broker.port, "sensor/otp/1", "1");
        return env.page.evaluate(() => !!document.querySelector('#topic-rows tr[data-topic="sensor/otp/1"]'));
      }, { timeout: 10000, interval: 300, what: "values after signing in again" });
    });

    it("raised no script errors", () => {
      assert.deepEqual(env.browser.errors, []);
    });
  });

  describe(`dashboard with an anonymous role (${drv.name})`, { skip: skip || false }, () => {
    const env = withDashboard({ anonymousRole: "guest" });

    it("offers to continue without signing in, and shows public values", STEP, async () => {
      await env.page.goto(`${env.gw.httpUrl}/?sub=${encodeURIComponent("public/#")}`);
      await env.page.waitForSelector("#continue-anon:not([hidden])");
      await shot(env.page, "10-anonymous-offer");
      await env.page.click("#continue-anon");
      await env.page.waitForSelector("#main:not([hidden])");
      assert.match(await env.page.textContent("#identity"), /guest/i);
      await env.page.waitForSelector('#sub-list li[data-filter="public/#"][data-status="ok"]');
      await h.mqttPublish(env.broker.port, "public/weather", '{"temp":12.5}');
      await env.page.waitForFunction(() => document.querySelector('#topic-rows tr[data-topic="public/weather"]'));
      // A guest may not publish: a gateway that says what the session may do
      // ("allow") gets no publish form at all; an older one refuses.
      const allow = await env.page.evaluate(() => window.mqgateApp.gw.allow);
      if (allow) {
        assert.deepEqual(allow.publish, []);
        assert.equal(await env.page.isHidden("#publish-panel"), true, "no publish form for a guest");
      } else {
        await env.page.fill("#pub-topic", "device/1/cmd");
        await env.page.fill("#pub-body", "1");
        await env.page.click("#pub-send");
        await env.page.waitForSelector('#pub-result[data-code="forbidden"]');
      }
      await shot(env.page, "11-anonymous");
    });

    it("raised no script errors", () => {
      assert.deepEqual(env.browser.errors, []);
    });
  });

  // History, max_rate and recovery (protocol.md, "Extensions of version 1")
  // on a gateway keeping history for sensor/#, the page served through a
  // proxy that can fail while the gateway keeps running.
  describe(`dashboard with stream history (${drv.name})`, { skip: noStream || false }, () => {
    const env = withDashboard({ extra: { history: h.HISTORY } });
    let proxy;
    const sub = '#sub-list li[data-filter="sensor/#"]';

    before(async () => {
      proxy = await h.startProxy(env.gw.port);
    });

    after(async () => {
      if (proxy) await proxy.close();
    });

    it("opens with charts already filled from history, ages from the gateway's time stamps", STEP, async () => {
      // a sensor that ran for two seconds, then went quiet for two
      for (let i = 0; i < 20; i++) {
        await h.mqttPublish(env.broker.port, "sensor/hist/1", JSON.stringify({ t: 20 + i }), { qos: 1 });
        await h.sleep(100);
      }
      await h.sleep(2000);
      await env.page.addInitScript(recordFirstPaint);
      await env.page.goto(`${proxy.httpUrl}/?sub=${encodeURIComponent("sensor/#")}`);
      await signIn(env.page);
      await env.page.waitForSelector('.chart[data-topic="sensor/hist/1"][data-field="t"]', { timeout: 5000 });
      const first = await env.page.evaluate(() => window.__firstPaint["sensor/hist/1"]);
      assert.equal(first.history, "true", "the row's first value came from history");
      assert.ok(parseInt(first.age, 10) >= 2, `its age counts from when the gateway got it: ${first.age}`);
      // every point from history, nothing published since, spread over the two seconds
      await h.eventually(async () => (await chartPoints(env.page, "sensor/hist/1", "t")).length === 20,
        { what: "20 points from history" });
      const pts = await chartPoints(env.page, "sensor/hist/1", "t");
      assert.deepEqual(pts.map(([, v]) => v), Array.from({ length: 20 }, (_, i) => 20 + i));
      assert.ok(pts[19][0] - pts[0][0] >= 1500, `points at the gateway's times (${pts[19][0] - pts[0][0]} ms apart)`);
      assert.equal(await env.page.textContent('.chart[data-topic="sensor/hist/1"][data-field="t"] .chart-last'), "39");
      await env.page.waitForFunction((sel) => /from history/.test(document.querySelector(sel).textContent), sub);
      await shot(env.page, "30-history-first-paint");
    });

    it("a max rate chosen on the page thins a burst to its newest message; 'no limit' lifts it", STEP, async () => {
      const burst = (from) => h.mqttPublishLines(env.broker.port, "sensor/rate/1", Array.from({ length: 20 }, (_, i) => String(from + i)));
      const count = () => env.page.evaluate(() => +(document.querySelector('#topic-rows tr[data-topic="sensor/rate/1"]')?.dataset.count || 0));
      await env.page.selectOption(`${sub} select.sub-rate`, "1");
      await env.page.waitForSelector(`${sub}[data-rate-state="ok"][data-max-rate="1"]`);
      // kept for the next visit
      assert.deepEqual(JSON.parse(await env.page.evaluate(() => localStorage.getItem("mqgate.rates"))), { "sensor/#": 1 });
      await burst(1);
      await env.page.waitForFunction(() => document.querySelector('#topic-rows tr[data-topic="sensor/rate/1"] td.value')?.textContent === "20",
        null, { timeout: 5000 });
      await h.sleep(1200);
      const thinned = await count();
      assert.ok(thinned >= 1 && thinned <= 4, `at most a few of 20 at 1/s: ${thinned}`);
      await env.page.selectOption(`${sub} select.sub-rate`, "");
      await env.page.waitForSelector(`${sub}[data-rate-state="ok"][data-max-rate="0"]`);
      await burst(21);
      await env.page.waitForFunction((n) => +(document.querySelector('#topic-rows tr[data-topic="sensor/rate/1"]')?.dataset.count || 0) === n + 20,
        thinned, { timeout: 10000 });
      assert.equal(await rowValue(env.page, "sensor/rate/1"), "40");
      assert.deepEqual(JSON.parse(await env.page.evaluate(() => localStorage.getItem("mqgate.rates"))), {});
    });

    it("after a dropped connection the page says it recovered, and shows what was published meanwhile", STEP, async () => {
      proxy.cut({ hold: true });
      await env.page.waitForFunction(() => document.getElementById("conn-status").dataset.state !== "authenticated");
      for (let i = 0; i < 3; i++) await h.mqttPublish(env.broker.port, "sensor/hist/1", JSON.stringify({ t: 40 + i }), { qos: 1 });
      await h.sleep(500);
      proxy.release();
      await env.page.waitForSelector('#stream-status[data-recovery="recovered"]', { timeout: 20000 });
      assert.match(await env.page.textContent("#stream-status"), /nothing was missed \(3 messages caught up\)/);
      await env.page.waitForSelector(`${sub}[data-recovery="recovered"]`);
      await h.eventually(async () => (await chartPoints(env.page, "sensor/hist/1", "t")).length === 23, { what: "the 3 missed points" });
      const pts = await chartPoints(env.page, "sensor/hist/1", "t");
      assert.deepEqual(pts.slice(-4).map(([, v]) => v), [39, 40, 41, 42], "no gap, nothing twice");
      assert.match(await rowValue(env.page, "sensor/hist/1"), /"t":42/);
      await shot(env.page, "31-recovered");
    });

    it("after a gateway restart the page says it started over, and goes on", STEP, async () => {
      await env.gw.stop();
      await env.gw.start();
      await env.page.waitForSelector('#stream-status[data-recovery="started-over"]', { timeout: 30000 });
      assert.match(await env.page.textContent("#stream-status"), /started over for sensor\/# \(the gateway restarted\)/);
      await env.page.waitForSelector(`${sub}[data-recovery="started-over"]`);
      const pts = await chartPoints(env.page, "sensor/hist/1", "t");
      assert.equal(pts[pts.length - 1][1], null, "the chart's line is broken where messages may be missing");
      await env.page.waitForFunction(() => document.body.dataset.broker === "up", null, { timeout: 20000 });
      await h.eventually(async () => {
        await h.mqttPublish(env.broker.port, "sensor/hist/1", '{"t":50}', { qos: 1 });
        return /"t":50/.test(await rowValue(env.page, "sensor/hist/1"));
      }, { timeout: 15000, interval: 500, what: "a value after the restart" });
      await shot(env.page, "32-started-over");
    });

    it("raised no script errors", () => {
      assert.deepEqual(env.browser.errors, []);
    });
  });

  // The whole dashboard over the HTTP API (SSE + POST) when the page can
  // open no WebSocket. With an anonymous role: a page's first request
  // carries no credentials, and a 401 with a Basic challenge to it would
  // have Firefox show its own sign-in dialog over the page (the gateway's
  // matter, reported with issue 13).
  describe(`dashboard with WebSocket blocked, over SSE (${drv.name})`, { skip: skip || false }, () => {
    const env = withDashboard({ httpApi: true, anonymousRole: "guest" });

    it("signs in and shows live values over SSE, saying so", STEP, async () => {
      await env.page.addInitScript(blockWebSocket);
      await env.page.goto(`${env.gw.httpUrl}/?sub=${encodeURIComponent("sensor/#,device/+/status")}`);
      await signIn(env.page);
      await env.page.waitForSelector('#transport[data-transport="sse"]');
      assert.match(await env.page.textContent("#transport"), /HTTP \(Server-Sent Events\): no WebSocket could be opened/);
      assert.ok(await env.page.evaluate(() => window.__wsTries) >= 1, "a WebSocket was tried first");
      assert.equal(await env.page.evaluate(() => window.mqgateApp.gw.transport), "sse");
      await env.page.waitForSelector('#sub-list li[data-filter="sensor/#"][data-status="ok"]');
      await env.page.waitForSelector('#sub-list li[data-filter="device/+/status"][data-status="ok"]');
      // the roles come with the first stream
      await env.page.waitForFunction(() => /alice \(operator\)/.test(document.getElementById("identity").textContent));
      await env.page.waitForFunction(() => document.body.dataset.broker === "up");
      await h.mqttPublish(env.broker.port, "sensor/sse/1", '{"t":12.5}');
      await env.page.waitForFunction(() => /12\.5/.test(document.querySelector('#topic-rows tr[data-topic="sensor/sse/1"] td.value')?.textContent || ""));
      await shot(env.page, "40-sse-values");
    });

    it("a filter added on the page reopens the stream; values of both keep coming", STEP, async () => {
      await env.page.fill("#sub-filter", "device/+/cmd");
      await env.page.click('#sub-form button[type="submit"]');
      await env.page.waitForSelector('#sub-list li[data-filter="device/+/cmd"][data-status="ok"]');
      await h.mqttPublish(env.broker.port, "device/4/cmd", '"go"');
      await h.mqttPublish(env.broker.port, "sensor/sse/1", '{"t":13.5}');
      await env.page.waitForFunction(() => document.querySelector('#topic-rows tr[data-topic="device/4/cmd"]'));
      await env.page.waitForFunction(() => /13\.5/.test(document.querySelector('#topic-rows tr[data-topic="sensor/sse/1"] td.value')?.textContent || ""));
      assert.equal(await env.page.getAttribute('#topic-rows tr[data-topic="sensor/sse/1"]', "data-count"), "2", "nothing twice");
    });

    it("publishes over POST and shows the ack; a forbidden one shows its code", STEP, async () => {
      const sub = await h.mqttSubscribe(env.broker.port, "device/+/cmd");
      await env.page.fill("#pub-topic", "device/7/cmd");
      await env.page.fill("#pub-body", '{"on": true}');
      await env.page.selectOption("#pub-qos", "1");
      await env.page.click("#pub-send");
      await env.page.waitForSelector('#pub-result[data-result="ok"]');
      assert.match(await env.page.textContent("#pub-result"), /acknowledged/);
      const m = await sub.next();
      assert.equal(m.topic, "device/7/cmd");
      assert.equal(m.payload.toString(), '{"on":true}');
      sub.stop();
      await env.page.fill("#pub-topic", "sensor/1/env");
      await env.page.fill("#pub-body", "1");
      await env.page.click("#pub-send");
      await env.page.waitForSelector('#pub-result[data-code="forbidden"]');
      await shot(env.page, "41-sse-publish");
    });

    it("reconnects over SSE after a gateway restart", STEP, async () => {
      await env.gw.stop();
      await env.page.waitForFunction(() => document.getElementById("conn-status").dataset.state !== "authenticated");
      await env.gw.start();
      await env.page.waitForFunction(() => document.getElementById("conn-status").dataset.state === "authenticated", null, { timeout: 30000 });
      assert.equal(await env.page.evaluate(() => window.mqgateApp.gw.transport), "sse");
      await h.eventually(async () => {
        await h.mqttPublish(env.broker.port, "sensor/sse/1", '{"t":14.5}');
        return /14\.5/.test(await rowValue(env.page, "sensor/sse/1"));
      }, { timeout: 15000, interval: 500, what: "a value after the gateway restart" });
      await shot(env.page, "42-sse-reconnected");
    });

    it("raised no script errors", () => {
      assert.deepEqual(env.browser.errors, []);
    });
  });

  describe(`dashboard ignores a ?ws= that points away from its site (${drv.name})`, { skip: skip || false }, () => {
    const env = withDashboard();
    let evil;

    before(async () => {
      evil = await recorder();
    });

    after(async () => {
      if (evil) await evil.close();
    });

    it("a link with ?ws= to another host or port: the password goes to this site's gateway only", STEP, async () => {
      const own = `ws://127.0.0.1:${env.gw.port}/ws`;
      for (const ws of [`ws://127.0.0.1:${evil.port}/ws`, `//127.0.0.1:${evil.port}/ws`,
        "wss://attacker.invalid/ws", `http://127.0.0.1:${evil.port}/ws`]) {
        await env.page.goto(`${env.gw.httpUrl}/?sub=${encodeURIComponent("sensor/#")}&ws=${encodeURIComponent(ws)}`);
        await env.page.waitForSelector("#signin:not([hidden])");
        assert.equal(await env.page.evaluate(() => window.mqgateApp.gw.url), own, `ws=${ws}`);
        assert.match(await env.page.textContent("#gateway-url"), /ignored/, `ws=${ws} said to be ignored`);
      }
      await env.page.fill("#user", "alice");
      await env.page.fill("#password", "alice-pw");
      await env.page.click("#signin-submit");
      await env.page.waitForSelector("#main:not([hidden])");
      assert.match(await env.page.textContent("#identity"), /alice/);
      await env.page.waitForSelector('#sub-list li[data-filter="sensor/#"][data-status="ok"]');
      await h.sleep(300);
      assert.equal(evil.connections, 0, "nothing connected to the other port");
      assert.ok(!evil.bytes.includes("alice-pw"), "the password was not sent there");
      await shot(env.page, "13-ws-param-ignored");
    });

    it("another path of the same site is taken", STEP, async () => {
      await env.page.goto(`${env.gw.httpUrl}/?ws=${encodeURIComponent("/ws")}`);
      await env.page.waitForSelector("#signin:not([hidden])");
      assert.equal(await env.page.evaluate(() => window.mqgateApp.gw.url), `ws://127.0.0.1:${env.gw.port}/ws`);
      assert.doesNotMatch(await env.page.textContent("#gateway-url"), /ignored/);
    });

    it("the page's Content-Security-Policy stops a WebSocket to another origin, even from script", STEP, async () => {
      const result = await env.page.evaluate(async (port) => {
        const violations = [];
        document.addEventListener("securitypolicyviolation", (e) => violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
        let created;
        try {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/steal`);
          created = "created";
          ws.onopen = () => ws.send("alice-pw");
        } catch (e) {
          created = e.name;
        }
        await new Promise((r) => setTimeout(r, 500));
        return { created, violations };
      }, evil.port);
      assert.equal(evil.connections, 0, `nothing connected to the other port (${JSON.stringify(result)})`);
      assert.ok(result.violations.some((v) => v.startsWith("connect-src") && v.includes(String(evil.port))),
        `a connect-src violation was reported: ${JSON.stringify(result)}`);
    });
  });

  // The demo as a newcomer walks it: scripts/demo.sh itself (with free ports
  // and the daemon already built), so config/demo.json, the users file it
  // makes and scripts/sensor-sim.py are the real ones.
  describe(`the demo (scripts/demo.sh) for a newcomer (${drv.name})`, { skip: skip || false }, () => {
    const passwdTool = [path.join(path.dirname(h.MQGATED), "mqgate-passwd"), path.join(h.REPO, "mqgate-passwd")]
      .find((p) => existsSync(p));
    let demo, out = "", printed, browser, page, ports, bannerAt;

    before(async () => {
      if (!passwdTool) throw new Error("mqgate-passwd is not built");
      ports = { gw: await h.freePort(), mqtt: await h.freePort() };
      const env = { ...process.env, MQG_DEMO_NO_BUILD: "1", MQG_DEMO_PORT: String(ports.gw),
        MQG_DEMO_MQTT_PORT: String(ports.mqtt), MQGATED: h.MQGATED, MQGATE_PASSWD: passwdTool };
      delete env.http_proxy;
      delete env.https_proxy;
      // its own process group: everything it starts is stopped with it
      demo = spawn("sh", [path.join(h.REPO, "scripts", "demo.sh")], { env, detached: true,
        stdio: ["ignore", "pipe", "pipe"] });
      demo.exited = new Promise((r) => demo.on("exit", (code, signal) => r({ code, signal })));
      const add = (d) => {
        out += d.toString();
        if (process.env.MQG_VERBOSE) process.stderr.write(`[demo] ${d}`);
      };
      demo.stdout.on("data", add);
      demo.stderr.on("data", add);
      await h.eventually(() => out.includes("Ctrl-C stops the demo.") || demo.exitCode !== null,
        { timeout: 30000, interval: 100, what: "the demo's banner" });
      assert.equal(demo.exitCode, null, `the demo exited:\n${out}`);
      bannerAt = Date.now();
      const field = (name) => (new RegExp(`^ +${name}: +(\\S+)$`, "m").exec(out) || [])[1];
      printed = { url: field("dashboard"), user: field("user"), password: field("password") };
      browser = await launch();
      page = browser.page;
    });

    after(async () => {
      if (page && !page.isClosed()) await shot(page, "29-demo-final").catch(() => {});
      if (browser) await browser.close();
      if (demo && demo.exitCode === null) {
        process.kill(-demo.pid, "SIGTERM");
        const t = setTimeout(() => { try { process.kill(-demo.pid, "SIGKILL"); } catch { /* gone */ } }, 8000);
        await demo.exited;
        clearTimeout(t);
      }
    });

    it("prints the dashboard URL, a user and a password of this run", () => {
      assert.equal(printed.url, `http://127.0.0.1:${ports.gw}/`, out);
      assert.equal(printed.user, "demo");
      assert.ok(printed.password && printed.password.length >= 12, `a password: ${printed.password}`);
    });

    it("starts without warnings", () => {
      const bad = out.split("\n").filter((l) => /^(warn|error):|warning/i.test(l));
      assert.deepEqual(bad, [], out);
    });

    // The page starts from what the gateway says the session may do
    // ("allow", protocol.md); against a gateway that does not say it yet,
    // these steps run as TODO.
    async function needsAllow(t) {
      const told = await page.evaluate(() => !!window.mqgateApp.gw?.hello?.allow);
      if (!told) t.todo("this mqgated sends no \"allow\" in hello (issue 10, item 24)");
    }

    it("once the simulator has run a while, the charts open with its history", STEP, async (t) => {
      if (noStream) {
        t.skip(noStream);
        return;
      }
      await h.sleep(bannerAt + 6000 - Date.now()); // the simulator publishes every second
      await page.addInitScript(recordFirstPaint);
      await page.goto(printed.url);
      await page.waitForSelector("#continue-anon:not([hidden])");
      await page.click("#continue-anon");
      await page.waitForSelector('.chart[data-topic="sensor/1/temp"][data-field="t"]', { timeout: 10000 });
      assert.equal((await page.evaluate(() => window.__firstPaint["sensor/1/temp"])).history, "true");
      await h.sleep(500); // at most one live message meanwhile: the rest is history
      const pts = await chartPoints(page, "sensor/1/temp", "t");
      assert.ok(pts.length >= 4, `points at once: ${pts.length}`);
      await shot(page, "24-demo-history");
    });

    it("open, continue without signing in: live sensor values, no publish form", STEP, async (t) => {
      await page.goto(printed.url);
      await page.waitForSelector("#continue-anon:not([hidden])");
      await needsAllow(t);
      await shot(page, "20-demo-open");
      await page.click("#continue-anon");
      await page.waitForSelector("#main:not([hidden])");
      await page.waitForSelector('#sub-list li:not([data-status="pending"])');
      assert.deepEqual(await page.texts('#sub-list li[data-status="error"]'), [],
        "no refused subscription");
      await page.waitForSelector('#sub-list li[data-filter="sensor/#"][data-status="ok"]');
      await page.waitForSelector('#topic-rows tr[data-topic="sensor/1/temp"]', { timeout: 10000 });
      const first = await rowValue(page, "sensor/1/temp");
      await page.waitForFunction((v) => {
        const td = document.querySelector('#topic-rows tr[data-topic="sensor/1/temp"] td.value');
        return td && td.textContent !== v;
      }, first, { timeout: 10000 });
      assert.match(await rowValue(page, "sensor/1/temp"), /"t":\d/);
      await page.waitForSelector('.chart[data-topic="sensor/1/temp"][data-field="t"]');
      assert.equal(await page.isHidden("#publish-panel"), true, "a guest may not publish");
      await shot(page, "21-demo-guest");
    });

    it("sign in with the printed user, publish to a device, see the acknowledgement and the device's answer", STEP, async (t) => {
      await needsAllow(t);
      await page.click("#sign-out"); // "Sign in" for a guest
      await page.waitForSelector("#signin:not([hidden])");
      await page.fill("#user", printed.user);
      await page.fill("#password", printed.password);
      await page.click("#signin-submit");
      await page.waitForFunction(() => /demo/.test(document.getElementById("identity").textContent));
      assert.match(await page.textContent("#identity"), /demo \(operator\)/);
      assert.equal(await page.textContent("#conn-status"), "Connected");
      await page.waitForSelector("#publish-panel:not([hidden])");
      assert.equal(await page.inputValue("#pub-topic"), "device/1/cmd", "a topic the role may publish to");
      assert.match(await page.textContent("#pub-patterns"), /device\/\+\/cmd/);
      await page.waitForSelector('#sub-list li[data-filter="device/+/status"][data-status="ok"]');
      await shot(page, "22-demo-signed-in");
      await page.fill("#pub-body", '{"on": true}');
      await page.click("#pub-send");
      await page.waitForSelector('#pub-result[data-result="ok"]');
      assert.match(await page.textContent("#pub-result"), /acknowledged: device\/1\/cmd/);
      await page.waitForFunction(() => /"on":true/.test(
        document.querySelector('#topic-rows tr[data-topic="device/1/status"] td.value')?.textContent || ""), null, { timeout: 10000 });
      await shot(page, "23-demo-published");
    });

    it("asks device 1 for its firmware and shows the simulator's answer", STEP, async (t) => {
      await needsAllow(t);
      await page.waitForSelector("#request-panel:not([hidden])");
      await page.fill("#req-topic", "device/1/rpc");
      await page.fill("#req-body", '{"get": "firmware"}');
      await page.click("#req-send");
      await page.waitForSelector('#req-result[data-result="ok"]', { timeout: 10000 });
      const answer = await page.textContent("#req-answer");
      assert.match(answer, /"firmware": "1\.4\.2"/);
      assert.match(answer, /device: 1/);
      await shot(page, "23b-demo-request");
    });

    it("raised no script errors", () => {
      assert.deepEqual(browser.errors, []);
    });

    it("stops with everything it started on SIGTERM", STEP, async () => {
      process.kill(-demo.pid, "SIGTERM");
      await demo.exited;
      await h.waitForPortClosed(ports.gw);
      await h.waitForPortClosed(ports.mqtt);
    });
  });
}

for (const drv of DRIVERS) scenarios(drv);
