/* Listeners: one libwebsockets vhost each, with the HTTP side of the
 * gateway (handshake checks, /healthz, /metrics, static files). Service
 * thread only. */
#ifndef MQG_LISTENER_H
#define MQG_LISTENER_H

#include <stdbool.h>

#include <libwebsockets.h>

#include "config.h"

/* What a listener keeps of its configuration: listeners are not changed
 * by a reload, so nothing here points into G.cfg. */
struct listener {
    char *path;                      /* the WebSocket path */
    bool compression;
    bool http_api;                   /* /api/events, /api/publish */
    bool tls;
    struct lws_vhost *vh;
    void *ssl_ctx;                   /* the vhost's SSL_CTX, TLS only */
    char *static_real;               /* realpath of static_dir, or NULL */
};

/* Creates a vhost for every listener of cfg on ctx. Returns 0 or -1
 * (logged). */
int listener_start_all(const struct config *cfg, struct lws_context *ctx);

void listener_free_all(void);

/* Whether the request on wsi (a listener l's) may go on as far as its
 * Origin goes: none (not a browser), or one allowed (config origins). The
 * Origin is copied to origin[0..len) ("" when none). */
bool listener_origin_ok(struct lws *wsi, const struct listener *l,
                        char *origin, size_t len);

/* Whether a new session from ip would pass limits.max_connections or
 * limits.max_connections_per_ip. */
bool listener_full(const char *ip);

/* Ends an HTTP answer whose headers are at start..p (a buffer ending at
 * end, with LWS_PRE before start): writes them and body[0..len) (which
 * must fit after them), then completes the transaction. Returns what an
 * HTTP callback returns: -1 to close the connection. */
int listener_finish_answer(struct lws *wsi, unsigned char *start,
                           unsigned char *p, unsigned char *end,
                           const char *body, size_t len);

/* Shutting down: new sessions are refused (listener_refuse_new()). */
bool listener_refusing(void);

/* SIGHUP, as a transaction with the other parts of a reload.
 * listener_tls_prepare() loads and checks, aside, the certificates and keys
 * cfg names for the running TLS listeners (same order as at start); on
 * any error it keeps nothing and returns -1 (logged). Then either
 * listener_tls_commit() puts them in (new handshakes use them, open
 * sessions keep theirs) or listener_tls_abort() drops them; abort does
 * nothing when nothing is prepared. cfg must outlive the commit. */
int listener_tls_prepare(const struct config *cfg);
void listener_tls_commit(void);
void listener_tls_abort(void);

/* From now on every WebSocket handshake is refused (503): the gateway is
 * shutting down. */
void listener_refuse_new(void);

/* The HTTP reasons of the protocol callback. */
int listener_http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                           void *user, void *in, size_t len);

#endif
