#!/usr/bin/python3
"""mqgated's command line: --version, --check-config on good and bad files
(FILE:LINE: KEY: ... messages), bad invocations."""

import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq                           # noqa: E402

t = T.Suite("cli", broker=False)


def secret_file():
    path = os.path.join(t.root, "jwt.secret")
    if not os.path.exists(path):
        t.write_file("jwt.secret", "s3cret\n")
    return path


def good_config():
    return {
        "listeners": [{"bind": "127.0.0.1", "port": T.free_port(), "path": "/ws"}],
        "broker": {"uris": ["tcp://127.0.0.1:1"], "mqtt_version": 5, "keepalive_s": 30},
        "auth": {"jwt": {"alg": "HS256", "secret_file": secret_file()}, "timeout_s": 10},
        "roles": {"viewer": {"subscribe": ["sensor/#"], "max_qos": 1},
                  "tenant": {"mount": "tenants/%u/", "subscribe": ["#"], "publish": ["cmd/#"]}},
        "limits": {"max_message_bytes": 65536, "max_subscriptions": 64},
        "metrics": True,
        "log": {"level": "info"},
    }


def write(name, text):
    path = os.path.join(t.tmpdir(), name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


def line_of(text, needle):
    i = text.index(needle)
    return text.count("\n", 0, i) + 1


def check_config(path):
    t0 = time.monotonic()
    rc, out = T.run_daemon(t, ["--check-config", "-c", path])
    check(time.monotonic() - t0 < T.scaled(5), "--check-config took %.1f s" % (time.monotonic() - t0))
    return rc, out


def rejects(text, needle, key, extra=()):
    """--check-config on text exits 1 and names FILE:LINE (the line of
    needle) and key."""
    path = write("bad.json", text)
    rc, out = check_config(path)
    shown = "\noutput:\n" + out.strip()[:800]
    eq(rc, 1, "exit status" + shown)
    where = "%s:%d:" % (path, line_of(text, needle))
    lines = [l for l in out.splitlines() if where in l]
    check(lines, "no line names %s%s" % (where, shown))
    check(any(key in l.split(where, 1)[1] for l in lines), "no %s line names the key %r%s" % (where, key, shown))
    for e in extra:
        check(any(e in l for l in lines), "the %s line does not mention %r%s" % (where, e, shown))


@t.test("--version prints the version and exits 0")
def _():
    rc, out = T.run_daemon(t, ["--version"])
    eq(rc, 0, "exit status")
    check("0.1.0" in out, "no 0.1.0 in %r" % out)


@t.test("--check-config: a good file exits 0, quickly, without a broker")
def _():
    path = write("good.json", json.dumps(good_config(), indent=2) + "\n")
    rc, out = check_config(path)
    eq(rc, 0, "exit status (output: %s)" % out.strip()[:500])


@t.test("--check-config: limits.max_message_bytes \"big\" names FILE:LINE: KEY")
def _():
    text = ('{\n'
            '  "listeners": [{"bind": "127.0.0.1", "port": 18080, "path": "/ws"}],\n'
            '  "broker": {"uris": ["tcp://127.0.0.1:1883"]},\n'
            '  "limits": {\n'
            '    "max_connections": 10,\n'
            '    "max_message_bytes": "big"\n'
            '  }\n'
            '}\n')
    eq(line_of(text, '"max_message_bytes"'), 6, "line in the test file")
    rejects(text, '"max_message_bytes"', "limits.max_message_bytes", ['"big"'])


@t.test("--check-config: a syntax error names its line")
def _():
    text = ('{\n'
            '  "broker": {"uris": ["tcp://127.0.0.1:1883"]},\n'
            '  "log": {"level": "debug"},\n'
            '  "metrics": tru\n'
            '}\n')
    path = write("syntax.json", text)
    rc, out = check_config(path)
    eq(rc, 1, "exit status")
    check("%s:4:" % path in out, "output does not name %s:4: (%s)" % (path, out.strip()[:300]))


@t.test("--check-config: an unknown top-level key is rejected with its line")
def _():
    cfg = good_config()
    text = json.dumps(cfg, indent=2)
    text = text[:-2] + ',\n  "bogus": 1\n}\n'
    rejects(text, '"bogus"', "bogus")


def type_case(name, patch, needle, key):
    def f():
        cfg = T.deep_merge(good_config(), patch)
        rejects(json.dumps(cfg, indent=2) + "\n", needle, key)
    t.add("--check-config: %s" % name, f)


type_case("log.level \"loud\"", {"log": {"level": "loud"}}, '"level"', "log.level")
type_case("broker.mqtt_version 3", {"broker": {"mqtt_version": 3}}, '"mqtt_version"', "broker.mqtt_version")
type_case("broker.uris a string", {"broker": {"uris": "tcp://127.0.0.1:1883"}}, '"uris"', "broker.uris")
type_case("auth.timeout_s -1", {"auth": {"timeout_s": -1}}, '"timeout_s"', "auth.timeout_s")
type_case("metrics \"yes\"", {"metrics": "yes"}, '"metrics"', "metrics")
type_case("listeners an object", {"listeners": {"port": 1}}, '"listeners"', "listeners")
type_case("listener port 70000", {"listeners": [{"bind": "127.0.0.1", "port": 70000, "path": "/ws"}]},
          '"port"', "port")
type_case("a role pattern that is not a filter", {"roles": {"viewer": {"subscribe": ["a/#/b"]}}},
          '"a/#/b"', "viewer")
type_case("roles max_qos 3", {"roles": {"viewer": {"max_qos": 3}}}, '"max_qos"', "max_qos")
type_case("limits.max_errors 1.5", {"limits": {"max_errors": 1.5}}, '"max_errors"', "limits.max_errors")


@t.test("--check-config: top level not an object, empty file")
def _():
    for name, text in (("array.json", "[]\n"), ("empty.json", ""), ("string.json", '"x"\n')):
        rc, out = check_config(write(name, text))
        eq(rc, 1, "exit status for %s (output: %s)" % (name, out.strip()[:200]))


def missing_file(name, patch_fn):
    def f():
        cfg = good_config()
        missing = os.path.join(t.tmpdir(), "does-not-exist.pem")
        cfg = patch_fn(cfg, missing)
        path = write("cfg.json", json.dumps(cfg, indent=2) + "\n")
        rc, out = check_config(path)
        eq(rc, 1, "exit status (output: %s)" % out.strip()[:300])
        check(missing in out, "output does not name %s: %s" % (missing, out.strip()[:300]))
    t.add("--check-config: %s" % name, f)


missing_file("missing auth.jwt.secret_file", lambda c, m: T.deep_merge(
    c, {"auth": {"jwt": {"alg": "HS256", "secret_file": m}}}))
missing_file("missing auth.users_file", lambda c, m: T.deep_merge(c, {"auth": {"users_file": m}}))
missing_file("missing TLS cert_file", lambda c, m: T.deep_merge(c, {"listeners": [
    {"bind": "127.0.0.1", "port": 8443, "path": "/ws", "tls": {"cert_file": m, "key_file": m}}]}))


@t.test("--check-config: a users file with a plaintext password is refused; a hashed one passes")
def _():
    users = write("users", "# users\n\nalice:%s:viewer\n" % T.crypt_hash("pw"))
    cfg = T.deep_merge(good_config(), {"auth": {"users_file": users}})
    rc, out = check_config(write("cfg.json", json.dumps(cfg, indent=2)))
    eq(rc, 0, "exit status with a yescrypt hash (output: %s)" % out.strip()[:300])
    plain = write("users.plain", "alice:hunter2:viewer\n")
    cfg = T.deep_merge(good_config(), {"auth": {"users_file": plain}})
    rc, out = check_config(write("cfg2.json", json.dumps(cfg, indent=2)))
    eq(rc, 1, "exit status with a plaintext password (output: %s)" % out.strip()[:300])
    check(plain in out, "output does not name the users file")
    check("hunter2" not in out, "output shows the password")


@t.test("--check-config: a users file role name not of the role syntax names FILE:LINE")
def _():
    for role in ('a"b', "a\\b", "caf\u00e9", "r" * 65, "a/b"):
        users = write("users", "# users\nalice:%s:viewer,%s\n" % (T.crypt_hash("pw"), role))
        cfg = T.deep_merge(good_config(), {"auth": {"users_file": users}})
        rc, out = check_config(write("cfg.json", json.dumps(cfg, indent=2)))
        eq(rc, 1, "exit status for role %r (output: %s)" % (role, out.strip()[:300]))
        check("auth.users_file: %s:2:" % users in out,
              "output does not name %s:2: for role %r: %s" % (users, role, out.strip()[:300]))
    users = write("users", "alice:%s:viewer,op-1,A.b_9,%s\n" % (T.crypt_hash("pw"), "r" * 64))
    cfg = T.deep_merge(good_config(), {"auth": {"users_file": users}})
    rc, out = check_config(write("cfg.json", json.dumps(cfg, indent=2)))
    eq(rc, 0, "exit status with role names of the syntax (output: %s)" % out.strip()[:300])


type_case("a role name with a quote", {"roles": {'a"b': {}}}, '"a\\"b"', "roles.a\"b")
type_case("a role name with a backslash", {"roles": {"a\\b": {}}}, '"a\\\\b"', "roles.a\\b")
type_case("a role name of 65 bytes", {"roles": {"r" * 65: {}}}, '"%s"' % ("r" * 65), "roles.r")
type_case("auth.anonymous_role not of the role syntax", {"auth": {"anonymous_role": "a b"}},
          '"anonymous_role"', "auth.anonymous_role")
type_case("auth.jwt.default_roles not of the role syntax",
          {"auth": {"jwt": {"default_roles": ["viewer", "x\"y"]}}}, '"x\\"y"', "auth.jwt.default_roles[1]")


@t.test("-c with a file that does not exist: exit 1, names the file")
def _():
    path = os.path.join(t.tmpdir(), "nope.json")
    rc, out = T.run_daemon(t, ["--check-config", "-c", path])
    eq(rc, 1, "exit status")
    check(path in out, "output does not name %s" % path)


@t.test("an unknown option: non-zero exit")
def _():
    rc, out = T.run_daemon(t, ["--no-such-option"])
    check(rc != 0, "exit status 0 for an unknown option")


@t.test("starting with a bad config: exits non-zero at once")
def _():
    path = write("bad.json", '{"limits": {"max_message_bytes": "big"}}\n')
    rc, out = T.run_daemon(t, ["-c", path], timeout=5)
    check(rc not in (0, None), "exit status %s" % rc)
    check(path in out, "output does not name %s" % path)


if __name__ == "__main__":
    sys.exit(t.run())
