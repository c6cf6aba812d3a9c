/* loadgen: mqgate's load generator (docs/benchmarks.md).
 *
 * One thread, one epoll set, thousands of connections; the client side
 * (connections, TLS, the WebSocket client, MQTT framing, the loop, the
 * measurements) is bench/lg_client.c. It speaks mqgate's JSON protocol
 * ("mqgate.v1") or MQTT 3.1.1 over WebSocket ("mqtt" subprotocol, as
 * mosquitto's websockets listener wants); its publisher is a raw MQTT 3.1.1
 * client over TCP whose payloads carry a sequence number and a send
 * timestamp: {"seq":NNNNNNNNNN,"ts":TTTTTTTTTTTTTTTT}.
 *
 * Modes (the scenarios of bench/run.sh); this file has the options, main
 * and the first six:
 *   fanout   N sessions on one topic; the publisher keeps the slowest
 *            session within --window messages (sends --batch at a time)
 *   latency  same, but the publisher sends at a fixed --rate msgs/s
 *   topics   --topics topics, each session holds 3 filters with wildcards
 *   publish  N sessions publishing QoS 1, --inflight outstanding each
 *   storm    N sessions connect as fast as possible (--concurrency in
 *            flight): sessions/s to hello+status+sub ok
 *   idle     N subscribed idle sessions: RSS of --pid before and after
 *   replay   history replays to many sessions at once while live messages
 *            flow (bench/lg_stream.c)
 *   rate     max_rate subscriptions over busy topics (bench/lg_stream.c)
 *   freeport prints a free TCP port on 127.0.0.1
 *   waitport waits until 127.0.0.1:--port accepts a connection
 *
 * The result is one line on stdout: "RESULT key=value ...". */
#include "lg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <time.h>
#include <unistd.h>

#define RING_BITS 20
#define RING_MASK ((1u << RING_BITS) - 1)
#define MAX_FILTERS 3
#define PUB_SLOTS 1024

/* The traffic of these modes: what each message must reach, what arrived. */
static struct {
    /* topics and filters */
    char **topics;
    uint16_t *topic_len;
    char *(*filters)[MAX_FILTERS];
    int n_filters;
    uint8_t **match; /* per session: bitmap over topics */
    uint32_t *fan;   /* per topic: live sessions matching */

    /* traffic */
    bool traffic, stop_pub;
    uint64_t t_pub0, t_warm, t_end;
    uint64_t sent, done;
    uint32_t *cnt, *expct;
    uint64_t expected_total;
    uint64_t received, win_deliv, lost, dups, bogus, closed_lost, win_sent;
    struct hist h;
    uint64_t drain_ns; /* how long the drain took */
    bool drained;

    /* publish mode */
    uint64_t acked, win_acked, pub_errors;
} T;

static void session_filters(struct conn *c, const char **f, int *nf)
{
    *nf = T.n_filters;
    for (int i = 0; i < T.n_filters; i++)
        f[i] = T.filters[c->idx][i];
}

/* PR_SSE: the stream's path, its topics the session's filters. */
static void on_sse_path(struct conn *c, char *buf, size_t len)
{
    const char *f[MAX_FILTERS];
    char enc[256];
    int nf;
    size_t o;

    session_filters(c, f, &nf);
    o = (size_t)snprintf(buf, len, "/api/events?qos=0");
    for (int i = 0; i < nf && o < len; i++) {
        url_encode(f[i], enc, sizeof(enc));
        o += (size_t)snprintf(buf + o, len - o, "&topic=%s", enc);
    }
    c->want_oks = (uint8_t)nf;
}

static void on_ws_open(struct conn *c)
{
    const char *f[MAX_FILTERS];
    int nf;
    char buf[512];

    session_filters(c, f, &nf);
    if (G.proto == PR_MQG) {
        for (int i = 0; i < nf; i++) {
            int n = snprintf(
                buf, sizeof(buf),
                "{\"op\":\"sub\",\"id\":%d,\"topic\":\"%s\",\"qos\":0}", i + 1,
                f[i]);
            ws_put(c, 1, buf, (size_t)n);
        }
        c->want_oks = (uint8_t)nf;
    } else {
        char id[48];
        uint8_t pkt[512], *p = pkt;
        size_t rem = 2;

        snprintf(id, sizeof(id), "lg%d-%u", (int)getpid(), c->idx);
        mqtt_put_connect(c, id);
        for (int i = 0; i < nf; i++)
            rem += 2 + strlen(f[i]) + 1;
        *p++ = 0x82;
        do {
            uint8_t b = rem & 0x7f;
            rem >>= 7;
            *p++ = (uint8_t)(b | (rem ? 0x80 : 0));
        } while (rem);
        *p++ = 0;
        *p++ = 1;
        for (int i = 0; i < nf; i++) {
            size_t l = strlen(f[i]);

            *p++ = (uint8_t)(l >> 8);
            *p++ = (uint8_t)l;
            memcpy(p, f[i], l);
            p += l;
            *p++ = 0; /* QoS 0 */
        }
        ws_put(c, 2, pkt, (size_t)(p - pkt));
        c->want_oks = 1; /* one SUBACK */
    }
}

/* ---- traffic accounting ------------------------------------------------- */

static inline bool sess_matches(const struct conn *c, uint64_t seq)
{
    uint32_t t = (uint32_t)((seq - 1) % (uint64_t)G.n_topics);

    return T.match[c->idx][t >> 3] & (1u << (t & 7));
}

static inline void credit(uint64_t seq)
{
    T.cnt[seq & RING_MASK]++;
}

static void advance(void)
{
    while (T.done < T.sent &&
           T.cnt[(T.done + 1) & RING_MASK] >= T.expct[(T.done + 1) & RING_MASK])
        T.done++;
}

static void on_session_dead(struct conn *c)
{
    if (!T.traffic || G.mode == M_PUBLISH)
        return;
    for (uint64_t g = c->last + 1; g <= T.sent; g++)
        if (sess_matches(c, g)) {
            T.closed_lost++;
            credit(g);
        }
    c->last = T.sent;
    for (int t = 0; t < G.n_topics; t++)
        if (T.match[c->idx][t >> 3] & (1u << (t & 7)))
            T.fan[t]--;
    /* messages sent from now on do not expect it: c->last keeps up */
    c->ready = false;
}

static inline void deliver(struct conn *c, const uint8_t *pl, uint64_t now)
{
    uint64_t seq = get_dec(pl + 7, 10) - SEQ_BASE;
    uint64_t ts = get_dec(pl + 23, 16) - TS_BASE;

    if (seq <= c->last) {
        T.dups++;
        return;
    }
    if (seq > T.sent) {
        T.bogus++;
        return;
    }
    for (uint64_t g = c->last + 1; g < seq; g++)
        if (sess_matches(c, g)) {
            T.lost++;
            credit(g);
        }
    credit(seq);
    c->last = seq;
    c->recv++;
    T.received++;
    if (now >= T.t_warm && now < T.t_end) {
        T.win_deliv++;
        hist_add(&T.h, now > ts ? now - ts : 0);
    }
}

/* ---- receiving ------------------------------------------------------------ */

static void on_mqtt_publish(struct conn *c, const uint8_t *pl, size_t len,
                            uint64_t now)
{
    if (len >= PAYLOAD_LEN && pl[0] == '{' && pl[1] == '"' && T.traffic &&
        G.mode != M_PUBLISH)
        deliver(c, pl, now);
    else if (T.traffic)
        T.bogus++;
}

static void on_pub_ack(struct conn *c, uint64_t t_sent, uint64_t now, bool ok);

static void on_mqtt_puback(struct conn *c, uint32_t pid, uint64_t now)
{
    if (c->slot_ts) {
        uint64_t *slot = &c->slot_ts[(pid - 1) % PUB_SLOTS];

        on_pub_ack(c, *slot, now, true);
        *slot = 0;
    }
}

static size_t payload_off_cache;
static uint32_t payload_len_cache;

static void on_json_msg(struct conn *c, const uint8_t *p, size_t len,
                        uint64_t now)
{
    const uint8_t *pl = NULL;

    if (len == payload_len_cache &&
        memcmp(p + payload_off_cache, "{\"seq\":", 7) == 0) {
        pl = p + payload_off_cache;
    } else {
        pl = memmem(p, len, "{\"seq\":", 7);
        if (!pl || (size_t)(pl - p) + PAYLOAD_LEN > len) {
            T.bogus++;
            return;
        }
        payload_off_cache = (size_t)(pl - p);
        payload_len_cache = (uint32_t)len;
    }
    if (T.traffic && G.mode != M_PUBLISH)
        deliver(c, pl, now);
}

static void on_pub_ack(struct conn *c, uint64_t t_sent, uint64_t now, bool ok);
static void pub_more(struct conn *c);

static void on_json(struct conn *c, const uint8_t *p, size_t len, uint64_t now)
{
    if (len > 11 && memcmp(p, "{\"op\":\"msg\"", 11) == 0) {
        on_json_msg(c, p, len, now);
        return;
    }
    if (G.mode == M_PUBLISH && c->ready) {
        bool ok = len > 10 && memcmp(p, "{\"op\":\"ok\"", 10) == 0;

        if (ok || (len > 13 && memcmp(p, "{\"op\":\"error\"", 13) == 0)) {
            if (!ok && G.first_err_print++ < 5)
                note("error frame: %.*s", (int)(len > 300 ? 300 : len), p);
            on_pub_ack(c, (json_id(p, len) >> 10) * 1000, now, ok);
            return;
        }
    }
    lg_json_control(c, p, len);
}


static void publish(uint64_t count)
{
    struct conn *c = G.pub;
    uint64_t ts = now_ns();

    for (uint64_t k = 0; k < count; k++) {
        uint64_t seq = ++T.sent;
        uint32_t t = (uint32_t)((seq - 1) % (uint64_t)G.n_topics);
        uint8_t pl[PAYLOAD_LEN];

        put_payload(pl, seq, ts);
        mqtt_put_publish(c, T.topics[t], T.topic_len[t], pl, PAYLOAD_LEN);
        T.cnt[seq & RING_MASK] = 0;
        T.expct[seq & RING_MASK] = T.fan[t];
        T.expected_total += T.fan[t];
        if (ts >= T.t_warm && ts < T.t_end)
            T.win_sent++;
    }
    conn_flush(c);
}

static void pub_tick(uint64_t now)
{
    if (!G.pub || G.pub->state == CS_DEAD || !G.pub_ready || T.stop_pub)
        return;
    if (G.max_msgs && T.sent >= G.max_msgs)
        return;
    /* the broker is not reading: wait */
    if (G.pub->out_len - G.pub->out_off > (4u << 20))
        return;
    if (G.mode == M_LATENCY) {
        uint64_t due = (uint64_t)((double)(now - T.t_pub0) * G.rate / 1e9) + 1;

        if (due > T.sent) {
            uint64_t n = due - T.sent;

            if (T.sent + n - T.done >= RING_MASK)
                return; /* hopelessly behind: stall rather than wrap */
            publish(n);
        }
        return;
    }
    advance();
    while (T.sent - T.done + (uint64_t)G.batch <= (uint64_t)G.window) {
        uint64_t n = (uint64_t)G.batch;

        if (G.max_msgs && T.sent + n > G.max_msgs)
            n = G.max_msgs - T.sent;
        if (!n)
            break;
        publish(n);
        if (G.pub->state == CS_DEAD)
            return;
        advance();
    }
}

/* ---- publish mode: sessions publish QoS 1 ------------------------------- */

static void pub_one(struct conn *c)
{
    uint64_t t = now_ns();
    uint8_t pl[PAYLOAD_LEN];

    put_payload(pl, ++c->pubctr, t);
    if (G.proto == PR_MQG) {
        char buf[256];
        uint64_t id = ((t / 1000) << 10) | (c->pubctr & 1023);
        int n =
            snprintf(buf, sizeof(buf),
                     "{\"op\":\"pub\",\"id\":%llu,\"topic\":\"bench/pub/%u\","
                     "\"payload\":%.*s,\"qos\":1}",
                     (unsigned long long)id, c->idx, PAYLOAD_LEN, pl);

        ws_put(c, 1, buf, (size_t)n);
    } else {
        char topic[32];
        int tl = snprintf(topic, sizeof(topic), "bench/pub/%u", c->idx);
        size_t rem = 2 + (size_t)tl + 2 + PAYLOAD_LEN;
        uint8_t pkt[128], *p = pkt;
        uint32_t pid = (c->pubctr - 1) % PUB_SLOTS + 1;

        *p++ = 0x32;
        *p++ = (uint8_t)rem;
        *p++ = 0;
        *p++ = (uint8_t)tl;
        memcpy(p, topic, (size_t)tl);
        p += tl;
        *p++ = (uint8_t)(pid >> 8);
        *p++ = (uint8_t)pid;
        memcpy(p, pl, PAYLOAD_LEN);
        p += PAYLOAD_LEN;
        c->slot_ts[pid - 1] = t;
        ws_put(c, 2, pkt, (size_t)(p - pkt));
    }
    c->inflight++;
}

static void pub_more(struct conn *c)
{
    if (!T.traffic || T.stop_pub || c->state != CS_OPEN)
        return;
    while (c->inflight < (uint32_t)G.inflight)
        pub_one(c);
}

static void on_pub_ack(struct conn *c, uint64_t t_sent, uint64_t now, bool ok)
{
    if (c->inflight)
        c->inflight--;
    if (!ok) {
        T.pub_errors++;
    } else {
        T.acked++;
        if (now >= T.t_warm && now < T.t_end && t_sent) {
            T.win_acked++;
            hist_add(&T.h, now > t_sent ? now - t_sent : 0);
        }
    }
    pub_more(c);
}

static const struct lg_app app = {
    .ws_open = on_ws_open,
    .sse_path = on_sse_path,
    .json = on_json,
    .publish = on_mqtt_publish,
    .puback = on_mqtt_puback,
    .dead = on_session_dead,
};

/* ---- topics and filters ------------------------------------------------- */

/* MQTT filter match, for the loadgen's own bookkeeping. */
static bool topic_match(const char *f, const char *t)
{
    if ((f[0] == '+' || f[0] == '#') && t[0] == '$')
        return false;
    for (;;) {
        if (f[0] == '#')
            return true;
        const char *fe = strchr(f, '/'), *te = strchr(t, '/');
        size_t fl = fe ? (size_t)(fe - f) : strlen(f);
        size_t tl = te ? (size_t)(te - t) : strlen(t);

        if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl)))
            return false;
        if (!fe && !te)
            return true;
        if (!te)
            return fe && strcmp(fe + 1, "#") == 0;
        if (!fe)
            return false;
        f = fe + 1;
        t = te + 1;
    }
}

static void setup_topics(void)
{
    int n = G.n;

    T.filters = calloc((size_t)n, sizeof(*T.filters));
    if (G.mode == M_TOPICS) {
        int groups = (G.n_topics + 9) / 10;

        T.topics = calloc((size_t)G.n_topics, sizeof(char *));
        for (int t = 0; t < G.n_topics; t++)
            if (asprintf(&T.topics[t], "bench/g%d/d%d", t / 10, t % 10) < 0)
                die("oom");
        T.n_filters = 3;
        for (int i = 0; i < n; i++) {
            uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull;
            int b = (int)((h >> 20) % (uint64_t)groups);
            int cdev = (int)((h >> 40) % 10);
            int e = (int)((h >> 8) % (uint64_t)groups);
            int f = (int)((h >> 50) % 10);

            if (asprintf(&T.filters[i][0], "bench/g%d/+", i % groups) < 0 ||
                asprintf(&T.filters[i][1], "bench/g%d/d%d", b, cdev) < 0 ||
                asprintf(&T.filters[i][2], "+/g%d/d%d", e, f) < 0)
                die("oom");
        }
    } else {
        const char *topic = G.mode == M_PUBLISH ? "bench/none"
                            : G.mode == M_IDLE  ? NULL
                            : G.topic           ? G.topic
                            : G.mode == M_STORM ? "bench/storm"
                                                : "bench/fanout";

        G.n_topics = 1;
        T.topics = calloc(1, sizeof(char *));
        T.topics[0] = strdup(topic ? topic : "bench/idle/0");
        T.n_filters = 1;
        for (int i = 0; i < n; i++) {
            if (G.mode == M_IDLE) {
                if (asprintf(&T.filters[i][0], "bench/idle/%d", i % 100) < 0)
                    die("oom");
            } else {
                T.filters[i][0] = T.topics[0];
            }
        }
    }
    T.topic_len = calloc((size_t)G.n_topics, sizeof(uint16_t));
    T.fan = calloc((size_t)G.n_topics, sizeof(uint32_t));
    T.match = calloc((size_t)n, sizeof(uint8_t *));
    for (int t = 0; t < G.n_topics; t++)
        T.topic_len[t] = (uint16_t)strlen(T.topics[t]);
    for (int i = 0; i < n; i++) {
        T.match[i] = calloc((size_t)(G.n_topics + 7) / 8, 1);
        for (int t = 0; t < G.n_topics; t++)
            for (int k = 0; k < T.n_filters; k++)
                if (topic_match(T.filters[i][k], T.topics[t])) {
                    T.match[i][t >> 3] |= (uint8_t)(1u << (t & 7));
                    break;
                }
    }
}

static void traffic_phase(void)
{
    struct lg_window w = {0};
    uint64_t t_stop = 0;

    if (G.ready_file) {
        FILE *f = fopen(G.ready_file, "w");

        if (f)
            fclose(f);
    }
    if (G.start_delay_ms)
        sleep_loop(G.start_delay_ms / 1000.0);
    for (int t = 0; t < G.n_topics; t++)
        T.fan[t] = 0;
    for (int i = 0; i < G.n; i++)
        if (G.s[i]->ready)
            for (int t = 0; t < G.n_topics; t++)
                if (T.match[i][t >> 3] & (1u << (t & 7)))
                    T.fan[t]++;
    T.traffic = true;
    T.t_pub0 = now_ns();
    T.t_warm = T.t_pub0 + (uint64_t)(G.warmup * 1e9);
    T.t_end = T.t_warm + (uint64_t)(G.duration * 1e9);
    if (G.max_msgs)
        T.t_end = UINT64_MAX / 2;
    if (G.mode == M_PUBLISH)
        for (int i = 0; i < G.n; i++)
            if (G.s[i]->ready) {
                G.s[i]->slot_ts = calloc(PUB_SLOTS, sizeof(uint64_t));
                pub_more(G.s[i]);
                conn_flush(G.s[i]);
            }
    for (;;) {
        uint64_t now = now_ns();

        w.t_warm = T.t_warm;
        w.t_end = T.t_end;
        window_tick(&w, now);
        if (!T.stop_pub &&
            (now >= T.t_end || (G.max_msgs && T.sent >= G.max_msgs))) {
            T.stop_pub = true;
            t_stop = now;
        }
        if (T.stop_pub) {
            advance();
            bool all = G.mode == M_PUBLISH ? false : T.done >= T.sent;

            if (G.mode == M_PUBLISH) {
                all = true;
                for (int i = 0; i < G.n && all; i++)
                    if (G.s[i]->state == CS_OPEN && G.s[i]->inflight)
                        all = false;
            }
            if (all) {
                T.drained = true;
                T.drain_ns = now - t_stop;
                break;
            }
            if (now - t_stop > (uint64_t)(G.drain * 1e9)) {
                T.drain_ns = now - t_stop;
                break;
            }
        }
        pub_tick(now);
        if (G.pub && G.pub->state == CS_DEAD && !T.stop_pub)
            die("the publisher's connection was lost");
        loop_once(1);
        pub_tick(now_ns());
    }
    if (!w.done) {
        meter_read(&w.m1);
        if (!w.in)
            w.m0 = w.m1;
    }
    meter_res(&w.m0, &w.m1, G.max_msgs ? 1 : G.duration);
}

static void report_traffic(void)
{
    if (G.mode == M_PUBLISH) {
        uint64_t left = 0;

        for (int i = 0; i < G.n; i++)
            if (G.s[i]->state == CS_OPEN)
                left += G.s[i]->inflight;
        if (left)
            note("%llu publishes still unacknowledged at the end",
                 (unsigned long long)left);
        res(" unacked=%llu", (unsigned long long)left);
        res(" acked=%llu ack_rate=%.0f errors=%llu p50_us=%.0f p99_us=%.0f "
            "max_us=%.0f drained=%d",
            (unsigned long long)T.acked, (double)T.win_acked / G.duration,
            (unsigned long long)T.pub_errors, hist_pct(&T.h, 50) / 1e3,
            hist_pct(&T.h, 99) / 1e3, T.h.max / 1e3, T.drained);
        return;
    }
    /* what never arrived, per live session */
    uint64_t missing = 0, expected = T.expected_total;
    for (int i = 0; i < G.n; i++) {
        struct conn *c = G.s[i];

        if (c->state == CS_DEAD || !c->ready)
            continue;
        for (uint64_t g = c->last + 1; g <= T.sent; g++)
            if (sess_matches(c, g))
                missing++;
    }
    double secs = G.max_msgs ? 1 : G.duration;
    /* lost: a later message came and this one never will, or the session
     * was closed; undelivered: not there when the drain time was up */
    uint64_t lost = T.lost + T.closed_lost;

    res(" sent=%llu msg_rate=%.0f deliv_rate=%.0f received=%llu expected=%llu "
        "undelivered=%llu "
        "lost=%llu loss_pct=%.4f dups=%llu closed=%llu closed_4408=%llu "
        "bogus=%llu p50_us=%.0f p99_us=%.0f max_us=%.0f drained=%d "
        "drain_ms=%.0f",
        (unsigned long long)T.sent, (double)T.win_sent / secs,
        (double)T.win_deliv / secs, (unsigned long long)T.received,
        (unsigned long long)expected, (unsigned long long)missing,
        (unsigned long long)lost,
        expected ? 100.0 * (double)lost / (double)expected : 0.0,
        (unsigned long long)T.dups, (unsigned long long)G.closes_by_server,
        (unsigned long long)G.close_4408, (unsigned long long)T.bogus,
        hist_pct(&T.h, 50) / 1e3, hist_pct(&T.h, 99) / 1e3, T.h.max / 1e3,
        T.drained, T.drain_ns / 1e6);
    if (G.mode == M_LATENCY) {
        double offered = G.rate * (double)G.n;
        bool keeps = lost == 0 && missing == 0 && T.drained &&
                     T.drain_ns < 1000000000ull &&
                     (double)T.win_deliv / secs >= 0.99 * offered;

        res(" offered=%.0f keeps_up=%s", offered, keeps ? "yes" : "no");
    }
}


static void usage(void)
{
    fputs("usage: loadgen MODE [options]\n"
          "modes: fanout latency topics publish storm idle replay rate freeport\n"
          "       waitport\n"
          "  --port P            WebSocket port of the target (127.0.0.1)\n"
          "  --path /ws          WebSocket path\n"
          "  --tls               wss (TLS; the certificate is not verified)\n"
          "  --proto mqg|mqttws|sse  mqgate JSON or MQTT 3.1.1 over WebSocket,\n"
          "                   or mqgate's Server-Sent Events (GET /api/events)\n"
          "  --broker-port Q     MQTT port the publisher sends to\n"
          "  -n N                sessions\n"
          "  --concurrency C     sessions connecting at once [256]\n"
          "  --duration S        measured seconds [5]\n"
          "  --warmup S          seconds before measuring [1]\n"
          "  --drain S           seconds allowed to drain at the end [5]\n"
          "  --window W          fanout: slowest session within W msgs [100]\n"
          "  --batch B           fanout: messages per publish batch [W/4]\n"
          "  --rate R            latency: msgs/s [200]\n"
          "  --topics T          topics: number of topics [1000]\n"
          "  --inflight K        publish: outstanding QoS 1 per session [8]\n"
          "  --msgs M            stop after M messages (profiling)\n"
          "  --pid NAME=PID      a process to watch (CPU; RSS in idle mode)\n"
          "  --settle S          idle: seconds to settle before RSS [3]\n"
          "  --src-ips K         spread sessions over 127.0.0.2.. [16]\n"
          "  --label STR         copied into the RESULT line\n"
          "  --ready-file F      touched when all sessions are ready\n"
          "  --start-delay MS    wait after ready before publishing\n"
          "  --max-time S        give up on connecting after S s [120]\n"
          "  --topic T           fanout, latency, storm: the topic [bench/...]\n",
          stderr);
    stream_usage();
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", 1, 0, 'p'},
        {"path", 1, 0, 'P'},
        {"tls", 0, 0, 'T'},
        {"proto", 1, 0, 'r'},
        {"broker-port", 1, 0, 'b'},
        {"concurrency", 1, 0, 'c'},
        {"duration", 1, 0, 'd'},
        {"warmup", 1, 0, 'w'},
        {"drain", 1, 0, 'D'},
        {"window", 1, 0, 'W'},
        {"batch", 1, 0, 'B'},
        {"rate", 1, 0, 'R'},
        {"topics", 1, 0, 't'},
        {"inflight", 1, 0, 'k'},
        {"msgs", 1, 0, 'm'},
        {"pid", 1, 0, 'i'},
        {"settle", 1, 0, 's'},
        {"src-ips", 1, 0, 'S'},
        {"label", 1, 0, 'l'},
        {"ready-file", 1, 0, 'f'},
        {"start-delay", 1, 0, 'y'},
        {"max-time", 1, 0, 'x'},
        {"connect-timeout", 1, 0, 'C'},
        {"topic", 1, 0, 'o'},
        {"replay-n", 1, 0, 'N'},
        {"history", 1, 0, 'H'},
        {"fill", 1, 0, 'F'},
        {"max-rate", 1, 0, 'M'},
        {0, 0, 0, 0},
    };
    const char *m;
    int o;

    if (argc < 2)
        usage();
    m = argv[1];
    G.host = "127.0.0.1";
    G.path = "/ws";
    G.label = "-";
    G.n = 100;
    G.conc = 256;
    G.duration = 5;
    G.warmup = 1;
    G.drain = 5;
    G.window = 100;
    G.rate = 200;
    G.n_topics = 1000;
    G.inflight = 8;
    G.settle = 3;
    G.src_ips = 16;
    G.max_time = 120;
    G.connect_timeout = 30;
    G.port = -1;
    G.broker_port = -1;
    optind = 2;
    while ((o = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        switch (o) {
        case 'n':
            G.n = atoi(optarg);
            break;
        case 'p':
            G.port = atoi(optarg);
            break;
        case 'P':
            G.path = optarg;
            break;
        case 'T':
            G.tls = true;
            break;
        case 'r':
            if (strcmp(optarg, "mqg") == 0)
                G.proto = PR_MQG;
            else if (strcmp(optarg, "mqttws") == 0)
                G.proto = PR_MQTTWS;
            else if (strcmp(optarg, "sse") == 0)
                G.proto = PR_SSE;
            else
                usage();
            break;
        case 'b':
            G.broker_port = atoi(optarg);
            break;
        case 'c':
            G.conc = atoi(optarg);
            break;
        case 'd':
            G.duration = atof(optarg);
            break;
        case 'w':
            G.warmup = atof(optarg);
            break;
        case 'D':
            G.drain = atof(optarg);
            break;
        case 'W':
            G.window = atoi(optarg);
            break;
        case 'B':
            G.batch = atoi(optarg);
            break;
        case 'R':
            G.rate = atof(optarg);
            break;
        case 't':
            G.n_topics = atoi(optarg);
            break;
        case 'k':
            G.inflight = atoi(optarg);
            break;
        case 'm':
            G.max_msgs = strtoull(optarg, NULL, 10);
            break;
        case 'i': {
            char *eq = strchr(optarg, '=');

            if (!eq || G.n_pids == MAX_PIDS)
                usage();
            *eq = '\0';
            G.pid_names[G.n_pids] = optarg;
            G.pids[G.n_pids++] = atoi(eq + 1);
            break;
        }
        case 's':
            G.settle = atof(optarg);
            break;
        case 'S':
            G.src_ips = atoi(optarg);
            break;
        case 'l':
            G.label = optarg;
            break;
        case 'f':
            G.ready_file = optarg;
            break;
        case 'y':
            G.start_delay_ms = atoi(optarg);
            break;
        case 'x':
            G.max_time = atof(optarg);
            break;
        case 'C':
            G.connect_timeout = atof(optarg);
            break;
        case 'o':
            G.topic = optarg;
            break;
        case 'N':
            G.replay_n = atoi(optarg);
            break;
        case 'H':
            G.history = atoi(optarg);
            break;
        case 'F':
            G.fill = atoi(optarg);
            break;
        case 'M':
            G.max_rate = atof(optarg);
            break;
        default:
            usage();
        }
    }
    {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        G.t_base = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        G.rng = G.t_base ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull;
        if (!G.rng)
            G.rng = 1;
    }
    if (strcmp(m, "freeport") == 0) {
        printf("%d\n", free_port());
        return 0;
    }
    if (strcmp(m, "waitport") == 0)
        return wait_port(G.port, G.duration);
    if (strcmp(m, "fanout") == 0)
        G.mode = M_FANOUT;
    else if (strcmp(m, "latency") == 0)
        G.mode = M_LATENCY;
    else if (strcmp(m, "topics") == 0)
        G.mode = M_TOPICS;
    else if (strcmp(m, "publish") == 0)
        G.mode = M_PUBLISH;
    else if (strcmp(m, "storm") == 0)
        G.mode = M_STORM;
    else if (strcmp(m, "idle") == 0)
        G.mode = M_IDLE;
    else if (strcmp(m, "replay") == 0)
        G.mode = M_REPLAY;
    else if (strcmp(m, "rate") == 0)
        G.mode = M_RATE;
    else
        usage();
    if (G.port <= 0 || G.n <= 0)
        usage();
    if ((G.mode == M_FANOUT || G.mode == M_LATENCY || G.mode == M_TOPICS) &&
        G.broker_port <= 0)
        usage();
    if (G.window < 1)
        G.window = 1;
    if (G.batch <= 0)
        G.batch = G.window / 4 > 0 ? G.window / 4 : 1;
    if (G.batch > G.window)
        G.batch = G.window;
    if (G.conc <= 0)
        G.conc = 1;
    if (G.mode == M_REPLAY || G.mode == M_RATE)
        return stream_run();
    G.app = &app;

    lg_init();
    T.cnt = calloc(RING_MASK + 1, sizeof(uint32_t));
    T.expct = calloc(RING_MASK + 1, sizeof(uint32_t));
    if (!T.cnt || !T.expct)
        die("oom");
    setup_topics();

    long rss0[MAX_PIDS];

    for (int i = 0; i < G.n_pids; i++)
        rss0[i] = rss_kb(G.pids[i]);

    res("RESULT mode=%s label=%s n=%d proto=%s tls=%d load1=%.2f", m, G.label,
        G.n,
        G.proto == PR_MQG ? "mqg" : G.proto == PR_SSE ? "sse" : "mqttws",
        G.tls, loadavg1());
    if (G.mode == M_FANOUT || G.mode == M_TOPICS)
        res(" window=%d batch=%d", G.window, G.batch);
    if (G.mode == M_LATENCY)
        res(" rate=%.0f", G.rate);
    if (G.mode == M_TOPICS)
        res(" topics=%d", G.n_topics);
    if (G.mode == M_PUBLISH)
        res(" inflight=%d", G.inflight);

    if (G.mode == M_FANOUT || G.mode == M_LATENCY || G.mode == M_TOPICS) {
        G.pub = conn_open(CK_PUBLISHER, &G.pub_dst, 0);
        wait_publisher();
    }

    struct lg_meter m0, m1;

    meter_read(&m0);
    connect_phase(G.n);
    meter_read(&m1);
    uint64_t span = G.t_last_ready > G.t_first ? G.t_last_ready - G.t_first
                                               : now_ns() - G.t_first;

    report_failed();
    if (G.mode == M_STORM) {
        res(" secs=%.3f rate=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f",
            span / 1e9, G.n_ready / (span / 1e9), hist_pct(&G.hs, 50) / 1e6,
            hist_pct(&G.hs, 99) / 1e6, G.hs.max / 1e6);
        meter_res(&m0, &m1, span / 1e9);
        goto out;
    }
    if (G.n_ready == 0)
        die("no session became ready (%s)", G.fail_reason);
    if (G.mode == M_IDLE) {
        res(" connect_secs=%.2f", span / 1e9);
        sleep_loop(G.settle);
        for (int i = 0; i < G.n_pids; i++) {
            long r1 = rss_kb(G.pids[i]);

            res(" rss0_%s=%ld rss1_%s=%ld per_session_%s=%.0f", G.pid_names[i],
                rss0[i], G.pid_names[i], r1, G.pid_names[i],
                (double)(r1 - rss0[i]) * 1024.0 / G.n_ready);
        }
        goto out;
    }
    traffic_phase();
    report_traffic();
out:
    res_print();
    for (int i = 0; i < G.launched; i++)
        conn_kill(G.s[i], NULL);
    if (G.pub)
        conn_kill(G.pub, NULL);
    return 0;
}
