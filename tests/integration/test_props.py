#!/usr/bin/python3
"""MQTT 5 properties both ways (protocol.md, "MQTT 5 properties"): a device
played by an MQTT 5 paho client publishes with properties and reads those
of the gateway's publishes; mounts and the response topic; every check of
a pub's props; MQTT 3.1.1 refuses them; the history replays them."""

import base64
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, expect_error, fail      # noqa: E402
from paho.mqtt.packettypes import PacketTypes          # noqa: E402
from paho.mqtt.properties import Properties            # noqa: E402

t = T.Suite("props")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]},
         "tenant": {"subscribe": ["dev/#", "answers/#"], "publish": ["dev/#"],
                    "mount": "t1/"}}


def gw(version=5, role="all", **extra):
    cfg = {"auth": {"anonymous_role": role}, "roles": ROLES,
           "broker": {"mqtt_version": version}}
    cfg.update(extra)
    return t.gateway(cfg)


def sub(ws, topic, **kw):
    req = {"op": "sub", "id": "sub", "topic": topic}
    req.update(kw)
    r = ws.request(req)
    if r.get("op") != "ok":
        fail("sub %s refused: %s" % (topic, T.show(r)))


def props(**kw):
    p = Properties(PacketTypes.PUBLISH)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def device():
    return t.mosquitto.client(version=5)


def next_msg(ws):
    while True:
        f = ws.recv_json()
        if f.get("op") == "msg":
            return f


@t.test("msg: every property from a device, only those present; none: no props")
def _():
    ws = gw().session()
    sub(ws, "p1/#")
    d = device()
    d.publish("p1/a", b"{}", qos=1, properties=props(
        UserProperty=[("k", "v1"), ("k", "v2"), ("other", "é")],
        ContentType="application/json", ResponseTopic="p1/answer",
        CorrelationData=b"\x00\xffid", MessageExpiryInterval=120))
    m = next_msg(ws)
    p = m.get("props")
    check(p is not None, "no props on %s" % T.show(m))
    eq(p.get("user"), [["k", "v1"], ["k", "v2"], ["other", "é"]], "user pairs in order")
    eq(p.get("content_type"), "application/json", "content_type")
    eq(p.get("response_topic"), "p1/answer", "response_topic")
    eq(base64.b64decode(p.get("correlation")), b"\x00\xffid", "correlation")
    check(isinstance(p.get("expiry"), int) and 110 <= p["expiry"] <= 120,
          "expiry left: %r" % p.get("expiry"))
    eq(sorted(p), ["content_type", "correlation", "expiry", "response_topic", "user"],
       "members")
    d.publish("p1/b", b"plain", qos=1)
    m = next_msg(ws)
    eq(m.get("text"), "plain", "second message")
    check("props" not in m, "a message without properties has no props: %s" % T.show(m))
    d.publish("p1/c", b"x", qos=1, properties=props(ContentType="text/plain"))
    eq(next_msg(ws).get("props"), {"content_type": "text/plain"}, "only the one present")


@t.test("msg under a mount: response_topic relative to it, left out when outside")
def _():
    ws = gw(role="tenant").session()
    sub(ws, "dev/#")
    d = device()
    d.publish("t1/dev/1", b"1", qos=1, properties=props(ResponseTopic="t1/answers/1"))
    m = next_msg(ws)
    eq(m.get("topic"), "dev/1", "topic relative to the mount")
    eq(m.get("props"), {"response_topic": "answers/1"}, "response_topic relative")
    d.publish("t1/dev/2", b"2", qos=1, properties=props(ResponseTopic="elsewhere/x",
                                                        ContentType="c"))
    eq(next_msg(ws).get("props"), {"content_type": "c"}, "response_topic outside the mount")
    d.publish("t1/dev/3", b"3", qos=1, properties=props(ResponseTopic="t1/"))
    check("props" not in next_msg(ws), "the mount itself is no topic under it")


@t.test("pub: props sent upstream as MQTT 5 properties; the mount added to response_topic")
def _():
    d = device()
    d.subscribe("t1/dev/#", 1)
    d.subscribe("pp/#", 1)
    ws = gw().session()
    r = ws.request({"op": "pub", "id": 1, "topic": "pp/x", "text": "hi", "qos": 1,
                    "props": {"user": [["a", "1"], ["a", "2"], ["b", ""]],
                              "content_type": "text/plain", "response_topic": "pp/back",
                              "correlation": base64.b64encode(b"\x01\x02\x03").decode(),
                              "expiry": 30}})
    eq(r, {"op": "ok", "id": 1}, "pub with props")
    m = d.get()
    eq(m.payload, b"hi", "payload")
    p = m.props
    eq(list(p.UserProperty), [("a", "1"), ("a", "2"), ("b", "")], "user properties")
    eq(p.ContentType, "text/plain", "content type")
    eq(p.ResponseTopic, "pp/back", "response topic")
    eq(p.CorrelationData, b"\x01\x02\x03", "correlation data")
    check(28 <= p.MessageExpiryInterval <= 30, "expiry %r" % p.MessageExpiryInterval)
    ten = gw(role="tenant").session()
    eq(ten.request({"op": "pub", "id": 2, "topic": "dev/9", "payload": 1,
                    "props": {"response_topic": "answers/9"}}),
       {"op": "ok", "id": 2}, "tenant pub")
    m = d.get()
    eq((m.topic, m.props.ResponseTopic), ("t1/dev/9", "t1/answers/9"), "mounted response topic")


@t.test("pub: a response_topic the roles may not subscribe to is forbidden, nothing sent")
def _():
    d = device()
    d.subscribe("t1/#", 1)
    ws = gw(role="tenant").session()
    r = ws.request({"op": "pub", "id": 3, "topic": "dev/1", "text": "x",
                    "props": {"response_topic": "other/1"}})
    expect_error(r, "forbidden", 3)
    ws.request({"op": "pub", "id": 4, "topic": "dev/1", "text": "mark"})
    eq(d.get().payload, b"mark", "the refused publish never reached the broker")


BAD = [
    ("not an object", []),
    ("user not an array", {"user": {"a": "b"}}),
    ("user pair of one", {"user": [["a"]]}),
    ("user pair of three", {"user": [["a", "b", "c"]]}),
    ("user value not a string", {"user": [["a", 1]]}),
    ("user name with a control character", {"user": [["a\nb", "v"]]}),
    ("user value U+0000", {"user": [["a", "\u0000"]]}),
    ("user value a noncharacter", {"user": [["a", "\ufffe"]]}),
    ("user value DEL", {"user": [["a", "\u007f"]]}),
    ("content_type not a string", {"content_type": 5}),
    ("content_type with a tab", {"content_type": "a\tb"}),
    ("response_topic with a wildcard", {"response_topic": "a/+"}),
    ("response_topic empty", {"response_topic": ""}),
    ("response_topic not a string", {"response_topic": ["a"]}),
    ("correlation not base64", {"correlation": "***"}),
    ("correlation not a string", {"correlation": 7}),
    ("expiry 0", {"expiry": 0}),
    ("expiry negative", {"expiry": -1}),
    ("expiry a fraction", {"expiry": 1.5}),
    ("expiry above 2^32-1", {"expiry": 4294967296}),
    ("expiry a string", {"expiry": "10"}),
    ("user string over 65535 bytes", {"user": [["a", "x" * 65536]]}),
]


@t.test("pub: each bad props member is bad_request, nothing sent, the broker link unharmed")
def _():
    d = device()
    d.subscribe("bad/#", 1)
    g = gw(limits={"max_errors": 100, "max_message_bytes": 200000})
    ws = g.session()
    reconnects = g.metric("mqgate_broker_reconnects_total")
    for i, (what, p) in enumerate(BAD):
        r = ws.request({"op": "pub", "id": i, "topic": "bad/x", "text": what, "props": p,
                        "qos": 1})
        if r.get("op") != "error" or r.get("code") != "bad_request":
            fail("%s: %s" % (what, T.show(r)))
        check("props" in r.get("message", ""), "%s: message %r names props" % (what, r.get("message")))
    eq(ws.request({"op": "pub", "id": "m", "topic": "bad/x", "text": "mark", "qos": 1}),
       {"op": "ok", "id": "m"}, "a good publish after them")
    eq(d.get().payload, b"mark", "the first message the device sees")
    eq(g.metric("mqgate_broker_reconnects_total"), reconnects, "broker reconnects")
    eq(ws.request({"op": "pub", "id": "e", "topic": "bad/x", "props": {"user": [],
                                                                       "other": 1}}),
       {"op": "ok", "id": "e"}, "empty user list and an unknown member")


@t.test("MQTT 3.1.1: props on pub is bad_request, nothing sent; msg has no props")
def _():
    d = device()
    d.subscribe("v4/#", 1)
    ws = gw(version=4).session()
    sub(ws, "v4/#")
    r = ws.request({"op": "pub", "id": 5, "topic": "v4/x", "text": "a",
                    "props": {"content_type": "text/plain"}})
    expect_error(r, "bad_request", 5)
    check("3.1.1" in r.get("message", ""), "message names the version: %r" % r.get("message"))
    ws.request({"op": "pub", "id": 6, "topic": "v4/x", "text": "mark"})
    eq(d.get().payload, b"mark", "the refused publish never reached the broker")
    m = next_msg(ws)
    eq(m.get("text"), "mark", "own message")
    check("props" not in m, "no props with 3.1.1")


@t.test("history: a replayed message carries its props")
def _():
    ws = gw(history={"filters": ["hist/#"], "messages": 10}).session()
    ws.keep_positions = True
    d = device()
    d.publish("hist/1", b"7", qos=1, properties=props(UserProperty=[("unit", "C")],
                                                      ContentType="n"))
    d.publish("hist/1", b"8", qos=1)
    g = gw(history={"filters": ["hist/#"], "messages": 10})
    T.wait_for(lambda: g.metric("mqgate_history_messages") >= 2, 5, what="two messages stored")
    r = ws.request({"op": "sub", "id": "h", "topic": "hist/#", "history": 5})
    eq(r.get("replayed"), 2, "replayed count")
    got = [f for f in ws.collect(1) if f.get("op") == "msg" and f.get("history")]
    eq([f.get("payload") for f in got], [7, 8], "replayed payloads")
    eq(got[0].get("props"), {"user": [["unit", "C"]], "content_type": "n"}, "first's props")
    check("props" not in got[1], "second has none")


if __name__ == "__main__":
    sys.exit(t.run())
