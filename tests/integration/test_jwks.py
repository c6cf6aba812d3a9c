#!/usr/bin/python3
"""auth.jwt with a JWK Set: keys fetched over HTTPS from a small identity
provider this test starts (certificates made by the test's CA), chosen by
kid; rotation without restart, unknown kids refused after one fetch, the
refresh floor under a flood, kty/alg/curve mismatches and algorithm
confusion refused, the last good keys kept while the provider is down;
jwks_file with --check-config and SIGHUP; algorithms libjwt 1.10 lacks
refused by the config."""

import json
import os
import re
import signal
import sys
import threading
import time
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, expect_error  # noqa: E402

try:
    import idp                                          # noqa: E402
except ImportError as e:                                # no python3-cryptography
    print("1..0 # SKIP %s" % e)
    sys.exit(77)

t = T.Suite("jwks")
FLOOR = 3
ROLES = {"viewer": {"subscribe": ["sensor/#"]}}
ALGS = ["RS256", "RS384", "ES256", "ES384"]

# The keys: k1 says alg RS256, k2 says none (RS256/384 both fit), e1 P-256,
# e2 P-384; an encryption key that must be left out; k3 comes by rotation.
K1 = idp.Key("k1", "RSA", alg="RS256", use="sig")
K2 = idp.Key("k2", "RSA")
E1 = idp.Key("e1", "P-256")
E2 = idp.Key("e2", "P-384", alg="ES384")
ENC = idp.Key("enc1", "RSA", use="enc")
K3 = idp.Key("k3", "RSA", alg="RS256")
STRANGER = idp.Key("stranger", "RSA")

state = {"doc": {"keys": [k.jwk() for k in (K1, K2, E1, E2, ENC)]},
         "status": 200, "raw": None}
lock = threading.Lock()


def serve_jwks(req):
    with lock:
        if req["path"] != "/certs":
            return 404, {"error": "no such path"}, 0
        if state["status"] is None:
            return None, None, 0
        return state["status"], state["raw"] if state["raw"] is not None else state["doc"], 0


server = None
ca = None


def setup():
    global server, ca
    if server is None:
        ca = T.CertAuthority(os.path.join(t.root, "ca"))
        server = idp.Server(serve_jwks, cert=ca.issue("idp"))
    return server


def fetches():
    return server.count(lambda r: r["path"] == "/certs")


def jwt_cfg(**over):
    c = {"algs": ALGS, "jwks_url": setup().url("/certs"), "jwks_ca_file": ca.cert,
         "jwks_refresh_s": 3600, "jwks_min_refresh_s": FLOOR}
    c.update(over)
    return c


def gateway(fresh=False, **over):
    g = t.gateway({"auth": {"jwt": jwt_cfg(**over)}, "roles": ROLES}, fresh=fresh)
    T.wait_for(lambda: g.metric("mqgate_jwks_keys") or
               g.metric("mqgate_jwks_fetches_total", result="failure"),
               timeout=10, what="the first fetch of the key set")
    return g


def auth(g, token, rid=1, timeout=10):
    ws = g.session()
    return ws, ws.request({"op": "auth", "id": rid, "token": token}, timeout=timeout)


def accepted(g, token, user="alice"):
    ws, r = auth(g, token)
    eq(r.get("op"), "ok", "auth reply: %s" % r)
    eq(r.get("user"), user, "user")
    ws.close(wait=0)


def refused(g, token, why=None):
    ws, r = auth(g, token)
    expect_error(r, "auth_failed", 1, "auth reply")
    if why:
        check(re.search(why, r.get("message", "")), "message %r lacks %r" % (r.get("message"), why))
    ws.expect_close(4401)
    return r


def past_floor(g):
    """Waits until a fetch may happen again (the floor since the last)."""
    last = server.requests[-1]["t"] if server.requests else 0
    left = last + FLOOR + 0.3 - time.monotonic()
    if left > 0:
        time.sleep(left)


@t.test("each key of the set verifies the tokens it signed (RS256, RS384, ES256, ES384), in auth and in the handshake")
def _():
    g = gateway()
    eq(fetches(), 1, "fetches at start")
    eq(g.metric("mqgate_jwks_keys"), 4.0, "keys in use (the encryption key is left out)")
    check(re.search(r"enc1.*left out: use is not sig", g.log_text()), "the left-out key is logged")
    accepted(g, idp.token(K1, "alice", "RS256", roles=["viewer"]))
    accepted(g, idp.token(K2, "alice", "RS384"))
    accepted(g, idp.token(K2, "alice", "RS256"))
    accepted(g, idp.token(E1, "alice", "ES256"))
    accepted(g, idp.token(E2, "alice", "ES384"))
    ws = g.ws(authorization="Bearer " + idp.token(E1, "bob", roles=["viewer"]))
    hello = ws.recv_json()
    eq(hello.get("user"), "bob", "hello of a session the handshake authenticated")
    eq(fetches(), 1, "no fetch for known kids")


@t.test("mismatched kty, curve or alg, algorithm confusion, none, unlisted algs and a missing kid are refused without a fetch")
def _():
    g = gateway()
    n = fetches()
    # an RSA signature under an EC key's kid
    refused(g, idp.token(K1, "alice", "RS256", kid="e1"), "kty")
    # a P-384 signature under the P-256 key's kid
    refused(g, idp.token(E2, "alice", "ES384", kid="e1"), "crv")
    # k1 says RS256: an RS384 token under its kid
    refused(g, idp.token(K1, "alice", "RS384"), "alg is not the token's")
    # the classic confusion: HMAC with the public key's PEM as the secret
    for kid in ("k1", "e1", None):
        refused(g, T.jwt_encode({"sub": "mallory", "exp": int(time.time()) + 60},
                                K1.pem(), "HS256", header={"kid": kid} if kid else None),
                "algorithm not accepted")
    refused(g, idp.token(K1, "mallory", "none"), "algorithm not accepted")
    # RS512 and PS256 signed properly, but not in auth.jwt.algs
    refused(g, idp.token(K2, "alice", "RS512"), "algorithm not accepted")
    refused(g, idp.token(K2, "alice", "PS256"), "algorithm not accepted")
    # a set of several keys: no kid, no guess
    refused(g, idp.token(K1, "alice", kid=None), "no kid")
    # the right kid, the wrong key's signature
    refused(g, idp.token(K2, "alice", "RS256", kid="k1"), "signature")
    eq(fetches(), n, "fetches (none of these names an unknown kid)")


@t.test("an unknown kid is refused after exactly one fetch of the set")
def _():
    g = gateway()
    past_floor(g)
    n = fetches()
    refused(g, idp.token(STRANGER, "alice"), "also after fetching it again")
    eq(fetches(), n + 1, "fetches")
    # within the floor: refused at once, no fetch
    refused(g, idp.token(STRANGER, "alice"), "at most every %d s" % FLOOR)
    eq(fetches(), n + 1, "fetches within the floor")


@t.test("rotation: a new key is fetched when a token names it, the old key stops verifying, no restart")
def _():
    g = gateway()
    old = g.session(token=idp.token(K1, "carol", roles=["viewer"]))
    past_floor(g)
    with lock:
        state["doc"] = {"keys": [K3.jwk(), E1.jwk()]}
    n = fetches()
    accepted(g, idp.token(K3, "alice"))
    eq(fetches(), n + 1, "one fetch brought k3")
    eq(g.metric("mqgate_jwks_keys"), 2.0, "keys after the rotation")
    refused(g, idp.token(K1, "alice"), "kid not in the key set")
    # the handshake waits for the fetch too
    past_floor(g)
    with lock:
        state["doc"] = {"keys": [K3.jwk(), E1.jwk(), K2.jwk()]}
    ws = g.ws(authorization="Bearer " + idp.token(K2, "dave"))
    eq(ws.recv_json(timeout=10).get("user"), "dave", "hello after the handshake's fetch")
    # a session authenticated before keeps running
    eq(old.request({"op": "ping", "id": 7}).get("op"), "pong", "older session")
    check(g.running(), "the gateway runs on")


@t.test("a flood of unknown kids makes one fetch, the floor holds, the gateway still serves")
def _():
    g = gateway()
    past_floor(g)
    n = fetches()
    sessions = [g.session() for _ in range(40)]
    for i, ws in enumerate(sessions):
        kid = "flood-%s" % uuid.uuid4().hex
        ws.send_json({"op": "auth", "id": i, "token": idp.token(STRANGER, "x", kid=kid)})
    for i, ws in enumerate(sessions):
        expect_error(ws.await_reply(i, timeout=15), "auth_failed", i, "flood reply %d" % i)
    eq(fetches(), n + 1, "fetches for 40 unknown kids")
    refused(g, idp.token(STRANGER, "x", kid="one-more"), "at most every")
    eq(fetches(), n + 1, "fetches after one more")
    check(g.metric("mqgate_jwks_fetches_floored_total") >= 1, "floored fetches counted")
    accepted(g, idp.token(E1, "alice"))


@t.test("the identity provider down, answering 503, garbage or hanging up: the last good keys stay, each failure logged and counted")
def _():
    g = gateway()
    good = idp.token(E1, "alice")
    failures = g.metric("mqgate_jwks_fetches_total", result="failure")
    try:
        for status, raw in ((503, None), (200, "{\"keys\": ["), (200, "{\"keys\": []}"),
                            (None, None)):
            past_floor(g)
            with lock:
                state["status"], state["raw"] = status, raw
            n = fetches()
            refused(g, idp.token(STRANGER, "alice", kid="new-%s" % uuid.uuid4().hex[:8]))
            # a kept-alive connection the server hung up on: libcurl
            # tries once more on a new one, within the same fetch
            check(fetches() in (n + 1, n + 2) if status is None else fetches() == n + 1,
                  "fetches (%s %r): %d, before %d" % (status, raw, fetches(), n))
            failures += 1
            eq(g.metric("mqgate_jwks_fetches_total", result="failure"), failures,
               "failures counted (%s %r)" % (status, raw))
            accepted(g, good)
    finally:
        with lock:
            state["status"], state["raw"] = 200, None
    text = g.log_text()
    check("fetch failed: the last good keys stay" in text, "the failure is logged")
    check("HTTP status 503" in text, "the status is logged")
    check(g.metric("mqgate_jwks_keys") >= 1, "keys still in use")


@t.test("jwks_refresh_s fetches the set again on its own; a server certificate the CA file does not trust is refused")
def _():
    g = gateway(fresh=True, jwks_refresh_s=1, jwks_min_refresh_s=1)
    n = fetches()
    with lock:
        state["doc"] = {"keys": [K3.jwk(), E1.jwk(), K2.jwk(), K1.jwk()]}
    T.wait_for(lambda: fetches() >= n + 2, timeout=10, what="two more periodic fetches")
    accepted(g, idp.token(K1, "alice"))
    g.stop()
    # without jwks_ca_file the system's CAs do not know the test's CA
    jwt = jwt_cfg()
    del jwt["jwks_ca_file"]
    g = t.gateway({"auth": {"jwt": jwt}, "roles": ROLES}, fresh=True)
    T.wait_for(lambda: g.metric("mqgate_jwks_fetches_total", result="failure"), timeout=10,
               what="a failed fetch")
    eq(g.metric("mqgate_jwks_keys"), 0.0, "no keys from an untrusted server")
    check(re.search(r"jwks_url.*(certificate|SSL)", g.log_text()), "the TLS failure is logged")
    refused(g, idp.token(K1, "alice"))
    g.stop()


def write_jwks(name, keys, raw=None):
    return t.write_file(name, raw if raw is not None else json.dumps({"keys": keys}), 0o644)


@t.test("jwks_file: --check-config validates it; tokens verified by its keys; SIGHUP reloads it")
def _():
    good = write_jwks("good.jwks", [K1.jwk(), E1.jwk(), ENC.jwk()])
    cases = [(good, 0, r"warning: keys\[2\] \(kid \"enc1\"\): left out: use is not sig"),
             (write_jwks("none.jwks", [ENC.jwk()]), 1, r"no usable key in the set"),
             (write_jwks("garbage.jwks", None, "{\"keys\": ["), 1, r"line 1"),
             (write_jwks("object.jwks", None, "[1,2]"), 1, r"not a JWK Set"),
             (os.path.join(t.root, "missing.jwks"), 1, r"No such file")]
    for path, want, line in cases:
        cfg = t.write_file("cfg.json", json.dumps(
            {"auth": {"jwt": {"algs": ["RS256", "ES256"], "jwks_file": path}}}), 0o644)
        rc, out = T.run_daemon(t, ["--check-config", "-c", cfg])
        eq(rc, want, "--check-config on %s: %s" % (os.path.basename(path), out))
        check(re.search(re.escape(cfg) + r": auth\.jwt\.jwks_file: " + re.escape(path) +
                        r": .*" + line, out), "%s: no line %r in:\n%s" % (path, line, out))
    path = write_jwks("live.jwks", [K1.jwk(), E1.jwk()])
    g = t.gateway({"auth": {"jwt": {"algs": ["RS256", "ES256"], "jwks_file": path}},
                   "roles": ROLES}, fresh=True)
    accepted(g, idp.token(K1, "alice"))
    accepted(g, idp.token(E1, "alice"))
    refused(g, idp.token(K3, "alice"), "kid not in the key set")
    write_jwks("live.jwks", [K3.jwk()])
    check("configuration reloaded" in g.reload("new jwks_file"), "reload accepted")
    accepted(g, idp.token(K3, "alice", kid=None))   # a set of one: no kid needed
    refused(g, idp.token(K1, "alice"), "kid not in the key set")
    write_jwks("live.jwks", None, "not json")
    check("reload refused" in g.reload("broken jwks_file"), "a broken file is refused")
    accepted(g, idp.token(K3, "alice"))
    g.stop()


@t.test("PS256, EdDSA and HS* with a key set are refused by --check-config with a clear line")
def _():
    for algs, line in ((["PS256"], r"auth\.jwt\.algs\[0\]: not supported by this build's libjwt \(1\.10\)"),
                       (["RS256", "EdDSA"], r"auth\.jwt\.algs\[1\]: not supported by this build's libjwt"),
                       (["HS256"], r"auth\.jwt\.algs\[0\]: an HMAC algorithm needs auth\.jwt\.secret_file")):
        cfg = t.write_file("cfg.json", json.dumps(
            {"auth": {"jwt": {"algs": algs, "jwks_url": "https://id.example.com/certs"}}}), 0o644)
        rc, out = T.run_daemon(t, ["--check-config", "-c", cfg])
        eq(rc, 1, "--check-config with algs %s" % algs)
        check(re.search(line, out), "no line %r in:\n%s" % (line, out))


if __name__ == "__main__":
    try:
        sys.exit(t.run())
    finally:
        if server:
            server.close()
