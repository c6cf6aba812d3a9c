#!/usr/bin/python3
"""Static files (listeners[].static_dir): the security headers of every
answer (a Content-Security-Policy that lets the dashboard connect only to
this gateway, nosniff, Referrer-Policy, X-Frame-Options), and hidden files
and directories (.git/, .env), which are never served, also when the dot
is percent-encoded or reached through a symbolic link."""

import os
import socket
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq                          # noqa: E402

t = T.Suite("static")

ROLES = {"viewer": {"subscribe": ["sensor/#"]}}
SECRET = b"TOP-SECRET-DOTFILE"


def static_dir():
    """A static_dir with ordinary files beside hidden ones, a hidden
    directory, and symbolic links to hidden things."""
    www = os.path.join(t.root, "www")
    if not os.path.isdir(www):
        files = {"index.html": b"<!doctype html><h1>mqgate</h1>\n",
                 "app.js": b"console.log('hi');\n",
                 "style.css": b"h1 { color: red }\n",
                 "sub/page.html": b"<p>sub</p>\n",
                 "sub/.htpasswd": SECRET + b" htpasswd\n",
                 ".env": SECRET + b" env\n",
                 ".git/config": SECRET + b" git config\n",
                 ".git/HEAD": SECRET + b" git head\n",
                 ".well-known/x.txt": SECRET + b" well-known\n"}
        for name, data in files.items():
            path = os.path.join(www, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        os.symlink(".env", os.path.join(www, "env-link.txt"))
        os.symlink(".git", os.path.join(www, "gitdir"))
    return www


def gateway():
    return t.gateway({"auth": {"anonymous_role": "viewer"}, "roles": ROLES,
                      "listeners": [{"path": "/ws", "static_dir": static_dir()}]})


def tls_gateway():
    cert = T.make_cert(t.tmpdir())
    if not cert:
        t.skip("no openssl tool")
    return t.gateway({"auth": {"anonymous_role": "viewer"}, "roles": ROLES,
                      "listeners": [{"path": "/ws", "static_dir": static_dir(),
                                     "tls": {"cert_file": cert[0], "key_file": cert[1]}}]})


def raw_get(port, path, host):
    """GET path with exactly this Host header (http.client would add its
    own): (status, headers lowercased, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=T.scaled(5))
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (path, host)).encode("latin-1"))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return int(lines[0].split()[1]), hdrs, body


def csp_directives(value):
    """{directive: [sources]} of a Content-Security-Policy value."""
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            check(words[0] not in out, "directive %s twice in %r" % (words[0], value))
            out[words[0]] = words[1:]
    return out


def check_policy(hdrs, what, connect):
    """hdrs (lowercased, each a list of values) carry one strict CSP whose
    connect-src is exactly connect, and the other security headers."""
    csp = hdrs.get("content-security-policy", [])
    eq(len(csp), 1, "%s: number of Content-Security-Policy headers (%r)" % (what, csp))
    d = csp_directives(csp[0])
    eq(d.get("default-src"), ["'none'"], "%s: default-src" % what)
    eq(d.get("script-src"), ["'self'"], "%s: script-src (no inline, no eval)" % what)
    eq(d.get("style-src"), ["'self'"], "%s: style-src" % what)
    eq(d.get("frame-ancestors"), ["'none'"], "%s: frame-ancestors" % what)
    eq(d.get("base-uri"), ["'none'"], "%s: base-uri" % what)
    eq(d.get("connect-src"), connect, "%s: connect-src" % what)
    eq(hdrs.get("x-content-type-options"), ["nosniff"], "%s: X-Content-Type-Options" % what)
    eq(hdrs.get("referrer-policy"), ["no-referrer"], "%s: Referrer-Policy" % what)
    eq([v.upper() for v in hdrs.get("x-frame-options", [])], ["DENY"],
       "%s: X-Frame-Options" % what)


@t.test("static files: CSP with connect-src 'self' and the gateway's own ws:// and "
        "wss:// origin (no bare ws:/wss:), nosniff, Referrer-Policy, X-Frame-Options")
def _():
    gw = gateway()
    host = "127.0.0.1:%d" % gw.port
    own = ["'self'", "ws://" + host, "wss://" + host]
    for path, ctype in (("/", "text/html"), ("/index.html", "text/html"),
                        ("/app.js", "javascript"), ("/style.css", "text/css"),
                        ("/sub/page.html", "text/html")):
        st, hdrs, body = raw_get(gw.port, path, host)
        eq(st, 200, "status of GET %s" % path)
        check(ctype in hdrs.get("content-type", [""])[0], "content-type of %s: %r"
              % (path, hdrs.get("content-type")))
        check_policy(hdrs, "GET " + path, own)
    # the name the browser used is the one named, port included
    st, hdrs, _ = raw_get(gw.port, "/", "dash.example.com:8080")
    eq(st, 200, "status with Host dash.example.com:8080")
    check_policy(hdrs, "Host dash.example.com:8080",
                 ["'self'", "ws://dash.example.com:8080", "wss://dash.example.com:8080"])
    # a Host that is not a plain host[:port] adds nothing to the policy
    for bad in ("evil.example; script-src *", "a b", "x'y", "x,y"):
        st, hdrs, _ = raw_get(gw.port, "/", bad)
        if st == 200:
            check_policy(hdrs, "Host %r" % bad, ["'self'"])
    # the gateway's other answers carry them too
    for path in ("/missing.html", "/healthz", "/.env"):
        st, hdrs, _ = raw_get(gw.port, path, host)
        check_policy(hdrs, "GET %s (%d)" % (path, st), own)


@t.test("static files: on a TLS listener the CSP names the wss:// origin only")
def _():
    gw = tls_gateway()
    st, hdrs, body = gw.http("/")
    eq(st, 200, "status of GET / over TLS")
    eq(body, b"<!doctype html><h1>mqgate</h1>\n", "body of / over TLS")
    hdrs = {k: [v] for k, v in hdrs.items()}
    check_policy(hdrs, "GET / over TLS", ["'self'", "wss://127.0.0.1:%d" % gw.port])


@t.test("static files: a path segment that starts with a dot is 404 (.git/, .env, "
        ".well-known/), also percent-encoded and through symlinks; others still served")
def _():
    gw = gateway()
    for path in ("/.env", "/.git/config", "/.git/HEAD", "/.git/", "/.git",
                 "/sub/.htpasswd", "/.well-known/x.txt",
                 "/%2eenv", "/%2Eenv", "/%2egit/config", "/%2Egit%2Fconfig",
                 "/sub/%2ehtpasswd", "/sub%2f.htpasswd", "/./.env", "/sub/./.htpasswd",
                 "/%2e/.env", "/env-link.txt", "/gitdir/config", "/gitdir/HEAD",
                 "/sub/../.env"):
        try:
            st, hdrs, body = gw.http(path)
        except (OSError, T.http.client.HTTPException):
            continue    # hanging up is a refusal too
        check(SECRET not in body, "GET %s served a hidden file (status %d)" % (path, st))
        eq(st, 404, "status of GET %s" % path)
    for path, body in (("/index.html", b"<!doctype html><h1>mqgate</h1>\n"),
                       ("/", b"<!doctype html><h1>mqgate</h1>\n"),
                       ("/sub/page.html", b"<p>sub</p>\n")):
        st, _, got = gw.http(path)
        eq((st, got), (200, body), "GET %s" % path)
    gw.assert_serving()


if __name__ == "__main__":
    sys.exit(t.run())
