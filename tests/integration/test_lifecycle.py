#!/usr/bin/python3
"""The daemon's life cycle across threads: what a reload changes while
Paho's threads are busy, how long SIGTERM takes when the broker stays
silent, and that a refused reload changes nothing at all (users, JWT
keys, TLS certificates).

The data race tests mean most in a ThreadSanitizer build (./configure
--enable-tsan; the TSan pass of scripts/test.sh): there the harness' "no
sanitizer report" result fails on any race report in the daemon's log."""

import os
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, diag, eq                     # noqa: E402
from faultproxy import FaultProxy                       # noqa: E402

t = T.Suite("lifecycle")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]}}


class Hole(object):
    """A TCP port that accepts connections (the kernel does) and never
    reads or answers: a broker whose CONNACK never comes."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        T._open_resources.append(self)

    def close(self):
        self.sock.close()


# --- data races ---------------------------------------------------------------

@t.test("SIGHUP while Paho's thread waits for a CONNACK that never comes: the log level the "
        "reload sets is what Paho's thread reads, with no data race", timeout=60)
def _():
    hole = Hole()
    g = t.gateway({"broker": {"uris": ["tcp://127.0.0.1:%d" % hole.port]},
                   "auth": {"anonymous_role": "all"}, "roles": ROLES},
                  fresh=True, name="race-level", healthy=False)
    T.wait_for(lambda: "connecting to broker" in g.log_text(), 5, what="the first connect attempt")
    # The connect attempt gives up after its 10 s connect timeout, on
    # Paho's thread, which then logs "broker connect ... failed" at warn.
    # The reloads change the level meanwhile, from the service thread.
    for level in ("info", "debug", "info"):
        g.cfg["log"] = {"level": level}
        g.write_config(g.cfg)
        log = g.reload("level %s" % level)
        check("configuration reloaded" in log, "reload to level %s refused:\n%s" % (level, log))
        time.sleep(0.2)
    # to "warn": its own "configuration reloaded" (info) is not logged
    g.cfg["log"] = {"level": "warn"}
    g.write_config(g.cfg)
    mark = g._log_size()
    g.send_signal(signal.SIGHUP)
    T.wait_for(lambda: "SIGHUP: reloading" in T.read_text(g.logpath, mark), 5,
               what="the reload to level warn")
    time.sleep(T.scaled(0.5))
    mark = g._log_size()
    T.wait_for(lambda: "warn: broker connect to" in T.read_text(g.logpath, mark), 20,
               what="the connect attempt to fail (logged at warn on Paho's thread)")
    time.sleep(T.scaled(1.5))
    later = T.read_text(g.logpath, mark)
    diag("log after the reload to level warn: %r" % later[:400])
    eq([l for l in later.splitlines() if not l.startswith(("warn:", "error:"))], [],
       "lines below warn after the reload to level warn")
    g.stop()


def thread_masks(pid):
    """{tid: (name, blocked signal mask)} of every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            st = dict(l.split(":\t", 1) for l in f.read().splitlines() if ":\t" in l)
        out[int(tid)] = (st["Name"].strip(), int(st["SigBlk"], 16))
    return out


@t.test("SIGHUP, SIGTERM and SIGINT reach the service thread only: Paho's threads and the "
        "password worker block them (the handler's flags are the service thread's)")
def _():
    users = t.write_file("users-sig", "alice:%s:all\n" % T.crypt_hash("pw"))
    g = t.gateway({"auth": {"anonymous_role": "all", "users_file": users}, "roles": ROLES},
                  fresh=True, name="sigmask")
    if os.environ.get("MQGATED_REAL"):
        # valgrind runs every thread with the signals blocked outside its
        # own scheduler: the masks in /proc are valgrind's, not ours
        T.diag("under valgrind: the masks are not checked, the signals are")
        check("configuration reloaded" in g.reload("sigmask"), "reload refused")
        g.stop()
        return
    pid = g.proc.pid
    masks = thread_masks(pid)
    diag("threads: %s" % ", ".join("%d %s %016x" % (tid, n, m) for tid, (n, m) in sorted(masks.items())))
    check(any(n.startswith("MQTTAsync") for n, _ in masks.values()), "no Paho thread found")
    want = (1 << (signal.SIGHUP - 1)) | (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))
    eq(masks[pid][1] & want, 0, "signals blocked on the service thread")
    eq(sorted("%s (%d)" % (n, tid) for tid, (n, m) in masks.items() if tid != pid and m & want != want),
       [], "threads other than the service thread that do not block SIGHUP, SIGINT and SIGTERM")
    # and the signals still work: a reload, then the stop below
    check("configuration reloaded" in g.reload("sigmask"), "reload refused")
    g.stop()


# --- reload as a transaction --------------------------------------------------

def put(src, dst):
    """Replace dst by a copy of src, as an operator's tool would (rename)."""
    with open(src, "rb") as f:
        data = f.read()
    write(dst, data)


def write(dst, data):
    tmp = dst + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, dst)


def password_ok(g, user, password):
    """True when user/password authenticates a new session; after a
    refusal, checks auth_failed and the 4401 close."""
    ws = g.ws()
    ws.recv_json()
    r = ws.request({"op": "auth", "id": 1, "user": user, "password": password},
                   timeout=10)
    if r.get("op") == "ok":
        ws.close(wait=0)
        return True
    T.expect_error(r, "auth_failed", 1, "password auth as %r" % user)
    ws.expect_close(4401, what="session after auth_failed")
    return False


def token_ok(g, token):
    ws = g.ws()
    ws.recv_json()
    r = ws.request({"op": "auth", "id": 1, "token": token})
    ws.close(wait=0)
    return r.get("op") == "ok"


def served_cert(g, ca):
    """SHA-256 fingerprint of the certificate a new session on the TLS
    listener (the second) is served."""
    ws = g.ws(listener=1, tls=ca.client_context(alpn=["http/1.1"]))
    der = ws.sock.getpeercert(binary_form=True)
    eq(ws.recv_json().get("op"), "hello", "first frame on the TLS listener")
    ws.close(wait=0)
    return T.fingerprint(der)


@t.test("SIGHUP whose users file and certificate changed and whose JWT key is broken: refused, "
        "and nothing changed (the old users, certificate and key still serve); fixed, all of it "
        "is put in", timeout=60)
def _():
    d = os.path.join(t.root, "txn")
    ca = T.CertAuthority(os.path.join(d, "pki"), "lifecycle CA")
    a = ca.issue("txn-a", "txn-a.mqgate.test")
    b = ca.issue("txn-b", "txn-b.mqgate.test")
    cfile, kfile = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    put(a[0], cfile)
    put(a[1], kfile)
    users = os.path.join(d, "users")
    write(users, ("alice:%s:all\n" % T.crypt_hash("old-pw")).encode())
    secret = os.path.join(d, "jwt.secret")
    write(secret, t.jwt_secret + b"\n")
    g = t.gateway({"listeners": [{"path": "/ws"},
                                 {"path": "/ws", "tls": {"cert_file": cfile, "key_file": kfile}}],
                   "auth": {"users_file": users, "jwt": {"alg": "HS256", "secret_file": secret}},
                   "roles": ROLES}, fresh=True, name="txn")
    fp_a, fp_b = T.fingerprint(T.cert_der(a[0])), T.fingerprint(T.cert_der(b[0]))
    token = t.token("carol", ["all"])
    check(password_ok(g, "alice", "old-pw"), "alice with the first users file")
    check(token_ok(g, token), "a token signed with the first key")
    eq(served_cert(g, ca), fp_a, "certificate before the reloads")

    # a new users file and certificate, and a JWT key file the verifier
    # cannot use (empty): the JWT step comes last and fails
    write(users, ("bob:%s:all\n" % T.crypt_hash("new-pw")).encode())
    put(b[0], cfile)
    put(b[1], kfile)
    write(secret, b"")
    log = g.reload("broken JWT key")
    diag("refused reload's log:\n" + log.strip())
    lines = log.splitlines()
    check("error: reload refused: the running configuration stays" in lines,
          "the reload was not refused:\n" + log)
    eq((password_ok(g, "alice", "old-pw"), password_ok(g, "bob", "new-pw")), (True, False),
       "alice (running users file) and bob (refused one) let in after the refused reload")
    check(token_ok(g, token), "a token of the running key after the refused reload")
    eq(served_cert(g, ca), fp_a, "certificate after the refused reload")
    check([l for l in lines if "auth.jwt" in l and secret in l],
          "no error line naming auth.jwt and %s:\n%s" % (secret, log))
    eq([l for l in lines if l.startswith("info:") and "SIGHUP: reloading" not in l], [],
       "info lines of the refused reload (nothing may claim to be loaded)")

    # the key fixed: the same files are put in, all of them
    write(secret, t.jwt_secret + b"\n")
    log = g.reload("fixed JWT key")
    diag("accepted reload's log:\n" + log.strip())
    check("configuration reloaded" in log, "the fixed reload was refused:\n" + log)
    check("info: listeners[1]: certificate %s loaded" % cfile in log.splitlines(),
          "no line saying the certificate was loaded:\n" + log)
    check("info: %s: 1 users" % users in log.splitlines(),
          "no line saying the users file was loaded:\n" + log)
    check(password_ok(g, "bob", "new-pw"), "bob after the accepted reload")
    check(not password_ok(g, "alice", "old-pw"), "alice, removed, was let in after the accepted reload")
    check(token_ok(g, token), "a token after the accepted reload")
    eq(served_cert(g, ca), fp_b, "certificate after the accepted reload")
    g.stop()


# --- shutdown -----------------------------------------------------------------

@t.test("SIGTERM with a QoS 1 publish the broker took but never acknowledged (its PUBACKs held "
        "back for good): exit 0 within 6 s, the wait for the PUBACKs and the DISCONNECT included",
        timeout=40)
def _():
    m = t.new_mosquitto("m-silent")
    p = FaultProxy(m.port, name="proxy-silent").start()
    T._open_resources.append(p)
    g = t.gateway({"broker": {"uris": ["tcp://127.0.0.1:%d" % p.port], "client_id": "mqgate-silent"},
                   "auth": {"anonymous_role": "all"}, "roles": ROLES},
                  mosq=m, fresh=True, name="silent")
    w = m.client()
    w.subscribe("silent/#", 1)
    s = g.session()
    p.stall("down")     # the broker hears everything; nothing it says comes back
    for i in range(5):
        s.send_json({"op": "pub", "id": i, "topic": "silent/t", "text": "m%d" % i, "qos": 1})
    got = w.get_n(5)
    eq(sorted(x.payload for x in got), [b"m%d" % i for i in range(5)], "messages at the broker")
    eq(s.collect(0.3), [], "frames at the session before SIGTERM (no ok: no PUBACK came)")
    t0 = time.monotonic()
    g.send_signal(signal.SIGTERM)
    try:
        g.proc.wait(T.scaled(15))
    except Exception:
        pass
    secs = time.monotonic() - t0
    rc = g.proc.poll()
    diag("SIGTERM with 5 QoS 1 publishes unacknowledged for good: exit status %s after %.2f s"
         % (rc, secs))
    eq(s.wait_close(1), 1001, "close code")
    check(rc is not None and secs < T.scaled(6),
          "exit %.2f s after SIGTERM (status %s): the whole shutdown must end within 6 s"
          % (secs, rc))
    check(secs >= 5.0, "exit %.2f s after SIGTERM: the gateway did not wait 5 s for the PUBACKs" % secs)
    check("5 publishes still unacknowledged at exit" in g.log_text(),
          "no '5 publishes still unacknowledged at exit' in the log")
    check(T.wait_for(lambda: "Received DISCONNECT from mqgate-silent" in m.log_text(), 2,
                     what="DISCONNECT at the broker"), "no DISCONNECT")
    p.resume()
    g.stop()    # exit status 0, no sanitizer report


if __name__ == "__main__":
    sys.exit(t.run())
