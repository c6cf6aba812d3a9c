#!/usr/bin/python3
"""History (protocol.md, "Extensions of version 1"): stored messages
replayed on sub with history, exact recovery with since after a dropped
connection, failed recovery (another epoch, a broker outage, dropped
messages), the replay/live boundary under a continuous publish, the
retained replay beside the history, bounds, and a gateway without
history."""

import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, expect_error             # noqa: E402

t = T.Suite("history")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]},
         "tenant": {"mount": "tenants/%u/", "subscribe": ["#"]}}


def gw(history=None, fresh=False, name=None, **extra):
    cfg = {"auth": {"anonymous_role": "all", "jwt": t.jwt_config()}, "roles": ROLES,
           "history": history or {"filters": ["hs/#", "tenants/#"], "messages": 5}}
    cfg.update(extra)
    return t.gateway(cfg, fresh=fresh, name=name)




def body(f):
    """A msg's body as text (numbers arrive as JSON payloads)."""
    return f["text"] if "text" in f else json.dumps(f.get("payload"))


def msgs(ws, n, timeout=10):
    return ws.collect_n(n, timeout=timeout, pred=lambda f: f.get("op") == "msg")


def settle(g, m, topic):
    """Publishes a marker and waits until the history has it: what was
    published before is stored."""
    before = g.metric("mqgate_history_messages")
    m.publish(topic, b"marker", qos=1)
    T.wait_for(lambda: g.metric("mqgate_history_messages") != before or
               g.metric("mqgate_history_dropped_total", reason="count") > 0,
               what="the marker in the history")
    time.sleep(T.scaled(0.2))


@t.test("sub with history: the newest N of each topic, in seq order, flagged, then live ones")
def _():
    g = gw(fresh=True, name="hist-open")
    m = t.mosquitto.client()
    for i in range(8):
        m.publish("hs/a", b"a%d" % i, qos=1)
    for i in range(3):
        m.publish("hs/b", b"b%d" % i, qos=1)
    settle(g, m, "hs/z")
    ws = g.session(positions=True)
    r = ws.sub_ok({"topic": "hs/+", "history": 3})
    eq(r.get("replayed"), 7, "replayed in the ok (3 of hs/a, 3 of hs/b, the marker)")
    check("recovered" not in r, "recovered without since: %s" % r)
    got = msgs(ws, 7)
    check(all(f.get("history") is True for f in got), "history flag on %s" % got)
    seqs = [f["seq"] for f in got]
    eq(seqs, sorted(seqs), "seq order")
    eq(sorted(f["text"] for f in got if f["topic"] == "hs/a"), ["a5", "a6", "a7"], "hs/a kept")
    eq(sorted(f["text"] for f in got if f["topic"] == "hs/b"), ["b0", "b1", "b2"], "hs/b kept")
    m.publish("hs/a", b"live", qos=1)
    live = msgs(ws, 1)[0]
    eq((live["text"], "history" in live), ("live", False), "the live message after the replay")
    check(live["seq"] > seqs[-1], "live seq %d after replayed %d" % (live["seq"], seqs[-1]))
    eq([f for f in ws.collect(0.3) if f.get("op") == "msg"], [], "nothing more")


@t.test("since after a dropped connection: recovered, exactly the messages missed")
def _():
    g = gw(history={"filters": ["hs/#"], "messages": 100}, fresh=True, name="hist-since")
    m = t.mosquitto.client()
    ws = g.session(positions=True)
    epoch = ws.hello["epoch"]
    ws.sub_ok({"topic": "hs/r/#"})
    for i in range(3):
        m.publish("hs/r/x", b"%d" % i, qos=1)
    last = msgs(ws, 3)[-1]["seq"]
    ws.sock.close()
    for i in range(3, 7):
        m.publish("hs/r/x", b"%d" % i, qos=1)
    settle(g, m, "hs/zz")
    ws2 = g.session(positions=True)
    r = ws2.sub_ok({"topic": "hs/r/#", "since": {"epoch": epoch, "seq": last}, "history": 2})
    eq((r.get("recovered"), r.get("replayed")), (True, 4), "ok of the recovery")
    got = msgs(ws2, 4)
    eq([body(f) for f in got], ["3", "4", "5", "6"], "the missed messages")
    check(all(f["history"] and f["seq"] > last for f in got), "flags and seqs: %s" % got)
    eq(g.metric("mqgate_recoveries_failed_total"), 0.0, "failed recoveries")


@t.test("since fails with another epoch, after a broker outage, or past dropped messages; history applies")
def _():
    mosq = t.new_mosquitto("hist-outage")
    g = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                   "history": {"filters": ["hs/#"], "messages": 3},
                   "broker": {"uris": ["tcp://127.0.0.1:%d" % mosq.port]}},
                  mosq=mosq, fresh=True, name="hist-fail")
    m = mosq.client()
    ws = g.session(positions=True)
    epoch = ws.hello["epoch"]
    for i in range(2):
        m.publish("hs/f", b"%d" % i, qos=1)
    time.sleep(T.scaled(0.5))
    # another epoch
    r = ws.sub_ok({"topic": "hs/f", "since": {"epoch": "other", "seq": 1}, "history": 1})
    eq((r.get("recovered"), r.get("replayed")), (False, 1), "another epoch: history 1 instead")
    eq(body(msgs(ws, 1)[0]), "1", "the newest")
    # dropped by count: 5 more with 3 kept
    mark = ws.positions[-1][0]
    for i in range(2, 7):
        m.publish("hs/f", b"%d" % i, qos=1)
    msgs(ws, 5)
    r = g.session(positions=True).sub_ok({"topic": "hs/f", "since": {"epoch": epoch, "seq": mark}})
    eq((r.get("recovered"), r.get("replayed")), (False, 0), "past dropped messages, no history")
    # a broker outage after seq
    last = ws.positions[-1][0]
    mosq.restart()
    g.wait_healthy(timeout=20)
    r = g.session(positions=True).sub_ok({"topic": "hs/f", "since": {"epoch": epoch, "seq": last}, "history": 2})
    eq((r.get("recovered"), r.get("replayed")), (False, 2), "after an outage: history 2 instead")
    check(g.metric("mqgate_recoveries_failed_total") >= 3, "failed recoveries counted")


@t.test("the replay/live boundary under a continuous publish: every message once, in order")
def _():
    g = gw(history={"filters": ["hs/#"], "messages": 100000}, fresh=True, name="hist-boundary")
    m = t.mosquitto.client()
    stop = threading.Event()
    sent = []

    def publish():
        i = 0
        while not stop.is_set():
            m.publish("hs/c", b"%d" % i, qos=1)
            sent.append(i)
            i += 1
            time.sleep(0.002)

    th = threading.Thread(target=publish)
    th.start()
    try:
        time.sleep(T.scaled(1.0))
        ws = g.session(positions=True)
        r = ws.sub_ok({"topic": "hs/c", "history": 100000})
        replayed = r["replayed"]
        time.sleep(T.scaled(1.0))
    finally:
        stop.set()
        th.join()
    got = msgs(ws, len(sent), timeout=30)
    texts = [int(body(f)) for f in got]
    eq(texts, list(range(len(sent))), "every message once, in order")
    check(all(f["history"] for f in got[:replayed]) and
          not any(f.get("history") for f in got[replayed:]),
          "the first %d replayed, then live" % replayed)
    seqs = [f["seq"] for f in got]
    eq(seqs, sorted(set(seqs)), "seqs increasing across the boundary")


@t.test("retained: false drops the broker's replay; with history the topics it holds are not replayed twice")
def _():
    g = gw(fresh=True, name="hist-retained")
    m = t.mosquitto.client()
    m.publish("hs/k/a", b"held", qos=1, retain=True)
    m.publish("other/k", b"plain", qos=1, retain=True)
    time.sleep(T.scaled(0.5))
    ws = g.session(positions=True)
    ws.sub_ok({"topic": "other/#", "retained": False})
    eq([f for f in ws.collect(0.5) if f.get("op") == "msg"], [], "retained: false")
    ws2 = g.session(positions=True)
    r = ws2.sub_ok({"topic": "#", "history": 1})
    got = [f for f in ws2.collect(1.0) if f.get("op") == "msg"]
    held = [f for f in got if f["topic"] == "hs/k/a"]
    eq(len(held), 1, "hs/k/a once (from the history): %s" % got)
    check(held[0].get("history") is True, "from the history: %s" % held)
    eq([f.get("retain") for f in got if f["topic"] == "other/k"], [True], "other/k from the broker")
    m.publish("hs/k/a", b"", qos=1, retain=True)
    m.publish("other/k", b"", qos=1, retain=True)


@t.test("history bounds: above history.messages is bad_request; a mount sees its own topics only")
def _():
    g = gw()
    ws = g.session(positions=True)
    expect_error(ws.request({"op": "sub", "id": 2, "topic": "hs/#", "history": 6}), "bad_request", 2,
                 "history above messages")
    m = t.mosquitto.client()
    m.publish("tenants/carol/x", b"mine", qos=1)
    m.publish("tenants/dave/x", b"theirs", qos=1)
    settle(g, m, "hs/zzz")
    c = g.session(positions=True, token=t.token("carol", ["tenant"]))
    r = c.sub_ok({"topic": "#", "history": 5})
    got = msgs(c, r["replayed"])
    eq([(f["topic"], f["text"]) for f in got], [("x", "mine")], "carol's replay, mount-relative")


@t.test("history bounds by age (max_age_s) and by size (max_bytes, oldest first across "
        "topics): what went is not replayed, counted, and a since before it is not recovered",
        timeout=40)
def _():
    g = gw({"filters": ["hb/#"], "messages": 1000, "max_age_s": 2, "max_bytes": 65536},
           fresh=True, name="hist-bounds")
    m = t.mosquitto.client()
    ws = g.session(positions=True)
    epoch = ws.hello["epoch"]
    m.publish("hb/old", b"aged", qos=1)
    T.wait_for(lambda: g.metric("mqgate_history_messages") == 1, what="the first message stored")
    T.wait_for(lambda: g.metric("mqgate_history_dropped_total", reason="age") >= 1, timeout=10,
               what="the message dropped by age")
    eq(g.metric("mqgate_history_messages"), 0.0, "messages held after max_age_s")
    r = ws.sub_ok({"topic": "hb/#", "history": 10})
    eq(r.get("replayed"), 0, "replayed after the age bound")
    # size: 100 messages of 1000 bytes over two topics cannot all stay in
    # 64 KiB; the oldest go first, whichever topic they are on
    for i in range(100):
        m.publish("hb/%s" % ("a" if i % 2 else "b"), (b"%03d" % i) + b"x" * 997, qos=1)
    T.wait_for(lambda: g.metric("mqgate_history_dropped_total", reason="size") > 0,
               what="messages dropped by size")
    held = g.metric("mqgate_history_messages")
    check(0 < held < 100, "messages held under max_bytes: %s" % held)
    check(g.metric("mqgate_history_bytes") <= 65536, "bytes held over max_bytes")
    c = g.session(positions=True)
    r = c.sub_ok({"topic": "hb/#", "history": 1000})
    got = msgs(c, r["replayed"])
    nums = sorted(int(body(f)[:3]) for f in got)
    eq(nums, list(range(100 - len(nums), 100)), "the newest kept, across both topics")
    # a since from before what was dropped: not recovered
    d = g.session(positions=True)
    r = d.request({"op": "sub", "id": 5, "topic": "hb/#", "since": {"epoch": epoch, "seq": 1}})
    eq((r.get("op"), r.get("recovered")), ("ok", False), "since before dropped messages")


@t.test("a gateway without history: history up to 100000 gives replayed 0, since recovered false")
def _():
    g = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES})
    ws = g.session(positions=True)
    r = ws.sub_ok({"topic": "x/#", "history": 100000})
    eq(r.get("replayed"), 0, "replayed")
    r = ws.request({"op": "sub", "id": 3, "topic": "y/#",
                    "since": {"epoch": ws.hello["epoch"], "seq": 1}})
    eq((r.get("op"), r.get("recovered"), r.get("replayed")), ("ok", False, 0), "since")
    expect_error(ws.request({"op": "sub", "id": 4, "topic": "y", "history": 100001}),
                 "bad_request", 4, "history above 100000")


if __name__ == "__main__":
    sys.exit(t.run())
