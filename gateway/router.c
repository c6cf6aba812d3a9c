#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "clock.h"
#include "frame.h"
#include "gateway.h"
#include "jbuf.h"
#include "log.h"
#include "mailbox.h"
#include "metrics.h"
#include "payload.h"
#include "reply.h"
#include "router.h"
#include "session.h"
#include "topic.h"
#include "upstream.h"

struct sub_reply {
    struct sub_reply *next;
    uint8_t qos;
    size_t id_len;
    char id[];
};

/* One session's hold on one filter. */
struct sub {
    struct rfilter *f;
    struct session *s;
    struct sub *f_prev, *f_next;  /* the filter's holders */
    struct sub *s_next;           /* the session's holds */
    uint32_t want_gen;            /* replay retained of this SUBSCRIBE */
    uint8_t qos;
    bool live;                    /* receives live messages */
    struct sub_reply *replies;    /* sub requests awaiting the SUBACK */
};

struct rnode {
    struct rnode *parent;
    struct rnode **kids;          /* literal levels */
    uint32_t n_kids, cap_kids;
    struct rnode *plus, *hash;
    struct rfilter *filter;       /* a filter ends here */
    size_t level_len;
    char level[];
};

struct rfilter {
    struct rnode *node;
    struct rfilter *id_next;      /* subid hash chain */
    uint32_t subid;
    uint32_t req_gen, acked_gen;
    bool in_flight;               /* a SUBSCRIBE awaits its SUBACK */
    bool ever_acked;
    bool restoring;               /* its re-SUBSCRIBE after a reconnect */
    bool again;                   /* SUBSCRIBE once more after this SUBACK */
    uint8_t want_qos;             /* the highest QoS any holder asked */
    uint8_t flight_qos;           /* the QoS of the SUBSCRIBE in flight */
    uint8_t granted;
    struct sub *subs;
    size_t n_subs;
    size_t len;
    char str[];
};

#define ID_BUCKETS 4096

static struct {
    struct rnode *root;
    struct rnode *shared;         /* "$share/GROUP/filter" as GROUP/filter */
    struct rfilter *by_id[ID_BUCKETS];
    uint32_t next_subid;
    size_t n_filters, n_subs;
    struct rfilter *last_acked;   /* retained messages follow its SUBACK */
    size_t restoring;             /* re-SUBSCRIBEs after a reconnect */
    uint64_t seq;                 /* per broker message delivered */
} R;

/* ---- trie --------------------------------------------------------------- */

static struct rnode *node_new(struct rnode *parent, const char *lvl,
                              size_t len)
{
    struct rnode *n = calloc(1, sizeof(*n) + len + 1);

    if (!n)
        return NULL;
    n->parent = parent;
    n->level_len = len;
    memcpy(n->level, lvl, len);
    return n;
}

static struct rnode *kid_find(const struct rnode *n, const char *lvl,
                              size_t len)
{
    for (uint32_t i = 0; i < n->n_kids; i++) {
        struct rnode *k = n->kids[i];

        if (k->level_len == len && memcmp(k->level, lvl, len) == 0)
            return k;
    }
    return NULL;
}

static struct rnode *kid_add(struct rnode *n, const char *lvl, size_t len)
{
    struct rnode *k;

    if (len == 1 && lvl[0] == '+')
        return n->plus ? n->plus : (n->plus = node_new(n, lvl, len));
    if (len == 1 && lvl[0] == '#')
        return n->hash ? n->hash : (n->hash = node_new(n, lvl, len));
    if ((k = kid_find(n, lvl, len)))
        return k;
    if (n->n_kids == n->cap_kids) {
        uint32_t cap = n->cap_kids ? n->cap_kids * 2 : 2;
        struct rnode **kids = realloc(n->kids, cap * sizeof(*kids));

        if (!kids)
            return NULL;
        n->kids = kids;
        n->cap_kids = cap;
    }
    if (!(k = node_new(n, lvl, len)))
        return NULL;
    n->kids[n->n_kids++] = k;
    return k;
}

/* The node of filter f[0..len) when it exists (create false) or after
 * creating the path (create true). */
static struct rnode *node_path(const char *f, size_t len, bool create)
{
    struct rnode *n = R.root;
    size_t pos = 0;

    if (len > 7 && memcmp(f, "$share/", 7) == 0) {
        /* a shared subscription matches topics by the filter after its
         * group: kept in a trie of its own, first level the group */
        n = R.shared;
        f += 7;
        len -= 7;
    }
    while (n && pos <= len) {
        const char *slash = memchr(f + pos, '/', len - pos);
        size_t end = slash ? (size_t)(slash - f) : len;
        const char *lvl = f + pos;
        size_t ll = end - pos;

        if (create)
            n = kid_add(n, lvl, ll);
        else if (ll == 1 && lvl[0] == '+')
            n = n->plus;
        else if (ll == 1 && lvl[0] == '#')
            n = n->hash;
        else
            n = kid_find(n, lvl, ll);
        pos = end + 1;
    }
    return n;
}

static void node_prune(struct rnode *n)
{
    while (n && n->parent && !n->filter && !n->n_kids && !n->plus &&
           !n->hash) {
        struct rnode *p = n->parent;

        if (p->plus == n) {
            p->plus = NULL;
        } else if (p->hash == n) {
            p->hash = NULL;
        } else {
            for (uint32_t i = 0; i < p->n_kids; i++)
                if (p->kids[i] == n) {
                    p->kids[i] = p->kids[--p->n_kids];
                    break;
                }
        }
        free(n->kids);
        free(n);
        n = p;
    }
}

static void node_free_all(struct rnode *n)
{
    if (!n)
        return;
    for (uint32_t i = 0; i < n->n_kids; i++)
        node_free_all(n->kids[i]);
    node_free_all(n->plus);
    node_free_all(n->hash);
    free(n->kids);
    free(n);
}

/* ---- filters ------------------------------------------------------------ */

static struct rfilter *filter_by_id(uint32_t id)
{
    struct rfilter *f = R.by_id[id % ID_BUCKETS];

    while (f && f->subid != id)
        f = f->id_next;
    return f;
}

static struct rfilter *filter_find(const char *s, size_t len)
{
    struct rnode *n = node_path(s, len, false);

    return n ? n->filter : NULL;
}

static struct rfilter *filter_create(const char *s, size_t len)
{
    struct rnode *n = node_path(s, len, true);
    struct rfilter *f;

    if (!n)
        return NULL;
    if (!(f = calloc(1, sizeof(*f) + len + 1))) {
        node_prune(n);
        return NULL;
    }
    memcpy(f->str, s, len);
    f->len = len;
    f->node = n;
    /* MQTT 5 subscription identifiers run 1..268435455. */
    if (++R.next_subid > 268435455)
        R.next_subid = 1;
    f->subid = R.next_subid;
    f->id_next = R.by_id[f->subid % ID_BUCKETS];
    R.by_id[f->subid % ID_BUCKETS] = f;
    n->filter = f;
    R.n_filters++;
    return f;
}

/* One filter of the reconnect's restoration is settled; the last one
 * tells the sessions the broker is up. */
static void restore_done(struct rfilter *f)
{
    if (!f->restoring)
        return;
    f->restoring = false;
    if (R.restoring && --R.restoring == 0)
        session_set_broker_up(true);
}

static void filter_destroy(struct rfilter *f, bool unsubscribe)
{
    restore_done(f);
    struct rfilter **pp = &R.by_id[f->subid % ID_BUCKETS];

    if (unsubscribe && (f->ever_acked || f->in_flight))
        upstream_unsubscribe(upstream_get(), f->str);
    while (*pp != f)
        pp = &(*pp)->id_next;
    *pp = f->id_next;
    f->node->filter = NULL;
    node_prune(f->node);
    if (R.last_acked == f)
        R.last_acked = NULL;
    R.n_filters--;
    free(f);
}

/* A SUBSCRIBE's tag names its filter and which request of that filter it
 * answers: the subscription identifier in the high 32 bits, the request
 * generation in the low ones. A uint64_t on every platform, never a
 * pointer, which has 32 bits on some. */
static uint64_t sub_tag(uint32_t subid, uint32_t gen)
{
    return (uint64_t)subid << 32 | gen;
}

static uint32_t tag_subid(uint64_t tag)
{
    return (uint32_t)(tag >> 32);
}

static uint32_t tag_gen(uint64_t tag)
{
    return (uint32_t)(tag & UINT32_MAX);
}

/* Upstream, a filter is subscribed at the highest QoS its holders asked
 * for, so that the QoS a message arrives at is the one a subscriber of
 * that QoS would see. */
static int filter_send_subscribe(struct rfilter *f)
{
    f->req_gen++;
    f->flight_qos = f->want_qos;
    if (upstream_subscribe(upstream_get(), f->str, f->subid, f->want_qos,
                           sub_tag(f->subid, f->req_gen)) < 0)
        return -1;
    f->in_flight = true;
    return 0;
}

/* ---- subs --------------------------------------------------------------- */

static void sub_answer(struct sub *sub, int granted)
{
    struct sub_reply *r;

    while ((r = sub->replies)) {
        int q = r->qos < granted ? r->qos : granted;

        sub->replies = r->next;
        if (granted < 0) {
            session_reply_error(sub->s, r->id, r->id_len,
                                "broker_unavailable",
                                "the broker refused the subscription");
        } else if (r->id_len) {
            struct jbuf b;

            jbuf_init(&b);
            reply_begin(&b, "ok", r->id, r->id_len);
            jbuf_lit(&b, ",\"qos\":");
            jbuf_int(&b, q);
            reply_end(&b);
            session_send_jbuf(sub->s, &b);
        }
        free(r);
    }
}

static void sub_unlink(struct sub *sub)
{
    struct rfilter *f = sub->f;
    struct session *s = sub->s;
    struct sub **pp = &s->subs;

    if (sub->f_prev)
        sub->f_prev->f_next = sub->f_next;
    else
        f->subs = sub->f_next;
    if (sub->f_next)
        sub->f_next->f_prev = sub->f_prev;
    f->n_subs--;
    while (*pp != sub)
        pp = &(*pp)->s_next;
    *pp = sub->s_next;
    s->n_subs--;
    R.n_subs--;
    while (sub->replies) {
        struct sub_reply *r = sub->replies;

        sub->replies = r->next;
        free(r);
    }
    free(sub);
    if (f->n_subs == 0)
        filter_destroy(f, true);
}

static struct sub *sub_of(const struct session *s, const struct rfilter *f)
{
    struct sub *sub;

    for (sub = s->subs; sub; sub = sub->s_next)
        if (sub->f == f)
            return sub;
    return NULL;
}

bool router_session_holds(const struct session *s, const char *full,
                          size_t len)
{
    struct rfilter *f = filter_find(full, len);

    return f && sub_of(s, f);
}

void router_subscribe(struct session *s, const char *full, size_t len,
                      int qos, const char *id, size_t id_len)
{
    struct rfilter *f = filter_find(full, len);
    struct sub *sub = f ? sub_of(s, f) : NULL;
    struct sub_reply *r;

    if (!f && !(f = filter_create(full, len)))
        goto oom;
    if (!sub) {
        if (!(sub = calloc(1, sizeof(*sub)))) {
            if (!f->n_subs)
                filter_destroy(f, false);
            goto oom;
        }
        sub->f = f;
        sub->s = s;
        sub->f_next = f->subs;
        if (f->subs)
            f->subs->f_prev = sub;
        f->subs = sub;
        f->n_subs++;
        sub->s_next = s->subs;
        s->subs = sub;
        s->n_subs++;
        R.n_subs++;
    }
    sub->qos = (uint8_t)qos;
    if (!(r = malloc(sizeof(*r) + id_len))) {
        if (!sub->live)
            sub_unlink(sub);
        goto oom;
    }
    r->next = NULL;
    r->qos = (uint8_t)qos;
    r->id_len = id_len;
    memcpy(r->id, id, id_len);
    {
        struct sub_reply **pp = &sub->replies;

        while (*pp)
            pp = &(*pp)->next;
        *pp = r;
    }

    if (qos > f->want_qos)
        f->want_qos = (uint8_t)qos;
    /* One SUBSCRIBE in flight per filter: holders that join while it is
     * under way share its SUBACK and its retained replay, which reflects
     * the broker's state after they joined; one that needs a higher QoS
     * waits for the next SUBSCRIBE, sent when this one is answered. */
    if (upstream_is_connected(upstream_get())) {
        if (f->in_flight && qos <= f->flight_qos) {
            sub->want_gen = f->req_gen;
            return;
        }
        if (f->in_flight) {
            f->again = true;
            sub->want_gen = f->req_gen + 1;
            return;
        }
        if (filter_send_subscribe(f) == 0) {
            sub->want_gen = f->req_gen;
            return;
        }
    }
    /* Broker away: the filter is subscribed (and its retained messages
     * replayed) when the connection comes back. */
    sub->live = true;
    sub_answer(sub, qos);
    return;
oom:
    session_reply_error(s, id, id_len, "internal", "out of memory");
}

void router_unsubscribe(struct session *s, const char *full, size_t len)
{
    struct rfilter *f = filter_find(full, len);
    struct sub *sub = f ? sub_of(s, f) : NULL;

    if (!sub)
        return;
    /* A sub request still waiting for its SUBACK gets its one answer. */
    sub_answer(sub, sub->qos);
    sub_unlink(sub);
}

void router_session_gone(struct session *s)
{
    while (s->subs)
        sub_unlink(s->subs);
}

/* The SUBACK of f is in: the next SUBSCRIBE, when holders wait for one.
 * If it cannot go, they are treated as when the broker is away. */
static void subscribe_again(struct rfilter *f)
{
    if (!f->again)
        return;
    f->again = false;
    if (filter_send_subscribe(f) == 0)
        return;
    for (struct sub *sub = f->subs; sub; sub = sub->f_next)
        if (sub->want_gen == f->req_gen) {
            sub->live = true;
            sub_answer(sub, sub->qos);
        }
}

void router_suback(uint64_t tag, int granted)
{
    uint32_t gen = tag_gen(tag);
    struct rfilter *f = filter_by_id(tag_subid(tag));
    struct sub *sub, *next;

    if (!f || gen != f->req_gen || !f->in_flight)
        return;
    f->in_flight = false;
    restore_done(f);
    if (granted < 0) {
        log_warn("broker refused subscription to %s", f->str);
        for (sub = f->subs; sub; sub = next) {
            next = sub->f_next;
            if (sub->want_gen != gen)
                continue;
            sub_answer(sub, -1);
            if (!sub->live) {
                if (f->n_subs == 1) {
                    /* the filter goes with its last holder */
                    sub_unlink(sub);
                    return;
                }
                sub_unlink(sub);
            }
        }
        subscribe_again(f);
        return;
    }
    f->ever_acked = true;
    f->acked_gen = gen;
    f->granted = (uint8_t)granted;
    R.last_acked = f;
    for (sub = f->subs; sub; sub = sub->f_next) {
        if (sub->want_gen != gen)
            continue;
        sub->live = true;
        sub_answer(sub, granted);
    }
    subscribe_again(f);
}

size_t router_broker_up(void)
{
    size_t sent = 0;

    /* Paho does not restore subscriptions: every filter is subscribed
     * again, and every holder gets the retained replay. */
    R.restoring = 0;
    for (size_t b = 0; b < ID_BUCKETS; b++)
        for (struct rfilter *f = R.by_id[b]; f; f = f->id_next) {
            f->in_flight = false;
            f->again = false;
            if (filter_send_subscribe(f) < 0)
                continue;
            f->restoring = true;
            sent++;
            for (struct sub *sub = f->subs; sub; sub = sub->f_next)
                sub->want_gen = f->req_gen;
        }
    R.restoring = sent;
    return sent;
}

void router_broker_down(void)
{
    R.last_acked = NULL;
    R.restoring = 0;
    for (size_t b = 0; b < ID_BUCKETS; b++)
        for (struct rfilter *f = R.by_id[b]; f; f = f->id_next) {
            f->in_flight = false;
            f->restoring = false;
            f->again = false;
            for (struct sub *sub = f->subs; sub; sub = sub->f_next) {
                sub->live = true;
                sub->want_gen = 0;
                sub_answer(sub, sub->qos);
            }
        }
}

void router_session_recheck(struct session *s)
{
    struct sub *sub = s->subs, *next;

    for (; sub; sub = next) {
        /* a filter made under another mount is not covered */
        char *rel = malloc(sub->f->len + 1);
        long rlen = rel ? topic_unmount(s->mount, s->mount_len, sub->f->str,
                                        sub->f->len, rel)
                        : -1;
        int q = rlen > 0 ? acl_subscribe_qos(s->roles, s->n_roles, s->user,
                                             rel, (size_t)rlen)
                         : -1;

        next = sub->s_next;
        if (q < 0) {
            const char *shown = rlen > 0 ? rel : sub->f->str;
            size_t slen = rlen > 0 ? (size_t)rlen : sub->f->len;

            session_reply_error(s, NULL, 0, "forbidden",
                                "subscription to %.*s withdrawn: the roles "
                                "no longer allow it",
                                (int)(slen > 200 ? 200 : slen), shown);
            sub_answer(sub, sub->qos);
            sub_unlink(sub);
        } else if (sub->qos > q) {
            sub->qos = (uint8_t)q;
        }
        free(rel);
    }
}

size_t router_filter_count(void)
{
    return R.n_filters;
}

size_t router_sub_count(void)
{
    return R.n_subs;
}

/* ---- fan-out ------------------------------------------------------------ */

struct fvec {
    struct rfilter **v;
    size_t n, cap;
    struct rfilter *inline_v[32];
};

static void fvec_push(struct fvec *fv, struct rfilter *f)
{
    if (fv->n == fv->cap) {
        size_t cap = fv->cap * 2;
        struct rfilter **v = fv->v == fv->inline_v
                                 ? malloc(cap * sizeof(*v))
                                 : realloc(fv->v, cap * sizeof(*v));

        if (!v)
            return; /* out of memory: this match is lost, and logged */
        if (fv->v == fv->inline_v)
            memcpy(v, fv->inline_v, sizeof(fv->inline_v));
        fv->v = v;
        fv->cap = cap;
    }
    fv->v[fv->n++] = f;
}

/* Collects the filters matching topic t[0..len), from the level at pos. */
static void match_walk(const struct rnode *n, const char *t, size_t len,
                       size_t pos, bool wild_ok, struct fvec *out)
{
    const struct rnode *k;
    const char *slash;
    size_t end;

    if (n->hash && n->hash->filter && wild_ok)
        fvec_push(out, n->hash->filter);
    if (pos > len) {
        if (n->filter)
            fvec_push(out, n->filter);
        return;
    }
    slash = memchr(t + pos, '/', len - pos);
    end = slash ? (size_t)(slash - t) : len;
    if ((k = kid_find(n, t + pos, end - pos)))
        match_walk(k, t, len, end + 1, true, out);
    if (n->plus && wild_ok)
        match_walk(n->plus, t, len, end + 1, true, out);
}

static int cmp_subid(const void *a, const void *b)
{
    uint32_t x = (*(struct rfilter *const *)a)->subid;
    uint32_t y = (*(struct rfilter *const *)b)->subid;

    return x < y ? -1 : x > y;
}

/* Frames of one message, built lazily once per distinct mount. */
struct frame_set {
    const struct mb_event *ev;
    enum payload_kind kind;
    bool retain;
    size_t n;
    struct {
        const char *mount;
        size_t mount_len;
        int qos;
        struct frame *f;
    } e[16];
};

/* The frame for s, which holds the message's filter at sub_qos: a
 * subscriber receives at most at the QoS it was granted, as in MQTT. */
static struct frame *frame_for(struct frame_set *fs, const struct session *s,
                               int sub_qos)
{
    const struct mb_event *ev = fs->ev;
    int qos = ev->qos < sub_qos ? ev->qos : sub_qos;
    struct frame *f;
    size_t i;

    for (i = 0; i < fs->n; i++)
        if (fs->e[i].qos == qos && fs->e[i].mount_len == s->mount_len &&
            (s->mount_len == 0 ||
             memcmp(fs->e[i].mount, s->mount, s->mount_len) == 0))
            return fs->e[i].f;
    f = frame_new_msg(ev->topic + s->mount_len, ev->topic_len - s->mount_len,
                      ev->payload, ev->payload_len, fs->kind, qos, fs->retain);
    if (!f)
        return NULL;
    if (fs->n == sizeof(fs->e) / sizeof(fs->e[0])) {
        /* many tenants on one topic: keep only the unmounted frame */
        frame_unref(fs->e[fs->n - 1].f);
        fs->n--;
    }
    fs->e[fs->n].mount = s->mount;
    fs->e[fs->n].mount_len = s->mount_len;
    fs->e[fs->n].qos = qos;
    fs->e[fs->n].f = f;
    fs->n++;
    return f;
}

static void deliver(struct frame_set *fs, const struct sub *sub)
{
    struct session *s = sub->s;
    struct frame *f;

    if (s->close_code)
        return;
    if (s->mount_len && (fs->ev->topic_len <= s->mount_len ||
                         memcmp(fs->ev->topic, s->mount, s->mount_len)))
        return;
    if ((f = frame_for(fs, s, sub->qos)))
        session_send(s, f);
}

static bool has_subid(const struct mb_event *ev, uint32_t id)
{
    for (uint8_t i = 0; i < ev->n_subids; i++)
        if (ev->subids[i] == id)
            return true;
    return false;
}

void router_deliver(const struct mb_event *ev)
{
    struct fvec fv = {.v = fv.inline_v, .n = 0, .cap = 32};
    struct frame_set fs = {.ev = ev, .retain = ev->retained};
    bool by_id = ev->n_subids > 0;
    uint64_t seq = ++R.seq;

    metrics_add(MC_MSGS_IN, 1);
    metrics_add(MC_BYTES_IN, ev->payload_len);
    match_walk(R.root, ev->topic, ev->topic_len, 0, ev->topic[0] != '$',
               &fv);
    for (uint32_t g = 0; g < R.shared->n_kids; g++)
        match_walk(R.shared->kids[g], ev->topic, ev->topic_len, 0,
                   ev->topic[0] != '$', &fv);
    if (fv.n == 0)
        goto out;
    fs.kind = payload_classify(ev->payload, ev->payload_len);

    if (ev->retained) {
        /* A retained message is the replay after one of our SUBSCRIBEs:
         * it goes only to the holders that asked for that replay. MQTT 5
         * names the subscription; with 3.1.1 it follows the last SUBACK. */
        bool last_matches = false;

        for (size_t i = 0; i < fv.n && !by_id; i++)
            last_matches |= fv.v[i] == R.last_acked;
        for (size_t i = 0; i < fv.n; i++) {
            struct rfilter *f = fv.v[i];

            if (by_id ? !has_subid(ev, f->subid)
                      : last_matches && f != R.last_acked)
                continue;
            for (struct sub *sub = f->subs; sub; sub = sub->f_next)
                if (sub->want_gen && sub->want_gen == f->acked_gen)
                    deliver(&fs, sub);
        }
        goto out;
    }

    /* With MQTT 5 the broker sends one copy per matching subscription,
     * each naming its subscription. A session takes the copy of its
     * lowest-numbered matching filter and ignores the others; with 3.1.1
     * the one copy goes to everyone. */
    if (by_id && fv.n > 1)
        qsort(fv.v, fv.n, sizeof(*fv.v), cmp_subid);
    for (size_t i = 0; i < fv.n; i++) {
        struct rfilter *f = fv.v[i];
        bool mine = !by_id || has_subid(ev, f->subid);

        for (struct sub *sub = f->subs; sub; sub = sub->f_next) {
            struct session *s = sub->s;

            if (!sub->live || s->stamp == seq)
                continue;
            s->stamp = seq;
            if (mine)
                deliver(&fs, sub);
        }
    }
out:
    metrics_fanout_us(clock_now_us() - ev->t_us);
    for (size_t i = 0; i < fs.n; i++)
        frame_unref(fs.e[i].f);
    if (fv.v != fv.inline_v)
        free(fv.v);
}

int router_init(void)
{
    memset(&R, 0, sizeof(R));
    R.root = node_new(NULL, "", 0);
    R.shared = node_new(NULL, "", 0);
    return R.root && R.shared ? 0 : -1;
}

void router_destroy(void)
{
    for (size_t b = 0; b < ID_BUCKETS; b++) {
        struct rfilter *f = R.by_id[b], *next;

        for (; f; f = next) {
            next = f->id_next;
            free(f);
        }
    }
    node_free_all(R.root);
    node_free_all(R.shared);
    memset(&R, 0, sizeof(R));
}
