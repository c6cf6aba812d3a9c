#include "sendq.h"

#include <stdlib.h>

#include "frame.h"

size_t sendq_all_bytes;

int sendq_grow(struct sendq *q)
{
    uint32_t cap = q->cap ? q->cap * 2 : 4;
    struct frame **v;

    if (cap < q->cap || !(v = malloc(cap * sizeof(*v))))
        return -1;
    for (uint32_t i = 0; i < q->count; i++)
        v[i] = q->v[(q->head + i) & (q->cap - 1)];
    free(q->v);
    q->v = v;
    q->cap = cap;
    q->head = 0;
    return 0;
}

long sendq_conflate(struct sendq *q, uint32_t keep)
{
    size_t cap = 16, mask;
    uint64_t *seen;
    uint32_t n = q->count, out = n;
    struct frame **v;
    long dropped = 0;

    while (cap < 2 * (size_t)n)
        cap *= 2;
    mask = cap - 1;
    if (!(seen = calloc(cap, sizeof(*seen))) ||
        !(v = malloc((n ? n : 1) * sizeof(*v)))) {
        free(seen);
        return -1;
    }
    /* newest first: the first frame of a topic met is the one kept */
    for (uint32_t i = n; i-- > 0;) {
        struct frame *f = q->v[(q->head + i) & (q->cap - 1)];
        uint64_t k = f->topic_key;
        size_t p = (size_t)(k ^ (k >> 29)) & mask;
        bool dup = false;

        if (k) {
            while (seen[p] && seen[p] != k)
                p = (p + 1) & mask;
            dup = seen[p] == k;
            seen[p] = k;
        }
        if (dup && i >= keep) {
            q->bytes -= f->len;
            sendq_all_bytes -= f->len;
            frame_unref(f);
            dropped++;
            continue;
        }
        v[--out] = f;
    }
    /* the kept ones, in their order, from the start of the ring */
    for (uint32_t i = 0; i < n - dropped; i++)
        q->v[i] = v[out + i];
    q->head = 0;
    q->count = n - (uint32_t)dropped;
    free(v);
    free(seen);
    return dropped;
}

void sendq_drop(struct sendq *q)
{
    while (q->count)
        frame_unref(sendq_pop(q));
}

void sendq_trim(struct sendq *q)
{
    if (q->count || q->cap <= SENDQ_KEEP)
        return;
    free(q->v);
    q->v = NULL;
    q->cap = 0;
    q->head = 0;
}

void sendq_free(struct sendq *q)
{
    sendq_drop(q);
    free(q->v);
    q->v = NULL;
    q->cap = 0;
    q->head = 0;
}
