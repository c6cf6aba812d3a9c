#!/usr/bin/python3
"""mqgate soak: churn for SOAK_SECONDS (default 600) and check that the
daemon's memory and descriptors stay flat.

While it runs:
  - SOAK_WORKERS (default 8) threads open sessions one after another, half
    anonymous and half with a JWT; each subscribes, publishes a few QoS 0
    and QoS 1 messages, reads, and vanishes: a close frame, a bare TCP
    close, a TCP reset, or (now and then) by not reading until the gateway
    closes it 4408;
  - 4 long-lived sessions hold a subscription throughout and must see
    every broker outage as status down/up and keep receiving;
  - an MQTT client publishes to the broker about 20 messages a second;
  - mosquitto is stopped every SOAK_RESTART_S (default 60) seconds,
    alternately with SIGKILL and SIGTERM, and started again on its port
    after 2 s;
  - every 5 s the gateway's RSS (VmRSS of /proc/PID/status), open
    descriptors (/proc/PID/fd) and threads are sampled, with the sessions,
    subscriptions and upstream filters from /metrics, and printed.

At the end: the median RSS and descriptor count of the last window must be
within 10 % (plus 2 MiB of RSS, 4 descriptors) of the second window's
(windows are 60 s long, shorter for short runs), the gateway must still
serve and exit 0 on SIGTERM with no sanitizer report.  Prints TAP (the
mqgtest harness) with a summary table.

Run: make soak (MQGATED set), or
    MQGATED=path/to/mqgated SOAK_SECONDS=120 python3 tests/soak/soak.py
Under ASan the allocator's quarantine (256 MiB by default) grows RSS by
itself for a while; this script sets ASAN_OPTIONS quarantine_size_mb=16
unless ASAN_OPTIONS already names a quarantine size.  Even then ASan's
allocator creeps (about 0.2 MiB a minute over a 50 MiB RSS here, where
the optimized build stays flat), so with a sanitizer build the RSS slack
is 8 MiB instead of 2 MiB; LeakSanitizer at exit still reports any leak.
"""

import os
import random
import socket
import statistics
import struct
import sys
import threading
import time

SOAK = float(os.environ.get("SOAK_SECONDS", "600"))
RESTART_EVERY = float(os.environ.get("SOAK_RESTART_S", "60"))
WORKERS = int(os.environ.get("SOAK_WORKERS", "8"))
SAMPLE_EVERY = 5.0
LONG_LIVED = 4

os.environ.setdefault("MQG_SCRIPT_TIMEOUT", str(int(SOAK + 300)))
_asan = os.environ.get("ASAN_OPTIONS", "")
if "quarantine_size_mb" not in _asan:
    os.environ["ASAN_OPTIONS"] = (_asan + ":" if _asan else "") + "quarantine_size_mb=16"

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import mqgtest as T                                # noqa: E402
from mqgtest import check, diag                    # noqa: E402

t = T.Suite("soak")
ROLES = {"all": {"subscribe": ["soak/#"], "publish": ["soak/#"]}}


class Stats(object):
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}

    def add(self, key, n=1):
        with self.lock:
            self.c[key] = self.c.get(key, 0) + n

    def snapshot(self):
        with self.lock:
            return dict(self.c)


ST = Stats()
STOP = threading.Event()


def proc_sample(pid):
    rss = threads = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, fds, threads


def metrics(g):
    out = {}
    try:
        st, _, body = T.http_request(g.port, "/metrics", timeout=2)
    except OSError:
        return out
    if st != 200:
        return out
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith("#") or " " not in line:
            continue
        k, v = line.rsplit(" ", 1)
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def vanish(ws, how):
    """End a session the way a browser tab or a network would."""
    if how == "close":
        ws.close(wait=0.5)
    elif how == "rst":
        try:
            ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        ws._mark_closed(None, "")
    else:
        ws._mark_closed(None, "")


def count_frames(frames):
    for f in frames:
        op = f.get("op")
        if op == "msg":
            ST.add("msgs received")
        elif op == "ok":
            ST.add("oks")
        elif op == "error":
            ST.add("error " + str(f.get("code")))
        elif op == "status":
            ST.add("status " + str(f.get("broker")))


def worker(g, n):
    rnd = random.Random(n)
    while not STOP.is_set():
        ws = None
        try:
            if rnd.random() < 0.1:
                # a consumer that stops reading: the gateway closes it 4408
                ws = g.session(rcvbuf=4096)
                ws.send_json({"op": "sub", "id": "s", "topic": "soak/all/#", "qos": 0})
                ws.send_json({"op": "sub", "id": "b", "topic": "soak/bulk/#", "qos": 0})
                ST.add("sessions slow")
                # the publisher sends a 400 kB burst every 5 s
                STOP.wait(rnd.uniform(6, 8))
                try:
                    code = ws.wait_close(3)
                except T.TestFailure:
                    code = "none (no burst came)"
                ST.add("slow session close %s" % code)
                continue
            token = t.token("u%d" % rnd.randrange(50), ["all"]) if rnd.random() < 0.5 else None
            ws = g.session(token=token)
            ST.add("sessions")
            k = rnd.randrange(16)
            for i, f in enumerate(("soak/all/#", "soak/w%d/#" % k)):
                r = ws.request({"op": "sub", "id": "sub%d" % i, "topic": f, "qos": rnd.randrange(2)},
                               timeout=10)
                count_frames([r])
            for j in range(rnd.randrange(5, 30)):
                ws.send_json({"op": "pub", "id": j, "topic": "soak/w%d/%d" % (k, j),
                              "payload": {"n": j, "w": n}, "qos": rnd.randrange(2)})
                ST.add("pubs")
                if not ws.poll(0.03):
                    break
                count_frames([o for o, _ in ws.backlog])
                ws.backlog.clear()
            if not ws.closed:
                ws.poll(rnd.uniform(0, 0.5))
                count_frames([o for o, _ in ws.backlog])
                ws.backlog.clear()
            how = rnd.choice(("close", "close", "fin", "rst"))
            ST.add("vanish " + how)
            vanish(ws, how)
        except T.Closed as e:
            ST.add("close %s" % e.code)
        except Exception as e:
            ST.add("trouble %s" % type(e).__name__)
            if not STOP.is_set():
                ST.add("trouble: %s" % str(e).splitlines()[0][:120] if str(e) else "trouble")
            time.sleep(0.2)
        finally:
            if ws is not None:
                try:
                    ws._mark_closed(ws.close_code, "")
                except Exception:
                    pass


def long_lived(g, n, seen):
    """Holds soak/all/# for the whole run and reads everything."""
    rec = seen[n] = {"msgs": 0, "status": [], "closed": None}
    try:
        ws = g.session()
        r = ws.request({"op": "sub", "id": "s", "topic": "soak/all/#", "qos": 1})
        check(r.get("op") == "ok", "long-lived sub: %s" % r)
        while not STOP.is_set():
            try:
                obj = ws.recv_json_text(0.5)[0]
            except TimeoutError:
                continue
            if obj.get("op") == "msg":
                rec["msgs"] += 1
            elif obj.get("op") == "status":
                rec["status"].append(obj.get("broker"))
        ws.sync(10)
        ws.close()
    except T.Closed as e:
        rec["closed"] = e.code
    except Exception as e:
        rec["closed"] = "%s: %s" % (type(e).__name__, e)


def mqtt_publisher(port):
    """About 20 messages a second to soak/all/..., and now and then a
    burst to soak/bulk/ for the slow sessions; rides over restarts."""
    c = T.paho.Client("soak-pub-%d" % os.getpid(), protocol=T.paho.MQTTv311, clean_session=True)
    c.reconnect_delay_set(0.2, 1)
    c.connect_async("127.0.0.1", port, keepalive=10)
    c.loop_start()
    i = 0
    try:
        while not STOP.is_set():
            i += 1
            if c.is_connected():
                rc = c.publish("soak/all/%d" % (i % 10), ("%d" % i).encode(), qos=i % 2).rc
                ST.add("mqtt pubs" if rc == 0 else "mqtt pub refused")
                if i % 100 == 0:
                    for _ in range(200):
                        c.publish("soak/bulk/x", b"x" * 2000, qos=0)
            STOP.wait(0.05)
    finally:
        c.disconnect()
        c.loop_stop()


class Restarter(object):
    """Stops mosquitto every RESTART_EVERY seconds, alternately with SIGKILL
    and SIGTERM, and starts it again 2 s later.  Driven from the main
    thread: the harness spawns children with PR_SET_PDEATHSIG, which
    fires when the spawning *thread* ends."""

    def __init__(self, m, t0):
        self.m = m
        self.events = []
        self.n = 0
        self.next_stop = t0 + RESTART_EVERY
        self.down_since = None
        self.how = None

    def tick(self, now):
        if self.down_since is None and now >= self.next_stop:
            self.n += 1
            self.how = "SIGKILL" if self.n % 2 else "SIGTERM"
            self.down_since = now
            if self.how == "SIGKILL":
                self.m.kill9()
            else:
                self.m.stop()
        elif self.down_since is not None and now >= self.down_since + 2:
            try:
                self.m.start()
            except Exception as e:
                ST.add("trouble restarting mosquitto: %s" % str(e).splitlines()[0][:120])
            self.events.append((self.down_since, self.how, time.monotonic() - self.down_since))
            self.down_since = None
            self.next_stop += RESTART_EVERY

    def finish(self):
        if self.down_since is not None:
            self.tick(self.down_since + 2)


def window_median(samples, t_from, t_to, idx):
    vals = [s[idx] for s in samples if t_from <= s[0] < t_to and s[idx] is not None]
    return (statistics.median(vals), len(vals)) if vals else (None, 0)


@t.test("soak: %d s of session churn with mosquitto restarted every %d s; RSS and descriptors flat"
        % (SOAK, RESTART_EVERY), timeout=SOAK + 240)
def _():
    m = t.new_mosquitto("soak-broker")
    g = t.gateway({"auth": {"anonymous_role": "all", "jwt": t.jwt_config()}, "roles": ROLES,
                   "broker": {"reconnect_min_s": 1, "reconnect_max_s": 2},
                   "limits": {"publish_rate": 1000, "publish_burst": 1000,
                              "max_queue_bytes": 262144},
                   "log": {"level": "info"}}, mosq=m, name="soak")
    pid = g.proc.pid
    with open("/proc/%d/maps" % pid) as f:
        sanitized = any("libasan" in line for line in f)
    rss_slack = 8192 if sanitized else 2048
    diag("mqgated %s, pid %d; %s; ASAN_OPTIONS=%s" % (
        t.mqgated, pid, "AddressSanitizer build" if sanitized else "no sanitizer",
        os.environ.get("ASAN_OPTIONS")))
    seen, samples = {}, []
    threads = [threading.Thread(target=long_lived, args=(g, i, seen), daemon=True) for i in range(LONG_LIVED)]
    threads += [threading.Thread(target=worker, args=(g, i), daemon=True) for i in range(WORKERS)]
    threads += [threading.Thread(target=mqtt_publisher, args=(m.port,), daemon=True)]
    t0 = time.monotonic()
    restarter = Restarter(m, t0)
    events = restarter.events
    for th in threads:
        th.start()
    diag("%8s %9s %5s %7s %8s %6s %7s %6s %9s %s" % ("t (s)", "RSS (kB)", "fds", "threads", "sessions",
                                                  "subs", "filters", "broker", "opened", "restarts"))
    next_at = t0
    while True:
        now = time.monotonic()
        if now - t0 > SOAK:
            break
        if now >= next_at:
            if g.proc.poll() is not None:
                T.fail("mqgated exited with status %s during the soak" % g.proc.returncode)
            rss, fds, nthreads = proc_sample(pid)
            mt = metrics(g)
            sess = sum(v for k, v in mt.items() if k.startswith("mqgate_sessions{"))
            row = (round(now - t0, 1), rss, fds, nthreads, int(sess), int(mt.get("mqgate_subscriptions", -1)),
                   int(mt.get("mqgate_upstream_filters", -1)), int(mt.get("mqgate_broker_up", -1)),
                   int(mt.get("mqgate_sessions_opened_total", -1)), len(events))
            samples.append(row)
            diag("%8.1f %9d %5d %7d %8d %6d %7d %6d %9d %d" % row)
            next_at += SAMPLE_EVERY
        restarter.tick(time.monotonic())
        time.sleep(min(0.1, max(0.01, next_at - time.monotonic())))
    restarter.finish()
    STOP.set()
    for th in threads:
        th.join(20)
    elapsed = time.monotonic() - t0

    # --- summary -----------------------------------------------------------
    win = min(60.0, elapsed / 5)
    lines = ["duration %.0f s, %d samples, windows of %.0f s; broker restarts: %s"
             % (elapsed, len(samples), win,
                ", ".join("%s at %.0f s (down %.1f s)" % (h, a - t0, d) for a, h, d in events) or "none")]
    lines.append("%-10s %14s %14s %12s %12s %10s" % ("window", "RSS median kB", "RSS max kB",
                                                    "fds median", "fds max", "sessions"))
    wstart = 0.0
    while wstart < elapsed - 1:
        rows = [s for s in samples if wstart <= s[0] < wstart + win]
        if rows:
            lines.append("%4.0f-%-5.0f %14.0f %14d %12.1f %12d %10.1f" % (
                wstart, wstart + win, statistics.median(r[1] for r in rows), max(r[1] for r in rows),
                statistics.median(r[2] for r in rows), max(r[2] for r in rows),
                statistics.median(r[4] for r in rows)))
        wstart += win
    st = ST.snapshot()
    lines.append("activity: " + ", ".join("%s %d" % (k, v) for k, v in sorted(st.items())))
    for n in sorted(seen):
        r = seen[n]
        lines.append("long-lived session %d: %d messages, status %s, closed %s"
                     % (n, r["msgs"], "".join("D" if s == "down" else "U" for s in r["status"]), r["closed"]))
    diag("\n".join(lines))

    t_last = samples[-1][0] if samples else 0.0
    rss2, n2 = window_median(samples, win, 2 * win, 1)
    rssl, nl = window_median(samples, t_last - win + 0.1, t_last + 1, 1)
    fd2, _ = window_median(samples, win, 2 * win, 2)
    fdl, _ = window_median(samples, t_last - win + 0.1, t_last + 1, 2)
    if elapsed < 60 or n2 < 2 or nl < 2:
        diag("a run of %.0f s is too short to judge flatness (samples in the windows: %d, %d)"
             % (elapsed, n2, nl))
    else:
        diag("RSS median: second window %.0f kB, last window %.0f kB (%+.1f %%); "
             "descriptors median: %.1f, %.1f" % (rss2, rssl, 100.0 * (rssl - rss2) / rss2, fd2, fdl))
        check(rssl <= rss2 * 1.10 + rss_slack,
              "RSS grew: median %.0f kB in the second window, %.0f kB in the last (allowed: %.0f kB)"
              % (rss2, rssl, rss2 * 1.10 + rss_slack))
        check(fdl <= fd2 * 1.10 + 4,
              "descriptors grew: median %.1f in the second window, %.1f in the last" % (fd2, fdl))
    restarts = len(events)
    check(restarts >= int(elapsed // RESTART_EVERY) - 1,
          "only %d broker restarts in %.0f s" % (restarts, elapsed))
    for n in sorted(seen):
        r = seen[n]
        check(r["closed"] is None, "long-lived session %d was closed (%s)" % (n, r["closed"]))
        check(r["status"].count("down") >= restarts and r["status"].count("up") >= restarts,
              "long-lived session %d saw status %s over %d restarts" % (n, r["status"], restarts))
        check(r["msgs"] > 0, "long-lived session %d got no messages" % n)
    T.wait_for(lambda: g.health() == 200, 15, what="/healthz 200 at the end")
    g.assert_serving()
    trouble = {k: v for k, v in st.items() if k.startswith("trouble")}
    check(not trouble, "sessions ran into trouble: %s" % trouble)


if __name__ == "__main__":
    sys.exit(t.run())
