/* Fan-out of one broker message: the filters it matches (the registry's
 * trie); its stream position (the epoch, a seq per message, shared by the
 * MQTT 5 copies of overlapping filters); the history's feed; its frame
 * built once per QoS and mount and shared by reference; at most one
 * delivery per session, through its max_rate throttle where it has one;
 * the retained replay only to the holders that asked for it. Service
 * thread only. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base64.h"
#include "clock.h"
#include "fanout.h"
#include "frame.h"
#include "mailbox.h"
#include "metrics.h"
#include "payload.h"
#include "session.h"
#include "stream.h"
#include "subs.h"
#include "subs_int.h"
#include "throttle.h"
#include "topic.h"

/* The stream's position: the last seq given, and the copies still due of
 * the last message (with MQTT 5 the broker sends one per matching
 * subscription of ours, back to back, each naming its subscription): they
 * are the same message, so they get the same seq. */
static struct {
    uint64_t seq;
    uint64_t pass;                /* per fanout_deliver(): the stamps */
    uint32_t expect[64];          /* subscription ids of copies still due */
    size_t n_expect;
    char *topic;                  /* of the message they copy */
    uint8_t *payload;
    size_t topic_len, payload_len;
} F;

/* This process's stream: random, never reused (protocol.md, "epoch"). */
static char epoch[FANOUT_EPOCH_LEN + 1];

int fanout_init(void)
{
    unsigned char r[12];
    size_t n;

    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return -1;
    n = base64_encode(r, sizeof(r), epoch);
    /* base64url: [A-Za-z0-9_-], 16 characters for 12 bytes */
    for (size_t i = 0; i < n; i++)
        epoch[i] = epoch[i] == '+' ? '-' : epoch[i] == '/' ? '_' : epoch[i];
    epoch[n] = '\0';
    return 0;
}

const char *fanout_epoch(void)
{
    return epoch;
}

uint64_t fanout_seq(void)
{
    return F.seq;
}

static bool expected(uint32_t id)
{
    for (size_t i = 0; i < F.n_expect; i++)
        if (F.expect[i] == id) {
            F.expect[i] = F.expect[--F.n_expect];
            return true;
        }
    return false;
}

/* The seq of ev, whose matching filters are fv: that of the message it
 * is a copy of, or the next one. */
static uint64_t seq_of(const struct mb_event *ev, struct rfilter *const *fv,
                       size_t n)
{
    bool copy = F.n_expect && ev->n_subids &&
                ev->topic_len == F.topic_len &&
                ev->payload_len == F.payload_len &&
                memcmp(ev->topic, F.topic, ev->topic_len) == 0 &&
                (ev->payload_len == 0 ||
                 memcmp(ev->payload, F.payload, ev->payload_len) == 0);

    for (uint8_t i = 0; copy && i < ev->n_subids; i++)
        copy = expected(ev->subids[i]);
    if (copy)
        return F.seq;
    F.n_expect = 0;
    if (ev->n_subids && n > 1) {
        /* more copies will come: one per other matching filter */
        char *t = realloc(F.topic, ev->topic_len + 1);
        uint8_t *p = t ? realloc(F.payload, ev->payload_len + 1) : NULL;

        if (t)
            F.topic = t;
        if (p)
            F.payload = p;
        if (t && p) {
            memcpy(F.topic, ev->topic, ev->topic_len);
            memcpy(F.payload, ev->payload, ev->payload_len);
            F.topic_len = ev->topic_len;
            F.payload_len = ev->payload_len;
            for (size_t i = 0; i < n && F.n_expect < 64; i++) {
                bool in_ev = false;

                for (uint8_t k = 0; k < ev->n_subids; k++)
                    in_ev |= ev->subids[k] == fv[i]->subid;
                if (!in_ev)
                    F.expect[F.n_expect++] = fv[i]->subid;
            }
        }
    }
    return ++F.seq;
}

void fanout_destroy(void)
{
    free(F.topic);
    free(F.payload);
    memset(&F, 0, sizeof(F));
}


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

static int collect(void *f, void *arg)
{
    fvec_push(arg, f);
    return 0;
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
    uint64_t key;                 /* frame_topic_key() of its topic */
    uint64_t now_ms;
    enum payload_kind kind;
    bool retain;
    struct frame_pos pos;         /* seq 0 for the retained replay */
    size_t n;
    struct {
        const char *mount;
        size_t mount_len;
        int qos;
        struct frame *f;
    } e[16];
};

/* The frame for a session under mount[0..mlen) that holds the message's
 * filter at sub_qos: a subscriber receives at most at the QoS it was
 * granted, as in MQTT. */
static struct frame *frame_for(struct frame_set *fs, const char *mount,
                               size_t mlen, int sub_qos)
{
    const struct mb_event *ev = fs->ev;
    int qos = ev->qos < sub_qos ? ev->qos : sub_qos;
    struct frame *f;
    size_t i;

    for (i = 0; i < fs->n; i++)
        if (fs->e[i].qos == qos && fs->e[i].mount_len == mlen &&
            (mlen == 0 || memcmp(fs->e[i].mount, mount, mlen) == 0))
            return fs->e[i].f;
    f = frame_new_msg(&(struct frame_msg){
                          .topic = ev->topic + mlen,
                          .topic_len = ev->topic_len - mlen,
                          .payload = ev->payload,
                          .payload_len = ev->payload_len, .kind = fs->kind,
                          .props = ev->props, .props_len = ev->props_len,
                          .mount = mount, .mount_len = mlen, .qos = qos,
                          .retain = fs->retain},
                      &fs->pos);
    if (!f)
        return NULL;
    f->topic_key = fs->key;
    if (fs->n == sizeof(fs->e) / sizeof(fs->e[0])) {
        /* many tenants on one topic: keep only the unmounted frame */
        frame_unref(fs->e[fs->n - 1].f);
        fs->n--;
    }
    fs->e[fs->n].mount = mount;
    fs->e[fs->n].mount_len = mlen;
    fs->e[fs->n].qos = qos;
    fs->e[fs->n].f = f;
    fs->n++;
    return f;
}

/* The rate that applies to sub's session for the message: the least
 * restrictive of its matching filters (none: 0, unlimited). */
static double rate_of(const struct frame_set *fs, const struct sub *sub)
{
    double rate = sub->max_rate;

    if (sub->h->n == 1)
        return rate;
    for (const struct sub *o = sub->h->head; o; o = o->s_next) {
        if (o == sub || !o->live ||
            !topic_match(o->f->str + topic_share_prefix(o->f->str, o->f->len),
                         o->f->len - topic_share_prefix(o->f->str, o->f->len),
                         fs->ev->topic, fs->ev->topic_len))
            continue;
        if (o->max_rate <= 0)
            return 0;
        if (o->max_rate > rate)
            rate = o->max_rate;
    }
    return rate;
}

static void deliver(struct frame_set *fs, const struct sub *sub)
{
    const char *mount = sub->h->mount;
    size_t mlen = sub->h->mount_len;
    struct frame *f;

    if (sub->h->closing)
        return;
    if (mlen && (fs->ev->topic_len <= mlen ||
                 memcmp(fs->ev->topic, mount, mlen)))
        return;
    if (!(f = frame_for(fs, mount, mlen, sub->qos)))
        return;
    if (sub->max_rate > 0) {
        double rate = rate_of(fs, sub);

        if (rate > 0) {
            throttle_offer(&sub->h->thr, sub->s, f,
                           (uint64_t)(1000.0 / rate + 0.5), fs->now_ms);
            return;
        }
    }
    session_send(sub->s, f);
}

static bool has_subid(const struct mb_event *ev, uint32_t id)
{
    for (uint8_t i = 0; i < ev->n_subids; i++)
        if (ev->subids[i] == id)
            return true;
    return false;
}

void fanout_deliver(const struct mb_event *ev)
{
    struct fvec fv = {.v = fv.inline_v, .n = 0, .cap = 32};
    struct frame_set fs = {.ev = ev, .retain = ev->retained};
    bool by_id = ev->n_subids > 0;
    size_t mine_left = 0;         /* by_id: this copy's filters not seen */
    uint64_t pass = ++F.pass;
    struct rfilter *last_acked = subs_last_acked();

    metrics_add(MC_MSGS_IN, 1);
    metrics_add(MC_BYTES_IN, ev->payload_len);
    subs_match(ev->topic, ev->topic_len, collect, &fv);
    if (fv.n == 0)
        goto out;
    if (by_id) {
        /* a copy for a subscription we no longer hold (the broker had not
         * seen its UNSUBSCRIBE): the copies of the others carry it */
        for (size_t i = 0; i < fv.n; i++)
            mine_left += has_subid(ev, fv.v[i]->subid);
        if (!mine_left)
            goto out;
    }
    fs.kind = payload_classify(ev->payload, ev->payload_len);
    fs.key = frame_topic_key(ev->topic, ev->topic_len);
    fs.now_ms = clock_now_ms();
    if (!ev->retained) {
        /* the broker's retained replay is not part of the stream */
        fs.pos.seq = seq_of(ev, fv.v, fv.n);
        fs.pos.ts_ms = ev->ts_ms;
        for (size_t i = 0; i < fv.n; i++)
            if (fv.v[i]->pinned) {
                stream_store(ev, fs.pos.seq, false);
                break;
            }
    }

    if (ev->retained) {
        /* A retained message is the replay after one of our SUBSCRIBEs:
         * it goes only to the holders that asked for that replay. MQTT 5
         * names the subscription; with 3.1.1 it follows the last SUBACK. */
        bool last_matches = false, stored = false;

        for (size_t i = 0; i < fv.n && !by_id; i++)
            last_matches |= fv.v[i] == last_acked;
        for (size_t i = 0; i < fv.n; i++) {
            struct rfilter *f = fv.v[i];

            if (by_id ? !has_subid(ev, f->subid)
                      : last_matches && f != last_acked)
                continue;
            /* the history keeps the retained messages of its filters,
             * each at a stream position of its own */
            if (f->pinned && !stored) {
                stream_store(ev, ++F.seq, true);
                stored = true;
            }
            for (struct sub *sub = f->replay; sub; sub = sub->w_next)
                if (sub->want_gen && sub->want_gen == f->acked_gen &&
                    sub->retained != SUB_RETAINED_NONE &&
                    (sub->retained == SUB_RETAINED_ALL ||
                     !stream_holds(ev->topic, ev->topic_len)))
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
            struct subs_holds *h = sub->h;

            if (!sub->live || h->stamp == pass)
                continue;
            h->stamp = pass;
            if (mine)
                deliver(&fs, sub);
        }
        /* the filters after this copy's own take their own copies */
        if (mine && by_id && --mine_left == 0)
            break;
    }
out:
    metrics_fanout_us(clock_now_us() - ev->t_us);
    for (size_t i = 0; i < fs.n; i++)
        frame_unref(fs.e[i].f);
    if (fv.v != fv.inline_v)
        free(fv.v);
}

