#!/usr/bin/python3
"""Failures made to happen for real: a fault proxy (tests/faultproxy.py)
between mqgated and mosquitto cuts, stalls and refuses the broker
connection; mosquitto is killed with SIGKILL and started again on its port;
two brokers for failover; sessions that stop reading; SIGHUP with good and
bad files; SIGTERM with QoS 1 publishes in flight.  Figures (messages sent,
acknowledged, received by the broker, reconnect delays) are printed as TAP
diagnostics."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, diag, eq, expect_error, fail  # noqa: E402
from faultproxy import FaultProxy                       # noqa: E402

t = T.Suite("faults")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]}}
UP = {"op": "status", "broker": "up"}
DOWN = {"op": "status", "broker": "down"}
# publishes are not what these tests limit
FAST = {"publish_rate": 100000, "publish_burst": 100000}


def slack(seconds):
    """Extra time allowed on top of a deadline the daemon's own timers set,
    for slow runs (MQG_TIME_SCALE, e.g. under valgrind)."""
    return seconds * T.TIME_SCALE


def proxy(mosq):
    """A fault proxy in front of mosq, stopped after the test."""
    p = FaultProxy(mosq.port, name="proxy-%d" % mosq.port).start()
    T._open_resources.append(p)   # the harness closes it after the test
    return p


def uri(port):
    return "tcp://127.0.0.1:%d" % port


def gateway(mosq, uris, name, broker=None, limits=None, cfg=None):
    b = {"uris": uris, "reconnect_min_s": 1, "reconnect_max_s": 2}
    b.update(broker or {})
    c = {"auth": {"anonymous_role": "all"}, "roles": ROLES, "broker": b,
         "limits": dict(FAST, **(limits or {}))}
    c.update(cfg or {})
    return t.gateway(c, mosq=mosq, name=name, fresh=True)


def sub(ws, topic, qos=1, rid="sub"):
    r = ws.request({"op": "sub", "id": rid, "topic": topic, "qos": qos})
    if r.get("op") != "ok":
        fail("sub %s refused: %s" % (topic, T.show(r)))
    return r


def wait_frame(ws, pred, timeout, what):
    """Frames up to and including the first for which pred is true."""
    frames = ws.collect(timeout, until=lambda fs: fs and pred(fs[-1]))
    if not frames or not pred(frames[-1]):
        fail("%s: not seen within %.1f s; frames: %s" % (what, T.scaled(timeout),
                                                         T.show(frames[-6:])[:1500]))
    return frames


def wait_status(ws, state, timeout=10, what="session"):
    """Frames up to the status frame state; returns (frames before, seconds)."""
    t0 = time.monotonic()
    frames = wait_frame(ws, lambda f: f == {"op": "status", "broker": state}, timeout,
                        "%s: status %s" % (what, state))
    return frames[:-1], time.monotonic() - t0


def wait_health(g, code, timeout=10):
    T.wait_for(lambda: g.health() == code, timeout, what="/healthz %d" % code)


def log_since(g, mark):
    return T.read_text(g.logpath, mark)


def log_mark(g):
    try:
        return os.path.getsize(g.logpath)
    except OSError:
        return 0


def received(watchers, prefix):
    """Payload numbers received by MQTT watchers, as a list (with repeats)."""
    out = []
    for w in watchers:
        with w.cond:
            msgs = list(w.msgs)
        for m in msgs:
            p = m.payload.decode("utf-8", "replace")
            if p.startswith(prefix) and p[len(prefix):].isdigit():
                out.append(int(p[len(prefix):]))
    return out


class Pubs(object):
    """Numbered publishes from one session (integer ids, payload
    prefix+number) and what became of each: ok, error code, nothing yet."""

    def __init__(self, ws, topic, prefix, qos=1):
        self.ws, self.topic, self.prefix, self.qos = ws, topic, prefix, qos
        self.n = 0
        self.acked = []          # ids, in the order the oks came
        self.errors = {}         # id -> code
        self.other = []          # frames other than pub replies
        self.closed = False

    def send(self, count=1):
        for _ in range(count):
            i = self.n
            qos = self.qos[i % len(self.qos)] if isinstance(self.qos, tuple) else self.qos
            self.ws.send_json({"op": "pub", "id": i, "topic": self.topic,
                               "text": "%s%d" % (self.prefix, i), "qos": qos})
            self.n += 1

    def pump(self, timeout=0.001):
        if not self.closed:
            self.closed = not self.ws.poll(timeout)
        while self.ws.backlog:
            f = self.ws.backlog.popleft()[0]
            rid = f.get("id")
            if f.get("op") == "ok" and isinstance(rid, int):
                check(rid not in self.acked and rid not in self.errors,
                      "second reply for publish %d: %s" % (rid, T.show(f)))
                self.acked.append(rid)
            elif f.get("op") == "error" and isinstance(rid, int):
                check(rid not in self.acked and rid not in self.errors,
                      "second reply for publish %d: %s" % (rid, T.show(f)))
                self.errors[rid] = f.get("code")
            else:
                self.other.append(f)

    def pending(self):
        return self.n - len(self.acked) - len(self.errors)

    def settle(self, timeout):
        deadline = time.monotonic() + T.scaled(timeout)
        while self.pending() and not self.closed and time.monotonic() < deadline:
            self.pump(0.05)
        self.pump()
        return self.pending() == 0

    def stream(self, seconds, rate=200):
        """Publish at about rate a second for seconds, reading replies."""
        end = time.monotonic() + seconds
        step = 1.0 / rate
        while time.monotonic() < end and not self.closed:
            self.send()
            self.pump(step)

    def error_codes(self):
        out = {}
        for c in self.errors.values():
            out[c] = out.get(c, 0) + 1
        return out


def account(pubs, got, what):
    """Every acked publish must be at the broker: report the figures and
    fail on any acked-but-lost message."""
    gotset = set(got)
    lost = sorted(set(pubs.acked) - gotset)
    dups = len(got) - len(gotset)
    unacked_arrived = sorted((gotset - set(pubs.acked)) & set(range(pubs.n)))
    diag("%s: sent %d, acked %d, errors %s, unanswered %d; broker received %d "
         "(%d distinct, %d duplicates); acked-but-lost %d; arrived without ok %d %s"
         % (what, pubs.n, len(pubs.acked), pubs.error_codes() or "{}", pubs.pending(),
            len(got), len(gotset), dups, len(lost), len(unacked_arrived),
            unacked_arrived[:10] if unacked_arrived else ""))
    check(not lost, "%s: %d acked publishes never reached the broker: %s"
          % (what, len(lost), lost[:20]))
    return lost


# --- reconnect --------------------------------------------------------------

@t.test("proxy cuts the broker link (RST, then FIN): status down/up, /healthz 503/200, "
        "backoff grows, subscriptions restored", timeout=40)
def _():
    m = t.new_mosquitto("m-cut")
    p = proxy(m)
    g = gateway(m, [uri(p.port)], "cut", broker={"reconnect_min_s": 1, "reconnect_max_s": 4})
    w = m.client()
    w.publish("cut/ret", b"kept", qos=1, retain=True)
    a = g.session()
    b = g.session()
    sub(a, "cut/#", 1)
    eq(a.collect(2, until=lambda fs: fs), [{"op": "msg", "topic": "cut/ret", "text": "kept",
                                           "qos": 1, "retain": True}], "retained replay after sub")

    # RST, and new connections reset for 5 s: the retries show the backoff
    p.refuse("reset")
    t_cut = time.monotonic()
    eq(p.drop(rst=True), 1, "connections cut")
    before, secs = wait_status(a, "down", 5, "session a")
    eq(before, [], "frames before status down")
    diag("RST: status down after %.2f s" % secs)
    eq(wait_status(b, "down", 5, "session b")[0], [], "session b: frames before status down")
    wait_health(g, 503, 5)
    # published on the broker while the gateway is cut off (clean session
    # upstream: the broker keeps nothing for it)
    w.publish("cut/during", b"missed", qos=1)
    # a sub while the broker is away: ok at once, subscribed on reconnect
    eq(b.request({"op": "sub", "id": "away", "topic": "cut2/#", "qos": 1}),
       {"op": "ok", "id": "away", "qos": 1}, "sub while the broker is away")
    time.sleep(max(0, 5.0 - (time.monotonic() - t_cut)))
    tries = p.attempts_since(t_cut)
    p.allow()
    t_allow = time.monotonic()
    before, secs = wait_status(a, "up", 8, "session a")
    # at once: "after down -> up the subscriptions are already restored"
    w.publish("cut/after-rst", b"one", qos=1)
    diag("refused for %.1f s; reconnected %.2f s after the proxy accepted again"
         % (t_allow - t_cut, secs))
    gaps = [round(y - x, 2) for x, y in zip([t_cut] + tries, tries)]
    diag("connection attempts while refused, seconds after the previous "
         "(first: after the cut): %s" % gaps)
    delays = re.findall(r"reconnecting to the broker in (\d+) ms", g.log_text(True))
    diag("delays the gateway logged (ms): %s" % ", ".join(delays))
    check(len(tries) >= 2, "only %d connection attempts in 5 s with reconnect_min_s 1" % len(tries))
    check(all(0.4 <= x <= 4.0 + slack(0.6) for x in gaps),
          "a retry came sooner than reconnect_min_s/2 or later than reconnect_max_s: %s" % gaps)
    check(max(gaps) > 1.05, "the delay never grew past reconnect_min_s: %s" % gaps)
    frames = wait_frame(a, lambda f: f.get("topic") == "cut/after-rst", 5,
                        "message published right after status up")
    diag("session a between status down and up: %s; after up: %s; the message published on the "
         "broker during the outage was %s"
         % (T.show(before), T.show(frames), "delivered" if any(f.get("topic") == "cut/during"
                                                                for f in before + frames) else "not delivered"))
    eq(frames[-1], {"op": "msg", "topic": "cut/after-rst", "text": "one", "qos": 1, "retain": False},
       "message after recovery")
    eq(wait_status(b, "up", 5, "session b")[0], [], "session b: frames before status up")
    wait_health(g, 200, 5)
    w.publish("cut2/x", b"late", qos=1)
    eq(b.recv_json(), {"op": "msg", "topic": "cut2/x", "text": "late", "qos": 1, "retain": False},
       "message on the filter subscribed while the broker was away")

    # FIN, proxy accepting: reconnected within reconnect_min_s
    t_cut = time.monotonic()
    eq(p.drop(rst=False), 1, "connections closed (FIN)")
    wait_status(a, "down", 5, "session a (FIN)")
    before, _ = wait_status(a, "up", 5, "session a (FIN)")
    diag("FIN: down and up again after %.2f s; frames between: %s"
         % (time.monotonic() - t_cut, T.show(before)))
    wait_health(g, 200, 5)
    a.collect(0.5)
    w.publish("cut/after-fin", b"two", qos=1)
    frames = wait_frame(a, lambda f: f.get("topic") == "cut/after-fin", 5, "message after FIN recovery")
    eq(frames[-1]["text"], "two", "message after FIN recovery")
    eq(p.accepted, 3, "broker connections made through the proxy (first, after RST, after FIN)")


@t.test("a silent broker (link stalled both ways) is noticed by the keepalive: status down, "
        "then up on a new connection once the link moves again", timeout=30)
def _():
    m = t.new_mosquitto("m-stall")
    p = proxy(m)
    g = gateway(m, [uri(p.port)], "stall", broker={"keepalive_s": 2, "reconnect_min_s": 1,
                                                   "reconnect_max_s": 1})
    a = g.session()
    sub(a, "stall/#", 1)
    w = m.client()
    p.stall("both")
    before, secs = wait_status(a, "down", 10)
    diag("link stalled with keepalive_s 2: status down after %.2f s" % secs)
    # Paho gives up when a PINGRESP is missing at its next keepalive check
    check(secs < 3 * 2 + slack(1.5), "a silent broker noticed only after %.2f s with keepalive_s 2" % secs)
    wait_health(g, 503, 2)
    p.resume()
    before, secs2 = wait_status(a, "up", 10)
    diag("link moving again: status up %.2f s later; broker connections through the proxy: %d"
         % (secs2, p.accepted))
    eq(p.accepted, 2, "broker connections made (the stalled one was given up)")
    a.collect(0.5)
    w.publish("stall/after", b"moving", qos=1)
    wait_frame(a, lambda f: f.get("topic") == "stall/after", 5, "message after the stall")


@t.test("mosquitto killed (SIGKILL) and started again on its port: status, /healthz, "
        "subscriptions restored", timeout=30)
def _():
    m = t.new_mosquitto("m-kill")
    g = gateway(m, [uri(m.port)], "kill")
    w = m.client()
    w.publish("k9/ret", b"kept", qos=1, retain=True)
    a = g.session()
    sub(a, "k9/#", 1)
    eq(a.collect(2, until=lambda fs: fs)[0].get("retain"), True, "retained replay after sub")
    w.close()
    m.kill9()
    eq(wait_status(a, "down", 5)[0], [], "frames before status down")
    wait_health(g, 503, 5)
    time.sleep(1.5)
    t0 = time.monotonic()
    m.start()
    w = m.client()
    before, secs = wait_status(a, "up", 8)
    w.publish("k9/after", b"back", qos=1)
    diag("broker back on port %d: status up after %.2f s" % (m.port, secs))
    eq(before, [], "frames while the broker was away")
    frames = wait_frame(a, lambda f: f.get("topic") == "k9/after", 5, "message published right after status up")
    diag("frames after status up: %s (mosquitto has no persistence: the retained "
         "message died with it)" % T.show(frames))
    eq(frames[-1], {"op": "msg", "topic": "k9/after", "text": "back", "qos": 1, "retain": False},
       "message after restart")
    wait_health(g, 200, 5)
    diag("recovered in %.2f s after mosquitto started" % (time.monotonic() - t0))
    # the restarted broker holds no retained message: the gateway must not
    # replay one of its own
    b = g.session()
    sub(b, "k9/#", 1)
    eq([f for f in b.collect(1.0) if f.get("retain")], [], "retained replay to a new session after the restart")


@t.test("failover: uris [proxy->A, B]; A cut and refused -> B; A back: the gateway stays "
        "on B until B fails, then returns to A", timeout=40)
def _():
    ma = t.new_mosquitto("m-fa")
    mb = t.new_mosquitto("m-fb")
    pa = proxy(ma)
    g = gateway(ma, [uri(pa.port), uri(mb.port)], "failover")
    check(re.search(r"connected to broker tcp://127\.0\.0\.1:%d" % pa.port, g.log_text()),
          "the gateway did not start on the first uri")
    a = g.session()
    sub(a, "fo/#", 1)
    wa, wb = ma.client(), mb.client()
    wa.subscribe("fo/#", 1)
    wb.subscribe("fo/#", 1)

    pa.refuse("close")
    pa.drop(rst=True)
    mark = log_mark(g)
    wait_status(a, "down", 5)
    before, secs = wait_status(a, "up", 10)
    diag("A cut and refused: up again after %.2f s" % secs)
    log = log_since(g, mark)
    diag("gateway log: " + "; ".join(l.split("]", 1)[-1].strip() for l in log.splitlines()
                                     if re.search(r"connect|broker", l)))
    check(re.search(r"connected to broker tcp://127\.0\.0\.1:%d" % mb.port, log),
          "the gateway did not connect to B")
    wait_health(g, 200, 5)
    a.collect(0.5)
    wb.publish("fo/from-b", b"b1", qos=1)
    wait_frame(a, lambda f: f.get("topic") == "fo/from-b", 5, "message published on B")
    eq(a.request({"op": "pub", "id": "p1", "topic": "fo/to-b", "text": "x", "qos": 1}),
       {"op": "ok", "id": "p1"}, "QoS 1 publish while on B")
    eq([x.topic for x in wb.get_until(lambda x: x.topic == "fo/to-b")][-1], "fo/to-b",
       "publish arrived at B")

    # A is back: nothing happens while B holds
    pa.allow()
    mark = log_mark(g)
    time.sleep(3)
    eq(pa.active(), 0, "connections through A's proxy once A is back (B still up)")
    log = log_since(g, mark)
    check(not re.search(r"connecting to broker", log), "the gateway moved while B was up: %s" % log)
    diag("A back for 3 s while B is up: the gateway stays on B (no connection attempt to A)")

    # B fails: the gateway goes back to the first uri
    mark = log_mark(g)
    mb.kill9()
    wait_status(a, "down", 5)
    before, secs = wait_status(a, "up", 10)
    log = log_since(g, mark)
    check(re.search(r"connected to broker tcp://127\.0\.0\.1:%d" % pa.port, log),
          "after B failed the gateway did not return to A; log:\n%s" % log)
    diag("B killed: back on A after %.2f s" % secs)
    eq(pa.active(), 1, "connections through A's proxy")
    a.collect(0.5)
    wa.publish("fo/from-a", b"a1", qos=1)
    wait_frame(a, lambda f: f.get("topic") == "fo/from-a", 5, "message published on A")


# --- publishes while the broker is away -------------------------------------

@t.test("QoS 1 and 2 publishes while the broker is away: buffered, acked only once at the broker; "
        "over broker.buffer_messages -> broker_unavailable, the oldest keep their place", timeout=30)
def _():
    m = t.new_mosquitto("m-buf")
    p = proxy(m)
    g = gateway(m, [uri(p.port)], "buffer", broker={"buffer_messages": 20})
    w = m.client()
    w.subscribe("buf/#", 1)
    a = g.session()
    pubs = Pubs(a, "buf/t", "b", qos=(1, 2))
    p.refuse("close")
    p.drop(rst=True)
    wait_status(a, "down", 5)
    pubs.send(25)
    pubs.settle(1.0)
    eq(sorted(pubs.errors), list(range(20, 25)), "publishes refused while the broker is away")
    eq(set(pubs.errors.values()), {"broker_unavailable"}, "error codes of the refused publishes")
    eq(pubs.acked, [], "oks while the broker is away")
    pubs.pump(1.0)
    eq(pubs.acked, [], "oks while the broker is away (after 1 s)")
    eq(received([w], "b"), [], "messages at the broker while the gateway is cut off")
    p.allow()
    check(pubs.settle(10), "publishes unanswered 10 s after the broker came back: %d" % pubs.pending())
    eq([f for f in pubs.other], [UP], "other frames")
    eq(sorted(pubs.acked), list(range(20)), "acked after the broker came back")
    w.publish("buf/mark", b"mark", qos=1)
    got = [x.payload.decode() for x in w.get_until(lambda x: x.payload == b"mark", timeout=5)]
    # MQTT orders messages per QoS: mosquitto releases a QoS 2 message at
    # PUBREL, after the QoS 1 messages that came with it
    eq(sorted(got[:-1], key=lambda x: int(x[1:])), ["b%d" % i for i in range(20)],
       "at the broker (none of the refused)")
    for q in (1, 2):
        eq([x for x in got[:-1] if int(x[1:]) % 2 == q - 1], ["b%d" % i for i in range(q - 1, 20, 2)],
           "QoS %d publishes at the broker, in order" % q)
    account(pubs, [int(x[1:]) for x in got[:-1]], "buffer_messages 20, 25 sent while away")


@t.test("QoS 0 publishes while the broker is away: ok at once up to broker.buffer_messages, "
        "broker_unavailable beyond, delivered after the reconnect", timeout=30)
def _():
    m = t.new_mosquitto("m-q0")
    p = proxy(m)
    g = gateway(m, [uri(p.port)], "qos0", broker={"buffer_messages": 5})
    w = m.client()
    w.subscribe("q0/#", 1)
    a = g.session()
    pubs = Pubs(a, "q0/t", "z", qos=0)
    p.refuse("close")
    p.drop(rst=True)
    wait_status(a, "down", 5)
    pubs.send(8)
    pubs.settle(2.0)
    diag("8 QoS 0 publishes with buffer_messages 5 while away: ok %s, errors %s"
         % (pubs.acked, pubs.errors))
    p.allow()
    wait_frame(a, lambda f: f == UP, 10, "status up")
    time.sleep(0.5)
    w.publish("q0/mark", b"mark", qos=1)
    got = [x.payload for x in w.get_until(lambda x: x.payload == b"mark", timeout=5)][:-1]
    diag("at the broker after the reconnect: %s" % got)
    eq(sorted(pubs.acked), list(range(5)), "QoS 0 publishes answered ok while away")
    eq(sorted(pubs.errors), [5, 6, 7], "QoS 0 publishes refused while away")
    eq(got, [b"z%d" % i for i in range(5)], "QoS 0 publishes delivered after the reconnect")


@t.test("zero acked-but-lost: a QoS 1 stream across a broker SIGKILL and restart", timeout=40)
def _():
    m = t.new_mosquitto("m-stream")
    p = proxy(m)
    g = gateway(m, [uri(p.port)], "stream")
    w1 = m.client()
    w1.subscribe("st/#", 1)
    a = g.session()
    pubs = Pubs(a, "st/t", "s")
    pubs.stream(1.0)
    # the broker dies; the proxy refuses until a watcher is subscribed on
    # the new broker, so that what the gateway sends after it is seen
    p.refuse("close")
    m.kill9()
    pubs.stream(1.0)
    m.start()
    w2 = m.client()
    w2.subscribe("st/#", 1)
    p.allow()
    pubs.stream(2.0)
    check(pubs.settle(10), "publishes unanswered 10 s after the end: %d" % pubs.pending())
    statuses = [f for f in pubs.other if f.get("op") == "status"]
    eq(statuses, [DOWN, UP], "status frames")
    time.sleep(0.5)
    account(pubs, received([w1, w2], "s"), "SIGKILL of mosquitto mid-stream")


@t.test("publishes lost on the wire (link stalled, then cut): QoS 1 each answered, none acked "
        "without reaching the broker; QoS 0 acked at hand-off", timeout=30)
def _():
    m = t.new_mosquitto("m-wire")
    p = proxy(m)
    g = gateway(m, [uri(p.port)], "wire")
    w = m.client()
    w.subscribe("wire/#", 1)
    a = g.session()
    pubs = Pubs(a, "wire/t", "w")
    pubs.send(10)
    check(pubs.settle(5), "publishes before the stall unanswered")
    # gateway -> broker stalls: the next PUBLISHes sit in the proxy's
    # socket buffers and die with the connection
    p.stall("up")
    pubs.send(20)
    pubs.pump(0.5)
    eq(len(pubs.acked), 10, "oks while the link is stalled")
    p.drop(rst=True)
    p.resume()
    check(pubs.settle(10), "%d publishes never answered after the link was cut and came back "
          "(sent %d, ok %d, errors %s)" % (pubs.pending(), pubs.n, len(pubs.acked), pubs.errors))
    deadline = time.monotonic() + T.scaled(10)
    while UP not in pubs.other and time.monotonic() < deadline:
        pubs.pump(0.1)
    eq([f for f in pubs.other if f.get("op") == "status"], [DOWN, UP], "status frames")
    time.sleep(0.5)
    diag("replies: ok %s; errors %s" % (sorted(pubs.acked), pubs.errors))
    account(pubs, received([w], "w"), "PUBLISHes lost in the cut link")
    # broker -> gateway stalls: the broker has the messages, its PUBACKs
    # die with the connection
    pubs2 = Pubs(a, "wire/t", "v")
    p.stall("down")
    pubs2.send(20)
    pubs2.pump(0.5)
    eq(pubs2.acked, [], "oks while the PUBACKs are held")
    p.drop(rst=True)
    p.resume()
    check(pubs2.settle(10), "%d publishes never answered after the link was cut" % pubs2.pending())
    time.sleep(0.5)
    got = received([w], "v")
    account(pubs2, got, "PUBACKs lost in the cut link")
    diag("publishes that reached the broker but were answered broker_unavailable: %d"
         % len(set(got) & set(pubs2.errors)))
    # QoS 0: ok once handed to the MQTT client, so a cut link loses them
    # after their ok
    if [f for f in pubs2.other if f.get("op") == "status"][-1:] != [UP]:
        wait_frame(a, lambda f: f == UP, 10, "status up")
    pubs3 = Pubs(a, "wire/t", "q", qos=0)
    p.stall("up")
    pubs3.send(5)
    pubs3.pump(0.5)
    eq(sorted(pubs3.acked), list(range(5)), "oks for QoS 0 publishes on a stalled link")
    p.drop(rst=True)
    p.resume()
    wait_frame(a, lambda f: f == UP, 10, "status up")
    time.sleep(0.5)
    diag("QoS 0: 5 acked on a stalled link that was then cut; at the broker: %d"
         % len(set(received([w], "q"))))


@t.test("zero acked-but-lost: a QoS 1 stream across a failover (A cut and refused -> B)", timeout=40)
def _():
    ma = t.new_mosquitto("m-sfa")
    mb = t.new_mosquitto("m-sfb")
    pa = proxy(ma)
    g = gateway(ma, [uri(pa.port), uri(mb.port)], "stream-failover")
    wa, wb = ma.client(), mb.client()
    wa.subscribe("sf/#", 1)
    wb.subscribe("sf/#", 1)
    a = g.session()
    pubs = Pubs(a, "sf/t", "f")
    pubs.stream(1.0)
    pa.refuse("close")
    pa.drop(rst=True)
    pubs.stream(2.5)
    check(pubs.settle(10), "publishes unanswered 10 s after the end: %d" % pubs.pending())
    eq([f for f in pubs.other if f.get("op") == "status"], [DOWN, UP], "status frames")
    time.sleep(0.5)
    ra, rb = received([wa], "f"), received([wb], "f")
    diag("at A %d, at B %d" % (len(ra), len(rb)))
    account(pubs, ra + rb, "failover mid-stream")
    check(rb, "nothing reached B")


# --- slow consumers ---------------------------------------------------------

_TEXT_AT = re.compile(rb'"text":"(\d{6})')


def read_fast(ws, n, out, timeout):
    """Thread body: read frames straight off the socket (the harness' WS
    parser is too slow to keep up with a C sender) until n msg frames
    came; out gets the numbers seen, the time of the last one, and the
    close code if the gateway closed the session."""
    seen = []
    sock = ws.sock
    buf = bytes(ws.buf)
    ws.buf.clear()
    pos = 0
    deadline = time.monotonic() + timeout
    out["close"] = None
    try:
        while len(seen) < n and time.monotonic() < deadline:
            while True:
                if len(buf) - pos < 2:
                    break
                b0, b1 = buf[pos], buf[pos + 1]
                ln, hl = b1 & 0x7F, 2
                if ln == 126:
                    if len(buf) - pos < 4:
                        break
                    ln, hl = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
                elif ln == 127:
                    if len(buf) - pos < 10:
                        break
                    ln, hl = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
                if len(buf) - pos < hl + ln:
                    break
                op = b0 & 0x0F
                payload = buf[pos + hl:pos + hl + ln]
                pos += hl + ln
                if op == T.TEXT:
                    mt = _TEXT_AT.search(payload, 0, 120)
                    if mt and payload.startswith(b'{"op":"msg"'):
                        seen.append(int(mt.group(1)))
                        out["last"] = time.monotonic()
                elif op == T.CLOSE:
                    out["close"] = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                    raise EOFError()
            sock.settimeout(1.0)
            try:
                data = sock.recv(1 << 20)
            except OSError:
                continue
            if not data:
                raise EOFError()
            buf = buf[pos:] + data
            pos = 0
    except EOFError:
        pass
    ws.buf[:] = buf[pos:]     # the harness reads on from here
    out["seen"] = seen


def fanout(pub, sessions, n, pad, topic, rate):
    """Publish n QoS 0 messages at rate a second (in bursts every 10 ms)
    while each session is read by its own thread; returns (results,
    publish start, publish end)."""
    results = [dict() for _ in sessions]
    threads = [threading.Thread(target=read_fast, args=(s, n, r, 30)) for s, r in zip(sessions, results)]
    for th in threads:
        th.start()
    t0 = time.monotonic()
    per_tick = max(1, rate // 100)
    for i in range(n):
        pub.publish(topic, ("%06d" % i) + pad, qos=0, wait=False)
        if i % per_tick == per_tick - 1:
            time.sleep(max(0, t0 + (i + 1) / rate - time.monotonic()))
    t1 = time.monotonic()
    for th in threads:
        th.join(40)
    return results, t0, t1


@t.test("slow consumers: sessions that stop reading are closed 4408, the others get "
        "everything at the full publish rate", timeout=60)
def _():
    g = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                   "limits": {"max_queue_bytes": 262144}}, fresh=True, name="slow")
    pub = t.mosquitto.client()
    # 3 s of publishing; slower under valgrind
    rate = int(2000 / T.TIME_SCALE)
    n, pad = 3 * rate, "x" * 500
    fast = [g.session() for _ in range(3)]
    for s in fast:
        sub(s, "slow/b", 0)
    slow = [g.session(rcvbuf=4096) for _ in range(2)]
    for s in slow:
        sub(s, "slow/#", 0)
    res, t0, t1 = fanout(pub, fast, n, pad, "slow/b", rate)
    lines = ["published %d x %d B at %d/s in %.2f s (%.0f msg/s, %.2f MB/s)"
             % (n, len(pad) + 6, rate, t1 - t0, n / (t1 - t0), n * (len(pad) + 6) / (t1 - t0) / 1e6)]
    for i, r in enumerate(res):
        lines.append("fast session %d: %d messages, close %s, last one %.3f s after the last publish"
                     % (i, len(r["seen"]), r["close"], r.get("last", t1) - t1))
    # What the kernel absorbs for a session that does not read (its send
    # buffer grows on its own) depends on the machine and on how fast the
    # gateway ran: where the fan-out above was not enough to fill the
    # stalled sessions' queues, more comes on a topic only they watch,
    # until the gateway reports both closed (or 16 MB went unread).
    extra = 0
    while g.metric("mqgate_slow_consumer_closes_total") < 2 and extra < 32768:
        for i in range(256):
            pub.publish("slow/pad", pad, qos=0, wait=False)
        extra += 256
        time.sleep(T.scaled(0.05))
    lines.append("%d more messages to the stalled sessions only" % extra)
    codes = []
    for i, s in enumerate(slow):
        code = s.wait_close(10)
        codes.append(code)
        got = [f for f in s.before_close if f.get("op") == "msg"]
        lines.append("slow session %d: close %s after %d messages" % (i, code, len(got)))
    diag("\n".join(lines))
    for i, r in enumerate(res):
        eq(r["close"], None, "close code at fast session %d" % i)
        eq(r["seen"], list(range(n)), "messages at fast session %d" % i)
    eq(codes, [4408, 4408], "close codes of the slow sessions")
    for s in fast:
        s.sync()


# --- reload -----------------------------------------------------------------

RELOAD_ROLES = {"ops": {"subscribe": ["a/#", "b/#"], "publish": ["a/#"]},
                "gone": {"subscribe": ["#"]}}


def lines_of(path):
    with open(path) as f:
        return f.read().splitlines()


@t.test("SIGHUP, good file: an uncovered subscription is dropped with an error, a session "
        "whose roles vanished is closed 4401; others go on", timeout=20)
def _():
    g = t.gateway({"auth": {"jwt": t.jwt_config()}, "roles": RELOAD_ROLES}, fresh=True, name="hup")
    ops = g.session(token=t.token("olga", ["ops"]))
    sub(ops, "a/#", 1, "s1")
    sub(ops, "b/#", 1, "s2")
    gone = g.session(token=t.token("gus", ["gone"]))
    sub(gone, "#", 0)
    w = t.mosquitto.client()
    mark = log_mark(g)
    # the broker settings change too: they wait for a restart
    g.write_config(dict(g.cfg, roles={"ops": {"subscribe": ["a/#"], "publish": ["a/#"]}},
                        broker=dict(g.cfg["broker"], keepalive_s=17)))
    g.send_signal(signal.SIGHUP)
    before = gone.expect_close(4401, what="session whose role vanished")
    diag("session with vanished role: frames before close 4401: %s" % T.show(before))
    f = ops.recv_json(5)
    expect_error(f, "forbidden", what="frame for the withdrawn subscription b/#")
    diag("withdrawn subscription: %s" % T.show(f))
    check("b/#" in f["message"], "the error does not name the filter: %s" % T.show(f))
    w.publish("b/1", b"no", qos=1)
    w.publish("a/1", b"yes", qos=1)
    frames = wait_frame(ops, lambda x: x.get("topic") == "a/1", 5, "a/1 after the reload")
    eq([x for x in frames if x.get("op") == "msg"],
       [{"op": "msg", "topic": "a/1", "text": "yes", "qos": 1, "retain": False}],
       "messages after the reload (b/1 must not come)")
    log = log_since(g, mark)
    check("configuration reloaded" in log, "no 'configuration reloaded' in the log:\n%s" % log)
    warn = [x for x in log.splitlines() if "restart" in x]
    diag("broker.keepalive_s changed by the reload: %s" % (warn or "nothing logged"))
    check(warn, "no warning that the broker change waits for a restart:\n%s" % log)
    r = ops.request({"op": "sub", "id": "s3", "topic": "b/#"})
    expect_error(r, "forbidden", "s3", "sub b/# after the reload")


@t.test("SIGHUP, bad file (type error, then syntax error): nothing changes, the error "
        "names file and line", timeout=20)
def _():
    g = t.gateway({"auth": {"jwt": t.jwt_config()}, "roles": RELOAD_ROLES}, fresh=True, name="badhup")
    ops = g.session(token=t.token("olga", ["ops"]))
    sub(ops, "b/#", 1)
    gone = g.session(token=t.token("gus", ["gone"]))
    good = g.cfg
    w = t.mosquitto.client()
    base = os.path.basename(g.cfgpath)
    # 1: a role's subscribe list is a string (and "gone" is removed)
    bad = dict(good, roles={"ops": {"subscribe": "a/#"}})
    g.write_config(bad)
    line = next(i + 1 for i, l in enumerate(lines_of(g.cfgpath)) if '"subscribe": "a/#"' in l)
    # 2: JSON cut short
    text2 = json.dumps(dict(good, roles={}), indent=2)
    text2 = text2[:text2.rindex('"roles"')] + '"roles": {"ops": [\n}\n'
    line2 = text2.count("\n", 0, text2.rindex("}")) + 1
    for what, ln, write in (("type error", line, None), ("syntax error", line2, text2)):
        if write is not None:
            with open(g.cfgpath, "w") as f:
                f.write(write)
        mark = log_mark(g)
        g.send_signal(signal.SIGHUP)
        T.wait_for(lambda: "reload refused" in log_since(g, mark), 5, what="'reload refused' in the log")
        log = log_since(g, mark)
        diag("%s at line %d; the gateway logged:\n%s" % (what, ln, log.strip()))
        check(re.search(r"%s:%d\b" % (re.escape(base), ln), log) or
              re.search(r"%s.*line %d\b" % (re.escape(base), ln), log),
              "%s: the log does not name %s and line %d" % (what, base, ln))
        check(g.running(), "the gateway exited")
        eq(ops.sync(), [], "frames at the ops session after the refused reload")
        eq(gone.sync(), [], "frames at the gone session after the refused reload")
        w.publish("b/1", what.encode(), qos=1)
        eq(ops.recv_json(), {"op": "msg", "topic": "b/1", "text": what, "qos": 1, "retain": False},
           "message on b/# after the refused reload")
        g.session(token=t.token("gus2", ["gone"])).sync()
    g.write_config(good)


# --- shutdown ---------------------------------------------------------------

class TermCase(object):
    """A gateway with n QoS 1 publishes in flight when SIGTERM comes: the
    link to the broker stalled by the proxy ("stall") or cut and refused
    so that the publishes wait in the buffer ("away"); back_after: seconds
    after SIGTERM when the proxy lets traffic through again (None: never
    before the gateway has exited)."""

    def __init__(self, name, mode, back_after, n=50, broker=None):
        self.name, self.mode, self.back_after, self.n = name, mode, back_after, n
        self.m = t.new_mosquitto("m-" + name)
        self.p = proxy(self.m)
        b = {"client_id": "mqgate-" + name}
        b.update(broker or {})
        self.g = gateway(self.m, [uri(self.p.port)], name, broker=b)
        self.w = self.m.client()
        self.w.subscribe("term/#", 1)
        self.sessions = [self.g.session(), self.g.session()]
        self.pubs = Pubs(self.sessions[0], "term/t", "t")
        if mode == "stall":
            self.p.stall("both")
        else:
            self.p.refuse("close")
            self.p.drop(rst=True)
            for s in self.sessions:
                wait_status(s, "down", 5)
        self.pubs.send(n)
        self.pubs.pump(0.3)
        eq(self.pubs.acked, [], "%s: oks before SIGTERM" % name)
        self.exit_secs = None

    def back(self):
        if self.mode == "stall":
            self.p.resume()
        else:
            self.p.allow()

    def term(self):
        self.t0 = time.monotonic()
        if self.back_after is not None:
            self.timer = threading.Timer(self.back_after, self.back)
            self.timer.start()
        self.g.send_signal(signal.SIGTERM)

    def finish(self):
        """After the exit (or the give-up): figures, then the harness' stop."""
        self.codes = [s.wait_close(1) for s in self.sessions]
        self.pubs.pump()
        self.late = ""
        if self.back_after is None or self.exit_secs is None:
            t_back = time.monotonic() - self.t0
            self.back()
            if self.exit_secs is None:
                try:
                    self.g.proc.wait(T.scaled(15))
                    self.late = " (it exited %.2f s after SIGTERM, the link let through at %.2f s)" % (
                        time.monotonic() - self.t0, t_back)
                except subprocess.TimeoutExpired:
                    self.late = " (still running %.2f s after SIGTERM)" % (time.monotonic() - self.t0)
        time.sleep(0.5)
        self.got = len(set(received([self.w], "t")))
        mlog = self.m.log_text()
        cid = re.escape("mqgate-" + self.name)
        self.in_pub = len(re.findall(r"Received PUBLISH from %s " % cid, mlog))
        self.in_ack = len(re.findall(r"Sending PUBACK to %s " % cid, mlog))
        self.disc = bool(re.search(r"Received DISCONNECT from %s" % cid, mlog))
        self.unacked = re.findall(r"(\d+) publishes still unacknowledged at exit", self.g.log_text())
        self.rc = self.g.proc.returncode
        diag("%s (%s, back %s): SIGTERM -> sessions closed %s; exit status %s after %s; "
             "broker received %d PUBLISH, sent %d PUBACK, %s; watcher got %d of %d; "
             "oks the session saw: %d; gateway log: %s"
             % (self.name, self.mode, "never" if self.back_after is None else "after %.1f s" % self.back_after,
                self.codes, self.rc, "%.2f s" % self.exit_secs if self.exit_secs is not None
                else "none: still running %.0f s after SIGTERM%s" % (T.scaled(10), self.late),
                self.in_pub, self.in_ack, "DISCONNECT" if self.disc else "no DISCONNECT",
                self.got, self.n, len(self.pubs.acked),
                ("%s unacknowledged at exit" % self.unacked[0]) if self.unacked else "nothing unacknowledged"))
        self.g.stop()   # records exit status and sanitizer check as TAP lines


TERM = {}


@t.test("SIGTERM with QoS 1 publishes in flight, four gateways at once: sessions closed 1001, "
        "exit status 0", timeout=40)
def _():
    cases = [TermCase("term-stalled", "stall", 2.0), TermCase("term-away", "away", 2.0),
             TermCase("term-stuck", "stall", None),
             TermCase("term-gone", "away", None, broker={"reconnect_min_s": 20, "reconnect_max_s": 20})]
    for c in cases:
        c.term()
    limit = time.monotonic() + T.scaled(10)
    while time.monotonic() < limit and any(c.exit_secs is None for c in cases):
        for c in cases:
            if c.exit_secs is None and c.g.proc.poll() is not None:
                c.exit_secs = time.monotonic() - c.t0
        time.sleep(0.02)
    for c in cases:
        c.finish()
        TERM[c.name] = c
    for c in cases:
        eq(c.codes, [1001, 1001], "%s: close codes" % c.name)
    for c in cases:
        # how long it took is checked by the tests below
        if c.exit_secs is not None:
            eq(c.rc, 0, "%s: exit status" % c.name)


def term_result(name):
    c = TERM.get(name)
    if c is None:
        fail("the SIGTERM test did not run %s" % name)
    return c


@t.test("SIGTERM, link stalled and resumed 2 s later: waits for the PUBACKs, nothing acked is lost")
def _():
    c = term_result("term-stalled")
    eq((c.in_ack, c.got), (c.n, c.n), "PUBACKs sent by the broker, messages at the watcher")
    check(not c.unacked, "the gateway gave up on %s publishes" % c.unacked)
    check(c.exit_secs is not None and 2.0 <= c.exit_secs < 5.0 + slack(0.5),
          "exit %s s after SIGTERM (link resumed after 2 s)" % c.exit_secs)


@t.test("SIGTERM, broker away with publishes buffered, back 2 s later: they are delivered before the exit")
def _():
    c = term_result("term-away")
    eq((c.in_ack, c.got), (c.n, c.n), "PUBACKs sent by the broker, messages at the watcher")
    check(not c.unacked, "the gateway gave up on %s publishes" % c.unacked)
    check(c.exit_secs is not None and 2.0 <= c.exit_secs < 5.0 + slack(0.5),
          "exit %s s after SIGTERM (broker reachable after 2 s)" % c.exit_secs)


@t.test("SIGTERM, link stalled for good: gives up after 5 s")
def _():
    c = term_result("term-stuck")
    check(c.exit_secs is not None and 5.0 <= c.exit_secs < 7.0 + slack(1.0),
          "exit %s after SIGTERM, expected 5 s of waiting (plus at most 2 s to disconnect)"
          % ("%.2f s" % c.exit_secs if c.exit_secs is not None else "not within 10 s"))
    check(c.unacked, "no 'publishes still unacknowledged at exit' in the log")


@t.test("SIGTERM, broker away for good (next retry 10-20 s away): gives up after 5 s")
def _():
    c = term_result("term-gone")
    check(c.exit_secs is not None and 5.0 <= c.exit_secs < 7.0 + slack(1.0),
          "exit %s after SIGTERM, expected 5 s of waiting"
          % ("%.2f s" % c.exit_secs if c.exit_secs is not None else "not within 10 s"))
    check(c.unacked, "no 'publishes still unacknowledged at exit' in the log")
    eq(c.got, 0, "messages at the broker")


if __name__ == "__main__":
    sys.exit(t.run())
