/* What a session needs of the connection behind it: the WebSocket (ws.c),
 * a Server-Sent Events stream (sse.c) or a publish request (http_pub.c).
 * A transport writes the frames a
 * session has queued (built once per message, shared by reference) when
 * its connection is writable, and closes it with the session's close code
 * once they are out. Service thread only. */
#ifndef MQG_TRANSPORT_H
#define MQG_TRANSPORT_H

#include <stddef.h>

struct session;

struct transport {
    const char *name;                 /* "ws", "sse", "http": logs, metrics */
    /* Asks to be called back when s's connection is writable; the
     * transport then writes what s has queued, or its close. */
    void (*want_write)(struct session *s);
    /* s is closing: bounds how long a peer that does not read can hold
     * the close up. */
    void (*closing)(struct session *s);
    /* The peer is silent: drop the connection now, without a close
     * handshake nobody would read. NULL for a transport whose peer never
     * speaks once the request is in (SSE): never hung up for silence;
     * instead its ping_due is set every limits.ping_interval_s. */
    void (*hang_up)(struct session *s);
    /* Bytes the kernel holds unsent on s's connection. */
    size_t (*kernel_unsent)(struct session *s);
    /* NULL, or called instead of the auth request's answer when a
     * password check of s ends (handle_auth.c): why is NULL when s now has
     * the identity, else the refusal (for the client). */
    void (*password_done)(struct session *s, const char *why);
};

/* Bytes the kernel holds unsent on the TCP connection of s (SIOCOUTQ):
 * the kernel_unsent of every transport here. */
size_t ws_kernel_unsent(struct session *s);

#endif
