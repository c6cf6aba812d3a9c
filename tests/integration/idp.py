"""A small identity provider for the tests of auth.jwt.jwks_url and
auth.http: an HTTP(S) server (http.server, TLS with a certificate the
test's CertAuthority issued) that serves a JWK Set or answers webhook
POSTs as the test says, and counts and records what it was asked; keys,
their JWKs and tokens signed with them (python3-cryptography)."""

import base64
import http.server
import json
import ssl
import threading
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(n, size=None):
    return b64url(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


_HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES = {"P-256": (ec.SECP256R1, 32), "P-384": (ec.SECP384R1, 48),
           "P-521": (ec.SECP521R1, 66)}


class Key(object):
    """A signing key: kind "RSA" (2048 bits) or an EC curve ("P-256",
    "P-384"), with kid and optional JWK members (alg, use)."""

    def __init__(self, kid, kind="RSA", **members):
        self.kid = kid
        self.kind = kind
        self.members = members
        if kind == "RSA":
            self.priv = rsa.generate_private_key(65537, 2048)
        else:
            self.priv = ec.generate_private_key(_CURVES[kind][0]())
        self.pub = self.priv.public_key()

    def jwk(self, **over):
        if self.kind == "RSA":
            n = self.pub.public_numbers()
            d = {"kty": "RSA", "n": _int_b64(n.n), "e": _int_b64(n.e)}
        else:
            n = self.pub.public_numbers()
            size = _CURVES[self.kind][1]
            d = {"kty": "EC", "crv": self.kind, "x": _int_b64(n.x, size),
                 "y": _int_b64(n.y, size)}
        if self.kid is not None:
            d["kid"] = self.kid
        d.update(self.members)
        d.update(over)
        return dict((k, v) for k, v in d.items() if v is not None)

    def pem(self):
        return self.pub.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, alg, data):
        h = _HASH[alg[2:]]()
        if alg.startswith("RS"):
            return self.priv.sign(data, padding.PKCS1v15(), h)
        if alg.startswith("PS"):
            return self.priv.sign(data, padding.PSS(padding.MGF1(h), h.digest_size), h)
        der = self.priv.sign(data, ec.ECDSA(h))
        r, s = utils.decode_dss_signature(der)
        size = _CURVES[self.kind][1]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def token(key, user, alg=None, ttl=300, roles=None, kid=Ellipsis, header=None,
          claims=None, sign_with=None):
    """A JWT for user signed by key (alg: RS256 for RSA, ES* by curve);
    kid: the key's unless given (None: no kid); sign_with: a callable
    (signing_input) -> signature standing in for the key."""
    alg = alg or ("RS256" if key.kind == "RSA" else
                  {"P-256": "ES256", "P-384": "ES384"}[key.kind])
    h = {"alg": alg, "typ": "JWT"}
    kid = key.kid if kid is Ellipsis else kid
    if kid is not None:
        h["kid"] = kid
    h.update(header or {})
    now = int(time.time())
    c = {"sub": user, "iat": now, "exp": now + ttl}
    if roles is not None:
        c["roles"] = roles
    c.update(claims or {})
    si = (b64url(json.dumps(h, separators=(",", ":")).encode()) + "." +
          b64url(json.dumps(c, separators=(",", ":")).encode())).encode()
    sig = sign_with(si) if sign_with else (b"" if alg == "none" else key.sign(alg, si))
    return si.decode() + "." + b64url(sig)


class Server(object):
    """An HTTP server on 127.0.0.1 (HTTPS with cert=(cert_file, key_file))
    that answers each request with handler(request) -> (status, body bytes
    or str or object as JSON, delay_s). request: method, path, headers
    (dict, lower-case names), body (bytes), json (or None). Every request
    is kept in .requests."""

    def __init__(self, handler, cert=None):
        self.handler = handler
        self.requests = []
        self.lock = threading.Lock()
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                try:
                    js = json.loads(body) if body else None
                except ValueError:
                    js = None
                req = {"method": self.command, "path": self.path, "body": body, "json": js,
                       "headers": dict((k.lower(), v) for k, v in self.headers.items()),
                       "t": time.monotonic()}
                with srv.lock:
                    srv.requests.append(req)
                status, out, delay = srv.handler(req)
                if delay:
                    time.sleep(delay)
                if status is None:          # hang up without an answer
                    self.close_connection = True
                    return
                if not isinstance(out, (bytes, str)):
                    out = json.dumps(out)
                if isinstance(out, str):
                    out = out.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass

            do_GET = _serve
            do_POST = _serve

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*cert)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if cert else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def count(self, pred=None):
        with self.lock:
            return len([r for r in self.requests if pred is None or pred(r)])

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
