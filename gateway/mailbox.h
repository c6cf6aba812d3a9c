/* The Paho-thread to service-thread mailbox (docs/design.md, "Threads"): any
 * thread pushes events; the service thread takes them all at once in
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED. */
#ifndef MQG_MAILBOX_H
#define MQG_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lws_context;

enum mb_type {
    MB_MESSAGE,        /* a PUBLISH from the broker */
    MB_CONNECTED,      /* upstream connection established */
    MB_CONNECT_FAILED, /* a connect attempt failed */
    MB_CONN_LOST,      /* an established connection dropped */
    MB_SUBACK,         /* a SUBSCRIBE completed (code: granted qos, or <0) */
    MB_PUBDONE,        /* a publish completed (code: 0 or a protocol error) */
    MB_AUTHDONE,       /* a password check finished on the worker (ctx) */
};

#define MB_MAX_SUBIDS 8

struct mb_event {
    struct mb_event *next;
    enum mb_type type;
    int code;                 /* per type, see above */
    void *ctx;                /* the context given with the request */
    uint64_t tag;             /* MB_SUBACK: the tag given with the SUBSCRIBE */
    uint64_t t_us;            /* MB_MESSAGE: arrival, clock_now_us() */
    uint64_t ts_ms;           /* MB_MESSAGE: arrival, clock_wall_ms() */
    /* MB_MESSAGE */
    uint8_t qos;
    bool retained;
    uint8_t n_subids;         /* MQTT 5 subscription identifiers */
    uint32_t subids[MB_MAX_SUBIDS];
    char *topic;              /* NUL-terminated, points into data */
    size_t topic_len;
    uint8_t *payload;         /* points into data */
    size_t payload_len;
    uint8_t *props;           /* MQTT 5 properties (props.h), into data;
                                 NULL when the message had none */
    size_t props_len;
    char data[];
};

struct mailbox {
    pthread_mutex_t lock;
    struct mb_event *head, *tail;  /* {lock} */
    bool signalled;                /* {lock} a wake-up is already pending */
    struct lws_context *ctx;       /* {lock} whom a push wakes; NULL: none */
};

int mailbox_init(struct mailbox *mb);
void mailbox_destroy(struct mailbox *mb);

/* Sets the context that pushes wake (NULL: none; events still queue).
 * Returns once no push is waking the previous one: set NULL before that
 * context is destroyed while any thread may still push. */
void mailbox_set_ctx(struct mailbox *mb, struct lws_context *ctx);

/* An event with extra bytes of data, zeroed; NULL when out of memory. */
struct mb_event *mb_event_new(enum mb_type type, size_t extra);

/* Takes ownership of ev and wakes the service thread. Any thread. */
void mailbox_push(struct mailbox *mb, struct mb_event *ev);

/* Takes every pending event, oldest first; the caller frees each with
 * free(). Service thread. */
struct mb_event *mailbox_take_all(struct mailbox *mb);

#endif
