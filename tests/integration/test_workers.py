#!/usr/bin/python3
"""Workers (config.md: workers): several service processes sharing each
listening port (SO_REUSEPORT) under one supervisor. Sessions on different
workers all get a broadcast; the same source address lands on the same
worker, where `since` recovers; /metrics covers every worker; SIGHUP
reaches every worker; a killed worker is restarted and its clients
reconnect; SIGTERM stops them all within the shutdown bound."""

import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
import promcheck                                        # noqa: E402
from mqgtest import check, eq, fail                    # noqa: E402

t = T.Suite("workers")

N = 3
ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]},
         "viewer": {"subscribe": ["view/#"]}}
# loopback source addresses: enough that every worker gets some
SOURCES = ["127.0.0.%d" % i for i in range(2, 32)]


def wgw(name=None, fresh=False, **extra):
    cfg = {"workers": N, "auth": {"anonymous_role": "all"}, "roles": ROLES,
           "history": {"filters": ["hs/#"], "messages": 100},
           "limits": {"max_connections_per_ip": 100000}}
    cfg.update(extra)
    g = t.gateway(cfg, fresh=fresh, name=name)
    wait_workers(g)
    return g


def workers_running(g):
    """(running per the supervisor, workers whose metrics /metrics has)."""
    try:
        _, _, body = g.http("/metrics")
    except OSError:
        return 0, set()
    text = body.decode()
    m = re.search(r'^mqgate_workers\{state="running"\} (\d+)$', text, re.M)
    up = set(re.findall(r'^mqgate_broker_up\{worker="(\d+)"\} 1$', text, re.M))
    return int(m.group(1)) if m else 0, up


def wait_workers(g, n=N, timeout=15):
    T.wait_for(lambda: workers_running(g) == (n, {str(k) for k in range(1, n + 1)}),
               timeout=timeout, what="%d workers running with the broker up" % n)


def worker_pids(g):
    """The supervisor's children."""
    pids = []
    for task in os.listdir("/proc/%d/task" % g.proc.pid):
        with open("/proc/%d/task/%s/children" % (g.proc.pid, task)) as f:
            pids += [int(p) for p in f.read().split()]
    return sorted(pids)




def msgs(ws, n, timeout=10):
    return ws.collect_n(n, pred=lambda f: f.get("op") == "msg", timeout=timeout)


@t.test("sessions on different workers all get a broadcast; each worker is its own broker client")
def _():
    g = wgw()
    sessions = [g.session(source=src, positions=True) for src in SOURCES]
    epochs = {ws.hello["epoch"] for ws in sessions}
    eq(len(epochs), N, "workers (epochs) among %d sessions" % len(sessions))
    for ws in sessions:
        ws.sub_ok({"topic": "bc/all"})
    m = t.mosquitto.client()
    m.publish("bc/all", b"to everyone", qos=1)
    for ws in sessions:
        got = msgs(ws, 1)
        eq(got[0].get("text"), "to everyone", "broadcast on worker %s" % ws.hello["epoch"])
    ids = re.findall(r"worker (\d+): info: broker client id (\S+),", g.log_text())
    eq(len({i for _, i in ids}), len(ids), "distinct broker client ids: %s" % ids)
    check(len(ids) >= N, "a client id per worker: %s" % ids)
    for ws in sessions:
        ws.close(wait=0)


@t.test("same source address, same worker: since recovers there; from another worker it does not")
def _():
    g = wgw()
    m = t.mosquitto.client()
    by_src = {}
    for src in SOURCES[:8]:
        seen = {g.session(source=src, positions=True).hello["epoch"] for _ in range(3)}
        eq(len(seen), 1, "workers of 3 sessions from %s" % src)
        by_src[src] = seen.pop()
    # a dashboard that reconnects from its address recovers what it missed
    for k, src in enumerate(SOURCES[:3]):
        topic = "hs/r%d" % k
        ws = g.session(source=src, positions=True)
        epoch = ws.hello["epoch"]
        ws.sub_ok({"topic": topic})
        for i in range(3):
            m.publish(topic, b"%d" % i, qos=1)
        last = msgs(ws, 3)[-1]["seq"]
        ws.sock.close()
        for i in range(3, 6):
            m.publish(topic, b"%d" % i, qos=1)
        # the broker's copies reach the worker before the reconnect asks
        probe = g.session(source=src, positions=True)
        probe.sub_ok({"topic": topic + "/probe"})
        m.publish(topic + "/probe", b"p", qos=1)
        msgs(probe, 1)
        ws2 = g.session(source=src, positions=True)
        eq(ws2.hello["epoch"], epoch, "the worker of the reconnect from %s" % src)
        r = ws2.sub_ok({"topic": topic, "since": {"epoch": epoch, "seq": last}})
        eq((r.get("recovered"), r.get("replayed")), (True, 3), "recovery from %s" % src)
        eq([f.get("payload") for f in msgs(ws2, 3)], [3, 4, 5], "the missed messages")
        # from an address that another worker serves: that worker has
        # another epoch, so the position is not its own (docs/deployment.md)
        other = next(s for s in SOURCES if by_src.get(s, None) not in (None, epoch))
        r = g.session(source=other, positions=True).sub_ok({"topic": topic, "since": {"epoch": epoch, "seq": last},
                                    "history": 2})
        eq((r.get("recovered"), r.get("replayed")), (False, 2),
           "since on another worker: history instead")


@t.test("/metrics covers every worker (label worker) and the supervisor, and is valid")
def _():
    g = wgw(fresh=True, name="metrics")
    sessions = [g.session(source=src, positions=True) for src in SOURCES]
    counts = {}
    for ws in sessions:
        counts[ws.hello["epoch"]] = counts.get(ws.hello["epoch"], 0) + 1
    time.sleep(T.scaled(5.5))   # every worker publishes its metrics every 5 s
    _, _, body = g.http("/metrics")
    fams, errors = promcheck.check(body.decode("utf-8"))
    eq(errors, [], "promcheck errors")
    per = {}
    for name, labels, v in fams["mqgate_sessions_by_transport"]["samples"]:
        if labels.get("transport") == "ws":
            per[labels["worker"]] = v
    eq(sorted(per), [str(k) for k in range(1, N + 1)], "workers in /metrics")
    check(sum(per.values()) >= len(sessions), "sessions in /metrics %s, opened %d"
          % (per, len(sessions)))
    eq(sorted(per.values()), sorted(float(c) for c in counts.values()),
       "sessions by worker, /metrics %s against the epochs seen %s" % (per, counts))
    eq(promcheck.value(fams, "mqgate_workers", state="running"), float(N), "running")
    eq(promcheck.value(fams, "mqgate_workers", state="configured"), float(N), "configured")
    for ws in sessions:
        ws.close(wait=0)


@t.test("SIGHUP reaches every worker: each reloads, and the new roles apply on all")
def _():
    g = wgw(fresh=True, name="reload")
    cfg = dict(g.cfg, auth={"anonymous_role": "viewer"})
    before = [g.session(source=src, positions=True) for src in SOURCES]
    eq(len({ws.hello["epoch"] for ws in before}), N, "sessions on every worker")
    mark = len(g.log_text())
    g.write_config(cfg)
    g.send_signal(signal.SIGHUP)
    T.wait_for(lambda: len(set(re.findall(r"worker (\d+): info: configuration reloaded",
                                          g.log_text()[mark:]))) == N,
               what="every worker's 'configuration reloaded'")
    for ws in [g.session(source=src, positions=True) for src in SOURCES]:
        T.expect_error(ws.request({"op": "sub", "id": 1, "topic": "bc/x"}), "forbidden", 1,
                       "a sub the new anonymous role does not allow, on %s"
                       % ws.hello["epoch"])
        ws.sub_ok({"topic": "view/ok", "id": 2})


@t.test("a killed worker is restarted, in its place: its clients reconnect to it")
def _():
    g = wgw(fresh=True, name="restart")
    pids = worker_pids(g)
    eq(len(pids), N, "worker processes %s" % pids)
    sessions = [g.session(source=src, positions=True) for src in SOURCES]
    os.kill(pids[0], signal.SIGKILL)
    dropped = []
    for src, ws in zip(SOURCES, sessions):
        try:
            ws.request({"op": "ping", "id": 9}, timeout=3)
        except (T.Closed, T.TestFailure, OSError):
            dropped.append(src)
    check(0 < len(dropped) < len(SOURCES), "sessions dropped by the kill: %s" % dropped)
    wait_workers(g)
    after = worker_pids(g)
    eq(len(after), N, "worker processes after the restart %s" % after)
    check(pids[0] not in after, "the killed worker %d is gone" % pids[0])
    eq(g.metric("mqgate_worker_restarts_total"), 1.0, "restarts")
    m = t.mosquitto.client()
    back = [g.session(source=src, positions=True) for src in dropped]
    for ws in back:
        ws.sub_ok({"topic": "bc/back"})
    # the clients of the killed worker all land on its successor
    eq(len({ws.hello["epoch"] for ws in back}), 1, "workers of the reconnected clients")
    m.publish("bc/back", b"again", qos=1)
    for ws in back:
        eq(msgs(ws, 1)[0].get("text"), "again", "broadcast after the restart")


@t.test("SIGTERM stops every worker within the shutdown bound, each session closed with 1001")
def _():
    g = wgw(fresh=True, name="sigterm")
    pids = worker_pids(g)
    sessions = [g.session(source=src, positions=True) for src in SOURCES]
    t0 = time.monotonic()
    g.send_signal(signal.SIGTERM)
    for ws in sessions:
        ws.expect_close(1001, timeout=6)
    rc = g.stop()   # records the exit status and sanitizer results
    took = time.monotonic() - t0
    eq(rc, 0, "the supervisor's exit status")
    check(took < T.scaled(6.5), "stopped in %.2f s" % took)
    for p in pids:
        check(not os.path.exists("/proc/%d" % p) or
              open("/proc/%d/stat" % p).read().split()[2] == "Z",
              "worker %d still running" % p)
    log = g.log_text()
    eq(len(re.findall(r"supervisor: info: worker \d+ stopped", log)), N, "workers stopped")


if __name__ == "__main__":
    sys.exit(t.run())
