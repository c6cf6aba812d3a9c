"""mqgtest: the harness of mqgate's integration tests.

Runs the real mqgated against a real mosquitto on free loopback ports and
speaks real WebSocket (a small RFC 6455 client written here, no library) and
real MQTT (Debian's python3-paho-mqtt 1.6.1) to them.  Each test script builds
a Suite, registers test functions and calls Suite.run(), which prints TAP for
Automake's tap-driver.sh.

Environment: MQGATED (the daemon to test, default ../../mqgated),
MOSQUITTO (default /usr/sbin/mosquitto), MQG_BROKER (the kind of the
script's shared broker: mosquitto, the default, rabbitmq or aedes; the
gateways then speak MQTT 3.1.1 to the last two), MQG_TIME_SCALE (multiplies every
timeout, for slow builds such as valgrind), MQG_KEEP_TMP=1 (keep the
temporary directories), MQG_SCRIPT_TIMEOUT (seconds, default 150).

Run the harness' own checks (no mqgated needed):
    /usr/bin/python3 tests/integration/mqgtest.py --selftest
"""

import base64
import collections
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib

try:
    import paho.mqtt.client as paho
except ImportError:  # reported by Suite.run() as a SKIP
    paho = None


def _bail_hook(etype, value, tb):
    """A test script that crashes outside Suite.run() still speaks TAP."""
    print("Bail out! %s: %s" % (etype.__name__, value), flush=True)
    for line in traceback.format_exception(etype, value, tb):
        for l in line.rstrip("\n").splitlines():
            print("# " + l, flush=True)


sys.excepthook = _bail_hook

MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
TIME_SCALE = float(os.environ.get("MQG_TIME_SCALE", "1") or 1)
SCRIPT_TIMEOUT = float(os.environ.get("MQG_SCRIPT_TIMEOUT", "150")) * TIME_SCALE
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "WARNING: ThreadSanitizer")

# WebSocket opcodes
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_SAFE_INT = 2 ** 53 - 1


def scaled(seconds):
    """A timeout in seconds, stretched by MQG_TIME_SCALE."""
    return seconds * TIME_SCALE


# ---------------------------------------------------------------------------
# Assertions

class TestFailure(AssertionError):
    pass


class TestTimeout(Exception):
    pass


class Skip(Exception):
    pass


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def same(a, b):
    """Deep equality that tells 1 from 1.0 and 0 from false, as JSON does."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def show(v):
    return json.dumps(v, ensure_ascii=False, default=repr) if not isinstance(v, bytes) else repr(v)


def eq(actual, expected, what="value"):
    """Exact, type-strict equality of JSON values."""
    if not same(actual, expected):
        fail("%s: expected %s, got %s" % (what, show(expected), show(actual)))


def expect_error(frame, code, id=Ellipsis, what="reply"):
    """frame must be exactly {"op":"error",["id":id,]"code":code,"message":str}.
    id=Ellipsis: the frame must carry no id; id=None: do not look at id."""
    check(isinstance(frame, dict), "%s: not an object: %s" % (what, show(frame)))
    exp = {"op": "error", "code": code}
    if id is not Ellipsis and id is not None:
        exp["id"] = id
    got = {k: v for k, v in frame.items() if k != "message" and not (id is None and k == "id")}
    if not same(got, exp) or not isinstance(frame.get("message"), str):
        fail("%s: expected %s plus a \"message\" string, got %s"
             % (what, show(exp), show(frame)))
    if id is Ellipsis and "id" in frame:
        fail("%s: error for a request without id carries an id: %s" % (what, show(frame)))


def wait_for(cond, timeout=5.0, interval=0.02, what="condition"):
    """Poll cond() until it returns a true value; return that value."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            fail("timed out after %.1f s waiting for %s" % (scaled(timeout), what))
        time.sleep(interval)


def diag(msg):
    for line in str(msg).splitlines() or [""]:
        print("# " + line, flush=True)


# ---------------------------------------------------------------------------
# Small utilities

def free_port(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_open(port, host="127.0.0.1", timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def deep_merge(base, over):
    """A copy of base with over merged in: dicts recursively, everything
    else (lists included) replaced; a value DELETE removes the key."""
    out = dict(base)
    for k, v in over.items():
        if v is DELETE:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


DELETE = object()


def _pdeathsig():
    """Child setup: die with the harness, whatever kills it."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def strict_json(text):
    """Parse JSON the gateway sent, refusing duplicate keys and NaN."""
    def pairs(items):
        d = {}
        for k, v in items:
            if k in d:
                raise ValueError("duplicate key %r" % k)
            d[k] = v
        return d

    def bad_const(c):
        raise ValueError("non-JSON constant %s" % c)
    return json.loads(text, object_pairs_hook=pairs, parse_constant=bad_const)


EPOCH_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def strip_epoch(hello):
    """hello without its "epoch", which must be there and well formed
    (protocol.md, stream positions): the rest can then be compared."""
    h = dict(hello)
    e = h.pop("epoch", None)
    if not isinstance(e, str) or not EPOCH_RE.match(e):
        fail("hello without a well-formed epoch: %s" % show(hello))
    return h


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def http_request(port, path, method="GET", headers=None, host="127.0.0.1",
                 tls=None, timeout=5.0, body=None):
    """One HTTP/1.1 request; returns (status, headers dict lowercased, body)."""
    if tls:
        ctx = tls if isinstance(tls, ssl.SSLContext) else insecure_tls_context()
        conn = http.client.HTTPSConnection(host, port, timeout=scaled(timeout), context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=scaled(timeout))
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


class EventStream(object):
    """A raw GET /api/events?query (protocol.md, HTTP API) to port: the
    status line and headers, then Server-Sent Events read as they come.
    tls: a client context; source: the local address to bind."""

    def __init__(self, port, query, headers=None, rcvbuf=None, tls=None, source=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(scaled(5))
        self.sock.connect(("127.0.0.1", port))
        if tls:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        h = {"Host": "127.0.0.1:%d" % port, "Accept": "text/event-stream"}
        h.update(headers or {})
        req = "GET /api/events?%s HTTP/1.1\r\n%s\r\n" % (
            query, "".join("%s: %s\r\n" % kv for kv in h.items()))
        self.sock.sendall(req.encode())
        self.buf = b""
        self.closed = False
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        self.comments = []

    def _more(self, timeout=5):
        self.sock.settimeout(scaled(timeout))
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            raise EOFError()
        self.buf += data

    def body(self):
        """The rest of a refusal's body (Content-Length)."""
        n = int(self.headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._more()
        return json.loads(self.buf[:n])

    def event(self, timeout=5):
        """The next event: (name, id or None, parsed data)."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            while b"\n\n" in self.buf:
                block, self.buf = self.buf.split(b"\n\n", 1)
                name, eid, data = "message", None, None
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        self.comments.append(line)
                    elif line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("id: "):
                        eid = line[4:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                if data is not None:
                    return name, eid, data
            left = deadline - time.monotonic()
            if left <= 0:
                fail("no event within %.1f s" % scaled(timeout))
            try:
                self._more(left / TIME_SCALE)
            except socket.timeout:
                pass

    def events_until(self, pred, timeout=5):
        out = []
        while True:
            ev = self.event(timeout)
            out.append(ev)
            if pred(ev):
                return out

    def close(self):
        self.sock.close()


def insecure_tls_context(alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def make_cert(dirpath):
    """A self-signed EC certificate for localhost/127.0.0.1 made with the
    openssl tool: (cert_file, key_file), or None without openssl."""
    openssl = shutil.which("openssl")
    if not openssl:
        return None
    cert, key = os.path.join(dirpath, "cert.pem"), os.path.join(dirpath, "key.pem")
    r = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        diag("openssl req failed: %s" % r.stdout.decode(errors="replace"))
        return None
    return cert, key


def _openssl(args, what):
    r = subprocess.run(["openssl"] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (what, r.stdout.decode(errors="replace")))


def _newkey_args(key):
    """openssl req -newkey arguments for key "ec" (P-256) or "rsa" (2048)."""
    if key == "ec":
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    if key == "rsa":
        return ["-newkey", "rsa:2048"]
    raise ValueError("key type %r" % key)


class CertAuthority(object):
    """A certificate authority made with the openssl tool in dirpath (its
    own key and self-signed certificate, .cert and .key); issue() signs
    server and client certificates for it."""

    def __init__(self, dirpath, name="mqgtest CA", key="ec"):
        if not shutil.which("openssl"):
            raise Skip("no openssl tool")
        self.dir = dirpath
        os.makedirs(dirpath, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
        self.cert = os.path.join(dirpath, slug + ".crt")
        self.key = os.path.join(dirpath, slug + ".key")
        _openssl(["req", "-x509"] + _newkey_args(key) +
                 ["-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2",
                  "-subj", "/O=mqgtest/CN=%s" % name,
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"], "req (CA)")
        os.chmod(self.key, 0o600)

    def issue(self, name, cn=None, key="ec", client=False,
              san="DNS:localhost,IP:127.0.0.1"):
        """A certificate signed by this CA, in dirpath/name.crt and
        name.key (mode 0600): a server certificate (serverAuth, san), or a
        client one (clientAuth, no SAN).  Returns (cert_file, key_file)."""
        cert = os.path.join(self.dir, name + ".crt")
        keyf = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n")
            f.write("keyUsage=critical,digitalSignature%s\n" % (
                "" if key == "ec" else ",keyEncipherment"))
            f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
            if san and not client:
                f.write("subjectAltName=%s\n" % san)
        _openssl(["req", "-new"] + _newkey_args(key) +
                 ["-nodes", "-keyout", keyf, "-out", csr,
                  "-subj", "/O=mqgtest/CN=%s" % (cn or name)], "req (%s)" % name)
        _openssl(["x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                  "-set_serial", "0x" + os.urandom(8).hex(), "-days", "2",
                  "-extfile", ext, "-out", cert], "x509 (%s)" % name)
        os.chmod(keyf, 0o600)
        os.unlink(csr)
        os.unlink(ext)
        return cert, keyf

    def client_context(self, cert=None, alpn=None, max_version=None):
        """A client SSLContext that trusts only this CA and checks the host
        name; cert: (cert_file, key_file) to present."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.cert)
        if cert:
            ctx.load_cert_chain(*cert)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        if max_version:
            ctx.maximum_version = max_version
        return ctx


def cert_der(path):
    """The DER bytes of the (first) certificate in a PEM file."""
    with open(path) as f:
        pem = f.read()
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", pem, re.S)
    if not m:
        fail("no certificate in %s" % path)
    return ssl.PEM_cert_to_DER_cert(m.group(0))


def fingerprint(der):
    """SHA-256 fingerprint of DER bytes, as AA:BB:..."""
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest())


# ---------------------------------------------------------------------------
# Tokens and passwords

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_HS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def jwt_encode(claims, secret, alg="HS256", header=None, sign_alg=None):
    """An HMAC JWT. alg goes into the header; sign_alg (default alg) signs;
    alg "none" gives an empty signature."""
    h = {"alg": alg, "typ": "JWT"}
    h.update(header or {})
    if isinstance(secret, str):
        secret = secret.encode()
    signing_input = (b64url(json.dumps(h, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sign_alg = sign_alg or alg
    if sign_alg == "none":
        sig = b""
    else:
        sig = hmac.new(secret, signing_input.encode("ascii"), _HS[sign_alg]).digest()
    return signing_input + "." + b64url(sig)


def totp(secret_b32, at=None, step=30, digits=6):
    """RFC 6238 TOTP (SHA-1) for the time `at` (default now)."""
    s = secret_b32.upper().replace(" ", "")
    key = base64.b32decode(s + "=" * (-len(s) % 8))
    counter = int((time.time() if at is None else at) // step)
    h = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = h[-1] & 0x0F
    code = (struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return "%0*d" % (digits, code)


def crypt_hash(password, method="yescrypt"):
    """A crypt(3) hash from libcrypt ($y$ yescrypt or $6$ SHA-512)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt
    salt = b64url(os.urandom(12)).replace("-", ".").replace("_", "/")[:16]
    setting = {"yescrypt": "$y$j9T$", "sha512": "$6$"}[method] + salt + "$"
    h = crypt.crypt(password, setting)
    if not h or not h.startswith(setting[:3]):
        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
    return h


# ---------------------------------------------------------------------------
# WebSocket client (RFC 6455), written by hand

class HandshakeRefused(Exception):
    def __init__(self, status, headers, body):
        Exception.__init__(self, "handshake refused: HTTP %s" % status)
        self.status, self.headers, self.body = status, headers, body


class Closed(Exception):
    """The gateway closed the session: code is the close code, 1005 for a
    close frame without one, None for a TCP drop."""

    def __init__(self, code, reason=""):
        Exception.__init__(self, "session closed: %s %s" % (
            "TCP drop" if code is None else "close code %d" % code, reason))
        self.code, self.reason = code, reason


class ProtocolViolation(TestFailure):
    pass


class Frame(object):
    __slots__ = ("fin", "rsv", "opcode", "payload")

    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    def __repr__(self):
        return "Frame(fin=%d rsv=%d op=%d %r)" % (self.fin, self.rsv, self.opcode,
                                                 self.payload[:80])


def mask_bytes(data, key):
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame_bytes(opcode, payload=b"", fin=True, rsv1=False, rsv2=False, rsv3=False,
                mask=True):
    """The bytes of one frame as a client sends it (masked unless mask=False)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0) | \
         (0x10 if rsv3 else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_bytes(payload, key)


_open_resources = []   # closed by the runner after each test


def _track(obj):
    _open_resources.append(obj)
    return obj


def ws_handshake(port, path="/ws", host="127.0.0.1", protocols=None, origin=None,
                 cookie=None, authorization=None, headers=None, deflate=False,
                 source=None, tls=None, timeout=5.0, host_header=None, rcvbuf=None,
                 mss=None):
    """Open a TCP (or TLS) connection and do the opening handshake.
    Returns a WS on 101; raises HandshakeRefused(status, headers, body)
    otherwise.  protocols: None (no header) or a list of offers;
    deflate: offer permessage-deflate; source: local address to bind;
    rcvbuf: SO_RCVBUF to set before connecting; mss: the TCP maximum
    segment size to announce (small, it keeps the gateway's kernel send
    buffer small too, so that a client that does not read blocks the
    gateway's writes after a few KiB even on loopback)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if mss:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        if source:
            sock.bind((source, 0))
        sock.settimeout(scaled(timeout))
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = tls if isinstance(tls, ssl.SSLContext) else insecure_tls_context(
                ["h2", "http/1.1"])
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        lines = ["GET %s HTTP/1.1" % path,
                 "Host: %s" % (host_header or "%s:%d" % (host, port)),
                 "Upgrade: websocket",
                 "Connection: Upgrade",
                 "Sec-WebSocket-Key: %s" % key,
                 "Sec-WebSocket-Version: 13"]
        if protocols is not None:
            lines.append("Sec-WebSocket-Protocol: %s" % ", ".join(protocols))
        if origin is not None:
            lines.append("Origin: %s" % origin)
        if cookie is not None:
            lines.append("Cookie: %s" % cookie)
        if authorization is not None:
            lines.append("Authorization: %s" % authorization)
        if deflate:
            lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        for k, v in (headers or []):
            lines.append("%s: %s" % (k, v))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

        buf = b""
        deadline = time.monotonic() + scaled(timeout)
        while b"\r\n\r\n" not in buf:
            if len(buf) > 65536:
                fail("handshake answer headers longer than 64 KiB")
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                fail("no handshake answer within %.1f s" % scaled(timeout))
            except ConnectionResetError:
                data = b""
            if not data:
                raise HandshakeRefused(None, {}, buf)
            buf += data
        head, rest = buf.split(b"\r\n\r\n", 1)
        hlines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", hlines[0])
        if not m:
            fail("bad handshake status line %r" % hlines[0])
        status = int(m.group(1))
        hdrs = {}
        for line in hlines[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            hdrs[k] = (hdrs[k] + ", " + v.strip()) if k in hdrs else v.strip()
        if status != 101:
            body = rest
            clen = int(hdrs.get("content-length", "0") or 0)
            try:
                while len(body) < clen:
                    sock.settimeout(1.0)
                    data = sock.recv(65536)
                    if not data:
                        break
                    body += data
            except OSError:
                pass
            sock.close()
            raise HandshakeRefused(status, hdrs, body)
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            fail("bad Sec-WebSocket-Accept %r (want %r)" % (hdrs.get("sec-websocket-accept"), want))
        if "websocket" not in hdrs.get("upgrade", "").lower():
            fail("101 without Upgrade: websocket (%r)" % hdrs.get("upgrade"))
        ws = WS(sock, rest, hdrs)
        return _track(ws)
    except BaseException:
        try:
            sock.close()
        except OSError:
            pass
        raise


class WS(object):
    """A client session.  JSON frames read past by request()/sync() wait in
    backlog, which recv_json() reads first."""

    _sync_n = 0

    def sub_ok(self, req):
        """A sub (id 1, with the fields of req) that must be answered ok."""
        r = self.request(dict({"op": "sub", "id": 1}, **req))
        eq(r.get("op"), "ok", "sub %s: %s" % (req, r))
        return r

    def __init__(self, sock, leftover, headers):
        self.sock = sock
        self.buf = bytearray(leftover)
        self.headers = headers
        self.protocol = headers.get("sec-websocket-protocol")
        self.auto_pong = True
        self.backlog = collections.deque()   # (obj, text)
        self.pings = 0          # ping frames received from the gateway
        self.pongs = []         # pong frame payloads received
        self.closed = False
        self.close_code = None  # valid once closed
        self.close_reason = ""
        self.close_sent = False
        self.before_close = []  # JSON frames read by wait_close()
        self.last_text = None
        self.hello = None
        # Stream positions (protocol.md): every live msg carries seq and ts,
        # live seqs only grow (strict_seq: False where max_rate may hold a
        # message back), the retained replay carries neither. They are
        # checked on every msg and then taken off it, unless
        # keep_positions, so that tests compare the rest.
        self.keep_positions = False
        self.strict_seq = True
        self.last_seq = 0
        self.positions = []     # (seq, ts, history) of each msg read
        self._frag = None       # (opcode, rsv1, [parts])
        self.deflate = None
        self._inflater = None
        self._deflater = None
        ext = headers.get("sec-websocket-extensions", "")
        if ext:
            self._setup_deflate(ext)

    # --- permessage-deflate -------------------------------------------------
    def _setup_deflate(self, ext):
        parts = [p.strip() for p in ext.split(";")]
        if parts[0] != "permessage-deflate":
            fail("gateway accepted an extension we did not offer: %r" % ext)
        params = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip()] = v.strip().strip('"') or True
        self.deflate = params

    def _inflate(self, data):
        if self._inflater is None or "server_no_context_takeover" in self.deflate:
            self._inflater = zlib.decompressobj(-15)
        return self._inflater.decompress(data + b"\x00\x00\xff\xff")

    def compress(self, data):
        """data deflated as this session's next compressed message."""
        if self.deflate is None:
            fail("permessage-deflate was not negotiated")
        if isinstance(data, str):
            data = data.encode("utf-8")
        bits = self.deflate.get("client_max_window_bits")
        wbits = max(9, int(bits)) if isinstance(bits, str) and bits.isdigit() else 15
        if self._deflater is None or "client_no_context_takeover" in self.deflate:
            self._deflater = zlib.compressobj(6, zlib.DEFLATED, -wbits)
        out = self._deflater.compress(data) + self._deflater.flush(zlib.Z_SYNC_FLUSH)
        if out.endswith(b"\x00\x00\xff\xff"):
            out = out[:-4]
        return out

    # --- sending ------------------------------------------------------------
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", fin=True, rsv1=False, rsv2=False,
                   rsv3=False, mask=True):
        self.sock.sendall(frame_bytes(opcode, payload, fin, rsv1, rsv2, rsv3, mask))

    def send_text(self, data):
        """One text frame; bytes are sent as they are (may be invalid UTF-8)."""
        self.send_frame(TEXT, data)

    def send_binary(self, data):
        self.send_frame(BINARY, data)

    def send_json(self, obj):
        self.send_text(compact(obj))

    def send_fragments(self, chunks, opcode=TEXT, between=None):
        """One message in len(chunks) frames; between(i) may send control
        frames after fragment i."""
        for i, c in enumerate(chunks):
            self.send_frame(opcode if i == 0 else CONT, c, fin=(i == len(chunks) - 1))
            if between:
                between(i)

    def send_compressed(self, data, opcode=TEXT):
        self.send_frame(opcode, self.compress(data), rsv1=True)

    def send_ping_frame(self, payload=b""):
        self.send_frame(PING, payload)

    # --- receiving ----------------------------------------------------------
    def _fill(self, deadline):
        if self.closed:
            raise Closed(self.close_code, self.close_reason)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError()
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(262144)
        except (socket.timeout, ssl.SSLWantReadError):
            raise TimeoutError()
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            data = b""
        if not data:
            self._mark_closed(None, "")
            raise Closed(None)
        self.buf += data

    def _mark_closed(self, code, reason):
        self.closed = True
        self.close_code = code
        self.close_reason = reason
        try:
            self.sock.close()
        except OSError:
            pass

    def _parse(self):
        b = self.buf
        if len(b) < 2:
            return None
        b0, b1 = b[0], b[1]
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if len(b) < 4:
                return None
            n = struct.unpack("!H", bytes(b[2:4]))[0]
            pos = 4
        elif n == 127:
            if len(b) < 10:
                return None
            n = struct.unpack("!Q", bytes(b[2:10]))[0]
            pos = 10
        masked = b1 & 0x80
        if masked:
            pos += 4
        if len(b) < pos + n:
            return None
        payload = bytes(b[pos:pos + n])
        if masked:
            payload = mask_bytes(payload, bytes(b[pos - 4:pos]))
        del b[:pos + n]
        f = Frame(b0 >> 7, (b0 >> 4) & 7, b0 & 0x0F, payload)
        if masked:
            raise ProtocolViolation("gateway sent a masked frame: %r" % f)
        if f.opcode not in (CONT, TEXT, BINARY, CLOSE, PING, PONG):
            raise ProtocolViolation("gateway sent reserved opcode: %r" % f)
        if f.rsv & 3 or (f.rsv & 4 and (self.deflate is None or f.opcode >= 8 or f.opcode == CONT)):
            raise ProtocolViolation("gateway set reserved bits: %r" % f)
        if f.opcode >= 8 and (not f.fin or len(payload) > 125):
            raise ProtocolViolation("bad control frame from gateway: %r" % f)
        return f

    def recv_frame(self, timeout=5.0):
        """The next raw frame, control frames included, nothing answered."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            f = self._parse()
            if f is not None:
                return f
            self._fill(deadline)

    def _on_close_frame(self, f):
        if len(f.payload) == 0:
            code, reason = 1005, ""
        elif len(f.payload) == 1:
            raise ProtocolViolation("close frame with a 1-byte payload")
        else:
            code = struct.unpack("!H", f.payload[:2])[0]
            try:
                reason = f.payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolViolation("close reason is not UTF-8: %r" % f.payload)
        if not self.close_sent:
            try:
                self.sock.sendall(frame_bytes(CLOSE, f.payload[:2]))
            except OSError:
                pass
            self.close_sent = True
        self._mark_closed(code, reason)
        raise Closed(code, reason)

    def recv_message(self, timeout=5.0):
        """The next data message (opcode, bytes), reassembled and inflated;
        pings are answered (unless auto_pong is off) and pongs recorded.
        Raises Closed when the gateway closes, TimeoutError on timeout."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            f = self._parse()
            if f is None:
                self._fill(deadline)
                continue
            if f.opcode == PING:
                self.pings += 1
                if self.auto_pong and not self.close_sent:
                    self.sock.sendall(frame_bytes(PONG, f.payload))
                continue
            if f.opcode == PONG:
                self.pongs.append(f.payload)
                continue
            if f.opcode == CLOSE:
                self._on_close_frame(f)
            if f.opcode == CONT:
                if self._frag is None:
                    raise ProtocolViolation("continuation frame without a first fragment")
                self._frag[2].append(f.payload)
            else:
                if self._frag is not None:
                    raise ProtocolViolation("new data frame inside a fragmented message")
                self._frag = (f.opcode, bool(f.rsv & 4), [f.payload])
            if f.fin:
                opcode, compressed, parts = self._frag
                self._frag = None
                data = b"".join(parts)
                if compressed:
                    data = self._inflate(data)
                return opcode, data

    def recv_json_text(self, timeout=5.0):
        """The next JSON frame as (object, raw text)."""
        if self.backlog:
            obj, text = self.backlog.popleft()
            self.last_text = text
            return obj, text
        opcode, data = self.recv_message(timeout)
        if opcode != TEXT:
            raise ProtocolViolation("gateway sent a non-text message: opcode %d %r"
                                    % (opcode, data[:100]))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolViolation("gateway sent invalid UTF-8: %r" % data[:200])
        try:
            obj = strict_json(text)
        except ValueError as e:
            raise ProtocolViolation("gateway sent bad JSON (%s): %r" % (e, text[:300]))
        if not isinstance(obj, dict) or not isinstance(obj.get("op"), str):
            raise ProtocolViolation("gateway frame is not an object with op: %r" % text[:300])
        if obj["op"] == "msg":
            self._check_position(obj, text)
        self.last_text = text
        return obj, text

    def _check_position(self, obj, text):
        seq, ts, hist = obj.get("seq"), obj.get("ts"), obj.get("history", False)
        if obj.get("retain") and not hist:
            if "seq" in obj or "ts" in obj:
                raise ProtocolViolation("retained replay with seq/ts: %r" % text[:300])
        else:
            if (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1
                    or not isinstance(ts, int) or isinstance(ts, bool)):
                raise ProtocolViolation("msg without integer seq >= 1 and ts: %r" % text[:300])
            if abs(ts / 1000.0 - time.time()) > 3600:
                raise ProtocolViolation("msg ts %d is not near the wall clock" % ts)
            if not hist and self.strict_seq:
                if seq <= self.last_seq:
                    raise ProtocolViolation("live seq %d after %d: %r"
                                            % (seq, self.last_seq, text[:300]))
                self.last_seq = seq
        self.positions.append((seq, ts, hist))
        if not self.keep_positions:
            for k in ("seq", "ts", "history"):
                obj.pop(k, None)

    def recv_json(self, timeout=5.0):
        try:
            return self.recv_json_text(timeout)[0]
        except TimeoutError:
            fail("no frame from the gateway within %.1f s" % scaled(timeout))

    def request(self, obj, timeout=5.0):
        """Send obj and return the reply carrying its id (ok, error or pong).
        Frames that came before it stay in the backlog, in order; they are
        also in self.skipped."""
        self.send_json(obj)
        return self.await_reply(obj["id"], timeout)

    def await_reply(self, rid, timeout=5.0):
        deadline = time.monotonic() + scaled(timeout)
        skipped = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    fail("no reply with id %s within %.1f s; frames seen: %s"
                         % (show(rid), scaled(timeout), show([o for o, _ in skipped])[:2000]))
                try:
                    obj, text = self.recv_json_text(left / TIME_SCALE)
                except TimeoutError:
                    continue
                if obj.get("op") in ("ok", "error", "pong") and "id" in obj and same(obj["id"], rid):
                    self.skipped = [o for o, _ in skipped]
                    return obj
                skipped.append((obj, text))
        finally:
            self.backlog.extendleft(reversed(skipped))

    def sync(self, timeout=5.0):
        """A barrier: send a ping with a fresh id, return (and consume) the
        JSON frames that arrived before its pong."""
        WS._sync_n += 1
        sid = "sync-%d" % WS._sync_n
        pong = self.request({"op": "ping", "id": sid}, timeout)
        eq(pong, {"op": "pong", "id": sid}, "pong to a sync ping")
        out = [o for o, _ in self.backlog]
        self.backlog.clear()
        return out

    def collect(self, duration, until=None):
        """All JSON frames within duration seconds (backlog first); stops
        early at a close (see .closed) or when until(frames) is true."""
        out = []
        while self.backlog:
            out.append(self.backlog.popleft()[0])
        deadline = time.monotonic() + scaled(duration)
        while not (until and until(out)):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                out.append(self.recv_json_text(left / TIME_SCALE)[0])
            except (TimeoutError, Closed):
                break
        return out

    def collect_n(self, n, timeout=5.0, pred=None):
        """Exactly n matching frames (pred filters, others are dropped)."""
        got = []
        deadline = time.monotonic() + scaled(timeout)
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                fail("got %d of %d expected frames within %.1f s; last: %s"
                     % (len(got), n, scaled(timeout), show(got[-3:])))
            try:
                obj = self.recv_json_text(left / TIME_SCALE)[0]
            except TimeoutError:
                continue
            if pred is None or pred(obj):
                got.append(obj)
        return got

    def poll(self, timeout=0.05):
        """Read what arrives within timeout into the backlog, answering
        pings. Returns False once the session is closed."""
        deadline = time.monotonic() + scaled(timeout)
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                opcode, data = self.recv_message(left / TIME_SCALE)
                try:
                    self.backlog.append((strict_json(data.decode("utf-8")), data.decode("utf-8")))
                except ValueError:
                    self.backlog.append(({"op": "?raw", "data": repr(data)}, ""))
        except TimeoutError:
            return True
        except Closed:
            return False

    def wait_close(self, timeout=5.0):
        """Read until the gateway closes; return the close code (1005 for a
        close frame without code, None for a TCP drop).  The JSON frames
        read meanwhile (backlog included) are in before_close."""
        self.before_close = [o for o, _ in self.backlog]
        self.backlog.clear()
        deadline = time.monotonic() + scaled(timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                fail("session not closed within %.1f s; frames seen: %s"
                     % (scaled(timeout), show(self.before_close[-5:])[:1500]))
            try:
                opcode, data = self.recv_message(left / TIME_SCALE)
            except TimeoutError:
                continue
            except Closed as e:
                return e.code
            try:
                self.before_close.append(strict_json(data.decode("utf-8")))
            except ValueError:
                self.before_close.append({"op": "?raw", "data": repr(data[:200])})

    def expect_close(self, code, timeout=5.0, what="session"):
        got = self.wait_close(timeout)
        if got != code:
            fail("%s: expected close code %s, got %s; frames before: %s" % (
                what, code, "TCP drop" if got is None else got,
                show(self.before_close[-5:])[:1500]))
        return self.before_close

    def close(self, code=1000, wait=1.0):
        """Send a close frame and (briefly) wait for the gateway's echo."""
        if self.closed:
            return self.close_code
        try:
            if not self.close_sent:
                self.sock.sendall(frame_bytes(CLOSE, struct.pack("!H", code)))
                self.close_sent = True
            if wait:
                deadline = time.monotonic() + wait
                while True:
                    f = self._parse()
                    if f is None:
                        self._fill(deadline)
                        continue
                    if f.opcode == CLOSE:
                        c = struct.unpack("!H", f.payload[:2])[0] if len(f.payload) >= 2 else 1005
                        self._mark_closed(c, "")
                        return c
        except (OSError, TimeoutError, Closed, ProtocolViolation):
            pass
        self._mark_closed(self.close_code, "")
        return self.close_code


# ---------------------------------------------------------------------------
# MQTT side (paho 1.6.1)

class MqttMsg(object):
    __slots__ = ("topic", "payload", "qos", "retain", "props")

    def __init__(self, topic, payload, qos, retain, props=None):
        self.topic, self.payload, self.qos, self.retain = topic, payload, qos, retain
        self.props = props   # MQTT 5: paho's Properties, or None

    def __repr__(self):
        return "MqttMsg(%r, %r, qos=%d, retain=%d)" % (self.topic, self.payload[:80],
                                                     self.qos, self.retain)


class Mqtt(object):
    """A paho client connected to a mosquitto, its messages in a queue."""

    def __init__(self, port, client_id=None, version=4, timeout=5.0, tls=None):
        """tls: an ssl.SSLContext to connect with (a TLS listener's port)."""
        self.client_id = client_id or "mqgtest-%d-%s" % (os.getpid(), b64url(os.urandom(6)))
        proto = paho.MQTTv5 if version == 5 else paho.MQTTv311
        kw = {} if version == 5 else {"clean_session": True}
        self.c = paho.Client(self.client_id, protocol=proto, **kw)
        if tls is not None:
            self.c.tls_set_context(tls)
        self.cond = threading.Condition()
        self.msgs = collections.deque()
        self.subacks = {}
        self.connected = False
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.max_inflight_messages_set(100)
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        _track(self)
        with self.cond:
            if not self.cond.wait_for(lambda: self.connected, scaled(timeout)):
                fail("MQTT client could not connect to mosquitto on port %d" % port)

    def _on_connect(self, c, u, flags, rc, props=None):
        with self.cond:
            self.connected = True
            self.cond.notify_all()

    def _on_message(self, c, u, m):
        with self.cond:
            self.msgs.append(MqttMsg(m.topic, bytes(m.payload), m.qos, bool(m.retain),
                                     getattr(m, "properties", None)))
            self.cond.notify_all()

    def _on_subscribe(self, c, u, mid, granted, props=None):
        with self.cond:
            self.subacks[mid] = granted
            self.cond.notify_all()

    def subscribe(self, topic, qos=0, timeout=5.0):
        rc, mid = self.c.subscribe(topic, qos)
        check(rc == 0, "paho subscribe failed: %d" % rc)
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.subacks, scaled(timeout)):
                fail("no SUBACK for %s" % topic)
            return self.subacks.pop(mid)

    def publish(self, topic, payload=b"", qos=0, retain=False, wait=True, timeout=5.0,
                properties=None):
        """properties: paho's Properties(PacketTypes.PUBLISH), MQTT 5 only."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        info = self.c.publish(topic, payload, qos, retain, properties=properties)
        if info.rc != 0:
            fail("paho publish to %r failed: rc %d" % (topic, info.rc))
        if wait:
            info.wait_for_publish(scaled(timeout))
            check(info.is_published(), "publish to %r not completed" % topic)
        return info

    def get(self, timeout=5.0, what="an MQTT message"):
        with self.cond:
            if not self.cond.wait_for(lambda: self.msgs, scaled(timeout)):
                fail("no %s within %.1f s" % (what, scaled(timeout)))
            return self.msgs.popleft()

    def get_n(self, n, timeout=5.0):
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.msgs) >= n, scaled(timeout)):
                fail("got %d of %d MQTT messages within %.1f s: %r"
                     % (len(self.msgs), n, scaled(timeout), list(self.msgs)[:5]))
            return [self.msgs.popleft() for _ in range(n)]

    def get_until(self, pred, timeout=5.0):
        """Messages up to and including the first for which pred is true."""
        out = []
        while True:
            m = self.get(timeout)
            out.append(m)
            if pred(m):
                return out

    def close(self):
        try:
            self.c.disconnect()
            self.c.loop_stop()
        except Exception:
            pass


# ---------------------------------------------------------------------------
# Processes

_processes = []   # every child started, killed on exit whatever happens


def _spawn(argv, logpath, env=None):
    logf = open(logpath, "ab")
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, env=env, preexec_fn=_pdeathsig)
    finally:
        logf.close()
    _processes.append(p)
    return p


def _kill_all():
    for p in _processes:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(2)
            except Exception:
                pass


def read_text(path, offset=0):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def tail(text, n=60):
    lines = text.splitlines()
    if len(lines) > n:
        return "[... %d lines ...]\n" % (len(lines) - n) + "\n".join(lines[-n:])
    return "\n".join(lines)


class Child(object):
    """A server the harness runs as a child (.proc): running(), and stop()
    with stop_signal, SIGKILL after stop_timeout seconds; stop() returns
    the exit status (None when it never ran)."""

    stop_timeout = 5.0
    stop_signal = signal.SIGTERM
    proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.running():
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(scaled(self.stop_timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None


class Broker(Child):
    """What every broker the harness runs offers the tests (the kinds:
    BROKERS): port, start(), stop() (SIGTERM, then SIGKILL), kill9(),
    restart() (the same port), running(), log_text(), client() (a paho
    client connected to it); kind, mqtt_version (the highest it speaks)
    and traits (how it differs: docs/deployment.md's broker table)."""

    def kill9(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.stop()
        return self.start()

    def log_text(self):
        return read_text(self.logpath)

    def client(self, **kw):
        return Mqtt(self.port, **kw)


class Mosquitto(Broker):
    """A mosquitto on a free loopback port, configured by the harness."""

    kind = "mosquitto"
    mqtt_version = 5
    traits = {
        "qos2": True,               # QoS 2 granted, publishes get PUBREC/PUBCOMP
        "retained_wildcard": True,  # retained replay on a wildcard SUBSCRIBE
        "sys": True,                # a $SYS tree
        "overlap_copies": 1,        # 3.1.1 copies of a message for overlapping filters
    }

    @staticmethod
    def available():
        return None if os.access(MOSQUITTO, os.X_OK) else "%s not installed" % MOSQUITTO

    def __init__(self, dirpath, port=None, acl=None, extra="", tls=None):
        """tls: a dict with cafile, certfile, keyfile and optional
        require_certificate (bool): a second listener, TLS, on tls_port."""
        self.dir = dirpath
        os.makedirs(dirpath, exist_ok=True)
        self.port = port or free_port()
        self.tls_port = None
        self.conf = os.path.join(dirpath, "mosquitto.conf")
        self.logpath = os.path.join(dirpath, "mosquitto.log")
        self.outpath = os.path.join(dirpath, "mosquitto.out")
        lines = ["listener %d 127.0.0.1" % self.port,
                 "allow_anonymous true",
                 "persistence false",
                 "log_dest file %s" % self.logpath,
                 "log_type all",
                 "max_queued_messages 100000",
                 "max_inflight_messages 100"]
        if os.geteuid() == 0:
            # as root mosquitto drops to user "mosquitto", which cannot
            # write in our private temporary directory
            lines.append("user root")
        if acl is not None:
            aclpath = os.path.join(dirpath, "mosquitto.acl")
            with open(aclpath, "w") as f:
                f.write(acl)
            lines.append("acl_file %s" % aclpath)
        if tls:
            self.tls_port = free_port()
            extra = extra + ("" if not extra or extra.endswith("\n") else "\n")
            extra += "listener %d 127.0.0.1\n" % self.tls_port
            for k in ("cafile", "certfile", "keyfile"):
                extra += "%s %s\n" % (k, tls[k])
            if tls.get("require_certificate"):
                extra += "require_certificate true\n"
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)
        self.proc = None

    def start(self, timeout=5.0):
        self.proc = _spawn([MOSQUITTO, "-c", self.conf], self.outpath)
        deadline = time.monotonic() + scaled(timeout)
        while not port_open(self.port, timeout=0.2):
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited with %s:\n%s%s" % (
                    self.proc.returncode, read_text(self.outpath), tail(read_text(self.logpath), 20)))
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not listen on %d within %.1f s"
                                   % (self.port, scaled(timeout)))
            time.sleep(0.02)
        while self.tls_port and not port_open(self.tls_port, timeout=0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mosquitto's TLS listener on %d did not open:\n%s%s" % (
                    self.tls_port, read_text(self.outpath), tail(read_text(self.logpath), 20)))
            time.sleep(0.02)
        return self



# The brokers other than mosquitto (issue 17), with Broker's interface.
RABBITMQ_SERVER = os.environ.get("RABBITMQ_SERVER", "/usr/lib/rabbitmq/bin/rabbitmq-server")
EPMD = os.environ.get("EPMD", shutil.which("epmd") or "/usr/bin/epmd")
NODE = os.environ.get("NODE", shutil.which("node") or "/usr/bin/node")
BROKERS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "brokers")


class RabbitMQ(Broker):
    """A private RabbitMQ node (Debian's rabbitmq-server) with its MQTT
    plugin, on free loopback ports, everything (Mnesia, logs, config,
    enabled plugins, Erlang cookie) in dirpath; AMQP closed. Its own epmd
    runs on a port of its own as the harness' child, so that nothing is
    left behind: the node runs with -start_epmd false."""

    kind = "rabbitmq"
    mqtt_version = 4
    traits = {"qos2": False, "retained_wildcard": False, "sys": False,
              "overlap_copies": "per QoS"}

    @staticmethod
    def available():
        if not os.access(RABBITMQ_SERVER, os.X_OK):
            return "%s not installed (Debian's rabbitmq-server)" % RABBITMQ_SERVER
        if not os.access(EPMD, os.X_OK):
            return "no epmd (Debian's erlang-base)"
        return None

    def __init__(self, dirpath, port=None):
        self.dir = dirpath
        os.makedirs(dirpath, exist_ok=True)
        self.port = port or free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.tls_port = None
        self.node = "mqgtest%d@localhost" % self.port
        self.conf = os.path.join(dirpath, "rabbitmq.conf")
        self.logdir = os.path.join(dirpath, "log")
        self.logpath = os.path.join(self.logdir, self.node + ".log")
        self.outpath = os.path.join(dirpath, "rabbitmq.out")
        with open(self.conf, "w") as f:
            f.write("listeners.tcp = none\n"
                    "mqtt.listeners.tcp.default = 127.0.0.1:%d\n"
                    "mqtt.allow_anonymous = true\n"
                    "loopback_users = none\n"
                    "log.console = false\n"
                    "log.file.level = info\n" % self.port)
        self.plugins = os.path.join(dirpath, "enabled_plugins")
        with open(self.plugins, "w") as f:
            f.write("[rabbitmq_mqtt].\n")
        self.env = dict(os.environ)
        self.env.update({
            "HOME": dirpath,       # its .erlang.cookie
            "RABBITMQ_MNESIA_BASE": os.path.join(dirpath, "mnesia"),
            "RABBITMQ_LOG_BASE": self.logdir,
            "RABBITMQ_CONFIG_FILE": self.conf,
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(dirpath, "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(dirpath, "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": self.plugins,
            "RABBITMQ_PID_FILE": os.path.join(dirpath, "rabbitmq.pid"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(free_port()),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}",
            # the script then execs erl (one process, which dies with us)
            # instead of waiting on it in a shell
            "RUNNING_UNDER_SYSTEMD": "true",
        })
        self.env.pop("NOTIFY_SOCKET", None)
        self.proc = None
        self.epmd = None

    def start(self, timeout=120.0):
        if self.epmd is None or self.epmd.poll() is not None:
            self.epmd = _spawn([EPMD, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                               os.path.join(self.dir, "epmd.out"), env=self.env)
            wait_for(lambda: port_open(self.epmd_port, timeout=0.2) or self.epmd.poll() is not None,
                     5, what="epmd on %d" % self.epmd_port)
        mark = len(self.log_text().encode())
        self.proc = _spawn([RABBITMQ_SERVER], self.outpath, env=self.env)
        deadline = time.monotonic() + scaled(timeout)
        # the MQTT listener opens before the node has finished booting
        while not (port_open(self.port, timeout=0.2) and
                   "Server startup complete" in read_text(self.logpath, mark)):
            if self.proc.poll() is not None:
                raise RuntimeError("rabbitmq-server exited with %s:\n%s\n%s" % (
                    self.proc.returncode, tail(read_text(self.outpath), 20),
                    tail(self.log_text(), 30)))
            if time.monotonic() > deadline:
                raise RuntimeError("RabbitMQ's MQTT listener did not open on %d within %.1f s:\n%s"
                                   % (self.port, scaled(timeout), tail(self.log_text(), 30)))
            time.sleep(0.1)
        return self

    stop_timeout = 30.0   # it stops cleanly on SIGTERM, in seconds

    def stop(self, epmd=False):
        """epmd=True: its epmd too."""
        Broker.stop(self)
        if epmd and self.epmd is not None and self.epmd.poll() is None:
            self.epmd.terminate()
            self.epmd.wait(5)


class Aedes(Broker):
    """aedes (npm, MQTT 3.1.1, in memory) run by node on tests/brokers/
    aedes.mjs on a free loopback port; its node_modules are installed with
    npm ci from tests/brokers/package-lock.json by the first start (a
    failure of npm ci fails that start: it is no reason to skip)."""

    kind = "aedes"
    mqtt_version = 4
    traits = {"qos2": True, "retained_wildcard": True, "sys": True, "overlap_copies": 1}

    @staticmethod
    def available():
        return None if os.access(NODE, os.X_OK) else "no node (20 or later) to run aedes"

    @staticmethod
    def install():
        if os.path.isdir(os.path.join(BROKERS_DIR, "node_modules", "aedes")):
            return
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROKERS_DIR,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise RuntimeError("npm ci in tests/brokers failed:\n%s"
                               % tail(r.stdout.decode(errors="replace"), 20))

    def __init__(self, dirpath, port=None):
        self.dir = dirpath
        os.makedirs(dirpath, exist_ok=True)
        self.port = port or free_port()
        self.tls_port = None
        self.logpath = os.path.join(dirpath, "aedes.log")
        self.outpath = self.logpath
        self.proc = None

    def start(self, timeout=10.0):
        self.install()
        mark = len(self.log_text().encode())
        self.proc = _spawn([NODE, os.path.join(BROKERS_DIR, "aedes.mjs"), str(self.port)],
                           self.logpath)
        deadline = time.monotonic() + scaled(timeout)
        while "listening %d" % self.port not in read_text(self.logpath, mark):
            if self.proc.poll() is not None:
                raise RuntimeError("aedes exited with %s:\n%s" % (
                    self.proc.returncode, tail(self.log_text(), 20)))
            if time.monotonic() > deadline:
                raise RuntimeError("aedes did not listen on %d within %.1f s:\n%s"
                                   % (self.port, scaled(timeout), tail(self.log_text(), 20)))
            time.sleep(0.02)
        return self



BROKERS = {"mosquitto": Mosquitto, "rabbitmq": RabbitMQ, "aedes": Aedes}


def stop_broker(b):
    """Stop a broker of any kind for good (RabbitMQ's epmd too)."""
    if isinstance(b, RabbitMQ):
        b.stop(epmd=True)
    else:
        b.stop()
BROKER_KIND = os.environ.get("MQG_BROKER", "mosquitto") or "mosquitto"


class GatewayError(Exception):
    pass


class PortTaken(GatewayError):
    """This run of mqgated said it cannot listen: a port picked for it was
    taken meanwhile."""


class Gateway(object):
    """A running mqgated with a generated JSON config."""

    def __init__(self, suite, name, cfg, mosq):
        self.suite = suite
        self.name = name
        self.mosq = mosq
        self.dir = os.path.join(suite.root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.cfgpath = os.path.join(self.dir, "mqgate.json")
        self.logpath = os.path.join(self.dir, "mqgated.log")
        self.cfg = cfg
        self.ports = [l["port"] for l in cfg["listeners"]]
        self.port = self.ports[0]
        self.path = cfg["listeners"][0].get("path", "/ws")
        self.proc = None
        self.stopped = False
        self.term_sent = False
        self.touched = False
        self.mark = 0
        self.write_config(cfg)

    def write_config(self, cfg):
        self.cfg = cfg
        with open(self.cfgpath, "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")

    @property
    def anonymous(self):
        return bool((self.cfg.get("auth") or {}).get("anonymous_role"))

    def start(self, timeout=10.0, healthy=True):
        """healthy=False: wait only for /healthz to answer (any status)."""
        self.start_mark = self._log_size()
        self.proc = _spawn([self.suite.mqgated, "-c", self.cfgpath], self.logpath)
        self.wait_healthy(timeout, want=200 if healthy else None)
        return self

    def _health_listener(self):
        """The index of the listener /healthz is asked on: the first plain one."""
        return next((i for i, l in enumerate(self.cfg["listeners"]) if not l.get("tls")), 0)

    def health(self):
        """The /healthz status, or None when the listener does not answer."""
        lst = self.cfg["listeners"]
        i = self._health_listener()
        try:
            return http_request(self.ports[i], "/healthz", tls=bool(lst[i].get("tls")),
                                timeout=1.0)[0]
        except (OSError, http.client.HTTPException):
            return None

    def wait_healthy(self, timeout=10.0, want=200):
        """Until /healthz answers want (None: any answer)."""
        deadline = time.monotonic() + scaled(timeout)
        status = None
        while True:
            if self.proc.poll() is not None:
                self._check_listening()
                raise GatewayError("mqgated exited with status %s at start; log:\n%s"
                                   % (self.proc.returncode, tail(self.log_text(), 40)))
            # Until this run of the daemon has said it listens (at log level
            # info), whatever answers is another process: one that took the
            # port picked for this gateway (free_port() cannot hold it),
            # maybe another test's gateway answering 200.
            self._check_listening()
            status = None
            if not self._says_listening or self._listening_said():
                status = self.health()
            if status is not None and (want is None or status == want):
                if not self._says_listening:
                    # warn or error: only the failure is logged, soon
                    time.sleep(0.2)
                    if self.proc.poll() is not None:
                        continue
                    self._check_listening()
                return
            if time.monotonic() > deadline:
                raise GatewayError("GET /healthz did not answer 200 within %.1f s (last: %s); log:\n%s"
                                   % (scaled(timeout), status, tail(self.log_text(), 40)))
            time.sleep(0.05)

    @property
    def _says_listening(self):
        return self.cfg.get("log", {}).get("level", "info") in ("info", "debug")

    def _since_start(self):
        return read_text(self.logpath, getattr(self, "start_mark", 0))

    def _check_listening(self):
        since = self._since_start()
        if "cannot listen on" in since:
            raise PortTaken("mqgated cannot listen (the port was taken?); log:\n%s"
                            % tail(since, 40))

    def _listening_said(self):
        port = self.ports[self._health_listener()]
        return re.search(r"listening on \S+:%d/" % port, self._since_start()) is not None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)
        if sig in (signal.SIGTERM, signal.SIGINT):
            self.term_sent = True

    def log_text(self, since_mark=False):
        return read_text(self.logpath, self.mark if since_mark else 0)

    def reload(self, what="", timeout=5.0):
        """SIGHUP, then wait until the log says the reload was accepted
        ("configuration reloaded") or refused; returns the lines it wrote."""
        mark = self._log_size()
        self.send_signal(signal.SIGHUP)

        def done():
            text = read_text(self.logpath, mark)
            return text if ("configuration reloaded" in text or "reload refused" in text) else None
        return wait_for(done, timeout, what="the reload to finish%s" % (" (%s)" % what if what else ""))

    def _log_size(self):
        try:
            return os.path.getsize(self.logpath)
        except OSError:
            return 0

    # --- clients ------------------------------------------------------------
    def ws(self, path=None, listener=0, **kw):
        """A raw WebSocket session (nothing read yet); protocols default to
        ["mqgate.v1"]; HandshakeRefused when refused."""
        self.touched = True
        kw.setdefault("protocols", ["mqgate.v1"])
        lst = self.cfg["listeners"][listener]
        if lst.get("tls") and "tls" not in kw:
            kw["tls"] = True
        return ws_handshake(self.ports[listener], path or lst.get("path", "/ws"), **kw)

    def session(self, token=None, positions=False, **kw):
        """A session past hello (in .hello), authenticated with token when
        given (the ok in .auth_reply), with the status frame consumed;
        positions: msgs keep their seq and ts (WS.keep_positions)."""
        ws = self.ws(**kw)
        ws.keep_positions = positions
        ws.hello = ws.recv_json()
        eq(ws.hello.get("op"), "hello", "first frame op")
        if token is not None:
            r = ws.request({"op": "auth", "id": "auth", "token": token})
            if r.get("op") != "ok":
                fail("auth refused: %s" % show(r))
            ws.auth_reply = r
        ws.opening = ws.sync()
        return ws

    def http(self, path, listener=0, **kw):
        self.touched = True
        kw.setdefault("tls", bool(self.cfg["listeners"][listener].get("tls")))
        return http_request(self.ports[listener], path, **kw)

    def metric(self, name, **labels):
        """The value of one sample of /metrics (labels as keywords), or
        None when the gateway does not report it."""
        _, _, body = self.http("/metrics")
        want = name + ("{%s}" % ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
                       if labels else "")
        for line in body.decode().splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return None

    def assert_serving(self):
        """A new session opens and answers a ping."""
        s = self.session()
        s.sync()
        s.close(wait=0)

    # --- shutdown -----------------------------------------------------------
    def stop(self, sig=signal.SIGTERM, start_failed=False):
        """Stop (SIGTERM, SIGKILL after 6 s) and record two TAP results:
        exit status 0, no sanitizer report (start_failed: only the second,
        for a start given up and made again elsewhere)."""
        if self.stopped or self.proc is None:
            return self.proc.returncode if self.proc else None
        self.stopped = True
        was_running = self.term_sent or self.proc.poll() is None
        killed = False
        if was_running:
            if not self.term_sent:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(scaled(6))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                killed = True
        rc = self.proc.returncode
        log = self.log_text()
        if not was_running:
            why = "mqgated had already exited (status %s) before it was stopped" % rc
        elif killed:
            why = "mqgated did not exit within 6 s of SIGTERM: killed"
        elif rc != 0:
            why = "mqgated exited with status %s after SIGTERM" % rc
        else:
            why = None
        if not start_failed:
            self.suite._result_later(why is None, "gateway %s: exits 0 on SIGTERM" % self.name,
                                     why and why + "\n" + tail(log, 30))
        marks = [m for m in SANITIZER_MARKS if m in log]
        self.suite._result_later(not marks, "gateway %s: no sanitizer report" % self.name,
                                 marks and "found %s in the log:\n%s" % (marks, _sanitizer_excerpt(log)))
        return rc

    def terminate_quietly(self):
        """Send SIGTERM now; stop() then only waits (to stop many at once)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.term_sent = True


def _sanitizer_excerpt(log):
    lines = log.splitlines()
    for i, l in enumerate(lines):
        if any(m in l for m in SANITIZER_MARKS):
            return "\n".join(lines[max(0, i - 3):i + 40])
    return ""


def run_daemon(suite, args, timeout=10.0, cwd=None):
    """Run mqgated with args to completion: (exit status, stdout+stderr)."""
    p = subprocess.run([suite.mqgated] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=scaled(timeout), cwd=cwd, preexec_fn=_pdeathsig)
    out = p.stdout.decode("utf-8", "replace")
    marks = [m for m in SANITIZER_MARKS if m in out]
    if marks:
        fail("sanitizer report from mqgated %s:\n%s" % (" ".join(args), _sanitizer_excerpt(out)))
    return p.returncode, out


# ---------------------------------------------------------------------------
# The TAP runner

class Suite(object):
    """Register tests with @suite.test(name), then sys.exit(suite.run())."""

    def __init__(self, title, broker=True, daemon=True):
        self.title = title
        self.need_broker = broker
        self.need_daemon = daemon
        self.tests = []
        self.root = None
        self.n = 0
        self.failures = []
        self.pending = []
        self.gateways = {}     # key -> Gateway
        self.all_gateways = []
        self.mosquittos = []
        self._mosq = None
        self._tmp = None
        self._gw_n = 0
        self.jwt_secret = b"mqgtest-" + b64url(os.urandom(24)).encode()
        self.minted = []       # every token made by token()
        self.mqgated = None

    # --- registration -------------------------------------------------------
    def test(self, name, timeout=20.0):
        def deco(fn):
            self.tests.append((name, fn, timeout))
            return fn
        return deco

    def add(self, name, fn, timeout=20.0):
        self.tests.append((name, fn, timeout))

    # --- fixtures -----------------------------------------------------------
    @property
    def mosquitto(self):
        """The script's shared broker (started by run()): a mosquitto
        unless MQG_BROKER names another kind."""
        return self._mosq

    broker = mosquitto

    def new_broker(self, kind=None, name=None):
        """Another broker of kind (MQG_BROKER's by default; BROKERS), for
        the scripts that run against several (test_brokers.py); Skip
        when this machine cannot run it."""
        kind = kind or BROKER_KIND
        if kind == "mosquitto":
            return self.new_mosquitto(name)
        cls = BROKERS.get(kind)
        if cls is None:
            raise ValueError("MQG_BROKER: no broker kind %r (one of %s)" % (kind, ", ".join(BROKERS)))
        why = cls.available()
        if why:
            raise Skip(why)
        name = name or "%s%d" % (kind, len(self.mosquittos) + 1)
        for attempt in range(3):
            b = cls(os.path.join(self.root, name if attempt == 0 else "%s-try%d" % (name, attempt + 1)))
            self.mosquittos.append(b)
            try:
                return b.start()
            except RuntimeError:
                stop_broker(b)
                # another process took a free port we picked: pick again
                if attempt == 2 or not re.search(r"eaddrinuse|address already in use|EADDRINUSE",
                                                 b.log_text() + read_text(b.outpath), re.I):
                    raise

    def new_mosquitto(self, name=None, acl=None, extra="", tls=None):
        """Another mosquitto, for tests that stop or restart it (tls: see
        Mosquitto)."""
        name = name or "mosquitto%d" % (len(self.mosquittos) + 1)
        for attempt in range(3):
            m = Mosquitto(os.path.join(self.root, name), acl=acl, extra=extra, tls=tls)
            try:
                m.start()
                break
            except RuntimeError:
                # another process took the free port we picked: pick again
                if attempt == 2 or "Address already in use" not in read_text(m.outpath) + m.log_text():
                    raise
        self.mosquittos.append(m)
        return m

    def tmpdir(self):
        """The current test's temporary directory (removed after the test)."""
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="test-", dir=self.root)
        return self._tmp

    def base_config(self, mosq):
        return {
            "listeners": [{"bind": "127.0.0.1", "port": None, "path": "/ws"}],
            "broker": dict({"uris": ["tcp://127.0.0.1:%d" % mosq.port],
                            "reconnect_min_s": 1, "reconnect_max_s": 2},
                           # a broker without MQTT 5 (RabbitMQ, aedes)
                           **({"mqtt_version": 4} if mosq.mqtt_version < 5 else {})),
            "log": {"level": "debug"},
        }

    def gateway(self, cfg=None, mosq=None, name=None, fresh=False, healthy=True):
        """A running gateway whose config is the base merged with cfg,
        shared with other tests asking for the same cfg unless fresh;
        healthy=False does not wait for the broker connection (see
        Gateway.start)."""
        cfg = cfg or {}
        mosq = mosq or self._mosq
        key = json.dumps([cfg, mosq.port if mosq else None], sort_keys=True, default=str)
        gw = None if fresh else self.gateways.get(key)
        if gw is not None and gw.running() and not gw.stopped:
            gw.touched = True
            return gw
        self._gw_n += 1
        name = name or "gw%d" % self._gw_n
        for attempt in range(3):
            full = deep_merge(self.base_config(mosq), cfg)
            for lst in full["listeners"]:
                lst.setdefault("bind", "127.0.0.1")
                lst.setdefault("path", "/ws")
                if not lst.get("port"):
                    lst["port"] = free_port()
            gw = Gateway(self, name if attempt == 0 else "%s-try%d" % (name, attempt + 1), full, mosq)
            gw.touched = True
            self.all_gateways.append(gw)
            try:
                gw.start(healthy=healthy)
                break
            except PortTaken:
                # another process took the free port we picked: pick again
                # (that start's exit status 1 is no failure; a sanitizer
                # report in its log still is)
                gw.stop(start_failed=attempt < 2)
                if attempt == 2:
                    raise
                diag("%s: port taken, starting again" % gw.name)
            except GatewayError:
                gw.stop()
                raise
        if not fresh:
            self.gateways[key] = gw
        return gw

    def site_cert(self):
        """A self-signed certificate for localhost and 127.0.0.1 (cert_file,
        key_file) in the script's directory, made once: the certificate of
        a proxy in front of the gateways (test_nginx, test_haproxy).
        Skip without the openssl tool."""
        if getattr(self, "_site_cert", None) is None:
            c = make_cert(self.root)
            if not c:
                raise Skip("no openssl tool to make a certificate")
            self._site_cert = c
        return self._site_cert

    def site_tls(self):
        """A client context that trusts only site_cert() and checks the
        name localhost; offers ALPN h2 and http/1.1 as a browser does."""
        if getattr(self, "_site_tls", None) is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(self.site_cert()[0])
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            self._site_tls = ctx
        return self._site_tls

    def write_file(self, name, content, mode=0o600):
        path = os.path.join(self.root, name)
        with open(path, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
        os.chmod(path, mode)
        return path

    # --- tokens -------------------------------------------------------------
    def jwt_config(self, **extra):
        """The auth.jwt config for HS256 with the suite's secret (the file
        ends in a newline, which is not part of the secret)."""
        path = os.path.join(self.root, "jwt.secret")
        if not os.path.exists(path):
            self.write_file("jwt.secret", self.jwt_secret + b"\n")
        c = {"alg": "HS256", "secret_file": path}
        c.update(extra)
        return c

    def token(self, user, roles=None, ttl=300, secret=None, alg="HS256", claims=None,
              **kw):
        now = int(time.time())
        c = {"sub": user, "iat": now, "exp": now + ttl}
        if roles is not None:
            c["roles"] = roles
        c.update(claims or {})
        for k in [k for k, v in c.items() if v is DELETE]:
            del c[k]
        tok = jwt_encode(c, self.jwt_secret if secret is None else secret, alg, **kw)
        self.minted.append(tok)
        return tok

    # --- running ------------------------------------------------------------
    def _result(self, ok, name, diagnostics=None, directive=""):
        self.n += 1
        line = "%s %d - %s%s" % ("ok" if ok else "not ok", self.n,
                                 re.sub(r"#(?=\s*(skip|todo))", "\\#", name, flags=re.I), directive)
        print(line, flush=True)
        if not ok:
            self.failures.append(name)
        if diagnostics:
            diag(diagnostics)

    def _result_later(self, ok, name, diagnostics=None):
        self.pending.append((ok, name, diagnostics))

    def _flush_pending(self):
        while self.pending:
            self._result(*self.pending.pop(0))

    def _alarm(self, signum, frame):
        raise TestTimeout()

    def _run_one(self, name, fn, timeout):
        for gw in self.all_gateways:
            gw.touched = False
            gw.mark = gw._log_size()
        self._tmp = None
        ok, diagnostics, directive = True, None, ""
        t0 = time.monotonic()
        signal.signal(signal.SIGALRM, self._alarm)
        signal.setitimer(signal.ITIMER_REAL, scaled(timeout))
        try:
            fn()
        except Skip as e:
            directive = " # SKIP %s" % e
        except TestTimeout:
            ok, diagnostics = False, "test timed out after %.1f s, %s" % (
                scaled(timeout), _where(sys.exc_info()[2]))
        except TestFailure as e:
            ok, diagnostics = False, "%s\n%s" % (e, _where(sys.exc_info()[2]))
        except Exception:
            ok, diagnostics = False, traceback.format_exc()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        while _open_resources:
            r = _open_resources.pop()
            try:
                r.close(wait=0) if isinstance(r, WS) else r.close()
            except Exception:
                pass
        dead = [gw for gw in self.all_gateways if not gw.stopped and gw.proc is not None
                and gw.proc.poll() is not None]
        for gw in dead:
            ok = False
            diagnostics = (diagnostics or "") + "\ngateway %s died during this test (status %s)" % (
                gw.name, gw.proc.returncode)
            gw.touched = True
        elapsed = time.monotonic() - t0
        self._result(ok, name, diagnostics, directive)
        if not ok:
            for gw in self.all_gateways:
                if gw.touched:
                    diag("--- %s log since the test began (%s):" % (gw.name, gw.cfgpath))
                    diag(tail(gw.log_text(True), 60))
        if elapsed > 10:
            diag("(%s took %.1f s)" % (name, elapsed))
        for gw in dead:
            gw.stop()
        if self._tmp and not os.environ.get("MQG_KEEP_TMP"):
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None
        self._flush_pending()

    def _bail(self, reason):
        print("Bail out! %s" % reason, flush=True)

    def _watchdog(self):
        print("Bail out! %s: the script ran over %d s" % (self.title, SCRIPT_TIMEOUT), flush=True)
        _kill_all()
        os._exit(1)

    def run(self):
        if self.need_broker and BROKER_KIND not in BROKERS:
            self._bail("MQG_BROKER=%s: not one of %s" % (BROKER_KIND, ", ".join(BROKERS)))
            return 1
        if self.need_broker and BROKERS[BROKER_KIND].available():
            print("1..0 # SKIP %s" % BROKERS[BROKER_KIND].available(), flush=True)
            return 0
        if self.need_broker and paho is None:
            print("1..0 # SKIP python3-paho-mqtt not installed", flush=True)
            return 0
        mqgated = os.environ.get("MQGATED")
        if not mqgated:
            here = os.path.dirname(os.path.abspath(__file__))
            mqgated = os.path.join(os.path.dirname(os.path.dirname(here)), "mqgated")
        self.mqgated = os.path.abspath(mqgated)
        if self.need_daemon and not os.access(self.mqgated, os.X_OK):
            self._bail("no mqgated at %s (set MQGATED)" % self.mqgated)
            return 1
        wd = threading.Timer(SCRIPT_TIMEOUT, self._watchdog)
        wd.daemon = True
        wd.start()
        signal.signal(signal.SIGTERM, lambda s, f: (_kill_all(), os._exit(1)))
        self.root = tempfile.mkdtemp(prefix="mqgtest-%s-" % self.title)
        self.t_start = time.monotonic()
        rc = 0
        try:
            if self.need_broker:
                try:
                    if BROKER_KIND == "mosquitto":
                        self._mosq = self.new_mosquitto("mosquitto",
                                                        acl=getattr(self, "mosquitto_acl", None))
                    else:
                        self._mosq = self.new_broker(BROKER_KIND, BROKER_KIND)
                except Exception as e:
                    self._bail("cannot start %s: %s" % (BROKER_KIND, str(e).splitlines()[0]))
                    diag(str(e))
                    return 1
            for name, fn, timeout in self.tests:
                self._run_one(name, fn, timeout)
            live = [gw for gw in self.all_gateways if not gw.stopped]
            for gw in live:
                gw.terminate_quietly()
            for gw in live:
                gw.stop()
            self._flush_pending()
            print("1..%d" % self.n, flush=True)
            diag("%s: %d tests in %.1f s" % (self.title, self.n, time.monotonic() - self.t_start))
            if self.failures:
                diag("%d of %d failed: %s" % (len(self.failures), self.n, ", ".join(self.failures)))
        except BaseException as e:
            self._bail("%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""))
            diag(traceback.format_exc())
            rc = 1
        finally:
            wd.cancel()
            for m in self.mosquittos:
                try:
                    stop_broker(m)
                except Exception:
                    pass
            _kill_all()
            if os.environ.get("MQG_KEEP_TMP"):
                diag("kept %s" % self.root)
            else:
                shutil.rmtree(self.root, ignore_errors=True)
        return rc

    # --- skip ---------------------------------------------------------------
    @staticmethod
    def skip(reason):
        raise Skip(reason)


def _where(tb):
    """The innermost frame of a test script in a traceback."""
    frames = traceback.extract_tb(tb)
    mine = [f for f in frames if os.path.basename(f.filename) != "mqgtest.py"]
    f = (mine or frames)[-1]
    return "at %s:%d: %s" % (os.path.basename(f.filename), f.lineno, f.line)


# ---------------------------------------------------------------------------
# Self-test of the harness against mosquitto (no mqgated needed)

def _selftest():
    import unittest

    class T(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            cls.root = tempfile.mkdtemp(prefix="mqgtest-self-")

        @classmethod
        def tearDownClass(cls):
            _kill_all()
            shutil.rmtree(cls.root, ignore_errors=True)

        def test_free_port(self):
            p = free_port()
            self.assertTrue(1024 <= p < 65536)
            self.assertFalse(port_open(p))

        def test_jwt_vector(self):
            # RFC 7515 appendix A.1's key, HS256 over our own encoding
            t = jwt_encode({"sub": "alice", "exp": 1}, b"k")
            h, p, s = t.split(".")
            self.assertEqual(json.loads(base64.urlsafe_b64decode(p + "==")), {"sub": "alice", "exp": 1})
            sig = hmac.new(b"k", (h + "." + p).encode(), hashlib.sha256).digest()
            self.assertEqual(s, b64url(sig))
            self.assertTrue(jwt_encode({}, b"k", alg="none").endswith("."))

        def test_totp_rfc6238(self):
            secret = base64.b32encode(b"12345678901234567890").decode()
            self.assertEqual(totp(secret, at=59, digits=8), "94287082")
            self.assertEqual(totp(secret, at=1111111109, digits=8), "07081804")

        def test_crypt(self):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import crypt
            h = crypt_hash("pw")
            self.assertTrue(h.startswith("$y$"), h)
            self.assertEqual(crypt.crypt("pw", h), h)

        def test_mask_and_frames(self):
            key = b"\x01\x02\x03\x04"
            self.assertEqual(mask_bytes(mask_bytes(b"hello world", key), key), b"hello world")
            f = frame_bytes(TEXT, b"x" * 70000, mask=False)
            self.assertEqual(f[:2], b"\x81\x7f")
            ws = WS(None, f + frame_bytes(PING, b"p", mask=False), {})
            fr = ws._parse()
            self.assertEqual((fr.opcode, len(fr.payload)), (TEXT, 70000))
            self.assertEqual(ws._parse().opcode, PING)
            self.assertIsNone(ws._parse())

        def test_deflate_roundtrip(self):
            ws = WS(None, b"", {"sec-websocket-extensions": "permessage-deflate; client_max_window_bits=15"})
            c1 = ws.compress('{"op":"ping"}')
            c2 = ws.compress('{"op":"ping"}')
            d = zlib.decompressobj(-15)
            self.assertEqual(d.decompress(c1 + b"\x00\x00\xff\xff"), b'{"op":"ping"}')
            self.assertEqual(d.decompress(c2 + b"\x00\x00\xff\xff"), b'{"op":"ping"}')

        def test_mosquitto_and_paho(self):
            m = Mosquitto(os.path.join(self.root, "m1"), acl="topic deny denied/#\ntopic readwrite #\n").start()
            try:
                sub = Mqtt(m.port)
                pub = Mqtt(m.port, version=5)
                self.assertEqual(sub.subscribe("a/#", 2)[0], 2)
                pub.publish("a/1", b"x", qos=1, retain=True)
                msg = sub.get()
                self.assertEqual((msg.topic, msg.payload, msg.qos, msg.retain), ("a/1", b"x", 1, False))
                late = Mqtt(m.port)
                late.subscribe("a/#", 1)
                msg = late.get()
                self.assertTrue(msg.retain)
                port = m.port
                m.kill9()
                self.assertFalse(port_open(port))
                m.restart()
                self.assertEqual(m.port, port)
                self.assertTrue(port_open(port))
                for c in (sub, pub, late):
                    c.close()
            finally:
                m.stop()

        def test_ws_client_against_mosquitto(self):
            # mosquitto's websockets listener: subprotocol "mqtt", binary frames
            wsport = free_port()
            m = Mosquitto(os.path.join(self.root, "m2"),
                          extra="listener %d\nprotocol websockets\n" % wsport).start()
            try:
                wait_for(lambda: port_open(wsport), 5, what="mosquitto ws port")
                ws = ws_handshake(wsport, "/mqtt", protocols=["mqtt"])
                self.assertEqual(ws.protocol, "mqtt")
                connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 30, 0, 0])
                ws.send_binary(connect)
                op, data = ws.recv_message()
                self.assertEqual(op, BINARY)
                self.assertEqual(data[:2], b"\x20\x02")   # CONNACK
                # PINGREQ split over two fragments
                ws.send_fragments([b"\xc0", b"\x00"], opcode=BINARY)
                op, data = ws.recv_message()
                self.assertEqual(data, b"\xd0\x00")        # PINGRESP
                ws.close()
                self.assertTrue(ws.closed)
            finally:
                m.stop()

        def test_ca_and_mosquitto_tls(self):
            if not shutil.which("openssl"):
                self.skipTest("no openssl tool")
            ca = CertAuthority(os.path.join(self.root, "ca"))
            srv = ca.issue("srv")
            cli = ca.issue("cli", client=True)
            m = Mosquitto(os.path.join(self.root, "m4"), tls={
                "cafile": ca.cert, "certfile": srv[0], "keyfile": srv[1],
                "require_certificate": True}).start()
            try:
                c = Mqtt(m.tls_port, tls=ca.client_context(cert=cli))
                self.assertEqual(c.subscribe("t/#", 1)[0], 1)
                c.publish("t/1", b"z", qos=1)
                self.assertEqual(c.get().payload, b"z")
                with self.assertRaises(ssl.SSLError):   # no client certificate
                    ca.client_context().wrap_socket(
                        socket.create_connection(("127.0.0.1", m.tls_port)),
                        server_hostname="127.0.0.1").recv(1)
                c.close()
            finally:
                m.stop()

        def test_http_request(self):
            wsport = free_port()
            m = Mosquitto(os.path.join(self.root, "m3"),
                          extra="listener %d\nprotocol websockets\n" % wsport).start()
            try:
                wait_for(lambda: port_open(wsport), 5, what="mosquitto ws port")
                try:   # mosquitto's lws may hang up without an answer
                    st = http_request(wsport, "/nothing-here")[0]
                    self.assertIn(st, (400, 403, 404))
                except http.client.RemoteDisconnected:
                    pass
                with self.assertRaises(HandshakeRefused):
                    ws_handshake(wsport, "/mqtt", protocols=["nope"], timeout=2)
            finally:
                m.stop()

    suite = unittest.defaultTestLoader.loadTestsFromTestCase(T)
    r = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if r.wasSuccessful() else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        sys.exit(_selftest())
    print(__doc__)
