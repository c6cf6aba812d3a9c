/* The table of waiting requests and the reply subscription (requests.h).
 *
 * Entries are found by key (the number in their response topic: a
 * counter, so a power-of-two table of chains spreads them evenly) and
 * kept in a binary heap by deadline, under one libwebsockets timer for the
 * earliest: a timer per request would cost a walk of libwebsockets' sorted
 * list at each insertion. A key is never reused, so a late answer, or the
 * broker's answer to a publish whose request already failed, finds
 * nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <libwebsockets.h>
#include <openssl/crypto.h>

#include "clock.h"
#include "conf.h"
#include "errors.h"
#include "jbuf.h"
#include "log.h"
#include "mailbox.h"
#include "metrics.h"
#include "payload.h"
#include "props.h"
#include "reply.h"
#include "requests.h"
#include "session.h"
#include "topic.h"
#include "upstream.h"

#define CORR_LEN 16
/* The reply subscription's SUBACK tags: the connection's generation,
 * below 2^32, where the registry's never are (subs.c: subid << 32 | gen,
 * subid >= 1), so a late answer of an earlier connection is told apart. */
#define REPLY_TAG_END (UINT64_C(1) << 32)

struct request_wait {
    struct request_wait *h_next;          /* the key's chain */
    struct request_wait *s_prev, *s_next; /* the session's */
    struct session *s;
    uint64_t key;
    uint64_t deadline_ms;
    size_t heap_i;
    uint8_t corr[CORR_LEN];
    size_t id_len;
    char id[];
};

static struct {
    struct lws_context *ctx;
    char *prefix;                  /* broker-side, ends with '/' */
    size_t prefix_len;
    enum { REPLY_NONE, REPLY_PENDING, REPLY_OK, REPLY_REFUSED } reply;
    uint32_t reply_gen;            /* of the last reply SUBSCRIBE */
    uint64_t next_key;
    struct request_wait **buckets;
    size_t n_buckets, n;           /* n_buckets a power of two */
    struct request_wait **heap;    /* by deadline_ms */
    size_t heap_cap;
    lws_sorted_usec_list_t timer;
    uint64_t timer_at;             /* 0: not armed */
} RQ;

static void arm_timer(void);

/* ---- the table ------------------------------------------------------- */

static struct request_wait **chain_of(uint64_t key)
{
    return &RQ.buckets[key & (RQ.n_buckets - 1)];
}

static struct request_wait *find(uint64_t key)
{
    struct request_wait *w = RQ.n_buckets ? *chain_of(key) : NULL;

    while (w && w->key != key)
        w = w->h_next;
    return w;
}

static int grow_buckets(void)
{
    size_t nb = RQ.n_buckets ? RQ.n_buckets * 2 : 64;
    struct request_wait **b = calloc(nb, sizeof(*b));

    if (!b)
        return -1;
    for (size_t i = 0; i < RQ.n_buckets; i++)
        for (struct request_wait *w = RQ.buckets[i], *next; w; w = next) {
            next = w->h_next;
            w->h_next = b[w->key & (nb - 1)];
            b[w->key & (nb - 1)] = w;
        }
    free(RQ.buckets);
    RQ.buckets = b;
    RQ.n_buckets = nb;
    return 0;
}

static void heap_set(size_t i, struct request_wait *w)
{
    RQ.heap[i] = w;
    w->heap_i = i;
}

static void heap_up(size_t i)
{
    struct request_wait *w = RQ.heap[i];

    while (i > 0 && RQ.heap[(i - 1) / 2]->deadline_ms > w->deadline_ms) {
        heap_set(i, RQ.heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(i, w);
}

static void heap_down(size_t i)
{
    struct request_wait *w = RQ.heap[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= RQ.n)
            break;
        if (c + 1 < RQ.n &&
            RQ.heap[c + 1]->deadline_ms < RQ.heap[c]->deadline_ms)
            c++;
        if (RQ.heap[c]->deadline_ms >= w->deadline_ms)
            break;
        heap_set(i, RQ.heap[c]);
        i = c;
    }
    heap_set(i, w);
}

/* Adds w (key, session, deadline set) everywhere. 0 or -1. */
static int insert(struct request_wait *w)
{
    struct requests_held *h = session_requests(w->s);
    struct request_wait **c;

    if (RQ.n >= RQ.n_buckets && grow_buckets() < 0)
        return -1;
    if (RQ.n == RQ.heap_cap) {
        size_t cap = RQ.heap_cap ? RQ.heap_cap * 2 : 64;
        struct request_wait **hp = realloc(RQ.heap, cap * sizeof(*hp));

        if (!hp)
            return -1;
        RQ.heap = hp;
        RQ.heap_cap = cap;
    }
    c = chain_of(w->key);
    w->h_next = *c;
    *c = w;
    heap_set(RQ.n, w);
    RQ.n++;
    heap_up(RQ.n - 1);
    w->s_prev = NULL;
    w->s_next = h->head;
    if (h->head)
        h->head->s_prev = w;
    h->head = w;
    h->n++;
    return 0;
}

/* Takes w out of everything and frees it. */
static void drop(struct request_wait *w)
{
    struct requests_held *h = session_requests(w->s);
    struct request_wait **c = chain_of(w->key);
    size_t i = w->heap_i;

    while (*c != w)
        c = &(*c)->h_next;
    *c = w->h_next;
    RQ.n--;
    if (i != RQ.n) {
        struct request_wait *m = RQ.heap[RQ.n];

        heap_set(i, m);
        heap_up(i);
        heap_down(m->heap_i);
    }
    if (w->s_prev)
        w->s_prev->s_next = w->s_next;
    else
        h->head = w->s_next;
    if (w->s_next)
        w->s_next->s_prev = w->s_prev;
    h->n--;
    free(w);
}

/* Answers w with an error and drops it. */
static void fail(struct request_wait *w, const char *code, const char *why)
{
    session_reply_error(w->s, w->id, w->id_len, code, "%s", why);
    drop(w);
}

/* ---- timeouts ---------------------------------------------------------- */

static void on_timer(lws_sorted_usec_list_t *sul)
{
    uint64_t now = clock_now_ms();

    (void)sul;
    RQ.timer_at = 0;
    while (RQ.n && RQ.heap[0]->deadline_ms <= now) {
        metrics_add(MC_REQUEST_TIMEOUTS, 1);
        fail(RQ.heap[0], "timeout", "no response in time");
    }
    arm_timer();
}

static void arm_timer(void)
{
    uint64_t at, now;

    if (!RQ.n) {
        if (RQ.timer_at)
            lws_sul_cancel(&RQ.timer);
        RQ.timer_at = 0;
        return;
    }
    at = RQ.heap[0]->deadline_ms;
    if (RQ.timer_at == at)
        return;
    now = clock_now_ms();
    RQ.timer_at = at;
    lws_sul_schedule(RQ.ctx, 0, &RQ.timer, on_timer,
                     (lws_usec_t)(at > now ? at - now : 0) * LWS_US_PER_MS);
}

/* ---- life ------------------------------------------------------------- */

int requests_init(struct lws_context *ctx, const char *tmpl,
                  const char *client_id)
{
    struct jbuf b;

    RQ.ctx = ctx;
    RQ.next_key = 1;
    jbuf_init(&b);
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '%' && p[1] == 'c') {
            jbuf_lit(&b, client_id);
            p++;
        } else {
            jbuf_raw(&b, p, 1);
        }
    }
    if (b.failed || !(RQ.prefix = malloc(b.len + 1))) {
        jbuf_free(&b);
        log_error("out of memory");
        return -1;
    }
    memcpy(RQ.prefix, b.p, b.len);
    RQ.prefix[b.len] = '\0';
    RQ.prefix_len = b.len;
    jbuf_free(&b);
    if (topic_name_check(RQ.prefix, RQ.prefix_len) < 0 ||
        RQ.prefix_len + 20 > TOPIC_MAX_LEN ||
        RQ.prefix[RQ.prefix_len - 1] != '/') {
        log_error("broker.reply_prefix %s: with the client id it is %s, not "
                  "a topic prefix ending in '/' without wildcards",
                  tmpl, RQ.prefix);
        return -1;
    }
    /* MQTT 3.1.1: no requests, and the prefix is an ordinary topic */
    if (upstream_version(upstream_get()) != 5)
        RQ.prefix_len = 0;
    return 0;
}

void requests_destroy(void)
{
    /* the sessions are gone, and their requests with them: the timer is
     * no longer armed */
    for (size_t i = 0; i < RQ.n; i++)
        free(RQ.heap[i]);
    free(RQ.heap);
    free(RQ.buckets);
    free(RQ.prefix);
    memset(&RQ, 0, sizeof(RQ));
}

size_t requests_waiting(void)
{
    return RQ.n;
}

/* ---- the reply subscription ------------------------------------------ */

bool requests_is_reply(const char *topic, size_t len)
{
    return RQ.prefix_len && len >= RQ.prefix_len &&
           memcmp(topic, RQ.prefix, RQ.prefix_len) == 0;
}

void requests_broker_up(void)
{
    struct upstream *up = upstream_get();
    char *filter;
    int rc;

    if (upstream_version(up) != 5 || !RQ.prefix_len)
        return;
    if (!(filter = malloc(RQ.prefix_len + 2))) {
        log_error("out of memory: no reply subscription");
        RQ.reply = REPLY_REFUSED;
        return;
    }
    memcpy(filter, RQ.prefix, RQ.prefix_len);
    memcpy(filter + RQ.prefix_len, "#", 2);
    if (++RQ.reply_gen == 0)
        RQ.reply_gen = 1;
    /* no subscription identifier: its messages never meet the fan-out */
    rc = upstream_subscribe(up, filter, 0, 1, RQ.reply_gen);
    RQ.reply = rc == 0 ? REPLY_PENDING : REPLY_REFUSED;
    if (rc < 0)
        log_error("reply subscription %s: not made (%d)", filter, rc);
    free(filter);
}

bool requests_suback(uint64_t tag, int granted)
{
    if (tag >= REPLY_TAG_END)
        return false;
    if (RQ.reply != REPLY_PENDING || tag != RQ.reply_gen)
        return true;            /* settled by a loss, or an earlier one's */
    if (granted < 0) {
        RQ.reply = REPLY_REFUSED;
        log_error("the broker refused the reply subscription %s#: requests "
                  "fail until the next connection",
                  RQ.prefix);
    } else {
        RQ.reply = REPLY_OK;
    }
    return true;
}

void requests_broker_down(void)
{
    RQ.reply = REPLY_NONE;
    while (RQ.n)
        fail(RQ.heap[RQ.n - 1], "broker_unavailable",
             "the broker connection was lost before the response came");
    arm_timer();
}

/* ---- requests ---------------------------------------------------------- */

const char *requests_refusal(struct session *s, const char **why)
{
    if (upstream_version(upstream_get()) != 5) {
        *why = "request: the broker connection is MQTT 3.1.1";
        return "bad_request";
    }
    if (!upstream_is_connected(upstream_get()) || RQ.reply == REPLY_NONE) {
        *why = "the broker is not reachable";
        return "broker_unavailable";
    }
    if (RQ.reply == REPLY_REFUSED) {
        *why = "the broker refused the gateway's reply subscription";
        return "broker_unavailable";
    }
    if (session_requests(s)->n >= (size_t)conf()->limits.max_requests) {
        *why = "too many requests waiting";
        return "limit_exceeded";
    }
    return NULL;
}

uint64_t requests_new(struct session *s, const char *id, size_t id_len,
                      long timeout_ms, uint8_t **props, size_t *props_len)
{
    struct request_wait *w = malloc(sizeof(*w) + id_len);
    char topic[TOPIC_MAX_LEN + 1];
    struct props_item corr = {.kind = PROPS_CORRELATION};
    struct props_item rt = {.kind = PROPS_RESPONSE_TOPIC};
    size_t old_len = *props_len;

    if (!w)
        return 0;
    if (getrandom(w->corr, CORR_LEN, 0) != CORR_LEN) {
        log_error("getrandom: no correlation data for a request");
        free(w);
        return 0;
    }
    w->s = s;
    w->key = RQ.next_key++;
    w->deadline_ms = clock_now_ms() + (uint64_t)timeout_ms;
    w->id_len = id_len;
    memcpy(w->id, id, id_len);
    corr.a = (const char *)w->corr;
    corr.a_len = CORR_LEN;
    rt.a = topic;
    rt.a_len = (size_t)snprintf(topic, sizeof(topic), "%s%llu", RQ.prefix,
                                (unsigned long long)w->key);
    if (props_append(props, props_len, &corr) < 0 ||
        props_append(props, props_len, &rt) < 0 || insert(w) < 0) {
        *props_len = old_len;
        free(w);
        return 0;
    }
    metrics_add(MC_REQUESTS, 1);
    arm_timer();
    return w->key;
}

void requests_cancel(uint64_t key)
{
    struct request_wait *w = find(key);

    if (w) {
        drop(w);
        arm_timer();
    }
}

void requests_publish_failed(uint64_t key, int code)
{
    struct request_wait *w = find(key);

    if (!w)
        return;
    if (code == MQG_EREFUSED)
        fail(w, "broker_rejected", "the broker refused the request");
    else
        fail(w, "broker_unavailable",
             "the broker connection was lost before it took the request");
    arm_timer();
}

void requests_session_gone(struct session *s)
{
    struct requests_held *h = session_requests(s);

    while (h->head)
        drop(h->head);
    arm_timer();
}

/* The key that topic[0..len), under the prefix, names: 0 for none. */
static uint64_t key_of(const char *topic, size_t len)
{
    uint64_t k = 0;
    size_t i = RQ.prefix_len;

    if (len == i || len - i > 19 || topic[i] == '0')
        return 0;
    for (; i < len; i++) {
        if (topic[i] < '0' || topic[i] > '9')
            return 0;
        k = k * 10 + (uint64_t)(topic[i] - '0');
    }
    return k;
}

static bool correlation_is(const struct mb_event *ev,
                           const struct request_wait *w)
{
    struct props_item it;
    size_t off = 0;

    while (props_next(ev->props, ev->props_len, &off, &it) > 0)
        if (it.kind == PROPS_CORRELATION)
            return it.a_len == CORR_LEN &&
                   CRYPTO_memcmp(it.a, w->corr, CORR_LEN) == 0;
    return false;
}

void requests_deliver(const struct mb_event *ev)
{
    struct request_wait *w = find(key_of(ev->topic, ev->topic_len));
    enum payload_kind kind;
    const char *mount;
    size_t body, props, mlen;
    struct jbuf b;
    char *room;

    if (!w || !correlation_is(ev, w)) {
        metrics_add(MC_RESPONSES_IGNORED, 1);
        return;
    }
    kind = payload_classify(ev->payload, ev->payload_len);
    mount = session_mount(w->s, &mlen);
    body = payload_body(ev->payload, ev->payload_len, kind, NULL);
    props = props_json(ev->props, ev->props_len, mount, mlen,
                       PROPS_JSON_NO_CORRELATION, NULL);
    jbuf_init(&b);
    reply_begin(&b, "ok", w->id, w->id_len);
    jbuf_lit(&b, ",\"response\":{");
    if ((room = jbuf_room(&b, body + props))) {
        payload_body(ev->payload, ev->payload_len, kind, room);
        /* props_json() writes ",\"props\":...": the body comes first */
        props_json(ev->props, ev->props_len, mount, mlen,
                   PROPS_JSON_NO_CORRELATION, room + body);
    }
    jbuf_lit(&b, "}");
    reply_end(&b);
    session_send_jbuf(w->s, &b);
    drop(w);
    arm_timer();
}
