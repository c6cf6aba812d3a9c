#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "clock.h"
#include "frame.h"
#include "session.h"
#include "throttle.h"

#define SLOT_MS 5                  /* the wheel's granularity */
#define SLOTS 1024                 /* so it turns every 5.12 s */

/* One topic of one session. */
struct entry {
    struct entry *hnext;           /* the session's hash chain */
    struct entry *wprev, *wnext;   /* its wheel slot, while a frame waits */
    struct throttle *t;
    uint64_t key;                  /* frame_topic_key() */
    uint64_t last_ms;              /* its last delivery */
    uint64_t due_ms;               /* when the waiting frame goes */
    struct frame *waiting;         /* NULL: none */
};

struct throttle {
    struct session *s;
    struct entry **table;
    size_t cap, n;                 /* cap a power of two */
};

static struct {
    struct entry *slot[SLOTS];
    uint64_t turned_ms;            /* the wheel has run up to here */
    uint64_t skipped;
    size_t waiting;                /* frames on the wheel */
    struct lws_context *ctx;
    lws_sorted_usec_list_t timer;  /* armed while frames wait */
    bool armed;
} W;

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    W.armed = false;
    throttle_tick(clock_now_ms());
}

static void arm(void)
{
    if (W.armed || !W.ctx || !W.waiting)
        return;
    W.armed = true;
    lws_sul_schedule(W.ctx, 0, &W.timer, tick_cb,
                     (lws_usec_t)SLOT_MS * LWS_US_PER_MS);
}

void throttle_init(struct lws_context *ctx)
{
    W.ctx = ctx;
}

void throttle_destroy(void)
{
    if (W.armed)
        lws_sul_cancel(&W.timer);
    W.armed = false;
    W.ctx = NULL;
}

static size_t slot_of(uint64_t ms)
{
    return (size_t)(ms / SLOT_MS) % SLOTS;
}

static void wheel_add(struct entry *e)
{
    struct entry **head = &W.slot[slot_of(e->due_ms)];

    e->wprev = NULL;
    e->wnext = *head;
    if (*head)
        (*head)->wprev = e;
    *head = e;
    W.waiting++;
    arm();
}

static void wheel_del(struct entry *e)
{
    if (e->wprev)
        e->wprev->wnext = e->wnext;
    else
        W.slot[slot_of(e->due_ms)] = e->wnext;
    if (e->wnext)
        e->wnext->wprev = e->wprev;
    e->wprev = e->wnext = NULL;
    W.waiting--;
}

static int grow(struct throttle *t)
{
    size_t cap = t->cap ? t->cap * 2 : 16;
    struct entry **table = calloc(cap, sizeof(*table));

    if (!table)
        return -1;
    for (size_t i = 0; i < t->cap; i++)
        for (struct entry *e = t->table[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = table[e->key & (cap - 1)];
            table[e->key & (cap - 1)] = e;
        }
    free(t->table);
    t->table = table;
    t->cap = cap;
    return 0;
}

static struct entry *entry_of(struct throttle *t, uint64_t key)
{
    struct entry *e;

    for (e = t->cap ? t->table[key & (t->cap - 1)] : NULL; e; e = e->hnext)
        if (e->key == key)
            return e;
    if ((t->n + 1 > t->cap / 2 * 3 || !t->cap) && grow(t) < 0)
        return NULL;
    if (!(e = calloc(1, sizeof(*e))))
        return NULL;
    e->t = t;
    e->key = key;
    e->hnext = t->table[key & (t->cap - 1)];
    t->table[key & (t->cap - 1)] = e;
    t->n++;
    return e;
}

void throttle_offer(struct throttle **tp, struct session *s, struct frame *f,
                    uint64_t interval_ms, uint64_t now_ms)
{
    struct throttle *t = *tp;
    struct entry *e;

    if (!t) {
        if (!(t = calloc(1, sizeof(*t)))) {
            session_send(s, f); /* unthrottled rather than lost */
            return;
        }
        t->s = s;
        *tp = t;
    }
    if (!W.turned_ms)
        W.turned_ms = now_ms;
    if (!(e = entry_of(t, f->topic_key))) {
        session_send(s, f);
        return;
    }
    if (!e->waiting && (!e->last_ms || now_ms - e->last_ms >= interval_ms)) {
        e->last_ms = now_ms;
        session_send(s, f);
        return;
    }
    if (e->waiting) {
        /* the newest wins: the one waiting is never sent */
        frame_unref(e->waiting);
        W.skipped++;
    } else {
        e->due_ms = e->last_ms + interval_ms;
        if (e->due_ms < W.turned_ms)
            e->due_ms = W.turned_ms;
        wheel_add(e);
    }
    e->waiting = frame_ref(f);
}

void throttle_tick(uint64_t now_ms)
{
    if (!W.turned_ms) {
        W.turned_ms = now_ms;
        return;
    }
    /* every slot from the last turn to now, at most one whole turn */
    for (uint64_t ms = W.turned_ms, n = 0; ms <= now_ms && n <= SLOTS;
         ms += SLOT_MS, n++) {
        struct entry *e = W.slot[slot_of(ms)], *next;

        for (; e; e = next) {
            next = e->wnext;
            if (e->due_ms > now_ms)
                continue; /* a later turn of the wheel */
            wheel_del(e);
            e->last_ms = now_ms;
            session_send(e->t->s, e->waiting);
            frame_unref(e->waiting);
            e->waiting = NULL;
        }
    }
    W.turned_ms = now_ms - now_ms % SLOT_MS;
    arm();
}

void throttle_free(struct throttle *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap; i++)
        for (struct entry *e = t->table[i], *next; e; e = next) {
            next = e->hnext;
            if (e->waiting) {
                wheel_del(e);
                frame_unref(e->waiting);
            }
            free(e);
        }
    free(t->table);
    free(t);
}

uint64_t throttle_skipped(void)
{
    return W.skipped;
}
