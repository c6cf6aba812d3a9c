#!/usr/bin/python3
"""A session's identity as it changes: replies that carry it whatever its
size, refreshes and upgrades that re-check roles and subscriptions, and
reloads that revoke what the users file and the config no longer grant."""

import json
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, expect_error  # noqa: E402

t = T.Suite("identity")

ROLES = {
    "viewer": {"subscribe": ["sensor/#"], "max_qos": 1},
    "operator": {"subscribe": ["sensor/#", "device/+/status"], "publish": ["device/+/cmd"]},
    "tenant": {"mount": "tenants/%u/", "subscribe": ["#"], "publish": ["#"]},
    "all": {"subscribe": ["#"], "publish": ["#"]},
}
PASSWORDS = {"alice": "wonderland", "bob": "builder"}


def users_text(bob_roles="operator", with_alice=True):
    lines = ["bob:%s:%s" % (T.crypt_hash(PASSWORDS["bob"]), bob_roles)]
    if with_alice:
        lines.insert(0, "alice:%s:operator" % T.crypt_hash(PASSWORDS["alice"]))
    return "\n".join(lines) + "\n"


def login(g, user):
    ws = g.session()
    r = ws.request({"op": "auth", "id": 1, "user": user, "password": PASSWORDS[user]},
                   timeout=10)
    eq(r.get("op"), "ok", "password login of %s: %s" % (user, r))
    ws.sync()
    return ws


def reload(g, cfg):
    n = g.log_text().count("configuration reloaded")
    g.write_config(cfg)
    g.send_signal(signal.SIGHUP)
    T.wait_for(lambda: g.log_text().count("configuration reloaded") > n, timeout=10,
               what="\"configuration reloaded\" in the log")


def sub_ok(ws, topic, rid):
    eq(ws.request({"op": "sub", "id": rid, "topic": topic})["op"], "ok", "sub %s" % topic)


def withdrawn(frames, topic):
    """The forbidden error frames among frames that name topic."""
    return [f for f in frames if f.get("op") == "error" and f.get("code") == "forbidden"
            and topic in f.get("message", "")]


# --- replies of any size ----------------------------------------------------

@t.test("auth ok with a 256-byte user of escaped characters, 60 long role names and a 64-byte id: exact JSON")
def _():
    names = ["role-%02d-%s" % (i, "x" * 56) for i in range(60)]
    roles = dict((n, {"subscribe": ["r/%d/#" % i]}) for i, n in enumerate(names))
    g = t.gateway({"auth": {"jwt": t.jwt_config()}, "roles": roles})
    user = "\u0001\"\\" * 85 + "u"          # 256 bytes, 6 each escaped
    rid = "\u0002" * 32 + "\"" * 32           # 64 bytes: 6 and 2 each escaped
    ws = g.session()
    ws.send_json({"op": "auth", "id": rid, "token": t.token(user, names)})
    r, text = ws.recv_json_text()
    check(len(text) > 4096, "the reply is only %d bytes" % len(text))
    eq(T.strict_json(text), r, "strict JSON")
    eq(r, {"op": "ok", "id": rid, "user": user, "roles": names,
           "allow": {"subscribe": ["r/%d/#" % i for i in range(60)], "publish": []}},
       "auth reply")
    # errors and pongs echo such an id exactly too
    r = ws.request({"op": "ping", "id": rid})
    eq(r, {"op": "pong", "id": rid}, "pong")
    r = ws.request({"op": "sub", "id": rid, "topic": "nope/" + "\u00e9" * 300})
    expect_error(r, "forbidden", rid, "sub of a long forbidden filter")
    check(len(r["message"].encode()) <= 255, "message of %d bytes" % len(r["message"].encode()))


# --- refresh ----------------------------------------------------------------

@t.test("token refresh with other roles: the new roles apply, uncovered subscriptions are dropped with forbidden")
def _():
    g = t.gateway({"auth": {"jwt": t.jwt_config()}, "roles": ROLES})
    m = t.mosquitto.client()
    ws = g.session(token=t.token("alice", ["operator"]))
    sub_ok(ws, "device/1/status", 1)
    sub_ok(ws, "sensor/1", 2)
    ws.send_json({"op": "auth", "id": 3, "token": t.token("alice", ["viewer"])})
    frames = ws.sync()
    ok = [f for f in frames if f.get("id") == 3]
    eq(ok, [{"op": "ok", "id": 3, "user": "alice", "roles": ["viewer"],
             "allow": {"subscribe": ["sensor/#"], "publish": []}}], "refresh reply")
    eq(len(withdrawn(frames, "device/1/status")), 1, "forbidden frames for device/1/status in %s" % frames)
    eq(withdrawn(frames, "sensor/1"), [], "sensor/1 is still covered")
    m.publish("device/1/status", b"on", qos=1)
    m.publish("sensor/1", b"21", qos=1)
    got = ws.collect_n(1, pred=lambda f: f.get("op") == "msg")
    eq([f["topic"] for f in got], ["sensor/1"], "delivered after the refresh")
    eq([f for f in ws.sync() if f.get("op") == "msg"], [], "nothing for the withdrawn filter")
    expect_error(ws.request({"op": "pub", "id": 4, "topic": "device/1/cmd", "text": "x"}),
                 "forbidden", 4, "publish the old role allowed")


@t.test("token refresh that leaves no role or changes the mount: auth_failed, then 4401")
def _():
    g = t.gateway({"auth": {"jwt": t.jwt_config()}, "roles": ROLES})
    for roles, what in (([], "no role left"), (["tenant"], "another mount"),
                        (["nosuchrole"], "only unknown roles")):
        ws = g.session(token=t.token("carol", ["operator"]))
        r = ws.request({"op": "auth", "id": 2, "token": t.token("carol", roles)})
        expect_error(r, "auth_failed", 2, what)
        ws.expect_close(4401, what=what)


@t.test("password re-auth takes the file's roles; a token refresh after it the token's")
def _():
    g = t.gateway({"auth": {"jwt": t.jwt_config(), "users_file": t.write_file("users.refresh", users_text())},
                   "roles": ROLES})
    ws = g.session(token=t.token("bob", ["viewer"]))
    sub_ok(ws, "sensor/1", 1)
    r = ws.request({"op": "auth", "id": 2, "user": "bob", "password": PASSWORDS["bob"]}, timeout=10)
    eq(r, {"op": "ok", "id": 2, "user": "bob", "roles": ["operator"],
           "allow": {"subscribe": ["sensor/#", "device/+/status"], "publish": ["device/+/cmd"]}},
       "password re-auth reply")
    sub_ok(ws, "device/1/status", 3)
    ws.send_json({"op": "auth", "id": 4, "token": t.token("bob", ["viewer"])})
    frames = ws.sync()
    eq(len(withdrawn(frames, "device/1/status")), 1, "forbidden frames in %s" % frames)


# --- upgrade from anonymous -------------------------------------------------

@t.test("anonymous upgrading to a mounted role loses its unmounted subscriptions; a reload after it is safe")
def _():
    g = t.gateway({"auth": {"jwt": t.jwt_config(), "anonymous_role": "all"}, "roles": ROLES},
                  fresh=True, name="upgrade")
    m = t.mosquitto.client()
    # the user name "anonymous" is the one the anonymous identity has
    for user in ("anonymous", "carol"):
        ws = g.session()
        sub_ok(ws, "sensor/#", 1)
        ws.send_json({"op": "auth", "id": 2, "token": t.token(user, ["tenant"])})
        frames = ws.sync()
        eq(len(withdrawn(frames, "sensor/#")), 1, "%s: forbidden frame for sensor/# in %s" % (user, frames))
        m.publish("sensor/1", b"x", qos=1)
        m.publish("tenants/%s/sensor/1" % user, b"y", qos=1)
        eq([f for f in ws.collect(0.5) if f.get("op") == "msg"], [], "%s: messages after the upgrade" % user)
        sub_ok(ws, "sensor/#", 3)
        m.publish("tenants/%s/sensor/2" % user, b"z", qos=1)
        got = ws.collect_n(1, pred=lambda f: f.get("op") == "msg")
        eq(got[0]["topic"], "sensor/2", "%s: topic relative to the mount" % user)
        reload(g, g.cfg)
        eq(ws.request({"op": "ping", "id": 9}), {"op": "pong", "id": 9}, "%s: alive after the reload" % user)
        eq(withdrawn(ws.sync(), "sensor/#"), [], "%s: nothing withdrawn by the reload" % user)
    check(g.running(), "gateway alive")


@t.test("anonymous upgrading without a mount keeps what the new roles cover")
def _():
    g = t.gateway({"auth": {"jwt": t.jwt_config(), "anonymous_role": "all"}, "roles": ROLES})
    ws = g.session()
    sub_ok(ws, "sensor/#", 1)
    sub_ok(ws, "other/#", 2)
    ws.send_json({"op": "auth", "id": 3, "token": t.token("vic", ["viewer"])})
    frames = ws.sync()
    eq(len(withdrawn(frames, "other/#")), 1, "forbidden frame for other/#")
    eq(withdrawn(frames, "sensor/#"), [], "sensor/# kept")
    t.mosquitto.client().publish("sensor/9", b"1", qos=1)
    eq(ws.collect_n(1, pred=lambda f: f.get("op") == "msg")[0]["topic"], "sensor/9", "kept subscription")


# --- reload -----------------------------------------------------------------

@t.test("SIGHUP: a user removed from the users file is closed 4401, one whose roles changed gets them", timeout=40)
def _():
    path = t.write_file("users.reload", users_text())
    cfg = {"auth": {"users_file": path, "jwt": t.jwt_config()}, "roles": ROLES}
    g = t.gateway(cfg, fresh=True, name="users-reload")
    alice = login(g, "alice")
    bob = login(g, "bob")
    tok = g.session(token=t.token("tom", ["operator"]))
    sub_ok(bob, "device/1/status", 2)
    sub_ok(bob, "sensor/1", 3)
    t.write_file("users.reload", users_text(bob_roles="viewer", with_alice=False))
    reload(g, cfg)
    alice.expect_close(4401, what="alice, removed from the users file")
    frames = bob.sync()
    eq(len(withdrawn(frames, "device/1/status")), 1, "bob's device/1/status withdrawn: %s" % frames)
    expect_error(bob.request({"op": "sub", "id": 4, "topic": "device/2/status"}), "forbidden", 4,
                 "bob's new roles")
    sub_ok(bob, "sensor/2", 5)
    eq(tok.request({"op": "ping", "id": 1}), {"op": "pong", "id": 1}, "token session untouched")
    # the users file gone from the config: its sessions go; token ones stay
    reload(g, dict(cfg, auth={"jwt": t.jwt_config()}))
    bob.expect_close(4401, what="bob, once users_file is removed")
    eq(tok.request({"op": "ping", "id": 2}), {"op": "pong", "id": 2}, "token session after users_file went")
    # auth.jwt gone: token sessions go
    reload(g, dict(cfg, auth={"users_file": path}))
    tok.expect_close(4401, what="token session, once auth.jwt is removed")


if __name__ == "__main__":
    sys.exit(t.run())
