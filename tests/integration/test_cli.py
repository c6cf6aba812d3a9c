#!/usr/bin/python3
"""mqgated's command line: --version, --check-config on good and bad files
(FILE:LINE: KEY: ... messages), bad invocations."""

import json
import os
import shutil
import subprocess
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


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        T.fail("openssl %s: %s" % (" ".join(args), r.stdout.decode(errors="replace")))


_keys = {}


def key_files(kind):
    """(private key file, public key file) of a new key kind "ec" (P-256),
    "ec384" or "rsa" (2048), made once per run."""
    if not shutil.which("openssl"):
        t.skip("no openssl tool")
    if kind not in _keys:
        d = os.path.join(t.root, "keys-" + kind)
        os.makedirs(d, exist_ok=True)
        priv, pub = os.path.join(d, "key.pem"), os.path.join(d, "pub.pem")
        opts = {"ec": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                "ec384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
                "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]}[kind]
        openssl("genpkey", *opts, "-out", priv)
        openssl("pkey", "-in", priv, "-pubout", "-out", pub)
        _keys[kind] = (priv, pub)
    return _keys[kind]


def cert_pair(name):
    """(cert_file, key_file) of a new self-signed certificate."""
    d = os.path.join(t.root, "cert-" + name)
    os.makedirs(d, exist_ok=True)
    pair = T.make_cert(d)
    if pair is None:
        t.skip("no openssl tool")
    return pair


def garbage(name="garbage.pem"):
    return write(name, "this is not PEM\n")


def files_case(name, patch_fn, key, bad=True):
    """--check-config on good_config() changed by patch_fn(cfg) -> cfg:
    bad: exit 1 with a line that names key and the file patch_fn gave it
    (returned as cfg, file); else exit 0."""
    def f():
        cfg, file = patch_fn(good_config())
        path = write("cfg.json", json.dumps(cfg, indent=2) + "\n")
        rc, out = check_config(path)
        shown = "\noutput:\n" + out.strip()[:800]
        if not bad:
            eq(rc, 0, "exit status" + shown)
            return
        eq(rc, 1, "exit status" + shown)
        lines = [l for l in out.splitlines() if l.startswith(path + ": ")]
        check(any(key in l and file in l for l in lines),
              "no line names both %s and %s%s" % (key, file, shown))
    t.add("--check-config: %s" % name, f)


def jwt_key(alg, kind):
    def patch(cfg):
        file = garbage() if kind == "garbage" else \
            key_files(kind[:-5])[0] if kind.endswith("-priv") else key_files(kind)[1]
        cfg["auth"]["jwt"] = {"alg": alg, "public_key_file": file}
        return cfg, file
    return patch


files_case("auth.jwt ES256 with a P-256 public key passes", jwt_key("ES256", "ec"), "", bad=False)
files_case("auth.jwt RS256 with an RSA public key passes", jwt_key("RS256", "rsa"), "", bad=False)
files_case("auth.jwt.public_key_file not PEM: exit 1", jwt_key("ES256", "garbage"),
           "auth.jwt.public_key_file")
files_case("auth.jwt.public_key_file an RSA key for ES256: exit 1", jwt_key("ES256", "rsa"),
           "auth.jwt.public_key_file")
files_case("auth.jwt.public_key_file a P-384 key for ES256: exit 1", jwt_key("ES256", "ec384"),
           "auth.jwt.public_key_file")
files_case("auth.jwt.public_key_file an EC key for RS256: exit 1", jwt_key("RS256", "ec"),
           "auth.jwt.public_key_file")
files_case("auth.jwt.public_key_file a private key: exit 1", jwt_key("ES256", "ec-priv"),
           "auth.jwt.public_key_file")


def listener_tls(cert, key, ca=None, which="cert"):
    def patch(cfg):
        c, k = cert(), key()
        tls = {"cert_file": c, "key_file": k}
        if ca:
            tls["ca_file"] = ca()
        cfg["listeners"].append({"bind": "127.0.0.1", "port": T.free_port(), "path": "/ws", "tls": tls})
        return cfg, tls[which + "_file"]
    return patch


files_case("a good listener certificate, key and CA pass",
           listener_tls(lambda: cert_pair("a")[0], lambda: cert_pair("a")[1], lambda: cert_pair("b")[0]),
           "", bad=False)
files_case("listeners[1].tls.cert_file not PEM: exit 1",
           listener_tls(garbage, lambda: cert_pair("a")[1]), "listeners[1].tls.cert_file")
files_case("listeners[1].tls.key_file not PEM: exit 1",
           listener_tls(lambda: cert_pair("a")[0], garbage, which="key"), "listeners[1].tls.key_file")
files_case("listeners[1].tls.key_file not the certificate's key: exit 1",
           listener_tls(lambda: cert_pair("a")[0], lambda: cert_pair("b")[1], which="key"),
           "listeners[1].tls.key_file")
files_case("listeners[1].tls.key_file an RSA key for an EC certificate: exit 1",
           listener_tls(lambda: cert_pair("a")[0], lambda: key_files("rsa")[0], which="key"),
           "listeners[1].tls.key_file")
files_case("listeners[1].tls.key_file given the certificate: exit 1",
           listener_tls(lambda: cert_pair("a")[0], lambda: cert_pair("a")[0], which="key"),
           "listeners[1].tls.key_file")
files_case("listeners[1].tls.ca_file that does not load: exit 1",
           listener_tls(lambda: cert_pair("a")[0], lambda: cert_pair("a")[1], garbage, which="ca"),
           "listeners[1].tls.ca_file")


def broker_tls(tls_fn, which):
    def patch(cfg):
        tls = tls_fn()
        cfg["broker"]["tls"] = tls
        return cfg, tls[which]
    return patch


files_case("broker.tls.ca_file that does not load: exit 1",
           broker_tls(lambda: {"ca_file": garbage()}, "ca_file"), "broker.tls.ca_file")
files_case("broker.tls.key_file not the certificate's key: exit 1",
           broker_tls(lambda: {"cert_file": cert_pair("a")[0], "key_file": cert_pair("b")[1]}, "key_file"),
           "broker.tls.key_file")
files_case("broker.tls.cert_file not PEM: exit 1",
           broker_tls(lambda: {"cert_file": garbage(), "key_file": cert_pair("b")[1]}, "cert_file"),
           "broker.tls.cert_file")
files_case("a good broker.tls passes",
           broker_tls(lambda: {"ca_file": cert_pair("b")[0], "cert_file": cert_pair("a")[0],
                               "key_file": cert_pair("a")[1]}, "ca_file"), "", bad=False)


def users_case(text):
    def patch(cfg):
        users = write("users", text)
        cfg["auth"]["users_file"] = users
        return cfg, users
    return patch


files_case("a users file with an error: exit 1 naming it",
           users_case("alice:%s:viewer\nbob:nothash:viewer\n" % T.crypt_hash("pw")), "auth.users_file")
files_case("a users file role name with a quote: exit 1 naming it",
           users_case('alice:%s:viewer,a"b\n' % T.crypt_hash("pw")), "auth.users_file")


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
