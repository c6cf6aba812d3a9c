#!/usr/bin/python3
"""Rate-limited subscriptions (protocol.md, max_rate): the leading message
at once, the newest of a burst within one interval, the ones between
skipped, per-topic order; a re-sub without max_rate removes it; the least
restrictive of overlapping filters applies; bad values refused."""

import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, expect_error             # noqa: E402

t = T.Suite("rate")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]}}


def gw():
    return t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                      "limits": {"max_errors": 100}})


def session(g):
    ws = g.session()
    ws.keep_positions = True
    ws.strict_seq = False     # max_rate holds messages back
    return ws


def sub(ws, req, rid=1):
    r = ws.request(dict({"op": "sub", "id": rid}, **req))
    eq(r.get("op"), "ok", "sub %s: %s" % (req, r))


def msgs_for(ws, seconds):
    """(arrival time, frame) of the msg frames within seconds."""
    out = []
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return out
        try:
            f = ws.recv_json_text(left / T.TIME_SCALE)[0]
        except TimeoutError:
            return out
        if f.get("op") == "msg":
            out.append((time.monotonic(), f))


@t.test("max_rate 2: the first at once, the newest of a burst within 0.5 s, the rest skipped, in order")
def _():
    g = gw()
    ws = session(g)
    sub(ws, {"topic": "rl/a", "max_rate": 2})
    m = t.mosquitto.client()
    t0 = time.monotonic()
    for i in range(50):
        m.publish("rl/a", b"%d" % i, qos=0, wait=False)
        time.sleep(0.005)
    m.publish("rl/a", b"50", qos=1)
    t_last = time.monotonic()
    got = msgs_for(ws, T.scaled(1.5))
    vals = [f["payload"] for _, f in got]
    check(vals, "nothing delivered")
    eq(vals[0], 0, "the leading message")
    eq(vals[-1], 50, "the newest of the burst")
    eq(vals, sorted(set(vals)), "in order, none twice")
    span = t_last - t0
    check(len(vals) <= 2 + int(span * 2) + 1, "%d delivered in %.2f s at 2/s: %s" % (len(vals), span, vals))
    late = got[-1][0] - t_last
    check(late <= T.scaled(0.5) + 0.25, "the newest came %.2f s after it was published" % late)
    _, _, body = g.http("/metrics")
    skipped = [l for l in body.decode().splitlines() if l.startswith("mqgate_rate_skipped_total ")]
    check(skipped and float(skipped[0].split()[1]) > 0, "skipped: %s" % skipped)


@t.test("a re-sub without max_rate removes it; overlapping filters: the least restrictive applies")
def _():
    g = gw()
    ws = session(g)
    m = t.mosquitto.client()
    sub(ws, {"topic": "rl/b", "max_rate": 1})
    sub(ws, {"topic": "rl/b"}, rid=2)
    for i in range(20):
        m.publish("rl/b", b"%d" % i, qos=1)
    eq([f["payload"] for _, f in msgs_for(ws, T.scaled(1.0))], list(range(20)), "all, once it is removed")
    ws2 = session(g)
    sub(ws2, {"topic": "rl/c/#", "max_rate": 1})
    sub(ws2, {"topic": "rl/c/x"}, rid=2)
    for i in range(10):
        m.publish("rl/c/x", b"%d" % i, qos=1)
        m.publish("rl/c/y", b"%d" % i, qos=1)
    got = [f for _, f in msgs_for(ws2, T.scaled(1.5))]
    eq([f["payload"] for f in got if f["topic"] == "rl/c/x"], list(range(10)), "rl/c/x: unlimited")
    ys = [f["payload"] for f in got if f["topic"] == "rl/c/y"]
    check(len(ys) < 10 and ys[-1] == 9, "rl/c/y limited to 1/s, the newest last: %s" % ys)


@t.test("max_rate per topic: each topic has its own budget")
def _():
    g = gw()
    ws = session(g)
    sub(ws, {"topic": "rl/d/+", "max_rate": 1})
    m = t.mosquitto.client()
    for k in range(5):
        m.publish("rl/d/%d" % k, b"1", qos=1)
    got = [f["topic"] for _, f in msgs_for(ws, T.scaled(0.5))]
    eq(sorted(got), ["rl/d/%d" % k for k in range(5)], "the first of every topic at once")


@t.test("max_rate: 0, negative, over 1000 or not a number is bad_request")
def _():
    ws = session(gw())
    for i, v in enumerate((0, -1, 1001, "2", None)):
        r = ws.request({"op": "sub", "id": i, "topic": "rl/e", "max_rate": v})
        expect_error(r, "bad_request", i, "max_rate %r" % (v,))


if __name__ == "__main__":
    sys.exit(t.run())
