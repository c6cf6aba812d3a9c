// The dashboard (www/) in Debian's Chromium, served by the real mqgated from
// its static_dir, against a real mosquitto.
//
//   cd tests/browser && npm ci
//   MQGATED=/abs/path/mqgated node --test tests/browser/
//
// Environment: MQGATED (absolute), CHROMIUM [/usr/bin/chromium]; see
// tests/js/harness.mjs for the rest. Screenshots go to tests/browser/artifacts/.
// No browser is ever downloaded: playwright-core drives the system Chromium.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, accessSync, constants } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as h from "../js/harness.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = path.join(HERE, "artifacts");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
];

let chromium = null;
try {
  ({ chromium } = await import("playwright-core"));
} catch { /* reported below */ }

function why() {
  if (!chromium) return "playwright-core is not installed: cd tests/browser && npm ci";
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    return `${CHROMIUM} is missing (apt-get install chromium)`;
  }
  // The harness wants a global WebSocket only for the node client tests.
  const m = h.missingTools();
  return m && !m.startsWith("no global WebSocket") ? m : null;
}

const skip = why();
const STEP = { timeout: 45000 };

async function launch() {
  const profile = mkdtempSync(path.join(os.tmpdir(), "mqgate-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  const errors = [];
  context.on("weberror", (e) => errors.push(String(e.error())));
  return {
    context,
    errors,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Text of the value cell of a topic's row ("" when there is no row yet). */
function rowValue(page, topic) {
  return page.evaluate((t) => {
    const tr = [...document.querySelectorAll("#topic-rows tr")].find((r) => r.dataset.topic === t);
    return tr ? tr.cells[1].textContent : "";
  }, topic);
}

describe("dashboard in Chromium against mqgated + mosquitto", { skip: skip || false }, () => {
  let broker, gw, browser, page;

  before(async () => {
    broker = await h.startMosquitto();
    gw = await h.startGateway(broker.port, { staticDir: h.WWW });
    browser = await launch();
    page = browser.context.pages()[0] || (await browser.context.newPage());
    page.on("console", (m) => {
      if (process.env.MQG_VERBOSE) process.stderr.write(`[page ${m.type()}] ${m.text()}\n`);
    });
  });

  after(async () => {
    if (page && !page.isClosed()) await shot(page, "99-final").catch(() => {});
    if (browser) await browser.close();
    if (gw) await gw.close();
    if (broker) await broker.close();
  });

  it("serves the dashboard from static_dir with the right content types", STEP, async () => {
    const types = {};
    page.on("response", (r) => {
      types[new URL(r.url()).pathname] = r.headers()["content-type"] || "";
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
    assert.equal((await page.$$('#topic-rows tr[data-topic^="sensor/burst/"]')).length, 10);
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
    assert.equal(await page.$('#topic-rows tr[data-topic="sensor/1/env"]'), null, "the previous user's data is gone");
    await shot(page, "09-token-viewer");
  });

  it("raised no script errors", () => {
    assert.deepEqual(browser.errors, []);
  });
});

describe("dashboard with a one-time code", { skip: skip || false }, () => {
  let broker, gw, browser, page;
  const otto = h.USERS.find((u) => u.name === "otto");

  before(async () => {
    broker = await h.startMosquitto();
    gw = await h.startGateway(broker.port, { staticDir: h.WWW });
    browser = await launch();
    page = browser.context.pages()[0] || (await browser.context.newPage());
  });

  after(async () => {
    if (browser) await browser.close();
    if (gw) await gw.close();
    if (broker) await broker.close();
  });

  it("signs in with password and one-time code", STEP, async () => {
    await page.goto(`${gw.httpUrl}/?sub=${encodeURIComponent("sensor/#")}`);
    await page.waitForSelector("#signin:not([hidden])");
    await page.fill("#user", "otto");
    await page.fill("#password", otto.password);
    await page.fill("#otp", h.totp(otto.totp));
    await page.click("#signin-submit");
    await page.waitForSelector("#main:not([hidden])");
    assert.match(await page.textContent("#identity"), /otto/);
    assert.equal(await page.inputValue("#password"), "", "the password is not left in the form");
  });

  it("after a gateway restart asks for a new code (codes are single use), then resumes", STEP, async () => {
    await gw.stop();
    await gw.start();
    await page.waitForFunction(() => /one-time code/i.test(document.getElementById("signin-message").textContent), null, { timeout: 20000 });
    assert.equal(await page.inputValue("#user"), "otto", "user kept");
    await shot(page, "12-otp-again");
    // the code of the next 30 s step: valid (±1 step) and not the one used before
    await page.fill("#otp", h.totp(otto.totp, { offset: 1 }));
    await page.click("#signin-submit");
    await page.waitForFunction(() => document.getElementById("conn-status").dataset.state === "authenticated", null, { timeout: 20000 });
    assert.equal(await page.isHidden("#signin"), true);
    await h.eventually(async () => {
      await h.mqttPublish(broker.port, "sensor/otp/1", "1");
      return page.evaluate(() => !!document.querySelector('#topic-rows tr[data-topic="sensor/otp/1"]'));
    }, { timeout: 10000, interval: 300, what: "values after signing in again" });
  });

  it("raised no script errors", () => {
    assert.deepEqual(browser.errors, []);
  });
});

describe("dashboard with an anonymous role", { skip: skip || false }, () => {
  let broker, gw, browser, page;

  before(async () => {
    broker = await h.startMosquitto();
    gw = await h.startGateway(broker.port, { staticDir: h.WWW, anonymousRole: "guest" });
    browser = await launch();
    page = browser.context.pages()[0] || (await browser.context.newPage());
  });

  after(async () => {
    if (browser) await browser.close();
    if (gw) await gw.close();
    if (broker) await broker.close();
  });

  it("offers to continue without signing in, and shows public values", STEP, async () => {
    await page.goto(`${gw.httpUrl}/?sub=${encodeURIComponent("public/#")}`);
    await page.waitForSelector("#continue-anon:not([hidden])");
    await shot(page, "10-anonymous-offer");
    await page.click("#continue-anon");
    await page.waitForSelector("#main:not([hidden])");
    assert.match(await page.textContent("#identity"), /guest/i);
    await page.waitForSelector('#sub-list li[data-filter="public/#"][data-status="ok"]');
    await h.mqttPublish(broker.port, "public/weather", '{"temp":12.5}');
    await page.waitForFunction(() => document.querySelector('#topic-rows tr[data-topic="public/weather"]'));
    // a guest may not publish
    await page.fill("#pub-topic", "device/1/cmd");
    await page.fill("#pub-body", "1");
    await page.click("#pub-send");
    await page.waitForSelector('#pub-result[data-code="forbidden"]');
    await shot(page, "11-anonymous");
  });

  it("raised no script errors", () => {
    assert.deepEqual(browser.errors, []);
  });
});
