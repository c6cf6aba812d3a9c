#!/usr/bin/python3
"""sub, unsub, pub and msg against a real mosquitto, with MQTT 3.1.1 and
MQTT 5 upstream: payload classes, retained replay, overlapping filters,
ordering, limits, slow consumers, broker loss."""

import base64
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, expect_error, fail      # noqa: E402

t = T.Suite("pubsub")
# the shared mosquitto refuses publishes to denied/# (for broker_rejected)
t.mosquitto_acl = "topic deny denied/#\ntopic readwrite #\n"

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]},
         "q1": {"subscribe": ["#"], "publish": ["#"], "max_qos": 1}}


def gw(version=5, **limits):
    cfg = {"auth": {"anonymous_role": "all"}, "roles": ROLES,
           "broker": {"mqtt_version": version}}
    if limits:
        cfg["limits"] = limits
    return t.gateway(cfg)


def msg(topic, qos=0, retain=False, **body):
    d = {"op": "msg", "topic": topic, "qos": qos, "retain": retain}
    d.update(body)
    return d


def sub(ws, topic, qos=None, rid="sub"):
    req = {"op": "sub", "id": rid, "topic": topic}
    if qos is not None:
        req["qos"] = qos
    r = ws.request(req)
    if r.get("op") != "ok":
        fail("sub %s refused: %s" % (topic, T.show(r)))
    return r


def msgs(frames, **match):
    return [f for f in frames if f.get("op") == "msg" and all(f.get(k) == v for k, v in match.items())]


def until_text(ws, text, timeout=5.0):
    """Frames up to and including the first msg whose text is text."""
    frames = ws.collect(timeout, until=lambda fs: fs and fs[-1].get("text") == text)
    if not frames or frames[-1].get("text") != text:
        fail("marker %r never arrived; got %s" % (text, T.show(frames[-5:])))
    return frames


def watcher(topic, qos=2):
    w = t.mosquitto.client()
    w.subscribe(topic, qos)
    return w


# --- per MQTT version -------------------------------------------------------

def per_version(v):
    p = "v%d" % v

    def sub_granted():
        ws = gw(v).session()
        for q in (0, 1, 2):
            eq(ws.request({"op": "sub", "id": q, "topic": "%s/g/%d" % (p, q), "qos": q}),
               {"op": "ok", "id": q, "qos": q}, "reply to sub qos %d" % q)
        eq(ws.request({"op": "sub", "id": 9, "topic": "%s/g/none" % p}), {"op": "ok", "id": 9, "qos": 0},
           "reply to sub without qos")
    t.add("[mqtt %d] sub: ok with the granted qos (default 0)" % v, sub_granted)

    def delivery():
        ws = gw(v).session()
        sub(ws, "%s/sensor/+/temp" % p, 1)
        pub = t.mosquitto.client()
        pub.publish("%s/sensor/1/temp" % p, b'{"t":21.5}', qos=1)
        eq(ws.recv_json(), msg("%s/sensor/1/temp" % p, 1, payload={"t": 21.5}), "msg")
        pub.publish("%s/sensor/2/temp" % p, b"cold", qos=0)
        eq(ws.recv_json(), msg("%s/sensor/2/temp" % p, 0, text="cold"), "msg")
        pub.publish("%s/sensor/2/hum" % p, b"no", qos=0)
        pub.publish("%s/sensor/3/temp" % p, b"end", qos=0)
        eq(ws.recv_json(), msg("%s/sensor/3/temp" % p, 0, text="end"), "next msg (not matching skipped)")
    t.add("[mqtt %d] msg: messages from mosquitto arrive as msg frames" % v, delivery)

    def received_qos():
        # A lone subscriber sees a message at the QoS the gateway received
        # it: min(published, subscribed), as any MQTT subscriber would.
        g = gw(v)
        ws = g.session()
        pub = t.mosquitto.client()
        for sq in (0, 1, 2):
            sub(ws, "%s/rq/%d" % (p, sq), sq)
        for sq in (0, 1, 2):
            for pq in (0, 1, 2):
                pub.publish("%s/rq/%d" % (p, sq), b"x", qos=pq)
                eq(ws.recv_json(), msg("%s/rq/%d" % (p, sq), min(sq, pq), text="x"),
                   "published at %d, subscribed at %d" % (pq, sq))
        # a second holder asking a higher QoS of the same filter, at once
        a, b = g.session(), g.session()
        a.send_json({"op": "sub", "id": 1, "topic": "%s/rq2" % p, "qos": 0})
        b.send_json({"op": "sub", "id": 2, "topic": "%s/rq2" % p, "qos": 2})
        eq(a.recv_json(), {"op": "ok", "id": 1, "qos": 0}, "low holder's ok")
        eq(b.recv_json(), {"op": "ok", "id": 2, "qos": 2}, "high holder's ok")
        pub.publish("%s/rq2" % p, b"y", qos=2)
        eq(a.recv_json(), msg("%s/rq2" % p, 0, text="y"), "low holder's msg")
        eq(b.recv_json(), msg("%s/rq2" % p, 2, text="y"), "high holder's msg")
    t.add("[mqtt %d] msg: qos is the QoS the message arrived at for the subscriber's QoS" % v,
          received_qos)

    def payload_classes():
        ws = gw(v).session()
        topic = "%s/kinds" % p
        sub(ws, topic)
        # (bytes published, body expected, text that must follow "payload":)
        cases = [
            (b"21.50", {"payload": 21.5}, "21.50"),
            (b'{"a": [1, 2.50 ,{"b" :null}]}', {"payload": {"a": [1, 2.5, {"b": None}]}},
             '{"a": [1, 2.50 ,{"b" :null}]}'),
            (b' \t{"x": 1}\r\n', {"payload": {"x": 1}}, None),
            (b'"str"', {"payload": "str"}, None),
            (b"true", {"payload": True}, None),
            (b"null", {"payload": None}, None),
            (b"[1,2,3]", {"payload": [1, 2, 3]}, None),
            ('{"t":"\u00e9\u20ac"}'.encode(), {"payload": {"t": "\u00e9\u20ac"}}, None),
            (b"-0.0e+00", {"payload": -0.0}, "-0.0e+00"),
            (b'{"big":123456789012345678901234567890}', {"payload": {"big": 123456789012345678901234567890}},
             '{"big":123456789012345678901234567890}'),
            (b"hello", {"text": "hello"}, None),
            ("h\u00e9llo w\u00f6rld".encode(), {"text": "h\u00e9llo w\u00f6rld"}, None),
            (b"", {"text": ""}, None),
            (b'{"a":1', {"text": '{"a":1'}, None),
            (b"01", {"text": "01"}, None),
            (b"NaN", {"text": "NaN"}, None),
            (b"'x'", {"text": "'x'"}, None),
            (b'{"a":1} {"b":2}', {"text": '{"a":1} {"b":2}'}, None),
            (b"\x00", {"text": "\u0000"}, None),
            (b"\xff\xfe\x00\x01", {"base64": "//4AAQ=="}, None),
            (b'"\xff"', {"base64": base64.b64encode(b'"\xff"').decode()}, None),
            (b"\xc3\xa9\xc3", {"base64": base64.b64encode(b"\xc3\xa9\xc3").decode()}, None),
        ]
        pub = t.mosquitto.client()
        for data, _, _ in cases:
            pub.publish(topic, data)
        for data, body, raw in cases:
            obj, text = ws.recv_json_text()
            what = "msg for payload %r" % data
            eq(obj, msg(topic, **body), what)
            if raw is not None:
                check(re.search(r'"payload"\s*:\s*' + re.escape(raw) + r'\s*[,}]', text),
                      "%s: not embedded verbatim: %s" % (what, text))
            if "base64" in obj:
                eq(base64.b64decode(obj["base64"], validate=True), data, what + " decoded")
    t.add("[mqtt %d] msg: payload, text and base64 classes; JSON spliced verbatim" % v, payload_classes)

    def overlapping():
        g = gw(v)
        a = g.session()
        b = g.session()
        for f in ("%s/ov/#" % p, "%s/ov/+/temp" % p, "%s/ov/1/temp" % p):
            sub(a, f)
        for f in ("%s/ov/1/temp" % p, "%s/ov/#" % p):
            sub(b, f)
        pub = t.mosquitto.client()
        for x in (b"x", b"end1", b"end2"):
            pub.publish("%s/ov/1/temp" % p, x)
        for who, ws in (("a", a), ("b", b)):
            frames = until_text(ws, "end2")
            eq([f.get("text") for f in frames], ["x", "end1", "end2"], "session %s: texts received" % who)
        a.request({"op": "unsub", "id": "u", "topic": "%s/ov/#" % p})
        for x in (b"y", b"end3", b"end4"):
            pub.publish("%s/ov/1/temp" % p, x)
        eq([f.get("text") for f in until_text(a, "end4")], ["y", "end3", "end4"],
           "session a after unsub of one overlapping filter")
    t.add("[mqtt %d] overlapping filters held by one session: exactly one copy" % v, overlapping)

    def overlapping_qos():
        # With 3.1.1, mosquitto sends one copy for overlapping filters, at
        # the QoS of one of them: every filter is subscribed at one QoS
        # (subs.c), so that the copy comes at the QoS each holder needs.
        g = gw(v)
        a, b = g.session(), g.session()
        sub(a, "%s/ovq/+/t" % p, 0)
        sub(b, "%s/ovq/#" % p, 2)
        pub = t.mosquitto.client()
        for x in (b"x", b"end"):
            pub.publish("%s/ovq/1/t" % p, x, qos=1)
        eq([(f.get("text"), f["qos"]) for f in until_text(a, "end")], [("x", 0), ("end", 0)],
           "session a (qos 0)")
        eq([(f.get("text"), f["qos"]) for f in until_text(b, "end")], [("x", 1), ("end", 1)],
           "session b (qos 2, published at 1)")
    t.add("[mqtt %d] overlapping filters at different QoS in two sessions: each at its QoS" % v,
          overlapping_qos)

    def order():
        ws = gw(v).session()
        topic = "%s/ord/t" % p
        sub(ws, topic, 1)
        pub = t.mosquitto.client()
        infos = [pub.publish(topic, str(i).encode(), qos=1, wait=False) for i in range(500)]
        for i in infos:
            i.wait_for_publish(T.scaled(10))
        got = ws.collect_n(500, timeout=20)
        seq = [f.get("payload") for f in got]
        if seq != list(range(500)):
            bad = next(i for i, (x, y) in enumerate(zip(seq, range(500))) if x != y)
            fail("order broken at %d: %s" % (bad, seq[max(0, bad - 3):bad + 5]))
        eq({f["qos"] for f in got}, {1}, "qos of the messages")
        eq(ws.collect(0.3), [], "frames after the 500th")
    t.add("[mqtt %d] per-topic order: 500 numbered QoS 1 messages, none lost" % v, order, timeout=40)

    def retained():
        g = gw(v)
        f = "%s/ret/#" % p
        pub = t.mosquitto.client()
        pub.publish("%s/ret/a" % p, b'{"v":1}', qos=1, retain=True)
        a = g.session()
        r = a.request({"op": "sub", "id": 1, "topic": f, "qos": 1})
        eq(r, {"op": "ok", "id": 1, "qos": 1}, "sub reply")
        eq(a.skipped, [], "frames before the sub's ok")
        eq(a.recv_json(), msg("%s/ret/a" % p, 1, True, payload={"v": 1}), "retained replay to a")
        # a second session on the same filter gets the replay too, a does not
        b = g.session()
        r = b.request({"op": "sub", "id": 2, "topic": f, "qos": 1})
        eq(r, {"op": "ok", "id": 2, "qos": 1}, "second session's sub reply")
        eq(b.skipped, [], "frames before b's ok")
        eq(b.recv_json(), msg("%s/ret/a" % p, 1, True, payload={"v": 1}), "retained replay to b")
        eq(a.sync(), [], "frames at a after b subscribed")
        # a third session asking a higher qos (the upstream subscription may
        # be renewed): replay to it only
        d = g.session()
        eq(d.request({"op": "sub", "id": 4, "topic": f, "qos": 2}), {"op": "ok", "id": 4, "qos": 2},
           "third session's sub reply")
        r = d.recv_json()
        r.pop("qos", None)
        eq(r, {"op": "msg", "topic": "%s/ret/a" % p, "retain": True, "payload": {"v": 1}},
           "retained replay to d (qos not checked)")
        eq(a.sync(), [], "frames at a after d subscribed")
        eq(b.sync(), [], "frames at b after d subscribed")
        d.close()
        # retained message published while subscribed: live, retain false
        pub.publish("%s/ret/a" % p, b'{"v":2}', qos=1, retain=True)
        eq(a.recv_json(), msg("%s/ret/a" % p, 1, False, payload={"v": 2}), "live retained msg at a")
        eq(b.recv_json(), msg("%s/ret/a" % p, 1, False, payload={"v": 2}), "live retained msg at b")
        # re-sub: replay again, still one subscription
        r = a.request({"op": "sub", "id": 3, "topic": f, "qos": 1})
        eq(r, {"op": "ok", "id": 3, "qos": 1}, "re-sub reply")
        eq(a.recv_json(), msg("%s/ret/a" % p, 1, True, payload={"v": 2}), "replay after re-sub")
        eq(b.sync(), [], "frames at b after a re-subscribed")
        for x in (b"live", b"mark"):
            pub.publish("%s/ret/b" % p, x)
        eq([x.get("text") for x in until_text(a, "mark")], ["live", "mark"], "live msgs at a after re-sub")
        # cleared: a new subscriber gets nothing
        pub.publish("%s/ret/a" % p, b"", qos=1, retain=True)
        until_text(a, "")
        until_text(b, "")
        c = g.session()
        sub(c, f)
        pub.publish("%s/ret/c" % p, b"mark2")
        eq([(x.get("topic"), x.get("retain")) for x in until_text(c, "mark2")],
           [("%s/ret/c" % p, False)], "frames at a new subscriber after the retained message was cleared")
    t.add("[mqtt %d] retained: replay after ok to every subscribing session, live ones retain:false, re-sub replays" % v,
          retained)

    def unsub():
        g = gw(v)
        a = g.session()
        b = g.session()
        sub(a, "%s/un/#" % p)
        sub(b, "%s/un/#" % p)
        eq(a.request({"op": "unsub", "id": 5, "topic": "%s/un/#" % p}), {"op": "ok", "id": 5}, "unsub reply")
        pub = t.mosquitto.client()
        pub.publish("%s/un/1" % p, b"after")
        eq(b.recv_json(), msg("%s/un/1" % p, text="after"), "msg at b")
        eq(a.sync(), [], "frames at a after its unsub")
        eq(a.request({"op": "unsub", "id": 6, "topic": "%s/never/held" % p}), {"op": "ok", "id": 6},
           "unsub of a filter never held")
        eq(a.request({"op": "unsub", "id": 7, "topic": "%s/un/#" % p}), {"op": "ok", "id": 7},
           "second unsub of the same filter")
        b.request({"op": "unsub", "id": 8, "topic": "%s/un/#" % p})
        sub(b, "%s/un/#" % p)
        pub.publish("%s/un/2" % p, b"again")
        eq(b.recv_json(), msg("%s/un/2" % p, text="again"), "msg at b after unsub and sub again")
    t.add("[mqtt %d] unsub: ok, messages stop, other holders unaffected, unknown filter ok" % v, unsub)

    def qos_upgrade():
        ws = gw(v).session()
        topic = "%s/qu/x" % p
        sub(ws, topic, 0)
        pub = t.mosquitto.client()
        pub.publish(topic, b"1", qos=1)
        r = ws.recv_json()
        check(r.get("qos") in (0, 1), "qos of a msg under a qos 0 subscription: %s" % T.show(r))
        eq(dict(r, qos=0), msg(topic, 0, payload=1), "msg under a qos 0 subscription")
        eq(ws.request({"op": "sub", "id": 2, "topic": topic, "qos": 1}), {"op": "ok", "id": 2, "qos": 1},
           "re-sub with qos 1")
        pub.publish(topic, b"2", qos=1)
        eq(ws.recv_json(), msg(topic, 1, payload=2), "msg after the qos upgrade")
        eq(ws.sync(), [], "extra frames")
    t.add("[mqtt %d] sub again with a higher qos updates it" % v, qos_upgrade)

    def loopback():
        g = gw(v)
        a = g.session()
        b = g.session()
        sub(a, "%s/loop/#" % p, 1)
        eq(b.request({"op": "pub", "id": 1, "topic": "%s/loop/1" % p, "payload": {"n": 1}, "qos": 1}),
           {"op": "ok", "id": 1}, "pub reply")
        eq(a.recv_json(), msg("%s/loop/1" % p, 1, payload={"n": 1}), "msg published by another session")
    t.add("[mqtt %d] a session's pub reaches another session" % v, loopback)


for _v in (4, 5):
    per_version(_v)


# --- pub --------------------------------------------------------------------

@t.test("pub: payload (compact), text, base64 and no body arrive with exact bytes")
def _():
    w = watcher("pb/#")
    ws = gw().session()
    cases = [({"payload": {"on": True}}, b'{"on":true}'),
             ({"payload": [1, "a", None, {"b": [True, False]}, -2.5]}, b'[1,"a",null,{"b":[true,false]},-2.5]'),
             ({"payload": "str"}, b'"str"'),
             ({"payload": 42}, b"42"),
             ({"payload": None}, b"null"),
             ({"payload": {}}, b"{}"),
             ({"text": "h\u00e9llo"}, "h\u00e9llo".encode()),
             ({"text": ""}, b""),
             ({"text": "{\"not\": \"parsed\"}"}, b'{"not": "parsed"}'),
             ({"base64": "AAEC/w=="}, b"\x00\x01\x02\xff"),
             ({"base64": ""}, b""),
             ({}, b"")]
    for i, (body, _) in enumerate(cases):
        req = {"op": "pub", "id": i, "topic": "pb/%d" % i}
        req.update(body)
        eq(ws.request(req), {"op": "ok", "id": i}, "reply to %s" % T.compact(req))
    got = {m.topic: m for m in w.get_n(len(cases))}
    for i, (body, data) in enumerate(cases):
        m = got.get("pb/%d" % i)
        check(m is not None, "pb/%d not received" % i)
        eq(m.payload, data, "bytes published for %s" % T.compact(body))
        eq((m.qos, m.retain), (0, False), "qos and retain of pb/%d" % i)
    # non-ASCII JSON: compact, same value
    ws.request({"op": "pub", "id": "u", "topic": "pb/u", "payload": {"t": "\u00e9", "n": [1, 2]}})
    m = w.get()
    eq(json.loads(m.payload), {"t": "\u00e9", "n": [1, 2]}, "non-ASCII payload value")
    check(b" " not in m.payload, "payload not compact: %r" % m.payload)


@t.test("pub: qos 1 and 2 acknowledged, published at that qos; qos 0 default, retain false default")
def _():
    w = watcher("pq/#")
    ws = gw().session()
    for q in (0, 1, 2):
        eq(ws.request({"op": "pub", "id": q, "topic": "pq/%d" % q, "text": "q", "qos": q}),
           {"op": "ok", "id": q}, "reply to pub qos %d" % q)
        m = w.get()
        eq((m.topic, m.qos), ("pq/%d" % q, q), "topic and qos at the broker")
    ws.request({"op": "pub", "id": "d", "topic": "pq/default", "text": "d"})
    m = w.get()
    eq((m.qos, m.retain), (0, False), "defaults")
    fresh = watcher("pq/default")
    t.mosquitto.client().publish("pq/default", b"mark")
    eq(fresh.get().payload, b"mark", "first message for a new subscriber (no retained message)")


@t.test("pub: retain:true stores; retain:true with no body clears the retained message")
def _():
    ws = gw().session()
    eq(ws.request({"op": "pub", "id": 1, "topic": "clr/x", "text": "keep", "retain": True, "qos": 1}),
       {"op": "ok", "id": 1}, "reply")
    w1 = watcher("clr/x")
    m = w1.get()
    eq((m.payload, m.retain), (b"keep", True), "retained message at a new subscriber")
    eq(ws.request({"op": "pub", "id": 2, "topic": "clr/x", "retain": True, "qos": 1}), {"op": "ok", "id": 2},
       "reply to the clearing pub")
    w2 = watcher("clr/x")
    t.mosquitto.client().publish("clr/x", b"mark")
    eq(w2.get().payload, b"mark", "first message for a subscriber after clearing")


@t.test("msg qos never exceeds the granted qos of the session's subscription")
def _():
    ws = gw().session()
    sub(ws, "gq/0", 0)
    sub(ws, "gq/1", 1)
    p = t.mosquitto.client()
    for topic in ("gq/0", "gq/1"):
        p.publish(topic, b"2", qos=2)
        p.publish(topic, b"0", qos=0)
    got = ws.collect_n(4, timeout=5)
    eq(sorted((f["topic"], f["payload"], f["qos"]) for f in got),
       [("gq/0", 0, 0), ("gq/0", 2, 0), ("gq/1", 0, 0), ("gq/1", 2, 1)],
       "(topic, payload, qos) of the msgs")


@t.test("pub: qos capped by the role's max_qos; sub granted min(requested, max_qos)")
def _():
    g = t.gateway({"auth": {"anonymous_role": "q1"}, "roles": ROLES})
    w = watcher("cap/#")
    ws = g.session()
    eq(ws.request({"op": "pub", "id": 1, "topic": "cap/p", "text": "x", "qos": 2}), {"op": "ok", "id": 1},
       "reply to pub qos 2")
    eq(w.get().qos, 1, "qos at the broker")
    eq(ws.request({"op": "sub", "id": 2, "topic": "cap/s", "qos": 2}), {"op": "ok", "id": 2, "qos": 1},
       "reply to sub qos 2")
    t.mosquitto.client().publish("cap/s", b"x", qos=2)
    eq(ws.recv_json(), msg("cap/s", 1, text="x"), "msg delivered at qos")


@t.test("pub: topic names with wildcards, empty or with U+0000 are bad_topic")
def _():
    ws = gw().session()
    for i, topic in enumerate(("a/+", "a/#", "+", "#", "a/b+", "a#", "", "a\u0000b", "\u0000")):
        ws.send_json({"op": "pub", "id": i, "topic": topic, "text": "x"})
        expect_error(ws.recv_json(), "bad_topic", i, "pub to %r" % topic)
    ws.sync()


@t.test("pub: a topic with a lone surrogate escape (not UTF-8) is refused, session stays")
def _():
    ws = gw().session()
    for i, raw in enumerate(('"a/\\ud800"', '"\\udfff"')):
        ws.send_text('{"op":"pub","id":%d,"topic":%s,"text":"x"}' % (i, raw))
        r = ws.recv_json()
        check(r.get("op") == "error" and r.get("code") in ("bad_topic", "bad_json"),
              "reply to a topic %s: %s" % (raw, T.show(r)))
    ws.sync()


@t.test("sub: granted qos is capped by what the broker grants (mosquitto max_qos 1)")
def _():
    m = t.new_mosquitto("maxqos1", extra="max_qos 1\n")
    ws = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES}, mosq=m).session()
    eq(ws.request({"op": "sub", "id": 1, "topic": "mq/x", "qos": 2}), {"op": "ok", "id": 1, "qos": 1},
       "reply to sub qos 2")


@t.test("sub/unsub: invalid filters are bad_topic")
def _():
    ws = gw().session()
    bad = ("", "a/#/b", "a+", "#a", "a/b#", "+a/b", "a/+b", "sport/tennis#", "##", "a/\u0000", "\u0000/#")
    for i, f in enumerate(bad):
        ws.send_json({"op": "sub", "id": i, "topic": f})
        expect_error(ws.recv_json(), "bad_topic", i, "sub to %r" % f)
    ws.send_json({"op": "unsub", "id": "u", "topic": "a/#/b"})
    expect_error(ws.recv_json(), "bad_topic", "u", "unsub of a/#/b")
    for i, f in enumerate(("+", "#", "+/+", "a/+/b/#", "/", "a//b", "/#", "a/$b")):
        eq(ws.request({"op": "sub", "id": 100 + i, "topic": f}), {"op": "ok", "id": 100 + i, "qos": 0},
           "sub to valid filter %r" % f)


@t.test("topic length: 65535 bytes ok, 65536 bad_topic")
def _():
    g = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                   "limits": {"max_message_bytes": 300000}})
    ws = g.session()
    name = "L/" + "x" * 65533
    expect_error(ws.request({"op": "pub", "id": 1, "topic": name + "y", "text": "x"}), "bad_topic", 1,
                 "pub to a 65536-byte topic")
    expect_error(ws.request({"op": "sub", "id": 2, "topic": name + "y"}), "bad_topic", 2,
                 "sub to a 65536-byte filter")
    eq(ws.request({"op": "sub", "id": 3, "topic": name, "qos": 1}), {"op": "ok", "id": 3, "qos": 1},
       "sub to a 65535-byte filter")
    eq(ws.request({"op": "pub", "id": 4, "topic": name, "text": "long", "qos": 1}), {"op": "ok", "id": 4},
       "pub to a 65535-byte topic")
    eq(ws.recv_json(timeout=5), msg(name, 1, text="long"), "msg on a 65535-byte topic")


@t.test("pub: a large payload (200 KB) crosses both ways intact")
def _():
    g = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                   "limits": {"max_message_bytes": 300000}})
    ws = g.session()
    sub(ws, "big/#")
    w = watcher("big/#")
    text = "".join(chr(0x41 + i % 26) for i in range(200000))
    eq(ws.request({"op": "pub", "id": 1, "topic": "big/1", "text": text}), {"op": "ok", "id": 1}, "reply")
    eq(w.get().payload, text.encode(), "bytes at the broker")
    eq(ws.recv_json(), msg("big/1", text=text), "msg back to the session")


@t.test("pub qos 1 to a topic without subscribers is ok (MQTT 5 reason 0x10)")
def _():
    ws = gw(5).session()
    eq(ws.request({"op": "pub", "id": 1, "topic": "nobody/listens/here", "text": "x", "qos": 1}),
       {"op": "ok", "id": 1}, "reply")


@t.test("broker_rejected: MQTT 5 broker refuses the publish (0x87); MQTT 3.1.1 cannot refuse")
def _():
    ws = gw(5).session()
    for q in (1, 2):
        r = ws.request({"op": "pub", "id": q, "topic": "denied/x", "text": "x", "qos": q})
        expect_error(r, "broker_rejected", q, "pub qos %d to denied/x" % q)
    eq(ws.request({"op": "pub", "id": 0, "topic": "denied/x", "text": "x", "qos": 0}),
       {"op": "ok", "id": 0}, "pub qos 0 to denied/x")
    ws.sync()
    ws4 = gw(4).session()
    eq(ws4.request({"op": "pub", "id": 1, "topic": "denied/x", "text": "x", "qos": 1}),
       {"op": "ok", "id": 1}, "pub qos 1 to denied/x with MQTT 3.1.1")


@t.test("limits.max_subscriptions 3: 4th filter limit_exceeded, re-sub ok, room after unsub")
def _():
    ws = gw(max_subscriptions=3).session()
    for i, f in enumerate(("ms/a", "ms/b", "ms/#")):
        eq(ws.request({"op": "sub", "id": i, "topic": f}), {"op": "ok", "id": i, "qos": 0}, "sub %s" % f)
    expect_error(ws.request({"op": "sub", "id": 3, "topic": "ms/d"}), "limit_exceeded", 3, "4th filter")
    eq(ws.request({"op": "sub", "id": 4, "topic": "ms/a", "qos": 1}), {"op": "ok", "id": 4, "qos": 1},
       "re-sub of a held filter")
    eq(ws.request({"op": "unsub", "id": 5, "topic": "ms/b"}), {"op": "ok", "id": 5}, "unsub")
    eq(ws.request({"op": "sub", "id": 6, "topic": "ms/d"}), {"op": "ok", "id": 6, "qos": 0},
       "sub after an unsub made room")
    expect_error(ws.request({"op": "sub", "id": 7, "topic": "ms/e"}), "limit_exceeded", 7, "4th filter again")
    other = gw(max_subscriptions=3).session()
    eq(other.request({"op": "sub", "id": 1, "topic": "ms/e"}), {"op": "ok", "id": 1, "qos": 0},
       "the limit is per session")


@t.test("limits.publish_rate 1 burst 3: 4th and 5th pub rate_limited, nothing sent for them")
def _():
    g = gw(publish_rate=1, publish_burst=3)
    w = watcher("rl/#")
    ws = g.session()
    for i in range(5):
        ws.send_json({"op": "pub", "id": i, "topic": "rl/x", "text": str(i), "qos": 1})
    replies = [ws.await_reply(i) for i in range(5)]
    for i in range(3):
        eq(replies[i], {"op": "ok", "id": i}, "reply %d" % i)
    for i in (3, 4):
        expect_error(replies[i], "rate_limited", i, "reply %d" % i)
    deadline = time.monotonic() + T.scaled(5)
    while True:
        r = ws.request({"op": "pub", "id": "m", "topic": "rl/x", "text": "mark"})
        if r.get("op") == "ok":
            break
        expect_error(r, "rate_limited", "m", "marker pub")
        check(time.monotonic() < deadline, "still rate limited after 5 s")
        time.sleep(0.5)
    eq([m.payload for m in w.get_until(lambda m: m.payload == b"mark")], [b"0", b"1", b"2", b"mark"],
       "messages at the broker")


@t.test("slow consumer: queue over max_queue_bytes closes it 4408; a fast session gets everything", timeout=45)
def _():
    g = gw(max_queue_bytes=65536)
    fast = g.session()
    slow = g.session(rcvbuf=4096)
    sub(fast, "slow/#", 1)
    sub(slow, "slow/#", 1)
    pub = t.mosquitto.client()
    n, pad, burst = 200, "x" * 10000, 3
    # 2 MB in bursts of 30 KB: the fast session reads each burst before the
    # next is published, so its own queue never nears 64 KB
    got = []
    for start in range(0, n, burst):
        for i in range(start, min(n, start + burst)):
            pub.publish("slow/t", ("%05d" % i) + pad, qos=1, wait=False)
        got += fast.collect_n(min(n, start + burst) - start, timeout=10)
    eq([f["text"][:5] for f in got], ["%05d" % i for i in range(n)], "messages at the fast session")
    code = slow.wait_close(timeout=20)
    eq(code, 4408, "close code of the slow session (frames before: %d)" % len(slow.before_close))
    seen = [f.get("text", "")[:5] for f in slow.before_close if f.get("op") == "msg"]
    check(len(seen) < n, "the slow session got all %d messages" % n)
    eq(seen, ["%05d" % i for i in range(len(seen))], "the slow session's messages are a prefix, in order")
    fast.sync()


@t.test("broker down: status down, 503, buffered publishes acked after reconnect, subscriptions restored",
        timeout=40)
def _():
    m = t.new_mosquitto("restart")
    g = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                   "broker": {"buffer_messages": 2, "reconnect_min_s": 1, "reconnect_max_s": 1}}, mosq=m)
    a = g.session()
    sub(a, "live/#", 1)
    m.kill9()
    frames = a.collect(10, until=lambda fs: any(f.get("op") == "status" for f in fs))
    eq(frames, [{"op": "status", "broker": "down"}], "frames after the broker died")
    T.wait_for(lambda: g.health() == 503, 5, what="/healthz 503")
    for i, (topic, text) in enumerate((("r/1", "a"), ("r/2", "b"), ("r/3", "c"))):
        a.send_json({"op": "pub", "id": 10 + i, "topic": topic, "text": text, "qos": 1, "retain": True})
    expect_error(a.await_reply(12), "broker_unavailable", 12, "third publish with buffer_messages 2")
    eq(a.skipped, [], "frames before the broker_unavailable error")
    eq(a.sync(), [], "frames while the broker is down (no ok for the buffered publishes)")
    m.start()
    frames = a.collect(15, until=lambda fs: len(fs) >= 3)
    eq(sorted(json.dumps(f, sort_keys=True) for f in frames),
       sorted(json.dumps(f, sort_keys=True) for f in ({"op": "status", "broker": "up"},
                                                      {"op": "ok", "id": 10}, {"op": "ok", "id": 11})),
       "frames after the broker came back")
    T.wait_for(lambda: g.health() == 200, 5, what="/healthz 200")
    w = m.client()
    w.publish("live/1", b"hi", qos=1)
    eq(a.recv_json(), msg("live/1", 1, text="hi"), "msg on a subscription restored after reconnect")
    w.subscribe("r/#", 1)
    got = w.get_n(2)
    eq(sorted((x.topic, x.payload, x.retain) for x in got), [("r/1", b"a", True), ("r/2", b"b", True)],
       "buffered publishes at the broker")
    w.publish("r/9", b"mark")
    eq(w.get().payload, b"mark", "next message (the refused publish must not be there)")


if __name__ == "__main__":
    sys.exit(t.run())
