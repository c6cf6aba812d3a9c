#!/usr/bin/python3
"""mqgate-passwd: users made with each hash method log in to the real
daemon with their roles; password changes, TOTP secrets (otpauth:// URI),
deletion, SIGHUP; every other byte of the file kept; bad input refused
with the file untouched; the terminal prompt does not echo."""

import base64
import os
import pty
import re
import select
import signal
import stat
import subprocess
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq, expect_error, fail      # noqa: E402

t = T.Suite("passwd")

ROLES = {
    "viewer": {"subscribe": ["sensor/#"], "max_qos": 1},
    "operator": {"subscribe": ["device/+/status"], "publish": ["device/+/cmd"]},
}
C64 = r"[./0-9A-Za-z]"
LINE_RE = {
    "yescrypt": r"\$y\$%s+\$%s+\$%s{43}" % (C64, C64, C64),
    "sha-512": r"\$6\$%s{1,16}\$%s{86}" % (C64, C64),
    "bcrypt": r"\$2b\$10\$%s{53}" % C64,
}
URI_RE = re.compile(r"^otpauth://totp/mqgate:(?P<label>[A-Za-z0-9._~%-]+)\?secret=(?P<secret>[A-Z2-7]+)"
                    r"&issuer=mqgate&algorithm=SHA1&digits=6&period=30$")
RELOAD_NOTE = "systemctl reload mqgated"
SECRETS = []          # every password given to the tool: never in a file or an output


def passwd_tool():
    """mqgate-passwd, built beside the daemon (or beside MQGATED_REAL when
    MQGATED is a wrapper such as scripts/valgrind-mqgated)."""
    for d in (os.path.dirname(t.mqgated), os.path.dirname(os.environ.get("MQGATED_REAL", "") or ".")):
        p = os.path.join(os.path.abspath(d), "mqgate-passwd")
        if os.access(p, os.X_OK):
            return p
    fail("no mqgate-passwd beside %s (or $MQGATED_REAL)" % t.mqgated)


def run(args, password=None, stdin=None):
    """Runs the tool; password is sent as one line with --stdin. Returns
    (status, stdout, stderr) after checking that no password given so far
    appears in either and that no sanitizer spoke."""
    argv = [passwd_tool()] + list(args)
    if password is not None:
        SECRETS.append(password)
        argv.insert(-1, "--stdin")
        stdin = password.encode() + b"\n"
    p = subprocess.run(argv, input=stdin if stdin is not None else b"", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=T.scaled(15))
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    marks = [m for m in T.SANITIZER_MARKS if m in err]
    check(not marks, "sanitizer report from mqgate-passwd %s:\n%s" % (args, err[-3000:]))
    for s in SECRETS:
        if len(s) >= 4:
            check(s not in out and s not in err, "a password in the output of %s" % (args,))
    return p.returncode, out, err


def ok_run(args, password=None):
    rc, out, err = run(args, password)
    eq(rc, 0, "exit status of mqgate-passwd %s (stderr: %s)" % (" ".join(args), err.strip()))
    check(RELOAD_NOTE in err, "no reload reminder on stderr: %r" % err)
    return out, err


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    for s in SECRETS:
        if len(s) >= 4:
            check(s.encode() not in data, "a plaintext password in %s" % path)
    return data


def user_line(path, user):
    lines = [l for l in read(path).decode().splitlines() if l.startswith(user + ":")]
    eq(len(lines), 1, "lines for %s in %s" % (user, path))
    return lines[0]


def fields(path, user):
    return user_line(path, user).split(":")


def no_leftovers(path):
    d, base = os.path.split(path)
    extra = [n for n in os.listdir(d) if n.startswith("." + base)]
    eq(extra, [], "temporary files left beside %s" % base)


def lines_of(data):
    """Lines with their ends, as the parser cuts them (at each \\n)."""
    return [l for l in re.split(rb"(?<=\n)", data) if l]


def uri_secret(out, user):
    """The secret of the one otpauth:// URI line in out, checked."""
    lines = out.splitlines()
    eq(len(lines), 1, "lines on stdout: %r" % out)
    m = URI_RE.match(lines[0])
    check(m, "not the expected otpauth:// URI: %r" % lines[0])
    eq(urllib.parse.unquote(m.group("label"), errors="strict"), user, "user in the URI label")
    eq(m.group("label"), urllib.parse.quote(user, safe=""), "percent-encoding of the label")
    secret = m.group("secret")
    eq(len(base64.b32decode(secret + "=" * (-len(secret) % 8))), 20, "bytes of the TOTP secret")
    return secret


# --- the daemon -------------------------------------------------------------

def daemon_users():
    return os.path.join(t.root, "users")


def gw():
    return t.gateway({"auth": {"users_file": daemon_users()}, "roles": ROLES})


def reload(g):
    """SIGHUP, then wait until the daemon says it reloaded."""
    n = g.log_text().count("configuration reloaded")
    g.send_signal(signal.SIGHUP)
    T.wait_for(lambda: g.log_text().count("configuration reloaded") > n, timeout=10,
               what="\"configuration reloaded\" in the log")
    check("reload refused" not in g.log_text(True), "the reload was refused:\n%s" % T.tail(g.log_text(True), 20))


def login(user, password, otp=None):
    """Password auth: the sorted roles on success, else None (after
    checking auth_failed and the 4401 close)."""
    ws = gw().ws()
    ws.recv_json()
    req = {"op": "auth", "id": 1, "user": user, "password": password}
    if otp is not None:
        req["otp"] = otp
    r = ws.request(req, timeout=T.scaled(10))
    if r.get("op") == "ok":
        eq((r.get("id"), r.get("user")), (1, user), "auth reply")
        ws.close(wait=0)
        return sorted(r.get("roles", []))
    expect_error(r, "auth_failed", 1, "password auth as %r" % user)
    ws.expect_close(4401, what="session after auth_failed")
    return None


def code_at(secret, offset):
    """The TOTP code offset seconds from now, far enough from a step's end
    that the daemon checks it in the same step."""
    while 30 - time.time() % 30 < 2.5:
        time.sleep(0.1)
    return T.totp(secret, time.time() + offset)


# --- tests --------------------------------------------------------------------

@t.test("--version and --help exit 0; a bad option exits 1")
def _():
    rc, out, err = run(["--version"])
    eq((rc, out), (0, "mqgate-passwd 0.1.0\n"), "--version")
    rc, out, err = run(["--help"])
    eq(rc, 0, "--help status")
    check("--totp" in out and "-d" in out, "--help output: %r" % out)
    rc, out, err = run(["--frobnicate", "x"])
    eq(rc, 1, "status for an unknown option")
    check(err, "no message for an unknown option")


@t.test("new users with --stdin: yescrypt, sha-512, bcrypt; the line format; no plaintext; mode 0640")
def _():
    path = daemon_users()
    out, err = ok_run(["-f", path, "-r", "viewer,operator", "alice"], "wonderland-1")
    eq(out, "", "stdout without --totp")
    eq(stat.S_IMODE(os.stat(path).st_mode), 0o640, "mode of a new file")
    ok_run(["-f", path, "-m", "sha-512", "-r", "viewer", "bob"], "builder-22")
    ok_run(["-f", path, "-m", "bcrypt", "carol"], "c4rol-pass")
    text = read(path).decode()
    eq([l.split(":")[0] for l in text.splitlines()], ["alice", "bob", "carol"], "users, in order")
    check(text.endswith("\n"), "no newline at the end: %r" % text[-5:])
    for user, method, roles in (("alice", "yescrypt", "viewer,operator"), ("bob", "sha-512", "viewer"),
                                ("carol", "bcrypt", "")):
        line = user_line(path, user)
        check(re.fullmatch(r"%s:%s:%s" % (user, LINE_RE[method], re.escape(roles)), line),
              "%s's line does not read name:%s-hash:%s: %r" % (user, method, roles, line))
    no_leftovers(path)


@t.test("the daemon accepts each user's password with the roles given, and nothing else")
def _():
    eq(login("alice", "wonderland-1"), ["operator", "viewer"], "alice's roles")
    eq(login("bob", "builder-22"), ["viewer"], "bob's roles")
    eq(login("carol", "c4rol-pass"), [], "carol's roles")
    eq(login("alice", "builder-22"), None, "alice with bob's password")
    eq(login("carol", "c4rol-pas"), None, "carol with a wrong password")


@t.test("a changed password: the old one fails and the new one works after SIGHUP; roles kept", timeout=30)
def _():
    g = gw()
    path = daemon_users()
    before = fields(path, "alice")
    out, err = ok_run(["-f", path, "alice"], "looking-glass-2")
    check("changed" in err, "stderr does not say changed: %r" % err)
    after = fields(path, "alice")
    eq((after[0], after[2:]), (before[0], before[2:]), "alice's name and roles")
    check(after[1] != before[1] and after[1].startswith("$y$"), "the hash did not change to a new yescrypt one")
    eq(login("alice", "wonderland-1"), ["operator", "viewer"], "the old password before the reload")
    reload(g)
    eq(login("alice", "wonderland-1"), None, "the old password after the reload")
    eq(login("alice", "looking-glass-2"), ["operator", "viewer"], "the new password after the reload")
    ok_run(["-f", path, "-m", "sha-512", "-r", "viewer", "alice"], "looking-glass-3")
    eq(fields(path, "alice")[2], "viewer", "roles set with -r")
    reload(g)
    eq(login("alice", "looking-glass-3"), ["viewer"], "alice after -r viewer")


@t.test("--totp prints an otpauth:// URI; password plus code logs in; secret kept, renewed, removed",
        timeout=40)
def _():
    g = gw()
    path = daemon_users()
    user = "d\u00f6rte ops"
    out, err = ok_run(["-f", path, "--totp", "-r", "operator", user], "totp-pass-1")
    s1 = uri_secret(out, user)
    eq(fields(path, user)[3:], [s1], "the TOTP field of the line")
    reload(g)
    eq(login(user, "totp-pass-1"), None, "password without a code")
    eq(login(user, "totp-pass-1", "000000" if code_at(s1, -30) != "000000" else "111111"), None,
       "password with a wrong code")
    eq(login(user, "totp-pass-1", code_at(s1, -30)), ["operator"], "password and the previous step's code")

    out, err = ok_run(["-f", path, user], "totp-pass-2")
    eq(out, "", "stdout of a password change (the secret is not printed again)")
    eq(fields(path, user)[2:], ["operator", s1], "roles and secret kept")
    reload(g)
    eq(login(user, "totp-pass-2", code_at(s1, 0)), ["operator"], "new password and a code of the kept secret")

    out, err = ok_run(["-f", path, "--totp", user], "totp-pass-3")
    s2 = uri_secret(out, user)
    check(s2 != s1, "--totp gave the same secret again")
    eq(fields(path, user)[2:], ["operator", s2], "roles kept, secret renewed")
    reload(g)
    eq(login(user, "totp-pass-3", code_at(s1, 30)), None, "a code of the old secret")
    eq(login(user, "totp-pass-3", code_at(s2, 30)), ["operator"], "a code of the new secret")

    out, err = ok_run(["-f", path, "--no-totp", user], "totp-pass-4")
    eq(out, "", "stdout of --no-totp")
    eq(fields(path, user)[2:], ["operator"], "line after --no-totp (no fourth field)")
    reload(g)
    eq(login(user, "totp-pass-4"), ["operator"], "the password alone after --no-totp")


@t.test("-d deletes the user's line only; after SIGHUP its password fails", timeout=30)
def _():
    g = gw()
    path = daemon_users()
    before = read(path)
    ok_run(["-f", path, "-d", "bob"])
    eq(read(path), b"".join(l for l in lines_of(before) if not l.startswith(b"bob:")), "file after -d bob")
    eq(login("bob", "builder-22"), ["viewer"], "bob before the reload")
    reload(g)
    eq(login("bob", "builder-22"), None, "bob after the reload")
    eq(login("carol", "c4rol-pass"), [], "carol still there")
    no_leftovers(path)


@t.test("comments, blank lines, CRLF ends, a BOM, indentation and other users are kept byte for byte")
def _():
    h1, h2 = T.crypt_hash("other-pass-1", "sha512"), T.crypt_hash("other-pass-2")
    secret = base64.b32encode(b"0123456789abcdef").decode().rstrip("=").lower()
    orig = ("\ufeff# mqgate users\r\n\r\n   # indented comment\n\t\n"
            "eve:%s:viewer:%s\r\n"
            "# before frank\n"
            "frank:%s:viewer,operator\n"
            "gina:%s::%s") % (h1, secret, h2, h1, secret)
    # far beyond the tool's first buffer
    orig = orig.replace("# before frank\n", "".join("# filler %03d %s\n" % (i, "x" * 60) for i in range(150))
                        + "# before frank\n")
    path = os.path.join(t.tmpdir(), "users")
    with open(path, "wb") as f:
        f.write(orig.encode())
    os.chmod(path, 0o600)
    orig = orig.encode()
    old = lines_of(orig)

    def same_but(i, new_line, what):
        got = lines_of(read(path))
        eq(len(got), len(old), "lines after %s" % what)
        for k, (a, b) in enumerate(zip(old, got)):
            if k != i:
                eq(b, a, "line %d after %s" % (k + 1, what))
        check(re.fullmatch(new_line, got[i]), "line %d after %s: %r" % (i + 1, what, got[i]))
        return got

    ok_run(["-f", path, "frank"], "frank-new-1")
    old = same_but(156, rb"frank:\$y\$[^:]+:viewer,operator\n", "changing frank")
    ok_run(["-f", path, "eve"], "eve-new-1")
    old = same_but(4, rb"eve:\$y\$[^:]+:viewer:" + secret.encode() + rb"\r\n", "changing eve (CRLF, TOTP kept)")
    ok_run(["-f", path, "--no-totp", "gina"], "gina-new-1")
    old = same_but(157, rb"gina:\$y\$[^:]+:", "changing the last line, which has no end")
    check(read(path).startswith(b"\xef\xbb\xbf# mqgate users\r\n"), "BOM and first line")

    before = read(path)
    ok_run(["-f", path, "-r", "viewer", "hank"], "hank-new-1")
    after = read(path)
    eq(after[:len(before) + 1], before + b"\n", "the file before the new user (one \\n ended the last line)")
    check(re.fullmatch(rb"hank:\$y\$[^:]+:viewer\n", after[len(before) + 1:]),
          "the new user's line: %r" % after[len(before) + 1:])
    ok_run(["-f", path, "-d", "eve"])
    eq(read(path), b"".join(l for l in lines_of(after) if not l.startswith(b"eve:")), "the file after -d eve")
    eq(stat.S_IMODE(os.stat(path).st_mode), 0o600, "mode kept")
    no_leftovers(path)


@t.test("bad input exits 1 with a message and leaves the file as it was")
def _():
    path = os.path.join(t.tmpdir(), "users")
    ok_run(["-f", path, "-r", "viewer", "ivan"], "ivan-pass-1")
    st0 = os.stat(path)
    data = read(path)
    cases = [
        (["-f", path, "--stdin", "ivan"], b"\n", "empty password"),
        (["-f", path, "--stdin", "ivan"], b"", "empty password"),
        (["-f", path, "--stdin", "ivan"], b"x" * 512 + b"\n", "longer than 511"),
        (["-f", path, "--stdin", "ivan"], b"ab\0cd\n", "NUL"),
        (["-f", path, "--stdin", "jo:e"], b"pw-jo-1\n", "':'"),
        (["-f", path, "--stdin", "jo\ne"], b"pw-jo-1\n", "control character"),
        (["-f", path, "--stdin", "#joe"], b"pw-jo-1\n", "'#'"),
        (["-f", path, "--stdin", "j" * 257], b"pw-jo-1\n", "longer than 256"),
        (["-f", path, "--stdin", ""], b"pw-jo-1\n", "empty user name"),
        (["-f", path, "--stdin", "-r", "viewer,,operator", "joe"], b"pw-jo-1\n", "empty role"),
        (["-f", path, "--stdin", "-r", "viewer,", "joe"], b"pw-jo-1\n", "empty role"),
        (["-f", path, "--stdin", "-r", "a,b:c", "joe"], b"pw-jo-1\n", "A-Z a-z 0-9 _ . -"),
        (["-f", path, "--stdin", "-r", "view er", "joe"], b"pw-jo-1\n", "space"),
        (["-f", path, "--stdin", "-m", "md5", "joe"], b"pw-jo-1\n", "unknown method"),
        (["-f", path, "--stdin", "--totp", "--no-totp", "joe"], b"pw-jo-1\n", "exclude"),
        (["-f", path, "-d", "nobody"], b"", "no user \"nobody\""),
        (["-f", path, "-d", "--stdin", "ivan"], b"pw-jo-1\n", "-d"),
        (["-f", path, "--stdin"], b"pw-jo-1\n", "no user"),
        (["-f", path, "--stdin", "a", "b"], b"pw-jo-1\n", "one user"),
    ]
    SECRETS.append("pw-jo-1")
    for args, stdin, msg in cases:
        rc, out, err = run(args, stdin=stdin)
        eq(rc, 1, "exit status for %r with %r" % (args[2:], stdin[:20]))
        check(msg in err, "no %r in the message for %r: %r" % (msg, args[2:], err))
        eq(out, "", "stdout for %r" % (args[2:],))
        check(RELOAD_NOTE not in err, "a reload reminder although nothing changed")
    st1 = os.stat(path)
    eq(read(path), data, "the file after refused runs")
    eq((st1.st_ino, st1.st_mtime_ns), (st0.st_ino, st0.st_mtime_ns), "inode and mtime")
    no_leftovers(path)
    rc, out, err = run(["-f", os.path.join(t.tmpdir(), "nofile"), "-d", "ivan"])
    eq(rc, 1, "status for -d on a missing file")
    check("nofile" in err, "the message does not name the file: %r" % err)


@t.test("an existing file that does not validate is refused, naming FILE:LINE, and left alone")
def _():
    path = os.path.join(t.tmpdir(), "users")
    data = ("# users\nkim:%s:viewer\nlee:plaintext-pass:viewer\n" % T.crypt_hash("kim-pass-1")).encode()
    with open(path, "wb") as f:
        f.write(data)
    SECRETS.append("plaintext-pass")
    rc, out, err = run(["-f", path, "--stdin", "kim"], stdin=b"kim-pass-2\n")
    SECRETS.remove("plaintext-pass")
    eq(rc, 1, "exit status")
    check("%s:3:" % path in err, "the message does not name %s:3: %r" % (path, err))
    eq(read(path), data, "the file")


@t.test("mode, owner and group of the file are kept; a symbolic link stays and its target changes")
def _():
    d = t.tmpdir()
    path = os.path.join(d, "users")
    ok_run(["-f", path, "-r", "viewer", "max"], "max-pass-1")
    os.chmod(path, 0o604)
    owner = (os.getuid(), os.getgid())
    if os.geteuid() == 0:
        owner = (4321, 4322)
        os.chown(path, *owner)
    link = os.path.join(d, "users.link")
    os.symlink("users", link)
    ok_run(["-f", link, "max"], "max-pass-2")
    st = os.lstat(path)
    eq((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (0o604,) + owner, "mode, uid, gid")
    check(os.path.islink(link) and os.readlink(link) == "users", "the link was replaced")
    check(fields(path, "max")[1].startswith("$y$"), "the target did not change")
    no_leftovers(path)


@t.test("concurrent runs on one file: none loses another's change")
def _():
    path = os.path.join(t.tmpdir(), "users")
    ok_run(["-f", path, "first"], "first-pass-1")
    names = ["user%d" % i for i in range(8)]
    procs = [subprocess.Popen([passwd_tool(), "-f", path, "--stdin", "-r", "viewer", n],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for n in names]
    for p in procs:
        p.stdin.write(b"concurrent-pass\n")
        p.stdin.close()
    SECRETS.append("concurrent-pass")
    for n, p in zip(names, procs):
        err = p.stderr.read().decode()
        eq(p.wait(T.scaled(15)), 0, "exit status for %s (stderr: %s)" % (n, err))
    got = sorted(l.split(":")[0] for l in read(path).decode().splitlines())
    eq(got, sorted(["first"] + names), "users in the file")
    no_leftovers(path)


def tty_run(args, answers, timeout=10):
    """Runs the tool on a new pseudo-terminal, answering each prompt in
    turn; returns (status, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(args[0], args)
        finally:
            os._exit(127)
    shown = b""
    deadline = time.monotonic() + T.scaled(timeout)
    pending = list(answers)
    try:
        while time.monotonic() < deadline:
            if pending and pending[0][0] in shown:
                shown = shown.replace(pending[0][0], b"<" + pending[0][0] + b">", 1)
                os.write(fd, pending.pop(0)[1])
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                shown += chunk
        # the terminal closes a moment before the process can be waited for
        done, status = os.waitpid(pid, os.WNOHANG)
        while not done and time.monotonic() < deadline:
            time.sleep(0.02)
            done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            fail("mqgate-passwd did not finish on the terminal; it showed %r" % shown)
    finally:
        os.close(fd)
    return status, shown.decode("utf-8", "replace")


@t.test("on a terminal: asked twice without echo; different answers refused; Ctrl-C stops it")
def _():
    path = os.path.join(t.tmpdir(), "users")
    tool = passwd_tool()
    SECRETS.extend(["tty-pass-1", "tty-pass-2"])
    q1, q2 = b"New password for nina: ", b"Retype the new password: "
    status, shown = tty_run([tool, "-f", path, "-r", "viewer", "nina"],
                            [(q1, b"tty-pass-1\n"), (q2, b"tty-pass-1\n")])
    eq(os.waitstatus_to_exitcode(status), 0, "exit status; the terminal showed %r" % shown)
    check("tty-pass-1" not in shown, "the password was echoed: %r" % shown)
    check(shown.count("password") == 2, "not asked twice: %r" % shown)
    check(re.fullmatch(r"nina:%s:viewer" % LINE_RE["yescrypt"], user_line(path, "nina")), "nina's line")
    data = read(path)
    status, shown = tty_run([tool, "-f", path, "nina"], [(q1, b"tty-pass-1\n"), (q2, b"tty-pass-2\n")])
    eq(os.waitstatus_to_exitcode(status), 1, "exit status for different answers")
    check("do not match" in shown, "no message for different answers: %r" % shown)
    status, shown = tty_run([tool, "-f", path, "nina"], [(q1, b"tty\x03")])
    eq(os.waitstatus_to_exitcode(status), -signal.SIGINT, "exit status after Ctrl-C")
    eq(read(path), data, "the file after refused runs")
    no_leftovers(path)


@t.test("the daemon's log holds none of the passwords")
def _():
    log = gw().log_text()
    leaked = [s for s in SECRETS if s in log]
    eq(leaked, [], "passwords in the daemon's log")


if __name__ == "__main__":
    sys.exit(t.run())
