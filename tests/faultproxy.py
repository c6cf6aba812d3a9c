"""faultproxy: a TCP proxy that makes network failures happen on command.

It sits between mqgated and a mosquitto (or between any TCP client and
server) and runs in the test's own process, in one thread built on
selectors.  The test drives it through a small API, in the spirit of the
proxy Paho's own tests put between client and broker:

    p = FaultProxy(broker_port).start()       # listens on p.port
    p.drop(rst=True)        # cut every connection: RST (rst=False: FIN)
    p.stall("both")         # stop forwarding ("up", "down" or "both"),
                            # the sockets stay open and nothing is read
    p.resume()              # forward again, what was held goes through
    p.refuse()              # new connections: refused (listener closed)
    p.refuse(mode="reset")  # new connections: accepted, then reset
    p.allow()               # accept new connections again
    p.retarget(port)        # new connections go to another server
    p.stop()

"up" is client to server (mqgated to broker), "down" server to client.
Every call returns once the proxy's thread has carried it out.  Counters:
p.accepted (connections proxied), p.refused and p.attempts (the times of
connection attempts, refused ones included, as time.monotonic() values),
p.bytes_up, p.bytes_down, p.active() (open connection pairs).

Standard library only.  `python3 tests/faultproxy.py` checks the proxy
itself against an echo server.
"""

import collections
import selectors
import socket
import struct
import threading
import time

__all__ = ["FaultProxy"]

# Read no more from one side while this much waits to go to the other:
# back-pressure reaches the sender, as it would through a real link.
_HIGH_WATER = 256 * 1024
_CHUNK = 65536


class _Pair(object):
    """One proxied connection: the client's socket and ours to the server."""

    __slots__ = ("client", "server", "to_server", "to_client", "eof_client",
                 "eof_server", "closed")

    def __init__(self, client, server):
        self.client, self.server = client, server
        self.to_server = bytearray()   # read from client, not yet sent up
        self.to_client = bytearray()   # read from server, not yet sent down
        self.eof_client = self.eof_server = False
        self.closed = False


class FaultProxy(object):
    def __init__(self, target_port, target_host="127.0.0.1", port=0,
                 host="127.0.0.1", name="faultproxy"):
        self.target = (target_host, target_port)
        self.host = host
        self.port = port
        self.name = name
        self.accepted = 0
        self.refused = 0
        self.attempts = []           # monotonic times of connection attempts
        self.bytes_up = 0
        self.bytes_down = 0
        self.events = collections.deque(maxlen=1000)   # (time, text)
        self._stall_up = self._stall_down = False
        self._refuse = None          # None, "close" or "reset"
        self._pairs = []
        self._sel = selectors.DefaultSelector()
        self._lsock = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._cmds = collections.deque()
        self._cmd_lock = threading.Lock()
        self._thread = None
        self._running = False

    # ---- public API (any thread) ------------------------------------------

    def start(self):
        """Listen (on a free port unless one was given) and start the thread."""
        self._listen()
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=self.name,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Close everything and end the thread."""
        if not self._running:
            return
        self._call(self._do_stop)
        self._thread.join(5)

    def close(self):
        """stop(), under the name the test harness' cleanup calls."""
        self.stop()

    def drop(self, rst=True):
        """Cut every open connection on both sides: with RST (SO_LINGER 0)
        or with FIN (orderly close). Returns how many pairs were cut."""
        return self._call(lambda: self._do_drop(rst))

    def stall(self, direction="both"):
        """Stop forwarding in one direction ("up": client to server, "down":
        server to client) or both; sockets stay open, nothing is read, so
        the senders' socket buffers fill and then their writes block."""
        if direction not in ("up", "down", "both"):
            raise ValueError("direction must be up, down or both")

        def do():
            if direction in ("up", "both"):
                self._stall_up = True
            if direction in ("down", "both"):
                self._stall_down = True
            self._note("stall %s" % direction)
        self._call(do)

    def resume(self):
        """Forward again in both directions; held bytes go through."""
        def do():
            self._stall_up = self._stall_down = False
            self._note("resume")
        self._call(do)

    def refuse(self, mode="close"):
        """Refuse new connections. mode "close": the listening socket is
        closed, so a connect gets ECONNREFUSED; "reset": connections are
        accepted and reset at once (each attempt is counted and timed).
        Open connections are not touched (see drop())."""
        if mode not in ("close", "reset"):
            raise ValueError("mode must be close or reset")
        self._call(lambda: self._do_refuse(mode))

    def allow(self):
        """Accept new connections again (on the same port)."""
        self._call(self._do_allow)

    def retarget(self, port, host="127.0.0.1"):
        """Send new connections to another server; open ones stay."""
        def do():
            self.target = (host, port)
            self._note("retarget %s:%d" % (host, port))
        self._call(do)

    def active(self):
        """How many connection pairs are open."""
        return self._call(lambda: sum(1 for p in self._pairs if not p.closed))

    def wait_active(self, n=1, timeout=10.0):
        """Wait until at least n pairs are open; True if they are in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.active() >= n:
                return True
            time.sleep(0.02)
        return False

    def attempts_since(self, t0):
        return [t for t in list(self.attempts) if t >= t0]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- plumbing ---------------------------------------------------------

    def _call(self, fn):
        """Run fn on the proxy's thread and return its result."""
        if not self._running:
            raise RuntimeError("%s is not running" % self.name)
        if threading.current_thread() is self._thread:
            return fn()
        done = threading.Event()
        box = {}

        def wrapped():
            try:
                box["r"] = fn()
            except BaseException as e:   # handed to the caller
                box["e"] = e
            done.set()
        with self._cmd_lock:
            self._cmds.append(wrapped)
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if not done.wait(10):
            raise RuntimeError("%s did not answer" % self.name)
        if "e" in box:
            raise box["e"]
        return box.get("r")

    def _note(self, text):
        self.events.append((time.monotonic(), text))

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(64)
        s.setblocking(False)
        self.port = s.getsockname()[1]
        self._lsock = s
        if self._running or self._thread is not None:
            self._sel.register(s, selectors.EVENT_READ, ("listen", None))
        return s

    def _loop(self):
        try:
            if self._lsock is not None:
                self._sel.register(self._lsock, selectors.EVENT_READ, ("listen", None))
            while self._running:
                self._update_interest()
                for key, mask in self._sel.select(0.5):
                    kind, pair = key.data
                    if kind == "wake":
                        self._run_commands()
                    elif kind == "listen":
                        self._accept()
                    elif not pair.closed:
                        self._service(pair, key.fileobj, mask)
                self._pairs = [p for p in self._pairs if not p.closed]
        finally:
            self._running = False
            self._close_all(rst=False)
            for s in (self._lsock, self._wake_r, self._wake_w):
                try:
                    if s is not None:
                        s.close()
                except OSError:
                    pass
            try:
                self._sel.close()
            except Exception:
                pass

    def _run_commands(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            with self._cmd_lock:
                if not self._cmds:
                    return
                fn = self._cmds.popleft()
            fn()

    def _accept(self):
        while self._lsock is not None:
            try:
                c, _ = self._lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._note("accept: %s" % e)
                return
            self.attempts.append(time.monotonic())
            if self._refuse == "reset":
                self.refused += 1
                self._note("refused (reset)")
                _abort(c)
                continue
            try:
                srv = socket.create_connection(self.target, timeout=2)
            except OSError as e:
                # the server is away: the client sees its connection reset
                self.refused += 1
                self._note("server %s:%d: %s" % (self.target[0], self.target[1], e))
                _abort(c)
                continue
            for s in (c, srv):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            p = _Pair(c, srv)
            self._pairs.append(p)
            self.accepted += 1
            self._note("accepted #%d" % self.accepted)
            self._sel.register(c, selectors.EVENT_READ, ("client", p))
            self._sel.register(srv, selectors.EVENT_READ, ("server", p))

    def _update_interest(self):
        for p in self._pairs:
            if p.closed:
                continue
            for sock, kind in ((p.client, "client"), (p.server, "server")):
                ev = 0
                if kind == "client":
                    if not p.eof_client and not self._stall_up and \
                            len(p.to_server) < _HIGH_WATER:
                        ev |= selectors.EVENT_READ
                    if p.to_client and not self._stall_down:
                        ev |= selectors.EVENT_WRITE
                else:
                    if not p.eof_server and not self._stall_down and \
                            len(p.to_client) < _HIGH_WATER:
                        ev |= selectors.EVENT_READ
                    if p.to_server and not self._stall_up:
                        ev |= selectors.EVENT_WRITE
                try:
                    key = self._sel.get_key(sock)
                except KeyError:
                    key = None
                # a socket with nothing to do is out of the selector: it
                # keeps its data and its peer sees an open connection
                if ev == 0:
                    if key is not None:
                        self._sel.unregister(sock)
                elif key is None:
                    self._sel.register(sock, ev, (kind, p))
                elif key.events != ev:
                    self._sel.modify(sock, ev, (kind, p))

    def _service(self, p, sock, mask):
        is_client = sock is p.client
        if mask & selectors.EVENT_READ:
            try:
                data = sock.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                self._close_pair(p, rst=True)
                return
            if data == b"":
                if is_client:
                    p.eof_client = True
                else:
                    p.eof_server = True
            elif data:
                if is_client:
                    p.to_server += data
                    self.bytes_up += len(data)
                else:
                    p.to_client += data
                    self.bytes_down += len(data)
        if mask & selectors.EVENT_WRITE:
            buf = p.to_client if is_client else p.to_server
            try:
                n = sock.send(buf)
                del buf[:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._close_pair(p, rst=True)
                return
        # an orderly close travels once what came before it has
        if p.eof_client and not p.to_server:
            self._close_pair(p, rst=False)
        elif p.eof_server and not p.to_client:
            self._close_pair(p, rst=False)

    def _close_pair(self, p, rst):
        if p.closed:
            return
        p.closed = True
        for s in (p.client, p.server):
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError):
                pass
            if rst:
                _abort(s)
            else:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    s.close()
                except OSError:
                    pass

    def _close_all(self, rst):
        n = 0
        for p in self._pairs:
            if not p.closed:
                n += 1
                self._close_pair(p, rst)
        self._pairs = []
        return n

    def _do_drop(self, rst):
        n = self._close_all(rst)
        self._note("drop %d (%s)" % (n, "RST" if rst else "FIN"))
        return n

    def _do_refuse(self, mode):
        self._refuse = mode
        if mode == "close" and self._lsock is not None:
            try:
                self._sel.unregister(self._lsock)
            except (KeyError, ValueError):
                pass
            self._lsock.close()
            self._lsock = None
        elif mode == "reset" and self._lsock is None:
            self._listen()
        self._note("refuse (%s)" % mode)

    def _do_allow(self):
        self._refuse = None
        if self._lsock is None:
            self._listen()
        self._note("allow")

    def _do_stop(self):
        self._running = False


def _abort(s):
    """Close with RST: SO_LINGER on, zero seconds."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def _selftest():
    """The proxy against a local echo server: forwarding, stall and resume,
    RST and FIN cuts, both ways of refusing."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)

    def echo(c):
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        c.close()

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(c,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()

    def connect(p):
        c = socket.create_connection(("127.0.0.1", p.port))
        c.settimeout(2)
        return c

    def read(c, n):
        got = b""
        while len(got) < n:
            d = c.recv(n - len(got))
            if not d:
                break
            got += d
        return got

    with FaultProxy(ls.getsockname()[1]) as p:
        c = connect(p)
        c.sendall(b"hello")
        assert read(c, 5) == b"hello"
        big = bytes(range(256)) * 8192          # 2 MiB, through back-pressure
        t = threading.Thread(target=c.sendall, args=(big,))
        t.start()
        assert read(c, len(big)) == big
        t.join()
        p.stall("both")
        c.sendall(b"held")
        c.settimeout(0.3)
        try:
            c.recv(10)
            raise AssertionError("data crossed a stalled proxy")
        except socket.timeout:
            pass
        c.settimeout(2)
        p.resume()
        assert read(c, 4) == b"held"
        assert p.active() == 1
        assert p.drop(rst=True) == 1
        try:
            assert c.recv(10) == b""
        except ConnectionResetError:
            pass
        c = connect(p)
        c.sendall(b"x")
        assert read(c, 1) == b"x"
        assert p.drop(rst=False) == 1
        assert c.recv(10) == b""
        p.refuse()
        try:
            connect(p)
            raise AssertionError("connected to a refusing proxy")
        except ConnectionRefusedError:
            pass
        p.refuse(mode="reset")
        before = len(p.attempts)
        c = connect(p)
        try:
            assert c.recv(10) == b""
        except ConnectionResetError:
            pass
        assert len(p.attempts) == before + 1
        p.allow()
        c = connect(p)
        c.sendall(b"again")
        assert read(c, 5) == b"again"
        assert p.accepted == 3
    ls.close()
    print("faultproxy: ok")


if __name__ == "__main__":
    _selftest()
