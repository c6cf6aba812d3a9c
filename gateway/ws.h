/* The WebSocket transport (protocol.md § Transport): the libwebsockets
 * callback of the "mqgate.v1" protocol, message assembly, and writing a
 * session's queue: pre-framed frames coalesced into one write, or through
 * permessage-deflate. Service thread only. */
#ifndef MQG_WS_H
#define MQG_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

/* What a session keeps for its WebSocket connection. */
struct ws_conn {
    bool raw_ok;                      /* no extension: pre-framed writes */
    bool write_pending;               /* in ws_write_pending()'s list */
    /* a message being assembled from fragments */
    char *rx;
    size_t rx_len, rx_cap;
    /* with an extension: the fragment being written (LWS_PRE + chunk),
     * and how much of the head frame's payload is written */
    uint8_t *tx;
    size_t tx_off;
};

/* Frees what c holds. */
void ws_conn_free(struct ws_conn *c);

/* fn runs on the service thread whenever another thread woke the loop
 * (lws_cancel_service()): it drains the mailbox. */
void ws_on_wake(void (*fn)(void));

/* Writes what sessions' own callbacks queued during the loop's pass just
 * ended (see ws.c); the service loop calls it after each pass. */
void ws_write_pending(void);

#define WS_PROTOCOL "mqgate.v1"

/* The protocols of every vhost: "mqgate.v1" (first, so that a client
 * offering no subprotocol lands on it), whose per-session data is a
 * struct session, then the terminator. */
extern const struct lws_protocols ws_protocols[];

/* The protocol callback. */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
                void *user, void *in, size_t len);

#endif
