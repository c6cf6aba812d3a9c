/* A session's replays of stored messages (protocol.md, History): started
 * at the ok of a sub, fed into the send queue as it drains (never more than
 * REPLAY_BATCH messages, nor past REPLAY_LOW queued bytes, at a time, and
 * at most REPLAY_PER_MS messages a millisecond for all sessions), so that a
 * replay never closes a session for its own size nor holds the loop for
 * long. While any replay runs, the session's live frames wait in a
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
/* Messages fed in one millisecond, all sessions together: a hundred
 * sessions opening at once with replays must not hold the loop (and the
 * live messages of the others) for more than a millisecond or two. */
#define REPLAY_PER_MS 1024

static struct {
    uint64_t ms;
    unsigned fed;
} budget;

/* Takes one message from this millisecond's budget. */
static bool budget_take(void)
{
    uint64_t now = clock_now_ms();

    if (now != budget.ms) {
        budget.ms = now;
        budget.fed = 0;
    }
    if (budget.fed >= REPLAY_PER_MS)
        return false;
    budget.fed++;
    return true;
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
    unsigned n = 0;

    while (s->replays && !s->close_code && n < max && s->q.bytes < low) {
        struct replay *r = s->replays;

        if (max != UINT32_MAX && !budget_take()) {
            /* out of budget: fed again at the next writable callback */
            if (!s->q.count)
                s->tp->want_write(s);
            return;
        }
        if (feed_one(s, r)) {
            n++;
            continue;
        }
        s->replays = r->next;
        history_cursor_free(r->c);
        free(r);
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
