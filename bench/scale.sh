# shellcheck shell=bash disable=SC2086,SC2012,SC2034
# bench/run.sh's scale scenario (issue 16; docs/benchmarks.md, "Scale"):
# sourced by run.sh, which provides LG, GATEWAY, CEILING, WORK, CONF, the
# ports and start_mosquitto, start_ceiling, stop_all, stop_pid, say.
#
#   one process, SCALE_N sessions (19,000): idle CPU with keepalives, a
#     message for one session among them (p99 against the ceiling's), a
#     broadcast to all at 10 messages/s; the storm; idle WSS memory; the
#     same against mosquitto's WebSocket listener; poll() against epoll
#     when GATEWAY_POLL names an mqgated built --with-event-loop=poll
#   SCALE_W workers (6) of at most 19,000, SCALE_BIG sessions (100,000)
#     from SCALE_LGS load generators: idle RSS summed over the workers, a
#     message for one session, broadcasts at SCALE_RATES messages/s
#   workers: 2 against workers: 1, fanout to 1000 sessions
# SCALE_CASES picks among one storm wss big fanout (default: all).
#
# Every line goes to $WORK/scale.txt as "SCALE key=value ..."; the
# summary prints them as tables.

SCALE_N=${SCALE_N:-19000}
SCALE_W=${SCALE_W:-6}
SCALE_BIG=${SCALE_BIG:-100000}
SCALE_LGS=${SCALE_LGS:-6}
SCALE_RATES=${SCALE_RATES:-"10 2"}
SCALE_CASES=${SCALE_CASES:-"one storm wss big fanout"}
SCALE_OUT=$WORK/scale.txt

# scale_conf FILE WORKERS MAX_CONNECTIONS
scale_conf() {
    cat >"$1" <<EOF
{
  "listeners": [
    {"bind": "127.0.0.1", "port": $P_GW, "path": "/ws"},
    {"bind": "127.0.0.1", "port": $P_GWS, "path": "/ws",
     "tls": {"cert_file": "$CONF/cert.pem", "key_file": "$CONF/key.pem"}}
  ],
  "broker": {"uris": ["tcp://127.0.0.1:$P_MQTT"]},
  "auth": {"anonymous_role": "r"},
  "roles": {"r": {"subscribe": ["#"], "publish": ["#"]}},
  "limits": {"max_connections": $3, "max_connections_per_ip": 10000000,
             "publish_rate": 1000000, "publish_burst": 10000000,
             "ping_interval_s": 30},
  "workers": $2,
  "log": {"level": "warn"}
}
EOF
}

# The processes that serve: the workers, or the gateway itself.
scale_pids() {
    local kids
    kids=$(cat /proc/"$GW_PID"/task/*/children 2>/dev/null)
    echo "${kids:-$GW_PID}"
}

scale_cpu() { # ticks used by the pids given
    local t=0 p
    for p in "$@"; do
        t=$((t + $(awk '{print $14 + $15}' /proc/"$p"/stat 2>/dev/null || echo 0)))
    done
    echo "$t"
}

scale_rss() { # kB resident, summed
    local t=0 p
    for p in "$@"; do
        t=$((t + $(awk '/^VmRSS/ {print $2}' /proc/"$p"/status 2>/dev/null || echo 0)))
    done
    echo "$t"
}

scale_fds() {
    local t=0 p
    for p in "$@"; do
        t=$((t + $(ls /proc/"$p"/fd 2>/dev/null | wc -l)))
    done
    echo "$t"
}

# scale_start TARGET [CONFIG]: mqgate-like targets run CONFIG; one worker
# is pinned to CPU 0 as in run.sh, several are not.
scale_start() {
    local target=$1 cfg=${2:-}
    case $target in
    ceiling)
        start_ceiling
        T_PORT=$P_CWS T_PORTS=$P_CWSS T_BROKER=$P_CMQTT T_PROTO=mqg T_PATH=/ws
        ;;
    ceiling-route)
        # a message only to the sessions of its topic
        taskset -c 0 "$CEILING" --ws-port "$P_CWS" --mqtt-port "$P_CMQTT" \
            --route 1 >>"$WORK/ceiling.log" 2>&1 &
        CEIL_PID=$!
        "$LG" waitport --port "$P_CWS" --duration 10 || { say "ceiling did not start"; exit 1; }
        T_PORT=$P_CWS T_PORTS="" T_BROKER=$P_CMQTT T_PROTO=mqg T_PATH=/ws
        ;;
    mosquitto)
        start_mosquitto
        T_PORT=$P_MWS T_PORTS="" T_BROKER=$P_MQTT T_PROTO=mqttws T_PATH=/mqtt
        GW_PID=$MOSQ_PID
        ;;
    *)
        local bin=$GATEWAY pin="taskset -c 0"
        [ "$target" = mqgate-poll ] && bin=$GATEWAY_POLL
        grep -q '"workers": 1,' "$cfg" || pin=""
        start_mosquitto
        $pin "$bin" -c "$cfg" >>"$WORK/mqgated.log" 2>&1 &
        GW_PID=$!
        wait_healthz "$P_GW" || { say "mqgated did not become healthy"; exit 1; }
        T_PORT=$P_GW T_PORTS=$P_GWS T_BROKER=$P_MQTT T_PROTO=mqg T_PATH=/ws
        ;;
    esac
    case $target in ceiling*) GW_PID=$CEIL_PID ;; esac
    sleep 1
}

scale_stop() {
    if [ "$GW_PID" = "$MOSQ_PID" ]; then GW_PID=""; fi
    stop_all
}

scale_rec() { echo "SCALE $*" >>"$SCALE_OUT"; say "  $*"; }

field() { printf '%s\n' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2; exit}'; }

# Holds N idle sessions (SRC source addresses) in the background until
# the fds show them, for HOLD seconds. Sets HOLD_PID.
scale_hold() {
    local n=$1 src=$2 hold=$3 tls=${4:-} pids want i port=$T_PORT
    [ -n "$tls" ] && port=$T_PORTS
    # shellcheck disable=SC2086
    taskset -c 1 "$LG" idle -n "$n" --port "$port" ${tls:+--tls} \
        --path "$T_PATH" --proto "$T_PROTO" --src-ips "$src" \
        --settle "$hold" --concurrency 512 --max-time 120 \
        >"$WORK/hold.out" 2>>"$WORK/loadgen.log" &
    HOLD_PID=$!
    pids=$(scale_pids)
    want=$((n * 95 / 100))
    for i in $(seq 600); do
        [ "$(scale_fds $pids)" -ge "$want" ] && break
        sleep 0.2
    done
    sleep 3
}

# One process: idle, one session among them, broadcast, for TARGET.
scale_one() {
    local target=$1 pids c0 c1 t0 t1 out rss0 rss1 first=$1
    [ "$target" = ceiling ] && first=ceiling-route
    scale_conf "$WORK/scale1.json" 1 $((SCALE_N + 500))
    scale_start "$first" "$WORK/scale1.json"
    pids=$(scale_pids)
    rss0=$(scale_rss $pids)
    scale_hold "$SCALE_N" 16 45
    rss1=$(scale_rss $pids)
    c0=$(scale_cpu $pids) t0=$(date +%s.%N)
    sleep 10
    c1=$(scale_cpu $pids) t1=$(date +%s.%N)
    out=$(taskset -c 1 "$LG" latency -n 1 --port "$T_PORT" --path "$T_PATH" \
        --proto "$T_PROTO" --broker-port "$T_BROKER" --rate 100 --duration 10 \
        --warmup 1 --drain 2 --topic bench/one 2>>"$WORK/loadgen.log" || echo failed=1)
    scale_rec "case=one target=$target n=$SCALE_N idle_cpu=$(awk "BEGIN {printf \"%.3f\", ($c1 - $c0) / 100 / ($t1 - $t0)}") kib_per_session=$(awk "BEGIN {printf \"%.2f\", ($rss1 - $rss0) / $SCALE_N}") p50_us=$(field "$out" p50_us) p99_us=$(field "$out" p99_us) lost=$(field "$out" lost)"
    wait "$HOLD_PID" 2>/dev/null
    scale_stop
    scale_start "$target" "$WORK/scale1.json"
    pids=$(scale_pids)
    c0=$(scale_cpu $pids)
    out=$(taskset -c 1 "$LG" latency -n "$SCALE_N" --port "$T_PORT" --path "$T_PATH" \
        --proto "$T_PROTO" --broker-port "$T_BROKER" --rate 10 --duration 10 \
        --warmup 2 --drain 5 --concurrency 512 --src-ips 16 2>>"$WORK/loadgen.log" ||
        echo failed=1)
    c1=$(scale_cpu $pids)
    scale_rec "case=broadcast target=$target n=$SCALE_N rate=10 deliv_rate=$(field "$out" deliv_rate) lost=$(field "$out" lost) undelivered=$(field "$out" undelivered) p50_us=$(field "$out" p50_us) p99_us=$(field "$out" p99_us) keeps_up=$(field "$out" keeps_up) cpu_s=$(awk "BEGIN {print ($c1 - $c0) / 100}")"
    scale_stop
}

scale_storm() {
    local target=$1 out
    scale_conf "$WORK/scale1.json" 1 $((SCALE_N + 500))
    scale_start "$target" "$WORK/scale1.json"
    perf_start "scale-storm-$target"
    out=$(taskset -c 1 "$LG" storm -n "$SCALE_N" --port "$T_PORT" --path "$T_PATH" \
        --proto "$T_PROTO" --src-ips 16 --concurrency 1024 --pid t="$GW_PID" \
        2>>"$WORK/loadgen.log" || echo failed=1)
    perf_stop
    scale_rec "case=storm target=$target n=$SCALE_N rate=$(field "$out" rate) cpu=$(field "$out" cpu_t) p50_ms=$(field "$out" p50_ms) p99_ms=$(field "$out" p99_ms) failed=$(field "$out" failed)"
    scale_stop
}

scale_wss() {
    local target=$1 pids rss0 rss1
    scale_conf "$WORK/scale1.json" 1 $((SCALE_N + 500))
    scale_start "$target" "$WORK/scale1.json"
    pids=$(scale_pids)
    rss0=$(scale_rss $pids)
    scale_hold "$SCALE_N" 16 5 tls
    rss1=$(scale_rss $pids)
    scale_rec "case=idle-wss target=$target n=$(scale_fds $pids) kib_per_session=$(awk "BEGIN {printf \"%.2f\", ($rss1 - $rss0) / $SCALE_N}")"
    wait "$HOLD_PID" 2>/dev/null
    scale_stop
}

# SCALE_BIG sessions over SCALE_W workers.
scale_big() {
    local per=$((SCALE_BIG / SCALE_LGS)) pids rss0 rss1 c0 c1 t0 t1 k out out2 hp="" rate
    scale_conf "$WORK/scalew.json" "$SCALE_W" 19000
    scale_start mqgate "$WORK/scalew.json"
    pids=$(scale_pids)
    rss0=$(scale_rss $pids)
    for k in $(seq "$SCALE_LGS"); do
        "$LG" idle -n "$per" --port "$P_GW" --src-ips 1000 --settle 60 \
            --concurrency 256 --max-time 200 >"$WORK/big$k.out" 2>>"$WORK/loadgen.log" &
        hp="$hp $!"
    done
    for k in $(seq 1500); do
        [ "$(scale_fds $pids)" -ge $((SCALE_BIG * 98 / 100)) ] && break
        sleep 0.2
    done
    sleep 3
    rss1=$(scale_rss $pids)
    c0=$(scale_cpu $pids) t0=$(date +%s.%N)
    sleep 10
    c1=$(scale_cpu $pids) t1=$(date +%s.%N)
    out=$("$LG" latency -n 1 --port "$P_GW" --broker-port "$P_MQTT" --rate 100 \
        --duration 10 --warmup 1 --drain 2 --topic bench/one 2>>"$WORK/loadgen.log" ||
        echo failed=1)
    # again with the load generators that hold the 100,000 stopped (their
    # sessions stay open, unread): what of the tail is theirs, sharing
    # the CPUs with the workers, and what is the workers'
    # shellcheck disable=SC2086
    kill -STOP $hp
    out2=$("$LG" latency -n 1 --port "$P_GW" --broker-port "$P_MQTT" --rate 100 \
        --duration 10 --warmup 1 --drain 2 --topic bench/one 2>>"$WORK/loadgen.log" ||
        echo failed=1)
    # shellcheck disable=SC2086
    kill -CONT $hp
    scale_rec "case=big-idle workers=$SCALE_W sessions=$(($(scale_fds $pids) - 30 * SCALE_W)) rss0_kib=$rss0 rss1_kib=$rss1 kib_per_session=$(awk "BEGIN {printf \"%.2f\", ($rss1 - $rss0) / $SCALE_BIG}") kib_per_session_total=$(awk "BEGIN {printf \"%.2f\", $rss1 / $SCALE_BIG}") idle_cpu=$(awk "BEGIN {printf \"%.3f\", ($c1 - $c0) / 100 / ($t1 - $t0)}") p50_us=$(field "$out" p50_us) p99_us=$(field "$out" p99_us) lost=$(field "$out" lost) holders_stopped_p50_us=$(field "$out2" p50_us) holders_stopped_p99_us=$(field "$out2" p99_us) holders_stopped_lost=$(field "$out2" lost)"
    # shellcheck disable=SC2086
    wait $hp 2>/dev/null
    scale_stop
    for rate in $SCALE_RATES; do
        scale_start mqgate "$WORK/scalew.json"
        pids=$(scale_pids)
        c0=$(scale_cpu $pids) t0=$(date +%s.%N)
        hp=""
        for k in $(seq "$SCALE_LGS"); do
            "$LG" latency -n "$per" --port "$P_GW" --broker-port "$P_MQTT" \
                --rate "$rate" --duration 10 --warmup 2 --drain 5 --concurrency 256 \
                --src-ips 1000 --topic "bench/b$k" --start-delay 45000 --max-time 200 \
                >"$WORK/bc$k.out" 2>>"$WORK/loadgen.log" &
            hp="$hp $!"
        done
        # shellcheck disable=SC2086
        wait $hp 2>/dev/null
        c1=$(scale_cpu $pids) t1=$(date +%s.%N)
        scale_rec "case=big-broadcast workers=$SCALE_W sessions=$SCALE_BIG rate=$rate $(cat "$WORK"/bc*.out | awk '
            { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
              d += f["deliv_rate"]; l += f["lost"] + f["undelivered"]; r += f["ready"]
              if (f["p99_us"] > p99) p99 = f["p99_us"]; if (f["keeps_up"] != "yes") ku = "no" }
            END { printf "deliv_rate=%d lost=%d ready=%d worst_p99_us=%d keeps_up=%s", d, l, r, p99, ku ? ku : "yes" }') cpu_s=$(awk "BEGIN {print ($c1 - $c0) / 100}") wall_s=$(awk "BEGIN {printf \"%.1f\", $t1 - $t0}")"
        rm -f "$WORK"/bc*.out
        scale_stop
    done
}

# fanout to 1000 sessions, workers: 2 against workers: 1
scale_workers_fanout() {
    local w pids c0 c1 out
    for w in 1 2; do
        scale_conf "$WORK/scalef.json" "$w" 19000
        start_mosquitto
        "$GATEWAY" -c "$WORK/scalef.json" >>"$WORK/mqgated.log" 2>&1 &
        GW_PID=$!
        wait_healthz "$P_GW" || { say "mqgated did not become healthy"; exit 1; }
        sleep 1
        pids=$(scale_pids)
        c0=$(scale_cpu $pids)
        out=$("$LG" fanout -n 1000 --port "$P_GW" --broker-port "$P_MQTT" --window 100 \
            --duration 4 --warmup 1 --drain 3 --src-ips 16 2>>"$WORK/loadgen.log" || echo failed=1)
        c1=$(scale_cpu $pids)
        scale_rec "case=workers-fanout workers=$w deliv_rate=$(field "$out" deliv_rate) lost=$(field "$out" lost) lg_cpu=$(field "$out" lg_cpu) gw_cpu_s=$(awk "BEGIN {print ($c1 - $c0) / 100}") p99_us=$(field "$out" p99_us)"
        stop_all
    done
}

# SCALE_POLL=1: an mqgated built --with-event-loop=poll beside the
# benchmarked one, for the one-process case.
scale_build_poll() {
    local b=$WORK/build-poll
    mkdir -p "$b"
    (cd "$SRC" && git ls-files -co --exclude-standard -z) |
        (cd "$SRC" && tar --null -T - -cf -) | tar -xf - -C "$b"
    (cd "$b" && autoreconf -fi >/dev/null 2>&1 &&
        ./configure -q CFLAGS='-O2 -g' --with-event-loop=poll >/dev/null 2>&1 &&
        make -j"$(nproc)" mqgated >/dev/null 2>&1) || { say "poll build failed"; return 1; }
    GATEWAY_POLL=$b/mqgated
}

sc_scale() {
    : >"$SCALE_OUT"
    local t
    [ "${SCALE_POLL:-0}" = 1 ] && [ -z "${GATEWAY_POLL:-}" ] && scale_build_poll
    case " $SCALE_CASES " in *" one "*)
        for t in mqgate ceiling ${GATEWAY_POLL:+mqgate-poll} mosquitto; do
            say "scale: one process, $SCALE_N sessions, $t"
            scale_one "$t"
        done ;;
    esac
    case " $SCALE_CASES " in *" storm "*)
        for t in mqgate ceiling mqgate ceiling; do
            scale_storm "$t"
        done ;;
    esac
    case " $SCALE_CASES " in *" wss "*)
        for t in mqgate ceiling; do
            scale_wss "$t"
        done ;;
    esac
    case " $SCALE_CASES " in *" big "*)
        say "scale: $SCALE_BIG sessions over $SCALE_W workers"
        scale_big ;;
    esac
    case " $SCALE_CASES " in *" fanout "*) scale_workers_fanout ;; esac
}

scale_summary() {
    [ -s "$SCALE_OUT" ] || return 0
    echo
    echo "### scale (issue 16): raw lines"
    echo
    echo '```'
    sed 's/^SCALE //' "$SCALE_OUT"
    echo '```'
}
