/* The subscription registry: one upstream subscription per distinct filter
 * (held in a hashed trie, common/trie.c), reference counted by the
 * sessions holding it; subscription identifiers; the upstream
 * SUBSCRIBE/SUBACK state machine, one SUBSCRIBE in flight per filter; the
 * retained-replay generations that decide who gets a replay; restoring
 * every filter after a reconnect; the lists of sessions waiting for a
 * filter's SUBACK. Service thread only. Over 600 lines, whole on purpose:
 * every part reads and moves the one state machine per filter (its
 * SUBACK, its generation, its waiting lists), which split across files
 * would have to be exposed in subs_int.h to all of them. */
#include <stdlib.h>
#include <string.h>

#include "jbuf.h"
#include "log.h"
#include "reply.h"
#include "session.h"
#include "subs.h"
#include "subs_int.h"
#include "throttle.h"
#include "topic.h"
#include "trie.h"
#include "upstream.h"

#define ID_BUCKETS 4096

static struct {
    struct trie *trie;            /* filter -> struct rfilter */
    struct rfilter *by_id[ID_BUCKETS];
    uint32_t next_subid;
    size_t n_filters, n_subs;
    struct rfilter *last_acked;   /* retained messages follow its SUBACK */
    size_t restoring;             /* re-SUBSCRIBEs after a reconnect */
    uint8_t floor_qos;            /* MQTT 3.1.1: the highest QoS asked yet */
} R;

struct rfilter *subs_last_acked(void)
{
    return R.last_acked;
}

void subs_match(const char *topic, size_t len,
                int (*fn)(void *f, void *arg), void *arg)
{
    trie_match(R.trie, topic, len, fn, arg);
}


static struct rfilter *filter_by_id(uint32_t id)
{
    struct rfilter *f = R.by_id[id % ID_BUCKETS];

    while (f && f->subid != id)
        f = f->id_next;
    return f;
}

static struct rfilter *filter_find(const char *s, size_t len)
{
    return trie_find(R.trie, s, len);
}

static struct rfilter *filter_create(const char *s, size_t len)
{
    struct rfilter *f = calloc(1, sizeof(*f) + len + 1);

    if (!f)
        return NULL;
    memcpy(f->str, s, len);
    f->len = len;
    if (trie_insert(R.trie, f->str, len, f) < 0) {
        free(f);
        return NULL;
    }
    /* MQTT 5 subscription identifiers run 1..268435455. */
    if (++R.next_subid > 268435455)
        R.next_subid = 1;
    f->subid = R.next_subid;
    f->id_next = R.by_id[f->subid % ID_BUCKETS];
    R.by_id[f->subid % ID_BUCKETS] = f;
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
    trie_remove(R.trie, f->str, f->len);
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
 * that QoS would see. With MQTT 3.1.1 no subscription identifier tells
 * the copies for overlapping filters apart, and brokers differ: mosquitto
 * and aedes send one copy at the QoS of one of the matching filters,
 * RabbitMQ one per QoS. So every filter is subscribed at one QoS, the
 * highest asked of any since the start (docs/deployment.md, "Which
 * broker"): the one copy comes at the QoS every holder needs. */
static uint8_t filter_qos(const struct rfilter *f)
{
    if (upstream_version(upstream_get()) != 4 || f->want_qos >= R.floor_qos)
        return f->want_qos;
    return R.floor_qos;
}

static int filter_send_subscribe(struct rfilter *f)
{
    f->req_gen++;
    f->flight_qos = filter_qos(f);
    if (upstream_subscribe(upstream_get(), f->str, f->subid, f->flight_qos,
                           sub_tag(f->subid, f->req_gen)) < 0)
        return -1;
    f->in_flight = true;
    return 0;
}

/* f's holders now want qos: with MQTT 3.1.1, a QoS higher than any
 * asked before is the QoS of every filter, and the others (but self,
 * which its caller subscribes) are subscribed again at it. Their holders
 * get no new replay: no sub waits for that SUBSCRIBE's generation. */
static void filter_want(struct rfilter *self, int qos)
{
    if (qos > self->want_qos)
        self->want_qos = (uint8_t)qos;
    if (qos <= R.floor_qos || upstream_version(upstream_get()) != 4)
        return;
    R.floor_qos = (uint8_t)qos;
    if (!upstream_is_connected(upstream_get()))
        return;
    for (size_t b = 0; b < ID_BUCKETS; b++)
        for (struct rfilter *f = R.by_id[b]; f; f = f->id_next) {
            if (f == self)
                continue;
            if (f->in_flight)
                f->again |= f->flight_qos < qos;
            else if (f->ever_acked && f->flight_qos < qos)
                filter_send_subscribe(f);
        }
}

/* ---- a filter's waiting and replay lists (subs_int.h) ------------------- */

static struct sub **wl_head(struct sub *sub)
{
    return sub->wlist == SUB_WL_WAITING ? &sub->f->waiting : &sub->f->replay;
}

static void wl_remove(struct sub *sub)
{
    if (sub->wlist == SUB_WL_NONE)
        return;
    if (sub->w_prev)
        sub->w_prev->w_next = sub->w_next;
    else
        *wl_head(sub) = sub->w_next;
    if (sub->w_next)
        sub->w_next->w_prev = sub->w_prev;
    sub->w_prev = sub->w_next = NULL;
    sub->wlist = SUB_WL_NONE;
}

static void wl_add(struct sub *sub, uint8_t which)
{
    struct sub **head;

    wl_remove(sub);
    sub->wlist = which;
    head = wl_head(sub);
    sub->w_next = *head;
    if (*head)
        (*head)->w_prev = sub;
    *head = sub;
}

/* sub waits for the SUBACK of the filter's request gen. */
static void sub_wait(struct sub *sub, uint32_t gen)
{
    sub->want_gen = gen;
    wl_add(sub, SUB_WL_WAITING);
}

/* Empties one of f's lists (the holders stay). */
static void wl_clear(struct sub **head)
{
    struct sub *sub, *next;

    for (sub = *head; sub; sub = next) {
        next = sub->w_next;
        sub->w_prev = sub->w_next = NULL;
        sub->wlist = SUB_WL_NONE;
    }
    *head = NULL;
}

/* ---- subs --------------------------------------------------------------- */

/* Answers the sub requests of sub waiting for granted (<0: refused). With
 * live, the subscription now takes live messages: each request's replay
 * starts right after its ok, so that live messages follow it. */
static void sub_answer(struct sub *sub, int granted, bool live)
{
    struct sub_reply *r;

    while ((r = sub->replies)) {
        int q = r->qos < granted ? r->qos : granted;
        bool stream = live && granted >= 0 &&
                      (r->opts.history || r->opts.has_since);
        struct session_replay rp = { 0, false };

        sub->replies = r->next;
        if (granted >= 0)
            sub->retained = r->opts.retained ? SUB_RETAINED_ALL
                                             : SUB_RETAINED_NONE;
        if (stream) {
            session_replay_start(sub->s, sub->f->str, sub->f->len,
                                 (uint8_t)q, &r->opts, &rp);
            if (r->opts.retained && (rp.recovered || r->opts.history))
                sub->retained = SUB_RETAINED_UNSTORED;
        }
        if (granted < 0) {
            session_reply_error(sub->s, r->id, r->id_len,
                                "broker_unavailable",
                                "the broker refused the subscription");
        } else if (r->id_len || r->opts.ok_topic) {
            struct jbuf b;

            jbuf_init(&b);
            reply_begin(&b, "ok", r->id, r->id_len);
            if (r->opts.ok_topic) {
                jbuf_lit(&b, ",\"topic\":");
                jbuf_str(&b, r->opts.ok_topic, r->opts.ok_topic_len);
            }
            jbuf_lit(&b, ",\"qos\":");
            jbuf_int(&b, q);
            if (stream) {
                jbuf_lit(&b, ",\"replayed\":");
                jbuf_int(&b, (int64_t)rp.replayed);
                if (r->opts.has_since)
                    jbuf_lit(&b, rp.recovered ? ",\"recovered\":true"
                                              : ",\"recovered\":false");
            }
            reply_end(&b);
            session_send_jbuf(sub->s, &b);
        }
        if (stream)
            session_replay_go(sub->s);
        free(r);
    }
}

static void sub_unlink(struct sub *sub)
{
    struct rfilter *f = sub->f;
    struct subs_holds *h = sub->h;
    struct sub **pp = &h->head;

    wl_remove(sub);
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
    h->n--;
    R.n_subs--;
    while (sub->replies) {
        struct sub_reply *r = sub->replies;

        sub->replies = r->next;
        free(r);
    }
    free(sub);
    if (f->n_subs == 0 && !f->pinned)
        filter_destroy(f, true);
}

static struct sub *sub_of(struct session *s, const struct rfilter *f)
{
    struct sub *sub;

    for (sub = session_holds(s)->head; sub; sub = sub->s_next)
        if (sub->f == f)
            return sub;
    return NULL;
}

int subs_pin(const char *filter, size_t len, int qos)
{
    struct rfilter *f = filter_find(filter, len);

    if (!f && !(f = filter_create(filter, len)))
        return -1;
    f->pinned = true;
    filter_want(f, qos);
    if (upstream_is_connected(upstream_get()) && !f->in_flight)
        filter_send_subscribe(f);
    return 0;
}

bool subs_session_holds(struct session *s, const char *full,
                          size_t len)
{
    struct rfilter *f = filter_find(full, len);

    return f && sub_of(s, f);
}

void subs_subscribe(struct session *s, const char *full, size_t len,
                    int qos, const char *id, size_t id_len,
                    const struct subs_opts *opts)
{
    struct rfilter *f = filter_find(full, len);
    struct sub *sub = f ? sub_of(s, f) : NULL;
    struct sub_reply *r;

    if (!f && !(f = filter_create(full, len)))
        goto oom;
    if (!sub) {
        if (!(sub = calloc(1, sizeof(*sub)))) {
            if (!f->n_subs && !f->pinned)
                filter_destroy(f, false);
            goto oom;
        }
        sub->f = f;
        sub->s = s;
        sub->h = session_holds(s);
        sub->f_next = f->subs;
        if (f->subs)
            f->subs->f_prev = sub;
        f->subs = sub;
        f->n_subs++;
        sub->s_next = session_holds(s)->head;
        session_holds(s)->head = sub;
        session_holds(s)->n++;
        R.n_subs++;
    }
    sub->qos = (uint8_t)qos;
    /* a sub without max_rate removes it */
    sub->max_rate = opts->max_rate;
    if (!(r = malloc(sizeof(*r) + id_len + opts->ok_topic_len))) {
        if (!sub->live)
            sub_unlink(sub);
        goto oom;
    }
    r->next = NULL;
    r->opts = *opts;
    r->qos = (uint8_t)qos;
    r->id_len = id_len;
    memcpy(r->id, id, id_len);
    if (opts->ok_topic) {
        memcpy(r->id + id_len, opts->ok_topic, opts->ok_topic_len);
        r->opts.ok_topic = r->id + id_len;
    }
    {
        struct sub_reply **pp = &sub->replies;

        while (*pp)
            pp = &(*pp)->next;
        *pp = r;
    }

    filter_want(f, qos);
    /* One SUBSCRIBE in flight per filter: holders that join while it is
     * under way share its SUBACK and its retained replay, which reflects
     * the broker's state after they joined; one that needs a higher QoS
     * waits for the next SUBSCRIBE, sent when this one is answered. */
    if (upstream_is_connected(upstream_get())) {
        if (f->in_flight && qos <= f->flight_qos) {
            sub_wait(sub, f->req_gen);
            return;
        }
        if (f->in_flight) {
            f->again = true;
            sub_wait(sub, f->req_gen + 1);
            return;
        }
        if (filter_send_subscribe(f) == 0) {
            sub_wait(sub, f->req_gen);
            return;
        }
    }
    /* Broker away: the filter is subscribed (and its retained messages
     * replayed) when the connection comes back. */
    sub->live = true;
    sub_answer(sub, qos, true);
    return;
oom:
    session_reply_error(s, id, id_len, "internal", "out of memory");
}

void subs_unsubscribe(struct session *s, const char *full, size_t len)
{
    struct rfilter *f = filter_find(full, len);
    struct sub *sub = f ? sub_of(s, f) : NULL;

    if (!sub)
        return;
    /* A sub request still waiting for its SUBACK gets its one answer. */
    sub_answer(sub, sub->qos, false);
    sub_unlink(sub);
}

void subs_session_gone(struct session *s)
{
    struct subs_holds *h = session_holds(s);

    while (h->head)
        sub_unlink(h->head);
    throttle_free(h->thr);
    h->thr = NULL;
}

/* The SUBACK of f is in: the next SUBSCRIBE, when holders wait for one.
 * If it cannot go, they are treated as when the broker is away. */
static void subscribe_again(struct rfilter *f)
{
    struct sub *sub, *next;

    if (!f->again)
        return;
    f->again = false;
    if (filter_send_subscribe(f) == 0)
        return;
    for (sub = f->waiting; sub; sub = next) {
        next = sub->w_next;
        if (sub->want_gen == f->req_gen) {
            wl_remove(sub);
            sub->live = true;
            sub_answer(sub, sub->qos, true);
        }
    }
}

void subs_suback(uint64_t tag, int granted)
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
        for (sub = f->waiting; sub; sub = next) {
            next = sub->w_next;
            if (sub->want_gen != gen)
                continue;
            wl_remove(sub);
            sub_answer(sub, -1, false);
            if (!sub->live) {
                if (f->n_subs == 1 && !f->pinned) {
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
    /* the retained messages that follow are for the holders it answers */
    wl_clear(&f->replay);
    for (sub = f->waiting; sub; sub = next) {
        next = sub->w_next;
        if (sub->want_gen != gen)
            continue;
        wl_add(sub, SUB_WL_REPLAY);
        sub->live = true;
        sub_answer(sub, granted, true);
    }
    subscribe_again(f);
}

size_t subs_broker_up(void)
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
                sub_wait(sub, f->req_gen);
        }
    R.restoring = sent;
    return sent;
}

void subs_broker_down(void)
{
    R.last_acked = NULL;
    R.restoring = 0;
    for (size_t b = 0; b < ID_BUCKETS; b++)
        for (struct rfilter *f = R.by_id[b]; f; f = f->id_next) {
            f->in_flight = false;
            f->restoring = false;
            f->again = false;
            wl_clear(&f->waiting);
            wl_clear(&f->replay);
            for (struct sub *sub = f->subs; sub; sub = sub->f_next) {
                sub->live = true;
                sub->want_gen = 0;
                sub_answer(sub, sub->qos, true);
            }
        }
}

void subs_session_recheck(struct session *s)
{
    struct subs_holds *h = session_holds(s);
    const char *mount = h->mount;
    size_t mlen = h->mount_len;
    struct sub *sub = h->head, *next;

    for (; sub; sub = next) {
        /* a filter made under another mount is not covered */
        char *rel = malloc(sub->f->len + 1);
        long rlen = rel ? topic_unmount(mount, mlen, sub->f->str, sub->f->len,
                                        rel)
                        : -1;
        int q = rlen > 0 ? session_subscribe_qos(s, rel, (size_t)rlen) : -1;

        next = sub->s_next;
        if (q < 0) {
            const char *shown = rlen > 0 ? rel : sub->f->str;
            size_t slen = rlen > 0 ? (size_t)rlen : sub->f->len;

            session_reply_error(s, NULL, 0, "forbidden",
                                "subscription to %.*s withdrawn: the roles "
                                "no longer allow it",
                                (int)(slen > 200 ? 200 : slen), shown);
            sub_answer(sub, sub->qos, false);
            sub_unlink(sub);
        } else if (sub->qos > q) {
            sub->qos = (uint8_t)q;
        }
        free(rel);
    }
}

size_t subs_filter_count(void)
{
    return R.n_filters;
}

size_t subs_hold_count(void)
{
    return R.n_subs;
}

int subs_init(void)
{
    memset(&R, 0, sizeof(R));
    R.trie = trie_new();
    return R.trie ? 0 : -1;
}

void subs_destroy(void)
{
    for (size_t b = 0; b < ID_BUCKETS; b++) {
        struct rfilter *f = R.by_id[b], *next;

        for (; f; f = next) {
            next = f->id_next;
            free(f);
        }
    }
    trie_free(R.trie, NULL);
    memset(&R, 0, sizeof(R));
}
