#include "sendq.h"

#include <stdlib.h>

#include "frame.h"

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
