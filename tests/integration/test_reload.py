#!/usr/bin/python3
"""SIGHUP and the keys read at start only: the reload names, by key path,
the listener and broker keys the file changed (they wait for a restart),
and names nothing when only keys a reload applies changed."""

import copy
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import check, eq                           # noqa: E402

t = T.Suite("reload")


def restart_lines(text):
    return [x for x in text.splitlines() if "next restart" in x]


def reload_with(g, change, what):
    cfg = copy.deepcopy(g.cfg)
    change(cfg)
    g.write_config(cfg)
    text = g.reload(what)
    check("configuration reloaded" in text, "%s: the reload was refused:\n%s" % (what, text))
    return restart_lines(text)


@t.test("SIGHUP: the restart-only keys that changed are named; keys a reload applies are not", timeout=30)
def _():
    g = t.gateway({"limits": {"max_subscriptions": 64}}, fresh=True, name="restart-keys")
    old_port = g.port

    def port_and_uris(cfg):
        cfg["listeners"][0]["port"] = T.free_port()
        cfg["broker"]["uris"].append("tcp://127.0.0.1:1")
        cfg["limits"]["max_subscriptions"] = 5
    lines = reload_with(g, port_and_uris, "port and uris")
    T.diag("listeners[0].port and broker.uris changed: %s" % lines)
    eq(len(lines), 1, "warning lines")
    check(lines[0].endswith("reload: listeners[0].port, broker.uris changed: they take "
                            "effect at the next restart"), "the warning: %s" % lines[0])
    eq(g.health(), 200, "GET /healthz on the old port %d after the reload" % old_port)

    def limits_only(cfg):
        cfg["limits"]["max_subscriptions"] = 6
        cfg["log"]["level"] = "info"
    lines = reload_with(g, limits_only, "limits and log level")
    eq(lines, [], "warning lines when only limits and the log level changed")

    def keepalive(cfg):
        cfg["broker"]["keepalive_s"] = 17
    lines = reload_with(g, keepalive, "keepalive")
    T.diag("broker.keepalive_s changed: %s" % lines)
    eq(len(lines), 1, "warning lines")
    check(lines[0].endswith("reload: broker.keepalive_s changed: it takes effect at the "
                            "next restart"), "the warning: %s" % lines[0])


if __name__ == "__main__":
    sys.exit(t.run())
