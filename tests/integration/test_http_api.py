#!/usr/bin/python3
"""The HTTP API (protocol.md, "HTTP API"): GET /api/events, a Server-Sent
Events stream that is a session like a WebSocket one, and POST
/api/publish; their credentials, Origin and CORS rules, refusals and
statuses, against the real daemon and mosquitto."""

import base64
import json
import os
import signal
import sys
import time
import http.client
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, fail                     # noqa: E402

t = T.Suite("http_api")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]},
         "viewer": {"subscribe": ["sensor/#"]},
         "operator": {"subscribe": ["sensor/#"], "publish": ["device/+/cmd"]},
         "tenant": {"mount": "tenants/%u/", "subscribe": ["#"], "publish": ["#"]}}
PASSWORDS = {"alice": "wonderland", "dave": "d4ve"}
TOTP_SECRET = base64.b32encode(b"mqgate-totp-test-key").decode().rstrip("=")
ORIGIN = "https://dash.example"


def users_file():
    path = os.path.join(t.root, "users")
    if not os.path.exists(path):
        t.write_file("users", "alice:%s:operator\ndave:%s:viewer:%s\n" % (
            T.crypt_hash(PASSWORDS["alice"]), T.crypt_hash(PASSWORDS["dave"]), TOTP_SECRET))
    return path


def gw(anonymous="all", fresh=False, name=None, limits=None, auth=None, **extra):
    a = {"jwt": t.jwt_config(), "users_file": users_file()}
    if anonymous:
        a["anonymous_role"] = anonymous
    a.update(auth or {})
    cfg = {"listeners": [{"http_api": True}], "auth": a, "roles": ROLES,
           "origins": [ORIGIN],
           "history": {"filters": ["hist/#"], "messages": 10}}
    if limits:
        cfg["limits"] = limits
    cfg.update(extra)
    return t.gateway(cfg, fresh=fresh, name=name)


def q(**kw):
    """A query string: topic may be a list."""
    pairs = []
    for k, v in kw.items():
        for x in (v if isinstance(v, list) else [v]):
            pairs.append((k, x))
    return urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote, safe="")


def Stream(g, query, headers=None, rcvbuf=None):
    return T.EventStream(g.ports[0], query, headers=headers, rcvbuf=rcvbuf)


def opened(s, n_topics):
    """hello, status, then an ok per topic: returns them."""
    eq(s.status, 200, "status of GET /api/events")
    evs = [s.event() for _ in range(2 + n_topics)]
    eq([e[0] for e in evs], ["hello", "status"] + ["ok"] * n_topics, "first events")
    for name, eid, data in evs:
        eq(data["op"], name, "event name is the object's op")
        eq(eid, None, "id of a %s event" % name)
    return evs


def post(g, body, headers=None, conn=None, raw=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    data = raw if raw is not None else json.dumps(body).encode()
    c = conn or http.client.HTTPConnection("127.0.0.1", g.ports[0], timeout=T.scaled(10))
    c.request("POST", "/api/publish", body=data, headers=h)
    r = c.getresponse()
    out = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    if conn is None:
        c.close()
    return r.status, hdrs, (json.loads(out) if out else None)


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


# --- the stream -------------------------------------------------------------

@t.test("events: headers, hello/status/ok per topic in query order, then msg events with "
        "id EPOCH:SEQ; the same JSON objects as a WebSocket session")
def _():
    g = gw()
    s = Stream(g, q(topic=["sensor/#", "device/+/status"], qos=1))
    eq(s.headers.get("content-type"), "text/event-stream", "Content-Type")
    eq(s.headers.get("cache-control"), "no-store", "Cache-Control")
    eq(s.headers.get("x-accel-buffering"), "no", "X-Accel-Buffering")
    evs = opened(s, 2)
    hello = evs[0][2]
    check(hello.get("epoch"), "hello without epoch: %s" % hello)
    eq([e[2].get("topic") for e in evs[2:]], ["sensor/#", "device/+/status"], "ok topics")
    eq([e[2].get("qos") for e in evs[2:]], [1, 1], "ok qos")
    m = t.mosquitto.client()
    m.publish("sensor/1", b'{"t":20}', qos=1)
    m.publish("device/7/status", b"on", qos=1)
    got = [s.event() for _ in range(2)]
    eq([(e[0], e[2]["topic"]) for e in got], [("msg", "sensor/1"), ("msg", "device/7/status")],
       "msg events")
    for name, eid, data in got:
        eq(eid, "%s:%d" % (hello["epoch"], data["seq"]), "id of a msg event")
    eq(got[0][2].get("payload"), {"t": 20}, "JSON payload spliced")
    T.diag("events: %s" % [e[2] for e in evs + got])
    s.close()


@t.test("events: Last-Event-ID resumes exactly as since (recovered, nothing missed or "
        "repeated) and takes precedence over since=")
def _():
    g = gw()
    m = t.mosquitto.client()
    s = Stream(g, q(topic="hist/#"))
    hello = opened(s, 1)[0][2]
    m.publish("hist/a", b"m1", qos=1)
    first = s.event()
    last_id = first[1]
    s.close()
    for i in range(2, 5):
        m.publish("hist/a", b"m%d" % i, qos=1)
    time.sleep(T.scaled(0.3))
    s2 = Stream(g, q(topic="hist/#", since="%s:%d" % (hello["epoch"], 999999)),
                headers={"Last-Event-ID": last_id})
    evs = opened(s2, 1)
    ok = evs[2][2]
    eq((ok.get("replayed"), ok.get("recovered")), (3, True), "replayed, recovered")
    got = [s2.event() for _ in range(3)]
    eq([e[2]["text"] for e in got], ["m2", "m3", "m4"], "replayed after the last id")
    check(all(e[2].get("history") for e in got), "replayed events flagged history")
    m.publish("hist/a", b"m5", qos=1)
    live = s2.event()
    eq((live[2]["text"], live[2].get("history")), ("m5", None), "then live")
    eq(live[2]["seq"], got[-1][2]["seq"] + 1, "seq follows on")
    s2.close()
    # since= alone, another epoch: not recovered
    s3 = Stream(g, q(topic="hist/#", since="otherepoch:3"))
    eq(opened(s3, 1)[2][2].get("recovered"), False, "recovered with another epoch")
    s3.close()


@t.test("events: a refused topic refuses the whole request with its status, nothing "
        "subscribed; bad queries, methods and origins")
def _():
    g = gw(anonymous="viewer")
    before = g.metric("mqgate_upstream_filters")
    cases = [
        (q(topic=["sensor/#", "device/#"]), {}, 403, "forbidden"),
        (q(topic="sensor/+x"), {}, 400, "bad_topic"),
        ("history=3", {}, 400, "bad_request"),
        (q(topic="sensor/#", history=11), {}, 400, "bad_request"),
        (q(topic="sensor/#", qos="one"), {}, 400, "bad_request"),
        (q(topic="sensor/#", max_rate=0), {}, 400, "bad_request"),
        (q(topic="sensor/#", since="nocolon"), {}, 400, "bad_request"),
        (q(topic=["sensor/%d" % i for i in range(33)]), {}, 400, "bad_request"),
        (q(topic="sensor/#"), {"Origin": "https://evil.example"}, 403, "forbidden"),
    ]
    for query, hdrs, status, code in cases:
        s = Stream(g, query, headers=hdrs)
        body = s.body()
        eq((s.status, body.get("op"), body.get("code")), (status, "error", code),
           "GET /api/events?%s %s" % (query[:80], hdrs))
        s.close()
    eq(g.metric("mqgate_upstream_filters"), before, "filters subscribed upstream")
    eq(g.metric("mqgate_subscriptions"), 0.0, "subscriptions held")
    g2 = gw(anonymous="viewer", limits={"max_subscriptions": 2}, name="maxsubs")
    s = Stream(g2, q(topic=["sensor/1", "sensor/2", "sensor/3"]))
    eq((s.status, s.body().get("code")), (400, "limit_exceeded"),
       "more topics than limits.max_subscriptions")
    s.close()
    st, hd, body = T.http_request(g.ports[0], "/api/events?topic=a", method="POST",
                                  headers={"Content-Type": "application/json"}, body=b"{}")
    eq(st, 405, "POST /api/events")
    check("GET" in hd.get("allow", ""), "Allow header: %s" % hd)
    st, _, _ = T.http_request(g.ports[0], "/api/publish")
    eq(st, 405, "GET /api/publish")
    eq(g.metric("mqgate_http_requests_total", endpoint="events", status="403"), 2.0,
       "403 answers of the events endpoint counted")


@t.test("events: a listener without http_api does not serve it (404)")
def _():
    g = t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES})
    st, _, _ = T.http_request(g.ports[0], "/api/events?topic=a")
    eq(st, 404, "status")


# --- credentials --------------------------------------------------------------

@t.test("credentials: Bearer, cookie, query token only when allowed, Basic against the "
        "users file (not for a TOTP user), anonymous; 401 with WWW-Authenticate")
def _():
    g = gw(anonymous=None, auth={"allow_query_token": False})
    tok = t.token("tina", ["viewer"])
    s = Stream(g, q(topic="sensor/#"), headers={"Authorization": "Bearer " + tok})
    hello = opened(s, 1)[0][2]
    eq((hello.get("user"), hello.get("roles")), ("tina", ["viewer"]), "Bearer identity")
    s.close()
    cookie = g.cfg["auth"].get("cookie", "mqgate_token")
    s = Stream(g, q(topic="sensor/#"), headers={"Cookie": "%s=%s" % (cookie, tok)})
    eq(opened(s, 1)[0][2].get("user"), "tina", "cookie identity")
    s.close()
    s = Stream(g, q(topic="sensor/#", token=tok))
    eq((s.status, s.body().get("code")), (401, "unauthenticated"),
       "?token= when not allowed")
    check("Bearer" in s.headers.get("www-authenticate", ""), "WWW-Authenticate: %s" % s.headers)
    s.close()
    s = Stream(g, q(topic="sensor/#"), headers={"Authorization": basic("alice", "wonderland")})
    hello = opened(s, 1)[0][2]
    eq((hello.get("user"), hello.get("roles")), ("alice", ["operator"]), "Basic identity")
    s.close()
    for hdrs, what in (({"Authorization": basic("alice", "wrong")}, "wrong password"),
                       ({"Authorization": basic("dave", "d4ve")}, "TOTP user with Basic"),
                       ({"Authorization": "Basic !!!"}, "malformed Basic"),
                       ({"Authorization": "Bearer x.y.z"}, "bad token"),
                       ({"Authorization": "Digest abc"}, "unknown scheme")):
        s = Stream(g, q(topic="sensor/#"), headers=hdrs)
        eq((s.status, s.body().get("code")), (401, "auth_failed"), what)
        check("Basic" in s.headers.get("www-authenticate", ""),
              "%s: WWW-Authenticate %s" % (what, s.headers))
        s.close()
    # a page's fetch() is not offered Basic (the browser would open its
    # own dialog over the page)
    s = Stream(g, q(topic="sensor/#"), headers={"Sec-Fetch-Mode": "cors"})
    eq(s.status, 401, "a fetch without credentials")
    eq(s.headers.get("www-authenticate"), 'Bearer realm="mqgate"', "challenge to a fetch")
    s.close()
    g2 = gw(anonymous=None, auth={"allow_query_token": True}, name="qtok")
    s = Stream(g2, q(topic="sensor/#", token=tok))
    eq(opened(s, 1)[0][2].get("user"), "tina", "?token= when allowed")
    s.close()
    st, _, body = post(g, {"topic": "device/1/cmd", "text": "x"})
    eq((st, body.get("code")), (401, "unauthenticated"), "publish without credentials")
    st, _, body = post(g, {"topic": "device/1/cmd", "text": "x"},
                       headers={"Authorization": basic("alice", "wonderland")})
    eq((st, body), (200, {"op": "ok"}), "publish with Basic")


@t.test("CORS: an allowed Origin is answered with Access-Control-Allow-Origin, -Credentials "
        "and Vary; preflights of both endpoints 204; a foreign Origin 403")
def _():
    g = gw()
    for path in ("/api/events", "/api/publish"):
        st, hd, _ = T.http_request(g.ports[0], path, method="OPTIONS",
                                   headers={"Origin": ORIGIN,
                                            "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "content-type"})
        eq(st, 204, "preflight of %s" % path)
        eq(hd.get("access-control-allow-origin"), ORIGIN, "ACAO of the preflight")
        eq(hd.get("access-control-allow-credentials"), "true", "ACAC of the preflight")
        for h in ("authorization", "content-type", "last-event-id"):
            check(h in hd.get("access-control-allow-headers", ""), "allowed headers: %s" % hd)
        for m in ("GET", "POST"):
            check(m in hd.get("access-control-allow-methods", ""), "allowed methods: %s" % hd)
        st, hd, _ = T.http_request(g.ports[0], path, method="OPTIONS",
                                   headers={"Origin": "https://evil.example"})
        eq(st, 403, "preflight from a foreign origin")
        check("access-control-allow-origin" not in hd, "ACAO for a foreign origin")
    st, hd, body = post(g, {"topic": "a/b", "text": "x"}, headers={"Origin": ORIGIN})
    eq((st, hd.get("access-control-allow-origin"), hd.get("vary")), (200, ORIGIN, "Origin"),
       "a publish from the allowed origin")
    s = Stream(g, q(topic="a/#"), headers={"Origin": ORIGIN})
    eq((s.status, s.headers.get("access-control-allow-origin")), (200, ORIGIN),
       "a stream from the allowed origin")
    s.close()


@t.test("CSRF: a publish with cookie credentials from a foreign origin is impossible "
        "(403 by the Origin check; a form's content types get 415)")
def _():
    g = gw(anonymous=None)
    tok = t.token("olga", ["operator"])
    cookie = "mqgate_token=%s" % tok
    m = t.mosquitto.client()
    m.subscribe("device/#", qos=1)
    st, _, body = post(g, {"topic": "device/1/cmd", "text": "evil"},
                       headers={"Cookie": cookie, "Origin": "https://evil.example"})
    eq((st, body.get("code")), (403, "forbidden"), "cookie + foreign origin")
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        st, _, body = post(g, {"topic": "device/1/cmd", "text": "evil"},
                           headers={"Cookie": cookie, "Content-Type": ctype})
        eq(st, 415, "Content-Type %s" % ctype)
    st, _, body = post(g, {"topic": "device/1/cmd", "text": "good"},
                       headers={"Cookie": cookie, "Origin": ORIGIN})
    eq((st, body), (200, {"op": "ok"}), "cookie + the allowed origin")
    msg = m.get(what="the one allowed publish")
    eq(msg.payload, b"good", "what reached the broker")
    time.sleep(T.scaled(0.3))
    eq(list(m.msgs), [], "refused publishes at the broker")


# --- the stream's life ----------------------------------------------------------

@t.test("events: keepalive comments every ping interval; a token's expiry ends the "
        "stream with a close event 4401")
def _():
    g = gw(anonymous=None, limits={"ping_interval_s": 1}, fresh=True, name="sse-life")
    s = Stream(g, q(topic="sensor/#"),
               headers={"Authorization": "Bearer " + t.token("tina", ["viewer"], ttl=3)})
    opened(s, 1)
    evs = s.events_until(lambda e: e[0] == "close", timeout=10)
    T.diag("comments before the expiry: %s" % s.comments)
    check(len(s.comments) >= 1 and all(c == ": ping" for c in s.comments),
          "keepalive comments: %s" % s.comments)
    eq(evs[-1][2].get("code"), 4401, "close code")
    check(any(e[2].get("code") == "token_expired" for e in evs if e[0] == "error"),
          "token_expired error before the close: %s" % evs)
    try:
        s._more(3)
        fail("the stream went on after its close event")
    except EOFError:
        pass
    s.close()


@t.test("events: a reload re-checks a stream like a session: a withdrawn filter is dropped "
        "with an error event, a vanished role ends the stream with close 4401")
def _():
    g = gw(anonymous=None, fresh=True, name="sse-hup")
    op = Stream(g, q(topic=["sensor/#", "device/+/cmd"]),
                headers={"Authorization": "Bearer " + t.token("olga", ["all"])})
    opened(op, 2)
    gone = Stream(g, q(topic="sensor/#"),
                  headers={"Authorization": "Bearer " + t.token("vic", ["viewer"])})
    opened(gone, 1)
    roles = dict(ROLES, all={"subscribe": ["sensor/#"], "publish": []})
    del roles["viewer"]
    g.write_config(dict(g.cfg, roles=roles))
    g.send_signal(signal.SIGHUP)
    ev = gone.events_until(lambda e: e[0] == "close", timeout=10)[-1]
    eq(ev[2].get("code"), 4401, "close code of a stream whose role vanished")
    err = op.events_until(lambda e: e[0] == "error", timeout=10)[-1]
    eq(err[2].get("code"), "forbidden", "error event for the withdrawn filter")
    check("device/+/cmd" in err[2].get("message", ""), "the error names the filter: %s" % (err,))
    m = t.mosquitto.client()
    m.publish("device/1/cmd", b"no", qos=1)
    m.publish("sensor/1", b"yes", qos=1)
    ev = op.event()
    eq((ev[0], ev[2].get("topic")), ("msg", "sensor/1"), "what the stream gets after the reload")
    op.close()
    gone.close()


@t.test("events: SIGTERM ends every stream with a close event 1001; the gateway exits 0")
def _():
    g = gw(fresh=True, name="sse-term")
    s = Stream(g, q(topic="sensor/#"))
    opened(s, 1)
    g.send_signal(signal.SIGTERM)
    ev = s.events_until(lambda e: e[0] == "close", timeout=10)[-1]
    eq(ev[2].get("code"), 1001, "close code at shutdown")
    eq(g.stop(), 0, "exit status")


@t.test("events: a stream that stops reading is closed as too slow (4408); a stream that "
        "reads goes on")
def _():
    g = gw(limits={"max_queue_bytes": 65536}, fresh=True, name="sse-slow")
    slow = Stream(g, q(topic="slow/#"), rcvbuf=4096)
    opened(slow, 1)
    fast = Stream(g, q(topic="slow/#"))
    opened(fast, 1)
    m = t.mosquitto.client()
    pad = b"x" * 1000
    sent = 0
    while g.metric("mqgate_slow_consumer_closes_total") < 1 and sent < 20000:
        for i in range(20):
            m.publish("slow/t", pad, qos=0, wait=False)
        sent += 20
        # the fast one reads what came
        for i in range(20):
            fast.event()
    eq(g.metric("mqgate_slow_consumer_closes_total"), 1.0, "slow closes after %d" % sent)
    m.publish("slow/t", b"after", qos=1)
    ev = fast.events_until(lambda e: e[2].get("text") == "after", timeout=10)[-1]
    eq(ev[0], "msg", "the reading stream still gets messages")
    eq(g.metric("mqgate_sessions_by_transport", transport="sse"), 1.0, "streams open")
    slow.close()
    fast.close()


# --- publish ---------------------------------------------------------------------

@t.test("publish: one object (QoS 0, 1, 2) answered when safe; an array answered per "
        "element in order; refusals with their statuses; the mount")
def _():
    g = gw(anonymous="operator")
    m = t.mosquitto.client()
    m.subscribe("device/#", qos=2)
    m.subscribe("tenants/#", qos=1)
    for qos in (0, 1, 2):
        st, _, body = post(g, {"topic": "device/1/cmd", "payload": {"q": qos}, "qos": qos})
        eq((st, body), (200, {"op": "ok"}), "QoS %d publish" % qos)
        eq(json.loads(m.get().payload), {"q": qos}, "QoS %d at the broker" % qos)
    st, _, body = post(g, [{"topic": "device/2/cmd", "text": "a"},
                           {"topic": "sensor/x", "text": "no"},
                           {"topic": "device/+/cmd", "text": "no"},
                           "not an object",
                           {"topic": "device/3/cmd", "base64": "aGk=", "qos": 1}])
    eq(st, 200, "array status")
    eq([b.get("code", b.get("op")) for b in body],
       ["ok", "forbidden", "bad_topic", "bad_request", "ok"], "array answers")
    eq([m.get().payload for _ in range(2)], [b"a", b"hi"], "array at the broker")
    for body_, status, code, what in (
            ({"topic": "sensor/x", "text": "no"}, 403, "forbidden", "forbidden topic"),
            ({"text": "x"}, 400, "bad_request", "no topic"),
            ({"topic": "device/#", "text": "x"}, 400, "bad_topic", "wildcard topic")):
        st, _, body = post(g, body_)
        eq((st, body.get("code")), (status, code), what)
    st, _, body = post(g, None, raw=b'{"topic": ')
    eq((st, body.get("code")), (400, "bad_json"), "cut JSON")
    st, _, body = post(g, None, raw=b"x" * 300000)
    eq(st, 413, "a body over max_message_bytes")
    # a payload as written: its numbers are not re-formatted
    st, _, body = post(g, None, raw=b'[{"topic":"device/4/cmd","payload":6.24,"op":"x","id":9},'
                                    b'{"topic":"device/4/cmd","payload":{"v":1e-7, "w":[0.1]}}]')
    eq((st, body), (200, [{"op": "ok"}, {"op": "ok"}]), "payloads with numbers")
    eq([m.get().payload for _ in range(2)], [b"6.24", b'{"v":1e-7,"w":[0.1]}'],
       "the payloads at the broker")
    tok = t.token("acme", ["tenant"])
    st, _, body = post(g, {"topic": "a/b", "text": "mounted"},
                       headers={"Authorization": "Bearer " + tok})
    eq((st, body), (200, {"op": "ok"}), "mounted publish")
    eq((m.get().topic), "tenants/acme/a/b", "the mounted topic at the broker")


@t.test("publish: the rate is the user's across requests (429); keep-alive carries "
        "thousands of publishes over one connection")
def _():
    g = gw(limits={"publish_rate": 2, "publish_burst": 3}, fresh=True, name="pub-rate")
    tok = t.token("rita", ["all"])
    codes = []
    for i in range(5):
        st, _, body = post(g, {"topic": "r/x", "text": str(i)},
                           headers={"Authorization": "Bearer " + tok})
        codes.append(st)
    eq(codes[:3], [200, 200, 200], "within the burst")
    eq(codes[3:], [429, 429], "past the burst, across requests")
    g2 = gw(limits={"publish_rate": 1000000, "publish_burst": 1000000}, name="keepalive")
    m = t.mosquitto.client()
    m.subscribe("ka/#", qos=0)
    conn = http.client.HTTPConnection("127.0.0.1", g2.ports[0], timeout=T.scaled(10))
    n = 2000
    t0 = time.monotonic()
    for i in range(n):
        st, _, body = post(g2, {"topic": "ka/x", "text": str(i)}, conn=conn)
        if st != 200:
            fail("publish %d over keep-alive: %s %s" % (i, st, body))
    dt = time.monotonic() - t0
    conn.close()
    got = [m.get().payload for _ in range(n)]
    eq(got, [str(i).encode() for i in range(n)], "all at the broker, in order")
    T.diag("%d publishes over one connection in %.2f s" % (n, dt))


if __name__ == "__main__":
    sys.exit(t.run())
