/* A brute-force model of the history store (common/history.h) and a driver
 * that runs a byte string as a sequence of operations on both, checking
 * after each one that they agree. Shared by tests/fuzz/fuzz_history.c and
 * tests/unit/check_history.c; define HM_CHECK(cond) before including.
 *
 * The model is a list of every message added, in seq order, each present,
 * dropped or gone, with the rules written the obvious way: a drop takes
 * the oldest present message (of the topic for the count bound, of all for
 * age and bytes), and a topic left with no present message makes every
 * message dropped from it "gone" (the store's global watermark). Time only
 * moves forward, so "older than max_age_s" is a prefix of the list.
 *
 * Operations read from the input, one byte each plus arguments: add a
 * message (topic, payload, metadata, qos, retained), let time pass, give
 * out seqs without storing them, record a broker outage, open a cursor
 * (filter, after, per_topic, limit), take messages from a cursor, close
 * it, hold and release messages beyond the cursor, ask whether a recovery
 * succeeds, change the limits, replace the store while cursors and held
 * messages live on, and compare every topic's stored messages. */
#ifndef MQG_HISTORY_MODEL_H
#define MQG_HISTORY_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "topic.h"

#ifndef HM_CHECK
#error "define HM_CHECK(cond) before including history_model.h"
#endif

#define HM_CURSORS 4
#define HM_HELD 8
#define HM_PAYLOAD_MAX 200

static const char *const hm_topics[] = {
    "a", "a/b", "a/c", "b", "$s/x", "a/b/c", "c/b", "a/"
};
#define HM_NTOPICS (sizeof(hm_topics) / sizeof(hm_topics[0]))

static const char *const hm_filters[] = {
    "#", "+", "a/#", "a/+", "+/b", "a/b", "$s/#", "+/+", "b", "a/b/#",
    "nomatch", "$s/x", "+/#", "a/b/c"
};
#define HM_NFILTERS (sizeof(hm_filters) / sizeof(hm_filters[0]))

/* Payload lengths; two of the same length with different bytes. */
static const size_t hm_lens[] = { 0, 5, 5, 33, HM_PAYLOAD_MAX };

enum hm_state { HM_PRESENT, HM_DROPPED };

struct hm_msg {
    unsigned topic;
    uint64_t seq, ts;
    int qos;
    bool retained;
    unsigned char payload[HM_PAYLOAD_MAX];
    size_t len;
    unsigned char meta[3];
    size_t meta_len;
    enum hm_state state;
    bool gone;
};

struct hm_cursor {
    struct history_cursor *c;
    size_t *exp; /* indices into hm.v, in the order to come */
    size_t n, i;
};

struct hm_held {
    struct history_msg *m;
    size_t idx;
};

struct hm {
    struct history *h;
    struct history_limits lim;
    struct hm_msg *v;
    size_t n, cap;
    size_t start;             /* v[start..] belong to the current store */
    size_t first;             /* v[first] is the oldest present, if any */
    size_t count[HM_NTOPICS]; /* present messages per topic */
    size_t marked[HM_NTOPICS];/* v[..marked) of the topic are gone if dropped */
    uint64_t seq, now, gap_mark;
    struct history_stats st;  /* what the store should report */
    struct hm_cursor cur[HM_CURSORS];
    struct hm_held held[HM_HELD];
    const uint8_t *in;
    size_t left;
};

static uint8_t hm_byte(struct hm *m)
{
    if (m->left == 0)
        return 0;
    m->left--;
    return *m->in++;
}

static size_t hm_cost(const struct hm_msg *x)
{
    return HISTORY_MSG_COST + strlen(hm_topics[x->topic]) + x->len +
           x->meta_len;
}

static size_t hm_count(const struct hm *m, unsigned topic)
{
    return m->count[topic];
}

static void hm_drop(struct hm *m, size_t i, uint64_t *counter)
{
    struct hm_msg *x = &m->v[i];

    x->state = HM_DROPPED;
    m->count[x->topic]--;
    (*counter)++;
    m->st.messages--;
    m->st.bytes -= hm_cost(x);
    if (hm_count(m, x->topic) > 0)
        return;
    m->st.topics--;
    for (size_t j = m->marked[x->topic]; j < m->n; j++)
        if (m->v[j].topic == x->topic && m->v[j].state == HM_DROPPED)
            m->v[j].gone = true;
    m->marked[x->topic] = m->n;
}

/* The oldest present message (of topic, or of all when topic < 0). */
static size_t hm_oldest(struct hm *m, int topic)
{
    while (m->first < m->n && m->v[m->first].state != HM_PRESENT)
        m->first++;
    for (size_t i = m->first; i < m->n; i++)
        if (m->v[i].state == HM_PRESENT &&
            (topic < 0 || m->v[i].topic == (unsigned)topic))
            return i;
    return SIZE_MAX;
}

static void hm_expire(struct hm *m)
{
    uint64_t age = (uint64_t)m->lim.max_age_s * 1000;
    size_t i;

    while ((i = hm_oldest(m, -1)) != SIZE_MAX && m->v[i].ts + age < m->now)
        hm_drop(m, i, &m->st.dropped_age);
}

static void hm_fit_count(struct hm *m)
{
    for (unsigned t = 0; t < HM_NTOPICS; t++)
        while (hm_count(m, t) > m->lim.messages)
            hm_drop(m, hm_oldest(m, (int)t), &m->st.dropped_count);
}

static void hm_fit_bytes(struct hm *m)
{
    while (m->st.bytes > m->lim.max_bytes)
        hm_drop(m, hm_oldest(m, -1), &m->st.dropped_size);
}

static bool hm_same(const struct hm_msg *a, const struct hm_msg *b)
{
    return a->len == b->len && a->meta_len == b->meta_len &&
           memcmp(a->payload, b->payload, a->len) == 0 &&
           memcmp(a->meta, b->meta, a->meta_len) == 0;
}

static void hm_check_stats(const struct hm *m)
{
    struct history_stats st;

    history_stats(m->h, &st);
    HM_CHECK(st.topics == m->st.topics);
    HM_CHECK(st.messages == m->st.messages);
    HM_CHECK(st.bytes == m->st.bytes);
    HM_CHECK(st.bytes <= m->lim.max_bytes);
    HM_CHECK(st.dropped_age == m->st.dropped_age);
    HM_CHECK(st.dropped_count == m->st.dropped_count);
    HM_CHECK(st.dropped_size == m->st.dropped_size);
    HM_CHECK(st.retained_dups == m->st.retained_dups);
}

/* What the store's message should hold: model message x. */
static void hm_check_msg(const struct hm_msg *x, const struct history_msg *sm)
{
    struct history_view v;
    const char *t = hm_topics[x->topic];

    history_msg_view(sm, &v);
    HM_CHECK(v.seq == x->seq);
    HM_CHECK(v.ts_ms == x->ts);
    HM_CHECK(v.qos == x->qos);
    HM_CHECK(v.retained == x->retained);
    HM_CHECK(v.topic_len == strlen(t) && memcmp(v.topic, t, v.topic_len) == 0);
    HM_CHECK(v.len == x->len && memcmp(v.payload, x->payload, x->len) == 0);
    HM_CHECK(v.meta_len == x->meta_len);
    HM_CHECK((v.meta == NULL) == (x->meta_len == 0));
    HM_CHECK(x->meta_len == 0 || memcmp(v.meta, x->meta, x->meta_len) == 0);
}

static void hm_add(struct hm *m)
{
    uint8_t b0 = hm_byte(m), b1 = hm_byte(m), b2 = hm_byte(m);
    struct hm_msg x = { 0 };
    struct history_in in;
    bool keep = true, fits;
    int rc;

    m->now += (b2 % 4) * 300;
    m->seq += 1 + b2 / 128;
    x.topic = b0 % HM_NTOPICS;
    x.seq = m->seq;
    x.ts = m->now;
    x.len = hm_lens[b1 % 5];
    memset(x.payload, b1 % 5 == 2 ? 'y' : 'x', x.len);
    x.meta_len = (b1 / 5) % 3;
    memset(x.meta, 'm', x.meta_len);
    x.qos = (b0 / HM_NTOPICS) % 3;
    x.retained = b1 & 0x80;
    in = (struct history_in){
        .topic = hm_topics[x.topic], .topic_len = strlen(hm_topics[x.topic]),
        .payload = x.payload, .len = x.len,
        .meta = x.meta_len ? x.meta : NULL, .meta_len = x.meta_len,
        .seq = x.seq, .ts_ms = x.ts, .qos = x.qos, .retained = x.retained
    };
    rc = history_add(m->h, &in);

    hm_expire(m);
    if (x.retained) {
        for (size_t i = m->n; i-- > m->start;)
            if (m->v[i].topic == x.topic && m->v[i].state == HM_PRESENT) {
                keep = !hm_same(&m->v[i], &x);
                break;
            }
        if (!keep)
            m->st.retained_dups++;
    }
    fits = hm_cost(&x) <= m->lim.max_bytes;
    HM_CHECK(rc == (keep && fits ? 1 : 0));
    if (!keep)
        return;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->v = realloc(m->v, m->cap * sizeof(*m->v));
        HM_CHECK(m->v != NULL);
    }
    if (!fits) {
        x.state = HM_DROPPED;
        x.gone = hm_count(m, x.topic) == 0;
        m->st.dropped_size++;
    } else {
        if (hm_count(m, x.topic) == 0)
            m->st.topics++;
        m->count[x.topic]++;
        m->st.messages++;
        m->st.bytes += hm_cost(&x);
    }
    m->v[m->n++] = x;
    hm_fit_count(m);
    hm_fit_bytes(m);
}

static bool hm_recoverable(const struct hm *m, const struct history_query *q)
{
    if (q->after > q->limit || q->after < m->gap_mark)
        return false;
    for (size_t i = m->start; i < m->n; i++) {
        const struct hm_msg *x = &m->v[i];
        const char *t = hm_topics[x->topic];

        if (x->state == HM_DROPPED && x->seq > q->after &&
            (x->gone ||
             topic_match(q->filter, q->filter_len, t, strlen(t))))
            return false;
    }
    return true;
}

/* The model's answer to q, as indices into m->v in seq order. */
static size_t hm_select(const struct hm *m, const struct history_query *q,
                        size_t *out)
{
    size_t n = 0;

    for (size_t i = m->n; i-- > m->start;) {
        const struct hm_msg *x = &m->v[i];
        const char *t = hm_topics[x->topic];
        size_t same = 0;

        if (x->state != HM_PRESENT || x->seq <= q->after ||
            x->seq > q->limit ||
            !topic_match(q->filter, q->filter_len, t, strlen(t)))
            continue;
        for (size_t k = 0; k < n; k++)
            same += m->v[out[k]].topic == x->topic;
        if (q->per_topic && same >= q->per_topic)
            continue;
        out[n++] = i;
    }
    for (size_t k = 0; k < n / 2; k++) {
        size_t tmp = out[k];

        out[k] = out[n - 1 - k];
        out[n - 1 - k] = tmp;
    }
    return n;
}

static void hm_query(struct hm *m, struct history_query *q)
{
    uint8_t b0 = hm_byte(m), b1 = hm_byte(m), b2 = hm_byte(m);

    q->filter = hm_filters[b0 % HM_NFILTERS];
    q->filter_len = strlen(q->filter);
    q->after = b1 < 64 ? 0 : m->seq >= b1 % 32 ? m->seq - b1 % 32 : 0;
    q->per_topic = b2 % 4 == 0 ? 0 : b2 % 4 == 1 ? 1 : (b2 / 4) % 6;
    q->limit = b2 >= 192 ? UINT64_MAX
                         : (m->seq > b2 % 3 ? m->seq - b2 % 3 : 0);
}

static void hm_open(struct hm *m)
{
    struct hm_cursor *k = &m->cur[hm_byte(m) % HM_CURSORS];
    struct history_query q;
    int rc;

    hm_query(m, &q);
    if (k->c)
        return;
    rc = history_cursor_new(m->h, &q, m->now, &k->c);
    HM_CHECK(rc == 0);
    hm_expire(m);
    k->exp = malloc((m->n + 1) * sizeof(*k->exp));
    HM_CHECK(k->exp != NULL);
    k->n = hm_select(m, &q, k->exp);
    k->i = 0;
    HM_CHECK(history_cursor_left(k->c) == k->n);
}

static void hm_close(struct hm_cursor *k)
{
    history_cursor_free(k->c);
    free(k->exp);
    memset(k, 0, sizeof(*k));
}

static void hm_keep(struct hm *m, struct history_msg *sm, size_t idx)
{
    for (size_t i = 0; i < HM_HELD; i++)
        if (!m->held[i].m) {
            m->held[i] = (struct hm_held){ sm, idx };
            return;
        }
    history_msg_unref(sm);
}

/* Takes one message from cursor k and checks it; keep: hold it on. */
static void hm_next(struct hm *m, struct hm_cursor *k, bool keep)
{
    struct history_msg *sm = NULL;
    int rc = history_cursor_next(k->c, &sm);

    if (k->i == k->n) {
        HM_CHECK(rc == 0);
        return;
    }
    HM_CHECK(rc == 1);
    hm_check_msg(&m->v[k->exp[k->i]], sm);
    if (keep)
        hm_keep(m, sm, k->exp[k->i]);
    else
        history_msg_unref(sm);
    k->i++;
    HM_CHECK(history_cursor_left(k->c) == k->n - k->i);
}

static void hm_step(struct hm *m)
{
    uint8_t b0 = hm_byte(m), b1 = hm_byte(m);
    struct hm_cursor *k = &m->cur[b0 % HM_CURSORS];

    for (unsigned s = 0; k->c && s < 1u + b1 % 8; s++)
        hm_next(m, k, b1 & 0x80);
}

static void hm_check_held(const struct hm *m)
{
    for (size_t i = 0; i < HM_HELD; i++)
        if (m->held[i].m)
            hm_check_msg(&m->v[m->held[i].idx], m->held[i].m);
}

/* Every topic's stored messages, through an exact-filter cursor. */
static void hm_check_all(struct hm *m)
{
    size_t *exp = malloc((m->n + 1) * sizeof(*exp));

    HM_CHECK(exp != NULL);
    for (unsigned t = 0; t < HM_NTOPICS; t++) {
        struct history_query q = { hm_topics[t], strlen(hm_topics[t]), 0, 0,
                                   UINT64_MAX };
        struct history_cursor *c;
        struct history_msg *sm;
        size_t n = hm_select(m, &q, exp);

        HM_CHECK(n == hm_count(m, t));
        HM_CHECK(history_cursor_new(m->h, &q, m->now, &c) == 0);
        for (size_t i = 0; i < n; i++) {
            HM_CHECK(history_cursor_next(c, &sm) == 1);
            hm_check_msg(&m->v[exp[i]], sm);
            history_msg_unref(sm);
        }
        HM_CHECK(history_cursor_next(c, &sm) == 0);
        history_cursor_free(c);
    }
    free(exp);
    hm_check_held(m);
}

static void hm_limits(struct hm *m, struct history_limits *lim)
{
    uint8_t b0 = hm_byte(m), b1 = hm_byte(m);

    lim->messages = 1 + b0 % 6;
    lim->max_age_s = 1 + (b0 / 6) % 5;
    lim->max_bytes = HISTORY_MSG_COST + 20 + (size_t)b1 * 4;
}

/* Runs data[0..size) as operations; returns when it is used up. */
static void hm_run(const uint8_t *data, size_t size)
{
    struct hm m;

    memset(&m, 0, sizeof(m));
    m.in = data;
    m.left = size;
    m.now = 1000;
    hm_limits(&m, &m.lim);
    m.h = history_new(&m.lim);
    HM_CHECK(m.h != NULL);
    while (m.left) {
        uint8_t op = hm_byte(&m), b;
        struct history_query q;

        switch (op % 16) {
        case 0: case 1: case 2: case 3: case 4:
            hm_add(&m);
            break;
        case 5:
            m.now += (uint64_t)hm_byte(&m) * 40;
            history_expire(m.h, m.now);
            hm_expire(&m);
            break;
        case 6:
            m.seq += 1 + hm_byte(&m) % 4;
            break;
        case 7:
            history_gap(m.h, m.seq);
            m.gap_mark = m.seq + 1;
            break;
        case 8:
            hm_open(&m);
            break;
        case 9: case 10:
            hm_step(&m);
            break;
        case 11:
            b = hm_byte(&m);
            if (m.cur[b % HM_CURSORS].c)
                hm_close(&m.cur[b % HM_CURSORS]);
            break;
        case 12:
            hm_query(&m, &q);
            q.per_topic = 0;
            b = history_recoverable(m.h, &q, m.now);
            hm_expire(&m);
            HM_CHECK(b == hm_recoverable(&m, &q));
            break;
        case 13:
            b = hm_byte(&m) % HM_HELD;
            history_msg_unref(m.held[b].m);
            m.held[b].m = NULL;
            break;
        case 14:
            hm_limits(&m, &m.lim);
            HM_CHECK(history_set_limits(m.h, &m.lim, m.now) == 0);
            hm_fit_count(&m);
            hm_expire(&m);
            hm_fit_bytes(&m);
            break;
        case 15:
            if (hm_byte(&m) & 1) {
                hm_check_all(&m);
                break;
            }
            /* a new store; cursors and held messages outlive the old */
            history_free(m.h);
            m.h = history_new(&m.lim);
            HM_CHECK(m.h != NULL);
            for (size_t i = m.start; i < m.n; i++)
                m.v[i].state = HM_DROPPED;
            m.start = m.first = m.n;
            memset(m.count, 0, sizeof(m.count));
            for (size_t t = 0; t < HM_NTOPICS; t++)
                m.marked[t] = m.n;
            m.gap_mark = 0;
            memset(&m.st, 0, sizeof(m.st));
            break;
        }
        hm_check_stats(&m);
    }
    hm_check_all(&m);
    for (size_t i = 0; i < HM_CURSORS; i++) {
        if (!m.cur[i].c)
            continue;
        while (m.cur[i].i < m.cur[i].n)
            hm_next(&m, &m.cur[i], false);
        hm_next(&m, &m.cur[i], false); /* the end */
        hm_close(&m.cur[i]);
    }
    for (size_t i = 0; i < HM_HELD; i++)
        history_msg_unref(m.held[i].m);
    history_free(m.h);
    free(m.v);
}

#endif
