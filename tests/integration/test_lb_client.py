#!/usr/bin/python3
"""The client library (www/mqgate.js) behind a real load balancer: two real
mqgated (with history) on one mosquitto behind HAProxy, and behind nginx,
each example rendered and run by proxies.py. The library's sessions run in
node (tests/js/lb-agent.mjs, driven over its stdin and stdout) and know
one URL only, the proxy's: when their gateway goes away (SIGKILL, or
SIGTERM: drain) the proxy must take them to the other gateway, where they
see another epoch (the "epoch" event), get a history backfill and live
data again within 5 s (MQG_TIME_SCALE stretches it), and every publish the
library resolved is at the broker.

Environment, beside mqgtest's: NODE (default: node on PATH; node 20 or
later, else the whole script is skipped), HAPROXY, NGINX (proxies.py),
MQG_SRCDIR."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
import proxies as P                                     # noqa: E402
from mqgtest import check, eq, fail                     # noqa: E402

NODE = os.environ.get("NODE") or shutil.which("node")
AGENT = os.path.join(P.SRCDIR, "tests", "js", "lb-agent.mjs")
MOVE_S = 5              # the bound: live data again within this

t = T.Suite("lb_client")

GW = {"auth": {"anonymous_role": "all"},
      "roles": {"all": {"subscribe": ["#"], "publish": ["#"]}},
      "history": {"filters": ["sensor/#"], "qos": 1, "messages": 200, "max_age_s": 3600},
      "limits": {"ping_interval_s": 5, "max_connections_per_ip": 1000}}

_state = {}


class Agent(object):
    """tests/js/lb-agent.mjs in node: send() a command, wait() for an
    event (each stamped "t", time.monotonic() at its arrival)."""

    def __init__(self):
        log = open(os.path.join(t.root, "lb-agent.log"), "ab")
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=t.site_cert()[0])
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.pop(k, None)
        self.proc = subprocess.Popen([NODE, "--experimental-websocket", "--no-warnings", AGENT],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                     env=env, preexec_fn=T._pdeathsig)
        log.close()
        T._processes.append(self.proc)
        self.events = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            ev["t"] = time.monotonic()
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()

    def send(self, **cmd):
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    def of(self, c, ev, **fields):
        """The events ev of session c so far whose fields are as given."""
        with self.cond:
            return [e for e in self.events if e.get("c") == c and e["ev"] == ev and
                    all(e.get(k) == v for k, v in fields.items())]

    def wait(self, c, ev, timeout=10.0, n=1, **fields):
        """The n-th event ev of session c with fields (after waiting)."""
        got = []

        def found():
            got[:] = self.of(c, ev, **fields)
            err = self.of(c, "error")
            if err:
                fail("lb-agent: %s" % err[0]["message"])
            return len(got) >= n
        with self.cond:
            if not self.cond.wait_for(found, T.scaled(timeout)):
                fail("no %s event %d of session %s (%s) within %.0f s; its last events: %s"
                     % (ev, n, c, fields, T.scaled(timeout),
                        [e for e in self.events if e.get("c") == c][-6:]))
        return got[n - 1]

    def open(self, c, url, source=None):
        self.send(op="open", c=c, url=url, source=source)
        return self.wait(c, "ready", 15)

    def stop(self):
        if self.proc.poll() is None:
            self.send(op="exit")
            try:
                self.proc.wait(T.scaled(5))
            except subprocess.TimeoutExpired:
                self.proc.kill()


def agent():
    if "agent" not in _state:
        _state["agent"] = Agent()
    return _state["agent"]


def gateways():
    if "gws" not in _state:
        _state["gws"] = [t.gateway(GW, name="gw-%s" % n, fresh=True) for n in "ab"]
    P.learn_epochs(_state["gws"])
    return _state["gws"]


def haproxy_url():
    if "haproxy" not in _state:
        _state["haproxy"] = P.Haproxy(t, gateways()).start()
    return _state["haproxy"].url


def nginx_url(fresh=False):
    """fresh: another nginx in place of the first, which may still count a
    gateway killed and restarted by an earlier test as failed: nginx leaves
    it alone for fail_timeout (10 s) whatever it does since (passive
    health), and with the other gateway draining it would answer 502."""
    if fresh and "nginx" in _state:
        eq(_state.pop("nginx").stop(), 0, "nginx exit status")
        _state["nginx_runs"] = _state.get("nginx_runs", 1) + 1
    if "nginx" not in _state:
        _state["nginx"] = P.start_nginx(t, "lb%d" % _state.get("nginx_runs", 1), gateways(),
                                        300, 1000)
    return "wss://localhost:%d/ws" % _state["nginx"].port


def back_in_service(gw):
    """gw (killed, or stopped and checked) running again, in the proxies'
    view too: HAProxy's check needs rise 2 x inter 500 ms."""
    gw.stopped = gw.term_sent = False
    gw.start()
    P.learn_epochs(gateways())
    time.sleep(T.scaled(1.5))


class Device(object):
    """A device publishing 1, 2, 3, ... to topic at the broker (QoS 1)
    every 50 ms until stop(), which returns what it published."""

    def __init__(self, topic):
        self.topic, self.sent, self.running = topic, [], True
        self.m = t.mosquitto.client()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        n = 0
        while self.running:
            n += 1
            self.m.publish(self.topic, b"%d" % n, qos=1)
            self.sent.append(n)
            time.sleep(0.05)

    def stop(self):
        self.running = False
        self.th.join(T.scaled(5))
        self.m.close()
        return self.sent


def failover(url, out, tag):
    """A library session on url subscribed with history while a device
    publishes (and, for out "term", the session publishes at QoS 1); its
    gateway taken out (out: "kill", SIGKILL, or "term", SIGTERM). Checks
    and returns what the application saw."""
    gws, a = gateways(), agent()
    c = "fo-" + tag
    ready = a.open(c, url)
    x = P.epoch_index(gws, ready["epoch"])
    y = 1 - x
    a.send(op="sub", c=c, filter="sensor/%s/#" % tag, history=200)
    a.wait(c, "subscribed")
    at_broker = t.mosquitto.client()
    if out == "term":
        at_broker.subscribe("cmd/%s" % tag, 1)
        a.send(op="pubs", c=c, topic="cmd/%s" % tag, every=20)
    dev = Device("sensor/%s/1" % tag)
    try:
        a.wait(c, "msg", n=10, epoch=gws[x].epoch, history=False)
        if out == "term":
            a.wait(c, "pub", n=10, ok=True)
        t0 = time.monotonic()
        if out == "kill":
            gws[x].proc.kill()
        else:
            gws[x].send_signal(signal.SIGTERM)
        ep = a.wait(c, "epoch", 15)
        rec = a.wait(c, "recovery", 15, epoch=gws[y].epoch)
        live = a.wait(c, "msg", 15, epoch=gws[y].epoch, history=False)
        dt = live["t"] - t0
    finally:
        sent = dev.stop()
    close = a.of(c, "close")[0]
    T.diag("%s via %s: close %s; epoch event %.2f s, first live message through the other "
           "gateway %.2f s after the signal; %d replayed"
           % (out, url.split(":")[0], close["code"], ep["t"] - t0, dt, rec["replayed"]))
    eq((ep["previous"], ep["epoch"]), (gws[x].epoch, gws[y].epoch),
       "the epoch event: from the gateway taken out to the other")
    eq((rec["recovered"], rec["reason"], rec["filter"]), (False, "restarted", "sensor/%s/#" % tag),
       "recovery on the other gateway (one URL: the library cannot tell a failover from a restart)")
    check(rec["replayed"] > 0, "no history backfill: %s" % rec)
    check(dt < T.scaled(MOVE_S), "live data again %.2f s after the signal" % dt)
    on_y = a.of(c, "msg", epoch=gws[y].epoch)
    first_live = next(i for i, m in enumerate(on_y) if not m["history"])
    eq(len([m for m in on_y[:first_live] if m["history"]]), rec["replayed"],
       "the backfill, flagged history, before the first live message")
    T.wait_for(lambda: a.of(c, "msg", value=sent[-1]), 10, what="the device's last message")
    seen = {m["value"] for m in a.of(c, "msg")}
    eq([n for n in sent if n not in seen], [], "device messages missed across the failover")
    if out == "term":
        a.send(op="stoppubs", c=c)
        n = a.wait(c, "stopped")["n"]
        T.wait_for(lambda: len(a.of(c, "pub")) >= n, 15, what="every publish answered")
        pubs = a.of(c, "pub")
        acked = {p["n"] for p in pubs if p["ok"]}
        eq(sorted({p["code"] for p in pubs if not p["ok"]} - {"disconnected"}), [],
           "publish failures other than disconnected")
        check([p for p in pubs if p["ok"] and p["t"] > live["t"]],
              "no publish acknowledged through the other gateway")
        got = set()
        deadline = time.monotonic() + T.scaled(10)
        while not acked <= got and time.monotonic() < deadline:
            try:
                got.add(json.loads(at_broker.get(0.5).payload)["n"])
            except T.TestFailure:
                pass
        eq(sorted(acked - got), [], "acknowledged publishes not at the broker")
        T.diag("%d publishes: %d acknowledged (all at the broker), %d rejected disconnected"
               % (n, len(acked), n - len(acked)))
        eq(gws[x].stop(), 0, "exit status of the drained gateway")
    else:
        gws[x].proc.wait()
    at_broker.close()
    a.send(op="close", c=c)
    back_in_service(gws[x])
    return close


@t.test("through nginx (hash $remote_addr consistent, passive health): SIGKILL of a library "
        "session's gateway; the library reconnects through nginx to the other (another epoch: "
        "the epoch event), gets a history backfill and live data within 5 s, misses no "
        "device message", timeout=40)
def _():
    failover(nginx_url(), "kill", "ngxkill")


@t.test("through HAProxy: library sessions from 16 client addresses on both gateways; a "
        "broadcast reaches each exactly once", timeout=40)
def _():
    gws, a, url = gateways(), agent(), haproxy_url()
    names = ["bc%d" % n for n in range(2, 18)]
    on = {}
    for n, c in enumerate(names):
        on[c] = P.epoch_index(gws, a.open(c, url, source="127.0.4.%d" % (n + 2))["epoch"])
        a.send(op="sub", c=c, filter="bcast/#")
    for c in names:
        a.wait(c, "subscribed")
    eq(sorted(set(on.values())), [0, 1], "gateways of 16 library sessions")
    m = t.mosquitto.client()
    for i in range(1, 6):
        m.publish("bcast/lib", b"%d" % i, qos=1)
    m.close()
    for c in names:
        a.wait(c, "msg", n=5)
    time.sleep(0.3)
    bad = {c: [e["value"] for e in a.of(c, "msg")] for c in names}
    bad = {c: v for c, v in bad.items() if v != [1, 2, 3, 4, 5]}
    eq(bad, {}, "sessions that did not get each of 5 broadcasts once")
    for c in names:
        a.send(op="close", c=c)


@t.test("through HAProxy: SIGKILL of a library session's gateway; HAProxy takes the "
        "reconnect to the other (the epoch event), history backfill and live data within "
        "5 s, no device message missed", timeout=40)
def _():
    failover(haproxy_url(), "kill", "hapkill")


@t.test("through HAProxy: SIGTERM (drain) of the gateway of a library session that "
        "publishes at QoS 1: 1001, on the other gateway with a backfill and live data "
        "within 5 s; every publish the library resolved is at the broker, the others "
        "rejected disconnected; the drained gateway exits 0", timeout=40)
def _():
    close = failover(haproxy_url(), "term", "hapterm")
    eq(close["code"], 1001, "close code through HAProxy")


@t.test("through nginx: the same SIGTERM (drain) of a publishing library session's gateway",
        timeout=40)
def _():
    close = failover(nginx_url(fresh=True), "term", "ngxterm")
    eq(close["code"], 1001, "close code through nginx")


@t.test("the proxies stop cleanly")
def _():
    if "agent" in _state:
        _state["agent"].stop()
    if "haproxy" in _state:
        rc = _state["haproxy"].stop()
        check(rc in (0, -signal.SIGUSR1), "haproxy exited with %s" % rc)
    if "nginx" in _state:
        eq(_state["nginx"].stop(), 0, "nginx exit status")


def node_major():
    try:
        return int(subprocess.run([NODE, "-p", "process.versions.node.split('.')[0]"],
                                  stdout=subprocess.PIPE, timeout=10).stdout or 0)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


if __name__ == "__main__":
    for tool, what in ((P.HAPROXY, "haproxy"), (P.NGINX, "nginx")):
        if not os.access(tool, os.X_OK):
            print("1..0 # SKIP %s not installed" % what, flush=True)
            sys.exit(0)
    if not NODE or node_major() < 20:
        print("1..0 # SKIP node 20 or later is needed (built-in WebSocket)", flush=True)
        sys.exit(0)
    sys.exit(t.run())
