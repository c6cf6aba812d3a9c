#!/bin/sh
# Installs what mqgate needs, builds it and runs a demo: a local mosquitto
# on loopback (unless one already answers on 127.0.0.1:1883), mqgated with
# config/demo.json serving the dashboard, simulated sensors and devices
# (scripts/sensor-sim.py), and a user "demo" with a password made for this
# run, which it prints with the URL. Ctrl-C stops everything.
#
# Environment, for tests and for machines where the ports are taken:
#   MQG_DEMO_PORT        the gateway's port [8080]
#   MQG_DEMO_MQTT_PORT   the MQTT broker's port [1883]
#   MQG_DEMO_NO_BUILD=1  install nothing and build nothing: run the daemon
#                        and the tool already built ($MQGATED [./mqgated],
#                        $MQGATE_PASSWD [./mqgate-passwd])
set -eu
cd "$(dirname "$0")/.."
port=${MQG_DEMO_PORT:-8080}
mqtt_port=${MQG_DEMO_MQTT_PORT:-1883}
mqgated=${MQGATED:-./mqgated}
mqgate_passwd=${MQGATE_PASSWD:-./mqgate-passwd}
user=demo
role=operator

if [ "${MQG_DEMO_NO_BUILD:-}" != 1 ]; then
    . scripts/deps.sh
    # shellcheck disable=SC2086
    mqg_install $MQG_BUILD_DEPS $MQG_RUN_DEPS
    mqg_build
fi

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

if port_open "$port"; then
    echo "127.0.0.1:$port is taken by another program: stop it (or set MQG_DEMO_PORT) and run the demo again" >&2
    exit 1
fi

if port_open "$mqtt_port"; then
    echo "using the MQTT broker already on 127.0.0.1:$mqtt_port"
else
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$mqtt_port" > "$run/mosquitto.conf"
    mosquitto -c "$run/mosquitto.conf" > "$run/mosquitto.log" 2>&1 &
    pids="$pids $!"
    for _ in 1 2 3 4 5 6 7 8 9 10; do port_open "$mqtt_port" && break; sleep 0.3; done
    echo "started mosquitto on 127.0.0.1:$mqtt_port"
fi

# A user who may publish, with a password of this run only: there is no
# default password to forget to change.
password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
if ! printf '%s\n' "$password" |
        "$mqgate_passwd" -f "$run/users" -r "$role" --stdin "$user" 2> "$run/passwd.log"; then
    cat "$run/passwd.log" >&2
    exit 1
fi

# config/demo.json with this run's ports, users file and the dashboard.
python3 - "$run/demo.json" "$port" "$mqtt_port" "$run/users" "$(pwd)/www" <<'PY'
import json, os, sys
out, port, mqtt_port, users, www = sys.argv[1:]
cfg = json.load(open("config/demo.json"))
cfg["listeners"][0]["port"] = int(port)
if os.path.isfile(os.path.join(www, "index.html")):
    cfg["listeners"][0]["static_dir"] = www
cfg["broker"]["uris"] = ["tcp://127.0.0.1:%s" % mqtt_port]
cfg["auth"]["users_file"] = users
json.dump(cfg, open(out, "w"), indent=2)
PY

"$mqgated" -c "$run/demo.json" &
gw=$!
pids="$pids $gw"
/usr/bin/python3 scripts/sensor-sim.py --port "$mqtt_port" &
pids="$pids $!"

for _ in 1 2 3 4 5 6 7 8 9 10; do port_open "$port" && break; sleep 0.3; done
cat <<TXT

  mqgate demo is running.
    dashboard:  http://127.0.0.1:$port/
    user:       $user
    password:   $password
                (made for this run; role $role: sees sensor/# and
                device/+/status, may publish to device/+/cmd and ask
                device/+/rpc, e.g. {"get": "firmware"}. Or continue
                without signing in: guests see sensor/#.)
    WebSocket:  ws://127.0.0.1:$port/ws   (subprotocol mqgate.v1)
    watch it:   python3 scripts/mqgate-watch.py ws://127.0.0.1:$port/ws 'sensor/#'

  Ctrl-C stops the demo.

TXT
# the demo lasts as long as the gateway
wait "$gw"
