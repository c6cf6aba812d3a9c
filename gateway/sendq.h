/* A session's send queue: a ring of shared frames (frame.h), its size a
 * power of two, with the bytes it holds. Pure: no I/O. Service thread. */
#ifndef MQG_SENDQ_H
#define MQG_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/* A ring this long or shorter stays allocated when it empties, so that a
 * steady stream does not allocate one per burst. */
#define SENDQ_KEEP 256

struct sendq {
    struct frame **v;         /* cap entries; NULL when cap is 0 */
    uint32_t head, count, cap;
    size_t bytes;             /* f->len of the frames held */
};

/* The bytes of every queue, summed (/metrics' mqgate_queue_bytes without
 * a walk over the sessions). */
extern size_t sendq_all_bytes;

/* Doubles the ring of a full q. Returns 0, or -1 when out of memory. */
int sendq_grow(struct sendq *q);

/* Appends f, taking a new reference. Returns 0, or -1 when out of memory
 * (nothing changes). Inline: once per delivery. */
static inline int sendq_push(struct sendq *q, struct frame *f)
{
    if (q->count == q->cap && sendq_grow(q) < 0)
        return -1;
    q->v[(q->head + q->count) & (q->cap - 1)] = frame_ref(f);
    q->count++;
    q->bytes += f->len;
    sendq_all_bytes += f->len;
    return 0;
}

/* The oldest frame; q is not empty. */
static inline struct frame *sendq_peek(const struct sendq *q)
{
    return q->v[q->head];
}

/* Takes the oldest frame off q; the caller owns the reference. q is not
 * empty. */
static inline struct frame *sendq_pop(struct sendq *q)
{
    struct frame *f = q->v[q->head];

    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    q->bytes -= f->len;
    sendq_all_bytes -= f->len;
    return f;
}

/* Conflation (limits.slow_consumer "conflate"): drops every msg frame
 * that has a newer one of the same topic_key in q, but never one of the
 * first keep frames (one being written). Other frames stay. Returns how
 * many were dropped, or -1 when out of memory (nothing dropped). */
long sendq_conflate(struct sendq *q, uint32_t keep);

/* Drops every frame (their references). */
void sendq_drop(struct sendq *q);

/* An empty q gives a ring longer than SENDQ_KEEP back. */
void sendq_trim(struct sendq *q);

/* Drops every frame and frees the ring. */
void sendq_free(struct sendq *q);

#endif
