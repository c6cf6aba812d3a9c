#!/bin/sh
# The Debian package, tested as an administrator would meet it: builds
# the .deb from a copy of this tree (dpkg-buildpackage -us -uc -b), lints
# it, installs it on this machine, checks the installed unit with
# systemd-analyze, runs the INSTALLED mqgated as its unit would (user
# mqgate, a notify socket, a watchdog) against a mosquitto of its own on a
# free loopback port, and purges the package again.
#
# Needs root, Debian 12 and the packages of MQG_BUILD_DEPS, MQG_RUN_DEPS
# and MQG_PACKAGE_DEPS (scripts/deps.sh); systemd need not be running.
# DEB_BUILD_OPTIONS is passed on: scripts/test.sh sets nocheck, having just
# run the suite. Prints TAP and writes tests/package/package-test.trs (one
# ":test-result:" line a check) and .log for scripts/test.sh's summary.
# MQG_KEEP_WORK=1 keeps the work directory (build logs, daemon log, trace).
set -u
cd "$(dirname "$0")/.." || exit 1

unit=/lib/systemd/system/mqgated.service
out=tests/package
mkdir -p "$out"
trs=$out/package-test.trs
log=$out/package-test.log
: > "$trs"
: > "$log"
n=0
failed=0
installed=no
work=

say() {
    echo "$*" | tee -a "$log"
}

# result PASS|FAIL DESCRIPTION
result() {
    n=$((n + 1))
    if [ "$1" = PASS ]; then
        say "ok $n - $2"
    else
        say "not ok $n - $2"
        failed=$((failed + 1))
    fi
    echo ":test-result: $1 $2" >> "$trs"
}

# Diagnostics: a file's last lines as TAP comments.
diag() {
    tail -n "${2:-30}" "$1" | sed 's/^/# /' | tee -a "$log"
}

# check DESCRIPTION COMMAND...: PASS when COMMAND exits 0.
check() {
    desc=$1
    shift
    if "$@" > "$work/check.out" 2>&1; then
        result PASS "$desc"
    else
        result FAIL "$desc"
        diag "$work/check.out"
    fi
}

finish() {
    if [ "$installed" = yes ]; then
        dpkg --purge mqgate > "$work/purge.out" 2>&1 || diag "$work/purge.out"
    fi
    say "1..$n"
    if [ "$failed" = 0 ]; then
        echo ":global-test-result: PASS" >> "$trs"
    else
        echo ":global-test-result: FAIL" >> "$trs"
    fi
    echo ":recheck: no" >> "$trs"
    echo ":copy-in-global-log: no" >> "$trs"
    if [ -n "$work" ]; then
        if [ "${MQG_KEEP_WORK:-0}" = 1 ]; then
            echo "# work directory kept: $work"
        else
            rm -rf "$work"
        fi
    fi
}

if [ "$(id -u)" != 0 ]; then
    echo "run as root: the test installs and purges the package" >&2
    exit 1
fi
work=$(mktemp -d)
# The daemon runs as user mqgate and reads its configuration from here.
chmod 0755 "$work"
trap finish EXIT
trap 'exit 1' INT TERM HUP

ver=$(dpkg-parsechangelog -l debian/changelog -S Version)
src=$work/mqgate-$ver

# --- build -------------------------------------------------------------------

# A copy of the tree as git sees it (tracked and new files, nothing
# ignored): the build must not clean or reconfigure the developer's tree.
if git rev-parse --git-dir > /dev/null 2>&1; then
    mkdir -p "$src"
    # shellcheck disable=SC2016 # the inner sh expands $f
    git ls-files -z --cached --others --exclude-standard |
        xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
        tar -cf - --null -T - | tar -xf - -C "$src"
else
    cp -a . "$src"
    if [ -f "$src/Makefile" ]; then
        make -C "$src" distclean > /dev/null 2>&1 || true
    fi
fi

( cd "$work" && dpkg-source -b "mqgate-$ver" ) > "$work/source.log" 2>&1
check "source package builds (dpkg-source -b)" \
    test -f "$work/mqgate_$ver.dsc"
[ -f "$work/mqgate_$ver.dsc" ] || diag "$work/source.log"

start=$(date +%s)
if ( cd "$src" && dpkg-buildpackage -us -uc -b ) > "$work/build.log" 2>&1; then
    result PASS "dpkg-buildpackage -us -uc -b (DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-}) in $(($(date +%s) - start)) s"
else
    result FAIL "dpkg-buildpackage -us -uc -b"
    diag "$work/build.log" 60
    exit 1
fi
deb=$(ls "$work"/mqgate_"$ver"_*.deb)
changes=$(ls "$work"/mqgate_"$ver"_*.changes)

# --- lintian -------------------------------------------------------------------

dsc=$work/mqgate_$ver.dsc
[ -f "$dsc" ] || dsc=
# shellcheck disable=SC2086 # no .dsc: no argument
lintian -EviIL +pedantic --fail-on error,warning "$changes" $dsc \
    > "$work/lintian.out" 2>&1
lrc=$?
grep -E '^[EWIPXO]: ' "$work/lintian.out" | sed 's/^/# lintian: /' | tee -a "$log"
if [ "$lrc" = 0 ] && ! grep -qE '^[EW]: ' "$work/lintian.out"; then
    result PASS "lintian -EviIL +pedantic: no error or warning not overridden"
else
    result FAIL "lintian -EviIL +pedantic: no error or warning not overridden"
    grep -vE '^N: ' "$work/lintian.out" | diag /dev/stdin 40
fi

# --- contents ------------------------------------------------------------------

contents_ok() {
    dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' > "$work/contents"
    rc=0
    for f in /usr/sbin/mqgated /etc/mqgate/mqgate.json "$unit" \
             /usr/lib/sysusers.d/mqgate.conf \
             /usr/share/man/man8/mqgated.8.gz \
             /usr/share/man/man5/mqgate.json.5.gz \
             /usr/share/doc/mqgate/copyright \
             /usr/share/doc/mqgate/examples/mqgate.json \
             /usr/share/doc/mqgate/examples/demo.json; do
        grep -qx "$f" "$work/contents" || { echo "missing: $f"; rc=1; }
    done
    # every dashboard file of the tree, and nothing else
    if [ -f www/index.html ]; then
        for f in www/*; do
            grep -qx "/usr/share/mqgate/$f" "$work/contents" ||
                { echo "missing: /usr/share/mqgate/$f"; rc=1; }
        done
        grep '^/usr/share/mqgate/www/.' "$work/contents" > "$work/www" || true
        while IFS= read -r f; do
            [ -e "${f#/usr/share/mqgate/}" ] ||
                { echo "not in www/: $f"; rc=1; }
        done < "$work/www"
    fi
    dpkg-deb -f "$deb" Depends
    return $rc
}
check "the package holds the daemon, conffile, unit, sysusers file, man pages, examples and dashboard" \
    contents_ok

# --- install -------------------------------------------------------------------

install_pkg() {
    installed=yes
    if ! dpkg -i "$deb"; then
        DEBIAN_FRONTEND=noninteractive apt-get install -f -y -q \
            --no-install-recommends || return 1
    fi
    [ "$(dpkg-query -W -f='${Status}' mqgate)" = "install ok installed" ]
}
check "dpkg -i installs it (apt-get install -f for its dependencies)" \
    install_pkg
if [ "$(dpkg-query -W -f='${Status}' mqgate 2>/dev/null)" != \
     "install ok installed" ]; then
    exit 1
fi

check "the conffile is /etc/mqgate/mqgate.json" \
    sh -c "dpkg-query -W -f='\${Conffiles}' mqgate | grep -q '^ /etc/mqgate/mqgate.json '"
check "postinst created the system user mqgate (no shell)" \
    sh -c 'getent passwd mqgate | grep -q ":/usr/sbin/nologin$"'
check "installed mqgated --version says $ver" \
    sh -c "/usr/sbin/mqgated --version | grep -qx 'mqgated $ver'"
check "installed config validates as user mqgate (mqgated --check-config, default path)" \
    runuser -u mqgate -- /usr/sbin/mqgated --check-config
check "installed config listens on loopback only" \
    python3 -c '
import json, sys
c = json.load(open("/etc/mqgate/mqgate.json"))
binds = [l.get("bind", "127.0.0.1") for l in c.get("listeners", [{}])]
print(binds)
sys.exit(0 if all(b in ("127.0.0.1", "::1", "lo") for b in binds) else 1)'

man_clean() {
    for page in /usr/share/man/man8/mqgated.8.gz \
                /usr/share/man/man5/mqgate.json.5.gz; do
        LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" \
            2> "$work/man.err" > /dev/null || return 1
        if [ -s "$work/man.err" ]; then
            echo "$page:"
            cat "$work/man.err"
            return 1
        fi
    done
}
check "installed man pages render without warnings (man --warnings)" man_clean

# --- the installed unit ------------------------------------------------------------

verify_clean() {
    systemd-analyze verify "$unit" > "$work/verify.out" 2>&1
    rc=$?
    cat "$work/verify.out"
    [ "$rc" = 0 ] && [ ! -s "$work/verify.out" ]
}
check "systemd-analyze verify $unit: no message" verify_clean

# --threshold counts tenths of the exposure shown: 20 means 2.0.
systemd-analyze security --offline=true --threshold=20 "$unit" \
    > "$work/security.out" 2>&1
sec_rc=$?
level=$(grep 'Overall exposure level' "$work/security.out" | sed 's/.*: //')
if [ "$sec_rc" = 0 ]; then
    result PASS "systemd-analyze security --offline=true: $level (at most 2.0)"
else
    result FAIL "systemd-analyze security --offline=true: $level (at most 2.0)"
    grep '✗' "$work/security.out" | diag /dev/stdin 40
fi

# --- the installed daemon, as its unit runs it -------------------------------------

# The smoke test takes User=, Group=, WatchdogSec=, SystemCallFilter= and
# RestrictAddressFamilies= from the installed unit.
strace_bin=$(command -v strace || true)
MQG_PT_WORK=$work MQG_PT_STRACE=$strace_bin \
    python3 - > "$work/smoke.out" 2>&1 <<'PY'
# Prints "ok - ..." / "not ok - ..." lines and "# ..." diagnostics.
import base64, hashlib, hmac, http.client, json, os, pwd, grp, re, signal
import socket, struct, subprocess, sys, time

work = os.environ["MQG_PT_WORK"]
strace = os.environ.get("MQG_PT_STRACE", "")
UNIT = "/lib/systemd/system/mqgated.service"


def tap(ok, desc, why=""):
    print(("ok - " if ok else "not ok - ") + desc, flush=True)
    if not ok and why:
        for line in str(why).splitlines()[-30:]:
            print("# " + line, flush=True)
    return ok


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


class Notify:
    """A fake $NOTIFY_SOCKET: an abstract datagram socket that also learns
    each sender's pid and uid (SO_PASSCRED), as systemd does."""

    def __init__(self):
        self.name = "mqgate-package-test-%d" % os.getpid()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind("\0" + self.name)
        self.got = []   # (pid, uid, "KEY=VALUE")
        self.pos = 0

    def _read(self, timeout):
        self.sock.settimeout(max(timeout, 0.01))
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return
        pid = uid = -1
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, uid, _ = struct.unpack("iII", cdata[:12])
        for line in data.decode(errors="replace").splitlines():
            self.got.append((pid, uid, line))

    def find(self, pred, timeout):
        """Any message so far, or the next one, that pred accepts, or
        None; what wait() has seen is not consumed."""
        end = time.monotonic() + timeout
        i = 0
        while True:
            for m in self.got[i:]:
                if pred(m[2]):
                    return m
            i = len(self.got)
            left = end - time.monotonic()
            if left <= 0:
                return None
            self._read(left)

    def wait(self, pred, timeout):
        """The next message (after the last one waited for) that pred
        accepts, or None."""
        end = time.monotonic() + timeout
        while True:
            while self.pos < len(self.got):
                m = self.got[self.pos]
                self.pos += 1
                if pred(m[2]):
                    return m
            left = end - time.monotonic()
            if left <= 0:
                return None
            self._read(left)


class WS:
    """Just enough RFC 6455 client for a smoke test."""

    def __init__(self, port, path):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Protocol: mqgate.v1\r\n\r\n"
                        % (path, port, key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise RuntimeError("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        if b" 101 " not in head.split(b"\r\n")[0] + b" " or accept not in head:
            raise RuntimeError("handshake refused: %r" % head[:200])

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81, 0x80 | n]) if n < 126 else \
            bytes([0x81, 0x80 | 126]) + struct.pack("!H", n)
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4]
                                          for i, b in enumerate(data)))

    def _need(self, n, end):
        while len(self.buf) < n:
            self.s.settimeout(max(end - time.monotonic(), 0.01))
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def frame(self, timeout=10):
        end = time.monotonic() + timeout
        self._need(2, end)
        op, n, off = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
        if n == 126:
            self._need(4, end)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10, end)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n, end)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return op, payload

    def recv(self, pred, timeout=10):
        """The next JSON message that pred accepts; a close frame raises."""
        end = time.monotonic() + timeout
        while True:
            op, payload = self.frame(end - time.monotonic())
            if op == 8:
                code = struct.unpack("!H", payload[:2])[0] if payload else None
                raise EOFError("closed with %s" % code)
            if op == 1:
                msg = json.loads(payload)
                if pred(msg):
                    return msg

    def close_code(self, timeout=10):
        end = time.monotonic() + timeout
        while True:
            op, payload = self.frame(end - time.monotonic())
            if op == 8:
                return struct.unpack("!H", payload[:2])[0] if payload else None


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def jwt_hs256(secret, claims):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, head + b"." + body, hashlib.sha256).digest()
    return (head + b"." + body + b"." + b64url(sig)).decode()


def http_get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("Content-Type") or "", body


def unit_value(key, default=""):
    value = default
    with open(UNIT) as f:
        for line in f:
            if line.startswith(key + "="):
                value = line.split("=", 1)[1].strip()
    return value


# --- the service's view of its files ------------------------------------------
user = unit_value("User", "root")
pw = pwd.getpwnam(user)
gid = grp.getgrnam(unit_value("Group", user)).gr_gid
etc = os.path.join(work, "etc")
os.mkdir(etc, 0o755)
secret = os.urandom(32).hex().encode()
secret_file = os.path.join(etc, "jwt.secret")
with open(secret_file, "wb") as f:
    f.write(secret + b"\n")
os.chown(secret_file, 0, gid)
os.chmod(secret_file, 0o640)

# A users file, as secret as the key: one yescrypt hash (Debian's default,
# and the hungriest for memory and system calls).
with __import__("warnings").catch_warnings():
    __import__("warnings").simplefilter("ignore")
    import crypt
alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
salt = "".join(alphabet[b % 64] for b in os.urandom(16))
password = os.urandom(12).hex()
pw_hash = crypt.crypt(password, "$y$j9T$" + salt + "$")
users_file = os.path.join(etc, "users")
with open(users_file, "w") as f:
    f.write("# package test\npkgpass:%s:viewer\n" % pw_hash)
os.chown(users_file, 0, gid)
os.chmod(users_file, 0o640)

mq_port, gw_port = free_port(), free_port()
# The installed configuration, with its ports moved to free ones (a broker
# or gateway of this machine may hold 1883 or 8080) and an HS256 JWT key
# that only the service's group may read.
with open("/etc/mqgate/mqgate.json") as f:
    cfg = json.load(f)
cfg["listeners"][0]["port"] = gw_port
cfg["listeners"][0]["static_dir"] = "/usr/share/mqgate/www"
cfg["broker"]["uris"] = ["tcp://127.0.0.1:%d" % mq_port]
cfg.setdefault("auth", {})["jwt"] = {"alg": "HS256", "secret_file": secret_file}
cfg["auth"]["users_file"] = users_file
cfg.setdefault("roles", {})["viewer"] = {"subscribe": ["sensor/#"]}
cfg_file = os.path.join(etc, "mqgate.json")
with open(cfg_file, "w") as f:
    json.dump(cfg, f, indent=2)

as_user = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % gid,
           "--init-groups", "--no-new-privs"]
r = subprocess.run(as_user + ["/usr/sbin/mqgated", "-c", cfg_file,
                              "--check-config"],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
out = r.stdout.decode(errors="replace")
tap(r.returncode == 0 and "warning" not in out,
    "--check-config as %s reads 0640 root:%s secrets, no warning"
    % (user, grp.getgrgid(gid).gr_name), out)

mosq_conf = os.path.join(work, "mosquitto.conf")
with open(mosq_conf, "w") as f:
    f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
            % mq_port)
os.chmod(mosq_conf, 0o644)
mosq_log = open(os.path.join(work, "mosquitto.log"), "wb")
mosq = subprocess.Popen(["/usr/sbin/mosquitto", "-c", mosq_conf],
                        stdin=subprocess.DEVNULL, stdout=mosq_log,
                        stderr=subprocess.STDOUT)
daemon = None
trace = os.path.join(work, "trace", "mqgated.strace")
notify = Notify()
try:
    if not wait_port(mq_port, 10):
        tap(False, "mosquitto listens on port %d" % mq_port)
        sys.exit(1)

    run = as_user[:]
    if strace:
        os.mkdir(os.path.dirname(trace), 0o755)
        os.chown(os.path.dirname(trace), pw.pw_uid, gid)
        run += [strace, "-f", "-qq", "-o", trace]
    run += ["/usr/sbin/mqgated", "-c", cfg_file]
    # systemd passes WatchdogSec= as WATCHDOG_USEC; a short one keeps the
    # test short (the daemon pings at half of whatever it is given).
    wd = 2000000 if unit_value("WatchdogSec", "0") not in ("", "0") else 0
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "NOTIFY_SOCKET": "@" + notify.name}
    if wd:
        env["WATCHDOG_USEC"] = str(wd)
    daemon_log = open(os.path.join(work, "mqgated.log"), "wb")
    started = time.monotonic()
    daemon = subprocess.Popen(run, stdin=subprocess.DEVNULL, env=env,
                              stdout=daemon_log, stderr=subprocess.STDOUT)

    def daemon_says():
        daemon_log.flush()
        with open(os.path.join(work, "mqgated.log"), errors="replace") as f:
            return f.read()

    m = notify.wait(lambda s: s == "READY=1", 15)
    pid = m[0] if m else -1
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        exe = ""
    if not tap(m is not None and m[1] == pw.pw_uid and
               exe == "/usr/sbin/mqgated",
               "installed mqgated sends READY=1 as %s from its main process "
               "(%.1f s)" % (user, time.monotonic() - started),
               "notify: %r\nexe: %s\n%s" % (notify.got, exe, daemon_says())):
        sys.exit(1)
    if wd:
        t0 = time.monotonic()
        pings = [notify.wait(lambda s: s == "WATCHDOG=1", wd / 1e6)
                 for _ in range(3)]
        tap(all(p and p[0] == pid for p in pings) and
            time.monotonic() - t0 < 2.0 * wd / 1e6,
            "WATCHDOG=1 every WATCHDOG_USEC/2 from the main process "
            "(WATCHDOG_USEC=%d)" % wd, repr(notify.got))
    tap(notify.find(lambda s: s.startswith("STATUS=broker up"), 15) is not None,
        "STATUS= reports the broker up", repr(notify.got))
    tap("event loop: epoll" in daemon_says(),
        "the service loop runs on epoll (libwebsockets-evlib-uv loaded)",
        daemon_says())

    status, ctype, body = http_get(gw_port, "/healthz")
    tap(status == 200, "GET /healthz is 200", "%s %s" % (status, body[:200]))
    status, ctype, body = http_get(gw_port, "/index.html")
    with open("/usr/share/mqgate/www/index.html", "rb") as f:
        page = f.read()
    tap(status == 200 and ctype.startswith("text/html") and body == page,
        "the installed dashboard is served from /usr/share/mqgate/www",
        "%s %s %d bytes" % (status, ctype, len(body)))

    ws = None
    try:
        ws = WS(gw_port, cfg["listeners"][0].get("path", "/ws"))
        hello = ws.recv(lambda m: True)
        tap(hello.get("op") == "hello" and hello.get("proto") == 1 and
            sorted(hello.get("auth", [])) == ["password", "token"],
            "WebSocket: hello offers password and token", hello)
        token = jwt_hs256(secret, {"sub": "pkgtest", "roles": ["viewer"],
                                   "exp": int(time.time()) + 600})
        ws.send({"op": "auth", "id": 1, "token": token})
        ok = ws.recv(lambda m: m.get("id") == 1)
        st = ws.recv(lambda m: m.get("op") == "status")
        tap(ok.get("op") == "ok" and ok.get("user") == "pkgtest" and
            st.get("broker") == "up",
            "WebSocket: auth with a JWT (key read as %s), then status up"
            % user, "%r %r" % (ok, st))
        ws.send({"op": "sub", "id": 2, "topic": "sensor/#"})
        ok = ws.recv(lambda m: m.get("id") == 2)
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mq_port),
                        "-t", "sensor/pkg/1", "-m", '{"t":21.5}'], check=True)
        msg = ws.recv(lambda m: m.get("op") == "msg")
        tap(ok.get("op") == "ok" and msg.get("topic") == "sensor/pkg/1" and
            msg.get("payload") == {"t": 21.5},
            "WebSocket: sub, and a broker message arrives", "%r %r" % (ok, msg))
    except Exception as e:
        tap(False, "WebSocket session", "%s: %s\n%s"
            % (type(e).__name__, e, daemon_says()))
    try:
        ws2 = WS(gw_port, cfg["listeners"][0].get("path", "/ws"))
        ws2.recv(lambda m: m.get("op") == "hello")
        ws2.send({"op": "auth", "id": 1, "user": "pkgpass",
                  "password": password})
        ok = ws2.recv(lambda m: m.get("id") == 1, 15)
        tap(ok.get("op") == "ok" and ok.get("roles") == ["viewer"],
            "WebSocket: auth with a yescrypt password (users file read as %s)"
            % user, ok)
        ws2.s.close()
    except Exception as e:
        tap(False, "WebSocket: password session", "%s: %s\n%s"
            % (type(e).__name__, e, daemon_says()))

    daemon_pid = pid
    os.kill(daemon_pid, signal.SIGHUP)
    a = notify.wait(lambda s: s == "RELOADING=1", 10)
    b = notify.wait(lambda s: s == "READY=1", 10)
    alive = False
    if ws:
        try:
            ws.send({"op": "ping", "id": 3})
            alive = ws.recv(lambda m: m.get("id") == 3).get("op") == "pong"
        except Exception as e:
            print("# ping after reload: %s" % e)
    tap(a is not None and b is not None and alive,
        "SIGHUP (ExecReload): RELOADING=1, READY=1, the session stays",
        repr(notify.got[-6:]) + "\n" + daemon_says())

    os.kill(daemon_pid, signal.SIGTERM)
    stopping = notify.wait(lambda s: s == "STOPPING=1", 10)
    code = None
    if ws:
        try:
            code = ws.close_code()
        except Exception as e:
            print("# close: %s" % e)
    try:
        rc = daemon.wait(15)
    except subprocess.TimeoutExpired:
        rc = None
    tap(stopping is not None and code == 1001 and rc == 0,
        "SIGTERM: STOPPING=1, sessions closed with 1001, exit status 0",
        "stopping=%r close=%r rc=%r\n%s" % (stopping, code, rc, daemon_says()))
finally:
    if daemon and daemon.poll() is None:
        daemon.kill()
        daemon.wait()
    mosq.terminate()
    mosq.wait()

if not strace:
    tap(False, "strace is installed (MQG_PACKAGE_DEPS): no sandbox check")
    sys.exit(0)

# --- did the daemon stay inside its unit's sandbox? ------------------------------
# Without systemd as PID 1 the sandbox cannot be applied here; the trace of
# the run above is checked against what the unit allows instead.


def filter_groups():
    text = subprocess.run(["systemd-analyze", "syscall-filter"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          check=True).stdout.decode()
    groups, cur = {}, None
    for line in text.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.strip(), set())
        elif cur is not None and line.strip() and \
                not line.strip().startswith("#"):
            cur.add(line.strip())
    return groups


def expand(groups, items):
    out = set()
    for it in items:
        if it.startswith("@"):
            out |= expand(groups, groups.get(it, ()))
        else:
            out.add(it)
    return out


groups = filter_groups()
allowed, denied = set(), set()
with open(UNIT) as f:
    for line in f:
        if line.startswith("SystemCallFilter="):
            v = line.split("=", 1)[1].strip()
            if v.startswith("~"):
                denied |= expand(groups, v[1:].split())
            else:
                allowed |= expand(groups, v.split())
allowed -= denied
families = set(unit_value("RestrictAddressFamilies").split())

# Files the sandbox hides that the daemon reads but does without.
optional_files = {
    # Paho's trace header (Log_initialize): stat() first, fine without.
    "/proc/version",
}
calls, bad_mem, bad_files, bad_fam = {}, [], [], set()
call_re = re.compile(r"^\d+\s+([a-z_0-9]+)\((.*)")
with open(trace, errors="replace") as f:
    for line in f:
        m = call_re.match(line)
        if not m:
            continue
        name, args = m.groups()
        calls[name] = calls.get(name, 0) + 1
        if name in ("mmap", "mprotect", "pkey_mprotect"):
            prot = re.search(r"PROT_[A-Z_|]+", args)
            prot = prot.group(0) if prot else ""
            if "PROT_EXEC" in prot and (name != "mmap" or "PROT_WRITE" in prot):
                bad_mem.append(line.strip())
        if name in ("open", "openat", "stat", "newfstatat", "access",
                    "faccessat", "faccessat2", "statx") and \
                not re.search(r"= -1 E", line):
            p = re.search(r'"(/[^"]*)"', args)
            p = p.group(1) if p else ""
            if p in optional_files:
                continue
            if re.match(r"/proc/(?!self/|thread-self/|\d+/)", p + "/") or \
                    p.startswith(("/home/", "/root/", "/run/user/")) or \
                    (p.startswith("/dev/") and p not in (
                        "/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                        "/dev/urandom", "/dev/tty", "/dev/log")):
                bad_files.append(line.strip())
        if name == "socket":
            fam = args.split(",", 1)[0].strip()
            if fam not in families:
                bad_fam.add(fam)

unknown = sorted(c for c in calls if c not in allowed and c != "exit")
print("# %d distinct system calls traced" % len(calls))
tap(not unknown and allowed,
    "every system call it made is allowed by the unit's SystemCallFilter",
    "not allowed: %s" % ", ".join(unknown))
tap(not bad_mem, "no writable+executable memory (MemoryDenyWriteExecute)",
    "\n".join(bad_mem[:10]))
tap(not bad_files,
    "no file outside its sandbox (ProcSubset=pid, PrivateDevices, ProtectHome)",
    "\n".join(bad_files[:10]))
tap(not bad_fam, "sockets only of RestrictAddressFamilies (%s)"
    % " ".join(sorted(families)), " ".join(sorted(bad_fam)))
PY
smoke_rc=$?
while IFS= read -r line; do
    case "$line" in
    "ok - "*) result PASS "${line#ok - }" ;;
    "not ok - "*) result FAIL "${line#not ok - }" ;;
    "#"*) say "$line" ;;
    *) say "# $line" ;;
    esac
done < "$work/smoke.out"
check "the smoke test ran to its end" test "$smoke_rc" = 0

# --- purge ---------------------------------------------------------------------

purge_clean() {
    dpkg --purge mqgate || return 1
    installed=no
    for f in /usr/sbin/mqgated /etc/mqgate "$unit"; do
        [ ! -e "$f" ] || { echo "left behind: $f"; return 1; }
    done
}
check "dpkg --purge removes it, /etc/mqgate included" purge_clean

[ "$failed" = 0 ]
