/* A session: its state and identity, its send queue and its lifecycle,
 * whatever the transport behind it (transport.h). Service thread only. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "auth.h"
#include "auth_users.h"
#include "clock.h"
#include "conf.h"
#include "frame.h"
#include "gateway.h"
#include "handle.h"
#include "ipcount.h"
#include "jbuf.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "reply.h"
#include "requests.h"
#include "sendq.h"
#include "session.h"
#include "session_int.h"
#include "tbucket.h"
#include "transport.h"

#define PREAUTH_QUEUE_MAX 65536    /* bytes queued to it before auth */

/* The keepalive wheel's slots: a session's is its serial's remainder,
 * not the time it opened, so that sessions of one storm spread. */
#define KA_SLOTS 64
#define KA_MIN_PERIOD_MS 50   /* between two ticks */

/* Every open session, how many, how many per client address, and what
 * they were last told of the broker; the keepalive wheel. */
static struct {
    struct session *list;
    long n;
    struct ipcount *per_ip;
    bool broker_up;
    struct session *wheel[KA_SLOTS];
    unsigned cursor;               /* the next slot a tick visits */
    /* for /metrics, kept as sessions change rather than counted */
    unsigned long long by_state[SS_CLOSING + 1], ws, sse;
} S;

/* The transport's count of s in S, if it has one. */
static unsigned long long *tp_count(const struct session *s)
{
    if (strcmp(s->tp->name, "ws") == 0)
        return &S.ws;
    if (strcmp(s->tp->name, "sse") == 0)
        return &S.sse;
    return NULL;
}

void session_set_state(struct session *s, enum session_state state)
{
    S.by_state[s->state]--;
    S.by_state[state]++;
    s->state = state;
}

int session_init(void)
{
    return (S.per_ip = ipcount_new()) ? 0 : -1;
}

void session_destroy(void)
{
    ipcount_free(S.per_ip);
    S.per_ip = NULL;
}

long session_count(void)
{
    return S.n;
}

uint32_t session_count_ip(const char *ip)
{
    return ipcount_get(S.per_ip, ip);
}

bool session_broker_up(void)
{
    return S.broker_up;
}

void session_set_broker_up(bool up)
{
    if (S.broker_up == up)
        return;
    S.broker_up = up;
    notify_status("broker %s, %ld sessions", up ? "up" : "down", S.n);
    for (struct session *s = S.list; s; s = s->next)
        if (s->state == SS_AUTHED)
            session_send_status(s, up);
}

void session_close_all(int code, const char *why)
{
    for (struct session *s = S.list; s; s = s->next)
        session_close(s, code, why);
}

void session_reload_all(void)
{
    for (struct session *s = S.list; s; s = s->next)
        session_reload(s);
}

void session_stats(struct session_stats *st)
{
    st->queued = sendq_all_bytes;
    st->ws = S.ws;
    st->sse = S.sse;
    st->opening = S.by_state[SS_OPENING];
    st->authed = S.by_state[SS_AUTHED];
    st->closing = S.by_state[SS_CLOSING];
}

/* ---- sending ------------------------------------------------------------ */

static void queue_drop(struct session *s)
{
    sendq_drop(&s->q);
    sendq_drop(&s->held);
    s->ws.tx_off = 0;
}

void session_close(struct session *s, int code, const char *reason)
{
    if (s->close_code)
        return;
    s->close_code = code;
    subs_holds_view(&s->holds, s->mount, s->mount_len, true);
    s->close_reason = reason;
    session_set_state(s, SS_CLOSING);
    lws_sul_cancel(&s->auth_timer);
    lws_sul_cancel(&s->exp_timer);
    s->tp->closing(s);
    s->tp->want_write(s);
    log_debug("session %llu: closing %d (%s)", (unsigned long long)s->serial,
              code, reason);
}

void session_probe_kernel(struct session *s)
{
    s->unprobed = 0;
    s->k_bytes = s->tp->kernel_unsent(s);
}

void session_wrote(struct session *s, size_t n)
{
    /* What the kernel holds unsent counts toward the session's queue: a
     * peer that stops reading fills the socket buffer (megabytes on
     * loopback) long before it fills ours. Asked after big writes, which
     * is when a backlog builds, after every 64 KiB of small ones, and
     * until it has drained. */
    s->unprobed += n;
    if (n >= 8192 || s->unprobed >= 65536 || s->k_bytes)
        session_probe_kernel(s);
    session_replay_feed(s);
}

/* The queue bound (limits.max_queue_bytes) counts what s has unsent, here
 * and in the kernel. A message larger than the bound is not a backlog: a
 * session within the bound takes it, and its bound grows by the message's
 * size until it is back within the bound. */
static bool queue_admits(struct session *s, const struct frame *f, size_t max)
{
    size_t backlog = s->q.bytes + s->held.bytes + s->k_bytes;

    if (s->slack && backlog <= max)
        s->slack = 0;
    if (backlog + f->len <= max + s->slack)
        return true;
    /* k_bytes is as last seen: ask the kernel before judging */
    session_probe_kernel(s);
    backlog = s->q.bytes + s->held.bytes + s->k_bytes;
    if (backlog + f->len <= max + s->slack)
        return true;
    if (backlog <= max && f->len > max) {
        s->slack = f->len;
        return true;
    }
    return false;
}

/* limits.slow_consumer "conflate": s passed its bound with f to send. f
 * is queued, and every queued message that has a newer one of its topic
 * is dropped (never the one being written). True when that brought s back
 * within max. */
static bool conflate(struct session *s, struct frame *f, size_t max)
{
    long a, b;

    if (sendq_push(s->replays ? &s->held : &s->q, f) < 0)
        return false;
    metrics_add(MC_FRAMES_OUT, 1);
    metrics_add(MC_BYTES_OUT, f->len);
    a = sendq_conflate(&s->q, s->ws.tx_off ? 1 : 0);
    b = sendq_conflate(&s->held, 0);
    if (a > 0)
        metrics_add(MC_CONFLATED, (uint64_t)a);
    if (b > 0)
        metrics_add(MC_CONFLATED, (uint64_t)b);
    if (s->q.count == 1 && !s->replays)
        s->tp->want_write(s);
    return a >= 0 && b >= 0 &&
           s->q.bytes + s->held.bytes + s->k_bytes <= max + s->slack;
}

void session_send(struct session *s, struct frame *f)
{
    size_t max = (size_t)conf()->limits.max_queue_bytes;

    if (s->close_code)
        return;
    /* a client that has not said who it is gets little room either way */
    if (s->state != SS_AUTHED && max > PREAUTH_QUEUE_MAX)
        max = PREAUTH_QUEUE_MAX;
    if (!queue_admits(s, f, max)) {
        if (f->topic_key && s->state == SS_AUTHED &&
            conf()->limits.slow_consumer == SLOW_CONFLATE &&
            conflate(s, f, max))
            return;
        metrics_add(MC_SLOW_CLOSES, 1);
        metrics_add(MC_FRAMES_DROPPED, s->q.count + 1);
        queue_drop(s);
        session_close(s, 4408, "too slow");
        return;
    }
    /* while a replay runs, everything else waits behind it (replay.c) */
    if (sendq_push(s->replays ? &s->held : &s->q, f) < 0) {
        queue_drop(s);
        session_close(s, 1011, "out of memory");
        return;
    }
    metrics_add(MC_FRAMES_OUT, 1);
    metrics_add(MC_BYTES_OUT, f->len);
    if (s->q.count == 1 && !s->replays)
        s->tp->want_write(s);
}

void session_send_json(struct session *s, const char *json, size_t len)
{
    struct frame *f = frame_new_text(json, len);

    if (!f) {
        session_close(s, 1011, "out of memory");
        return;
    }
    session_send(s, f);
    frame_unref(f);
}

void session_send_jbuf(struct session *s, struct jbuf *b)
{
    if (b->failed)
        session_close(s, 1011, "out of memory");
    else
        session_send_json(s, b->p, b->len);
    jbuf_free(b);
}

void session_reply_ok(struct session *s, const char *id, size_t id_len)
{
    struct jbuf b;

    jbuf_init(&b);
    reply_begin(&b, "ok", id, id_len);
    reply_end(&b);
    session_send_jbuf(s, &b);
}

void session_reply_error(struct session *s, const char *id, size_t id_len,
                         const char *code, const char *fmt, ...)
{
    char msg[REPLY_MESSAGE_MAX + 1];
    struct jbuf b;
    va_list ap;
    int n;

    metrics_error(code);
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    jbuf_init(&b);
    /* the message may quote client text: reply_error() keeps it valid
     * UTF-8 */
    reply_error(&b, id, id_len, code, msg, strnlen(msg, sizeof(msg)));
    session_send_jbuf(s, &b);
}

void session_send_status(struct session *s, bool up)
{
    static const char st_up[] = "{\"op\":\"status\",\"broker\":\"up\"}";
    static const char st_down[] = "{\"op\":\"status\",\"broker\":\"down\"}";

    if (up)
        session_send_json(s, st_up, sizeof(st_up) - 1);
    else
        session_send_json(s, st_down, sizeof(st_down) - 1);
}

struct subs_holds *session_holds(struct session *s)
{
    return &s->holds;
}

struct requests_held *session_requests(struct session *s)
{
    return &s->reqs;
}

const char *session_mount(const struct session *s, size_t *len)
{
    *len = s->mount_len;
    return s->mount;
}


/* ---- lifecycle ---------------------------------------------------------- */

uint64_t session_keepalive_period_ms(void)
{
    /* one slot a tick where that is at least KA_MIN_PERIOD_MS apart (a
     * quarter interval of 30 s: 117 ms), so that a tick's pings are a
     * 64th of a quarter of the sessions: 19,000 sessions opened in one
     * storm ping in bursts of 300 (2 ms), not of 2,700 (about 20 ms, the
     * p99 of a message to one of them); at most a second apart, for the
     * history's expiry and the worker's metrics on the same tick */
    uint64_t period_ms = (uint64_t)conf()->limits.ping_interval_s * 250 /
                         KA_SLOTS;

    if (period_ms < KA_MIN_PERIOD_MS)
        return KA_MIN_PERIOD_MS;
    return period_ms > 1000 ? 1000 : period_ms;
}

static void keepalive_one(struct session *s, uint64_t now, uint64_t interval)
{
    if (!s->tp->hang_up) {
        /* a peer that never speaks (SSE, HTTP): only kept alive */
        if (s->tp->want_write && now - s->last_ping_ms >= interval &&
            !s->close_code) {
            s->last_ping_ms = now;
            s->ping_due = true;
            s->tp->want_write(s);
        }
    } else if (now - s->last_rx_ms >= 2 * interval) {
        /* silent for two intervals: hang up, as there is nobody to read a
         * close frame */
        log_debug("session %llu: silent for %llu ms, hanging up",
                  (unsigned long long)s->serial,
                  (unsigned long long)(now - s->last_rx_ms));
        s->last_rx_ms = now; /* once */
        s->tp->hang_up(s);
    } else if (now - s->last_ping_ms >= interval && !s->close_code) {
        s->last_ping_ms = now;
        s->ping_due = true;
        s->tp->want_write(s);
    }
}

void session_keepalive(uint64_t now)
{
    uint64_t interval = (uint64_t)conf()->limits.ping_interval_s * 1000;
    /* slots a tick visits: the whole wheel in a quarter of an interval */
    uint64_t k = (KA_SLOTS * session_keepalive_period_ms() + interval / 4 - 1) /
                 (interval / 4);

    if (k > KA_SLOTS)
        k = KA_SLOTS;
    for (; k > 0; k--) {
        for (struct session *s = S.wheel[S.cursor], *next; s; s = next) {
            next = s->knext;
            keepalive_one(s, now, interval);
        }
        S.cursor = (S.cursor + 1) % KA_SLOTS;
    }
}

static void auth_timeout(lws_sorted_usec_list_t *sul)
{
    struct session *s = lws_container_of(sul, struct session, auth_timer);

    if (s->state == SS_OPENING)
        session_close(s, 4401, "authentication timeout");
}

/* The handshake authenticated nobody: anonymous when configured, else
 * the hello and the authentication timeout. */
static void unauthenticated_hello(struct session *s)
{
    if (session_set_anonymous(s) == 0) {
        auth_send_hello(s);
        session_send_status(s, S.broker_up);
        return;
    }
    auth_send_hello(s);
    lws_sul_schedule(lws_get_context(s->wsi), 0, &s->auth_timer, auth_timeout,
                     (lws_usec_t)conf()->auth.timeout_s * LWS_US_PER_SEC);
}

/* The Origin of the handshake, for the webhook (headers are gone once
 * the session runs). */
static void remember_origin(struct session *s, struct lws *wsi)
{
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);

    if (n <= 0 || n > 1024 || !(s->origin = malloc((size_t)n + 1)))
        return;
    if (lws_hdr_copy(wsi, s->origin, n + 1, WSI_TOKEN_ORIGIN) <= 0) {
        free(s->origin);
        s->origin = NULL;
    }
}

void session_attach(struct session *s, const struct transport *tp,
                    struct lws *wsi, const char *ip)
{
    static uint64_t serial;

    s->tp = tp;
    s->wsi = wsi;
    s->serial = ++serial;
    s->state = SS_OPENING;
    s->last_rx_ms = s->last_ping_ms = clock_now_ms();
    snprintf(s->ip, sizeof(s->ip), "%s", ip);
    tbucket_init(&s->bucket, conf()->limits.publish_burst, clock_now_ms());
    tbucket_init(&s->sub_bucket, conf()->limits.subscribe_burst,
                 clock_now_ms());
    s->next = S.list;
    if (S.list)
        S.list->prev = s;
    S.list = s;
    s->kslot = (uint8_t)(s->serial % KA_SLOTS);
    s->kprev = NULL;
    s->knext = S.wheel[s->kslot];
    if (s->knext)
        s->knext->kprev = s;
    S.wheel[s->kslot] = s;
    S.n++;
    S.by_state[SS_OPENING]++;
    if (tp_count(s))
        (*tp_count(s))++;
    metrics_add(MC_SESSIONS_OPENED, 1);
    ipcount_inc(S.per_ip, s->ip);
    if (conf()->auth.http)
        remember_origin(s, wsi);
}

int session_set_anonymous(struct session *s)
{
    const struct cfg_role *role;
    const char *why;

    if (!conf()->auth.anonymous_role ||
        !(role = config_role(conf(), conf()->auth.anonymous_role)) ||
        session_set_identity(s, CRED_ANONYMOUS, "anonymous", &role, 1,
                             &why) < 0)
        return -1;
    metrics_auth(AUTH_ANONYMOUS, true);
    return 0;
}

void session_open(struct session *s, const struct transport *tp,
                  struct lws *wsi, const char *ip)
{
    session_attach(s, tp, wsi, ip);
    switch (auth_handshake(s)) {
    case 0:
        auth_send_hello(s);
        session_send_status(s, S.broker_up);
        return;
    case 1:
        /* the hello waits for the check (session_handshake_settled()),
         * the timeout runs meanwhile */
        lws_sul_schedule(lws_get_context(wsi), 0, &s->auth_timer,
                         auth_timeout,
                         (lws_usec_t)conf()->auth.timeout_s * LWS_US_PER_SEC);
        return;
    default:
        break;
    }
    unauthenticated_hello(s);
}

void session_handshake_settled(struct session *s, bool authed)
{
    if (s->tp->auth_done) {
        /* an HTTP request: answered by its transport */
        s->tp->auth_done(s, authed ? NULL : "the credentials were refused");
    } else if (authed) {
        auth_send_hello(s);
        session_send_status(s, S.broker_up);
    } else if (s->state == SS_OPENING) {
        unauthenticated_hello(s);
    }
}

void session_closed(struct session *s)
{
    if (s->auth_job)
        auth_job_disown(s->auth_job);
    auth_wait_cancel(s);
    free(s->auth_id);
    free(s->origin);
    lws_sul_cancel(&s->auth_timer);
    lws_sul_cancel(&s->exp_timer);
    subs_session_gone(s);
    handle_pub_disown(s);
    requests_session_gone(s);
    session_replay_free(s);
    sendq_free(&s->q);
    ws_conn_free(&s->ws);
    free(s->user);
    free(s->roles);
    free(s->mount);
    if (s->prev)
        s->prev->next = s->next;
    else
        S.list = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->kprev)
        s->kprev->knext = s->knext;
    else
        S.wheel[s->kslot] = s->knext;
    if (s->knext)
        s->knext->kprev = s->kprev;
    S.n--;
    S.by_state[s->state]--;
    if (tp_count(s))
        (*tp_count(s))--;
    ipcount_dec(S.per_ip, s->ip);
    s->wsi = NULL;
}

