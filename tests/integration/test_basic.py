#!/usr/bin/python3
"""Opening a session: handshake, subprotocol, refusals, hello, status,
ping, HTTP endpoints, authentication timeout, keepalive, shutdown."""

import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
import promcheck                                        # noqa: E402
from mqgtest import check, eq, expect_error, fail      # noqa: E402

t = T.Suite("basic")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]}}
HELLO = {"op": "hello", "proto": 1, "server": "mqgate/0.1.0", "auth": []}
# what an anonymous session of role "all" may do (protocol.md, "allow")
HELLO_ALL = dict(HELLO, allow={"subscribe": ["#"], "publish": ["#"]})
STATUS_UP = {"op": "status", "broker": "up"}


def static_dir():
    """A static_dir with a few files, a sibling secret and a symlink out."""
    top = os.path.join(t.root, "static")
    www = os.path.join(top, "www")
    if not os.path.isdir(www):
        os.makedirs(os.path.join(www, "sub"))
        files = {"index.html": "<!doctype html><h1>mqgate</h1>\n",
                 "app.js": "console.log('hi');\n",
                 "style.css": "h1 { color: red }\n",
                 "data.json": '{"a":1}\n',
                 "sub/page.html": "<p>sub</p>\n"}
        for name, text in files.items():
            with open(os.path.join(www, name), "w") as f:
                f.write(text)
        with open(os.path.join(top, "secret.txt"), "w") as f:
            f.write("TOP-SECRET-CONTENT\n")
        os.symlink(os.path.join(top, "secret.txt"), os.path.join(www, "link.txt"))
        os.symlink("/etc", os.path.join(www, "etc"))
    return www


def anon():
    """The script's main gateway: anonymous role "all", a static_dir."""
    return t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                      "listeners": [{"path": "/ws", "static_dir": static_dir()}]})


def noauth():
    """No anonymous role, no auth method, auth.timeout_s 1."""
    return t.gateway({"auth": {"timeout_s": 1}, "roles": ROLES})


# --- hello and status -------------------------------------------------------

@t.test("hello: exact first frame (no auth method configured: auth [], anonymous: allow)")
def _():
    ws = anon().ws()
    eq(T.strip_epoch(ws.recv_json()), HELLO_ALL, "hello")


@t.test("status: anonymous session gets {op:status,broker:up} right after hello")
def _():
    ws = anon().ws()
    eq(ws.recv_json()["op"], "hello", "first frame op")
    eq(ws.recv_json(), STATUS_UP, "second frame")


@t.test("hello: the same without anonymous_role; no status before authentication")
def _():
    ws = noauth().ws()
    eq(T.strip_epoch(ws.recv_json()), HELLO, "hello")
    eq(ws.sync(), [], "frames between hello and the first pong")


# --- subprotocol ------------------------------------------------------------

@t.test("subprotocol: mqgate.v1 offered is echoed")
def _():
    ws = anon().ws(protocols=["mqgate.v1"])
    eq(ws.protocol, "mqgate.v1", "Sec-WebSocket-Protocol answered")
    eq(ws.recv_json()["op"], "hello", "first frame op")


@t.test("subprotocol: none offered is accepted as v1, no protocol header back")
def _():
    ws = anon().ws(protocols=None)
    eq(ws.protocol, None, "Sec-WebSocket-Protocol answered to a client that offered none")
    eq(T.strip_epoch(ws.recv_json()), HELLO_ALL, "hello")
    ws.sync()


@t.test("subprotocol: several offers including mqgate.v1 pick mqgate.v1")
def _():
    for offers in (["chat", "mqgate.v1"], ["mqgate.v1", "mqtt"], ["a", "b", "mqgate.v1", "c"]):
        ws = anon().ws(protocols=offers)
        eq(ws.protocol, "mqgate.v1", "protocol picked from %s" % offers)
        eq(ws.recv_json()["op"], "hello", "first frame op")


@t.test("subprotocol: only other protocols offered is refused at the handshake")
def _():
    gw = anon()
    for offers in (["chat"], ["mqtt", "mqgate.v2"]):
        try:
            ws = gw.ws(protocols=offers)
        except T.HandshakeRefused as e:
            check(e.status != 101, "refused")
            if e.status is None:
                T.diag("%s: connection dropped without an HTTP answer" % offers)
            continue
        fail("handshake offering only %s answered 101 (protocol %r)" % (offers, ws.protocol))
    gw.assert_serving()


# --- paths ------------------------------------------------------------------

@t.test("handshake on a path other than /ws: 404")
def _():
    gw = anon()
    for path in ("/", "/other", "/ws/", "/wsx", "/ws/extra", "/WS"):
        try:
            gw.ws(path=path)
        except T.HandshakeRefused as e:
            eq(e.status, 404, "status for a WebSocket handshake on %s" % path)
            continue
        fail("handshake on %s was accepted" % path)
    eq(gw.http("/nothing-here")[0], 404, "plain GET /nothing-here")


@t.test("handshake on /ws with a query string is accepted")
def _():
    ws = anon().ws(path="/ws?client=dash&v=1")
    eq(ws.recv_json()["op"], "hello", "first frame op")


# --- ping -------------------------------------------------------------------

@t.test("ping: with integer id, string id and without id")
def _():
    ws = anon().session()
    for rid in (5, 0, "abc"):
        ws.send_json({"op": "ping", "id": rid})
        eq(ws.recv_json(), {"op": "pong", "id": rid}, "answer to ping id %r" % rid)
    ws.send_json({"op": "ping"})
    eq(ws.recv_json(), {"op": "pong"}, "answer to ping without id")


@t.test("ping: answered before authentication too")
def _():
    ws = noauth().ws()
    ws.recv_json()
    ws.send_json({"op": "ping", "id": 1})
    eq(ws.recv_json(), {"op": "pong", "id": 1}, "pong before auth")


# --- HTTP endpoints ---------------------------------------------------------

@t.test("GET /healthz: 200 with the broker up")
def _():
    eq(anon().http("/healthz")[0], 200, "status")


@t.test("GET /metrics: 200, strict Prometheus text format, counters that move")
def _():
    gw = anon()
    st, hdrs, body = gw.http("/metrics")
    eq(st, 200, "status")
    check(hdrs.get("content-type", "").startswith("text/plain; version=0.0.4"),
          "content-type %r" % hdrs.get("content-type"))
    fams, errors = promcheck.check(body.decode("utf-8"))
    check(not errors, "not valid Prometheus text: %s" % errors[:5])
    for name in ("mqgate_sessions", "mqgate_subscriptions", "mqgate_upstream_filters",
                 "mqgate_messages_in_total", "mqgate_frames_out_total", "mqgate_auth_total",
                 "mqgate_errors_total", "mqgate_broker_up", "mqgate_broker_reconnects_total",
                 "mqgate_queue_bytes", "mqgate_slow_consumer_closes_total",
                 "mqgate_fanout_latency_seconds"):
        check(name in fams, "family %s missing" % name)
    check(promcheck.value(fams, "mqgate_broker_up") == 1, "mqgate_broker_up is 1")
    before = fams
    # some traffic: a session, a subscription, a message, a bad frame
    ws = gw.session()
    ws.request({"op": "sub", "id": 1, "topic": "metrics/x"})
    t.mosquitto.client().publish("metrics/x", b"1", qos=1)
    eq(ws.recv_json()["op"], "msg", "the message")
    ws.send_text("not json")
    eq(ws.recv_json()["code"], "bad_json", "the error")
    st, hdrs, body = gw.http("/metrics")
    fams, errors = promcheck.check(body.decode("utf-8"))
    check(not errors, "not valid Prometheus text after traffic: %s" % errors[:5])
    def grew(name, by=1, **labels):
        a = promcheck.value(before, name, **labels) or 0
        b = promcheck.value(fams, name, **labels)
        check(b is not None and b >= a + by, "%s%s: %s -> %s" % (name, labels, a, b))
    grew("mqgate_messages_in_total")
    grew("mqgate_errors_total", code="bad_json")
    grew("mqgate_auth_total", method="anonymous", result="success")
    grew("mqgate_fanout_latency_seconds_count")
    check(promcheck.value(fams, "mqgate_sessions", state="authenticated") >= 1, "sessions gauge")
    check(promcheck.value(fams, "mqgate_subscriptions") >= 1, "subscriptions gauge")
    if os.path.exists("/usr/bin/promtool"):
        r = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=body,
                           capture_output=True)
        eq(r.returncode, 0, "promtool check metrics: %s" % r.stdout.decode() + r.stderr.decode())


@t.test("static files: served with content types")
def _():
    gw = anon()
    for path, ctype, body in (("/index.html", "text/html", b"<!doctype html><h1>mqgate</h1>\n"),
                              ("/app.js", "javascript", b"console.log('hi');\n"),
                              ("/style.css", "text/css", b"h1 { color: red }\n"),
                              ("/data.json", "application/json", b'{"a":1}\n'),
                              ("/sub/page.html", "text/html", b"<p>sub</p>\n")):
        st, hdrs, got = gw.http(path)
        eq(st, 200, "status of GET %s" % path)
        check(ctype in hdrs.get("content-type", ""), "content-type of %s: %r" % (
            path, hdrs.get("content-type")))
        eq(got, body, "body of %s" % path)
    eq(gw.http("/missing.html")[0], 404, "status of a missing file")
    eq(gw.http("/healthz")[0], 200, "healthz beside static files")


@t.test("static files: no escape from static_dir (.., encoded, symlinks)")
def _():
    gw = anon()
    for path in ("/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt",
                 "/%2E%2E/secret.txt", "/sub/..%2f..%2fsecret.txt", "/sub%2f..%2f..%2fsecret.txt",
                 "/..%5csecret.txt", "/link.txt", "/etc/passwd", "/%2fetc%2fpasswd",
                 "//etc/passwd"):
        try:
            st, hdrs, body = gw.http(path)
        except (OSError, T.http.client.HTTPException):
            continue    # hanging up is a refusal too
        check(b"TOP-SECRET" not in body and b"root:" not in body,
              "GET %s leaked a file outside static_dir (status %s)" % (path, st))
        check(st != 200, "GET %s answered 200" % path)
    gw.assert_serving()


# --- authentication timeout -------------------------------------------------

@t.test("unauthenticated: sub/unsub/pub refused with unauthenticated, then 4401 after timeout_s")
def _():
    gw = noauth()
    witness = gw.ws()
    witness.recv_json()
    t0 = time.monotonic()
    ws = gw.ws()
    eq(T.strip_epoch(ws.recv_json()), HELLO, "hello")
    ws.send_json({"op": "sub", "id": 1, "topic": "sensor/1", "qos": 0})
    expect_error(ws.recv_json(), "unauthenticated", 1, "sub before auth")
    ws.send_json({"op": "pub", "id": 2, "topic": "sensor/1", "text": "x"})
    expect_error(ws.recv_json(), "unauthenticated", 2, "pub before auth")
    ws.send_json({"op": "unsub", "id": 3, "topic": "sensor/1"})
    expect_error(ws.recv_json(), "unauthenticated", 3, "unsub before auth")
    ws.send_json({"op": "sub", "topic": "sensor/1"})
    expect_error(ws.recv_json(), "unauthenticated", what="sub without id before auth")
    ws.expect_close(4401, timeout=4)
    elapsed = time.monotonic() - t0
    check(elapsed > 0.7, "closed after %.2f s, before auth.timeout_s (1 s)" % elapsed)
    eq(ws.before_close, [], "frames before the close")
    # the witness, opened earlier and silent, is closed the same way
    witness.expect_close(4401, timeout=2, what="idle unauthenticated session")


@t.test("anonymous session is not closed by auth.timeout_s")
def _():
    gw = t.gateway({"auth": {"timeout_s": 1, "anonymous_role": "all"}, "roles": ROLES})
    ws = gw.session()
    frames = ws.collect(2.2)
    check(not ws.closed, "anonymous session closed (code %s)" % ws.close_code)
    eq(frames, [], "frames while idle")
    ws.sync()


# --- Origin -----------------------------------------------------------------

def handshake_status(gw, **kw):
    try:
        ws = gw.ws(**kw)
    except T.HandshakeRefused as e:
        return e.status
    ws.recv_json()
    ws.close(wait=0)
    return 101


@t.test("origins absent: same origin and no Origin accepted, others 403")
def _():
    gw = anon()
    p = gw.port
    eq(handshake_status(gw), 101, "no Origin header")
    eq(handshake_status(gw, origin="http://127.0.0.1:%d" % p), 101, "same-origin Origin")
    for o in ("http://evil.example.com", "http://localhost:%d" % p, "http://127.0.0.1:%d" % (p + 1),
              "http://127.0.0.1", "null"):
        eq(handshake_status(gw, origin=o), 403, "status for Origin %s" % o)
    # same origin means the Host header's host and port, whatever the listener's address
    eq(handshake_status(gw, host_header="dash.local:8080", origin="https://dash.local:8080"), 101,
       "Origin matching the Host header")
    eq(handshake_status(gw, host_header="dash.local:8080", origin="http://127.0.0.1:%d" % p), 403,
       "Origin matching the listener but not the Host header")


@t.test("origins list: exact match only")
def _():
    gw = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                    "origins": ["https://dash.example.com", "http://127.0.0.1:9"]})
    eq(handshake_status(gw), 101, "no Origin header")
    eq(handshake_status(gw, origin="https://dash.example.com"), 101, "listed origin")
    eq(handshake_status(gw, origin="http://127.0.0.1:9"), 101, "listed origin with port")
    for o in ("https://dash.example.com:8443", "http://dash.example.com", "https://evil.example.com",
              "https://dash.example.com.evil.net", "http://127.0.0.1:%d" % gw.port):
        eq(handshake_status(gw, origin=o), 403, "status for Origin %s" % o)


@t.test("origins [\"*\"]: any Origin accepted")
def _():
    gw = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES, "origins": ["*"]})
    for o in ("https://anything.example", "http://localhost:1", "null"):
        eq(handshake_status(gw, origin=o), 101, "status for Origin %s" % o)


# --- connection limits ------------------------------------------------------

@t.test("max_connections and max_connections_per_ip: 503, and room again after a close")
def _():
    gw = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                    "limits": {"max_connections": 3, "max_connections_per_ip": 2}})
    a = gw.session()
    b = gw.session()
    eq(handshake_status(gw), 503, "third session from 127.0.0.1 (per-IP limit 2)")
    c = gw.session(source="127.0.0.2")
    eq(handshake_status(gw, source="127.0.0.3"), 503, "fourth session overall (limit 3)")
    for s in (a, b, c):
        s.sync()
    eq(a.close(), 1000, "close code echoed")
    T.wait_for(lambda: handshake_status(gw, source="127.0.0.3") == 101, 3,
               what="a new session to be accepted after one closed")
    b.sync()
    c.sync()


# --- close ------------------------------------------------------------------

@t.test("close 1000 from the client is echoed with 1000")
def _():
    ws = anon().session()
    eq(ws.close(1000, wait=3), 1000, "close code echoed by the gateway")
    anon().assert_serving()


@t.test("keepalive: pings every ping_interval_s; a silent peer is dropped, one that answers is kept")
def _():
    gw = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                    "limits": {"ping_interval_s": 1}})
    good = gw.session()
    silent = gw.session()
    silent.auto_pong = False
    t0 = time.monotonic()
    while not silent.closed and time.monotonic() - t0 < T.scaled(6):
        good.poll(0.05)
        silent.poll(0.05)
    check(silent.closed, "silent session still open after 6 s")
    elapsed = time.monotonic() - t0
    check(silent.pings >= 1, "the silent session never got a ping")
    check(elapsed > 1.0, "silent session closed after only %.2f s" % elapsed)
    check(good.pings >= 1, "the answering session never got a ping")
    check(not good.closed, "the answering session was closed (%s)" % good.close_code)
    good.poll(1.2)
    check(not good.closed, "the answering session was closed (%s)" % good.close_code)
    good.sync()


@t.test("SIGTERM: sessions closed with 1001, exit 0")
def _():
    gw = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES}, fresh=True, name="sigterm")
    a = gw.session()
    b = gw.session()
    a.request({"op": "sub", "id": 1, "topic": "x/#"})
    gw.send_signal(signal.SIGTERM)
    a.expect_close(1001, what="session a")
    b.expect_close(1001, what="session b")
    gw.stop()   # records the exit status and sanitizer results


@t.test("wss: TLS listener with ALPN http/1.1, hello over TLS")
def _():
    cert = T.make_cert(t.tmpdir())
    if not cert:
        t.skip("no openssl tool to make a certificate")
    d = os.path.join(t.root, "tls")
    os.makedirs(d, exist_ok=True)
    for src in cert:
        os.replace(src, os.path.join(d, os.path.basename(src)))
    cfile, kfile = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    gw = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                    "listeners": [{"path": "/ws"},
                                  {"path": "/ws", "tls": {"cert_file": cfile, "key_file": kfile}}]})
    ws = gw.ws(listener=1)
    check(ws.sock.selected_alpn_protocol() in (None, "http/1.1"),
          "ALPN picked %r for a WebSocket client" % ws.sock.selected_alpn_protocol())
    eq(T.strip_epoch(ws.recv_json()), HELLO_ALL, "hello over TLS")
    eq(ws.recv_json(), STATUS_UP, "status over TLS")
    ws.sync()
    eq(gw.http("/healthz", listener=1)[0], 200, "healthz over TLS")


if __name__ == "__main__":
    sys.exit(t.run())
