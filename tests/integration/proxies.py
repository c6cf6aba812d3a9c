"""The proxies of docs/deployment.md in front of real gateways: HAProxy
with config/haproxy-mqgate.cfg and nginx with config/nginx-mqgate.conf,
each example rendered for a run by plain string replacement (free loopback
ports, a self-signed certificate, one server line per gateway, timeouts
short enough to be seen) and run in the foreground as a child. Every other
directive is the example's. Used by test_haproxy.py, test_nginx.py and
test_lb_client.py; bench/run.sh renders the HAProxy example with

    python3 tests/integration/proxies.py haproxy OUT.cfg PORT PEM GWPORT...

Environment: HAPROXY (default /usr/sbin/haproxy), NGINX (default
/usr/sbin/nginx), MQG_SRCDIR (the source tree, for config/ and www/;
default: two levels above this file)."""

import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import eq, fail                            # noqa: E402

HAPROXY = os.environ.get("HAPROXY", "/usr/sbin/haproxy")
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
SRCDIR = os.environ.get("MQG_SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAPROXY_EXAMPLE = os.path.join(SRCDIR, "config", "haproxy-mqgate.cfg")
NGINX_EXAMPLE = os.path.join(SRCDIR, "config", "nginx-mqgate.conf")
WWW = os.path.join(SRCDIR, "www")


def replace(text, old, new, example):
    """text with every old replaced; old must occur (the example changed
    if it does not: this file must follow)."""
    if old not in text:
        fail("%s no longer contains %r: update tests/integration/proxies.py"
             % (os.path.basename(example), old))
    return text.replace(old, new)


def server_lines(text, pattern, ports, example):
    """text with the run of server lines matching pattern (a regex whose
    group "port" is the port) replaced by one copy of the first per port;
    a group "n" (a number in the line) is numbered 1, 2, ..."""
    lines = text.split("\n")
    idx = [i for i, l in enumerate(lines) if re.match(pattern, l)]
    if not idx or idx != list(range(idx[0], idx[0] + len(idx))):
        fail("%s: no run of lines matching %r: update tests/integration/proxies.py"
             % (os.path.basename(example), pattern))
    m = re.match(pattern, lines[idx[0]])
    out = []
    for k, port in enumerate(ports):
        line = lines[idx[0]]
        spans = sorted(((m.span(g), v) for g, v in (("port", str(port)), ("n", str(k + 1)))
                        if g in m.re.groupindex), reverse=True)
        for (a, b), v in spans:
            line = line[:a] + v + line[b:]
        out.append(line)
    return "\n".join(lines[:idx[0]] + out + lines[idx[-1] + 1:])


class GroupPopen(subprocess.Popen):
    """A proxy's master in a process group of its own: kill() (the
    harness' last resort) takes its workers too."""

    def kill(self):
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            subprocess.Popen.kill(self)


def _child_setup():
    os.setpgid(0, 0)
    T._pdeathsig()


def _spawn(argv, logpath):
    logf = open(logpath, "ab")
    try:
        p = GroupPopen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                       preexec_fn=_child_setup)
    finally:
        logf.close()
    T._processes.append(p)
    return p


# ---------------------------------------------------------------------------
# HAProxy

def render_haproxy(port, http_port, pem, gw_ports, timeout_s=None, maxconn=4000,
                   inter="500ms"):
    """config/haproxy-mqgate.cfg for 127.0.0.1:port (TLS with the
    certificate and key in pem) and :http_port, one server per gateway
    port; timeout server and tunnel timeout_s when given; no IPv6 binds, no
    syslog, maxconn within this machine's open-files limit."""
    with open(HAPROXY_EXAMPLE) as f:
        text = f.read()
    subs = [("    log /dev/log local0\n", ""),
            ("    maxconn 100000\n", "    maxconn %d\n" % maxconn),
            ("    bind :::443 v6only ssl crt /etc/haproxy/certs/dash.example.com.pem "
             "alpn http/1.1\n", ""),
            ("    bind :::80 v6only\n", ""),
            ("bind :443 ssl", "bind 127.0.0.1:%d ssl" % port),
            ("bind :80\n", "bind 127.0.0.1:%d\n" % http_port),
            ("/etc/haproxy/certs/dash.example.com.pem", pem),
            ("inter 2s", "inter %s" % inter)]
    if timeout_s:
        subs += [("timeout server 75s", "timeout server %ds" % timeout_s),
                 ("timeout tunnel 300s", "timeout tunnel %ds" % timeout_s)]
    for old, new in subs:
        text = replace(text, old, new, HAPROXY_EXAMPLE)
    return server_lines(text, r"    server gw(?P<n>\d+) 127\.0\.0\.1:(?P<port>\d+) check$",
                        gw_ports, HAPROXY_EXAMPLE)


class Haproxy(T.Child):
    """HAProxy with the example rendered for free loopback ports in front of
    the gateways gws (anything with .port), TLS with the suite's
    site_cert(); stop() is a soft stop (SIGUSR1)."""

    stop_signal = signal.SIGUSR1
    stop_timeout = 10.0

    def __init__(self, suite, gws, name="haproxy", timeout_s=None):
        self.suite = suite
        self.dir = os.path.join(suite.root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.http_port = T.free_port(), T.free_port()
        cert = suite.site_cert()
        self.pem = os.path.join(self.dir, "site.pem")
        with open(self.pem, "w") as f:
            f.write(open(cert[0]).read() + open(cert[1]).read())
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(render_haproxy(self.port, self.http_port, self.pem,
                                   [g.port for g in gws], timeout_s))
        self.logpath = os.path.join(self.dir, "haproxy.log")
        self.url = "wss://localhost:%d/ws" % self.port
        self.proc = None

    def check_config(self):
        """haproxy -c on the rendered config: (exit status, output)."""
        r = subprocess.run([HAPROXY, "-c", "-f", self.cfg], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout.decode(errors="replace")

    def start(self):
        self.proc = _spawn([HAPROXY, "-db", "-f", self.cfg], self.logpath)
        T.wait_for(lambda: self.up(), 10, what="haproxy listening")
        return self

    def up(self):
        if self.proc.poll() is not None:
            fail("haproxy exited with %s:\n%s" % (self.proc.returncode,
                                                   T.tail(T.read_text(self.logpath), 30)))
        try:
            st, _, _ = self.https("/healthz")
            return st == 200
        except OSError:
            return False

    def https(self, path, method="GET", body=None, headers=None, source=None):
        conn = T.http.client.HTTPSConnection("127.0.0.1", self.port, timeout=T.scaled(5),
                                             context=self.suite.site_tls(),
                                             source_address=(source, 0) if source else None)
        try:
            h = {"Host": "localhost"}
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def session(self, source=None):
        ws = T.ws_handshake(self.port, "/ws", protocols=["mqgate.v1"], tls=self.suite.site_tls(),
                            host_header="localhost", origin="https://localhost",
                            source=source)
        ws.hello = ws.recv_json()
        eq(ws.hello.get("op"), "hello", "first frame through haproxy")
        ws.opening = ws.sync()
        return ws

    def stream(self, query, source=None):
        return T.EventStream(self.port, query, tls=self.suite.site_tls(), source=source,
                             headers={"Host": "localhost"})


# ---------------------------------------------------------------------------
# nginx

def ws_block(text):
    m = re.search(r"\n( *)location = /ws \{\n.*?\n\1\}\n", text, re.S)
    if not m:
        fail("no `location = /ws { ... }` block in %s" % os.path.basename(NGINX_EXAMPLE))
    return m


class Nginx(T.Child):
    """nginx with the example config rendered for free loopback ports, in
    front of the gateways gws (an upstream server each), wrapped in a
    minimal nginx.conf; TLS with the suite's site_cert(); stop() is a fast
    shutdown (SIGTERM)."""

    def __init__(self, suite, name, gws, read_timeout_s, per_ip, extra_ws_locations=()):
        """extra_ws_locations: (path, {old: new}) pairs: copies of the /ws
        location block under another path, with replacements."""
        self.dir = os.path.join(suite.root, name)
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        self.suite = suite
        self.gws = gws
        self.gw = gws[0]
        self.port = T.free_port()          # 443
        self.http_port = T.free_port()     # 80
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.site = os.path.join(self.dir, "mqgate-site.conf")
        self.pidfile = os.path.join(self.dir, "nginx.pid")
        self.logpath = os.path.join(self.dir, "nginx.stderr")
        self.proc = None

        cert = suite.site_cert()
        with open(NGINX_EXAMPLE) as f:
            text = f.read()
        d = self.dir
        for old, new in (
                ("    listen [::]:443 ssl;\n", ""),
                ("    listen [::]:80;\n", ""),
                ("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % self.port),
                ("listen 80;", "listen 127.0.0.1:%d;" % self.http_port),
                ("/etc/letsencrypt/live/dash.example.com/fullchain.pem", cert[0]),
                ("/etc/letsencrypt/live/dash.example.com/privkey.pem", cert[1]),
                ("dash.example.com", "localhost"),
                ("/usr/share/mqgate/www", WWW),
                ("/var/log/nginx/mqgate.access.log", os.path.join(d, "logs", "access.log")),
                ("proxy_read_timeout 300s;", "proxy_read_timeout %ds;" % read_timeout_s),
                ("limit_conn mqgate_per_ip 100;", "limit_conn mqgate_per_ip %d;" % per_ip)):
            text = replace(text, old, new, NGINX_EXAMPLE)
        text = server_lines(text, r"    server 127\.0\.0\.1:(?P<port>\d+)[ ;]",
                            [g.port for g in gws], NGINX_EXAMPLE)
        m = ws_block(text)
        extra = ""
        for path, subs in extra_ws_locations:
            block = replace(m.group(0), "location = /ws {", "location = %s {" % path,
                            NGINX_EXAMPLE)
            for old, new in subs.items():
                block = replace(block, old, new, NGINX_EXAMPLE)
            extra += block
        text = text[:m.end()] + extra + text[m.end():]
        with open(self.site, "w") as f:
            f.write(text)

        tmp = os.path.join(d, "tmp")
        main = ["# test wrapper around the rendered %s" % os.path.basename(NGINX_EXAMPLE),
                "worker_processes 1;"]
        if os.geteuid() == 0:
            # as root nginx's workers would run as "nobody", which cannot
            # read our private temporary directory
            main.append("user root;")
        main += ["events { worker_connections 512; }",
                 "http {",
                 "    default_type application/octet-stream;",
                 "    types { text/html html; text/css css; "
                 "application/javascript js mjs; text/plain txt ts; }",
                 "    access_log %s;" % os.path.join(d, "logs", "access-http.log")]
        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            main.append("    %s_temp_path %s;" % (k, os.path.join(tmp, k)))
        main += ["    include %s;" % self.site, "}"]
        with open(self.conf, "w") as f:
            f.write("\n".join(main) + "\n")

    def argv(self, *extra):
        return [NGINX, "-c", self.conf, "-p", self.dir + "/", "-g",
                "daemon off; pid %s; error_log stderr;" % self.pidfile] + list(extra)

    def check_config(self):
        """nginx -t on the rendered config: (exit status, output)."""
        p = subprocess.run(self.argv("-t"), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=T.scaled(20), preexec_fn=T._pdeathsig)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def start(self, timeout=10.0):
        self.proc = _spawn(self.argv(), self.logpath)
        deadline = time.monotonic() + T.scaled(timeout)
        while not (T.port_open(self.port, timeout=0.2) and
                   T.port_open(self.http_port, timeout=0.2)):
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited with status %s:\n%s"
                                   % (self.proc.returncode, T.tail(self.log_text(), 30)))
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not listen within %.1f s:\n%s"
                                   % (T.scaled(timeout), T.tail(self.log_text(), 30)))
            time.sleep(0.02)
        return self

    def log_text(self):
        return T.read_text(self.logpath)

    # --- clients ------------------------------------------------------------
    def ws(self, path="/ws", **kw):
        """A wss:// session through nginx (nothing read yet); the Host
        header is localhost:PORT unless host_header says otherwise."""
        kw.setdefault("protocols", ["mqgate.v1"])
        kw.setdefault("tls", self.suite.site_tls())
        kw.setdefault("host_header", "localhost:%d" % self.port)
        return T.ws_handshake(self.port, path, **kw)

    def session(self, **kw):
        ws = self.ws(**kw)
        ws.hello = ws.recv_json()
        eq(ws.hello.get("op"), "hello", "first frame op")
        ws.opening = ws.sync()
        return ws

    def https(self, path, source=None, headers=None, timeout=5.0):
        """GET over https through nginx: (status, headers, body)."""
        conn = T.http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=T.scaled(timeout), context=self.suite.site_tls(),
            source_address=(source, 0) if source else None)
        try:
            conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", "localhost:%d" % self.port)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


def start_nginx(suite, name, gws, read_timeout_s, per_ip, extra_ws_locations=()):
    """A started Nginx; picks other ports when another process took one."""
    last = None
    for attempt in range(3):
        ngx = Nginx(suite, "nginx-%s%s" % (name, "" if attempt == 0 else "-try%d" % (attempt + 1)),
                    gws, read_timeout_s, per_ip, extra_ws_locations)
        try:
            return ngx.start()
        except RuntimeError as e:
            last = e
            ngx.stop()
            if "in use" not in str(e):
                raise
    raise last


# ---------------------------------------------------------------------------
# Gateways behind a proxy

def epoch_index(gws, epoch):
    """Which of gws (each with .epoch) has epoch."""
    for i, g in enumerate(gws):
        if g.epoch == epoch:
            return i
    fail("epoch %s is no gateway's (%s)" % (epoch, [g.epoch for g in gws]))


def learn_epochs(gws):
    """Sets .epoch of every gateway of gws, from a direct session's hello."""
    for g in gws:
        if not getattr(g, "epoch", None) or getattr(g, "epoch_pid", None) != g.proc.pid:
            s = g.session()
            g.epoch, g.epoch_pid = s.hello["epoch"], g.proc.pid
            s.close(wait=0)


def main(argv):
    if len(argv) >= 5 and argv[0] == "haproxy":
        out, port, pem = argv[1], int(argv[2]), argv[3]
        with open(out, "w") as f:
            f.write(render_haproxy(port, T.free_port(), pem, [int(p) for p in argv[4:]],
                                   maxconn=int(os.environ.get("HAPROXY_MAXCONN", "8000"))))
        return 0
    sys.stderr.write("usage: proxies.py haproxy OUT.cfg PORT PEM GWPORT...\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
