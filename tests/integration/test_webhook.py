#!/usr/bin/python3
"""auth.http, the authentication webhook, against a small HTTP(S) server
this test starts: what the gateway POSTs (config.md's JSON, the secret
header), success with roles and expiry (token_expired at expires_at), each
refusal and malformed answer failing closed, the timeout, the in-flight
bound, the cache of positive answers, the users file and JWTs taking
precedence, the handshake waiting for the answer, and no secret in any
log."""

import json
import os
import re
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, expect_error  # noqa: E402
import idp                                              # noqa: E402

t = T.Suite("webhook")
ROLES = {"viewer": {"subscribe": ["sensor/#"]}, "operator": {"publish": ["device/+/cmd"]}}
SECRET = "whsec-" + os.urandom(12).hex()
PW = "pw-" + os.urandom(8).hex()             # the password the webhook takes
BOB_PW = "bob-" + os.urandom(8).hex()        # bob is in the users file
OPAQUE = "opaque-" + os.urandom(12).hex()    # a session token the webhook knows
OTP = "246810"
hold = threading.Event()
SECRETS = [SECRET, PW, BOB_PW, OPAQUE]


def answer(req):
    """The webhook: decides by user (password) or token."""
    js = req["json"] or {}
    if req["path"] == "/moved":
        return 200, {"user": "alice", "roles": ["operator"]}, 0
    if req["path"] != "/auth" or req["method"] != "POST":
        return 404, {}, 0
    now = int(time.time())
    if js.get("method") == "token":
        tok = js.get("token", "")
        if tok == OPAQUE or tok.startswith("x.y."):
            return 200, {"user": "tok", "roles": ["viewer"], "expires_at": now + 300}, 0
        return 401, {"error": "unknown token"}, 0
    user = js.get("user")
    if js.get("password") != PW and user not in ("hold",):
        return 403, {"error": "wrong password"}, 0
    table = {
        "alice": (200, {"user": "alice", "roles": ["viewer", "operator", "nosuch"]}, 0),
        "carol": (200, {"user": "carol", "roles": ["viewer"]}, 0),
        "exp": (200, {"user": "exp", "roles": ["viewer"], "expires_at": now + 2}, 0),
        "e500": (500, {"error": "oops"}, 0),
        "e302": (302, "", 0),
        "garbage": (200, "not json at all", 0),
        "array": (200, [1, 2], 0),
        "noroles": (200, {"user": "x"}, 0),
        "rolenum": (200, {"user": "x", "roles": ["viewer", 5]}, 0),
        "nouser": (200, {"roles": ["viewer"]}, 0),
        "past": (200, {"user": "x", "roles": [], "expires_at": now - 10}, 0),
        "expstr": (200, {"user": "x", "roles": [], "expires_at": "soon"}, 0),
        "huge": (200, {"user": "x", "roles": [], "pad": "p" * 70000}, 0),
        "slow": (200, {"user": "slow", "roles": ["viewer"]}, 3),
        "hangup": (None, None, 0),
    }
    if user == "hold":
        hold.wait(10)
        return 200, {"user": "hold", "roles": ["viewer"]}, 0
    return table.get(user, (403, {}, 0))


server = None


def srv():
    global server
    if server is None:
        server = idp.Server(answer)
    return server


def calls(pred=None):
    return srv().count(lambda r: r["path"] == "/auth" and (pred is None or pred(r)))


def gateway(fresh=False, **http):
    h = {"url": srv().url("/auth"), "timeout_s": 1,
         "secret_file": t.write_file("webhook.secret", SECRET + "\n")}
    h.update(http)
    users = t.write_file("users", "bob:%s:viewer\n" % T.crypt_hash(BOB_PW))
    return t.gateway({"auth": {"http": h, "users_file": users}, "roles": ROLES}, fresh=fresh)


def login(g, user, password=PW, otp=None, rid=1, origin=None, timeout=10):
    ws = g.session(origin=origin)
    req = {"op": "auth", "id": rid, "user": user, "password": password}
    if otp:
        req["otp"] = otp
    return ws, ws.request(req, timeout=timeout)


def refused(g, user, password=PW, what=""):
    ws, r = login(g, user, password)
    expect_error(r, "auth_failed", 1, "auth of %s %s" % (user, what))
    ws.expect_close(4401)
    return r


@t.test("success: roles and user from the answer, the request exactly as config.md says, the secret as a bearer")
def _():
    g = gateway()
    eq(g.session().hello.get("auth"), ["password", "token"], "hello's methods")
    origin = "http://127.0.0.1:%d" % g.ports[0]
    n = calls()
    ws, r = login(g, "alice", origin=origin, otp=OTP)
    eq(r.get("op"), "ok", "auth reply %s" % r)
    eq((r.get("user"), r.get("roles")), ("alice", ["viewer", "operator"]),
       "user and the roles the config knows")
    eq(ws.request({"op": "sub", "id": 2, "topic": "sensor/1"}).get("op"), "ok", "sub with the role")
    eq(calls(), n + 1, "webhook calls")
    req = srv().requests[-1]
    eq(req["json"], {"method": "password", "user": "alice", "password": PW, "otp": OTP,
                     "address": "127.0.0.1", "origin": origin}, "request body")
    eq(req["headers"].get("content-type"), "application/json", "Content-Type")
    eq(req["headers"].get("authorization"), "Bearer " + SECRET, "Authorization")
    # otp and origin left out when absent
    ws, r = login(g, "carol")
    eq(r.get("op"), "ok", "carol")
    eq(srv().requests[-1]["json"], {"method": "password", "user": "carol", "password": PW,
                                    "address": "127.0.0.1"}, "request without otp and origin")
    check(g.metric("mqgate_auth_http_total", result="success") >= 2, "successes counted")


@t.test("expires_at closes the session with token_expired and 4401, as a JWT's exp")
def _():
    g = gateway()
    ws, r = login(g, "exp")
    eq(r.get("op"), "ok", "auth reply")
    frames = ws.expect_close(4401, timeout=6)
    check(any(f.get("code") == "token_expired" for f in frames), "token_expired before the close: %s" % frames)


@t.test("each refusal and malformed answer fails closed: 403, 500, a redirect, not JSON, no roles, bad types, past expiry, too long, hang-up")
def _():
    g = gateway(fresh=True)     # its own budget of failure log lines (10 in 10 s)
    before = dict((k, g.metric("mqgate_auth_http_total", result=k) or 0.0)
                  for k in ("refused", "malformed", "error"))
    refused(g, "alice", "wrong", "(403)")
    for user in ("e500", "e302"):
        refused(g, user, what="(status)")
    for user in ("garbage", "array", "noroles", "rolenum", "nouser", "past", "expstr"):
        r = refused(g, user, what="(malformed)")
        eq(r.get("message"), "the authentication service's answer is malformed", "reason")
    for user in ("huge", "hangup"):
        r = refused(g, user, what="(transport)")
        eq(r.get("message"), "the authentication service did not answer",
           "reason (nothing of the webhook's address or errors)")
    text = g.log_text()
    for detail in ("answer not a JSON object", "answer has no roles", "answer roles not all strings",
                   "answer has no user", "answer expires_at already past",
                   "answer expires_at not an integer", "the webhook answered HTTP 500",
                   "the webhook answered HTTP 302", "the webhook answered HTTP 403"):
        check("password refused: %s" % detail in text, "the log says %r" % detail)
    eq(g.metric("mqgate_auth_http_total", result="refused"), before["refused"] + 3, "refusals counted")
    eq(g.metric("mqgate_auth_http_total", result="malformed"), before["malformed"] + 7,
       "malformed answers counted")
    check(g.metric("mqgate_auth_http_total", result="error") >= before["error"] + 2,
          "transport failures counted")
    eq(srv().count(lambda r: r["path"] == "/moved"), 0, "the redirect was not followed")
    check(g.running(), "the gateway runs on")


@t.test("a webhook slower than timeout_s fails closed within it")
def _():
    g = gateway(fresh=True)
    errors = g.metric("mqgate_auth_http_total", result="error")
    t0 = time.monotonic()
    r = refused(g, "slow")
    took = time.monotonic() - t0
    check(took < T.scaled(2.5), "refused after %.1f s (timeout_s 1)" % took)
    eq(r.get("message"), "the authentication service did not answer", "reason")
    check(re.search(r"password refused: .*[Tt]imed? ?out", g.log_text()), "the log says timeout")
    eq(g.metric("mqgate_auth_http_total", result="error"), errors + 1, "errors counted")


@t.test("max_in_flight: calls beyond it fail at once, the others are answered when the webhook answers")
def _():
    g = gateway(fresh=True, max_in_flight=3, timeout_s=10)
    hold.clear()
    try:
        waiting = [g.session() for _ in range(3)]
        for ws in waiting:
            ws.send_json({"op": "auth", "id": 1, "user": "hold", "password": "x"})
        T.wait_for(lambda: calls(lambda r: (r["json"] or {}).get("user") == "hold") >= 3,
                   timeout=10, what="three calls at the webhook")
        eq(g.metric("mqgate_auth_http_in_flight"), 3.0, "in flight")
        t0 = time.monotonic()
        r = refused(g, "alice", what="(over the bound)")
        check(time.monotonic() - t0 < T.scaled(1), "refused at once")
        eq(r.get("message"), "too many authentications under way: try again", "reason")
        check("more than auth.http.max_in_flight calls waiting" in g.log_text(), "the log says why")
        eq(g.metric("mqgate_auth_http_total", result="busy"), 1.0, "busy counted")
    finally:
        hold.set()
    for ws in waiting:
        eq(ws.await_reply(1, timeout=10).get("op"), "ok", "a held call's answer")
    eq(g.metric("mqgate_auth_http_in_flight"), 0.0, "in flight after")
    g.stop()


@t.test("cache_s: a positive answer is reused for the same attempt, never with an OTP, not past cache_s")
def _():
    g = gateway(fresh=True, cache_s=2)
    n = calls()
    for _ in range(3):
        ws, r = login(g, "carol")
        eq(r.get("op"), "ok", "carol")
    eq(calls(), n + 1, "calls for three logins")
    eq(g.metric("mqgate_auth_http_total", result="cached"), 2.0, "answers from the cache")
    refused(g, "carol", "wrong", "(a wrong password is not the cached attempt)")
    eq(calls(), n + 2, "calls after a wrong password")
    for _ in range(2):
        login(g, "alice", otp=OTP)
    eq(calls(), n + 4, "logins with an OTP each ask")
    time.sleep(2.2)
    login(g, "carol")
    eq(calls(), n + 5, "after cache_s the webhook is asked again")
    g.stop()


@t.test("the users file first, JWTs to libjwt; unknown users, opaque tokens and the handshake's token to the webhook")
def _():
    g = gateway()
    n = calls()
    ws, r = login(g, "bob", BOB_PW)
    eq(r.get("op"), "ok", "bob from the users file")
    refused(g, "bob", "wrong", "(users file)")
    eq(calls(), n, "no webhook call for a user of the users file")
    ws = g.session()
    r = ws.request({"op": "auth", "id": 1, "token": OPAQUE}, timeout=10)
    eq((r.get("op"), r.get("user")), ("ok", "tok"), "opaque token")
    eq(srv().requests[-1]["json"], {"method": "token", "token": OPAQUE, "address": "127.0.0.1"},
       "token request")
    ws = g.session()
    r = ws.request({"op": "auth", "id": 1, "token": "x.y.z"}, timeout=10)
    eq(r.get("user"), "tok", "a JWT-form token goes to the webhook without auth.jwt")
    # the handshake waits for the webhook, then hello carries the user
    ws = g.ws(authorization="Bearer " + OPAQUE)
    eq(ws.recv_json(timeout=10).get("user"), "tok", "hello after the handshake's webhook call")
    ws = g.ws(authorization="Bearer opaque-unknown")
    hello = ws.recv_json(timeout=10)
    check("user" not in hello, "an unknown handshake token leaves the session unauthenticated")
    # with auth.jwt, a JWT is verified here and never sent out
    g2 = t.gateway({"auth": {"http": {"url": srv().url("/auth")}, "jwt": t.jwt_config()},
                    "roles": ROLES})
    n = calls()
    eq(g2.session(token=t.token("jwtuser", ["viewer"])).auth_reply.get("user"), "jwtuser", "JWT")
    ws = g2.session()
    expect_error(ws.request({"op": "auth", "id": 1, "token": t.token("m", secret=b"wrong")}),
                 "auth_failed", 1, "a JWT with a bad signature")
    eq(calls(), n, "no webhook call for JWTs")
    ws = g2.session()
    eq(ws.request({"op": "auth", "id": 1, "token": OPAQUE}, timeout=10).get("user"), "tok",
       "an opaque token still goes to the webhook")


@t.test("the HTTP API: an opaque Bearer token waits for the webhook (stream and publish); "
        "a refused one is 401")
def _():
    h = {"url": srv().url("/auth"), "timeout_s": 1,
         "secret_file": t.write_file("webhook.secret", SECRET + "\n")}
    g = t.gateway({"listeners": [{"http_api": True}], "auth": {"http": h},
                   "roles": dict(ROLES, pubr={"publish": ["#"]})}, name="wh-http")
    s = T.EventStream(g.ports[0], "topic=sensor%2F%23",
                      headers={"Authorization": "Bearer " + OPAQUE})
    eq(s.status, 200, "stream with an opaque token")
    hello = s.event(10)[2]
    eq((hello.get("op"), hello.get("user")), ("hello", "tok"), "the webhook's identity")
    s.close()
    s = T.EventStream(g.ports[0], "topic=sensor%2F%23",
                      headers={"Authorization": "Bearer opaque-unknown"})
    eq((s.status, s.body().get("code")), (401, "auth_failed"), "a token the webhook refuses")
    s.close()
    pub = b'{"topic":"sensor/1","text":"x"}'
    st, _, body = T.http_request(g.ports[0], "/api/publish", method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Content-Length": str(len(pub)),
                                          "Authorization": "Bearer " + OPAQUE},
                                 body=pub, timeout=10)
    eq((st, json.loads(body).get("code")), (403, "forbidden"),
       "a publish as the webhook's viewer")


@t.test("https with ca_file; --check-config checks the CA file and the secret file")
def _():
    ca = T.CertAuthority(os.path.join(t.root, "ca"))
    s2 = idp.Server(answer, cert=ca.issue("hook"))
    try:
        g = t.gateway({"auth": {"http": {"url": s2.url("/auth"), "ca_file": ca.cert}},
                       "roles": ROLES}, fresh=True)
        ws = g.session()
        eq(ws.request({"op": "auth", "id": 1, "user": "carol", "password": PW},
                      timeout=10).get("op"), "ok", "over https")
        g.stop()
        # the system's CA bundle loads at this first call: under valgrind
        # that alone can take longer than the default auth and webhook
        # timeouts (10 and 5 s), which would refuse with 4401 before the
        # TLS failure is known
        g = t.gateway({"auth": {"timeout_s": int(T.scaled(10)),
                                "http": {"url": s2.url("/auth"),
                                         "timeout_s": int(T.scaled(5))}},
                       "roles": ROLES}, fresh=True)
        refused(g, "carol", what="(the system's CAs do not know the test's CA)")
        check(re.search(r"password refused: .*(certificate|SSL)", g.log_text()),
              "the log names the TLS failure")
        g.stop()
    finally:
        s2.close()
    bad = t.write_file("notca.pem", "not a certificate\n")
    cfg = t.write_file("cfg.json", json.dumps({"auth": {"http": {
        "url": "https://127.0.0.1:1/auth", "ca_file": bad,
        "secret_file": os.path.join(t.root, "missing.secret")}}}), 0o644)
    rc, out = T.run_daemon(t, ["--check-config", "-c", cfg])
    eq(rc, 1, "--check-config exit status: %s" % out)
    check("auth.http.ca_file: %s: no CA certificate loads" % bad in out, out)
    check("auth.http.secret_file" in out and "No such file" in out, out)


@t.test("no secret, password or token in any log, at debug level")
def _():
    texts = [g.log_text() for g in t.all_gateways]
    check(texts, "logs to read")
    for text in texts:
        for s in SECRETS:
            check(s not in text, "a secret (%s...) is in a log" % s[:6])
    check(any("refused" in x for x in texts), "the failures are logged")


if __name__ == "__main__":
    try:
        sys.exit(t.run())
    finally:
        if server:
            server.close()
