#!/usr/bin/python3
"""HAProxy in front of two mqgated: the deployment of
config/haproxy-mqgate.cfg.

The example is rendered for this run by plain string replacement (free
loopback ports, a self-signed certificate, no IPv6 binds, no syslog,
maxconn within this machine's open-files limit, the
timeouts short enough to be seen: timeout server and tunnel 3 s under
gateways that ping every second) and run in the foreground (haproxy -db).
Every other directive is the example's. Sessions speak https/wss to
HAProxy only.

Environment, beside mqgtest's: HAPROXY (default /usr/sbin/haproxy;
missing: the whole script is skipped), MQG_SRCDIR."""

import json
import os
import signal
import ssl
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, fail                     # noqa: E402

HAPROXY = os.environ.get("HAPROXY", "/usr/sbin/haproxy")
SRCDIR = os.environ.get("MQG_SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(SRCDIR, "config", "haproxy-mqgate.cfg")
TIMEOUT_S = 3           # timeout server and timeout tunnel of the test copy

t = T.Suite("haproxy")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]}}
GW = {"listeners": [{"http_api": True}], "auth": {"anonymous_role": "all"},
      "roles": ROLES, "origins": ["https://localhost"],
      "limits": {"ping_interval_s": 1, "max_connections_per_ip": 1000}}


def gw_cfg():
    """A copy of GW: the harness fills in the listener's port."""
    return json.loads(json.dumps(GW))


def replace(text, old, new):
    if old not in text:
        raise AssertionError("%r not in %s" % (old, EXAMPLE))
    return text.replace(old, new)


class Haproxy(object):
    def __init__(self, gws, cert):
        self.dir = os.path.join(t.root, "haproxy")
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.http_port = T.free_port(), T.free_port()
        pem = os.path.join(self.dir, "site.pem")
        with open(pem, "w") as f:
            f.write(open(cert[0]).read() + open(cert[1]).read())
        with open(EXAMPLE) as f:
            text = f.read()
        for old, new in (
                ("    log /dev/log local0\n", ""),
                ("    maxconn 100000\n", "    maxconn 4000\n"),
                ("    bind :::443 v6only ssl crt /etc/haproxy/certs/dash.example.com.pem "
                 "alpn http/1.1\n", ""),
                ("    bind :::80 v6only\n", ""),
                ("bind :443 ssl", "bind 127.0.0.1:%d ssl" % self.port),
                ("bind :80\n", "bind 127.0.0.1:%d\n" % self.http_port),
                ("/etc/haproxy/certs/dash.example.com.pem", pem),
                ("timeout server 75s", "timeout server %ds" % TIMEOUT_S),
                ("timeout tunnel 300s", "timeout tunnel %ds" % TIMEOUT_S),
                ("inter 2s", "inter 500ms"),
                ("server gw1 127.0.0.1:8080 check", "server gw1 127.0.0.1:%d check" % gws[0].port),
                ("server gw2 127.0.0.1:8081 check", "server gw2 127.0.0.1:%d check" % gws[1].port)):
            text = replace(text, old, new)
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(text)
        self.log = open(os.path.join(self.dir, "haproxy.log"), "w")
        self.proc = None

    def check_config(self):
        r = subprocess.run([HAPROXY, "-c", "-f", self.cfg], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        return r.returncode, r.stdout.decode(errors="replace")

    def start(self):
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        T.wait_for(lambda: self.up(), 10, what="haproxy listening")

    def up(self):
        try:
            st, _, _ = self.https("/healthz")
            return st == 200
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)   # soft stop
            try:
                return self.proc.wait(T.scaled(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode if self.proc else None

    def https(self, path, method="GET", body=None, headers=None, source=None):
        conn = T.http.client.HTTPSConnection("127.0.0.1", self.port, timeout=T.scaled(5),
                                             context=client_tls(),
                                             source_address=(source, 0) if source else None)
        try:
            h = {"Host": "localhost"}
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def session(self, source=None):
        ws = T.ws_handshake(self.port, "/ws", protocols=["mqgate.v1"], tls=client_tls(),
                            host_header="localhost", origin="https://localhost",
                            source=source)
        ws.hello = ws.recv_json()
        eq(ws.hello.get("op"), "hello", "first frame through haproxy")
        ws.opening = ws.sync()
        return ws

    def stream(self, query, source=None):
        return T.EventStream(self.port, query, tls=client_tls(), source=source,
                             headers={"Host": "localhost"})


_state = {}


def client_tls():
    if "ctx" not in _state:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cert()[0])
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        _state["ctx"] = ctx
    return _state["ctx"]


def cert():
    if "cert" not in _state:
        c = T.make_cert(t.root)
        if not c:
            t.skip("no openssl tool to make a certificate")
        _state["cert"] = c
    return _state["cert"]


def setup():
    if "hap" not in _state:
        gws = [t.gateway(gw_cfg(), name="gw-a", fresh=True),
               t.gateway(gw_cfg(), name="gw-b", fresh=True)]
        hap = Haproxy(gws, cert())
        hap.start()
        _state["hap"] = (gws, hap)
    return _state["hap"]


def epoch_of(gws, epoch):
    for i, g in enumerate(gws):
        if g.epoch == epoch:
            return i
    fail("epoch %s is no gateway's" % epoch)


def learn_epochs(gws):
    for g in gws:
        if not getattr(g, "epoch", None):
            g.epoch = g.session().hello["epoch"]


@t.test("the rendered example config passes haproxy -c")
def _():
    gws = [t.gateway(gw_cfg(), name="gw-check")] * 2
    rc, out = Haproxy(gws, cert()).check_config()
    check(rc == 0, "haproxy -c exited %d:\n%s" % (rc, out))


@t.test("through haproxy: wss sessions, an SSE stream and a POST publish; the same client "
        "address lands on the same gateway, other addresses spread over both", timeout=40)
def _():
    gws, hap = setup()
    learn_epochs(gws)
    eq(hap.https("/", headers={})[0] in (403, 404, 200), True, "plain GET answered")
    seen = set()
    for i in range(4):
        seen.add(epoch_of(gws, hap.session().hello["epoch"]))
    eq(len(seen), 1, "gateways of four sessions from 127.0.0.1")
    by_addr = {}
    for n in range(2, 18):
        addr = "127.0.0.%d" % n
        by_addr[addr] = epoch_of(gws, hap.session(source=addr).hello["epoch"])
        again = epoch_of(gws, hap.session(source=addr).hello["epoch"])
        eq(again, by_addr[addr], "the gateway of a second session from %s" % addr)
    T.diag("gateway by source address: %s" % by_addr)
    eq(sorted(set(by_addr.values())), [0, 1], "gateways used by 16 addresses")
    s = hap.stream("topic=hap%2F%23")
    eq(s.status, 200, "stream status through haproxy")
    evs = [s.event() for _ in range(3)]
    eq([e[0] for e in evs], ["hello", "status", "ok"], "first events through haproxy")
    st, _, body = hap.https("/api/publish", method="POST",
                            body=b'{"topic":"hap/1","text":"via haproxy","qos":1}',
                            headers={"Content-Type": "application/json"})
    eq((st, json.loads(body)), (200, {"op": "ok"}), "publish through haproxy")
    ev = s.event()
    eq((ev[0], ev[2].get("text")), ("msg", "via haproxy"), "the published message in the stream")
    s.close()


@t.test("through haproxy: idle wss sessions and SSE streams outlive timeout tunnel and "
        "timeout server (3 s) on the gateway's pings (and the pongs) and keepalive comments",
        timeout=30)
def _():
    gws, hap = setup()
    ws = hap.session()
    s = hap.stream("topic=idle%2F%23")
    evs = [s.event() for _ in range(3)]
    eq(evs[-1][0], "ok", "stream open")
    # the session reads (and so answers the gateway's pings, as a browser
    # does) but sends nothing of its own; the stream only reads
    eq(ws.collect(TIMEOUT_S * 2 + 1), [], "frames to the idle session")
    check(not ws.closed, "the idle session was closed")
    m = t.mosquitto.client()
    r = ws.request({"op": "sub", "id": 1, "topic": "idle/#"})
    eq(r.get("op"), "ok", "the idle session still answers")
    m.publish("idle/1", b"still here", qos=1)
    ev = s.event()
    eq((ev[0], ev[2].get("text")), ("msg", "still here"), "the idle stream still streams")
    check(s.comments, "no keepalive comment came through haproxy")


@t.test("through haproxy: a gateway stopped (SIGTERM) closes its sessions 1001; they "
        "reconnect to the other gateway (another epoch) within seconds", timeout=40)
def _():
    gws, hap = setup()
    learn_epochs(gws)
    ws = hap.session()
    i = epoch_of(gws, ws.hello["epoch"])
    t0 = time.monotonic()
    gws[i].send_signal(signal.SIGTERM)
    code = ws.wait_close(10)
    eq(code, 1001, "close code of a stopping gateway")
    deadline = time.monotonic() + T.scaled(10)
    while True:
        try:
            ws2 = hap.session()
            break
        except (T.HandshakeRefused, OSError, T.TestFailure) as e:
            if time.monotonic() > deadline:
                fail("no session through haproxy after the stop: %s" % e)
            time.sleep(0.2)
    eq(epoch_of(gws, ws2.hello["epoch"]), 1 - i, "the gateway after the failover")
    T.diag("a new session on the other gateway %.1f s after SIGTERM" % (time.monotonic() - t0))
    gws[i].stop()


@t.test("haproxy: exits on SIGUSR1 (soft stop)")
def _():
    if "hap" in _state:
        rc = _state["hap"][1].stop()
        check(rc in (0, -signal.SIGUSR1), "haproxy exited with %s" % rc)


if __name__ == "__main__":
    if not os.access(HAPROXY, os.X_OK):
        print("1..0 # SKIP haproxy not installed", flush=True)
        sys.exit(0)
    sys.exit(t.run())
