#!/usr/bin/python3
"""At scale, sized for CI's time: 15,000 sessions (over several loopback
source addresses) subscribe to one topic and every one of them receives a
broadcast; then they all drop at once and the gateway serves on. The
100,000-session runs are in the benchmarks (bench/run.sh scale)."""

import base64
import errno
import json
import os
import resource
import selectors
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq                          # noqa: E402

t = T.Suite("scale")

N = int(os.environ.get("MQG_SCALE_SESSIONS", "15000"))
IN_FLIGHT = 512
SOURCES = 16
TOPIC = "scale/all"


class Conn(object):
    __slots__ = ("sock", "buf", "state", "got", "upgrade")

    def __init__(self, sock, upgrade):
        self.sock, self.buf, self.state, self.got = sock, b"", "connect", []
        self.upgrade = upgrade


def frames(c):
    """The complete server frames in c.buf (text payloads), consumed."""
    out = []
    while len(c.buf) >= 2:
        n, off = c.buf[1] & 0x7F, 2
        if n == 126:
            if len(c.buf) < 4:
                break
            n, off = struct.unpack("!H", c.buf[2:4])[0], 4
        elif n == 127:
            if len(c.buf) < 10:
                break
            n, off = struct.unpack("!Q", c.buf[2:10])[0], 10
        if len(c.buf) < off + n:
            break
        op, payload = c.buf[0] & 0x0F, c.buf[off:off + n]
        c.buf = c.buf[off + n:]
        out.append((op, payload))
    return out


def masked(obj):
    data = json.dumps(obj).encode()
    mask = os.urandom(4)
    return (bytes([0x81, 0x80 | len(data)]) + mask +
            bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def upgrade(port):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqgate.v1\r\n\r\n"
            % (port, key)).encode()


def pump(sel, conns, until, deadline, what):
    """Serves the sockets until until() or the deadline."""
    while not until():
        if time.monotonic() > deadline:
            T.fail("%s: time is up (%s)" % (what, summary(conns)))
        for key, ev in sel.select(0.2):
            c = key.data
            if c.state == "connect":
                if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    c.state = "dead"
                    sel.unregister(c.sock)
                    continue
                c.sock.sendall(c.upgrade)
                c.state = "upgrade"
                sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            try:
                data = c.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                c.state = "dead"
                sel.unregister(c.sock)
                continue
            c.buf += data
            if c.state == "upgrade":
                if b"\r\n\r\n" not in c.buf:
                    continue
                head, c.buf = c.buf.split(b"\r\n\r\n", 1)
                if b" 101 " not in head.split(b"\r\n")[0] + b" ":
                    c.state = "refused"
                    continue
                c.state = "open"
            for op, payload in frames(c):
                if op == 1:
                    c.got.append(json.loads(payload))
                elif op == 9:
                    mask = os.urandom(4)
                    c.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + mask +
                                   bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
            if c.state == "open" and any(f.get("op") == "status" for f in c.got):
                c.sock.sendall(masked({"op": "sub", "id": 1, "topic": TOPIC}))
                c.state = "sub"
            if c.state == "sub" and any(f.get("id") == 1 for f in c.got):
                c.state = "ready"


def summary(conns):
    states = {}
    for c in conns:
        states[c.state] = states.get(c.state, 0) + 1
    return ", ".join("%s %d" % kv for kv in sorted(states.items()))


@t.test("%d sessions from %d source addresses all receive a broadcast; a mass drop leaves it serving"
        % (N, SOURCES), timeout=120)
def _():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, N + 1000) if hard != resource.RLIM_INFINITY else N + 1000
    if want < N + 200:
        t.skip("the open files limit (%d) is below %d sessions" % (hard, N))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    g = t.gateway({"auth": {"anonymous_role": "all"},
                   "roles": {"all": {"subscribe": ["#"], "publish": ["#"]}},
                   "limits": {"max_connections": N + 500,
                              "max_connections_per_ip": N},
                   "log": {"level": "warn"}}, fresh=True, name="scale")
    # first: paho's select() takes no descriptor above 1023
    m = t.mosquitto.client()
    sel = selectors.DefaultSelector()
    conns = []
    t0 = time.monotonic()
    deadline = t0 + T.scaled(90)
    up = upgrade(g.ports[0])
    while len(conns) < N:
        opening = sum(1 for c in conns if c.state in ("connect", "upgrade", "open", "sub"))
        for _ in range(max(0, IN_FLIGHT - opening)):
            if len(conns) == N:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_IP, 24, 1)      # IP_BIND_ADDRESS_NO_PORT
            s.bind(("127.0.0.%d" % (2 + len(conns) % SOURCES), 0))
            s.setblocking(False)
            c = Conn(s, up)
            try:
                s.connect(("127.0.0.1", g.ports[0]))
            except OSError as e:
                if e.errno != errno.EINPROGRESS:
                    raise
            conns.append(c)
            sel.register(s, selectors.EVENT_WRITE, c)
        pump(sel, conns, lambda: sum(1 for c in conns if c.state in
                                     ("connect", "upgrade", "open", "sub")) < IN_FLIGHT // 2
             or len(conns) == N, deadline, "connecting")
    pump(sel, conns, lambda: all(c.state not in ("connect", "upgrade", "open", "sub")
                                 for c in conns), deadline, "subscribing")
    ready = [c for c in conns if c.state == "ready"]
    opened = time.monotonic() - t0
    eq(len(ready), N, "sessions subscribed (%s)" % summary(conns))
    T.diag("%d sessions subscribed in %.1f s" % (N, opened))
    eq(g.metric("mqgate_sessions", state="authenticated"), float(N), "sessions in /metrics")

    t1 = time.monotonic()
    m.publish(TOPIC, b'"everyone"', qos=1)
    pump(sel, conns, lambda: all(any(f.get("op") == "msg" for f in c.got) for c in ready),
         deadline, "the broadcast")
    T.diag("the broadcast reached %d sessions in %.2f s" % (N, time.monotonic() - t1))
    for c in ready:
        msg = [f for f in c.got if f.get("op") == "msg"]
        if len(msg) != 1 or msg[0].get("payload") != "everyone":
            T.fail("a session got %s" % msg)

    t2 = time.monotonic()
    for c in conns:
        sel.unregister(c.sock)
        c.sock.close()
    T.wait_for(lambda: g.metric("mqgate_sessions", state="authenticated") == 0.0,
               timeout=30, what="every session gone")
    T.diag("%d sessions dropped and cleaned up in %.2f s" % (N, time.monotonic() - t2))
    g.assert_serving()
    check(time.monotonic() - t0 < T.scaled(100), "took %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    sys.exit(t.run())
