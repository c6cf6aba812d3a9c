#!/usr/bin/python3
"""Authentication (JWT, password, TOTP, handshake tokens, expiry) and the
role table: coverage on sub, matching on pub, $ topics, $share, max_qos,
%u, mounts, reload."""

import base64
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import DELETE, check, eq, expect_error  # noqa: E402

t = T.Suite("acl")

ROLES = {
    "viewer": {"subscribe": ["sensor/#"], "max_qos": 1},
    "operator": {"subscribe": ["sensor/#", "device/+/status"], "publish": ["device/+/cmd"], "max_qos": 2},
    "users": {"subscribe": ["users/%u/#"], "publish": ["users/%u/#"]},
    "tenant": {"mount": "tenants/%u/", "subscribe": ["#"], "publish": ["cmd/#"]},
    "othermount": {"mount": "other/%u/", "subscribe": ["#"]},
    "everything": {"subscribe": ["#"], "publish": ["#"]},
    "dollar": {"subscribe": ["#", "+/bar", "$foo/#"]},
    "shared": {"subscribe": ["$share/grp/#"]},
    "q0": {"subscribe": ["sensor/#"], "publish": ["sensor/#"], "max_qos": 0},
}
PASSWORDS = {"alice": "wonderland", "bob": "builder", "dave": "d4ve"}
TOTP_SECRET = base64.b32encode(b"mqgate-totp-test-key").decode().rstrip("=")
STATUS_UP = {"op": "status", "broker": "up"}
# "allow" (protocol.md) of the roles above, for users without %u patterns
ALLOW_OPERATOR = {"subscribe": ["sensor/#", "device/+/status"], "publish": ["device/+/cmd"]}
ALLOW_VIEWER = {"subscribe": ["sensor/#"], "publish": []}


def users_file():
    path = os.path.join(t.root, "users")
    if not os.path.exists(path):
        text = ("# mqgate users\n\n"
                "alice:%s:operator\n"
                "bob:%s:viewer,operator\n"
                "# dave has a TOTP secret\n"
                "dave:%s:viewer:%s\n") % (T.crypt_hash(PASSWORDS["alice"]),
                                          T.crypt_hash(PASSWORDS["bob"], "sha512"),
                                          T.crypt_hash(PASSWORDS["dave"]), TOTP_SECRET)
        t.write_file("users", text)
    return path


def auth_cfg(**extra):
    a = {"jwt": t.jwt_config(), "users_file": users_file()}
    a.update(extra)
    return a


def gw():
    """JWT and password auth, no anonymous role; big messages allowed for
    the mounted topic length test."""
    return t.gateway({"auth": auth_cfg(), "roles": ROLES,
                      "limits": {"max_message_bytes": 200000}})


def as_user(user, roles, g=None, **kw):
    return (g or gw()).session(token=t.token(user, roles, **kw))


def auth_fails(ws, req, what):
    """req must get auth_failed with its id, then close 4401."""
    r = ws.request(req)
    expect_error(r, "auth_failed", req["id"], what)
    eq(ws.expect_close(4401, what=what), [], "frames between auth_failed and the close")


def sub_codes(ws, filters, qos=0):
    """The reply code of a sub to each filter: "ok" or the error code."""
    out = {}
    for i, f in enumerate(filters):
        r = ws.request({"op": "sub", "id": i, "topic": f, "qos": qos})
        out[f] = "ok" if r.get("op") == "ok" else r.get("code")
        if r.get("op") == "error":
            expect_error(r, r.get("code"), i, "sub %s" % f)
    return out


def pub_codes(ws, topics):
    out = {}
    for i, tp in enumerate(topics):
        r = ws.request({"op": "pub", "id": i, "topic": tp, "text": "x"})
        out[tp] = "ok" if r.get("op") == "ok" else r.get("code")
        if r.get("op") == "error":
            expect_error(r, r.get("code"), i, "pub %s" % tp)
    return out


# --- hello and authentication -----------------------------------------------

@t.test("hello lists the configured methods: password and token")
def _():
    ws = gw().ws()
    hello = ws.recv_json()
    check(isinstance(hello.get("auth"), list), "auth is not a list: %s" % T.show(hello))
    eq(sorted(hello["auth"]), ["password", "token"], "auth methods")
    eq(sorted(hello), ["auth", "epoch", "op", "proto", "server"], "hello keys (no user before auth)")


@t.test("hello lists only token when only JWT is configured")
def _():
    g = t.gateway({"auth": {"jwt": t.jwt_config()}, "roles": ROLES})
    eq(g.ws().recv_json()["auth"], ["token"], "auth methods")


@t.test("auth with token: exact ok, then status")
def _():
    ws = gw().ws()
    ws.recv_json()
    ws.send_json({"op": "auth", "id": 1, "token": t.token("alice", ["operator"])})
    eq(ws.recv_json(), {"op": "ok", "id": 1, "user": "alice", "roles": ["operator"], "allow": ALLOW_OPERATOR}, "auth reply")
    eq(ws.recv_json(), STATUS_UP, "frame after the auth ok")
    eq(ws.request({"op": "sub", "id": 2, "topic": "device/1/status"}), {"op": "ok", "id": 2, "qos": 0},
       "sub allowed to operator")


@t.test("auth with password (yescrypt and SHA-512 hashes): ok with the file's roles, then status")
def _():
    ws = gw().ws()
    ws.recv_json()
    ws.send_json({"op": "auth", "id": 1, "user": "alice", "password": PASSWORDS["alice"], "otp": "000000"})
    eq(ws.recv_json(timeout=10), {"op": "ok", "id": 1, "user": "alice", "roles": ["operator"], "allow": ALLOW_OPERATOR},
       "auth reply (otp ignored for a user without TOTP)")
    eq(ws.recv_json(), STATUS_UP, "frame after the auth ok")
    ws2 = gw().ws()
    ws2.recv_json()
    r = ws2.request({"op": "auth", "id": "b", "user": "bob", "password": PASSWORDS["bob"]}, timeout=10)
    eq(dict(r, roles=sorted(r.get("roles", []))),
       {"op": "ok", "id": "b", "user": "bob", "roles": ["operator", "viewer"], "allow": ALLOW_OPERATOR}, "auth reply for bob")


def failing_password(user, password, otp=None):
    def f():
        ws = gw().ws()
        ws.recv_json()
        req = {"op": "auth", "id": 1, "user": user, "password": password}
        if otp is not None:
            req["otp"] = otp
        auth_fails(ws, req, "password auth %s/%s" % (user, otp))
        gw().assert_serving()
    return f


t.add("auth with a wrong password: auth_failed, close 4401", failing_password("alice", "wrong"))
t.add("auth with an unknown user: auth_failed, close 4401", failing_password("mallory", "x"))
t.add("auth with an empty password: auth_failed, close 4401", failing_password("alice", ""))


@t.test("TOTP: missing or wrong code fails, right code passes once, replay fails")
def _():
    g = gw()
    for otp in (None, "123456" if T.totp(TOTP_SECRET) != "123456" else "654321", ""):
        failing_password("dave", PASSWORDS["dave"], otp)()
    code = T.totp(TOTP_SECRET)
    ws = g.ws()
    ws.recv_json()
    r = ws.request({"op": "auth", "id": 1, "user": "dave", "password": PASSWORDS["dave"], "otp": code},
                   timeout=10)
    eq(r, {"op": "ok", "id": 1, "user": "dave", "roles": ["viewer"], "allow": ALLOW_VIEWER}, "auth with the right code")
    failing_password("dave", PASSWORDS["dave"], code)()
    failing_password("dave", "wrong", T.totp(TOTP_SECRET, time.time() + 30))()


def failing_token(claims=None, raw=None, **kw):
    def f():
        ws = gw().ws()
        ws.recv_json()
        tok = raw or t.token("alice", ["operator"], claims=claims, **kw)
        auth_fails(ws, {"op": "auth", "id": 1, "token": tok}, "token auth")
        gw().assert_serving()
    return f


t.add("token with a bad signature: auth_failed, close 4401", failing_token(secret=b"not-the-secret"))
t.add("token signed with the secret plus its newline: auth_failed",
      failing_token(secret=t.jwt_secret + b"\n"))
t.add("expired token: auth_failed, close 4401", failing_token(ttl=-60))
t.add("token without exp: auth_failed, close 4401", failing_token(claims={"exp": DELETE}))
t.add("token with nbf in the future: auth_failed, close 4401",
      failing_token(claims={"nbf": int(time.time()) + 3600}))
t.add("token with alg none: auth_failed, close 4401", failing_token(alg="none"))
t.add("token with alg HS384 (HS256 configured): auth_failed, close 4401", failing_token(alg="HS384"))
t.add("token claiming HS256, unsigned: auth_failed", failing_token(alg="HS256", sign_alg="none"))
t.add("garbage token: auth_failed, close 4401", failing_token(raw="not.a.jwt"))
t.add("roles with different mounts: auth_failed, close 4401",
      failing_token(claims={"roles": ["tenant", "othermount"]}))


@t.test("token: unknown role names ignored; no roles claim gives default_roles ([]) and nothing allowed")
def _():
    ws = gw().ws()
    ws.recv_json()
    r = ws.request({"op": "auth", "id": 1, "token": t.token("alice", ["viewer", "nosuchrole"])})
    eq(r, {"op": "ok", "id": 1, "user": "alice", "roles": ["viewer"], "allow": ALLOW_VIEWER}, "auth reply")
    ws2 = gw().ws()
    ws2.recv_json()
    r = ws2.request({"op": "auth", "id": 1, "token": t.token("alice", None)})
    eq(r, {"op": "ok", "id": 1, "user": "alice", "roles": [],
           "allow": {"subscribe": [], "publish": []}}, "auth reply without roles claim")
    ws2.sync()
    expect_error(ws2.request({"op": "sub", "id": 2, "topic": "sensor/1"}), "forbidden", 2, "sub with no role")


@t.test("handshake token: cookie mqgate_token and Authorization Bearer give user and roles in hello")
def _():
    g = gw()
    tok = t.token("alice", ["operator"])
    for kw in ({"cookie": "mqgate_token=%s" % tok},
               {"cookie": "theme=dark; mqgate_token=%s; lang=en" % tok},
               {"authorization": "Bearer %s" % tok}):
        ws = g.ws(**kw)
        hello = ws.recv_json()
        eq({k: hello.get(k) for k in ("op", "user", "roles")},
           {"op": "hello", "user": "alice", "roles": ["operator"]}, "hello with %s" % list(kw))
        eq(ws.recv_json(), STATUS_UP, "frame after an authenticated hello")
        eq(ws.request({"op": "sub", "id": 1, "topic": "device/1/status"}), {"op": "ok", "id": 1, "qos": 0},
           "sub allowed (authenticated by the handshake)")


@t.test("handshake token in ?token= is ignored unless allow_query_token")
def _():
    tok = t.token("alice", ["operator"])
    ws = gw().ws(path="/ws?token=%s" % tok)
    hello = ws.recv_json()
    check("user" not in hello, "query token used although allow_query_token is false: %s" % T.show(hello))
    expect_error(ws.request({"op": "sub", "id": 1, "topic": "sensor/1"}), "unauthenticated", 1, "sub")
    g = t.gateway({"auth": auth_cfg(allow_query_token=True), "roles": ROLES})
    hello = g.ws(path="/ws?token=%s" % tok).recv_json()
    eq((hello.get("user"), hello.get("roles")), ("alice", ["operator"]), "hello with allow_query_token")


@t.test("re-auth: same user refreshes (ok), another user is forbidden and the session stays alice's")
def _():
    ws = as_user("alice", ["operator"])
    eq(ws.request({"op": "auth", "id": 2, "token": t.token("alice", ["operator"], ttl=600)}),
       {"op": "ok", "id": 2, "user": "alice", "roles": ["operator"], "allow": ALLOW_OPERATOR}, "refresh reply")
    expect_error(ws.request({"op": "auth", "id": 3, "token": t.token("bob", ["everything"])}),
                 "forbidden", 3, "auth as another user")
    eq(ws.sync(), [], "frames after the refused re-auth")
    expect_error(ws.request({"op": "sub", "id": 4, "topic": "#"}), "forbidden", 4, "sub # (still operator)")
    eq(ws.request({"op": "sub", "id": 5, "topic": "device/1/status"}), {"op": "ok", "id": 5, "qos": 0},
       "sub as operator")


@t.test("token expiry: token_expired then 4401; a refreshed session lives on", timeout=20)
def _():
    g = gw()
    a = as_user("alice", ["operator"], g, ttl=2)
    b = as_user("alice", ["operator"], g, ttl=2)
    t0 = time.monotonic()
    b.request({"op": "auth", "id": "r", "token": t.token("alice", ["operator"], ttl=60)})
    frames = a.expect_close(4401, timeout=6, what="session with an expired token")
    eq(len(frames), 1, "frames before the close: %s" % T.show(frames))
    expect_error(frames[0], "token_expired", None, "frame before the close")
    check(time.monotonic() - t0 > 0.5, "closed too early")
    while time.monotonic() - t0 < T.scaled(3.5):
        b.poll(0.1)
    check(not b.closed, "refreshed session closed (%s)" % b.close_code)
    b.sync()


@t.test("anonymous_role: acts as that role, not timed out, auth upgrades it")
def _():
    g = t.gateway({"auth": auth_cfg(anonymous_role="viewer", timeout_s=1), "roles": ROLES})
    ws = g.session()
    eq(ws.opening, [STATUS_UP], "frames after hello")
    eq(sub_codes(ws, ["sensor/1", "device/1/status"]), {"sensor/1": "ok", "device/1/status": "forbidden"},
       "anonymous viewer sub")
    eq(pub_codes(ws, ["device/1/cmd"]), {"device/1/cmd": "forbidden"}, "anonymous viewer pub")
    eq(ws.collect(1.6), [], "frames while idle past auth.timeout_s")
    check(not ws.closed, "anonymous session closed (%s)" % ws.close_code)
    r = ws.request({"op": "auth", "id": "up", "token": t.token("alice", ["operator"])})
    eq(r, {"op": "ok", "id": "up", "user": "alice", "roles": ["operator"], "allow": ALLOW_OPERATOR}, "upgrade reply")
    eq(sub_codes(ws, ["device/1/status"]), {"device/1/status": "ok"}, "sub after the upgrade")


# --- coverage and matching --------------------------------------------------

@t.test("sub coverage: sensor/# covers sensor/+/temp, not #, +/temp, sensorx/1")
def _():
    ws = as_user("vic", ["viewer"])
    ok = ["sensor/+/temp", "sensor/#", "sensor/1/temp", "sensor/+", "sensor/+/+/#", "sensor"]
    no = ["#", "+/temp", "sensorx/1", "+", "+/#", "sensor2/#", "sen/#", "$SYS/#", "device/1/status",
          "+/+/temp"]
    eq(sub_codes(ws, ok + no), dict([(f, "ok") for f in ok] + [(f, "forbidden") for f in no]),
       "sub reply codes")


@t.test("pub matching: device/+/cmd allows device/7/cmd only; forbidden with exact frame")
def _():
    w = t.mosquitto.client()
    w.subscribe("device/#", 2)
    w.subscribe("sensor/#", 2)
    ws = as_user("olga", ["operator"])
    no = ["device/7/status", "device/7/cmd/x", "device/cmd", "sensor/1", "device/+/cmd", "x"]
    eq(pub_codes(ws, no), dict((tp, "forbidden" if "+" not in tp else "bad_topic") for tp in no),
       "pub reply codes")
    ws.send_json({"op": "pub", "id": 7, "topic": "device/1/status", "text": "x"})
    r = ws.recv_json()
    expect_error(r, "forbidden", 7, "pub to device/1/status")
    check(r["message"], "empty message")
    eq(ws.request({"op": "pub", "id": 8, "topic": "device/7/cmd", "payload": {"on": True}, "qos": 1}),
       {"op": "ok", "id": 8}, "pub to device/7/cmd")
    got = w.get_until(lambda m: m.topic == "device/7/cmd")
    eq([(m.topic, m.payload) for m in got], [("device/7/cmd", b'{"on":true}')], "messages at the broker")
    viewer = as_user("vic", ["viewer"])
    eq(pub_codes(viewer, ["sensor/1"]), {"sensor/1": "forbidden"}, "viewer (no publish patterns)")


@t.test("$ topics: # does not give $SYS/# or $foo; first-level wildcards do not match $ topics")
def _():
    ws = as_user("eve", ["everything"])
    eq(sub_codes(ws, ["$SYS/#", "$SYS/broker/uptime", "$foo/bar", "$share/grp/x"]),
       {"$SYS/#": "forbidden", "$SYS/broker/uptime": "forbidden", "$foo/bar": "forbidden",
        "$share/grp/x": "forbidden"}, "sub reply codes for role #")
    a = as_user("dan", ["dollar"])
    b = as_user("dan", ["dollar"])
    eq(sub_codes(a, ["#", "+/bar"]), {"#": "ok", "+/bar": "ok"}, "a's subs")
    eq(sub_codes(b, ["$foo/#"]), {"$foo/#": "ok"}, "b's sub")
    t.mosquitto.client().publish("$foo/bar", b"dollar")
    eq(b.recv_json(), {"op": "msg", "topic": "$foo/bar", "text": "dollar", "qos": 0, "retain": False},
       "msg at b")
    eq(a.sync(), [], "frames at a (holding # and +/bar)")
    t.mosquitto.client().publish("foo/bar", b"plain")
    eq(a.recv_json(), {"op": "msg", "topic": "foo/bar", "text": "plain", "qos": 0, "retain": False},
       "a non-$ message at a")


@t.test("$share: refused unless a pattern allows it; allowed one delivers")
def _():
    ws = as_user("sam", ["shared"])
    eq(sub_codes(ws, ["$share/other/x", "x", "$share/grp/x"]),
       {"$share/other/x": "forbidden", "x": "forbidden", "$share/grp/x": "ok"}, "sub reply codes")
    t.mosquitto.client().publish("x", b"shared")
    r = ws.recv_json()
    eq((r.get("op"), r.get("text")), ("msg", "shared"), "msg through the shared subscription: %s" % T.show(r))


@t.test("max_qos: sub granted min(requested, max_qos); pub published at most max_qos")
def _():
    v = as_user("vic", ["viewer"])
    eq(v.request({"op": "sub", "id": 1, "topic": "sensor/1", "qos": 2}), {"op": "ok", "id": 1, "qos": 1},
       "viewer (max_qos 1) sub qos 2")
    q = as_user("quinn", ["q0"])
    eq(q.request({"op": "sub", "id": 1, "topic": "sensor/2", "qos": 2}), {"op": "ok", "id": 1, "qos": 0},
       "q0 sub qos 2")
    w = t.mosquitto.client()
    w.subscribe("sensor/q0", 2)
    eq(q.request({"op": "pub", "id": 2, "topic": "sensor/q0", "text": "x", "qos": 2}), {"op": "ok", "id": 2},
       "q0 pub qos 2")
    eq(w.get().qos, 0, "qos at the broker")
    both = as_user("ola", ["viewer", "operator"])
    eq(both.request({"op": "sub", "id": 1, "topic": "sensor/3", "qos": 2}), {"op": "ok", "id": 1, "qos": 2},
       "viewer+operator (max_qos 1 and 2) sub qos 2")


@t.test("%u: users/%u/# gives alice users/alice/..., not users/bob/...")
def _():
    ws = as_user("alice", ["users"])
    eq(sub_codes(ws, ["users/alice/x", "users/alice/#", "users/alice", "users/bob/x", "users/+/x",
                      "users/#", "users/alicex/y", "users/%u/x"]),
       {"users/alice/x": "ok", "users/alice/#": "ok", "users/alice": "ok", "users/bob/x": "forbidden",
        "users/+/x": "forbidden", "users/#": "forbidden", "users/alicex/y": "forbidden",
        "users/%u/x": "forbidden"}, "sub reply codes")
    eq(pub_codes(ws, ["users/alice/x", "users/bob/x"]),
       {"users/alice/x": "ok", "users/bob/x": "forbidden"}, "pub reply codes")


def odd_user(name, probes):
    def f():
        g = gw()
        ws = g.ws()
        ws.recv_json()
        r = ws.request({"op": "auth", "id": 1, "token": t.token(name, ["users"])})
        if r.get("op") == "error":
            expect_error(r, "auth_failed", 1, "auth as %r" % name)
            return
        codes = sub_codes(ws, probes)
        codes.update(("pub " + k, v) for k, v in
                     pub_codes(ws, [p for p in probes if "+" not in p and "#" not in p]).items())
        eq({k: v for k, v in codes.items() if v not in ("forbidden", "bad_topic")}, {},
           "requests allowed to user %r" % name)
    return f


t.add("%u: a user name with / never matches", odd_user("alice/x", ["users/alice/x/1", "users/alice/x/#",
                                                                   "users/alice/x", "users/alice"]))
t.add("%u: a user name with # or + never matches", odd_user("#", ["users/bob/x", "users/#"]))
t.add("%u: a user name + never matches", odd_user("+", ["users/bob/x", "users/+/x"]))
t.add("%u: a user name with U+0000 never matches", odd_user("al\u0000ice", ["users/al/x", "users/al"]))


@t.test("mount: tenants/%u/ is added to and stripped from topics; tenants are separated")
def _():
    alice = as_user("alice", ["tenant"])
    bob = as_user("bob", ["tenant"])
    eq(sub_codes(alice, ["#"]), {"#": "ok"}, "alice sub #")
    eq(sub_codes(bob, ["#"]), {"#": "ok"}, "bob sub #")
    p = t.mosquitto.client()
    p.publish("tenants/alice/x", b"for alice")
    p.publish("tenants/bob/y", b"for bob")
    p.publish("elsewhere/z", b"for nobody")
    p.publish("tenants/alice/end", b"end")
    p.publish("tenants/bob/end", b"end")
    for ws, topic, text in ((alice, "x", "for alice"), (bob, "y", "for bob")):
        frames = ws.collect(5, until=lambda fs: any(f.get("topic") == "end" for f in fs))
        eq([(f.get("topic"), f.get("text"), f.get("retain")) for f in frames],
           [(topic, text, False), ("end", "end", False)], "frames at the tenant")
    w = t.mosquitto.client()
    w.subscribe("tenants/#", 2)
    eq(pub_codes(alice, ["cmd/1", "x", "tenants/alice/cmd/1"]),
       {"cmd/1": "ok", "x": "forbidden", "tenants/alice/cmd/1": "forbidden"}, "alice pub codes")
    got = w.get()
    eq((got.topic, got.payload), ("tenants/alice/cmd/1", b"x"), "topic at the broker")
    alice.sync()
    for f in alice.collect(0.3):
        check(f.get("topic") == "cmd/1", "unexpected frame at alice: %s" % T.show(f))


@t.test("mount: retained replay is relative; the topic limit counts the mount")
def _():
    p = t.mosquitto.client()
    p.publish("tenants/alice/r/1", b'{"r":1}', qos=1, retain=True)
    alice = as_user("alice", ["tenant"])
    eq(alice.request({"op": "sub", "id": 1, "topic": "r/#", "qos": 1}), {"op": "ok", "id": 1, "qos": 1}, "sub")
    eq(alice.recv_json(), {"op": "msg", "topic": "r/1", "payload": {"r": 1}, "qos": 1, "retain": True},
       "retained replay")
    p.publish("tenants/alice/r/1", b"", qos=1, retain=True)
    mount = len("tenants/alice/")
    ok_topic = "cmd/" + "x" * (65535 - mount - 4)
    eq(alice.request({"op": "pub", "id": 2, "topic": ok_topic, "text": "x"}), {"op": "ok", "id": 2},
       "pub to a topic that is 65535 bytes with the mount")
    expect_error(alice.request({"op": "pub", "id": 3, "topic": ok_topic + "x", "text": "x"}),
                 "bad_topic", 3, "pub to a topic that is 65536 bytes with the mount")


@t.test("mount: a user name with / fails or gets nothing")
def _():
    ws = gw().ws()
    ws.recv_json()
    r = ws.request({"op": "auth", "id": 1, "token": t.token("eve/../alice", ["tenant"])})
    if r.get("op") == "error":
        expect_error(r, "auth_failed", 1, "auth")
        return
    eq(sub_codes(ws, ["#", "x"]), {"#": "forbidden", "x": "forbidden"}, "sub codes")


@t.test("the log holds no password and no token")
def _():
    log = gw().log_text()
    for pw in PASSWORDS.values():
        check(pw not in log, "password %r in the log" % pw)
    sigs = [tok.rsplit(".", 1)[1] for tok in t.minted if not tok.endswith(".")]
    check(sigs, "no tokens were used")
    leaked = [s for s in sigs if s in log]
    check(not leaked, "%d token signature(s) in the log, e.g. %s" % (len(leaked), leaked[:1]))


# --- reload -----------------------------------------------------------------

@t.test("SIGHUP: a session whose role vanished is closed 4401; a bad file changes nothing", timeout=30)
def _():
    roles = {"viewer": ROLES["viewer"], "operator": ROLES["operator"]}
    g = t.gateway({"auth": {"jwt": t.jwt_config()}, "roles": roles}, fresh=True, name="reload")
    v = as_user("vic", ["viewer"], g)
    o = as_user("olga", ["operator"], g)
    good = dict(g.cfg, roles={"operator": ROLES["operator"]})
    g.write_config(good)
    g.send_signal(signal.SIGHUP)
    v.expect_close(4401, what="viewer after its role was removed")
    o.sync()
    eq(sub_codes(o, ["device/1/status"]), {"device/1/status": "ok"}, "operator after the reload")
    with open(g.cfgpath, "w") as f:
        f.write('{"roles": {"operator": ')
    g.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    check(g.running(), "gateway exited on a bad reload")
    o.sync()
    eq(sub_codes(as_user("olga", ["operator"], g), ["device/2/status"]), {"device/2/status": "ok"},
       "new operator session after the refused reload")
    g.write_config(good)


if __name__ == "__main__":
    sys.exit(t.run())
