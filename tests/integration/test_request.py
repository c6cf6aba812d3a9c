#!/usr/bin/python3
"""request (protocol.md, "request"): MQTT 5 request/response on behalf of a
session, the device played by an MQTT 5 paho client that answers on the
response topic with the correlation data. Answered, timed out, over the
limit, refused on 3.1.1, broker loss while waiting, sessions never
crossing, wrong correlation data ignored, responses never fanned out, the
reply subscription restored after a reconnect."""

import base64
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, expect_error, fail      # noqa: E402
import paho.mqtt.client as paho                         # noqa: E402
from paho.mqtt.packettypes import PacketTypes          # noqa: E402
from paho.mqtt.properties import Properties            # noqa: E402

t = T.Suite("request")
# the shared mosquitto refuses publishes to denied/# (broker_rejected)
t.mosquitto_acl = "topic deny denied/#\ntopic readwrite #\n"

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]},
         "tenant": {"subscribe": ["x/#"], "publish": ["dev/#"], "mount": "t1/"},
         "viewer": {"subscribe": ["#"]}}


def gw(version=5, role="all", fresh=False, mosq=None, **limits):
    cfg = {"auth": {"anonymous_role": role}, "roles": ROLES,
           "broker": {"mqtt_version": version}}
    if limits:
        cfg["limits"] = limits
    return t.gateway(cfg, fresh=fresh, mosq=mosq)


class Device(object):
    """An MQTT 5 device answering requests on FILTER: answer(msg) returns
    (payload, Properties or None) or None for no answer; the answer goes to
    the request's response topic with its correlation data unless
    answer's Properties set other ones."""

    def __init__(self, mosq, filt, answer):
        self.answer = answer
        self.seen = []
        self.cond = threading.Condition()
        self.c = paho.Client("dev-%s" % T.b64url(os.urandom(6)), protocol=paho.MQTTv5)
        self.c.on_message = self._on_message
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.connect("127.0.0.1", mosq.port)
        self.c.loop_start()
        self.c.subscribe(filt, qos=1)
        check(subscribed.wait(T.scaled(5)), "device subscribed")
        T._track(self)

    def _on_message(self, c, u, m):
        with self.cond:
            self.seen.append(m)
            self.cond.notify_all()
        out = self.answer(m)
        if out is None:
            return
        for payload, props in (out if isinstance(out, list) else [out]):
            p = Properties(PacketTypes.PUBLISH)
            rt = m.properties.ResponseTopic
            p.CorrelationData = m.properties.CorrelationData
            if props is not None:
                for k in ("UserProperty", "ContentType", "CorrelationData",
                          "MessageExpiryInterval"):
                    if hasattr(props, k):
                        setattr(p, k, getattr(props, k))
                rt = getattr(props, "ResponseTopic", rt)
            c.publish(rt, payload, qos=1, properties=p)

    def wait_seen(self, n, timeout=5.0):
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.seen) >= n, T.scaled(timeout)):
                fail("the device saw %d of %d requests" % (len(self.seen), n))
            return list(self.seen)

    def close(self):
        try:
            self.c.disconnect()
            self.c.loop_stop()
        except Exception:
            pass


def echo(m):
    return (b'{"echo":' + m.payload + b"}", None)


def props(**kw):
    p = Properties(PacketTypes.PUBLISH)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


@t.test("request answered: the response's body and props (no correlation); the device "
        "saw the gateway's response topic and 16 random bytes of correlation data")
def _():
    def answer(m):
        return (b'{"firmware":"1.4.2"}', props(UserProperty=[("status", "done")],
                                              ContentType="application/json"))
    dev = Device(t.mosquitto, "device/+/rpc", answer)
    ws = gw().session()
    r = ws.request({"op": "request", "id": 9, "topic": "device/7/rpc",
                    "payload": {"get": "firmware"}, "timeout_ms": 5000,
                    "props": {"user": [["trace", "abc"]], "content_type": "application/json"}})
    eq(r, {"op": "ok", "id": 9,
           "response": {"payload": {"firmware": "1.4.2"},
                        "props": {"user": [["status", "done"]],
                                  "content_type": "application/json"}}},
       "the answer")
    m = dev.wait_seen(1)[0]
    eq(m.payload, b'{"get":"firmware"}', "request payload")
    check(m.properties.ResponseTopic.startswith("mqgate/reply/mqgate-"),
          "response topic %r under the default prefix" % m.properties.ResponseTopic)
    eq(len(m.properties.CorrelationData), 16, "correlation data length")
    eq(list(m.properties.UserProperty), [("trace", "abc")], "the request's user properties")
    r2 = ws.request({"op": "request", "id": "s", "topic": "device/8/rpc", "text": "plain"})
    eq(r2.get("response", {}).get("payload"), {"firmware": "1.4.2"}, "second answer")
    m2 = dev.wait_seen(2)[1]
    check(m2.properties.CorrelationData != m.properties.CorrelationData,
          "a new correlation data per request")
    check(m2.properties.ResponseTopic != m.properties.ResponseTopic,
          "a new response topic per request")


@t.test("request: text and base64 bodies of the answer; qos 1 request; the rate of pub applies")
def _():
    answers = {b"t": b"plain text", b"b": b"\xff\x00\x80"}
    dev = Device(t.mosquitto, "dev2/rpc", lambda m: (answers[m.payload], None))
    ws = gw(publish_rate=1, publish_burst=2).session()
    eq(ws.request({"op": "request", "id": 1, "topic": "dev2/rpc", "text": "t", "qos": 1}),
       {"op": "ok", "id": 1, "response": {"text": "plain text"}}, "text answer")
    eq(ws.request({"op": "request", "id": 2, "topic": "dev2/rpc", "text": "b"}),
       {"op": "ok", "id": 2, "response": {"base64": base64.b64encode(b"\xff\x00\x80").decode()}},
       "binary answer")
    expect_error(ws.request({"op": "request", "id": 3, "topic": "dev2/rpc", "text": "t"}),
                 "rate_limited", 3)
    eq(dev.wait_seen(2)[0].qos, 1, "published at qos 1")
    time.sleep(0.3)
    eq(len(dev.seen), 2, "the rate-limited request was not published")


@t.test("request: no answer within timeout_ms is error timeout; a late answer is dropped")
def _():
    late = []
    dev = Device(t.mosquitto, "slow/rpc", lambda m: late.append(m) or None)
    g = gw()
    ws = g.session()
    t0 = time.monotonic()
    r = ws.request({"op": "request", "id": 4, "topic": "slow/rpc", "text": "?",
                    "timeout_ms": 300}, timeout=5)
    took = time.monotonic() - t0
    expect_error(r, "timeout", 4)
    check(0.25 <= took <= T.scaled(2.0), "timed out after %.2f s" % took)
    m = dev.wait_seen(1)[0]
    p = Properties(PacketTypes.PUBLISH)
    p.CorrelationData = m.properties.CorrelationData
    dev.c.publish(m.properties.ResponseTopic, b"late", qos=1, properties=p)
    eq([f for f in ws.collect(0.5)], [], "nothing for the late answer")
    eq(int(g.metric("mqgate_requests_waiting")), 0, "nothing waits")


@t.test("request: more than limits.max_requests waiting is limit_exceeded; room again after")
def _():
    held = []
    dev = Device(t.mosquitto, "hold/rpc", lambda m: held.append(m) or None)
    ws = gw(max_requests=2).session()
    ws.send_json({"op": "request", "id": 1, "topic": "hold/rpc", "text": "1"})
    ws.send_json({"op": "request", "id": 2, "topic": "hold/rpc", "text": "2"})
    expect_error(ws.request({"op": "request", "id": 3, "topic": "hold/rpc", "text": "3"}),
                 "limit_exceeded", 3)
    ms = dev.wait_seen(2)
    eq(len(dev.seen), 2, "the third was not published")
    p = Properties(PacketTypes.PUBLISH)
    p.CorrelationData = ms[0].properties.CorrelationData
    dev.c.publish(ms[0].properties.ResponseTopic, b"one", qos=1, properties=p)
    eq(ws.await_reply(1), {"op": "ok", "id": 1, "response": {"text": "one"}}, "first answered")
    ws.send_json({"op": "request", "id": 5, "topic": "hold/rpc", "text": "5"})
    dev.wait_seen(3)


@t.test("request: bad requests (no id, timeout_ms, props the gateway sets, topic) are refused")
def _():
    ws = gw().session()
    ws.send_json({"op": "request", "topic": "a/rpc", "text": "x"})
    r = ws.recv_json()
    eq((r.get("op"), r.get("code"), "id" in r), ("error", "bad_request", False), "no id")
    for i, (extra, code) in enumerate([
            ({"timeout_ms": 0}, "bad_request"), ({"timeout_ms": 60001}, "bad_request"),
            ({"timeout_ms": 1.5}, "bad_request"), ({"timeout_ms": "5"}, "bad_request"),
            ({"props": {"response_topic": "a/b"}}, "bad_request"),
            ({"props": {"correlation": "AAAA"}}, "bad_request"),
            ({"props": {"expiry": 0}}, "bad_request"),
            ({"topic": "a/+"}, "bad_topic"), ({"topic": 5}, "bad_request"),
            ({"payload": 1, "text": "x"}, "bad_request")]):
        req = {"op": "request", "id": i, "topic": "a/rpc"}
        req.update(extra)
        expect_error(ws.request(req), code, i, "request with %s" % extra)
    v = gw(role="viewer").session()
    expect_error(v.request({"op": "request", "id": "f", "topic": "a/rpc"}), "forbidden", "f")


@t.test("request on an MQTT 3.1.1 connection is bad_request; nothing is published")
def _():
    d = t.mosquitto.client(version=5)
    d.subscribe("v4/rpc", 1)
    ws = gw(version=4).session()
    r = ws.request({"op": "request", "id": 1, "topic": "v4/rpc", "text": "?"})
    expect_error(r, "bad_request", 1)
    check("3.1.1" in r.get("message", ""), "message %r" % r.get("message"))
    ws.request({"op": "pub", "id": 2, "topic": "v4/rpc", "text": "mark"})
    eq(d.get().payload, b"mark", "the refused request was not published")


@t.test("request: the broker connection going down fails every waiting request "
        "with broker_unavailable; after the reconnect requests are answered again", timeout=40)
def _():
    m = t.new_mosquitto("loss")
    g = gw(mosq=m, fresh=True)
    dev = Device(m, "lost/rpc", lambda msg: None)
    ws = g.session()
    ws.send_json({"op": "request", "id": 1, "topic": "lost/rpc", "text": "1"})
    ws.send_json({"op": "request", "id": 2, "topic": "lost/rpc", "text": "2",
                  "timeout_ms": 60000})
    dev.wait_seen(2)
    dev.close()
    m.kill9()
    frames = ws.collect(10, until=lambda fs: len([f for f in fs if f.get("op") == "error"]) >= 2)
    errs = sorted((f.get("id"), f.get("code")) for f in frames if f.get("op") == "error")
    eq(errs, [(1, "broker_unavailable"), (2, "broker_unavailable")], "both failed")
    expect_error(ws.request({"op": "request", "id": 3, "topic": "lost/rpc"}),
                 "broker_unavailable", 3, "a request while the broker is down")
    m.start()
    T.wait_for(lambda: g.health() == 200, 15, what="broker back")
    ws.collect(0.3)
    Device(m, "lost/rpc", echo)
    eq(ws.request({"op": "request", "id": 4, "topic": "lost/rpc", "payload": 4}),
       {"op": "ok", "id": 4, "response": {"payload": {"echo": 4}}},
       "answered after the reconnect (reply subscription restored)")


@t.test("two sessions' requests never cross; a session subscribed to # sees no response; "
        "a device answering with the wrong correlation data is ignored")
def _():
    def answer(m):
        wrong = props(CorrelationData=b"0123456789abcdef")
        return [(b'"wrong"', wrong), (b'"for ' + m.payload + b'"', None)]
    dev = Device(t.mosquitto, "pair/rpc", answer)
    g = gw()
    watcher = g.session()
    r = watcher.request({"op": "sub", "id": "w", "topic": "#"})
    eq(r.get("op"), "ok", "watcher sub")
    ignored = g.metric("mqgate_responses_ignored_total")
    a, b = g.session(), g.session()
    a.send_json({"op": "request", "id": 1, "topic": "pair/rpc", "text": "a"})
    b.send_json({"op": "request", "id": 1, "topic": "pair/rpc", "text": "b"})
    eq(a.await_reply(1), {"op": "ok", "id": 1, "response": {"payload": "for a"}}, "a's answer")
    eq(b.await_reply(1), {"op": "ok", "id": 1, "response": {"payload": "for b"}}, "b's answer")
    eq(a.collect(0.3), [], "nothing more for a")
    eq(b.collect(0.3), [], "nothing more for b")
    seen = [f for f in watcher.collect(0.5) if f.get("op") == "msg"]
    eq(sorted(f["topic"] for f in seen), ["pair/rpc", "pair/rpc"],
       "the watcher sees the requests, never a response")
    # the broker sends each answer once per matching subscription of the
    # gateway's (here the watcher's # too): the copies after the first are
    # ignored as well
    n = g.metric("mqgate_responses_ignored_total") - ignored
    check(n >= 2, "wrong answers ignored: %r" % n)
    # a correct correlation data on another request's topic answers nothing
    held = []
    dev2 = Device(t.mosquitto, "swap/rpc", lambda m: held.append(m) or None)
    a.send_json({"op": "request", "id": 2, "topic": "swap/rpc", "text": "a", "timeout_ms": 800})
    b.send_json({"op": "request", "id": 2, "topic": "swap/rpc", "text": "b", "timeout_ms": 800})
    ma, mb = dev2.wait_seen(2)
    p = Properties(PacketTypes.PUBLISH)
    p.CorrelationData = mb.properties.CorrelationData
    dev2.c.publish(ma.properties.ResponseTopic, b"swapped", qos=1, properties=p)
    expect_error(a.await_reply(2), "timeout", 2, "a with b's correlation data")
    expect_error(b.await_reply(2), "timeout", 2, "b")


@t.test("request: the mount applies to the topic; no subscribe permission is needed for "
        "the answer; a refused publish (broker_rejected) fails the request")
def _():
    dev = Device(t.mosquitto, "t1/dev/+/rpc", echo)
    ws = gw(role="tenant").session()
    eq(ws.request({"op": "request", "id": 1, "topic": "dev/3/rpc", "payload": 3}),
       {"op": "ok", "id": 1, "response": {"payload": {"echo": 3}}}, "tenant's request")
    eq(dev.wait_seen(1)[0].topic, "t1/dev/3/rpc", "mounted topic")
    ws2 = gw().session()
    expect_error(ws2.request({"op": "request", "id": 2, "topic": "denied/rpc", "qos": 1}),
                 "broker_rejected", 2)


@t.test("broker.reply_prefix: the response topics lie under it")
def _():
    dev = Device(t.mosquitto, "pfx/rpc", echo)
    g = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                   "broker": {"reply_prefix": "replies/%c/x/"}})
    ws = g.session()
    eq(ws.request({"op": "request", "id": 1, "topic": "pfx/rpc", "payload": 1}).get("op"),
       "ok", "answered")
    rt = dev.wait_seen(1)[0].properties.ResponseTopic
    check(rt.startswith("replies/mqgate-") and "/x/" in rt, "response topic %r" % rt)


if __name__ == "__main__":
    sys.exit(t.run())
