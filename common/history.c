/* One file, over 500 lines, on purpose: the message layout, the per-topic
 * rings, the drop heap and the cursors all rest on the same invariants
 * (one allocation per message, oldest-first drops, cursors keeping what
 * they still owe alive); split, each part would need the others' insides.
 *
 * The layout, for the memory budget of a million messages:
 *
 * - A message is one allocation: a 32-byte header (topic, seq, ts and
 *   flags, references, payload length), then the metadata's length and
 *   bytes when it has any, then the payload.
 * - Each topic keeps its messages in a ring of pointers, oldest first, that
 *   grows up to `messages` entries. Ring positions are absolute (`base` is
 *   the position of the oldest), so that a cursor's place survives drops.
 * - Every drop takes a topic's oldest message: the count bound drops within
 *   a topic, and since seq grows across topics the oldest message of all is
 *   the oldest of its topic. A min-heap of the topics by their oldest seq
 *   therefore gives the order of age and byte drops without a list through
 *   the messages. Its array is also the list of topics held.
 * - A cursor keeps, per matching topic, the range of positions still to
 *   give and merges the topics with a min-heap by seq. A topic knows the
 *   cursors over it; when it drops a message one of them has still to give,
 *   that cursor keeps a reference to it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "topic.h"

#define HAS_META 1u
#define RING_MIN 4
#define NOT_IN_HEAP SIZE_MAX

struct topic;

struct history_msg {
    struct topic *topic;
    uint64_t seq;
    uint64_t ts_ms : 48, qos : 2, retained : 1, flags : 13;
    uint32_t refs;
    uint32_t len;         /* payload bytes */
    unsigned char data[]; /* [uint32 meta_len, meta] payload */
};

struct cstate;

struct topic {
    struct topic *hnext;      /* hash chain */
    struct history_msg **ring;
    uint64_t base;            /* position of ring[head] */
    uint64_t drop_seq;        /* the greatest seq dropped from this topic */
    uint64_t hash;
    uint32_t cap, head, count;
    uint32_t refs;            /* the table's + messages alive + cursor states */
    size_t heap_i;            /* in h->topics while count > 0, or NOT_IN_HEAP */
    struct cstate *cursors;   /* cursor states over this topic */
    uint16_t len;
    char name[];
};

/* A binary min-heap of (key, pointer); moved() learns where an entry went. */
struct hentry {
    uint64_t key;
    void *p;
};

struct heap {
    struct hentry *v;
    size_t n, cap;
    void (*moved)(void *p, size_t i);
};

struct history {
    struct history_limits lim;
    struct topic **buckets;
    size_t nbuckets;
    struct heap topics;       /* by oldest seq */
    uint64_t last_seq;        /* of the last history_add */
    uint64_t gap_mark;        /* recovery from below this fails (0: none) */
    uint64_t gone_seq;        /* greatest drop_seq of the topics let go */
    struct history_stats st;
};

/* One topic of a cursor: positions [pos, end) of t still to give, those
 * the topic dropped meanwhile first, in saved[]. */
struct cstate {
    struct topic *t;
    struct history_cursor *c;
    struct cstate *prev, *next; /* on t->cursors while listed */
    uint64_t pos, end;
    struct history_msg **saved;
    uint32_t shead, scount, scap;
    bool listed;
};

struct history_cursor {
    struct cstate *st;
    size_t nst;
    struct heap merge;        /* states with something left, by next seq */
    size_t left;
    bool lost;
};

/* Doubles the array that the pointer at v points to, of *cap elements of
 * size bytes (first: the size of an empty one). Returns 0, or -ENOMEM
 * (nothing changes). The pointer goes through memcpy: v may point to any
 * pointer type. */
static int grow(void *v, size_t *cap, size_t size, size_t first)
{
    size_t n = *cap ? *cap * 2 : first;
    void *old, *p;

    memcpy(&old, v, sizeof(old));
    if (!(p = realloc(old, n * size)))
        return -ENOMEM;
    memcpy(v, &p, sizeof(p));
    *cap = n;
    return 0;
}

/* --- heap ---------------------------------------------------------------- */

static void heap_set(struct heap *hp, size_t i, struct hentry e)
{
    hp->v[i] = e;
    if (hp->moved)
        hp->moved(e.p, i);
}

static void heap_up(struct heap *hp, size_t i)
{
    struct hentry e = hp->v[i];

    while (i > 0 && hp->v[(i - 1) / 2].key > e.key) {
        heap_set(hp, i, hp->v[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(hp, i, e);
}

static void heap_down(struct heap *hp, size_t i)
{
    struct hentry e = hp->v[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= hp->n)
            break;
        if (c + 1 < hp->n && hp->v[c + 1].key < hp->v[c].key)
            c++;
        if (hp->v[c].key >= e.key)
            break;
        heap_set(hp, i, hp->v[c]);
        i = c;
    }
    heap_set(hp, i, e);
}

/* Sets the key of entry i (up or down). */
static void heap_rekey(struct heap *hp, size_t i, uint64_t key)
{
    bool up = key < hp->v[i].key;

    hp->v[i].key = key;
    if (up)
        heap_up(hp, i);
    else
        heap_down(hp, i);
}

static int heap_push(struct heap *hp, uint64_t key, void *p)
{
    if (hp->n == hp->cap && grow(&hp->v, &hp->cap, sizeof(*hp->v), 64) < 0)
        return -ENOMEM;
    hp->v[hp->n++] = (struct hentry){ key, p };
    heap_up(hp, hp->n - 1);
    return 0;
}

static void heap_remove(struct heap *hp, size_t i)
{
    struct hentry last = hp->v[--hp->n];

    if (i == hp->n)
        return;
    hp->v[i] = last;
    heap_rekey(hp, i, last.key);
}

/* --- messages ------------------------------------------------------------ */

static uint32_t meta_len(const struct history_msg *m)
{
    uint32_t n = 0;

    if (m->flags & HAS_META)
        memcpy(&n, m->data, sizeof(n));
    return n;
}

static const unsigned char *payload_of(const struct history_msg *m)
{
    return m->data + (m->flags & HAS_META ? sizeof(uint32_t) + meta_len(m)
                                          : 0);
}

static size_t msg_cost(const struct history_msg *m)
{
    return HISTORY_MSG_COST + m->topic->len + m->len + meta_len(m);
}

static void topic_unref(struct topic *t)
{
    if (--t->refs == 0) {
        free(t->ring);
        free(t);
    }
}

void history_msg_ref(struct history_msg *m)
{
    m->refs++;
}

void history_msg_unref(struct history_msg *m)
{
    if (!m || --m->refs)
        return;
    topic_unref(m->topic);
    free(m);
}

void history_msg_view(const struct history_msg *m, struct history_view *v)
{
    uint32_t ml = meta_len(m);

    v->topic = m->topic->name;
    v->topic_len = m->topic->len;
    v->payload = payload_of(m);
    v->len = m->len;
    v->meta = ml ? m->data + sizeof(uint32_t) : NULL;
    v->meta_len = ml;
    v->seq = m->seq;
    v->ts_ms = m->ts_ms;
    v->qos = m->qos;
    v->retained = m->retained;
}

/* --- topics -------------------------------------------------------------- */

static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h;
}

static struct topic **bucket(const struct history *h, uint64_t hv)
{
    return &h->buckets[hv & (h->nbuckets - 1)];
}

static struct topic *topic_find(const struct history *h, const char *name,
                                size_t len, uint64_t hv)
{
    for (struct topic *t = *bucket(h, hv); t; t = t->hnext)
        if (t->hash == hv && t->len == len && memcmp(t->name, name, len) == 0)
            return t;
    return NULL;
}

static void grow_buckets(struct history *h)
{
    size_t n = h->nbuckets * 2;
    struct topic **b = calloc(n, sizeof(*b));

    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < h->nbuckets; i++) {
        struct topic *t = h->buckets[i], *next;

        for (; t; t = next) {
            next = t->hnext;
            t->hnext = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
        }
    }
    free(h->buckets);
    h->buckets = b;
    h->nbuckets = n;
}

static void topic_moved(void *p, size_t i)
{
    ((struct topic *)p)->heap_i = i;
}

static struct history_msg *ring_at(const struct topic *t, uint32_t k)
{
    uint32_t i = t->head + k;

    return t->ring[i >= t->cap ? i - t->cap : i];
}

static struct history_msg *oldest(const struct topic *t)
{
    return t->ring[t->head];
}

static struct history_msg *newest(const struct topic *t)
{
    return ring_at(t, t->count - 1);
}

/* Copies the ring into a new one of cap entries (>= count), oldest at 0. */
static int ring_resize(struct topic *t, uint32_t cap)
{
    struct history_msg **r = malloc(cap * sizeof(*r));

    if (!r)
        return -ENOMEM;
    for (uint32_t k = 0; k < t->count; k++)
        r[k] = ring_at(t, k);
    free(t->ring);
    t->ring = r;
    t->cap = cap;
    t->head = 0;
    return 0;
}

/* A topic with no messages leaves the table and the heap; what it dropped
 * joins the global watermark. Its struct lives while referenced. */
static void topic_let_go(struct history *h, struct topic *t)
{
    struct topic **pp = bucket(h, t->hash);

    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    if (t->heap_i != NOT_IN_HEAP)
        heap_remove(&h->topics, t->heap_i);
    if (t->drop_seq > h->gone_seq)
        h->gone_seq = t->drop_seq;
    free(t->ring);
    t->ring = NULL;
    t->cap = t->head = 0;
    h->st.topics--;
    topic_unref(t);
}

/* A new topic in the table, with no messages (not in the heap yet). */
static struct topic *topic_new(struct history *h, const char *name,
                               size_t len, uint64_t hv)
{
    struct topic *t = calloc(1, sizeof(*t) + len);

    if (!t)
        return NULL;
    memcpy(t->name, name, len);
    t->len = (uint16_t)len;
    t->hash = hv;
    t->heap_i = NOT_IN_HEAP;
    t->refs = 1; /* the table's */
    t->hnext = *bucket(h, hv);
    *bucket(h, hv) = t;
    h->st.topics++;
    if (h->st.topics > h->nbuckets)
        grow_buckets(h);
    return t;
}

/* --- dropping ------------------------------------------------------------ */

enum why { DROP_AGE, DROP_COUNT, DROP_SIZE, DROP_FREE };

/* Appends m to what s has still to give before its ring positions. */
static int save(struct cstate *s, struct history_msg *m)
{
    if (s->scount == s->scap) {
        uint32_t cap = s->scap ? s->scap * 2 : 8;
        struct history_msg **v = malloc(cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        for (uint32_t k = 0; k < s->scount; k++)
            v[k] = s->saved[(s->shead + k) % s->scap];
        free(s->saved);
        s->saved = v;
        s->scap = cap;
        s->shead = 0;
    }
    s->saved[(s->shead + s->scount++) % s->scap] = m;
    history_msg_ref(m);
    return 0;
}

/* Drops t's oldest message: cursors that still have to give it keep it. */
static void drop_oldest(struct history *h, struct topic *t, enum why why)
{
    struct history_msg *m = oldest(t);

    for (struct cstate *s = t->cursors; s; s = s->next) {
        if (s->pos != t->base || s->pos >= s->end)
            continue;
        if (save(s, m) < 0)
            s->c->lost = true;
        s->pos++;
    }
    t->head = t->head + 1 == t->cap ? 0 : t->head + 1;
    t->count--;
    t->base++;
    h->st.messages--;
    h->st.bytes -= msg_cost(m);
    switch (why) {
    case DROP_AGE:
        h->st.dropped_age++;
        break;
    case DROP_COUNT:
        h->st.dropped_count++;
        break;
    case DROP_SIZE:
        h->st.dropped_size++;
        break;
    case DROP_FREE:
        break;
    }
    if (m->seq > t->drop_seq)
        t->drop_seq = m->seq;
    if (t->count == 0) {
        topic_let_go(h, t);
    } else {
        heap_rekey(&h->topics, t->heap_i, oldest(t)->seq);
        if (t->cap > 16 && t->count <= t->cap / 4)
            (void)ring_resize(t, t->cap / 2); /* failing keeps the big one */
    }
    history_msg_unref(m);
}

static struct topic *oldest_topic(const struct history *h)
{
    return h->topics.n ? h->topics.v[0].p : NULL;
}

void history_expire(struct history *h, uint64_t now_ms)
{
    uint64_t age = (uint64_t)h->lim.max_age_s * 1000;
    struct topic *t;

    while ((t = oldest_topic(h)) && oldest(t)->ts_ms + age < now_ms)
        drop_oldest(h, t, DROP_AGE);
}

static void fit_bytes(struct history *h)
{
    while (h->st.bytes > h->lim.max_bytes)
        drop_oldest(h, oldest_topic(h), DROP_SIZE);
}

/* A message of t (NULL: of a topic not held) that could not be stored:
 * recovery over its seq must fail. */
static void dropped_unstored(struct history *h, struct topic *t,
                             uint64_t seq)
{
    uint64_t *mark = t ? &t->drop_seq : &h->gone_seq;

    if (seq > *mark)
        *mark = seq;
}

/* --- the store ----------------------------------------------------------- */

static bool limits_ok(const struct history_limits *lim)
{
    return lim->messages >= 1 && lim->messages <= HISTORY_MESSAGES_MAX &&
           lim->max_age_s >= 1 && lim->max_bytes >= 1;
}

struct history *history_new(const struct history_limits *lim)
{
    struct history *h;

    if (!limits_ok(lim) || !(h = calloc(1, sizeof(*h))))
        return NULL;
    h->lim = *lim;
    h->topics.moved = topic_moved;
    h->nbuckets = 256;
    if (!(h->buckets = calloc(h->nbuckets, sizeof(*h->buckets)))) {
        free(h);
        return NULL;
    }
    return h;
}

void history_free(struct history *h)
{
    struct topic *t;

    if (!h)
        return;
    while ((t = oldest_topic(h)))
        drop_oldest(h, t, DROP_FREE);
    free(h->topics.v);
    free(h->buckets);
    free(h);
}

/* The topic's oldest beyond `messages`; never all of them. */
static void fit_count(struct history *h, struct topic *t)
{
    while (t->count > h->lim.messages)
        drop_oldest(h, t, DROP_COUNT);
}

int history_set_limits(struct history *h, const struct history_limits *lim,
                       uint64_t now_ms)
{
    if (!limits_ok(lim))
        return -EINVAL;
    h->lim = *lim;
    /* The table, not the heap: count drops reorder the heap, not chains. */
    for (size_t i = 0; i < h->nbuckets; i++)
        for (struct topic *t = h->buckets[i]; t; t = t->hnext)
            fit_count(h, t);
    history_expire(h, now_ms);
    fit_bytes(h);
    return 0;
}

void history_gap(struct history *h, uint64_t seq)
{
    if (seq + 1 > h->gap_mark)
        h->gap_mark = seq + 1;
}

void history_stats(const struct history *h, struct history_stats *st)
{
    *st = h->st;
}

static bool same_body(const struct history_msg *m, const struct history_in *in)
{
    size_t ml = meta_len(m);

    return m->len == in->len && ml == in->meta_len &&
           (in->len == 0 || memcmp(payload_of(m), in->payload, in->len) == 0) &&
           (ml == 0 || memcmp(m->data + sizeof(uint32_t), in->meta, ml) == 0);
}

static struct history_msg *msg_new(struct topic *t, const struct history_in *in)
{
    size_t extra = in->meta_len ? sizeof(uint32_t) + in->meta_len : 0;
    struct history_msg *m = malloc(sizeof(*m) + extra + in->len);

    if (!m)
        return NULL;
    m->topic = t;
    m->seq = in->seq;
    m->ts_ms = in->ts_ms;
    m->qos = (unsigned)in->qos;
    m->retained = in->retained;
    m->flags = in->meta_len ? HAS_META : 0;
    m->refs = 1;
    m->len = (uint32_t)in->len;
    if (in->meta_len) {
        uint32_t ml = (uint32_t)in->meta_len;

        memcpy(m->data, &ml, sizeof(ml));
        memcpy(m->data + sizeof(ml), in->meta, ml);
    }
    if (in->len)
        memcpy(m->data + extra, in->payload, in->len);
    t->refs++;
    return m;
}

static bool in_ok(const struct history *h, const struct history_in *in)
{
    return in->topic_len >= 1 && in->topic_len <= TOPIC_MAX_LEN &&
           in->seq > h->last_seq && in->ts_ms <= HISTORY_TS_MAX &&
           in->qos >= 0 && in->qos <= 2 && in->len <= UINT32_MAX / 2 &&
           in->meta_len <= UINT32_MAX / 2 && (in->payload || !in->len) &&
           (in->meta || !in->meta_len);
}

/* Appends m to t's ring (growing it up to `messages`, one more while the
 * caller drops the oldest). Returns 0 or -ENOMEM (nothing changes). */
static int ring_push(struct history *h, struct topic *t,
                     struct history_msg *m)
{
    uint32_t i;

    if (t->count == t->cap) {
        uint32_t cap = t->cap < RING_MIN ? RING_MIN : t->cap * 2;

        if (cap > h->lim.messages)
            cap = h->lim.messages;
        if (cap < t->count + 1)
            cap = t->count + 1;
        if (ring_resize(t, cap) < 0)
            return -ENOMEM;
    }
    if (t->count == 0 && heap_push(&h->topics, m->seq, t) < 0)
        return -ENOMEM;
    i = t->head + t->count;
    t->ring[i >= t->cap ? i - t->cap : i] = m;
    t->count++;
    h->st.messages++;
    h->st.bytes += msg_cost(m);
    return 0;
}

int history_add(struct history *h, const struct history_in *in)
{
    uint64_t hv;
    struct topic *t;
    struct history_msg *m;

    if (!in_ok(h, in))
        return -EINVAL;
    h->last_seq = in->seq;
    history_expire(h, in->ts_ms);
    hv = hash(in->topic, in->topic_len);
    t = topic_find(h, in->topic, in->topic_len, hv);
    if (in->retained && t && same_body(newest(t), in)) {
        h->st.retained_dups++;
        return 0;
    }
    if (HISTORY_MSG_COST + in->topic_len + in->len + in->meta_len >
        h->lim.max_bytes) {
        h->st.dropped_size++;
        dropped_unstored(h, t, in->seq);
        return 0;
    }
    if (!t && !(t = topic_new(h, in->topic, in->topic_len, hv)))
        goto nomem;
    if (!(m = msg_new(t, in)))
        goto nomem;
    if (ring_push(h, t, m) < 0) {
        history_msg_unref(m);
        goto nomem;
    }
    fit_count(h, t);
    fit_bytes(h);
    return 1;
nomem:
    dropped_unstored(h, t, in->seq);
    if (t && t->count == 0)
        topic_let_go(h, t);
    return -ENOMEM;
}

/* --- queries ------------------------------------------------------------- */

/* Calls fn(t, arg) for every topic held that filter matches, until fn
 * returns non-zero; returns that, or 0. fn may not drop messages. */
static int each_match(struct history *h, const char *filter, size_t flen,
                      int (*fn)(struct topic *t, void *arg), void *arg)
{
    int rc = 0;

    if (!memchr(filter, '+', flen) && !memchr(filter, '#', flen)) {
        struct topic *t = topic_find(h, filter, flen, hash(filter, flen));

        return t ? fn(t, arg) : 0;
    }
    for (size_t i = 0; i < h->topics.n && !rc; i++) {
        struct topic *t = h->topics.v[i].p;

        if (topic_match(filter, flen, t->name, t->len))
            rc = fn(t, arg);
    }
    return rc;
}

bool history_holds(const struct history *h, const char *topic, size_t len)
{
    return topic_find(h, topic, len, hash(topic, len)) != NULL;
}

static int dropped_after(struct topic *t, void *arg)
{
    return t->drop_seq > *(const uint64_t *)arg;
}

bool history_recoverable(struct history *h, const struct history_query *q,
                         uint64_t now_ms)
{
    uint64_t after = q->after;

    if (topic_filter_check(q->filter, q->filter_len) < 0)
        return false;
    history_expire(h, now_ms);
    if (after > q->limit || after < h->gap_mark || h->gone_seq > after)
        return false;
    return each_match(h, q->filter, q->filter_len, dropped_after, &after) ==
           0;
}

/* How many of t's messages have seq <= x. */
static uint32_t count_upto(const struct topic *t, uint64_t x)
{
    uint32_t lo = 0, hi = t->count;

    if (newest(t)->seq <= x)
        return t->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (ring_at(t, mid)->seq <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct collect {
    const struct history_query *q;
    struct history_cursor *c;
    size_t cap;
};

/* Adds t's part of the query to the cursor (not listed on t yet). */
static int collect(struct topic *t, void *arg)
{
    struct collect *k = arg;
    struct history_cursor *c = k->c;
    uint32_t hi = count_upto(t, k->q->limit);
    uint32_t lo = k->q->after ? count_upto(t, k->q->after) : 0;

    if (k->q->per_topic && hi > lo && hi - lo > k->q->per_topic)
        lo = hi - k->q->per_topic;
    if (lo >= hi)
        return 0;
    if (c->nst == k->cap && grow(&c->st, &k->cap, sizeof(*c->st), 16) < 0)
        return -ENOMEM;
    c->st[c->nst++] = (struct cstate){
        .t = t, .c = c, .pos = t->base + lo, .end = t->base + hi
    };
    c->left += hi - lo;
    return 0;
}

static struct history_msg *peek(const struct cstate *s)
{
    if (s->scount)
        return s->saved[s->shead];
    return ring_at(s->t, (uint32_t)(s->pos - s->t->base));
}

static void unlist(struct cstate *s)
{
    struct topic *t = s->t;

    if (!s->listed)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        t->cursors = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->listed = false;
    topic_unref(t);
}

int history_cursor_new(struct history *h, const struct history_query *q,
                       uint64_t now_ms, struct history_cursor **out)
{
    struct history_cursor *c;
    struct collect k = { q, NULL, 0 };

    if (topic_filter_check(q->filter, q->filter_len) < 0)
        return -EINVAL;
    history_expire(h, now_ms);
    if (!(c = calloc(1, sizeof(*c))))
        return -ENOMEM;
    k.c = c;
    if (each_match(h, q->filter, q->filter_len, collect, &k) < 0 ||
        (c->nst && !(c->merge.v = malloc(c->nst * sizeof(*c->merge.v))))) {
        free(c->st);
        free(c);
        return -ENOMEM;
    }
    c->merge.cap = c->nst;
    for (size_t i = 0; i < c->nst; i++) {
        struct cstate *s = &c->st[i];

        s->next = s->t->cursors;
        if (s->next)
            s->next->prev = s;
        s->t->cursors = s;
        s->listed = true;
        s->t->refs++;
        (void)heap_push(&c->merge, peek(s)->seq, s); /* room for all */
    }
    *out = c;
    return 0;
}

size_t history_cursor_left(const struct history_cursor *c)
{
    return c->left;
}

int history_cursor_next(struct history_cursor *c, struct history_msg **out)
{
    struct cstate *s;
    struct history_msg *m;

    if (c->lost)
        return -ENOMEM;
    if (c->merge.n == 0)
        return 0;
    s = c->merge.v[0].p;
    if (s->scount) {
        m = s->saved[s->shead]; /* its reference passes to the caller */
        s->shead = s->shead + 1 == s->scap ? 0 : s->shead + 1;
        s->scount--;
    } else {
        m = peek(s);
        history_msg_ref(m);
        s->pos++;
    }
    c->left--;
    if (s->scount == 0 && s->pos >= s->end) {
        unlist(s);
        heap_remove(&c->merge, 0);
    } else {
        heap_rekey(&c->merge, 0, peek(s)->seq);
    }
    *out = m;
    return 1;
}

void history_cursor_free(struct history_cursor *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nst; i++) {
        struct cstate *s = &c->st[i];

        for (; s->scount; s->scount--) {
            history_msg_unref(s->saved[s->shead]);
            s->shead = s->shead + 1 == s->scap ? 0 : s->shead + 1;
        }
        free(s->saved);
        unlist(s);
    }
    free(c->merge.v);
    free(c->st);
    free(c);
}
