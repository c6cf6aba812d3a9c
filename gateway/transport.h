/* What a session needs of the connection behind it: the WebSocket today
 * (ws.c), Server-Sent Events next. A transport writes the frames a
 * session has queued (built once per message, shared by reference) when
 * its connection is writable, and closes it with the session's close code
 * once they are out. Service thread only. */
#ifndef MQG_TRANSPORT_H
#define MQG_TRANSPORT_H

#include <stddef.h>

struct session;

struct transport {
    const char *name;                       /* "ws", for logs and metrics */
    /* Asks to be called back when s's connection is writable; the
     * transport then writes what s has queued, or its close. */
    void (*want_write)(struct session *s);
    /* s is closing: bounds how long a peer that does not read can hold
     * the close up. */
    void (*closing)(struct session *s);
    /* The peer is silent: drop the connection now, without a close
     * handshake nobody would read. */
    void (*hang_up)(struct session *s);
    /* Bytes the kernel holds unsent on s's connection. */
    size_t (*kernel_unsent)(struct session *s);
};

#endif
