#!/usr/bin/python3
"""Delivery under pressure: broker messages of any size on every transport
(permessage-deflate included), a message larger than the queue bound, and
the subscription request rate."""

import json
import os
import random
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, expect_error  # noqa: E402

t = T.Suite("delivery")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]}}


def big_json(size, seed):
    """A JSON text of about size bytes that compresses poorly."""
    rnd = random.Random(seed)
    words = ["%08x" % rnd.getrandbits(32) for _ in range(size // 11)]
    return json.dumps({"seed": seed, "w": words}, separators=(",", ":")).encode()


def compressing(**limits):
    return t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                      "listeners": [{"path": "/ws", "compression": True}],
                      "limits": dict({"max_queue_bytes": 4 << 20}, **limits)})


def msgs(ws, n, topic):
    return ws.collect_n(n, timeout=20, pred=lambda f: f.get("op") == "msg" and f["topic"] == topic)


@t.test("permessage-deflate: retained and live messages of 70 KiB to 1 MiB reach three sessions intact", timeout=90)
def _():
    g = compressing()
    m = t.mosquitto.client()
    bodies = [big_json(size, i) for i, size in enumerate((70000, 300000, 1 << 20, 150000))]
    m.publish("big/retained", bodies[0], qos=1, retain=True)
    sessions = [g.session(deflate=True) for _ in range(2)] + [g.session()]
    check(sessions[0].deflate is not None, "permessage-deflate not negotiated")
    check(sessions[2].deflate is None, "the third session offered no extension")
    for ws in sessions:
        eq(ws.request({"op": "sub", "id": 1, "topic": "big/#", "qos": 1})["op"], "ok", "sub")
    for ws in sessions:
        got = msgs(ws, 1, "big/retained")
        eq(got[0]["payload"], json.loads(bodies[0]), "retained replay")
    for b in bodies[1:]:
        m.publish("big/live", b, qos=1)
    for i, ws in enumerate(sessions):
        got = msgs(ws, 3, "big/live")
        eq([f["payload"]["seed"] for f in got], [1, 2, 3], "session %d: live order" % i)
        for f, b in zip(got, bodies[1:]):
            check(f["payload"] == json.loads(b), "session %d: message %d differs" % (i, f["payload"]["seed"]))
        check(not ws.closed, "session %d closed (%s)" % (i, ws.close_code))
    # a re-subscribe replays the big retained message again, and stays open
    ws = sessions[0]
    eq(ws.request({"op": "sub", "id": 2, "topic": "big/#", "qos": 1})["op"], "ok", "re-sub")
    eq(msgs(ws, 1, "big/retained")[0]["payload"], json.loads(bodies[0]), "replay after a re-sub")
    m.publish("big/retained", b"", qos=1, retain=True)


@t.test("a message larger than max_queue_bytes reaches a session that keeps up; a stalled one is closed 4408",
        timeout=60)
def _():
    limit = 65536
    for deflate in (False, True):
        g = compressing(max_queue_bytes=limit) if deflate else t.gateway(
            {"auth": {"anonymous_role": "all"}, "roles": ROLES, "limits": {"max_queue_bytes": limit}})
        m = t.mosquitto.client()
        ws = g.session(deflate=deflate)
        eq(ws.request({"op": "sub", "id": 1, "topic": "huge/#"})["op"], "ok", "sub")
        for i in range(3):
            m.publish("huge/x", big_json(300000, 10 + i), qos=1)
            got = msgs(ws, 1, "huge/x")
            eq(got[0]["payload"]["seed"], 10 + i, "deflate=%s: 300 KB message %d" % (deflate, i))
        check(not ws.closed, "deflate=%s: closed (%s)" % (deflate, ws.close_code))
    # one that stops reading is still bounded: closed once another big
    # message finds the first unsent (so is a burst of them)
    g = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES, "limits": {"max_queue_bytes": limit}})
    stalled = g.session(rcvbuf=4096)
    eq(stalled.request({"op": "sub", "id": 1, "topic": "huge/#"})["op"], "ok", "sub")
    for i in range(40):
        m.publish("huge/x", big_json(300000, 20 + i), qos=1)
    stalled.expect_close(4408, timeout=20, what="a session that never reads")


@t.test("sub and unsub are rate-limited per session (limits.subscribe_rate, subscribe_burst)")
def _():
    g = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                   "limits": {"subscribe_rate": 1, "subscribe_burst": 3, "max_errors": 100}})
    ws = g.session()
    other = g.session()
    for i in range(3):
        eq(ws.request({"op": "sub" if i % 2 == 0 else "unsub", "id": i, "topic": "rate/a"})["op"], "ok",
           "request %d within the burst" % i)
    expect_error(ws.request({"op": "sub", "id": 3, "topic": "rate/b"}), "rate_limited", 3, "beyond the burst")
    expect_error(ws.request({"op": "unsub", "id": 4, "topic": "rate/a"}), "rate_limited", 4, "unsub too")
    # nothing was subscribed for the refused request
    t.mosquitto.client().publish("rate/b", b"x", qos=1)
    eq([f for f in ws.collect(0.5) if f.get("op") == "msg"], [], "messages of a refused sub")
    eq(other.request({"op": "sub", "id": 1, "topic": "rate/b"})["op"], "ok", "another session is not limited")
    T.wait_for(lambda: ws.request({"op": "sub", "id": 5, "topic": "rate/c"}).get("op") == "ok",
               timeout=3, interval=0.3, what="a token after a second")


@t.test("subscribe rate defaults: a burst of 100, then 10 a second")
def _():
    g = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES, "limits": {"max_errors": 100000}})
    ws = g.session()
    t0 = time.monotonic()
    for i in range(300):
        ws.send_json({"op": "sub", "id": i, "topic": "resub/x"})
    replies = ws.collect_n(300, timeout=30, pred=lambda f: f.get("op") in ("ok", "error"))
    elapsed = time.monotonic() - t0
    oks = sum(1 for r in replies if r["op"] == "ok")
    limited = [r for r in replies if r.get("code") == "rate_limited"]
    eq(oks + len(limited), 300, "replies that are ok or rate_limited")
    check(100 <= oks <= 100 + 10 * elapsed + 1,
          "%d oks in %.2f s: a burst of 100 and 10 a second allow 100 to %d"
          % (oks, elapsed, 100 + 10 * elapsed + 1))


@t.test("slow_consumer conflate: a session that stops reading keeps the newest of every topic, in order, "
        "and is not closed", timeout=60)
def _():
    g = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                   "limits": {"max_queue_bytes": 1048576, "slow_consumer": "conflate"}})
    m = t.mosquitto.client()
    ws = g.session(rcvbuf=4096)
    eq(ws.request({"op": "sub", "id": 1, "topic": "cf/#"})["op"], "ok", "sub")
    # 10 MB for a session that reads nothing, far past its 1 MiB (and what
    # the kernel holds)
    n_topics, rounds = 5, 1000
    for r in range(rounds):
        for k in range(n_topics):
            m.publish("cf/%d" % k, b'{"r":%d,"pad":"%s"}' % (r, b"x" * 2000), qos=0)
    m.publish("cf/end", b"1", qos=1)
    time.sleep(T.scaled(1.0))
    # then it reads again: everything until cf/end
    seen = []
    deadline = time.monotonic() + T.scaled(30)
    while not any(f["topic"] == "cf/end" for f in seen):
        check(time.monotonic() < deadline, "no cf/end within 30 s (%d msgs)" % len(seen))
        f = ws.recv_json(timeout=10)
        if f.get("op") == "msg":
            seen.append(f)
    check(not ws.closed, "closed %s" % ws.close_code)
    for k in range(n_topics):
        rs = [f["payload"]["r"] for f in seen if f["topic"] == "cf/%d" % k]
        check(rs, "nothing of cf/%d" % k)
        eq(rs, sorted(set(rs)), "cf/%d in order, none twice" % k)
        eq(rs[-1], rounds - 1, "cf/%d: the newest arrives" % k)
    check(len(seen) < rounds * n_topics, "%d of %d messages: nothing was conflated"
          % (len(seen), rounds * n_topics))
    _, _, body = g.http("/metrics")
    conflated = [l for l in body.decode().splitlines() if l.startswith("mqgate_conflated_total ")]
    check(conflated and float(conflated[0].split()[1]) > 0, "conflated: %s" % conflated)


if __name__ == "__main__":
    sys.exit(t.run())
