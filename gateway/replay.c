/* A session's replays of stored messages (protocol.md, History): started
 * at the ok of a sub, fed into the send queue as it drains (never more than
 * REPLAY_BATCH messages, nor past REPLAY_LOW queued bytes, at a time, and
 * for all sessions together at most half of the loop's time: BUDGET_US of
 * every WINDOW_US), so that a replay never closes a session for its own
 * size nor holds the loop for long. While any replay runs, the session's live frames wait in a
 * second queue and follow the replay: none replayed twice, none missed.
 * Part of the session module. Service thread only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "frame.h"
#include "history.h"
#include "log.h"
#include "payload.h"
#include "sendq.h"
#include "session.h"
#include "session_int.h"
#include "stream.h"
#include "subs.h"
#include "transport.h"

#define REPLAY_BATCH 256           /* messages per feeding */
#define REPLAY_LOW (64 * 1024)     /* queued bytes below which it feeds */
/* Feeding, all sessions together, may take at most BUDGET_US of every
 * WINDOW_US: a hundred sessions opening at once with replays must not
 * hold the loop (and the live messages of the others) for long. */
#define WINDOW_US 4000
#define BUDGET_US 2000

static struct {
    uint64_t start_us;             /* of the window */
    uint64_t spent_us;             /* feeding, in it */
} budget;

/* Whether feeding begun at fed_since may go on at now: the window's
 * budget not spent. */
static bool budget_left(uint64_t now, uint64_t fed_since)
{
    if (now - budget.start_us >= WINDOW_US) {
        budget.start_us = now;
        budget.spent_us = 0;
        return true;
    }
    return budget.spent_us + (now - fed_since) < BUDGET_US;
}

struct replay {
    struct replay *next;
    struct history_cursor *c;
    uint8_t qos;                   /* the sub's granted QoS */
};

/* Ends every replay of s now, its remaining messages queued at once, then
 * the live frames that waited. */
static void replay_finish(struct session *s);

void session_replay_start(struct session *s, const char *full, size_t len,
                          uint8_t qos, const struct subs_opts *opts,
                          struct session_replay *out)
{
    struct history_cursor *c;
    struct replay *r = NULL;

    out->replayed = 0;
    out->recovered = false;
    if (s->close_code)
        return;
    /* One replay at a time: another one still under way ends first, so
     * that this sub's ok, its replay and the live messages after it keep
     * their order and nothing comes twice. */
    if (s->replays)
        replay_finish(s);
    if (stream_replay(full, len, opts, &c, &out->recovered) < 0 ||
        (c && !(r = calloc(1, sizeof(*r))))) {
        history_cursor_free(c);
        session_close(s, 1011, "out of memory");
        return;
    }
    if (!c)
        return;
    out->replayed = history_cursor_left(c);
    if (!out->replayed) {
        history_cursor_free(c);
        free(r);
        return;
    }
    r->c = c;
    r->qos = qos;
    /* attached by session_replay_go(), once the ok is queued */
    s->replay_next = r;
}

/* Queues the next of r's messages; false at its end. */
static bool feed_one(struct session *s, struct replay *r)
{
    struct history_msg *m;
    struct history_view v;
    struct frame_pos pos;
    struct frame *f;
    int rc = history_cursor_next(r->c, &m);

    if (rc <= 0) {
        if (rc < 0)
            log_warn("session %llu: a replay lost messages (out of memory)",
                     (unsigned long long)s->serial);
        return false;
    }
    history_msg_view(m, &v);
    pos.seq = v.seq;
    pos.ts_ms = v.ts_ms;
    pos.history = true;
    /* the filter was mounted, so every topic it matched is under the
     * mount */
    f = v.topic_len > s->mount_len
            ? frame_new_msg(&(struct frame_msg){
                                .topic = v.topic + s->mount_len,
                                .topic_len = v.topic_len - s->mount_len,
                                .payload = v.payload, .payload_len = v.len,
                                .kind = payload_classify(v.payload, v.len),
                                .props = v.meta, .props_len = v.meta_len,
                                .mount = s->mount, .mount_len = s->mount_len,
                                .qos = v.qos < r->qos ? v.qos : r->qos,
                                .retain = v.retained},
                            &pos)
            : NULL;
    if (f)
        f->topic_key = frame_topic_key(v.topic, v.topic_len);
    history_msg_unref(m);
    if (f) {
        if (sendq_push(&s->q, f) < 0)
            session_close(s, 1011, "out of memory");
        frame_unref(f);
    }
    return true;
}

/* Feeds at most max messages while fewer than low bytes are queued. */
static void feed(struct session *s, unsigned max, size_t low)
{
    bool bounded = max != UINT32_MAX;
    uint64_t t0 = bounded ? clock_now_us() : 0;
    unsigned n = 0;

    if (bounded && !budget_left(t0, t0)) {
        /* out of budget: fed again at the next writable callback */
        if (!s->q.count)
            s->tp->want_write(s);
        return;
    }
    while (s->replays && !s->close_code && n < max && s->q.bytes < low) {
        struct replay *r = s->replays;

        if (bounded && n % 32 == 31 && !budget_left(clock_now_us(), t0))
            break;
        if (feed_one(s, r)) {
            n++;
            continue;
        }
        s->replays = r->next;
        history_cursor_free(r->c);
        free(r);
    }
    if (bounded) {
        uint64_t now = clock_now_us();

        if (now - budget.start_us < WINDOW_US)
            budget.spent_us += now - t0;
    }
    if (!s->replays) {
        /* the live frames that waited follow */
        while (s->held.count && !s->close_code) {
            struct frame *f = sendq_pop(&s->held);

            if (sendq_push(&s->q, f) < 0)
                session_close(s, 1011, "out of memory");
            frame_unref(f);
        }
    }
    if (s->q.count)
        s->tp->want_write(s);
}

static void replay_finish(struct session *s)
{
    feed(s, UINT32_MAX, SIZE_MAX);
}

void session_replay_feed(struct session *s)
{
    if (s->replays)
        feed(s, REPLAY_BATCH, REPLAY_LOW);
}

void session_replay_go(struct session *s)
{
    if (!s->replay_next)
        return;
    s->replays = s->replay_next;
    s->replay_next = NULL;
    feed(s, REPLAY_BATCH, REPLAY_LOW);
}

void session_replay_free(struct session *s)
{
    if (s->replay_next) {
        s->replay_next->next = s->replays;
        s->replays = s->replay_next;
        s->replay_next = NULL;
    }
    while (s->replays) {
        struct replay *r = s->replays;

        s->replays = r->next;
        history_cursor_free(r->c);
        free(r);
    }
    sendq_free(&s->held);
}
