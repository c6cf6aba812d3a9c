#!/bin/sh
# Installs what mqgate needs, builds it and runs a demo: a local mosquitto
# on loopback (unless one already answers on 127.0.0.1:1883), mqgated with
# config/demo.json and simulated sensors. Ctrl-C stops everything.
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
# shellcheck disable=SC2086
mqg_install $MQG_BUILD_DEPS $MQG_RUN_DEPS
mqg_build

run=$(mktemp -d)
pids=""
cleanup() {
    trap - EXIT INT TERM
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$run"
}
trap cleanup EXIT INT TERM

port_open() {
    python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(0.3); sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))))' "$1"
}

if port_open 1883; then
    echo "using the MQTT broker already on 127.0.0.1:1883"
else
    printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\n' > "$run/mosquitto.conf"
    mosquitto -c "$run/mosquitto.conf" > "$run/mosquitto.log" 2>&1 &
    pids="$pids $!"
    for _ in 1 2 3 4 5 6 7 8 9 10; do port_open 1883 && break; sleep 0.3; done
    echo "started mosquitto on 127.0.0.1:1883"
fi

# The dashboard is served from www/ when it is there.
cfg=config/demo.json
if [ -f www/index.html ]; then
    python3 - "$(pwd)/www" "$run/demo.json" <<'PY'
import json, sys
cfg = json.load(open("config/demo.json"))
cfg["listeners"][0]["static_dir"] = sys.argv[1]
json.dump(cfg, open(sys.argv[2], "w"), indent=2)
PY
    cfg="$run/demo.json"
fi
if port_open 8080; then
    echo "127.0.0.1:8080 is taken by another program: stop it and run the demo again" >&2
    exit 1
fi
./mqgated -c "$cfg" &
gw=$!
pids="$pids $gw"
/usr/bin/python3 scripts/sensor-sim.py --port 1883 &
pids="$pids $!"

for _ in 1 2 3 4 5 6 7 8 9 10; do port_open 8080 && break; sleep 0.3; done
cat <<TXT

  mqgate demo is running.
    dashboard:  http://127.0.0.1:8080/
    WebSocket:  ws://127.0.0.1:8080/ws   (subprotocol mqgate.v1)
    watch it:   python3 scripts/mqgate-watch.py ws://127.0.0.1:8080/ws 'sensor/#'

  Ctrl-C stops the demo.

TXT
# the demo lasts as long as the gateway
wait "$gw"
