/* struct session: private to the session module (session.c, the
 * transports ws.c, sse_stream.c, http_pub.c and http_api.c, the request
 * handlers handle*.c, auth.c). Everything else reaches a session
 * through session.h. Service thread only. */
#ifndef MQG_SESSION_INT_H
#define MQG_SESSION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <libwebsockets.h>

#include "config.h"
#include "requests.h"
#include "sendq.h"
#include "session.h"
#include "subs.h"
#include "tbucket.h"
#include "ws.h"

struct frame;
struct http_call;
struct http_conn;
struct pub_ctx;
struct replay;

enum session_state { SS_OPENING, SS_AUTHED, SS_CLOSING };

struct session;

/* Moves s to state, keeping the counts of /metrics. */
void session_set_state(struct session *s, enum session_state state);

struct session {
    const struct transport *tp;
    struct lws *wsi;
    struct session *prev, *next;      /* every open session */
    uint64_t serial;
    char ip[48];                      /* peer address, for the per-IP count
                                         (INET6_ADDRSTRLEN and a little) */
    enum session_state state;
    bool anonymous;                   /* cred == CRED_ANONYMOUS */
    enum session_cred cred;
    char *user;
    const struct cfg_role **roles;    /* into G.cfg */
    size_t n_roles;
    char *mount;                      /* NULL: none */
    size_t mount_len;
    struct subs_holds holds;          /* the registry's (subs.h) */
    struct pub_ctx *pubs;             /* publishes awaiting the broker */
    struct requests_held reqs;        /* requests awaiting a response
                                         (requests.h) */
    struct sendq q;                   /* frames to send */
    /* replay.c: the replays under way, the next one (attached once its
     * ok is queued), and the live frames waiting for them */
    struct replay *replays, *replay_next;
    struct sendq held;
    size_t slack;                     /* the bound grown for one big frame */
    size_t k_bytes;                   /* unsent in the kernel, last seen */
    size_t unprobed;                  /* written since k_bytes was read */
    struct ws_conn ws;                /* the WebSocket transport's part */
    struct http_conn *http;           /* an HTTP request's (http_api.h) */
    uint64_t last_rx_ms;              /* anything from the peer, pongs too */
    uint64_t last_ping_ms;
    bool ping_due;                    /* a ping goes at the next write */
    uint64_t err_window_ms;
    uint32_t err_count;
    int close_code;                   /* 0: open */
    const char *close_reason;         /* a literal: session_close() */
    struct tbucket bucket;            /* publish rate */
    struct tbucket sub_bucket;        /* sub and unsub rate */
    lws_sorted_usec_list_t auth_timer;
    lws_sorted_usec_list_t exp_timer;  /* token expiry */
    time_t token_exp;
    struct auth_job *auth_job;        /* a password check under way */
    struct http_call *auth_call;      /* a webhook call under way */
    char *auth_token;                 /* a token waiting for the key set */
    struct session *kid_prev, *kid_next; /* auth_wait.c's list of those */
    int auth_method;                  /* enum auth_method (metrics.h) of
                                         the check under way: with
                                         AUTH_HANDSHAKE no hello yet */
    char *auth_id;                    /* ... and the id to answer */
    size_t auth_id_len;
    char *origin;                     /* the handshake's Origin, or NULL */
    /* its slot of the keepalive wheel (session.c) */
    struct session *kprev, *knext;
    uint8_t kslot;
};

#endif
