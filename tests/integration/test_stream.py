#!/usr/bin/python3
"""Stream positions (protocol.md, "Extensions of version 1"): the epoch of
a gateway process, seq and ts of every live msg, one seq per broker
message in every session, also across MQTT 5 copies for overlapping
filters; none on the retained replay."""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq                          # noqa: E402

t = T.Suite("stream")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]}}


def gw(version=5, **kw):
    return t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                      "broker": {"mqtt_version": version}}, **kw)


def session(g):
    ws = g.session()
    ws.keep_positions = True
    return ws


def sub(ws, topic, rid=1):
    eq(ws.request({"op": "sub", "id": rid, "topic": topic})["op"], "ok", "sub %s" % topic)


def msgs(ws, n):
    return ws.collect_n(n, pred=lambda f: f.get("op") == "msg")


@t.test("epoch: well formed, the same for every session of a process, new after a restart")
def _():
    g = gw(fresh=True, name="epoch")
    a, b = g.session(), g.session()
    ea, eb = a.hello["epoch"], b.hello["epoch"]
    check(T.EPOCH_RE.match(ea), "epoch %r" % ea)
    eq(ea, eb, "epoch of two sessions")
    g.stop()
    g2 = gw(fresh=True, name="epoch-2")
    ec = g2.session().hello["epoch"]
    check(ec != ea, "the epoch %r came back after a restart" % ec)


@t.test("seq and ts: on every live msg, increasing, the same message the same seq in every session")
def _():
    g = gw()
    a, b = session(g), session(g)
    sub(a, "st/+")
    sub(b, "st/#")
    m = t.mosquitto.client()
    t0 = int(time.time() * 1000)
    for i in range(5):
        m.publish("st/%d" % i, b"%d" % i, qos=1)
    ga, gb = msgs(a, 5), msgs(b, 5)
    t1 = int(time.time() * 1000)
    eq([f["seq"] for f in ga], [f["seq"] for f in gb], "seq in two sessions")
    seqs = [f["seq"] for f in ga]
    eq(seqs, sorted(set(seqs)), "increasing")
    for f in ga:
        check(t0 - 1000 <= f["ts"] <= t1 + 1000, "ts %d outside [%d, %d]" % (f["ts"], t0, t1))
        check("history" not in f, "history on a live msg")


@t.test("MQTT 5 copies for overlapping filters: one delivery per session, one seq for all sessions")
def _():
    g = gw(version=5)
    both, plus, hash_ = session(g), session(g), session(g)
    sub(both, "ov/#", 1)
    sub(both, "ov/+", 2)
    sub(plus, "ov/+")
    sub(hash_, "ov/#")
    m = t.mosquitto.client(version=5)
    for i in range(3):
        m.publish("ov/%d" % i, b"x%d" % i, qos=1)
    got = {name: msgs(ws, 3) for name, ws in (("both", both), ("plus", plus), ("hash", hash_))}
    for name, ws in (("both", both), ("plus", plus), ("hash", hash_)):
        eq([f for f in ws.collect(0.5) if f.get("op") == "msg"], [], "%s: a second copy" % name)
    seqs = {name: [f["seq"] for f in fs] for name, fs in got.items()}
    eq(seqs["both"], seqs["plus"], "seq of both and plus")
    eq(seqs["both"], seqs["hash"], "seq of both and hash")
    # consecutive identical messages are still two messages
    m.publish("ov/same", b"y", qos=1)
    m.publish("ov/same", b"y", qos=1)
    two = [f["seq"] for f in msgs(both, 2)]
    check(two[0] < two[1], "two identical publishes got seqs %s" % two)
    eq([f["seq"] for f in msgs(plus, 2)], two, "plus: the same two seqs")


@t.test("the retained replay carries neither seq nor ts; a live message after it does")
def _():
    g = gw()
    m = t.mosquitto.client()
    m.publish("rt/x", b"kept", qos=1, retain=True)
    ws = session(g)
    sub(ws, "rt/#")
    r = msgs(ws, 1)[0]
    eq(r.get("retain"), True, "replay")
    check("seq" not in r and "ts" not in r, "replay with a position: %s" % r)
    m.publish("rt/x", b"live", qos=1)
    f = msgs(ws, 1)[0]
    check(isinstance(f.get("seq"), int) and isinstance(f.get("ts"), int), "live msg %s" % f)
    m.publish("rt/x", b"", qos=1, retain=True)


if __name__ == "__main__":
    sys.exit(t.run())
