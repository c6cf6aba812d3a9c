/* WebSocket frames built once and shared by reference (docs/design.md,
 * "One broker message, to a browser socket"). A server frame is unmasked,
 * so its bytes, header included, are the same for every session that
 * receives it. The same message as a Server-Sent Event is built once too,
 * when the first SSE session writes it, and kept with the frame. Service
 * thread only: the reference count is not atomic. */
#ifndef MQG_FRAME_H
#define MQG_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "payload.h"

#define FRAME_HDR_MAX 10

struct frame {
    uint32_t refs;
    uint32_t len;       /* bytes at data: header and payload */
    uint64_t topic_key; /* a msg frame's topic, hashed (frame_topic_key());
                           0 for other frames */
    uint8_t *data;      /* the whole frame, ready for the wire */
    uint8_t *payload;   /* the text payload, inside data */
    size_t payload_len;
    uint64_t seq;       /* a msg frame's stream position; 0: none */
    char *sse;          /* the event (frame_sse()), LWS_PRE into its
                           buffer; NULL until asked */
    size_t sse_len;
    uint8_t buf[];      /* LWS_PRE, header room, payload */
};

/* A text frame with room for payload_len bytes at f->payload, header
 * already written, one reference held by the caller; NULL when out of
 * memory. */
struct frame *frame_new(size_t payload_len);

/* Where a message stands in the gateway's stream (protocol.md, "Stream
 * positions"): its seq (0: none, as for the broker's retained replay),
 * when the gateway received it, and whether it is replayed history. */
struct frame_pos {
    uint64_t seq, ts_ms;
    bool history;
};

/* An MQTT message as one session sees it. */
struct frame_msg {
    const char *topic;            /* mount-relative */
    size_t topic_len;
    const uint8_t *payload;
    size_t payload_len;
    enum payload_kind kind;       /* payload_classify() */
    const uint8_t *props;         /* MQTT 5 properties (props.h); NULL: none */
    size_t props_len;
    const char *mount;            /* the session's (response_topic is
                                     relative to it); mount_len 0: none */
    size_t mount_len;
    int qos;
    bool retain;
};

/* The msg frame {"op":"msg","topic":T,BODY[,"props":{...}],"qos":Q,
 * "retain":R[,"seq":S,"ts":T[,"history":true]]} of m, its payload carried
 * as m->kind says (JSON spliced verbatim, escaped text, or base64); pos
 * NULL or with seq 0 for none. One reference held by the caller. */
struct frame *frame_new_msg(const struct frame_msg *m,
                            const struct frame_pos *pos);

/* The key of a broker topic for frame->topic_key: never 0. */
uint64_t frame_topic_key(const char *topic, size_t len);

/* A text frame holding a copy of s[0..len). */
struct frame *frame_new_text(const char *s, size_t len);

/* The frame as a Server-Sent Event (sse.h), its id naming epoch: built at
 * the first call and kept; NULL when out of memory. */
const char *frame_sse(struct frame *f, const char *epoch, size_t *len);

static inline struct frame *frame_ref(struct frame *f)
{
    f->refs++;
    return f;
}

void frame_unref(struct frame *f);

#endif
