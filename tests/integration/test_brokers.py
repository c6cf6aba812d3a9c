#!/usr/bin/python3
"""The scenarios that depend on the broker, run against each broker kind
in one script: mosquitto (MQTT 5), RabbitMQ's MQTT plugin (Debian's
rabbitmq-server, MQTT 3.1.1) and aedes (npm, MQTT 3.1.1; tests/brokers/),
each started here on loopback (mqgtest.BROKERS). Pub/sub and wildcards,
QoS 0/1/2 publish acks, the QoS a sub is granted, retained replay,
overlapping filters at different QoS, a broker restart (status down/up,
subscriptions renewed, a publish held meanwhile), history, $SYS. Where a
broker differs (docs/deployment.md, "Which broker"), the test checks what
that broker does and what the gateway makes of it. MQG_BROKERS=a,b runs
only those kinds."""

import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, fail                     # noqa: E402

t = T.Suite("brokers", broker=False)
if not os.environ.get("MQG_SCRIPT_TIMEOUT"):
    # RabbitMQ takes 10 to 60 s to start on a busy machine, twice
    T.SCRIPT_TIMEOUT = 480 * T.TIME_SCALE

ROLES = {"all": {"subscribe": ["#", "$SYS/#"], "publish": ["#"]}}
KINDS = [k for k in os.environ.get("MQG_BROKERS", "mosquitto,rabbitmq,aedes").split(",") if k]
brokers = {}      # kind -> a running broker, or the reason it cannot run


def broker(kind):
    b = brokers.get(kind)
    if b is None:
        t.skip("no %s" % kind)
    if isinstance(b, str):
        t.skip(b)
    return b


def cfg(kind, **extra):
    c = {"auth": {"anonymous_role": "all"}, "roles": ROLES,
         "history": {"filters": ["%s/hs/#" % kind], "messages": 5}}
    c.update(extra)
    return c


def gw(kind, fresh=False, **extra):
    return t.gateway(cfg(kind, **extra), mosq=broker(kind), fresh=fresh,
                     name=("%s-gw" % kind) if not fresh else None)


def msg(topic, qos=0, retain=False, **body):
    d = {"op": "msg", "topic": topic, "qos": qos, "retain": retain}
    d.update(body)
    return d


def sub(ws, topic, qos=0, rid="sub", **more):
    r = ws.request(dict({"op": "sub", "id": rid, "topic": topic, "qos": qos}, **more))
    if r.get("op") != "ok":
        fail("sub %s refused: %s" % (topic, T.show(r)))
    return r


def until_text(ws, text, timeout=5.0):
    """Frames up to and including the first msg whose text is text."""
    frames = ws.collect(timeout, until=lambda fs: fs and fs[-1].get("text") == text)
    if not frames or frames[-1].get("text") != text:
        fail("marker %r never arrived; got %s" % (text, T.show(frames[-5:])))
    return frames


def texts(frames):
    return [f.get("text", f.get("payload")) for f in frames if f.get("op") == "msg"]


def granted(kind, qos):
    """The QoS a broker grants for a SUBSCRIBE at qos."""
    return qos if broker(kind).traits["qos2"] or qos < 2 else 1


def per_broker(kind):
    p = kind

    def start():
        cls = T.BROKERS[kind]
        why = cls.available()
        if why:
            brokers[kind] = why
            t.skip(why)
        t0 = time.monotonic()
        brokers[kind] = t.new_broker(kind, kind)
        T.diag("%s listening on %d after %.1f s" % (kind, brokers[kind].port, time.monotonic() - t0))
        g = gw(kind)
        eq(g.metric("mqgate_broker_up"), 1.0, "mqgate_broker_up")
        want = "3.1.1" if brokers[kind].mqtt_version < 5 else "5"
        check("MQTT %s" % want in g.log_text() or "mqtt %s" % want in g.log_text().lower(),
              "the gateway's log names MQTT %s:\n%s" % (want, T.tail(g.log_text(), 10)))
    t.add("[%s] started on loopback; the gateway connects (MQTT %s)" % (
        kind, "3.1.1" if T.BROKERS[kind].mqtt_version < 5 else "5"), start, timeout=150)

    def wildcards():
        ws = gw(kind).session()
        sub(ws, "%s/w/+/temp" % p, 1)
        sub(ws, "%s/w2/#" % p, 0, rid="sub2")
        pub = broker(kind).client()
        pub.publish("%s/w/1/temp" % p, b'{"t":21.5}', qos=1)
        eq(ws.recv_json(), msg("%s/w/1/temp" % p, 1, payload={"t": 21.5}), "msg on +")
        pub.publish("%s/w/1/hum" % p, b"no", qos=1)
        pub.publish("%s/w/1/2/temp" % p, b"no", qos=1)
        pub.publish("%s/w2" % p, b"parent", qos=0)
        pub.publish("%s/w2/a/b/c" % p, b"deep", qos=1)
        pub.publish("%s/w/2/temp" % p, b"end", qos=0)
        got = until_text(ws, "end")
        eq([(f["topic"], f["qos"], f.get("text")) for f in got],
           [("%s/w2" % p, 0, "parent"), ("%s/w2/a/b/c" % p, 0, "deep"),
            ("%s/w/2/temp" % p, 0, "end")],
           "messages on + and # (non-matching ones skipped, # matches its parent)")
        # a session's publish reaches another session and an MQTT client
        other = gw(kind).session()
        w = broker(kind).client()
        w.subscribe("%s/w/#" % p, 1)
        eq(other.request({"op": "pub", "id": 1, "topic": "%s/w/9/temp" % p,
                          "payload": {"n": 1}, "qos": 1}), {"op": "ok", "id": 1}, "pub reply")
        eq(ws.recv_json(), msg("%s/w/9/temp" % p, 1, payload={"n": 1}), "msg from another session")
        m = w.get()
        eq((m.topic, m.payload), ("%s/w/9/temp" % p, b'{"n":1}'), "the message at an MQTT client")
    t.add("[%s] pub/sub: + and # wildcards, a session's pub to sessions and MQTT clients" % kind,
          wildcards)

    def qos_acks():
        g = gw(kind)
        ws = g.session()
        for q in (0, 1, 2):
            eq(ws.request({"op": "sub", "id": q, "topic": "%s/g/%d" % (p, q), "qos": q}),
               {"op": "ok", "id": q, "qos": granted(kind, q)}, "reply to sub qos %d" % q)
        w = broker(kind).client()
        eq(w.subscribe("%s/acks/#" % p, 2), (granted(kind, 2),), "the watcher's SUBACK")
        for q in (0, 1, 2):
            eq(ws.request({"op": "pub", "id": "p%d" % q, "topic": "%s/acks/%d" % (p, q),
                           "text": "q%d" % q, "qos": q}, timeout=10),
               {"op": "ok", "id": "p%d" % q}, "reply to a pub at qos %d" % q)
        got = sorted((m.topic, m.payload) for m in w.get_n(3))
        eq(got, [("%s/acks/%d" % (p, q), b"q%d" % q) for q in (0, 1, 2)],
           "the three publishes at the broker")
        # the QoS 2 publish: with mosquitto and aedes the gateway's Paho
        # completed PUBREC/PUBREL/PUBCOMP; RabbitMQ took it as QoS 1 (PUBACK)
        # and the gateway answered ok on that
        time.sleep(T.scaled(0.2))
        eq(ws.sync(), [], "frames at the subscribing session")
    t.add("[%s] pub at QoS 0/1/2: ok after the broker's ack; sub: the QoS the broker granted" % kind,
          qos_acks)

    def retained():
        g = gw(kind)
        pub = broker(kind).client()
        pub.publish("%s/ret/a" % p, b'{"v":1}', qos=1, retain=True)
        time.sleep(T.scaled(0.2))
        a = g.session()
        sub(a, "%s/ret/a" % p, 1)
        eq(a.recv_json(), msg("%s/ret/a" % p, 1, True, payload={"v": 1}),
           "retained replay on an exact filter")
        b = g.session()
        sub(b, "%s/ret/#" % p, 1)
        pub.publish("%s/ret/mark" % p, b"mark", qos=1)
        got = until_text(b, "mark")
        if broker(kind).traits["retained_wildcard"]:
            eq(got, [msg("%s/ret/a" % p, 1, True, payload={"v": 1}),
                     msg("%s/ret/mark" % p, 1, text="mark")], "replay on a wildcard filter")
        else:
            # RabbitMQ's retained store answers exact topics only
            eq(got, [msg("%s/ret/mark" % p, 1, text="mark")],
               "no retained replay on a wildcard filter (RabbitMQ)")
        # a retained publish while subscribed is live (retain false); cleared
        pub.publish("%s/ret/a" % p, b'{"v":2}', qos=1, retain=True)
        eq(a.recv_json(), msg("%s/ret/a" % p, 1, False, payload={"v": 2}), "live retained msg")
        pub.publish("%s/ret/a" % p, b"", qos=1, retain=True)
        until_text(a, "")
        c = g.session()
        sub(c, "%s/ret/a" % p, 1)
        pub.publish("%s/ret/a" % p, b"live", qos=1)
        eq(texts(until_text(c, "live")), ["live"], "frames after the retained message was cleared")
    t.add("[%s] retained replay after the sub's ok; live ones retain:false; cleared" % kind, retained)

    def overlapping():
        g = gw(kind)
        a, b = g.session(), g.session()
        # one session, overlapping filters at different QoS; another
        # session on one of them: each message once per session
        sub(a, "%s/ov/#" % p, 0)
        sub(a, "%s/ov/+/temp" % p, 1, rid="s2")
        sub(b, "%s/ov/1/temp" % p, 2)
        pub = broker(kind).client()
        for x in (b"x", b"y", b"end"):
            pub.publish("%s/ov/1/temp" % p, x, qos=1)
        for who, ws in (("a", a), ("b", b)):
            got = until_text(ws, "end")
            eq(texts(got), ["x", "y", "end"], "session %s: texts received" % who)
        eq(sorted({f["qos"] for f in got}), [1], "session b: qos")
        time.sleep(T.scaled(0.3))
        eq(a.sync(), [], "frames at a after the last")
        eq(b.sync(), [], "frames at b after the last")
    t.add("[%s] overlapping filters at different QoS: one copy per session" % kind, overlapping)

    def history():
        g = gw(kind)
        pub = broker(kind).client()
        for i in range(4):
            pub.publish("%s/hs/a" % p, b"a%d" % i, qos=1)
        before = g.metric("mqgate_history_messages")
        pub.publish("%s/hs/b" % p, b"b0", qos=1)
        T.wait_for(lambda: g.metric("mqgate_history_messages") != before, what="history stored")
        ws = g.session()
        ws.keep_positions = True
        r = sub(ws, "%s/hs/+" % p, 0, history=2)
        eq(r.get("replayed"), 3, "replayed (2 of hs/a, 1 of hs/b)")
        got = ws.collect_n(3, pred=lambda f: f.get("op") == "msg")
        eq([(f["topic"], f["text"], f.get("history")) for f in got],
           [("%s/hs/a" % p, "a2", True), ("%s/hs/a" % p, "a3", True), ("%s/hs/b" % p, "b0", True)],
           "history replay")
        seqs = [f["seq"] for f in got]
        eq(seqs, sorted(seqs), "seq order")
        pub.publish("%s/hs/a" % p, b"live", qos=1)
        f = ws.collect_n(1, pred=lambda f: f.get("op") == "msg")[0]
        eq((f["text"], "history" in f, f["seq"] > seqs[-1]), ("live", False, True), "live after replay")
    t.add("[%s] history: replay of the newest of each topic, then live" % kind, history)

    def sys_tree():
        g = gw(kind)
        ws = g.session()
        eq(ws.request({"op": "sub", "id": 1, "topic": "$SYS/#", "qos": 0}),
           {"op": "ok", "id": 1, "qos": 0}, "sub $SYS/#")
        frames = ws.collect(T.scaled(1.5) if broker(kind).traits["sys"] else 0.5)
        T.diag("%s: %d $SYS message(s) within 1.5 s" % (kind, len(frames)))
        check(all(f.get("op") == "msg" and f["topic"].startswith("$SYS/") for f in frames),
              "frames under $SYS/#: %s" % T.show(frames[:3]))
        ws.request({"op": "unsub", "id": 2, "topic": "$SYS/#"})
        g.assert_serving()
    t.add("[%s] $SYS/#: sub ok, only $SYS messages (none from RabbitMQ)" % kind, sys_tree)

    def mqtt5_only():
        # what needs MQTT 5 is refused with a reason, not silently dropped
        if broker(kind).mqtt_version == 5:
            t.skip("%s speaks MQTT 5" % kind)
        ws = gw(kind).session()
        r = ws.request({"op": "request", "id": "rq", "topic": "%s/rpc" % p,
                        "text": "x", "timeout_ms": 1000})
        T.expect_error(r, "bad_request", "rq", "request over MQTT 3.1.1")
        r = ws.request({"op": "pub", "id": "pp", "topic": "%s/pp" % p, "text": "x",
                        "props": {"content_type": "text/plain"}})
        T.expect_error(r, "bad_request", "pp", "pub with props over MQTT 3.1.1")
        T.diag("%s: %s / %s" % (kind, r["message"], ws.request({"op": "request", "id": "rq2",
               "topic": "%s/rpc" % p, "text": "x"})["message"]))
    t.add("[%s] MQTT 5 only (request, props): bad_request naming MQTT 3.1.1" % kind, mqtt5_only)

    def restart():
        g = gw(kind, fresh=True)
        a, b = g.session(), g.session()
        sub(a, "%s/rc/#" % p, 1)
        t0 = time.monotonic()
        broker(kind).stop()
        frames = a.collect(10, until=lambda fs: {"op": "status", "broker": "down"} in fs)
        check({"op": "status", "broker": "down"} in frames, "status down: %s" % T.show(frames))
        # a QoS 1 publish while the broker is away waits in the buffer
        b.send_json({"op": "pub", "id": "held", "topic": "%s/rc/held" % p, "text": "held", "qos": 1})
        t1 = time.monotonic()
        broker(kind).start()
        t2 = time.monotonic()
        frames = a.collect(30, until=lambda fs: {"op": "status", "broker": "up"} in fs)
        check({"op": "status", "broker": "up"} in frames, "status up: %s" % T.show(frames))
        T.diag("%s: stopped in %.1f s, started in %.1f s, status up %.1f s later"
               % (kind, t1 - t0, t2 - t1, time.monotonic() - t2))
        eq(b.await_reply("held", timeout=15), {"op": "ok", "id": "held"}, "the held publish's reply")
        # the gateway subscribed again: a new publisher's message arrives
        pub = broker(kind).client()
        pub.publish("%s/rc/after" % p, b"after", qos=1, timeout=15)
        got = until_text(a, "after", timeout=10)
        extra = [x for x in texts(got) if x not in ("held", "after")]
        eq(extra, [], "frames at a besides the held publish and the one after")
    t.add("[%s] broker restart: status down/up, subscriptions renewed, held publish ok" % kind,
          restart, timeout=150)

    def version():
        b = broker(kind)
        base = t.base_config(b)["broker"]
        auto = t.gateway(cfg(kind, broker=dict(base, mqtt_version="auto")), mosq=b,
                         fresh=True, name="%s-auto" % kind)
        eq(auto.metric("mqgate_broker_up"), 1.0, "mqgate_broker_up with mqtt_version auto")
        log = auto.log_text()
        if kind == "rabbitmq":
            # it closes an MQTT 5 connect without a CONNACK
            check("the next attempt speaks MQTT 3.1.1" in log,
                  "auto: the other version tried:\n%s" % T.tail(log, 10))
        elif b.mqtt_version < 5:
            check('refused MQTT 5 (CONNACK' in log and "connecting with MQTT 3.1.1" in log,
                  "auto: the fallback logged:\n%s" % T.tail(log, 10))
            check(auto.metric("mqgate_broker_mqtt5_refused_total") >= 1, "refusal counted")
            # mqtt_version 5 against it: one clear line with what to set
            five = t.gateway(cfg(kind, broker=dict(base, mqtt_version=5)), mosq=b, fresh=True,
                             name="%s-v5" % kind, healthy=False)
            T.wait_for(lambda: (five.metric("mqgate_broker_mqtt5_refused_total") or 0) >= 2,
                       timeout=20, what="two refused connects")
            lines = [l for l in five.log_text().splitlines() if "refused MQTT 5" in l]
            eq(len(lines), 1, "lines saying the broker refused MQTT 5")
            check('set broker.mqtt_version to 4, or to "auto"' in lines[0], lines[0])
            eq(five.metric("mqgate_broker_up"), 0.0, "mqgate_broker_up with mqtt_version 5")
            five.stop()
        else:
            check("refused MQTT 5" not in log, "auto against an MQTT 5 broker fell back")
            eq(auto.metric("mqgate_broker_mqtt5_refused_total"), 0.0, "refusals")
        ws = auto.session()
        sub(ws, "%s/ver/#" % p)
        broker(kind).client().publish("%s/ver/1" % p, b"v", qos=1, timeout=15)
        until_text(ws, "v", timeout=10)
        auto.stop()
    t.add("[%s] mqtt_version \"auto\": MQTT 5, or 3.1.1 when refused (logged, counted); "
          "5 against a 3.1.1 broker says what to set" % kind, version, timeout=90)

    def stop():
        b = brokers.get(kind)
        if isinstance(b, T.Broker):
            for g in [g for g in t.all_gateways if g.mosq is b and not g.stopped]:
                g.stop()
            T.stop_broker(b)
            eq(b.running(), False, "%s stopped" % kind)
        else:
            t.skip(b or "not started")
    t.add("[%s] stopped, its gateways exit 0" % kind, stop, timeout=60)


if T.paho is None:
    print("1..0 # SKIP python3-paho-mqtt not installed", flush=True)
    sys.exit(0)
for _k in KINDS:
    per_broker(_k)
sys.exit(t.run())
