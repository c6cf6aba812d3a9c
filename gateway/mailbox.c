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

struct mb_event *mb_event_new(enum mb_type type, size_t extra)
{
    struct mb_event *ev = calloc(1, sizeof(*ev) + extra);

    if (ev)
        ev->type = type;
    return ev;
}

void mailbox_push(struct mailbox *mb, struct mb_event *ev)
{
    bool wake;

    ev->next = NULL;
    pthread_mutex_lock(&mb->lock);
    if (mb->tail)
        mb->tail->next = ev;
    else
        mb->head = ev;
    mb->tail = ev;
    wake = !mb->signalled;
    mb->signalled = true;
    pthread_mutex_unlock(&mb->lock);
    /* One wake-up per batch: the service thread takes everything queued
     * until it clears the flag. */
    if (wake && mb->ctx)
        lws_cancel_service(mb->ctx);
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
