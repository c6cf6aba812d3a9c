#include <stdlib.h>

#include <libwebsockets.h>

#include "mailbox.h"

int mailbox_init(struct mailbox *mb)
{
    mb->head = mb->tail = NULL;
    mb->signalled = false;
    mb->ctx = NULL;
    return pthread_mutex_init(&mb->lock, NULL) ? -1 : 0;
}

void mailbox_destroy(struct mailbox *mb)
{
    struct mb_event *ev = mailbox_take_all(mb);

    while (ev) {
        struct mb_event *next = ev->next;
        free(ev);
        ev = next;
    }
    pthread_mutex_destroy(&mb->lock);
}

void mailbox_set_ctx(struct mailbox *mb, struct lws_context *ctx)
{
    pthread_mutex_lock(&mb->lock);
    mb->ctx = ctx;
    pthread_mutex_unlock(&mb->lock);
}

struct mb_event *mb_event_new(enum mb_type type, size_t extra)
{
    struct mb_event *ev = calloc(1, sizeof(*ev) + extra);

    if (ev)
        ev->type = type;
    return ev;
}

void mailbox_push(struct mailbox *mb, struct mb_event *ev)
{
    ev->next = NULL;
    pthread_mutex_lock(&mb->lock);
    if (mb->tail)
        mb->tail->next = ev;
    else
        mb->head = ev;
    mb->tail = ev;
    /* One wake-up per batch: the service thread takes everything queued
     * until it clears the flag. Under the lock, so that once
     * mailbox_set_ctx(mb, NULL) has returned nothing touches the old
     * context (lws_cancel_service() only writes to a pipe). */
    if (!mb->signalled && mb->ctx)
        lws_cancel_service(mb->ctx);
    mb->signalled = true;
    pthread_mutex_unlock(&mb->lock);
}

struct mb_event *mailbox_take_all(struct mailbox *mb)
{
    struct mb_event *head;

    pthread_mutex_lock(&mb->lock);
    head = mb->head;
    mb->head = mb->tail = NULL;
    mb->signalled = false;
    pthread_mutex_unlock(&mb->lock);
    return head;
}
