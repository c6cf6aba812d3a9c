/* loadgen's modes for the stream-state features (protocol.md, Extensions
 * of version 1), on the client of bench/lg_client.c:
 *
 *   replay  publishes --fill messages over --topics topics sensor/NNNN and
 *           waits until the gateway's /metrics shows them all held
 *           (mqgate_history_messages); opens -n live sessions on bench/live
 *           fed at --rate msgs/s and measures their latency for --duration
 *           s; then opens --replay-n sessions at once, each sending
 *           {"op":"sub","topic":"sensor/#","history":--history}, and counts
 *           and checks every replayed frame (each session must get all of
 *           them, "history":true, in seq order) while the live messages go
 *           on: replayed messages/s, live latency meanwhile.
 *   rate    -n sessions, each {"op":"sub","topic":"sensor/#","max_rate":R}
 *           (--max-rate), over --topics topics fed round robin at --rate
 *           msgs/s for --duration s after --warmup: deliveries/s, and checks
 *           of the rate (no delivery of a topic sooner than 1/R after the
 *           previous, none much later while the topic is busy), of the order
 *           and of the trailing edge (the last message of every topic
 *           arrives).
 *
 * Payloads are those of the other modes ({"seq":…,"ts":…}); the topic
 * names have four digits so that a frame's topic is found at a fixed
 * place. */
#include "lg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC_PFX "sensor/"
#define LIVE_TOPIC "bench/live"
/* {"op":"msg","topic":" */
#define TOPIC_OFF 21

/* A publisher at a fixed rate, round robin over its topics; the payload's
 * seq counts its messages from 1. */
struct feed {
    char **topics;
    uint16_t *tl;
    int n;
    double rate;
    uint64_t t0, sent;
};

static struct {
    struct feed sensors, live;
    /* replay: per replaying session */
    uint64_t *r_count, *r_gseq, *r_pseq, *r_bad_order, *r_not_hist;
    uint8_t **r_topic; /* messages per topic */
    uint64_t r_expect, r_done_sessions, r_ok_mismatch, r_frames;
    uint64_t t_sub0, t_replay_end;
    /* live sessions: last seq */
    uint64_t *l_last;
    uint64_t l_lost, l_dups, l_in_replay, l_recv;
    struct hist h_before, h_during;
    uint64_t t_warm, t_end; /* the "before" window */
    /* rate */
    uint32_t *k_last_ms, *k_last_pseq;
    uint64_t k_win_deliv, k_deliv, k_too_soon, k_late_gap, k_disorder;
    uint64_t k_bogus;
    uint64_t k_t_warm, k_t_end;
    struct hist h_age;
} S;

static void feed_init(struct feed *f, int n, const char *one, double rate)
{
    f->n = n;
    f->rate = rate;
    f->topics = calloc((size_t)n, sizeof(char *));
    f->tl = calloc((size_t)n, sizeof(uint16_t));
    if (!f->topics || !f->tl)
        die("oom");
    for (int t = 0; t < n; t++) {
        if (one)
            f->topics[t] = strdup(one);
        else if (asprintf(&f->topics[t], TOPIC_PFX "%04d", t) < 0)
            f->topics[t] = NULL;
        if (!f->topics[t])
            die("oom");
        f->tl[t] = (uint16_t)strlen(f->topics[t]);
    }
}

static void feed_put(struct feed *f, uint64_t count)
{
    uint64_t ts = now_ns();
    uint8_t pl[PAYLOAD_LEN];

    for (uint64_t k = 0; k < count; k++) {
        uint64_t seq = ++f->sent;
        int t = (int)((seq - 1) % (uint64_t)f->n);

        put_payload(pl, seq, ts);
        mqtt_put_publish(G.pub, f->topics[t], f->tl[t], pl, PAYLOAD_LEN);
    }
    conn_flush(G.pub);
}

/* Publishes what is due at f->rate since f->t0. */
static void feed_tick(struct feed *f, uint64_t now)
{
    uint64_t due;

    if (!G.pub_ready || G.pub->out_len - G.pub->out_off > (4u << 20))
        return; /* the broker is not reading: wait */
    due = (uint64_t)((double)(now - f->t0) * f->rate / 1e9) + 1;
    if (due > f->sent)
        feed_put(f, due - f->sent);
}

/* A msg frame's parts: the topic's index (sensor/NNNN, else -1), the
 * payload's seq and ts, the gateway's seq, whether "history":true. */
struct msg {
    int topic;
    bool live, history;
    uint64_t pseq, ts, gseq;
};

static bool parse_msg(const uint8_t *p, size_t len, struct msg *m)
{
    const uint8_t *end = p + len, *t = p + TOPIC_OFF, *q, *pl;

    if (len < TOPIC_OFF + 12 + PAYLOAD_LEN ||
        !(q = memchr(t, '"', (size_t)(end - t))))
        return false;
    m->live = (size_t)(q - t) == strlen(LIVE_TOPIC) &&
              memcmp(t, LIVE_TOPIC, strlen(LIVE_TOPIC)) == 0;
    m->topic = -1;
    if ((size_t)(q - t) == strlen(TOPIC_PFX) + 4 &&
        memcmp(t, TOPIC_PFX, strlen(TOPIC_PFX)) == 0)
        m->topic = (int)get_dec(t + strlen(TOPIC_PFX), 4);
    pl = q + 12; /* ","payload": */
    if (pl + PAYLOAD_LEN > end || memcmp(q, "\",\"payload\":{\"seq\":", 19))
        return false;
    m->pseq = get_dec(pl + 7, 10) - SEQ_BASE;
    m->ts = get_dec(pl + 23, 16) - TS_BASE;
    q = memmem(pl + PAYLOAD_LEN, (size_t)(end - pl - PAYLOAD_LEN), "\"seq\":",
               6);
    m->gseq = 0;
    if (q)
        for (q += 6; q < end && *q >= '0' && *q <= '9'; q++)
            m->gseq = m->gseq * 10 + (uint64_t)(*q - '0');
    m->history = len > 16 && memcmp(end - 16, ",\"history\":true}", 16) == 0;
    return true;
}

static void send_sub(struct conn *c, const char *topic, const char *extra)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "{\"op\":\"sub\",\"id\":1,\"topic\":\"%s\",\"qos\":0%s}",
                     topic, extra);

    ws_put(c, 1, buf, (size_t)n);
    c->want_oks = 1;
}

/* ---- replay ------------------------------------------------------------- */

static bool is_replayer(const struct conn *c)
{
    return c->idx >= (uint32_t)G.n;
}

static void replay_open(struct conn *c)
{
    char extra[64];

    if (!is_replayer(c)) {
        send_sub(c, LIVE_TOPIC, "");
        return;
    }
    snprintf(extra, sizeof(extra), ",\"history\":%d", G.history);
    if (!S.t_sub0)
        S.t_sub0 = now_ns();
    send_sub(c, TOPIC_PFX "#", extra);
}

static void replay_finished_one(uint64_t now)
{
    if (++S.r_done_sessions == (uint64_t)G.replay_n) {
        S.t_replay_end = now;
    }
}

static void replay_msg(struct conn *c, const struct msg *m, uint64_t now)
{
    uint32_t r = c->idx - (uint32_t)G.n;

    S.r_frames++;
    if (!m->history || m->topic < 0 || m->topic >= G.n_topics) {
        S.r_not_hist[r]++;
        return;
    }
    if (m->gseq <= S.r_gseq[r] || m->pseq <= S.r_pseq[r])
        S.r_bad_order[r]++;
    S.r_gseq[r] = m->gseq;
    S.r_pseq[r] = m->pseq;
    if (S.r_topic[r][m->topic] < 255)
        S.r_topic[r][m->topic]++;
    if (++S.r_count[r] == S.r_expect)
        replay_finished_one(now);
}

static void live_msg(struct conn *c, const struct msg *m, uint64_t now)
{
    uint64_t *last = &S.l_last[c->idx];

    if (m->pseq <= *last) {
        S.l_dups++;
        return;
    }
    S.l_lost += m->pseq - *last - 1;
    *last = m->pseq;
    S.l_recv++;
    uint64_t lat = now > m->ts ? now - m->ts : 0;

    if (S.t_sub0 && !S.t_replay_end) {
        hist_add(&S.h_during, lat);
        S.l_in_replay++;
    } else if (now >= S.t_warm && now < S.t_end) {
        hist_add(&S.h_before, lat);
    }
}

static void replay_json(struct conn *c, const uint8_t *p, size_t len,
                        uint64_t now)
{
    struct msg m;

    if (len > 11 && memcmp(p, "{\"op\":\"msg\"", 11) == 0) {
        if (!parse_msg(p, len, &m))
            S.k_bogus++;
        else if (is_replayer(c))
            replay_msg(c, &m, now);
        else if (m.live)
            live_msg(c, &m, now);
        else
            S.k_bogus++;
        return;
    }
    if (is_replayer(c) && !c->ready && len > 10 &&
        memcmp(p, "{\"op\":\"ok\"", 10) == 0) {
        const uint8_t *q = memmem(p, len, "\"replayed\":", 11);
        uint64_t k = 0;

        if (q)
            for (q += 11; q < p + len && *q >= '0' && *q <= '9'; q++)
                k = k * 10 + (uint64_t)(*q - '0');
        if (k != S.r_expect) {
            if (!S.r_ok_mismatch++)
                note("a replay's ok: %.*s (expected replayed %llu)",
                     (int)(len > 200 ? 200 : len), p,
                     (unsigned long long)S.r_expect);
        }
    }
    lg_json_control(c, p, len);
}

static void replay_dead(struct conn *c)
{
    if (is_replayer(c) && S.r_count[c->idx - (uint32_t)G.n] < S.r_expect)
        replay_finished_one(now_ns()); /* counted as short below */
}

static const struct lg_app replay_app = {
    .ws_open = replay_open,
    .json = replay_json,
    .dead = replay_dead,
};

/* The value of a metric without labels in a /metrics text, or -1. */
static double metric(const char *text, const char *name)
{
    size_t nl = strlen(name);

    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ')
            return atof(p + nl + 1);
    return -1;
}

static double history_held(void)
{
    char *t = http_get(G.port, "/metrics");
    double v = t ? metric(t, "mqgate_history_messages") : -1;

    free(t);
    return v;
}

/* Publishes the fill and waits until the history holds it. */
static void fill_history(void)
{
    uint64_t t0 = now_ns(), last_change = t0;
    double held = -1, prev = -1;
    int rounds = 0;

    for (;;) {
        if (rounds == 0 || (held < G.fill && now_ns() - last_change > 3e9)) {
            if (rounds++ == 3)
                die("the history holds %.0f of %d messages", held, G.fill);
            if (rounds > 1)
                note("the history holds %.0f of %d: publishing again", held,
                     G.fill);
            /* in slices of 1000, as fast as the broker reads */
            for (int k = 0; k < G.fill; k += 1000) {
                while (G.pub->out_len - G.pub->out_off > (1u << 20))
                    loop_once(1);
                feed_put(&S.sensors, (uint64_t)(G.fill - k < 1000 ? G.fill - k
                                                                  : 1000));
            }
            last_change = now_ns();
        }
        sleep_loop(0.2);
        held = history_held();
        if (held != prev) {
            prev = held;
            last_change = now_ns();
        }
        if (held >= G.fill)
            break;
        if (now_ns() - t0 > 120e9)
            die("the history holds %.0f of %d messages after 120 s", held,
                G.fill);
    }
    res(" fill=%d held=%.0f fill_secs=%.2f fill_rounds=%d", G.fill, held,
        (now_ns() - t0) / 1e9, rounds);
}

static void live_tick(void)
{
    feed_tick(&S.live, now_ns());
}

static int run_replay(void)
{
    struct lg_meter m0, m1;
    int total = G.n + G.replay_n;
    uint64_t deadline;

    S.r_expect = (uint64_t)G.history * (uint64_t)G.n_topics;
    if (G.fill != G.history * G.n_topics)
        die("--fill must be --history x --topics (each topic's newest "
            "--history are replayed)");
    S.r_count = calloc((size_t)G.replay_n, sizeof(uint64_t));
    S.r_gseq = calloc((size_t)G.replay_n, sizeof(uint64_t));
    S.r_pseq = calloc((size_t)G.replay_n, sizeof(uint64_t));
    S.r_bad_order = calloc((size_t)G.replay_n, sizeof(uint64_t));
    S.r_not_hist = calloc((size_t)G.replay_n, sizeof(uint64_t));
    S.r_topic = calloc((size_t)G.replay_n, sizeof(uint8_t *));
    S.l_last = calloc((size_t)G.n, sizeof(uint64_t));
    if (!S.r_count || !S.r_gseq || !S.r_pseq || !S.r_bad_order ||
        !S.r_not_hist || !S.r_topic || !S.l_last)
        die("oom");
    for (int r = 0; r < G.replay_n; r++)
        if (!(S.r_topic[r] = calloc((size_t)G.n_topics, 1)))
            die("oom");
    feed_init(&S.sensors, G.n_topics, NULL, 0);
    feed_init(&S.live, 1, LIVE_TOPIC, G.rate);
    res(" topics=%d history=%d replay_n=%d rate=%.0f", G.n_topics, G.history,
        G.replay_n, G.rate);

    fill_history();
    connect_phase(G.n);
    if (G.n_ready < G.n)
        die("%d of %d live sessions ready (%s)", G.n_ready, G.n,
            G.fail_reason);

    /* live messages alone, then the replays start */
    S.live.t0 = now_ns();
    S.t_warm = S.live.t0 + (uint64_t)(G.warmup * 1e9);
    S.t_end = S.t_warm + (uint64_t)(G.duration * 1e9);
    while (now_ns() < S.t_end) {
        live_tick();
        loop_once(1);
    }
    if (G.ready_file) {
        /* a profiler may start counting now (bench/run.sh profile) */
        FILE *f = fopen(G.ready_file, "w");

        if (f)
            fclose(f);
        for (uint64_t until = now_ns() + (uint64_t)G.start_delay_ms * 1000000;
             now_ns() < until;) {
            live_tick();
            loop_once(1);
        }
    }
    meter_read(&m0);
    if (G.conc < G.replay_n)
        G.conc = G.replay_n; /* all at once */
    connect_phase_tick(total, live_tick);
    deadline = now_ns() + (uint64_t)(G.max_time * 1e9);
    while (S.r_done_sessions < (uint64_t)G.replay_n && now_ns() < deadline) {
        live_tick();
        loop_once(1);
    }
    if (!S.t_replay_end) {
        note("replays unfinished after %.0f s", G.max_time);
        S.t_replay_end = now_ns();
    }
    meter_read(&m1);
    /* the live messages published meanwhile must arrive */
    uint64_t until = now_ns() + (uint64_t)(G.drain * 1e9);

    while (now_ns() < until)
        loop_once(10);

    double secs = (S.t_replay_end - S.t_sub0) / 1e9;
    uint64_t got = 0, exact = 0, bad_order = 0, not_hist = 0, topics_off = 0;

    for (int r = 0; r < G.replay_n; r++) {
        bool ok = S.r_count[r] == S.r_expect && !S.r_bad_order[r] &&
                  !S.r_not_hist[r];

        got += S.r_count[r];
        bad_order += S.r_bad_order[r];
        not_hist += S.r_not_hist[r];
        for (int t = 0; t < G.n_topics; t++)
            if (S.r_topic[r][t] != G.history) {
                topics_off++;
                ok = false;
            }
        exact += ok;
    }
    uint64_t live_missing = 0;

    for (int i = 0; i < G.n; i++)
        if (G.s[i]->ready && G.s[i]->state == CS_OPEN)
            live_missing += S.live.sent - S.l_last[i];
    res(" replay_expect=%llu replay_got=%llu replay_frames=%llu "
        "replay_secs=%.3f replay_rate=%.0f replay_exact=%llu "
        "replay_bad_order=%llu replay_not_history=%llu "
        "replay_topics_off=%llu replay_ok_mismatch=%llu",
        (unsigned long long)(S.r_expect * (uint64_t)G.replay_n),
        (unsigned long long)got, (unsigned long long)S.r_frames, secs,
        secs > 0 ? (double)got / secs : 0, (unsigned long long)exact,
        (unsigned long long)bad_order, (unsigned long long)not_hist,
        (unsigned long long)topics_off, (unsigned long long)S.r_ok_mismatch);
    res(" live_sent=%llu live_recv=%llu live_lost=%llu live_missing=%llu "
        "live_dups=%llu live_in_replay=%llu closed=%llu closed_4408=%llu "
        "bogus=%llu",
        (unsigned long long)S.live.sent, (unsigned long long)S.l_recv,
        (unsigned long long)S.l_lost, (unsigned long long)live_missing,
        (unsigned long long)S.l_dups, (unsigned long long)S.l_in_replay,
        (unsigned long long)G.closes_by_server,
        (unsigned long long)G.close_4408, (unsigned long long)S.k_bogus);
    res(" p50_us=%.0f p99_us=%.0f max_us=%.0f before_p50_us=%.0f "
        "before_p99_us=%.0f before_max_us=%.0f",
        hist_pct(&S.h_during, 50) / 1e3, hist_pct(&S.h_during, 99) / 1e3,
        S.h_during.max / 1e3, hist_pct(&S.h_before, 50) / 1e3,
        hist_pct(&S.h_before, 99) / 1e3, S.h_before.max / 1e3);
    meter_res(&m0, &m1, secs > 0 ? secs : 1);
    report_failed(); /* live and replaying sessions */
    return 0;
}

/* ---- rate --------------------------------------------------------------- */

static void rate_open(struct conn *c)
{
    char extra[64];

    snprintf(extra, sizeof(extra), ",\"max_rate\":%g", G.max_rate);
    send_sub(c, TOPIC_PFX "#", extra);
}

static void rate_msg(struct conn *c, const struct msg *m, uint64_t now)
{
    size_t k = (size_t)c->idx * (size_t)G.n_topics + (size_t)m->topic;
    uint32_t ms = (uint32_t)(now / 1000000) + 1; /* 0: none yet */
    uint32_t interval = (uint32_t)(1000.0 / G.max_rate);

    S.k_deliv++;
    if (m->pseq <= S.k_last_pseq[k])
        S.k_disorder++;
    if (S.k_last_ms[k]) {
        uint32_t d = ms - S.k_last_ms[k];

        /* a little early at the client is the network's jitter; more is
         * the gateway's */
        if (d + 20 < interval)
            S.k_too_soon++;
        /* the topic gets a message every n_topics / rate s: while it is
         * busy, the next delivery is due one interval after the last */
        if (now >= S.k_t_warm && now < S.k_t_end && d > interval + 100)
            S.k_late_gap++;
    }
    S.k_last_ms[k] = ms;
    S.k_last_pseq[k] = (uint32_t)m->pseq;
    if (now >= S.k_t_warm && now < S.k_t_end) {
        S.k_win_deliv++;
        hist_add(&S.h_age, now > m->ts ? now - m->ts : 0);
    }
}

static void rate_json(struct conn *c, const uint8_t *p, size_t len,
                      uint64_t now)
{
    struct msg m;

    if (len > 11 && memcmp(p, "{\"op\":\"msg\"", 11) == 0) {
        if (parse_msg(p, len, &m) && m.topic >= 0 && m.topic < G.n_topics)
            rate_msg(c, &m, now);
        else
            S.k_bogus++;
        return;
    }
    lg_json_control(c, p, len);
}

static const struct lg_app rate_app = {
    .ws_open = rate_open,
    .json = rate_json,
};

static int run_rate(void)
{
    struct lg_window w = {0};
    size_t cells = (size_t)G.n * (size_t)G.n_topics;

    S.k_last_ms = calloc(cells, sizeof(uint32_t));
    S.k_last_pseq = calloc(cells, sizeof(uint32_t));
    if (!S.k_last_ms || !S.k_last_pseq)
        die("oom");
    feed_init(&S.sensors, G.n_topics, NULL, G.rate);
    res(" topics=%d rate=%.0f max_rate=%g", G.n_topics, G.rate, G.max_rate);
    connect_phase(G.n);
    if (!G.n_ready)
        die("no session became ready (%s)", G.fail_reason);

    S.sensors.t0 = now_ns();
    S.k_t_warm = w.t_warm = S.sensors.t0 + (uint64_t)(G.warmup * 1e9);
    S.k_t_end = w.t_end = S.k_t_warm + (uint64_t)(G.duration * 1e9);
    for (;;) {
        uint64_t now = now_ns();

        window_tick(&w, now);
        if (w.done)
            break;
        feed_tick(&S.sensors, now);
        loop_once(1);
    }
    /* the trailing edges: the newest message of every topic must come */
    uint64_t until = now_ns() + (uint64_t)((1.0 / G.max_rate + G.drain) * 1e9);

    while (now_ns() < until)
        loop_once(10);

    /* the last message published to topic t has seq sent - ((sent - 1 - t)
     * mod n_topics) */
    uint64_t stale = 0, sent = S.sensors.sent, live = 0;

    for (int i = 0; i < G.n; i++) {
        if (!G.s[i]->ready || G.s[i]->state != CS_OPEN)
            continue;
        live++;
        for (int t = 0; t < G.n_topics && (uint64_t)t < sent; t++) {
            uint64_t last = sent - (sent - 1 - (uint64_t)t) % (uint64_t)G.n_topics;

            if (S.k_last_pseq[(size_t)i * (size_t)G.n_topics + (size_t)t] !=
                last)
                stale++;
        }
    }
    double offered = G.max_rate * (double)G.n_topics * (double)G.n;

    res(" sent=%llu deliv_rate=%.0f offered=%.0f delivered=%llu "
        "too_soon=%llu late_gaps=%llu disorder=%llu stale_end=%llu "
        "sessions_open=%llu closed=%llu closed_4408=%llu bogus=%llu "
        "age_p50_us=%.0f age_p99_us=%.0f age_max_us=%.0f",
        (unsigned long long)sent, (double)S.k_win_deliv / G.duration, offered,
        (unsigned long long)S.k_deliv, (unsigned long long)S.k_too_soon,
        (unsigned long long)S.k_late_gap, (unsigned long long)S.k_disorder,
        (unsigned long long)stale, (unsigned long long)live,
        (unsigned long long)G.closes_by_server,
        (unsigned long long)G.close_4408, (unsigned long long)S.k_bogus,
        hist_pct(&S.h_age, 50) / 1e3, hist_pct(&S.h_age, 99) / 1e3,
        S.h_age.max / 1e3);
    meter_res(&w.m0, &w.m1, G.duration);
    report_failed();
    return 0;
}

/* ---- entry -------------------------------------------------------------- */

void stream_usage(void)
{
    fputs("replay: --fill F --topics T --history K --replay-n R -n LIVE "
          "--rate LIVE_RATE\n"
          "rate:   -n N --topics T --rate MSGS_PER_S --max-rate R\n"
          "  --replay-n R        replay: sessions replaying at once [100]\n"
          "  --history K         replay: the sub's history [100]\n"
          "  --fill F            replay: messages stored first [K x T]\n"
          "  --max-rate R        rate: the sub's max_rate [1]\n",
          stderr);
}

int stream_run(void)
{
    int rc;

    if (G.broker_port <= 0 || G.n_topics < 1 || G.n_topics > 10000)
        stream_usage(), exit(2);
    if (G.mode == M_REPLAY) {
        if (G.replay_n <= 0)
            G.replay_n = 100;
        if (G.history <= 0)
            G.history = 100;
        if (G.fill <= 0)
            G.fill = G.history * G.n_topics;
        G.n_alloc = G.n + G.replay_n;
        G.app = &replay_app;
    } else {
        if (G.max_rate <= 0)
            G.max_rate = 1;
        G.app = &rate_app;
    }
    lg_init();
    res("RESULT mode=%s label=%s n=%d proto=mqg tls=%d load1=%.2f",
        G.mode == M_REPLAY ? "replay" : "rate", G.label, G.n, G.tls,
        loadavg1());
    G.pub = conn_open(CK_PUBLISHER, &G.pub_dst, 0);
    wait_publisher();
    rc = G.mode == M_REPLAY ? run_replay() : run_rate();
    res_print();
    for (int i = 0; i < G.launched; i++)
        conn_kill(G.s[i], NULL);
    conn_kill(G.pub, NULL);
    return rc;
}
