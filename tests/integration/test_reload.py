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


def reload_with(g, change, what, want):
    """Writes g's config as change() leaves it, reloads, and checks that the
    reload logs want about a restart (None: nothing)."""
    cfg = copy.deepcopy(g.cfg)
    change(cfg)
    g.write_config(cfg)
    text = g.reload(what)
    check("configuration reloaded" in text, "%s: the reload was refused:\n%s" % (what, text))
    lines = restart_lines(text)
    T.diag("%s: %s" % (what, lines or "nothing about a restart"))
    if want is None:
        eq(lines, [], "%s: lines about a restart" % what)
    else:
        eq(len(lines), 1, "%s: lines about a restart" % what)
        check(lines[0].endswith(want), "%s: the warning: %s" % (what, lines[0]))


@t.test("SIGHUP: the restart-only keys that changed are named; keys a reload applies are not", timeout=30)
def _():
    g = t.gateway({"limits": {"max_subscriptions": 64}}, fresh=True, name="restart-keys")
    old_port = g.port

    def port_and_uris(cfg):
        cfg["listeners"][0]["port"] = T.free_port()
        cfg["broker"]["uris"].append("tcp://127.0.0.1:1")
        cfg["limits"]["max_subscriptions"] = 5
    reload_with(g, port_and_uris, "port, uris and limits",
                "reload: listeners[0].port, broker.uris changed: they take effect at the next "
                "restart")
    eq(g.health(), 200, "GET /healthz on the old port %d after the reload" % old_port)

    def limits_only(cfg):
        cfg["limits"]["max_subscriptions"] = 6
        cfg["log"]["level"] = "info"
    reload_with(g, limits_only, "limits and log level", None)

    def keepalive(cfg):
        cfg["broker"]["keepalive_s"] = 17
    reload_with(g, keepalive, "keepalive",
                "reload: broker.keepalive_s changed: it takes effect at the next restart")

if __name__ == "__main__":
    sys.exit(t.run())
