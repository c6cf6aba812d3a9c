#!/usr/bin/python3
"""Hardening of the topic rules and of JWT claims (issue 10): "$share/NAME/"
filters follow every filter rule, the '$' rule included, after their
prefix; a JWT user claim holding U+0000 is refused; a roles claim that is
not an array of strings gives default_roles."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, expect_error             # noqa: E402

t = T.Suite("hardening_cfg")

ROLES = {
    "viewer": {"subscribe": ["sensor/#"], "max_qos": 1},
    "operator": {"subscribe": ["sensor/#", "device/+/status"], "max_qos": 2},
    "shared": {"subscribe": ["$share/g/#"]},
    "sysshare": {"subscribe": ["$share/g/$SYS/#"]},
    "tenant": {"mount": "tenants/%u/", "subscribe": ["#", "$share/g/#"]},
}

_sys_mosq = []


def sys_mosquitto():
    """A mosquitto of its own that publishes its $SYS topics every second."""
    if not _sys_mosq:
        _sys_mosq.append(t.new_mosquitto("mosquitto-sys", extra="sys_interval 1\n"))
    return _sys_mosq[0]


def gw():
    return t.gateway({"auth": {"jwt": t.jwt_config(default_roles=["viewer"])}, "roles": ROLES},
                     mosq=sys_mosquitto())


def as_user(user, roles):
    return gw().session(token=t.token(user, roles))


def sub_code(ws, rid, topic):
    r = ws.request({"op": "sub", "id": rid, "topic": topic})
    if r.get("op") == "ok":
        return "ok"
    expect_error(r, r.get("code"), rid, "sub %s" % topic)
    return r.get("code")


@t.test("$share/g/# does not cover $share/g/$SYS/#: forbidden; only an explicit pattern allows it")
def _():
    ws = as_user("sam", ["shared"])
    eq(sub_code(ws, 1, "$share/g/$SYS/#"), "forbidden", "sub $share/g/$SYS/# with $share/g/#")
    eq(sub_code(ws, 2, "$share/g/$SYS/broker/uptime"), "forbidden",
       "sub $share/g/$SYS/broker/uptime with $share/g/#")
    eq(sub_code(ws, 3, "$share/g/+/broker/uptime"), "ok", "sub $share/g/+/broker/uptime")
    sys_ws = as_user("sid", ["sysshare"])
    eq(sub_code(sys_ws, 1, "$share/g/$SYS/#"), "ok", "sub $share/g/$SYS/# with that very pattern")
    eq(sub_code(sys_ws, 2, "$share/h/$SYS/#"), "forbidden", "sub $share/h/$SYS/# (another share name)")


@t.test("a session allowed $share/g/# gets no $SYS message while the broker publishes them")
def _():
    ws = as_user("sam", ["shared"])
    eq(sub_code(ws, 1, "$share/g/#"), "ok", "sub $share/g/#")
    eq(sub_code(ws, 2, "$share/g/$SYS/#"), "forbidden", "sub $share/g/$SYS/#")
    eq(sub_code(ws, 3, "$share/g/$SYS/broker/uptime"), "forbidden", "sub $share/g/$SYS/broker/uptime")
    # a witness on the broker itself: $SYS/... comes every second
    w = sys_mosquitto().client()
    w.subscribe("$SYS/broker/uptime")
    w.get(timeout=5, what="a $SYS/broker/uptime message at the broker")
    got = ws.collect(2.5)
    leaked = [f for f in got if f.get("op") == "msg" and f.get("topic", "").startswith("$")]
    eq(leaked, [], "$ messages at the session allowed $share/g/#")
    sys_mosquitto().client().publish("plain/x", b"p")
    got = ws.collect(3, until=lambda fr: any(f.get("op") == "msg" for f in fr))
    eq([(f.get("topic"), f.get("text")) for f in got if f.get("op") == "msg"], [("plain/x", "p")],
       "a plain message through $share/g/#")


@t.test("bad share names and a share without a filter: bad_topic for sub and unsub")
def _():
    ws = as_user("sam", ["shared"])
    bad = ["$share/", "$share/g", "$share/g/", "$share//x", "$share/+/x", "$share/#", "$share/#/x",
           "$share/g+/x", "$share/+", "$share//"]
    for i, topic in enumerate(bad):
        eq(sub_code(ws, i, topic), "bad_topic", "sub %r" % topic)
        r = ws.request({"op": "unsub", "id": 100 + i, "topic": topic})
        expect_error(r, "bad_topic", 100 + i, "unsub %r" % topic)
    eq(sub_code(ws, 99, "$share/g//"), "ok", "sub $share/g// (the filter \"/\")")
    ws.sync()


@t.test("a mounted role's shared subscription is shared upstream: $share/g/ then the mount")
def _():
    ws = as_user("carol", ["tenant"])
    eq(sub_code(ws, 1, "$share/g/a/#"), "ok", "sub $share/g/a/#")
    m = sys_mosquitto().client()
    m.publish("tenants/carol/a/1", b"x", qos=1)
    got = ws.collect_n(1, pred=lambda f: f.get("op") == "msg")
    eq(got[0]["topic"], "a/1", "topic relative to the mount")
    m.publish("tenants/dave/a/1", b"y", qos=1)
    eq([f for f in ws.collect(0.5) if f.get("op") == "msg"], [], "another tenant's message")
    ws.send_json({"op": "unsub", "id": 2, "topic": "$share/g/a/#"})
    ws.sync()
    m.publish("tenants/carol/a/2", b"z", qos=1)
    eq([f for f in ws.collect(0.5) if f.get("op") == "msg"], [], "after the unsub")


def token_fails(claims, what):
    ws = gw().ws()
    ws.recv_json()
    r = ws.request({"op": "auth", "id": 1, "token": t.token("alice", ["operator"], claims=claims)})
    expect_error(r, "auth_failed", 1, what)
    eq(ws.expect_close(4401, what=what), [], "frames between auth_failed and the close")
    gw().assert_serving()


@t.test("a JWT user claim holding U+0000 (\"alice\\u0000x\"): auth_failed, close 4401")
def _():
    token_fails({"sub": "alice\u0000x"}, "user alice\\u0000x")
    token_fails({"sub": "\u0000"}, "user \\u0000")
    token_fails({"sub": "alice\u0000"}, "user alice\\u0000")


@t.test("a roles claim that is not an array of strings gives default_roles")
def _():
    cases = [5, "operator", {"operator": True}, [1, "operator"], ["operator", None],
             [["operator"]], True, None]
    for roles in cases:
        ws = gw().ws()
        ws.recv_json()
        r = ws.request({"op": "auth", "id": 1, "token": t.token("alice", None, claims={"roles": roles})})
        eq(r, {"op": "ok", "id": 1, "user": "alice", "roles": ["viewer"],
           "allow": {"subscribe": ["sensor/#"], "publish": []}}, "auth reply, roles claim %r" % (roles,))
        ws.sync()
        eq(sub_code(ws, 2, "sensor/1"), "ok", "sub sensor/1 with default_roles, roles claim %r" % (roles,))
        ws.close(wait=0)
    for roles, want in ((["operator"], ["operator"]), ([], []), (["nosuchrole"], [])):
        ws = gw().ws()
        ws.recv_json()
        r = ws.request({"op": "auth", "id": 1, "token": t.token("alice", roles)})
        eq({k: r.get(k) for k in ("op", "id", "user", "roles")},
           {"op": "ok", "id": 1, "user": "alice", "roles": want}, "auth reply, roles claim %r" % (roles,))
        ws.close(wait=0)


if __name__ == "__main__":
    sys.exit(t.run())
