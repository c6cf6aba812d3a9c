#!/usr/bin/python3
"""HAProxy in front of two mqgated: the deployment of
config/haproxy-mqgate.cfg.

The example is rendered for this run by proxies.py (free loopback ports, a
self-signed certificate, the timeouts short enough to be seen: timeout
server and tunnel 3 s under gateways that ping every second) and run in the
foreground (haproxy -db). Sessions speak https/wss to HAProxy only.

Environment, beside mqgtest's: HAPROXY (default /usr/sbin/haproxy;
missing: the whole script is skipped), MQG_SRCDIR."""

import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
import proxies as P                                     # noqa: E402
from mqgtest import check, eq, fail                     # noqa: E402

TIMEOUT_S = 3           # timeout server and timeout tunnel of the test copy

t = T.Suite("haproxy")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]}}
GW = {"listeners": [{"http_api": True}], "auth": {"anonymous_role": "all"},
      "roles": ROLES, "origins": ["https://localhost"],
      "limits": {"ping_interval_s": 1, "max_connections_per_ip": 1000}}


def gw_cfg():
    """A copy of GW: the harness fills in the listener's port."""
    return json.loads(json.dumps(GW))


def setup():
    if "hap" not in _state:
        gws = [t.gateway(gw_cfg(), name="gw-a", fresh=True),
               t.gateway(gw_cfg(), name="gw-b", fresh=True)]
        hap = P.Haproxy(t, gws, timeout_s=TIMEOUT_S).start()
        _state["hap"] = (gws, hap)
    return _state["hap"]


_state = {}
epoch_of = P.epoch_index
learn_epochs = P.learn_epochs


@t.test("the rendered example config passes haproxy -c")
def _():
    gws = [t.gateway(gw_cfg(), name="gw-check")] * 2
    rc, out = P.Haproxy(t, gws).check_config()
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
    if not os.access(P.HAPROXY, os.X_OK):
        print("1..0 # SKIP haproxy not installed", flush=True)
        sys.exit(0)
    sys.exit(t.run())
