/* The HTTP API of a listener with http_api (protocol.md, HTTP API): the
 * routes GET /api/events (sse.c) and POST /api/publish (http_pub.c), their
 * Origin and CORS rules and preflights, their refusals with the status of
 * each error, and the part of a session that an HTTP request keeps. An
 * HTTP request's session lives in the connection's per-transaction data
 * (libwebsockets frees it when the transaction completes or the
 * connection closes): it is closed here first. Service thread only. */
#ifndef MQG_HTTP_API_H
#define MQG_HTTP_API_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

#include "evquery.h"

struct session;
struct listener;

enum http_phase {
    HP_AUTH,      /* a password check (Basic) under way */
    HP_READY,     /* authenticated: the endpoint's work may start */
    HP_RUNNING,   /* streaming (events) or publishing (publish) */
};

/* What an HTTP request's session keeps (struct session's http). */
struct http_conn {
    bool events;                      /* else publish */
    enum http_phase phase;
    char origin[512];                 /* allowed Origin to answer, or "" */
    /* a refusal to answer at the next writable callback */
    unsigned err_status;
    char *err_body;
    size_t err_len;
    /* events: the query's arguments (copies) and what they mean */
    char **args;
    size_t n_args;
    char *last_event_id;
    struct evquery q;
    bool q_parsed;
    bool close_sent;                  /* the close event is written */
    /* publish: the body, and the answers by index */
    char *body;
    size_t body_len, body_cap;
    bool body_done;
    bool array;
    size_t n_items, n_answered;
    char **answers;                   /* each an object's JSON, or NULL */
};

/* Whether l serves uri as an HTTP API endpoint. */
bool http_api_route(const struct listener *l, const char *uri);

/* LWS_CALLBACK_HTTP for an endpoint (http_api_route()); user is the
 * connection's per-transaction data (a zeroed struct session). Returns
 * what the callback returns. */
int http_api_request(struct lws *wsi, struct session *s,
                     const struct listener *l, const char *uri);

/* Whether a callback for reason with user s is for an HTTP API request's
 * session: only the callbacks below give the connection's per-transaction
 * data as user (LWS_CALLBACK_FILTER_NETWORK_CONNECTION, for one, gives a
 * structure of lws' own stack), so s is looked at for those only. */
bool http_api_owns(enum lws_callback_reasons reason, const struct session *s);

/* The other callbacks of such a session's connection (body, writable,
 * closed, protocol dropped). */
int http_api_callback(struct lws *wsi, enum lws_callback_reasons reason,
                      struct session *s, void *in, size_t len);

/* ---- for sse.c, http_pub.c and http_auth.c ---------------------------- */

/* Answers the request on wsi with status and a JSON body, with the CORS
 * headers for origin (when not ""), WWW-Authenticate for 401, and Allow
 * for 405; completes the transaction. Returns what the callback
 * returns. */
int http_api_respond(struct lws *wsi, const char *origin, unsigned status,
                     const char *body, size_t len);

/* The error object {"op":"error","code":C,"message":M} answered with
 * status (0: the code's own, http_status_of()). */
int http_api_refuse(struct lws *wsi, const char *origin, unsigned status,
                    const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Keeps the refusal for the next writable callback of s's connection
 * (after an answer that came from elsewhere: a password check) and asks
 * for that callback. */
void http_api_refuse_later(struct session *s, unsigned status,
                           const char *code, const char *msg);

/* Closes s's session (everything it holds goes) and frees its http part:
 * before the transaction completes. */
void http_api_finish(struct session *s);

/* Counts an answer of status to the request on wsi in /metrics. */
void http_api_count(struct lws *wsi, unsigned status);

/* The want_write and closing of the HTTP transports (transport.h). */
void http_api_want_write(struct session *s);
void http_api_closing(struct session *s);

/* The auth_done of the HTTP transports (transport.h). */
void http_api_auth_done(struct session *s, const char *why);

/* Adds the CORS headers for origin (nothing when ""). 0, or 1 when out of
 * room. */
int http_api_cors(struct lws *wsi, const char *origin, unsigned char **p,
                  unsigned char *end);

#endif
