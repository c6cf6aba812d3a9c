// A scripted in-process stand-in for the browser WebSocket API, for unit tests
// of mqgate.js's own logic (routing, reconnect, re-subscribe). The tests
// against the real gateway are in gateway.test.mjs.

export class FakeWebSocket {
  static instances = [];
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.protocol = "";
    this.readyState = 0;
    this.sent = [];
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    this._waiters = [];
    FakeWebSocket.instances.push(this);
  }

  static reset() {
    FakeWebSocket.instances = [];
  }

  static last() {
    return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
  }

  // --- the client's side ---
  send(data) {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    const f = JSON.parse(data);
    this.sent.push(f);
    const w = this._waiters;
    this._waiters = [];
    for (const fn of w) fn();
  }

  close(code = 1000, reason = "") {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    queueMicrotask(() => this._closed(code, reason));
  }

  // --- the test's (server's) side ---
  accept(hello = { op: "hello", proto: 1, server: "fake", auth: ["password", "token"] }) {
    this.protocol = "mqgate.v1";
    this.readyState = 1;
    this.onopen && this.onopen({});
    if (hello) this.push(hello);
  }

  push(frame) {
    this.onmessage && this.onmessage({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }

  serverClose(code, reason = "") {
    this.readyState = 2;
    this._closed(code, reason);
  }

  fail() {
    this.readyState = 3;
    this.onerror && this.onerror({});
    this.onclose && this.onclose({ code: 1006, reason: "", wasClean: false });
  }

  /** "error" with no "close" after it, as Node 20's WebSocket does on a reset handshake. */
  errorOnly() {
    this.onerror && this.onerror({});
  }

  _closed(code, reason) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose && this.onclose({ code, reason, wasClean: true });
  }

  /** Resolves the next frame the client sends with op (already sent or not). */
  async next(op) {
    for (;;) {
      const f = this.sent.find((x) => (!op || x.op === op) && !x._seen);
      if (f) {
        Object.defineProperty(f, "_seen", { value: true });
        return f;
      }
      await new Promise((r) => this._waiters.push(r));
    }
  }
}

/** Resolves after the current microtasks and timers of 0 ms. */
export function tick(ms = 0) {
  return new Promise((r) => setTimeout(r, ms));
}
