#!/usr/bin/env bash
# mqgate's benchmarks (docs/benchmarks.md tells the method and the results).
#
#   bench/run.sh [full|quick] [SCENARIO...]
#   bench/run.sh profile
#   bench/run.sh summary bench/results/*/results.txt   (again, from raw results)
#
# SCENARIO is one or more of: fanout latency topics publish storm idle
# profile (default: all of them); the stream-state scenarios of issue 12,
# run only when named: history (fanout with a history of the topic against
# without), replay (100 sessions replaying 100,000 stored messages each
# while 1000 others get live messages), rate (1000 sessions with max_rate 1
# over 1000 busy topics, against plain fanout); issue 13's sse (fanout over
# SSE against WebSocket) and httppub (POST /api/publish with wrk);
# issue 17's haproxy (fanout N=1000 through HAProxy, the example config, to
# two gateways against the same straight to one gateway, ws and wss); and
# scale (issue 16's 19,000 sessions in one process and 100,000 over
# workers: bench/scale.sh, about 10 minutes). `full` takes 10 to 15 minutes, `quick`
# about 4. It installs what it needs with apt-get (as root), builds an
# optimized mqgated in a scratch directory, builds the load generator and
# the ceiling broadcaster, and runs each measurement REPS times with the
# comparison targets interleaved: mqgate (behind mosquitto), mosquitto's own
# WebSocket listener, and bench/ceiling.c. The gateway, the broker and the
# ceiling run on CPU 0, the load generator on CPU 1.
#
# Environment:
#   REPS=N      runs per measurement (full: 3, quick: 1)
#   MQGATED=F   benchmark this mqgated binary instead of building one
#   KEEP=1      keep the scratch directory (logs, configs, raw results)
#   HISTORY=1   the gateway keeps a history of every topic (history.filters
#               ["#"], 100 messages a topic): its cost beside a run without;
#               HISTORY='["bench/fanout"]' (a JSON array): of those filters
#   CALLGRIND_ONLY=1  profile: the callgrind part only
#   PERF=1      record the gateway with perf (cpu-clock) during every run;
#               the top of each profile goes to stderr and bench/results/
#
# Results: a summary in Markdown on stdout and in bench/results/ (ignored
# by git), with the raw RESULT lines of every run beside it.
set -euo pipefail

MODE=full
case "${1:-}" in
full | quick | profile) MODE=$1; shift ;;
summary) MODE=summary; shift ;;
esac
if [ "$MODE" = summary ]; then
    SCENARIOS=""
else
    SCENARIOS="${*:-fanout latency topics publish storm idle profile}"
fi
[ "$MODE" != profile ] || SCENARIOS="profile"
for s in $SCENARIOS; do
    case $s in
    fanout | latency | topics | publish | storm | idle | profile | scale) ;;
    history | replay | rate | replay_profile) ;;
    sse | httppub | haproxy) ;;
    *) echo "unknown scenario: $s" >&2; exit 2 ;;
    esac
done

SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mqg-bench.XXXXXX")
RESULTS=$WORK/results.txt
: >"$RESULTS"
STARTED=$(date +%s)

if [ "$MODE" = quick ]; then
    REPS=${REPS:-1}
    FANOUT_NS="100 1000"
    DUR=2 WARM=1 LAT_DUR=3 RATE_DUR=5
    STORM_N=2000 IDLE_N=2000
else
    REPS=${REPS:-3}
    FANOUT_NS="100 1000 10000"
    DUR=3 WARM=1 LAT_DUR=5 RATE_DUR=10
    STORM_N=5000 IDLE_N=10000
fi

say() { printf '%s\n' "$*" >&2; }

# ---- processes ---------------------------------------------------------------
# Only what this script started is stopped, by its PID.
GW_PID="" MOSQ_PID="" CEIL_PID="" GW2_PID="" HAP_PID=""

stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_all() {
    stop_pid "$HAP_PID"
    stop_pid "$GW_PID"
    stop_pid "$GW2_PID"
    stop_pid "$MOSQ_PID"
    stop_pid "$CEIL_PID"
    GW_PID="" MOSQ_PID="" CEIL_PID="" GW2_PID="" HAP_PID=""
}

cleanup() {
    stop_all
    if [ "${KEEP:-0}" = 1 ]; then
        say "scratch directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- dependencies --------------------------------------------------------------
DEPS="build-essential autoconf automake libtool pkg-config libwebsockets-dev
libpaho-mqtt-dev libjansson-dev check libjwt-dev liboath-dev libcrypt-dev
libsystemd-dev libssl-dev mosquitto mosquitto-clients openssl procps util-linux
valgrind wrk haproxy python3"
# perf samples the kernel's share of the profile; without it that part is
# skipped
OPT_DEPS="linux-perf"

install_deps() {
    local missing="" p
    for p in $DEPS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing="$missing $p"
    done
    local optional=""
    for p in $OPT_DEPS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            optional="$optional $p"
    done
    [ -z "$missing$optional" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        [ -z "$missing" ] && return 0
        say "missing packages:$missing (run as root to install them)"
        exit 1
    fi
    say "installing:$missing$optional"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    if [ -n "$missing" ]; then
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing >&2
    fi
    # shellcheck disable=SC2086
    [ -z "$optional" ] || apt-get install -y -q --no-install-recommends $optional >&2 ||
        say "optional packages not installed:$optional"
}

# ---- building ------------------------------------------------------------------
build() {
    local b=$WORK/build
    mkdir -p "$b/src"
    if [ -n "${MQGATED:-}" ]; then
        cp "$MQGATED" "$b/mqgated"
    else
        say "building mqgated (-O2 -g) in a scratch copy of the tree"
        if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
            (cd "$SRC" && git ls-files -co --exclude-standard -z) |
                (cd "$SRC" && tar --null -T - -cf -) | tar -xf - -C "$b/src"
        else
            cp -a "$SRC/." "$b/src"
            if [ -f "$b/src/Makefile" ]; then
                make -C "$b/src" distclean >/dev/null 2>&1 || true
            fi
        fi
        (cd "$b/src" && autoreconf -fi >/dev/null 2>&1 &&
            ./configure -q CFLAGS='-O2 -g' >"$WORK/configure.log" 2>&1 &&
            make -j"$(nproc)" mqgated >"$WORK/make.log" 2>&1) || {
            say "build failed: see $WORK/make.log"
            KEEP=1
            exit 1
        }
        cp "$b/src/mqgated" "$b/mqgated"
    fi
    cc -O2 -g -Wall -o "$b/loadgen" "$SRC/bench/loadgen.c" "$SRC/bench/lg_client.c" \
        "$SRC/bench/lg_stream.c" -lssl -lcrypto
    cc -O2 -g -Wall -o "$b/ceiling" "$SRC/bench/ceiling.c" -lssl -lcrypto
    GATEWAY=$b/mqgated LG=$b/loadgen CEILING=$b/ceiling
}

# ---- configuration ---------------------------------------------------------------
configure() {
    local c=$WORK/conf
    mkdir -p "$c"
    P_MQTT=$("$LG" freeport) P_MWS=$("$LG" freeport) P_GW=$("$LG" freeport)
    P_GWS=$("$LG" freeport) P_CWS=$("$LG" freeport) P_CWSS=$("$LG" freeport)
    P_CMQTT=$("$LG" freeport)
    P_GW2=$("$LG" freeport) P_GWS2=$("$LG" freeport) P_HAP=$("$LG" freeport)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$c/key.pem" -out "$c/cert.pem" -days 2 -subj /CN=localhost \
        >/dev/null 2>&1
    chmod 644 "$c/key.pem"
    # Debian's mosquitto with its defaults, plus the two listeners (its
    # websockets listener ignores the bind address)
    cat >"$c/mosquitto.conf" <<EOF
per_listener_settings false
allow_anonymous true
listener $P_MQTT 127.0.0.1
listener $P_MWS
protocol websockets
EOF
    gw_conf "$c/mqgate.json" ""
    gw_conf "$c/mqgate-v311.json" ', "mqtt_version": 4'
    # issue 17: a second gateway, and HAProxy in front of both: the example
    # config as tests/integration/proxies.py renders it for the tests
    GW_PORT=$P_GW2 GWS_PORT=$P_GWS2 gw_conf "$c/mqgate-2.json" ', "client_id": "mqgate-bench-2"'
    cat "$c/cert.pem" "$c/key.pem" >"$c/site.pem"
    python3 "$SRC/tests/integration/proxies.py" haproxy "$c/haproxy.cfg" "$P_HAP" \
        "$c/site.pem" "$P_GW" "$P_GW2"
    # issue 12: a history covering the fanout's topic through "#" (a second
    # upstream subscription) or exactly (the sessions' own), none at all,
    # and the replay scenario's store of sensor/#
    HISTORY="" gw_conf "$c/mqgate-nohist.json" ""
    HISTORY="" gw_conf "$c/mqgate-hist-all.json" "" '["#"]'
    HISTORY="" gw_conf "$c/mqgate-hist-topic.json" "" '["bench/fanout"]'
    HISTORY="" gw_conf "$c/mqgate-replay.json" "" '["sensor/#"]'
    CONF=$c
}

# gw_conf FILE BROKER_EXTRA [HISTORY_FILTERS]: a gateway with a ws and a
# wss listener whose sessions need no authentication, and limits that do
# not get in the way of the measurement (per-IP cap, publish rate); with
# HISTORY_FILTERS (a JSON array) or HISTORY=1 (["#"]) it keeps a history
# of 100 messages a topic.
gw_conf() {
    local hist="" filters=${3:-}

    case ${HISTORY:-} in
    "") ;;
    "["*) filters=$HISTORY ;;
    *) filters='["#"]' ;;
    esac
    [ -z "$filters" ] ||
        hist='"history": {"filters": '"$filters"', "messages": 100},'
    cat >"$1" <<EOF
{
  "listeners": [
    {"bind": "127.0.0.1", "port": ${GW_PORT:-$P_GW}, "path": "/ws", "http_api": true},
    {"bind": "127.0.0.1", "port": ${GWS_PORT:-$P_GWS}, "path": "/ws",
     "tls": {"cert_file": "$WORK/conf/cert.pem", "key_file": "$WORK/conf/key.pem"}}
  ],
  "broker": {"uris": ["tcp://127.0.0.1:$P_MQTT"]$2},
  "auth": {"anonymous_role": "r"},
  "roles": {"r": {"subscribe": ["#"], "publish": ["#"]}},
  "limits": {"max_connections_per_ip": 10000000, "publish_rate": 1000000,
             "publish_burst": 10000000},
  $hist
  "log": {"level": "warn"}
}
EOF
}

wait_healthz() {
    local port=$1 i line
    for i in $(seq 150); do
        line=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" &&
            printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 &&
            read -r -t 2 l <&3 && printf '%s' "$l") 2>/dev/null || true)
        case $line in *" 200"*) return 0 ;; esac
        sleep 0.1
    done
    return 1
}

start_mosquitto() {
    taskset -c 0 mosquitto -c "$CONF/mosquitto.conf" >>"$WORK/mosquitto.log" 2>&1 &
    MOSQ_PID=$!
    "$LG" waitport --port "$P_MQTT" --duration 10 ||
        { say "mosquitto did not start"; exit 1; }
    "$LG" waitport --port "$P_MWS" --duration 10 ||
        { say "mosquitto's websockets listener did not start"; exit 1; }
}

start_gateway() {
    taskset -c 0 "$GATEWAY" -c "$1" >>"$WORK/mqgated.log" 2>&1 &
    GW_PID=$!
    wait_healthz "$P_GW" || { say "mqgated did not become healthy"; exit 1; }
}

# HAProxy in front of two gateways (P_GW, P_GW2), in the foreground.
start_haproxy() {
    taskset -c 0 "$GATEWAY" -c "$CONF/mqgate-2.json" >>"$WORK/mqgated-2.log" 2>&1 &
    GW2_PID=$!
    wait_healthz "$P_GW2" || { say "the second mqgated did not become healthy"; exit 1; }
    taskset -c 0 haproxy -db -f "$CONF/haproxy.cfg" >>"$WORK/haproxy.log" 2>&1 &
    HAP_PID=$!
    "$LG" waitport --port "$P_HAP" --duration 10 ||
        { say "haproxy did not start"; exit 1; }
    # both servers up: rise 2 x inter 500 ms
    sleep 1.5
}

start_ceiling() {
    taskset -c 0 "$CEILING" --ws-port "$P_CWS" --mqtt-port "$P_CMQTT" \
        --wss-port "$P_CWSS" --cert "$CONF/cert.pem" --key "$CONF/key.pem" \
        >>"$WORK/ceiling.log" 2>&1 &
    CEIL_PID=$!
    "$LG" waitport --port "$P_CWS" --duration 10 ||
        { say "ceiling did not start"; exit 1; }
}

# start_target TARGET TLS: starts it and sets T_ARGS for the load generator.
start_target() {
    local target=$1 tls=$2
    case $target in
    haproxy)
        # wss to HAProxy (TLS ends there), plain ws on to two gateways
        start_mosquitto
        start_gateway "$CONF/mqgate.json"
        start_haproxy
        T_ARGS="--proto mqg --broker-port $P_MQTT --pid gw=$GW_PID --pid gw2=$GW2_PID --pid haproxy=$HAP_PID --pid broker=$MOSQ_PID --port $P_HAP --tls"
        ;;
    mqgate-sse)
        # the same gateway, its sessions Server-Sent Events streams
        start_mosquitto
        start_gateway "$CONF/mqgate.json"
        T_ARGS="--proto sse --broker-port $P_MQTT --pid gw=$GW_PID --pid broker=$MOSQ_PID --port $P_GW"
        ;;
    mqgate | mqgate-*)
        start_mosquitto
        start_gateway "$CONF/$target.json"
        T_ARGS="--proto mqg --broker-port $P_MQTT --pid gw=$GW_PID --pid broker=$MOSQ_PID"
        if [ "$tls" = 1 ]; then
            T_ARGS="$T_ARGS --port $P_GWS --tls"
        else
            T_ARGS="$T_ARGS --port $P_GW"
        fi
        ;;
    mosquitto)
        start_mosquitto
        T_ARGS="--proto mqttws --port $P_MWS --path /mqtt --broker-port $P_MQTT --pid broker=$MOSQ_PID"
        ;;
    ceiling)
        start_ceiling
        T_ARGS="--proto mqg --broker-port $P_CMQTT --pid ceiling=$CEIL_PID"
        if [ "$tls" = 1 ]; then
            T_ARGS="$T_ARGS --port $P_CWSS --tls"
        else
            T_ARGS="$T_ARGS --port $P_CWS"
        fi
        ;;
    esac
}

# perf_start NAME: with PERF=1, records the gateway ($GW_PID) until
# perf_stop, which prints the top of the profile.
PERF_PID="" PERF_NAME=""
perf_start() {
    PERF_PID=""
    if [ "${PERF:-0}" = 1 ] && [ -n "$GW_PID" ] && command -v perf >/dev/null; then
        PERF_NAME=$(printf '%s' "$1" | tr -c 'A-Za-z0-9_.,=-' _)
        mkdir -p "$WORK/profile"
        perf record -q -e cpu-clock -F 1000 -g -p "$GW_PID" \
            -o "$WORK/profile/perf-$PERF_NAME.data" >/dev/null 2>&1 &
        PERF_PID=$!
    fi
}

perf_stop() {
    [ -n "$PERF_PID" ] || return 0
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=""
    perf_top "$WORK/profile/perf-$PERF_NAME.data" >"$WORK/profile/perf-$PERF_NAME.txt"
    say "perf of the gateway, $PERF_NAME (self time, top entries):"
    head -16 "$WORK/profile/perf-$PERF_NAME.txt" >&2
}

# run_case SCENARIO VARIANT TARGET TLS REP -- LOADGEN ARGS...
run_case() {
    local sc=$1 var=$2 target=$3 tls=$4 rep=$5 out load psi t0 t1 t2
    shift 6
    t0=$(date +%s.%N)
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    psi=$(awk '/^some/ { sub("avg10=", "", $2); print $2 }' /proc/pressure/cpu 2>/dev/null || echo -)
    start_target "$target" "$tls"
    perf_start "$sc-$var-$target-$rep"
    # shellcheck disable=SC2086
    out=$(taskset -c 1 "$LG" "$1" $T_ARGS --label "$target" "${@:2}" \
        2>>"$WORK/loadgen.log") || {
        out="RESULT failed=1"
        say "loadgen failed: $(tail -n 2 "$WORK/loadgen.log" | tr '\n' ' ')"
    }
    t1=$(date +%s.%N)
    perf_stop
    stop_all
    t2=$(date +%s.%N)
    out="$out sc=$sc var=$var target=$target rep=$rep psi10=$psi"
    echo "$out" >>"$RESULTS"
    say "$(printf '%-8s %-14s %-12s rep %s  load %-15s %5.1fs+%4.1fs | %s' "$sc" "$var" "$target" \
        "$rep" "$load" "$(awk "BEGIN { print $t1 - $t0 }")" "$(awk "BEGIN { print $t2 - $t1 }")" "$(headline "$out")")"
}

# perf_top DATA: the gateway's time by object, then by symbol (self).
perf_top() {
    perf report -i "$1" --no-children --sort dso --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -6 || true
    echo
    perf report -i "$1" --no-children --sort sym --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -30 || true
}

# The few numbers worth seeing while it runs.
headline() {
    printf '%s\n' "$1" | tr ' ' '\n' | grep -E \
        '^(deliv_rate|msg_rate|ack_rate|rate|loss_pct|lost|undelivered|unacked|p50_us|p99_us|p50_ms|p99_ms|keeps_up|per_session_[a-z]*|failed|why|lg_cpu|lg_wait|cpu_[a-z]*|sys_cpu0|replay_rate|replay_exact|live_lost|live_missing|too_soon|late_gaps|stale_end)=' |
        tr '\n' ' '
}

# ---- scenarios ---------------------------------------------------------------------
sc_fanout() {
    local rep n w t
    for rep in $(seq "$REPS"); do
        for n in $FANOUT_NS; do
            w=$((100000 / n))
            [ $w -lt 10 ] && w=10
            [ $w -gt 1000 ] && w=1000
            for t in mqgate mosquitto ceiling; do
                run_case fanout "N=$n" $t 0 "$rep" -- fanout -n "$n" \
                    --window $w --duration "$DUR" --warmup "$WARM" --drain 3
            done
        done
    done
}

sc_latency() {
    local rep t
    for rep in $(seq "$REPS"); do
        for t in mqgate mosquitto ceiling; do
            run_case latency "N=1000@200/s" $t 0 "$rep" -- latency -n 1000 \
                --rate 200 --duration "$LAT_DUR" --warmup "$WARM" --drain 3
        done
    done
}

sc_topics() {
    local rep t
    for rep in $(seq "$REPS"); do
        for t in mqgate mosquitto; do
            run_case topics "N=1000,T=1000" $t 0 "$rep" -- topics -n 1000 \
                --topics 1000 --window 2000 --duration "$DUR" --warmup "$WARM" --drain 3
        done
    done
}

sc_publish() {
    local rep t
    for rep in $(seq "$REPS"); do
        for t in mqgate mqgate-v311 mosquitto; do
            run_case publish "N=100,K=8" $t 0 "$rep" -- publish -n 100 \
                --inflight 8 --duration "$DUR" --warmup "$WARM" --drain 3
        done
    done
}

sc_storm() {
    local rep t
    for rep in $(seq "$REPS"); do
        for t in mqgate mosquitto ceiling; do
            run_case storm "ws" $t 0 "$rep" -- storm -n "$STORM_N" --concurrency 256
        done
        for t in mqgate ceiling; do
            run_case storm "wss" $t 1 "$rep" -- storm -n "$STORM_N" --concurrency 256
        done
    done
}

sc_idle() {
    local rep t
    for rep in $(seq "$REPS"); do
        for t in mqgate mosquitto ceiling; do
            run_case idle "ws" $t 0 "$rep" -- idle -n "$IDLE_N" --settle 2
        done
        # the ceiling's TLS memory is a reference: once is enough
        for t in mqgate ceiling; do
            [ "$t" = ceiling ] && [ "$rep" -gt 1 ] && continue
            run_case idle "wss" $t 1 "$rep" -- idle -n "$IDLE_N" --settle 2
        done
    done
}

# ---- issue 12: stream state ----------------------------------------------------

# Fanout N=1000 without history, with a history of "#" (the gateway's own
# upstream subscription beside the sessions' bench/fanout: with MQTT 5 the
# broker sends it each message twice) and with a history of exactly
# bench/fanout (the sessions' subscription serves both), interleaved.
sc_history() {
    local rep t
    for rep in $(seq "$REPS"); do
        for t in mqgate-nohist mqgate-hist-all mqgate-hist-topic; do
            run_case history "N=1000" $t 0 "$rep" -- fanout -n 1000 \
                --window 100 --duration "$DUR" --warmup "$WARM" --drain 3
        done
    done
}

# issue 13: fanout N=1000 over Server-Sent Events streams against the same
# over WebSocket, interleaved (target: at least 0.8 of WebSocket).
sc_sse() {
    local rep t
    for rep in $(seq "$REPS"); do
        for t in mqgate mqgate-sse; do
            run_case sse "N=1000" $t 0 "$rep" -- fanout -n 1000 \
                --window 100 --duration "$DUR" --warmup "$WARM" --drain 3
        done
    done
}

# issue 17: fanout N=1000 through HAProxy to two gateways (wss, TLS ended
# at HAProxy) against straight to one gateway (wss, TLS ended at the
# gateway, and plain ws), interleaved: what the load balancer costs per
# delivery. The loadgen's sessions come from 16 source addresses, which
# HAProxy's "balance source" spreads over both gateways.
sc_haproxy() {
    local rep
    for rep in $(seq "$REPS"); do
        run_case haproxy direct-ws mqgate 0 "$rep" -- fanout -n 1000 \
            --window 100 --duration "$DUR" --warmup "$WARM" --drain 3
        run_case haproxy direct-wss mqgate 1 "$rep" -- fanout -n 1000 \
            --window 100 --duration "$DUR" --warmup "$WARM" --drain 3
        run_case haproxy haproxy-wss haproxy 1 "$rep" -- fanout -n 1000 \
            --window 100 --duration "$DUR" --warmup "$WARM" --drain 3
    done
}

# The haproxy scenario's table: per variant, deliveries/s, CPU-seconds per
# million deliveries of the gateways, of HAProxy and of both (the broker
# apart), and the ratio to one gateway over wss.
haproxy_summary() {
    grep -q ' sc=haproxy ' "$RESULTS" || return 0
    echo
    echo "### haproxy: fanout N=1000 through HAProxy to 2 gateways against straight to 1 (median of $REPS)"
    echo
    echo "| path | deliveries/s | lost | gateway CPU-s per 1M deliveries | HAProxy CPU-s per 1M | gateways + HAProxy per 1M | against direct wss |"
    echo "|---|---|---|---|---|---|---|"
    awk '
    function med(k,    n, i, j, t, a) {
        n = cnt[k]; if (!n) return ""
        for (i = 1; i <= n; i++) a[i] = v[k, i]
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function add(k, x) { cnt[k]++; v[k, cnt[k]] = x }
    / sc=haproxy / {
        delete f
        for (i = 1; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) }
        if (f["failed"] == 1 || f["deliv_rate"] <= 0) next
        var = f["var"]; if (!(var in seen)) { seen[var] = 1; order[++nv] = var }
        gw = f["cpu_gw"] + f["cpu_gw2"]; hap = f["cpu_haproxy"] + 0
        add(var SUBSEP "d", f["deliv_rate"]); add(var SUBSEP "lost", f["lost"] + 0)
        add(var SUBSEP "gw", gw / f["deliv_rate"] * 1e6); add(var SUBSEP "hap", hap / f["deliv_rate"] * 1e6)
        add(var SUBSEP "all", (gw + hap) / f["deliv_rate"] * 1e6)
    }
    END {
        base = med("direct-wss" SUBSEP "all")
        for (i = 1; i <= nv; i++) {
            k = order[i]
            r = (base > 0) ? sprintf("%.2f", med(k SUBSEP "all") / base) : "-"
            # in parentheses: a ">" among print arguments is a redirection
            printf("| %s | %.0f | %d | %.2f | %.2f | %.2f | %s |\n", k, med(k SUBSEP "d"),
                med(k SUBSEP "lost"), med(k SUBSEP "gw"), med(k SUBSEP "hap"), med(k SUBSEP "all"), r)
        }
    }' "$RESULTS"
}

# issue 13: POST /api/publish with HTTP/1.1 keep-alive, driven by wrk (64
# connections, one object a request), QoS 0 and QoS 1: requests answered
# per second by wrk, and the publishes that reached the broker counted by
# a subscriber there (mosquitto_sub); wrk's latency percentiles.
sc_httppub() {
    local rep qos out lua cnt sub n rate secs=$((DUR + 2))
    for rep in $(seq "$REPS"); do
        for qos in 0 1; do
            lua=$WORK/post-$qos.lua
            {
                echo 'wrk.method = "POST"'
                echo 'wrk.headers["Content-Type"] = "application/json"'
                echo "wrk.body = '{\"topic\":\"bench/httppub\",\"payload\":{\"v\":1},\"qos\":$qos}'"
                echo 'done = function(summary, latency, requests)'
                echo '  local e = summary.errors'
                echo '  io.write(string.format("WRK requests=%d errors=%d p50_us=%d p99_us=%d max_us=%d secs=%.3f\n",'
                echo '    summary.requests, e.status + e.connect + e.read + e.write + e.timeout,'
                echo '    latency:percentile(50), latency:percentile(99), latency.max, summary.duration / 1e6))'
                echo 'end'
            } >"$lua"
            start_target mqgate 0
            cnt=$WORK/httppub-count
            taskset -c 1 mosquitto_sub -p "$P_MQTT" -t bench/httppub -q 1 >"$cnt" &
            sub=$!
            sleep 0.5
            out=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" -s "$lua" \
                "http://127.0.0.1:$P_GW/api/publish" 2>>"$WORK/loadgen.log" | grep '^WRK' || true)
            sleep 1
            kill "$sub" 2>/dev/null || true
            wait "$sub" 2>/dev/null || true
            n=$(wc -l <"$cnt")
            rate=$(printf '%s\n' "$out" | awk -v n="$n" '{ for (i = 2; i <= NF; i++) { split($i, a, "="); v[a[1]] = a[2] } }
                END { if (v["secs"] > 0) printf "%.0f", n / v["secs"]; else print 0 }')
            stop_all
            out="RESULT mode=httppub ${out#WRK } at_broker=$n broker_rate=$rate sc=httppub var=qos$qos target=mqgate rep=$rep load1=$(cut -d' ' -f1 /proc/loadavg)"
            echo "$out" >>"$RESULTS"
            say "httppub  qos$qos rep $rep | $out"
        done
    done
}

# A history of sensor/# filled with 100 messages on each of 1000 topics,
# 1000 sessions on a live topic at 200 msg/s, then 100 sessions at once
# each replaying all 100,000 stored messages.
sc_replay() {
    local rep
    for rep in $(seq "$REPS"); do
        run_case replay "R=100,T=1000,N=1000" mqgate-replay 0 "$rep" -- replay \
            -n 1000 --replay-n 100 --topics 1000 --history 100 --rate 200 \
            --duration 2 --warmup "$WARM" --drain 2 --max-time 180
    done
}

# callgrind on the replay: the store filled as in sc_replay, 10 live
# sessions, then 10 sessions replaying 100,000 messages each (1,000,000
# replayed frames), counted from just before the first replay's sub.
sc_replay_profile() {
    say "replay_profile: callgrind while 10 sessions replay 100,000 messages each"
    callgrind_case "$CONF/mqgate-replay.json" callgrind-replay -- replay -n 10 \
        --replay-n 10 --topics 1000 --history 100 --rate 200 --duration 1 \
        --drain 2 --max-time 900
}

# 1000 sessions, each sensor/# with max_rate 1, over 1000 topics fed at
# 20,000 msg/s; the same with 100 sessions (a tenth of the deliveries, the
# same messages); and plain fanout N=1000 in the same run, for the
# gateway's CPU per delivery.
sc_rate() {
    local rep n
    for rep in $(seq "$REPS"); do
        for n in 1000 100; do
            run_case rate "max_rate,N=$n" mqgate-nohist 0 "$rep" -- rate -n $n \
                --topics 1000 --rate 20000 --max-rate 1 --duration "$RATE_DUR" \
                --warmup 2 --drain 1
        done
        run_case rate "fanout,N=1000" mqgate-nohist 0 "$rep" -- fanout -n 1000 \
            --window 100 --duration "$DUR" --warmup "$WARM" --drain 3
    done
}

# The hot path: callgrind (instruction counts, user space, all threads) on
# a short fanout, counted only while messages flow; then perf's cpu-clock
# samples (time, kernel included) on the optimized gateway, where perf can
# sample here.
# callgrind_case CONF NAME -- LOADGEN ARGS...: mqgated (CONF) under
# callgrind, its counters zeroed when the load generator touches its
# ready file and dumped when it ends; annotated into
# $WORK/profile/NAME-threads.txt and NAME-self.txt, its RESULT line into
# NAME-loadgen.txt.
callgrind_case() {
    local conf=$1 name=$2 pf=$WORK/profile rdy n
    shift 3
    mkdir -p "$pf"
    rm -f "$pf"/callgrind.out.*
    start_mosquitto
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$pf/callgrind.out.%p" \
        "$GATEWAY" -c "$conf" >>"$WORK/callgrind.log" 2>&1 &
    GW_PID=$!
    wait_healthz "$P_GW" || { say "mqgated under callgrind did not start"; exit 1; }
    rdy=$pf/ready-$name
    taskset -c 1 "$LG" "$@" --proto mqg --port "$P_GW" --broker-port "$P_MQTT" \
        --ready-file "$rdy" --start-delay 1500 --label "$name" \
        >"$pf/$name-loadgen.txt" 2>>"$WORK/loadgen.log" &
    local lgpid=$!
    for n in $(seq 6000); do [ -e "$rdy" ] && break; sleep 0.1; done
    callgrind_control -z "$GW_PID" >/dev/null 2>&1 || true
    wait "$lgpid" || true
    callgrind_control -d "$GW_PID" >/dev/null 2>&1 || true
    sleep 1
    stop_all
    local dump
    dump=$(ls -t "$pf"/callgrind.out.*.* 2>/dev/null | head -1 || true)
    [ -n "$dump" ] || dump=$(ls -t "$pf"/callgrind.out.* 2>/dev/null | head -1 || true)
    if [ -n "$dump" ]; then
        # Counters were zeroed mid-run: the frames then on each thread's
        # stack (start_thread for Paho's threads, main for the service
        # thread) carry that thread's whole cost. They give the split
        # between threads and are left out of the function list.
        callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null |
            grep -E '^ *[0-9,]+ \(' >"$pf/$name-all.txt" || true
        {
            grep -E 'PROGRAM TOTALS' "$pf/$name-all.txt" || true
            grep -E 'pthread_create.c:start_thread' "$pf/$name-all.txt" |
                sed 's/ \[.*//; s/\.\/nptl\/\.\/nptl\/pthread_create.c:start_thread/Paho threads (all of start_thread)/' || true
            grep -E 'gateway/main.c:main ' "$pf/$name-all.txt" |
                sed 's/ \[.*//; s/[^ ]*gateway\/main.c:main/service thread (all of main)/' || true
        } >"$pf/$name-threads.txt"
        grep -vE 'PROGRAM TOTALS|clone.S:clone|start_thread|libc_start|below main|gateway/main.c:main|ld-linux' \
            "$pf/$name-all.txt" | sed -E 's#[^ ]*/(gateway|common)/#\1/#; s#\./[^ ]*/([a-z_0-9.-]+\.[cS]):#\1:#; s# \[[^]]*/([^/]+)\]$# [\1]#' |
            head -40 >"$pf/$name-self.txt" || true
        say "callgrind, thread split and self cost (top entries):"
        cat "$pf/$name-threads.txt" >&2
        head -25 "$pf/$name-self.txt" >&2 || true
    fi
    cat "$pf/$name-loadgen.txt" >&2 || true
}

sc_profile() {
    local pf=$WORK/profile
    say "profile: callgrind on a fanout to 1000 sessions, 1000 messages"
    callgrind_case "$CONF/mqgate.json" callgrind -- fanout -n 1000 --window 100 \
        --batch 25 --msgs 1000 --drain 120 --max-time 300
    [ "${CALLGRIND_ONLY:-0}" = 1 ] && return 0

    if command -v perf >/dev/null &&
        perf record -q -e cpu-clock -o "$pf/probe.data" -- true >/dev/null 2>&1; then
        say "profile: perf cpu-clock samples on a fanout to 1000 sessions"
        start_target mqgate 0
        perf record -q -e cpu-clock -F 2000 -g -p "$GW_PID" -o "$pf/perf.data" \
            >/dev/null 2>&1 &
        local perfpid=$!
        # shellcheck disable=SC2086
        taskset -c 1 "$LG" fanout $T_ARGS -n 1000 --window 100 --duration 4 \
            --warmup 1 --label perf >"$pf/loadgen-perf.txt" 2>>"$WORK/loadgen.log" || true
        kill -INT "$perfpid" 2>/dev/null || true
        wait "$perfpid" 2>/dev/null || true
        stop_all
        perf report -i "$pf/perf.data" --no-children --sort sym --stdio \
            2>/dev/null | grep -E '^ +[0-9.]+%' | head -40 >"$pf/perf-self.txt" || true
        perf report -i "$pf/perf.data" --no-children --sort dso --stdio \
            2>/dev/null | grep -E '^ +[0-9.]+%' | head -15 >"$pf/perf-dso.txt" || true
        say "perf, self time by symbol (top entries):"
        head -25 "$pf/perf-self.txt" >&2 || true
        say "perf, by object:"
        cat "$pf/perf-dso.txt" >&2 || true
    fi

    # Session setup: where a storm's time goes, plain and TLS.
    if command -v perf >/dev/null &&
        perf record -q -e cpu-clock -o "$pf/probe.data" -- true >/dev/null 2>&1; then
        local tls name
        for tls in 0 1; do
            name=storm-ws
            [ "$tls" = 1 ] && name=storm-wss
            say "profile: perf cpu-clock samples of mqgated during a $name"
            start_target mqgate "$tls"
            perf record -q -e cpu-clock -F 2000 -p "$GW_PID" -o "$pf/$name.data" \
                >/dev/null 2>&1 &
            local perfpid=$!
            sleep 0.2
            # shellcheck disable=SC2086
            taskset -c 1 "$LG" storm $T_ARGS -n $((tls ? 2000 : 5000)) --concurrency 256 \
                --label "perf-$name" >"$pf/loadgen-$name.txt" 2>>"$WORK/loadgen.log" || true
            kill -INT "$perfpid" 2>/dev/null || true
            wait "$perfpid" 2>/dev/null || true
            stop_all
            perf report -i "$pf/$name.data" --no-children --sort dso --stdio \
                2>/dev/null | grep -E '^ +[0-9.]+%' | head -12 >"$pf/perf-$name-dso.txt" || true
            perf report -i "$pf/$name.data" --no-children --sort sym --stdio \
                2>/dev/null | grep -E '^ +[0-9.]+%' | head -30 >"$pf/perf-$name.txt" || true
            head -12 "$pf/perf-$name.txt" >&2 || true
        done
    fi

    # System calls per delivery: how many frames each send() carries.
    if command -v perf >/dev/null &&
        perf stat -e syscalls:sys_enter_sendto -o "$pf/probe.txt" -- true >/dev/null 2>&1; then
        say "profile: system calls per delivery, 3000 messages to 1000 sessions"
        local t pid ev="raw_syscalls:sys_enter,syscalls:sys_enter_sendto,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_poll,syscalls:sys_enter_ppoll,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read"
        for t in mqgate ceiling; do
            start_target "$t" 0
            pid=$GW_PID
            [ "$t" = ceiling ] && pid=$CEIL_PID
            perf stat -e "$ev" -p "$pid" -o "$pf/syscalls-$t.txt" >/dev/null 2>&1 &
            local statpid=$!
            sleep 0.2
            # shellcheck disable=SC2086
            taskset -c 1 "$LG" fanout $T_ARGS -n 1000 --window 100 --msgs 3000 \
                --drain 20 --label "syscalls-$t" >"$pf/loadgen-sys-$t.txt" \
                2>>"$WORK/loadgen.log" || true
            kill -INT "$statpid" 2>/dev/null || true
            wait "$statpid" 2>/dev/null || true
            stop_all
        done
        {
            echo "| target | deliveries | all syscalls | sendto | writev | write | poll/ppoll | epoll_wait | recvfrom/read | deliveries per sendto+writev |"
            echo "|---|---|---|---|---|---|---|---|---|---|"
            for t in mqgate ceiling; do
                awk -v t="$t" -v lg="$pf/loadgen-sys-$t.txt" '
                    function per(x) { return d > 0 ? sprintf("%s (%.3f)", x + 0, (x + 0) / d) : x + 0 }
                    BEGIN {
                        while ((getline line < lg) > 0)
                            if (match(line, /received=[0-9]+/)) d = substr(line, RSTART + 9, RLENGTH - 9)
                    }
                    /sys_enter/ { gsub(",", "", $1); n[$2] = $1 }
                    END {
                        s = n["syscalls:sys_enter_sendto"] + n["syscalls:sys_enter_writev"]
                        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t, d,
                            per(n["raw_syscalls:sys_enter"]), per(n["syscalls:sys_enter_sendto"]),
                            per(n["syscalls:sys_enter_writev"]), per(n["syscalls:sys_enter_write"]),
                            per(n["syscalls:sys_enter_poll"] + n["syscalls:sys_enter_ppoll"]),
                            per(n["syscalls:sys_enter_epoll_wait"]),
                            per(n["syscalls:sys_enter_recvfrom"] + n["syscalls:sys_enter_read"]),
                            (s > 0 ? sprintf("%.1f", d / s) : "-")
                    }' "$pf/syscalls-$t.txt"
            done
        } >"$pf/syscalls.md"
        cat "$pf/syscalls.md" >&2
    fi
}

# ---- summary -------------------------------------------------------------------------
summarize() {
    awk -v reps="$REPS" '
    function fmt_rate(v) {
        if (v == "") return "-"
        if (v >= 1e6) return sprintf("%.2fM", v / 1e6)
        if (v >= 1e4) return sprintf("%.0fk", v / 1e3)
        if (v >= 1e3) return sprintf("%.1fk", v / 1e3)
        return sprintf("%.0f", v)
    }
    function fmt_ms(us) {
        if (us == "") return "-"
        if (us >= 100000) return sprintf("%.0f", us / 1000)
        if (us >= 10000) return sprintf("%.1f", us / 1000)
        return sprintf("%.2f", us / 1000)
    }
    function fmt_num(v, d) { return v == "" ? "-" : sprintf("%." d "f", v) }
    # median (min-max) of the values of key k
    function stat(k, kind,    n, i, j, t, a, med, s) {
        n = cnt[k]
        if (!n) return "-"
        for (i = 1; i <= n; i++) a[i] = val[k, i] + 0
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        MED[k] = med
        s = one(med, kind)
        if (n > 1) s = s " (" one(a[1], kind) "–" one(a[n], kind) ")"
        return s
    }
    function one(v, kind) {
        if (kind == "rate") return fmt_rate(v)
        if (kind == "ms") return fmt_ms(v)
        if (kind == "msd") return fmt_num(v, (v < 10 ? 2 : 0))
        if (kind == "pct") return fmt_num(v, 3)
        if (kind == "kib") return fmt_num(v / 1024, 1)
        if (kind == "cpu") return fmt_num(v, 2)
        return fmt_num(v, 0)
    }
    function add(k, v) { if (v == "" || v < 0) return; cnt[k]++; val[k, cnt[k]] = v }
    {
        delete f
        for (i = 1; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) }
        sc = f["sc"]; var = f["var"]; tg = f["target"]
        if (sc == "") next
        key = sc SUBSEP var SUBSEP tg
        if (!(key in seen)) { seen[key] = 1; order[++norder] = key }
        if (!((sc SUBSEP var) in vseen)) { vseen[sc SUBSEP var] = 1; vorder[sc, ++nv[sc]] = var }
        if (!((sc SUBSEP tg) in tseen)) { tseen[sc SUBSEP tg] = 1; torder[sc, ++nt[sc]] = tg }
        if (f["failed"] == 1 && f["mode"] == "") { fails[key]++; next }
        tcpu = 0; if ("cpu_gw" in f) tcpu += f["cpu_gw"]; if ("cpu_broker" in f) tcpu += f["cpu_broker"]; if ("cpu_ceiling" in f) tcpu += f["cpu_ceiling"]
        main = (tg ~ /^mqgate/) ? "gw" : (tg == "mosquitto") ? "broker" : "ceiling"
        if (sc == "fanout" || sc == "latency" || sc == "topics") {
            add(key SUBSEP "deliv", f["deliv_rate"]); add(key SUBSEP "msgs", f["msg_rate"])
            if (tcpu > 0) add(key SUBSEP "eff", f["deliv_rate"] / tcpu)
            add(key SUBSEP "tcpu", tcpu)
            add(key SUBSEP "loss", f["loss_pct"]); add(key SUBSEP "lost", f["lost"])
            add(key SUBSEP "p50", f["p50_us"]); add(key SUBSEP "p99", f["p99_us"]); add(key SUBSEP "max", f["max_us"])
            add(key SUBSEP "lg", f["lg_cpu"]); add(key SUBSEP "lgw", f["lg_wait"])
            add(key SUBSEP "undel", f["undelivered"])
            if (sc == "latency") { runs[key]++; if (f["keeps_up"] == "yes") keeps[key]++ }
        } else if (sc == "publish") {
            add(key SUBSEP "ack", f["ack_rate"]); if (tcpu > 0) add(key SUBSEP "eff", f["ack_rate"] / tcpu)
            add(key SUBSEP "tcpu", tcpu)
            add(key SUBSEP "p50", f["p50_us"]); add(key SUBSEP "p99", f["p99_us"]); add(key SUBSEP "unacked", f["unacked"])
            add(key SUBSEP "lg", f["lg_cpu"]); add(key SUBSEP "lgw", f["lg_wait"])
        } else if (sc == "storm") {
            add(key SUBSEP "rate", f["rate"]); c = f["cpu_" main]
            if (c > 0) add(key SUBSEP "eff", f["rate"] / c)
            add(key SUBSEP "tcpu", c)
            add(key SUBSEP "p50", f["p50_ms"]); add(key SUBSEP "p99", f["p99_ms"]); add(key SUBSEP "failed", f["failed"])
            add(key SUBSEP "lg", f["lg_cpu"]); add(key SUBSEP "lgw", f["lg_wait"])
        } else if (sc == "idle") {
            add(key SUBSEP "per", f["per_session_" main]); add(key SUBSEP "failed", f["failed"])
            add(key SUBSEP "rss1", f["rss1_" main])
        } else if (sc == "httppub") {
            add(key SUBSEP "req", (f["secs"] > 0) ? f["requests"] / f["secs"] : "")
            add(key SUBSEP "brate", f["broker_rate"]); add(key SUBSEP "errs", f["errors"])
            add(key SUBSEP "p50", f["p50_us"]); add(key SUBSEP "p99", f["p99_us"])
            add(key SUBSEP "max", f["max_us"])
        } else if (sc == "history" || sc == "rate" || sc == "sse") {
            add(key SUBSEP "deliv", f["deliv_rate"]); add(key SUBSEP "tcpu", tcpu)
            if (tcpu > 0) add(key SUBSEP "eff", f["deliv_rate"] / tcpu)
            add(key SUBSEP "gw", f["cpu_gw"])
            if (f["deliv_rate"] > 0) add(key SUBSEP "nsper", f["cpu_gw"] / f["deliv_rate"] * 1e9)
            add(key SUBSEP "p50", f["p50_us"]); add(key SUBSEP "p99", f["p99_us"])
            add(key SUBSEP "lost", f["lost"]); add(key SUBSEP "undel", f["undelivered"])
            add(key SUBSEP "lgw", f["lg_wait"]); add(key SUBSEP "lg", f["lg_cpu"])
            if (sc == "rate" && var ~ /^max_rate/) {
                add(key SUBSEP "offered", f["offered"]); add(key SUBSEP "soon", f["too_soon"])
                add(key SUBSEP "gaps", f["late_gaps"]); add(key SUBSEP "disorder", f["disorder"])
                add(key SUBSEP "stale", f["stale_end"]); add(key SUBSEP "age50", f["age_p50_us"])
                add(key SUBSEP "age99", f["age_p99_us"])
            }
            # per repetition, for ratios within one round
            PR[sc, var, tg, f["rep"], "deliv"] = f["deliv_rate"]
            PR[sc, var, tg, f["rep"], "eff"] = (tcpu > 0) ? f["deliv_rate"] / tcpu : ""
            PR[sc, var, tg, f["rep"], "nsper"] = (f["deliv_rate"] > 0) ? f["cpu_gw"] / f["deliv_rate"] * 1e9 : ""
            if (f["rep"] > maxrep) maxrep = f["rep"]
        } else if (sc == "replay") {
            add(key SUBSEP "rrate", f["replay_rate"]); add(key SUBSEP "rsecs", f["replay_secs"])
            add(key SUBSEP "exact", f["replay_exact"]); add(key SUBSEP "rgot", f["replay_got"])
            add(key SUBSEP "rexp", f["replay_expect"])
            add(key SUBSEP "rbad", f["replay_bad_order"] + f["replay_not_history"] + f["replay_topics_off"] + f["replay_ok_mismatch"])
            add(key SUBSEP "p50", f["p50_us"]); add(key SUBSEP "p99", f["p99_us"]); add(key SUBSEP "max", f["max_us"])
            add(key SUBSEP "b50", f["before_p50_us"]); add(key SUBSEP "b99", f["before_p99_us"])
            add(key SUBSEP "llost", f["live_lost"] + f["live_missing"]); add(key SUBSEP "gw", f["cpu_gw"])
            add(key SUBSEP "lg", f["lg_cpu"]); add(key SUBSEP "lgw", f["lg_wait"])
            add(key SUBSEP "fill", f["fill_secs"])
        }
        add(key SUBSEP "load", f["load1"])
    }
    function K(sc, var, tg, m) { return sc SUBSEP var SUBSEP tg SUBSEP m }
    function med(sc, var, tg, m,    k) { k = K(sc, var, tg, m); stat(k, "n"); return (k in MED) ? MED[k] : "" }
    function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2f", a / b) }
    function has(sc) { return nv[sc] > 0 }
    # min–max over the rounds of a / b, measured in the same round
    function pairs(sc, var, ta, tb, m) { return pairs_of(sc, var, ta, var, tb, m) }
    function pairs2(sc, va, vb, t, m) { return pairs_of(sc, va, t, vb, t, m) }
    function pairs_of(sc, va, ta, vb, tb, m,    r, lo, hi, x, n) {
        n = 0
        for (r = 1; r <= maxrep; r++) {
            if (!((sc, va, ta, r, m) in PR) || !((sc, vb, tb, r, m) in PR)) continue
            if (PR[sc, va, ta, r, m] == "" || PR[sc, vb, tb, r, m] == "" || PR[sc, vb, tb, r, m] == 0) continue
            x = PR[sc, va, ta, r, m] / PR[sc, vb, tb, r, m]
            if (!n || x < lo) lo = x
            if (!n || x > hi) hi = x
            n++
        }
        if (!n) return "-"
        return (n == 1) ? sprintf("%.2f", lo) : sprintf("%.2f–%.2f", lo, hi)
    }
    END {
        printf "Medians of %d run(s), (min–max) when more than one.\n", reps
        if (has("fanout")) {
            print "\n### fanout: one topic, N sessions, windowed publisher\n"
            print "| N | target | deliveries/s | per CPU-second | target CPU | loss % | late | p50 ms | p99 ms | loadgen CPU | loadgen waited |"
            print "|---|---|---|---|---|---|---|---|---|---|---|"
            for (i = 1; i <= nv["fanout"]; i++) for (j = 1; j <= nt["fanout"]; j++) {
                v = vorder["fanout", i]; t = torder["fanout", j]
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", substr(v, 3), t,
                    stat(K("fanout", v, t, "deliv"), "rate"), stat(K("fanout", v, t, "eff"), "rate"),
                    stat(K("fanout", v, t, "tcpu"), "cpu"), stat(K("fanout", v, t, "loss"), "pct"),
                    stat(K("fanout", v, t, "undel"), "n"),
                    stat(K("fanout", v, t, "p50"), "ms"), stat(K("fanout", v, t, "p99"), "ms"),
                    stat(K("fanout", v, t, "lg"), "cpu"), stat(K("fanout", v, t, "lgw"), "cpu")
            }
            print "\n| N | mqgate / mosquitto | mqgate / ceiling | same, per CPU-second: / mosquitto | / ceiling |"
            print "|---|---|---|---|---|"
            for (i = 1; i <= nv["fanout"]; i++) {
                v = vorder["fanout", i]
                g = med("fanout", v, "mqgate", "deliv"); m = med("fanout", v, "mosquitto", "deliv"); c = med("fanout", v, "ceiling", "deliv")
                ge = med("fanout", v, "mqgate", "eff"); me = med("fanout", v, "mosquitto", "eff"); ce = med("fanout", v, "ceiling", "eff")
                printf "| %s | %s | %s | %s | %s |\n", substr(v, 3), ratio(g, m), ratio(g, c), ratio(ge, me), ratio(ge, ce)
            }
        }
        if (has("latency")) {
            print "\n### latency: N = 1000 at 200 msg/s (200k deliveries/s offered)\n"
            print "| target | deliveries/s | lost | late | p50 ms | p99 ms | max ms | keeps up | target CPU | loadgen waited |"
            print "|---|---|---|---|---|---|---|---|---|---|"
            for (j = 1; j <= nt["latency"]; j++) {
                t = torder["latency", j]; v = vorder["latency", 1]; k = "latency" SUBSEP v SUBSEP t
                printf "| %s | %s | %s | %s | %s | %s | %s | %d of %d | %s | %s |\n", t,
                    stat(K("latency", v, t, "deliv"), "rate"), stat(K("latency", v, t, "lost"), "n"),
                    stat(K("latency", v, t, "undel"), "n"),
                    stat(K("latency", v, t, "p50"), "ms"), stat(K("latency", v, t, "p99"), "ms"),
                    stat(K("latency", v, t, "max"), "ms"), keeps[k] + 0, runs[k] + 0,
                    stat(K("latency", v, t, "tcpu"), "cpu"), stat(K("latency", v, t, "lgw"), "cpu")
            }
        }
        if (has("topics")) {
            print "\n### topics: 1000 topics, 1000 sessions with 3 filters each (wildcards)\n"
            print "| target | messages/s | deliveries/s | deliveries per CPU-second | target CPU | lost | p50 ms | p99 ms |"
            print "|---|---|---|---|---|---|---|---|"
            for (j = 1; j <= nt["topics"]; j++) {
                t = torder["topics", j]; v = vorder["topics", 1]
                printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", t,
                    stat(K("topics", v, t, "msgs"), "rate"), stat(K("topics", v, t, "deliv"), "rate"),
                    stat(K("topics", v, t, "eff"), "rate"), stat(K("topics", v, t, "tcpu"), "cpu"),
                    stat(K("topics", v, t, "lost"), "n"),
                    stat(K("topics", v, t, "p50"), "ms"), stat(K("topics", v, t, "p99"), "ms")
            }
        }
        if (has("publish")) {
            print "\n### publish: 100 sessions publishing QoS 1, 8 in flight each\n"
            print "| target | acked/s | per CPU-second | target CPU | ack p50 ms | ack p99 ms | never acked |"
            print "|---|---|---|---|---|---|---|"
            for (j = 1; j <= nt["publish"]; j++) {
                t = torder["publish", j]; v = vorder["publish", 1]
                printf "| %s | %s | %s | %s | %s | %s | %s |\n", t,
                    stat(K("publish", v, t, "ack"), "rate"), stat(K("publish", v, t, "eff"), "rate"),
                    stat(K("publish", v, t, "tcpu"), "cpu"),
                    stat(K("publish", v, t, "p50"), "ms"), stat(K("publish", v, t, "p99"), "ms"),
                    stat(K("publish", v, t, "unacked"), "n")
            }
        }
        if (has("storm")) {
            print "\n### storm: sessions connecting at once (256 in flight) to hello + status + sub ok\n"
            print "| transport | target | sessions/s | per CPU-second | target CPU | p50 ms | p99 ms | failed | loadgen CPU | loadgen waited |"
            print "|---|---|---|---|---|---|---|---|---|---|"
            for (i = 1; i <= nv["storm"]; i++) for (j = 1; j <= nt["storm"]; j++) {
                v = vorder["storm", i]; t = torder["storm", j]
                if (!cnt[K("storm", v, t, "rate")]) continue
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", v, t,
                    stat(K("storm", v, t, "rate"), "rate"), stat(K("storm", v, t, "eff"), "rate"),
                    stat(K("storm", v, t, "tcpu"), "cpu"),
                    stat(K("storm", v, t, "p50"), "msd"), stat(K("storm", v, t, "p99"), "msd"),
                    stat(K("storm", v, t, "failed"), "n"), stat(K("storm", v, t, "lg"), "cpu"),
                    stat(K("storm", v, t, "lgw"), "cpu")
            }
        }
        if (has("idle")) {
            print "\n### idle: subscribed idle sessions, resident memory per session\n"
            print "| transport | target | KiB per session | RSS after, MiB | failed |"
            print "|---|---|---|---|---|"
            for (i = 1; i <= nv["idle"]; i++) for (j = 1; j <= nt["idle"]; j++) {
                v = vorder["idle", i]; t = torder["idle", j]
                if (!cnt[K("idle", v, t, "per")]) continue
                k = K("idle", v, t, "rss1"); s = stat(k, "n")
                printf "| %s | %s | %s | %.0f | %s |\n", v, t, stat(K("idle", v, t, "per"), "kib"),
                    MED[k] / 1024, stat(K("idle", v, t, "failed"), "n")
            }
        }
        if (has("history")) {
            v = vorder["history", 1]
            print "\n### history: fanout N=1000, without and with a history of the topic\n"
            print "| target | deliveries/s | per CPU-second (gateway + broker) | gateway CPU | broker CPU + gateway CPU | lost | late | p50 ms | p99 ms | loadgen waited |"
            print "|---|---|---|---|---|---|---|---|---|---|"
            for (j = 1; j <= nt["history"]; j++) {
                t = torder["history", j]
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t,
                    stat(K("history", v, t, "deliv"), "rate"), stat(K("history", v, t, "eff"), "rate"),
                    stat(K("history", v, t, "gw"), "cpu"), stat(K("history", v, t, "tcpu"), "cpu"),
                    stat(K("history", v, t, "lost"), "n"), stat(K("history", v, t, "undel"), "n"),
                    stat(K("history", v, t, "p50"), "ms"), stat(K("history", v, t, "p99"), "ms"),
                    stat(K("history", v, t, "lgw"), "cpu")
            }
            print "\n| with history / without | deliveries/s: ratio of medians | per round (min–max) | per CPU-second: ratio of medians | per round (min–max) |"
            print "|---|---|---|---|---|"
            for (j = 1; j <= nt["history"]; j++) {
                t = torder["history", j]
                if (t == "mqgate-nohist") continue
                printf "| %s | %s | %s | %s | %s |\n", t,
                    ratio(med("history", v, t, "deliv"), med("history", v, "mqgate-nohist", "deliv")),
                    pairs("history", v, t, "mqgate-nohist", "deliv"),
                    ratio(med("history", v, t, "eff"), med("history", v, "mqgate-nohist", "eff")),
                    pairs("history", v, t, "mqgate-nohist", "eff")
            }
        }
        if (has("sse")) {
            v = vorder["sse", 1]
            print "\n### sse: fanout N=1000, Server-Sent Events streams against WebSocket sessions\n"
            print "| target | deliveries/s | per CPU-second (gateway + broker) | gateway CPU | lost | late | p50 ms | p99 ms | loadgen waited |"
            print "|---|---|---|---|---|---|---|---|---|"
            for (j = 1; j <= nt["sse"]; j++) {
                t = torder["sse", j]
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t,
                    stat(K("sse", v, t, "deliv"), "rate"), stat(K("sse", v, t, "eff"), "rate"),
                    stat(K("sse", v, t, "gw"), "cpu"), stat(K("sse", v, t, "lost"), "n"),
                    stat(K("sse", v, t, "undel"), "n"), stat(K("sse", v, t, "p50"), "ms"),
                    stat(K("sse", v, t, "p99"), "ms"), stat(K("sse", v, t, "lgw"), "cpu")
            }
            print "\n| SSE / WebSocket | deliveries/s: ratio of medians | per round (min–max) | per CPU-second: ratio of medians | per round (min–max) |"
            print "|---|---|---|---|---|"
            printf "| mqgate-sse | %s | %s | %s | %s |\n",
                ratio(med("sse", v, "mqgate-sse", "deliv"), med("sse", v, "mqgate", "deliv")),
                pairs("sse", v, "mqgate-sse", "mqgate", "deliv"),
                ratio(med("sse", v, "mqgate-sse", "eff"), med("sse", v, "mqgate", "eff")),
                pairs("sse", v, "mqgate-sse", "mqgate", "eff")
        }
        if (has("httppub")) {
            print "\n### httppub: POST /api/publish over 64 keep-alive connections (wrk)\n"
            print "| QoS | answered/s | reached the broker /s | errors | p50 ms | p99 ms | max ms |"
            print "|---|---|---|---|---|---|---|"
            for (j = 1; j <= nv["httppub"]; j++) {
                v = vorder["httppub", j]; t = "mqgate"
                printf "| %s | %s | %s | %s | %s | %s | %s |\n", substr(v, 4),
                    stat(K("httppub", v, t, "req"), "rate"), stat(K("httppub", v, t, "brate"), "rate"),
                    stat(K("httppub", v, t, "errs"), "n"), stat(K("httppub", v, t, "p50"), "ms"),
                    stat(K("httppub", v, t, "p99"), "ms"), stat(K("httppub", v, t, "max"), "ms")
            }
        }
        if (has("replay")) {
            v = vorder["replay", 1]; t = "mqgate-replay"
            print "\n### replay: 100 sessions at once replaying 100 messages of each of 1000 topics, 1000 sessions on a live topic at 200 msg/s\n"
            print "| replayed/s | replay s | sessions exact | replayed | faults | live p50 ms | live p99 ms | live max ms | before: p50 ms | p99 ms | live lost | gateway CPU | loadgen CPU | loadgen waited | fill s |"
            print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
            printf "| %s | %s | %s of 100 | %s of %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                stat(K("replay", v, t, "rrate"), "rate"), stat(K("replay", v, t, "rsecs"), "cpu"),
                stat(K("replay", v, t, "exact"), "n"), stat(K("replay", v, t, "rgot"), "rate"),
                stat(K("replay", v, t, "rexp"), "rate"), stat(K("replay", v, t, "rbad"), "n"),
                stat(K("replay", v, t, "p50"), "ms"), stat(K("replay", v, t, "p99"), "ms"),
                stat(K("replay", v, t, "max"), "ms"), stat(K("replay", v, t, "b50"), "ms"),
                stat(K("replay", v, t, "b99"), "ms"), stat(K("replay", v, t, "llost"), "n"),
                stat(K("replay", v, t, "gw"), "cpu"), stat(K("replay", v, t, "lg"), "cpu"),
                stat(K("replay", v, t, "lgw"), "cpu"), stat(K("replay", v, t, "fill"), "cpu")
        }
        if (has("rate")) {
            t = "mqgate-nohist"
            print "\n### rate: N sessions x sensor/# max_rate 1 over 1000 topics at 20,000 msg/s, and fanout N=1000\n"
            print "| run | deliveries/s | offered | gateway CPU | gateway CPU per delivery, ns | too soon | late gaps | out of order | last not delivered | age p50 ms | age p99 ms | loadgen waited |"
            print "|---|---|---|---|---|---|---|---|---|---|---|---|"
            for (i = 1; i <= nv["rate"]; i++) {
                v = vorder["rate", i]
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", v,
                    stat(K("rate", v, t, "deliv"), "rate"), stat(K("rate", v, t, "offered"), "rate"),
                    stat(K("rate", v, t, "gw"), "cpu"), stat(K("rate", v, t, "nsper"), "n"),
                    stat(K("rate", v, t, "soon"), "n"), stat(K("rate", v, t, "gaps"), "n"),
                    stat(K("rate", v, t, "disorder"), "n"), stat(K("rate", v, t, "stale"), "n"),
                    stat(K("rate", v, t, "age50"), "ms"), stat(K("rate", v, t, "age99"), "ms"),
                    stat(K("rate", v, t, "lgw"), "cpu")
            }
            print ""
            for (i = 1; i <= nv["rate"]; i++) {
                v = vorder["rate", i]
                if (v !~ /^max_rate/) continue
                printf "%s: deliveries / offered %s; gateway CPU per delivery / fanout N=1000: %s (per round: %s)\n", v,
                    ratio(med("rate", v, t, "deliv"), med("rate", v, t, "offered")),
                    ratio(med("rate", v, t, "nsper"), med("rate", "fanout,N=1000", t, "nsper")),
                    pairs2("rate", v, "fanout,N=1000", t, "nsper")
            }
        }
        print "\n### targets\n"
        print "| target | measured | met |"
        print "|---|---|---|"
        v = "N=1000"
        # verdicts take the smaller of the two ratios: wall-clock rates
        # (the load generator may be the bottleneck of the faster target)
        # and per CPU-second of the target (robust to a shared machine)
        if (cnt[K("fanout", v, "mqgate", "deliv")]) {
            r = ratio(med("fanout", v, "mqgate", "deliv"), med("fanout", v, "mosquitto", "deliv"))
            r2 = ratio(med("fanout", v, "mqgate", "eff"), med("fanout", v, "mosquitto", "eff"))
            printf "| fanout N=1000 >= 10x mosquitto WS | %sx (per CPU-second %sx) | %s |\n", r, r2, (r != "-" && r2 != "-" && r >= 10 && r2 >= 10) ? "yes" : "no"
            r = ratio(med("fanout", v, "mqgate", "deliv"), med("fanout", v, "ceiling", "deliv"))
            r2 = ratio(med("fanout", v, "mqgate", "eff"), med("fanout", v, "ceiling", "eff"))
            printf "| fanout N=1000 >= 1/4 of the ceiling | %s (per CPU-second %s) | %s |\n", r, r2, (r != "-" && r2 != "-" && r >= 0.25 && r2 >= 0.25) ? "yes" : "no"
        }
        v = vorder["latency", 1]
        if (v != "" && cnt[K("latency", v, "mqgate", "p99")]) {
            k = K("latency", v, "mqgate", "lost"); stat(k, "n"); lost_all = 0
            for (i = 1; i <= cnt[k]; i++) lost_all += val[k, i]
            k = K("latency", v, "mqgate", "undel"); stat(k, "n")
            for (i = 1; i <= cnt[k]; i++) lost_all += val[k, i]
            p = med("latency", v, "mqgate", "p99"); pc = med("latency", v, "ceiling", "p99")
            printf "| latency N=1000 at 200k/s: no loss, p99 < 20 ms | lost %d, p99 %s ms (ceiling: %s ms) | %s |\n", lost_all, fmt_ms(p), fmt_ms(pc), (lost_all == 0 && p < 20000) ? "yes" : "no"
        }
        if (cnt[K("storm", "ws", "mqgate", "rate")]) {
            r = med("storm", "ws", "mqgate", "rate")
            printf "| storm ws >= 15000 sessions/s | %s/s | %s |\n", fmt_rate(r), (r >= 15000) ? "yes" : "no"
        }
        if (cnt[K("storm", "wss", "mqgate", "rate")]) {
            r = ratio(med("storm", "wss", "mqgate", "rate"), med("storm", "wss", "ceiling", "rate"))
            r2 = ratio(med("storm", "wss", "mqgate", "eff"), med("storm", "wss", "ceiling", "eff"))
            printf "| wss handshakes at the crypto limit (>= 0.8 of the ceiling'"'"'s OpenSSL) | %s of the ceiling (per CPU-second %s) | %s |\n", r, r2, (r != "-" && r2 != "-" && r >= 0.8 && r2 >= 0.8) ? "yes" : "no"
        }
        v = vorder["history", 1]
        if (v != "") {
            for (j = 1; j <= nt["history"]; j++) {
                t = torder["history", j]
                if (t == "mqgate-nohist") continue
                r = ratio(med("history", v, t, "deliv"), med("history", v, "mqgate-nohist", "deliv"))
                r2 = ratio(med("history", v, t, "eff"), med("history", v, "mqgate-nohist", "eff"))
                printf "| fanout N=1000 with history (%s) >= 0.9 of without | %s (per CPU-second %s) | %s |\n", t, r, r2, (r != "-" && r2 != "-" && r >= 0.9 && r2 >= 0.9) ? "yes" : "no"
            }
        }
        v = vorder["replay", 1]
        if (v != "") {
            p = med("replay", v, "mqgate-replay", "p99"); e = med("replay", v, "mqgate-replay", "exact")
            printf "| replay: 100 x 100,000 messages, all exact; live p99 < 50 ms meanwhile | %s replayed/s, %s of 100 exact, p99 %s ms | %s |\n", fmt_rate(med("replay", v, "mqgate-replay", "rrate")), e, fmt_ms(p), (p != "" && p < 50000 && e == 100) ? "yes" : "no"
        }
        if (cnt[K("rate", "max_rate,N=1000", "mqgate-nohist", "deliv")]) {
            d = med("rate", "max_rate,N=1000", "mqgate-nohist", "deliv")
            r = ratio(med("rate", "max_rate,N=1000", "mqgate-nohist", "nsper"), med("rate", "fanout,N=1000", "mqgate-nohist", "nsper"))
            printf "| max_rate: deliveries within 10%% of 1,000,000/s | %s/s | %s |\n", fmt_rate(d), (d >= 900000 && d <= 1100000) ? "yes" : "no"
            printf "| max_rate: gateway CPU per delivery within 2x of fanout | %sx | %s |\n", r, (r != "-" && r <= 2) ? "yes" : "no"
        }
        if (cnt[K("idle", "ws", "mqgate", "per")]) {
            r = med("idle", "ws", "mqgate", "per")
            printf "| idle ws <= 3 KiB per session | %.1f KiB | %s |\n", r / 1024, (r <= 3072) ? "yes" : "no"
        }
        if (cnt[K("idle", "wss", "mqgate", "per")]) {
            r = med("idle", "wss", "mqgate", "per")
            printf "| idle wss <= 35 KiB per session | %.1f KiB | %s |\n", r / 1024, (r <= 35840) ? "yes" : "no"
        }
    }' "$RESULTS"
}

# shellcheck source=bench/scale.sh
. "$SRC/bench/scale.sh"

# ---- main ----------------------------------------------------------------------------
if [ "$MODE" = summary ]; then
    # bench/run.sh summary RESULTS.txt...: the summary of saved raw results
    [ $# -gt 0 ] || { echo "usage: bench/run.sh summary results.txt..." >&2; exit 2; }
    cat "$@" >"$RESULTS"
    REPS=$(grep -o ' rep=[0-9]*' "$RESULTS" | sort -t= -k2 -n | tail -1 | cut -d= -f2)
    summarize
    exit 0
fi
install_deps
build
configure
HARD=$(ulimit -Hn)
ulimit -n "$HARD" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_N + 200)) ]; then
    say "ulimit -n is $(ulimit -n): fewer sessions than planned"
    IDLE_N=$(($(ulimit -n) - 200))
    FANOUT_NS=$(for n in $FANOUT_NS; do [ "$n" -le "$IDLE_N" ] && printf '%s ' "$n"; done)
fi

{
    echo "## mqgate benchmark run ($MODE, $REPS run(s) per measurement)"
    echo
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
    echo "- mosquitto $(mosquitto -h 2>/dev/null | awk '/version/ {print $3; exit}'), libwebsockets $(pkg-config --modversion libwebsockets 2>/dev/null || echo ?), $(openssl version | cut -d' ' -f1-2)"
    echo "- ulimit -n $(ulimit -n); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- gateway, broker and ceiling on CPU 0; load generator on CPU 1"
    sp=$(taskset -c 0 openssl speed -seconds 1 ecdsap256 ecdhx25519 2>/dev/null |
        awk '/ecdsa \(nistp256\)/ {s=$(NF-1)} /X25519/ {x=$NF} END {printf "%s ECDSA P-256 signs/s, %s X25519 ops/s", s, x}')
    echo "- crypto on CPU 0 (openssl speed): $sp"
} >"$WORK/header.md"
cat "$WORK/header.md" >&2

for s in $SCENARIOS; do
    say ""
    say "== $s ($(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"
    "sc_$s"
done

{
    cat "$WORK/header.md"
    echo
    if [ -s "$RESULTS" ]; then
        summarize
    fi
    haproxy_summary
    scale_summary
    if [ -s "$WORK/profile/callgrind-self.txt" ]; then
        echo
        echo "### profile: callgrind, instructions while 1000 messages fan out to 1000 sessions"
        echo
        echo '```'
        cat "$WORK/profile/callgrind-threads.txt"
        echo
        head -30 "$WORK/profile/callgrind-self.txt"
        echo '```'
    fi
    if [ -s "$WORK/profile/callgrind-replay-self.txt" ]; then
        echo
        echo "### replay_profile: callgrind, instructions while 10 sessions replay 100,000 stored messages each"
        echo
        echo '```'
        cat "$WORK/profile/callgrind-replay-threads.txt"
        echo
        head -30 "$WORK/profile/callgrind-replay-self.txt"
        echo '```'
    fi
    if [ -s "$WORK/profile/perf-self.txt" ]; then
        echo
        echo "### profile: perf cpu-clock samples of mqgated, self time (fanout to 1000 sessions)"
        echo
        echo '```'
        cat "$WORK/profile/perf-dso.txt"
        echo
        head -30 "$WORK/profile/perf-self.txt"
        echo '```'
    fi
    for name in storm-ws storm-wss; do
        if [ -s "$WORK/profile/perf-$name.txt" ]; then
            echo
            echo "### profile: perf cpu-clock samples of mqgated during a $name"
            echo
            echo '```'
            cat "$WORK/profile/perf-$name-dso.txt"
            echo
            head -25 "$WORK/profile/perf-$name.txt"
            echo '```'
        fi
    done
    if [ -s "$WORK/profile/syscalls.md" ]; then
        echo
        echo "### profile: system calls of the target while 3000 messages fan out to 1000 sessions (per delivery in parentheses)"
        echo
        cat "$WORK/profile/syscalls.md"
    fi
    echo
    echo "Took $(($(date +%s) - STARTED)) s."
} >"$WORK/summary.md"

OUT=$SRC/bench/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
cp "$WORK/summary.md" "$RESULTS" "$OUT/"
[ -d "$WORK/profile" ] && cp "$WORK"/profile/*.txt "$WORK"/profile/*.md "$OUT/" 2>/dev/null || true
cat "$WORK/summary.md"
say ""
say "results: bench/results/$(basename "$OUT")"
