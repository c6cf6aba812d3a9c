#!/usr/bin/python3
"""TLS: wss listeners (ECDSA and RSA certificates, ALPN), client
certificates, certificate reload on SIGHUP, TLS to the broker (server
verification and client certificates), --check-config of TLS files.

Every certificate is made at run time with the openssl tool by a test CA
in the script's temporary directory."""

import json
import os
import socket
import ssl
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq                          # noqa: E402

t = T.Suite("tls")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]}}
ANON = {"auth": {"anonymous_role": "all"}, "roles": ROLES}
HELLO = {"op": "hello", "proto": 1, "server": "mqgate/0.1.0", "auth": [],
         "allow": {"subscribe": ["#"], "publish": ["#"]}}  # anonymous role "all"
STATUS_UP = {"op": "status", "broker": "up"}

_pki = {}


def pki():
    """The script's certificates, made once: a test CA and another CA,
    server certificates (ECDSA P-256 and RSA 2048) and client ones."""
    if not _pki:
        d = os.path.join(t.root, "pki")
        ca = T.CertAuthority(d, "mqgtest CA")
        other = T.CertAuthority(os.path.join(d, "other"), "other CA")
        _pki.update(
            ca=ca, other=other,
            ec=ca.issue("server-ec", "ecdsa.mqgate.test"),
            rsa=ca.issue("server-rsa", "rsa.mqgate.test", key="rsa"),
            client=ca.issue("client-good", "client-good", client=True),
            rogue=other.issue("client-rogue", "client-rogue", client=True),
            mosq=ca.issue("mosquitto", "mosquitto.test"),
            gwclient=ca.issue("gateway-client", "mqgate-gateway", client=True),
        )
    return _pki


def tls_listener(cert, **extra):
    tls = {"cert_file": cert[0], "key_file": cert[1]}
    tls.update(extra)
    return {"path": "/ws", "tls": tls}


def peer_cn(sock):
    """The CN of the peer certificate as parsed by a verifying context."""
    for rdn in sock.getpeercert().get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def served(gw, listener, ca):
    """The DER certificate a new session on listener is served (the
    session must get its hello; it is closed then)."""
    ws = gw.ws(listener=listener, tls=ca.client_context(alpn=["http/1.1"]))
    der = ws.sock.getpeercert(binary_form=True)
    eq(T.strip_epoch(ws.recv_json()), HELLO, "hello on listener %d" % listener)
    ws.close(wait=0)
    return der


def upgrade_request(port):
    return ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqgate.v1\r\n\r\n"
            % port).encode()


def probe(port, ctx, timeout=3.0):
    """Connect with ctx and send a WebSocket upgrade.  Returns (stage,
    detail): ("handshake", SSL error) when the TLS handshake fails,
    ("after", SSL error or OSError) when it fails on the first read,
    ("eof", b"") on a clean close, ("answer", bytes) when the gateway
    answers (the bytes read within timeout)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=T.scaled(timeout))
    try:
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
        except (ssl.SSLError, OSError) as e:
            return "handshake", "%s: %s" % (type(e).__name__, getattr(e, "reason", None) or e)
        try:
            s.sendall(upgrade_request(port))
            data = s.recv(65536)
        except (ssl.SSLError, OSError) as e:
            return "after", "%s: %s" % (type(e).__name__, getattr(e, "reason", None) or e)
        finally:
            s.close()
        return ("answer", data) if data else ("eof", b"")
    finally:
        raw.close()


# --- 1. wss listeners -------------------------------------------------------

def wss_gateway():
    p = pki()
    return t.gateway(dict(ANON, listeners=[{"path": "/ws"}, tls_listener(p["ec"]),
                                           tls_listener(p["rsa"])]))


@t.test("wss: ECDSA P-256 and RSA 2048 listeners serve their certificate, ALPN http/1.1, hello")
def _():
    p = pki()
    gw = wss_gateway()
    for i, (cert, cn, kind) in enumerate(((p["ec"], "ecdsa.mqgate.test", "ECDSA"),
                                          (p["rsa"], "rsa.mqgate.test", "RSA")), 1):
        ws = gw.ws(listener=i, tls=p["ca"].client_context(alpn=["http/1.1"]))
        der = ws.sock.getpeercert(binary_form=True)
        eq(T.fingerprint(der), T.fingerprint(T.cert_der(cert[0])),
           "SHA-256 fingerprint of the certificate served on the %s listener" % kind)
        eq(peer_cn(ws.sock), cn, "subject CN on the %s listener" % kind)
        eq(ws.sock.selected_alpn_protocol(), "http/1.1", "ALPN on the %s listener" % kind)
        T.diag("%s listener: %s, %s" % (kind, ws.sock.version(), ws.sock.cipher()[0]))
        eq(ws.protocol, "mqgate.v1", "subprotocol over TLS")
        eq(T.strip_epoch(ws.recv_json()), HELLO, "hello over TLS (%s)" % kind)
        eq(ws.recv_json(), STATUS_UP, "status over TLS (%s)" % kind)
        eq(ws.sync(), [], "frames before the first pong (%s)" % kind)
        eq(gw.http("/healthz", listener=i, tls=p["ca"].client_context())[0], 200,
           "healthz over TLS (%s)" % kind)


@t.test("wss: a client offering only ALPN h2 gets a working WebSocket on http/1.1 or a clean refusal")
def _():
    p = pki()
    gw = wss_gateway()
    for i in (1, 2):
        ctx = p["ca"].client_context(alpn=["h2"])
        try:
            ws = gw.ws(listener=i, tls=ctx)
        except ssl.SSLError as e:
            # OpenSSL's server answers an ALPN mismatch with the fatal alert
            # no_application_protocol
            T.diag("listener %d, ALPN [h2] only: refused at the TLS handshake: %s" % (i, e.reason))
            check(e.reason == "TLSV1_ALERT_NO_APPLICATION_PROTOCOL",
                  "refusal of an h2-only client is not the no_application_protocol alert: %s" % e)
            continue
        alpn = ws.sock.selected_alpn_protocol()
        T.diag("listener %d, ALPN [h2] only: accepted, ALPN %r" % (i, alpn))
        check(alpn != "h2", "listener %d negotiated h2" % i)
        eq(T.strip_epoch(ws.recv_json()), HELLO, "hello for an h2-only client")
        eq(ws.recv_json(), STATUS_UP, "status for an h2-only client")
        ws.sync()
    # the listeners still serve
    for i in (1, 2):
        served(gw, i, p["ca"])


@t.test("wss: a plain-TCP client on the TLS port gets no hello")
def _():
    gw = wss_gateway()
    for i in (1, 2):
        port = gw.ports[i]
        s = socket.create_connection(("127.0.0.1", port), timeout=T.scaled(3))
        got = b""
        how = "timeout"
        try:
            s.sendall(upgrade_request(port))
            deadline = time.monotonic() + T.scaled(3)
            while time.monotonic() < deadline:
                s.settimeout(max(0.05, deadline - time.monotonic()))
                data = s.recv(65536)
                if not data:
                    how = "closed"
                    break
                got += data
        except socket.timeout:
            how = "timeout"
        except OSError as e:
            how = "error %s" % e
        finally:
            s.close()
        T.diag("listener %d, plaintext upgrade on the TLS port: %s after %d bytes %r"
               % (i, how, len(got), got[:120]))
        check(b" 101 " not in got.split(b"\r\n", 1)[0], "plaintext upgrade answered 101: %r" % got[:200])
        check(b"hello" not in got, "plaintext client got a hello: %r" % got[:200])
        # what lws 4.1 does: reads the plaintext as a bad TLS record and
        # drops the connection (a reset, as the request is left unread)
        eq(got, b"", "bytes the gateway sent to a plaintext client on its TLS port")
        check(how == "closed" or "reset" in how,
              "plaintext connection on the TLS port not ended within 3 s: %s" % how)
    for i in (1, 2):
        served(gw, i, pki()["ca"])


# --- 2. client certificates -------------------------------------------------

def mtls_gateway():
    p = pki()
    return t.gateway(dict(ANON, listeners=[
        {"path": "/ws"}, tls_listener(p["ec"], ca_file=p["ca"].cert, verify_client=True)]))


@t.test("client certificates: verify_client with ca_file accepts a certificate from the CA")
def _():
    p = pki()
    gw = mtls_gateway()
    for ver in (None, ssl.TLSVersion.TLSv1_2):
        ctx = p["ca"].client_context(cert=p["client"], alpn=["http/1.1"], max_version=ver)
        ws = gw.ws(listener=1, tls=ctx)
        T.diag("client certificate accepted over %s" % ws.sock.version())
        eq(T.strip_epoch(ws.recv_json()), HELLO, "hello for a client with a good certificate")
        eq(ws.recv_json(), STATUS_UP, "status")
        ws.sync()


@t.test("client certificates: none, another CA's or a self-signed one is refused at the TLS handshake")
def _():
    p = pki()
    gw = mtls_gateway()
    port = gw.ports[1]
    selfsigned = T.make_cert(t.tmpdir())
    seen, bad = [], []
    for who, cert in (("no certificate", None), ("another CA's certificate", p["rogue"]),
                      ("a self-signed certificate", selfsigned)):
        for ver in (ssl.TLSVersion.TLSv1_2, None):
            vname = "TLS 1.2" if ver else "TLS 1.3"
            stage, detail = probe(port, p["ca"].client_context(cert=cert, max_version=ver))
            if isinstance(detail, bytes):
                detail = repr(detail.split(b"\r\n", 1)[0])
            seen.append("%s, %s: %s %s" % (who, vname, stage, detail))
            # TLS 1.2: the server checks the client certificate inside the
            # handshake, so the client's handshake fails.  TLS 1.3: the
            # client's handshake ends before the server has read its
            # certificate; the refusal (an alert or a close) comes with the
            # first read.  Never an HTTP answer.
            if stage not in (("handshake",) if ver else ("handshake", "after", "eof")):
                bad.append("%s over %s: %s %s" % (who, vname, stage, detail))
    T.diag("\n".join(seen))
    check(not bad, "not refused at the TLS handshake:\n" + "\n".join(bad))
    gw.assert_serving()
    ws = gw.ws(listener=1, tls=p["ca"].client_context(cert=p["client"]))
    eq(T.strip_epoch(ws.recv_json()), HELLO, "a good client after the refusals")


# --- 3. SIGHUP certificate reload -------------------------------------------

def install(pair, cfile, kfile):
    """Put a certificate and key in place the way an operator's tool would:
    write new files and rename them over the old ones."""
    for src, dst in zip(pair, (cfile, kfile)):
        with open(src, "rb") as f:
            data = f.read()
        tmp = dst + ".new"
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, dst)


REFUSED = "error: reload refused: the running configuration stays"


def hup_and_wait(gw, what):
    return gw.reload(what)


@t.test("SIGHUP: certificate reload (new sessions see the new certificate, old ones keep working; "
        "garbage, missing and key type change refused)", timeout=40)
def _():
    p = pki()
    ca = p["ca"]
    d = os.path.join(t.root, "reload")
    a = ca.issue("reload-a", "reload-a.mqgate.test")
    b = ca.issue("reload-b", "reload-b.mqgate.test")
    c = ca.issue("reload-c", "reload-c.mqgate.test", key="rsa")
    os.makedirs(d, exist_ok=True)
    cfile, kfile = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    install(a, cfile, kfile)
    gw = t.gateway(dict(ANON, listeners=[{"path": "/ws"}, tls_listener((cfile, kfile))]),
                   fresh=True, name="reload")
    der_a, der_b = T.cert_der(a[0]), T.cert_der(b[0])

    old = gw.ws(listener=1, tls=ca.client_context())
    eq(T.fingerprint(old.sock.getpeercert(True)), T.fingerprint(der_a), "certificate before reload")
    eq(T.strip_epoch(old.recv_json()), HELLO, "hello")
    old.sync()

    # A -> B
    install(b, cfile, kfile)
    log = hup_and_wait(gw, "A to B")
    T.diag("A -> B reload log:\n" + log.strip())
    check("configuration reloaded" in log, "reload of certificate B not accepted:\n" + log)
    check("certificate %s loaded" % cfile in log, "no line saying the certificate was loaded")
    eq(T.fingerprint(served(gw, 1, ca)), T.fingerprint(der_b), "certificate of a new session after reload")
    old.sync()   # the session opened on A keeps working

    # garbage in the certificate file
    with open(cfile, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nthis is not base64 at all\n-----END CERTIFICATE-----\n")
    log = hup_and_wait(gw, "garbage")
    T.diag("garbage certificate reload log:\n" + log.strip())
    check("configuration reloaded" not in log, "a garbage certificate was accepted:\n" + log)
    check(REFUSED in log.splitlines(), "no %r line:\n%s" % (REFUSED, log))
    check([l for l in log.splitlines() if l.startswith("error: reload: %s / %s: " % (cfile, kfile))],
          "no error line naming %s:\n%s" % (cfile, log))
    eq(T.fingerprint(served(gw, 1, ca)), T.fingerprint(der_b), "certificate after a refused reload (garbage)")
    old.sync()

    # a missing certificate file
    os.unlink(cfile)
    log = hup_and_wait(gw, "missing")
    T.diag("missing certificate reload log:\n" + log.strip())
    check("configuration reloaded" not in log, "a missing certificate was accepted:\n" + log)
    check(REFUSED in log.splitlines(), "no %r line:\n%s" % (REFUSED, log))
    check("%s: listeners[1].tls.cert_file: %s: No such file or directory" % (gw.cfgpath, cfile)
          in log.splitlines(), "no line naming listeners[1].tls.cert_file and %s:\n%s" % (cfile, log))
    eq(T.fingerprint(served(gw, 1, ca)), T.fingerprint(der_b), "certificate after a refused reload (missing)")

    # certificate and key that do not match (A's certificate, B's key)
    install((a[0], b[1]), cfile, kfile)
    log = hup_and_wait(gw, "mismatch")
    T.diag("mismatched pair reload log:\n" + log.strip())
    check("configuration reloaded" not in log, "a certificate with another key was accepted:\n" + log)
    check(REFUSED in log.splitlines(), "no %r line:\n%s" % (REFUSED, log))
    check([l for l in log.splitlines() if l.startswith("error: reload: %s / %s: " % (cfile, kfile))],
          "no error line naming %s:\n%s" % (cfile, log))
    eq(T.fingerprint(served(gw, 1, ca)), T.fingerprint(der_b), "certificate after a refused reload (mismatch)")

    # ECDSA -> RSA
    install(c, cfile, kfile)
    log = hup_and_wait(gw, "key type")
    T.diag("ECDSA -> RSA reload log:\n" + log.strip())
    check("configuration reloaded" not in log, "an RSA certificate replaced the ECDSA one:\n" + log)
    check(REFUSED in log.splitlines(), "no %r line:\n%s" % (REFUSED, log))
    want = ("error: reload: listeners[1]: %s has another key type than the running certificate; "
            "that change needs a restart" % cfile)
    check(want in log.splitlines(), "no line %r:\n%s" % (want, log))
    eq(T.fingerprint(served(gw, 1, ca)), T.fingerprint(der_b), "certificate after a refused key type change")
    old.sync()
    eq(old.closed, False, "the session opened before the reloads is open")

    # and back to a good ECDSA pair: accepted again
    install(a, cfile, kfile)
    log = hup_and_wait(gw, "B to A")
    check("configuration reloaded" in log, "reload back to certificate A not accepted:\n" + log)
    eq(T.fingerprint(served(gw, 1, ca)), T.fingerprint(der_a), "certificate after reloading A again")
    old.sync()
    old.close()
    gw.stop()


# --- 4. TLS to the broker ---------------------------------------------------

_tls_mosq = {}


def tls_mosquitto(require_cert=False):
    key = "req" if require_cert else "plain"
    if key not in _tls_mosq:
        p = pki()
        _tls_mosq[key] = t.new_mosquitto("mosq-tls-" + key, tls={
            "cafile": p["ca"].cert, "certfile": p["mosq"][0], "keyfile": p["mosq"][1],
            "require_certificate": require_cert})
    return _tls_mosq[key]


def broker_tls_gateway(m, tls, name, healthy=True):
    cfg = dict(ANON, broker={"uris": ["ssl://127.0.0.1:%d" % m.tls_port], "tls": tls,
                             "reconnect_min_s": 1, "reconnect_max_s": 1})
    return t.gateway(cfg, mosq=m, name=name, fresh=True, healthy=healthy)


def stays_down(gw, seconds=3.0):
    """/healthz answers 503 (never anything else) for seconds."""
    deadline = time.monotonic() + T.scaled(seconds)
    statuses = set()
    while time.monotonic() < deadline:
        statuses.add(gw.health())
        time.sleep(0.2)
    eq(sorted(statuses, key=str), [503], "/healthz statuses over %.1f s" % seconds)


def connect_failures(gw):
    return [l for l in gw.log_text().splitlines() if "broker connect to ssl://" in l]


@t.test("broker TLS: ca_file of the test CA connects; messages flow both ways over TLS", timeout=30)
def _():
    p = pki()
    m = tls_mosquitto()
    gw = broker_tls_gateway(m, {"ca_file": p["ca"].cert}, "up-ca")
    eq(gw.http("/healthz")[0], 200, "healthz")
    check("connected to broker ssl://127.0.0.1:%d" % m.tls_port in gw.log_text(),
          "no 'connected to broker ssl://...' line")
    mctx = p["ca"].client_context()
    pub = T.Mqtt(m.tls_port, tls=mctx)
    ws = gw.session()
    r = ws.request({"op": "sub", "id": 1, "topic": "tls/#", "qos": 1})
    eq(r, {"op": "ok", "id": 1, "qos": 1}, "sub reply")
    pub.publish("tls/in", b'{"over":"tls"}', qos=1)
    eq(ws.recv_json(), {"op": "msg", "topic": "tls/in", "payload": {"over": "tls"}, "qos": 1,
                        "retain": False}, "message published over TLS")
    sub = T.Mqtt(m.tls_port, tls=mctx)
    sub.subscribe("tls/out", 1)
    eq(ws.request({"op": "pub", "id": 2, "topic": "tls/out", "text": "hi", "qos": 1}),
       {"op": "ok", "id": 2}, "pub reply")
    msg = sub.get()
    eq((msg.topic, msg.payload, msg.qos), ("tls/out", b"hi", 1), "message from the gateway")
    gw.stop()


@t.test("broker TLS: another CA with verify true never connects (healthz 503, failure logged); "
        "verify false connects", timeout=30)
def _():
    p = pki()
    m = tls_mosquitto()
    gw = broker_tls_gateway(m, {"ca_file": p["other"].cert}, "up-wrongca", healthy=False)
    stays_down(gw, 3)
    fails = connect_failures(gw)
    T.diag("wrong CA, verify true:\n" + "\n".join(fails[:3]))
    check(len(fails) >= 2, "no repeated 'broker connect to ssl://... failed' lines:\n" + gw.log_text())
    check("connected to broker" not in gw.log_text(), "the gateway connected with the wrong CA")
    ws = gw.ws()
    eq(T.strip_epoch(ws.recv_json()), HELLO, "hello while the broker is unreachable")
    eq(ws.recv_json(), {"op": "status", "broker": "down"}, "status while the broker is unreachable")
    ws.close(wait=0)
    gw.stop()

    gw = broker_tls_gateway(m, {"ca_file": p["other"].cert, "verify": False}, "up-noverify")
    eq(gw.http("/healthz")[0], 200, "healthz with verify false")
    ws = gw.session()
    eq(ws.request({"op": "sub", "id": 1, "topic": "nv/#"}), {"op": "ok", "id": 1, "qos": 0}, "sub")
    T.Mqtt(m.tls_port, tls=p["ca"].client_context()).publish("nv/1", b"x")
    eq(ws.recv_json(), {"op": "msg", "topic": "nv/1", "text": "x", "qos": 0, "retain": False}, "msg")
    gw.stop()


@t.test("broker TLS: a certificate from the right CA for another host name never connects (verify true)",
        timeout=30)
def _():
    p = pki()
    wrong_host = p["ca"].issue("mosquitto-elsewhere", "elsewhere.example", san="DNS:elsewhere.example")
    m = t.new_mosquitto("mosq-tls-elsewhere", tls={
        "cafile": p["ca"].cert, "certfile": wrong_host[0], "keyfile": wrong_host[1]})
    gw = broker_tls_gateway(m, {"ca_file": p["ca"].cert}, "up-wronghost", healthy=False)
    stays_down(gw, 2.5)
    fails = connect_failures(gw)
    T.diag("host name mismatch, verify true:\n" + "\n".join(fails[:2]))
    check(fails, "no 'broker connect to ssl://... failed' line:\n" + gw.log_text())
    check("connected to broker" not in gw.log_text(), "the gateway connected to a broker "
          "whose certificate names another host")
    gw.stop()
    m.stop()


@t.test("broker TLS: require_certificate: the gateway's client certificate connects, none does not",
        timeout=30)
def _():
    p = pki()
    m = tls_mosquitto(require_cert=True)
    gw = broker_tls_gateway(m, {"ca_file": p["ca"].cert, "cert_file": p["gwclient"][0],
                                "key_file": p["gwclient"][1]}, "up-cert")
    eq(gw.http("/healthz")[0], 200, "healthz with a client certificate")
    ws = gw.session()
    eq(ws.request({"op": "sub", "id": 1, "topic": "cc/#"}), {"op": "ok", "id": 1, "qos": 0}, "sub")
    T.Mqtt(m.tls_port, tls=p["ca"].client_context(cert=p["client"])).publish("cc/1", b"y")
    eq(ws.recv_json(), {"op": "msg", "topic": "cc/1", "text": "y", "qos": 0, "retain": False}, "msg")
    gw.stop()

    gw = broker_tls_gateway(m, {"ca_file": p["ca"].cert}, "up-nocert", healthy=False)
    stays_down(gw, 3)
    fails = connect_failures(gw)
    T.diag("no client certificate:\n" + "\n".join(fails[:3]))
    check(fails, "no 'broker connect to ssl://... failed' line:\n" + gw.log_text())
    check("connected to broker" not in gw.log_text(), "the gateway connected without a certificate")
    gw.stop()


# --- 5. --check-config ------------------------------------------------------

def check_config(listener_tls):
    d = t.tmpdir()
    cfg = t.base_config(t.mosquitto)
    cfg["listeners"] = [{"bind": "127.0.0.1", "port": T.free_port(), "path": "/ws",
                         "tls": listener_tls}]
    path = os.path.join(d, "check.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    rc, out = T.run_daemon(t, ["--check-config", "-c", path])
    return path, rc, out


@t.test("--check-config: a missing listener cert_file: exit 1 naming listeners[0].tls.cert_file and the file")
def _():
    p = pki()
    missing = os.path.join(t.tmpdir(), "no-such-cert.pem")
    path, rc, out = check_config({"cert_file": missing, "key_file": p["ec"][1]})
    T.diag("exit %d, output:\n%s" % (rc, out.rstrip()))
    eq(rc, 1, "exit status")
    eq([l for l in out.splitlines() if "listeners[0].tls.cert_file" in l],
       ["%s: listeners[0].tls.cert_file: %s: No such file or directory" % (path, missing)],
       "lines naming listeners[0].tls.cert_file")


@t.test("--check-config: a key file of mode 0644: exit 0 with a warning; mode 0600: no warning")
def _():
    p = pki()
    d = t.tmpdir()
    key = os.path.join(d, "key.pem")
    with open(p["ec"][1], "rb") as src, open(key, "wb") as dst:
        dst.write(src.read())
    os.chmod(key, 0o644)
    path, rc, out = check_config({"cert_file": p["ec"][0], "key_file": key})
    T.diag("mode 0644: exit %d, output:\n%s" % (rc, out.rstrip()))
    eq(rc, 0, "exit status with a world-readable key")
    eq([l for l in out.splitlines() if "warning" in l],
       ["%s: listeners[0].tls.key_file: %s: warning: readable by every user (chmod 600)" % (path, key)],
       "warning lines")
    os.chmod(key, 0o600)
    path, rc, out = check_config({"cert_file": p["ec"][0], "key_file": key})
    eq(rc, 0, "exit status with a 0600 key")
    eq([l for l in out.splitlines() if "warning" in l], [], "warning lines with a 0600 key")


if __name__ == "__main__":
    sys.exit(t.run())
