#!/usr/bin/python3
"""The password workers under load and at the edges: a flood from one
address does not starve the logins of others, a late result does not
authenticate a session that is closing, shutdown with checks under way,
unknown users cost the default hash, failed logins are logged within a
budget per address."""

import collections
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, expect_error, fail      # noqa: E402

t = T.Suite("passwords")

ROLES = {"viewer": {"subscribe": ["sensor/#"]}}
C64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FAIL_LOG_BURST = 10       # gateway/auth.c
FAIL_LOG_WINDOW_S = 10
JOBS_PER_ADDR = 8         # gateway/auth_users.h


def salt(n=16):
    return "".join(C64[b % 64] for b in os.urandom(n))


def fake_sha512(rounds):
    """A well-formed SHA-512 crypt string that no password matches: checking
    it costs `rounds` rounds, and making it costs nothing."""
    return "$6$rounds=%d$%s$%s" % (rounds, salt(), salt(86))


def real_sha512(password, rounds):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt
    h = crypt.crypt(password, "$6$rounds=%d$%s$" % (rounds, salt()))
    check(h and h.startswith("$6$rounds="), "libcrypt made no SHA-512 hash: %r" % h)
    return h


def users_file(lines, name="users"):
    path = os.path.join(t.tmpdir(), name)
    with open(path, "w") as f:
        f.write("".join("%s:%s:%s\n" % l for l in lines))
    return path


def gateway(users, name, **auth):
    a = {"users_file": users}
    a.update(auth)
    return t.gateway({"auth": a, "roles": ROLES}, fresh=True, name=name)


def attempt(g, user, password, source=None, timeout=10.0):
    """One password auth on a new session: (reply, seconds from sending it
    to the reply)."""
    ws = g.ws(source=source)
    eq(ws.recv_json().get("op"), "hello", "first frame")
    t0 = time.monotonic()
    try:
        r = ws.request({"op": "auth", "id": 1, "user": user, "password": password}, timeout)
    except T.Closed as e:
        fail("session closed (%s %s) before the auth reply" % (e.code, e.reason))
    dt = time.monotonic() - t0
    ws.close(wait=0)
    return r, dt


_rate = []


def rounds_per_s():
    """SHA-512 crypt rounds per second of the daemon under test (ASan,
    valgrind...), measured once: tests size their slow hashes with it."""
    if not _rate:
        r0 = 300000
        # a slow build on a busy machine may take longer than the default
        # auth timeout over these rounds
        g = gateway(users_file([("cal", fake_sha512(r0), "viewer")], "cal-users"), "calibrate",
                    timeout_s=120)
        best = min(attempt(g, "cal", "x", timeout=120)[1] for _ in range(2))
        g.stop()
        _rate.append(r0 / max(best, 0.001))
        T.diag("the daemon checks %.0f SHA-512 rounds a second" % _rate[0])
    return _rate[0]


def rounds_for(seconds):
    return max(1000, min(999999999, int(rounds_per_s() * seconds)))


def log_lines(g, pattern, since_mark=True):
    return [l for l in g.log_text(since_mark).splitlines() if re.search(pattern, l)]


def metrics(g):
    status, _, body = g.http("/metrics")
    eq(status, 200, "/metrics status")
    out = {}
    for line in body.decode().splitlines():
        m = re.match(r'^(\w+(?:\{[^}]*\})?) (\S+)$', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


# ---------------------------------------------------------------------------
# issue 13: starvation

@t.test("one address floods wrong passwords: a user from another address logs in "
        "within 2 s, the flood is refused at once past %d checks (logged once per "
        "window)" % JOBS_PER_ADDR, timeout=60)
def _():
    # checks long enough, and a flood from enough threads, that more than
    # JOBS_PER_ADDR of its checks are under way at once even when each
    # handshake is slow (valgrind under load: one thread opened 7 sessions
    # a second, which 0.05 s checks on two workers kept up with): both
    # grow with MQG_TIME_SCALE (natively one thread and 0.05 s: more would
    # starve the CPUs alice's login needs)
    users = users_file([("victim", fake_sha512(rounds_for(0.05 * T.TIME_SCALE)), "viewer"),
                        ("alice", T.crypt_hash("alice-pw", "sha512"), "viewer")])
    g = gateway(users, "flood")
    stop = threading.Event()
    sent = [0]
    errors = []
    lock = threading.Lock()

    def flood():
        # as an attacker would: up to 300 sessions at a time (shared by the
        # threads), each waiting for its answer; one the gateway has closed
        # makes room for another
        held = {}
        try:
            while not stop.is_set():
                while len(held) < 300 // len(threads) and not stop.is_set():
                    ws = g.ws(source="127.0.0.1")
                    with lock:
                        n = sent[0]
                        sent[0] += 1
                    ws.send_json({"op": "auth", "id": 1, "user": "victim",
                                  "password": "guess-%d" % n})
                    held[ws.sock.fileno()] = ws
                readable = select.select(list(held), [], [], 0.05)[0]
                for fd in readable:
                    try:
                        gone = not held[fd].sock.recv(65536)
                    except OSError:
                        gone = True
                    if gone:
                        held.pop(fd).sock.close()
        except Exception as e:  # reported below
            errors.append(e)
        finally:
            for ws in held.values():
                ws.sock.close()

    threads = [threading.Thread(target=flood, daemon=True)
               for _ in range(max(1, int(T.TIME_SCALE)))]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    try:
        T.wait_for(lambda: sent[0] >= 300 or errors, timeout=20, what="300 flood attempts")
        times = []
        for i in range(3):
            r, dt = attempt(g, "alice", "alice-pw", source="127.0.0.2")
            eq(r.get("op"), "ok", "alice's login during the flood (%s)" % T.show(r))
            times.append(dt)
    finally:
        stop.set()
        for th in threads:
            th.join(10)
    elapsed = time.monotonic() - t0
    check(not errors, "the flood failed: %r" % errors[:1])
    T.diag("%d flood attempts; alice logged in after %s s"
           % (sent[0], ", ".join("%.2f" % x for x in times)))
    check(max(times) < T.scaled(2.0), "a login from another address took %.2f s" % max(times))
    busy = log_lines(g, r"refused at once: .* from this address \(from 127\.0\.0\.1\)")
    check(busy, "no refusal of the flood logged")
    windows = int(elapsed // FAIL_LOG_WINDOW_S) + 1
    check(len(busy) <= windows, "%d refusals logged in %.1f s: %s" % (len(busy), elapsed, busy[:3]))
    check(not log_lines(g, r"refused at once.*127\.0\.0\.2"), "alice's address was refused")
    g.assert_serving()


# ---------------------------------------------------------------------------
# issue 10: a late result on a closing session

def stuck_session(g):
    """A session whose client reads nothing and has let the gateway's pongs
    fill the connection: the gateway can write nothing more, so when it
    closes the session (even without a close frame going out) the session
    lingers, closing, for up to 10 s."""
    ws = g.ws(rcvbuf=2048, mss=536)
    ws.send_raw(b"".join(T.frame_bytes(T.TEXT, T.compact({"op": "ping", "id": "p" * 60 + str(i)})
                                       .encode()) for i in range(600)))
    return ws


def auth_frame(user, password):
    return T.frame_bytes(T.TEXT, T.compact({"op": "auth", "id": 1, "user": user,
                                            "password": password}).encode())


def stays_closing(g):
    """After the caller made the session close while its (right) password
    was being checked: the worker's answer does not authenticate it. Seen
    in the log and in /metrics' sessions by state while it lingers."""
    T.wait_for(lambda: log_lines(g, r"closing \d+"), timeout=30, what="the session closing")
    # the hash is sized by a calibration the machine's load may have
    # changed since: a generous wait
    T.wait_for(lambda: log_lines(g, r"user alice authenticated by password|"
                                    r"password of alice accepted after"),
               timeout=40, what="the password check's result")
    m = metrics(g)
    eq(m.get('mqgate_sessions{state="authenticated"}'), 0.0, "authenticated sessions")
    eq(m.get('mqgate_sessions{state="closing"}'), 1.0, "closing sessions")
    check(not log_lines(g, r"user alice authenticated by password"),
          "the closing session was authenticated: %s" % log_lines(g, r"alice"))
    eq(m.get('mqgate_auth_total{method="password",result="success"}'), 0.0,
       "password authentications counted as successes")


@t.test("a session closed (1003) while its password check runs stays closing when the "
        "right password is confirmed")
def _():
    users = users_file([("alice", T.crypt_hash("alice-pw"), "viewer")])
    g = gateway(users, "late-1003")
    ws = stuck_session(g)
    time.sleep(T.scaled(0.5))
    # one write: the gateway takes the auth, then closes for the binary
    # frame, before the worker can answer
    ws.send_raw(auth_frame("alice", "alice-pw") + T.frame_bytes(T.BINARY, b"x"))
    stays_closing(g)
    ws.sock.close()


@t.test("auth.timeout_s fires while the password check runs: the session stays closing "
        "when the right password is confirmed", timeout=80)
def _():
    # four times the timeout: the calibration ran under other load than
    # this check may (twice was seen to finish first on a busy machine)
    users = users_file([("alice", real_sha512("alice-pw", rounds_for(4.0)), "viewer")])
    g = gateway(users, "late-timeout", timeout_s=1)
    ws = stuck_session(g)
    ws.send_raw(auth_frame("alice", "alice-pw"))
    stays_closing(g)
    check(log_lines(g, r"closing 4401 \(authentication timeout\)"), "closed by the auth timeout")
    ws.sock.close()


# ---------------------------------------------------------------------------
# issue 3: shutdown with checks under way

@t.test("SIGTERM while password checks run: the workers' late answers touch nothing "
        "freed (exit 0, no sanitizer or valgrind report)", timeout=60)
def _():
    # The bug this guards against (a worker waking the freed libwebsockets
    # context) is a read inside libwebsockets, which ASan does not
    # instrument: the valgrind pass of scripts/test.sh is what catches it
    # (exit 99 from scripts/valgrind-mqgated).
    # long enough that every check is still under way when SIGTERM comes;
    # the shutdown waits for them only within its 6 s bound
    # (four seconds by the calibration, which the machine's load may have
    # changed since by a few times either way)
    users = users_file([("slow", fake_sha512(rounds_for(4.0)), "viewer")])
    g = gateway(users, "shutdown")
    held = []
    for i in range(JOBS_PER_ADDR):
        ws = g.ws()
        eq(ws.recv_json().get("op"), "hello", "first frame")
        held.append(ws)
    # all the checks at once (a slow build opens sessions slowly): the
    # workers take two, which run on for a second or more, the rest wait
    for i, ws in enumerate(held):
        ws.send_json({"op": "auth", "id": 1, "user": "slow", "password": "p%d" % i})
    time.sleep(T.scaled(0.3))
    check(not log_lines(g, r"password authentication of slow refused"),
          "a check ended before SIGTERM: the hash is too short for this build")
    t0 = time.monotonic()
    g.send_signal(signal.SIGTERM)
    for ws in held:
        ws.sock.close()
    rc = g.stop()
    T.diag("exit status %s, %.1f s after SIGTERM" % (rc, time.monotonic() - t0))
    eq(rc, 0, "exit status after SIGTERM")


# ---------------------------------------------------------------------------
# issue 14: the stand-in hash

def passwd_tool():
    for d in (os.path.dirname(t.mqgated), os.path.dirname(os.environ.get("MQGATED_REAL", "") or ".")):
        p = os.path.join(os.path.abspath(d), "mqgate-passwd")
        if os.access(p, os.X_OK):
            return p
    fail("no mqgate-passwd beside %s (or $MQGATED_REAL)" % t.mqgated)


@t.test("unknown users cost what a user with mqgate-passwd's default method and cost "
        "costs, whatever the file's first hash", timeout=60)
def _():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt
    fast = crypt.crypt("fast-pw", "$2b$04$" + salt(22))
    check(fast and fast.startswith("$2b$04$"), "no bcrypt from libcrypt")
    users = users_file([("fast", fast, "viewer")])
    p = subprocess.run([passwd_tool(), "-f", users, "-r", "viewer", "--stdin", "carol"],
                       input=b"carol-pw\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=T.scaled(15))
    eq(p.returncode, 0, "mqgate-passwd (%s)" % p.stderr.decode(errors="replace").strip())
    carol = [l for l in open(users).read().splitlines() if l.startswith("carol:")][0]
    default = carol.split(":")[1].rsplit("$", 2)[0] + "$"   # method and cost, no salt
    g = gateway(users, "standin")
    said = log_lines(g, r"unknown users cost a \S+ hash", since_mark=False)
    eq(len(said), 1, "the stand-in's line in the log")
    eq(re.search(r"unknown users cost a (\S+) hash", said[0]).group(1), default,
       "the stand-in's method and cost (mqgate-passwd's default)")

    # and it shows: an unknown name takes as long as carol, not as fast
    def median(user, password):
        ts = sorted(attempt(g, user, password)[1] for _ in range(7))
        return ts[3]
    m_fast, m_carol, m_unknown = (median("fast", "x"), median("carol", "x"),
                                  median("nobody", "x"))
    T.diag("median seconds: fast (bcrypt 4) %.4f, carol (default) %.4f, unknown %.4f"
           % (m_fast, m_carol, m_unknown))
    check(m_unknown > 0.3 * m_carol,
          "an unknown user answers in %.4f s, a default user in %.4f s" % (m_unknown, m_carol))


# ---------------------------------------------------------------------------
# issue 17: failed logins in the log

@t.test("200 failed authentications (passwords and tokens) from one address: at most "
        "%d lines per %d s, then one line with the count" % (FAIL_LOG_BURST, FAIL_LOG_WINDOW_S),
        timeout=90)
def _():
    users = users_file([("alice", T.crypt_hash("alice-pw", "sha512"), "viewer")])
    g = gateway(users, "faillog", jwt=t.jwt_config())
    t0 = time.monotonic()
    for i in range(200):
        ws = g.ws()
        eq(ws.recv_json().get("op"), "hello", "first frame")
        if i % 2:
            req = {"op": "auth", "id": 1, "user": "alice", "password": "wrong-%d" % i}
        else:
            req = {"op": "auth", "id": 1, "token": "not-a-token-%d" % i}
        expect_error(ws.request(req), "auth_failed", 1, "attempt %d" % i)
        ws.close(wait=0)
    elapsed = time.monotonic() - t0
    failed = r"(password authentication of alice|token) refused: .* \(from 127\.0\.0\.1\)$"
    more = r"warn: (\d+) more failed authentications from 127\.0\.0\.1 not logged$"

    def accounted():
        counts = [int(re.search(more, l).group(1)) for l in log_lines(g, more)]
        return len(log_lines(g, failed)) + sum(counts) == 200
    T.wait_for(accounted, timeout=FAIL_LOG_WINDOW_S + 5,
               what="every failure logged or counted (%d logged, counts %s)" % (
                   len(log_lines(g, failed)), log_lines(g, more)))
    logged = log_lines(g, failed)
    windows = int(elapsed // FAIL_LOG_WINDOW_S) + 1
    T.diag("%d attempts in %.1f s: %d lines, then %s" % (200, elapsed, len(logged),
                                                         log_lines(g, more)))
    check(len(logged) <= FAIL_LOG_BURST * windows,
          "%d failure lines for 200 attempts in %.1f s" % (len(logged), elapsed))
    check(any("token refused" in l for l in logged) and
          any("password authentication" in l for l in logged), "both kinds logged")


if __name__ == "__main__":
    sys.exit(t.run())
