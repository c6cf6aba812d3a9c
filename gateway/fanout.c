/* Fan-out of one broker message: the filters it matches (the registry's
 * trie), its frame built once per QoS and mount and shared by reference,
 * at most one delivery per session, the retained replay only to the
 * holders that asked for it. Service thread only. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fanout.h"
#include "frame.h"
#include "mailbox.h"
#include "metrics.h"
#include "payload.h"
#include "session.h"
#include "subs.h"
#include "subs_int.h"

static struct {
    uint64_t seq;                 /* per broker message delivered */
} F;


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
    f = frame_new_msg(ev->topic + mlen, ev->topic_len - mlen, ev->payload,
                      ev->payload_len, fs->kind, qos, fs->retain);
    if (!f)
        return NULL;
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
    if ((f = frame_for(fs, mount, mlen, sub->qos)))
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
    uint64_t seq = ++F.seq;
    struct rfilter *last_acked = subs_last_acked();

    metrics_add(MC_MSGS_IN, 1);
    metrics_add(MC_BYTES_IN, ev->payload_len);
    subs_match(ev->topic, ev->topic_len, collect, &fv);
    if (fv.n == 0)
        goto out;
    fs.kind = payload_classify(ev->payload, ev->payload_len);

    if (ev->retained) {
        /* A retained message is the replay after one of our SUBSCRIBEs:
         * it goes only to the holders that asked for that replay. MQTT 5
         * names the subscription; with 3.1.1 it follows the last SUBACK. */
        bool last_matches = false;

        for (size_t i = 0; i < fv.n && !by_id; i++)
            last_matches |= fv.v[i] == last_acked;
        for (size_t i = 0; i < fv.n; i++) {
            struct rfilter *f = fv.v[i];

            if (by_id ? !has_subid(ev, f->subid)
                      : last_matches && f != last_acked)
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
            struct subs_holds *h = sub->h;

            if (!sub->live || h->stamp == seq)
                continue;
            h->stamp = seq;
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

