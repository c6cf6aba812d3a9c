// The browsers the dashboard's scenarios run in, behind one small page
// interface, so that every scenario is written once:
//   - Debian's Chromium, driven by playwright-core (CDP);
//   - Debian's Firefox ESR, driven by puppeteer-core over WebDriver BiDi.
// Never a downloaded browser: both point at the system binaries.
//
// A driver: {name, binary, skip (why it cannot run here, or null),
// launch() → Browser}. A Browser: {page, errors (uncaught page errors),
// close()}. A page offers what the scenarios use, with playwright's
// meaning: goto, click, fill, check, selectOption, evaluate(fn, arg),
// waitForFunction(fn, arg, {timeout}), waitForSelector(sel, {state,
// timeout}) (state "visible" by default, or "hidden"), textContent,
// inputValue, getAttribute, isHidden, count, texts, addInitScript(fn, arg),
// setViewportSize, screenshot, onResponse(fn(url, status, headers)),
// onConsole(fn(type, text)), isClosed.

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { executable } from "../js/harness.mjs";

const VIEWPORT = { width: 1280, height: 900 };
const TIMEOUT = 30000;

async function load(name) {
  try {
    return await import(name);
  } catch {
    return null;
  }
}

// The browser's environment: no proxy (every test server is on loopback).
function browserEnv() {
  const env = { ...process.env };
  for (const k of ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]) delete env[k];
  return env;
}

// What both drivers share: everything a page offers that one evaluate or
// waitForFunction can do. prim: {evaluate(fn, arg), waitForFunction(fn,
// arg, timeout)} of the driver.
function commonPage(prim) {
  // Whether sel names a visible element (playwright's meaning: a box of
  // some size, not visibility: hidden); written out in each page function,
  // which runs in the page (whose CSP forbids building functions there).
  return {
    evaluate: prim.evaluate,
    waitForFunction: (fn, arg, { timeout = TIMEOUT } = {}) => prim.waitForFunction(fn, arg, timeout),
    async waitForSelector(selector, { state = "visible", timeout = TIMEOUT } = {}) {
      await prim.waitForFunction(([sel, want]) => {
        const el = document.querySelector(sel);
        const r = el && el.getBoundingClientRect();
        const shown = !!el && r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden";
        return shown === want;
      }, [selector, state !== "hidden"], timeout).catch((e) => {
        e.message = `waiting for ${selector} to be ${state}: ${e.message}`;
        throw e;
      });
    },
    isHidden: (sel) => prim.evaluate((s) => {
      const el = document.querySelector(s);
      const r = el && el.getBoundingClientRect();
      return !(el && r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden");
    }, sel),
    textContent: (sel) => prim.evaluate((s) => document.querySelector(s)?.textContent ?? null, sel),
    inputValue: (sel) => prim.evaluate((s) => document.querySelector(s).value, sel),
    getAttribute: (sel, name) => prim.evaluate(([s, n]) => document.querySelector(s)?.getAttribute(n) ?? null, [sel, name]),
    count: (sel) => prim.evaluate((s) => document.querySelectorAll(s).length, sel),
    texts: (sel) => prim.evaluate((s) => [...document.querySelectorAll(s)].map((e) => e.textContent), sel),
    waitForTimeout: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
}

// --- Chromium over playwright-core ------------------------------------------

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
];
const playwright = await load("playwright-core");

const chromium = {
  name: "Chromium",
  binary: CHROMIUM,
  skip: !executable(CHROMIUM) ? `${CHROMIUM} is missing (apt-get install chromium)`
    : !playwright ? "playwright-core is not installed: cd tests/browser && npm ci" : null,
  async launch() {
    const profile = mkdtempSync(path.join(os.tmpdir(), "mqgate-chromium-"));
    const context = await playwright.chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: VIEWPORT, env: browserEnv(),
    });
    const errors = [];
    context.on("weberror", (e) => errors.push(String(e.error())));
    const pw = context.pages()[0] || (await context.newPage());
    const page = commonPage({
      evaluate: (fn, arg) => pw.evaluate(fn, arg),
      waitForFunction: (fn, arg, timeout) => pw.waitForFunction(fn, arg, { timeout }),
    });
    Object.assign(page, {
      goto: (url) => pw.goto(url),
      click: (sel) => pw.click(sel),
      fill: (sel, v) => pw.fill(sel, v),
      check: (sel) => pw.check(sel),
      selectOption: (sel, v) => pw.selectOption(sel, v),
      addInitScript: (fn, arg) => pw.addInitScript(fn, arg),
      setViewportSize: (size) => pw.setViewportSize(size),
      screenshot: (file) => pw.screenshot({ path: file, fullPage: true }),
      onResponse: (fn) => pw.on("response", (r) => fn(r.url(), r.status(), r.headers())),
      onConsole: (fn) => pw.on("console", (m) => fn(m.type(), m.text())),
      isClosed: () => pw.isClosed(),
    });
    return {
      page,
      errors,
      async close() {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  },
};

// --- Firefox ESR over puppeteer-core (WebDriver BiDi) -----------------------

const FIREFOX = process.env.FIREFOX || "/usr/bin/firefox-esr";
const puppeteer = await load("puppeteer-core");
// Nothing of Firefox's own reaches beyond this machine (puppeteer's
// defaults already stop updates, telemetry and safe browsing).
const FIREFOX_PREFS = {
  "network.proxy.type": 0,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "network.dns.disablePrefetch": true,
  "network.prefetch-next": false,
  "browser.region.network.url": "",
  "browser.topsites.contile.enabled": false,
  "toolkit.telemetry.enabled": false,
  "app.shield.optoutstudies.enabled": false,
  "extensions.blocklist.enabled": false,
  "media.gmp-gmpopenh264.enabled": false,
};

// Firefox reports a WebSocket it could not open or that a navigation cut
// as a page error; these are the browser's notes about the network (the
// page sees them as close events), not errors of the page's scripts.
const FIREFOX_NETWORK_NOTE = /^(The connection to wss?:\/\/\S+ was interrupted while the page was loading\.|Firefox can.t establish a connection to the server at wss?:\/\/\S+\.)$/;

const firefox = {
  name: "Firefox ESR",
  binary: FIREFOX,
  skip: !executable(FIREFOX) ? `${FIREFOX} is missing (apt-get install firefox-esr)`
    : !puppeteer ? "puppeteer-core is not installed: cd tests/browser && npm ci" : null,
  async launch() {
    const profile = mkdtempSync(path.join(os.tmpdir(), "mqgate-firefox-"));
    const browser = await puppeteer.default.launch({
      browser: "firefox", protocol: "webDriverBiDi", executablePath: FIREFOX, headless: true,
      userDataDir: profile, defaultViewport: VIEWPORT, extraPrefsFirefox: FIREFOX_PREFS, env: browserEnv(),
    });
    const pp = (await browser.pages())[0] || (await browser.newPage());
    pp.setDefaultTimeout(TIMEOUT);
    const errors = [];
    pp.on("pageerror", (e) => {
      const m = String(e && e.message ? e.message : e);
      if (!FIREFOX_NETWORK_NOTE.test(m)) errors.push(m);
    });
    const page = commonPage({
      evaluate: (fn, arg) => pp.evaluate(fn, arg),
      waitForFunction: (fn, arg, timeout) => pp.waitForFunction(fn, { timeout, polling: 50 }, arg),
    });
    // Locators wait for the element to be visible and enabled, as
    // playwright's actions do.
    Object.assign(page, {
      goto: (url) => pp.goto(url),
      click: (sel) => pp.locator(sel).click(),
      fill: (sel, v) => pp.locator(sel).fill(v),
      check: (sel) => pp.locator(sel).click(),
      async selectOption(sel, v) {
        await pp.locator(sel).wait();
        await pp.select(sel, v);
      },
      addInitScript: (fn, arg) => pp.evaluateOnNewDocument(fn, arg),
      setViewportSize: (size) => pp.setViewport(size),
      screenshot: (file) => pp.screenshot({ path: file, fullPage: true }),
      onResponse: (fn) => pp.on("response", (r) => fn(r.url(), r.status(), r.headers())),
      onConsole: (fn) => pp.on("console", (m) => fn(m.type(), m.text())),
      isClosed: () => pp.isClosed(),
    });
    return {
      page,
      errors,
      async close() {
        await browser.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  },
};

/** The browsers every scenario runs in; BROWSERS=chromium,firefox chooses. */
export const DRIVERS = [chromium, firefox].filter((d) => {
  const only = process.env.BROWSERS;
  return !only || only.split(",").some((n) => d.name.toLowerCase().startsWith(n.trim().toLowerCase()));
});
