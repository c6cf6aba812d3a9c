#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "http_api.h"
#include "http_auth.h"
#include "http_pub.h"
#include "http_status.h"
#include "ipcount.h"
#include "jbuf.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "reply.h"
#include "session.h"
#include "session_int.h"
#include "sse.h"
#include "sse_stream.h"

#define EVENTS_PATH "/api/events"
#define PUBLISH_PATH "/api/publish"
#define ARG_MAX 8192
#define ARGS_MAX (EVQ_TOPICS_MAX + 16)

bool http_api_route(const struct listener *l, const char *uri)
{
    return l && l->http_api &&
           (strcmp(uri, EVENTS_PATH) == 0 || strcmp(uri, PUBLISH_PATH) == 0);
}

bool http_api_owns(enum lws_callback_reasons reason, const struct session *s)
{
    switch (reason) {
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    case LWS_CALLBACK_HTTP_WRITEABLE:
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        return s && s->http;
    default:
        return false;
    }
}

/* ---- the HTTP transports' common part ---------------------------------- */

void http_api_want_write(struct session *s)
{
    lws_callback_on_writable(s->wsi);
}

void http_api_closing(struct session *s)
{
    /* a peer that never reads cannot hold the close up for long */
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, 10);
}

/* ---- answers ------------------------------------------------------------ */

static int add_header(struct lws *wsi, const char *name, const char *value,
                      unsigned char **p, unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value,
                                       (int)strlen(value), p, end);
}

int http_api_cors(struct lws *wsi, const char *origin, unsigned char **p,
                  unsigned char *end)
{
    if (!origin[0])
        return 0;
    return add_header(wsi, "access-control-allow-origin:", origin, p, end) ||
           add_header(wsi, "access-control-allow-credentials:", "true", p,
                      end) ||
           add_header(wsi, "vary:", "Origin", p, end);
}

/* Whether the request on wsi is for the events endpoint (else publish). */
static bool for_events(struct lws *wsi)
{
    char uri[32];

    return (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) > 0 ||
            lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_OPTIONS_URI) > 0) &&
           strcmp(uri, EVENTS_PATH) == 0;
}

void http_api_count(struct lws *wsi, unsigned status)
{
    metrics_http(for_events(wsi), status);
}

int http_api_respond(struct lws *wsi, const char *origin, unsigned status,
                     const char *body, size_t len)
{
    size_t cap = LWS_PRE + 2048 + len;
    unsigned char *buf = malloc(cap), *start, *p, *end;
    int rc = -1;

    http_api_count(wsi, status);
    if (!buf)
        return -1;
    start = p = buf + LWS_PRE;
    end = buf + cap;
    if (lws_add_http_common_headers(wsi, status, "application/json", len, &p,
                                    end) ||
        add_header(wsi, "cache-control:", "no-store", &p, end) ||
        http_api_cors(wsi, origin, &p, end) ||
        (status == 401 &&
         add_header(wsi, "www-authenticate:", http_auth_challenge(wsi), &p,
                    end)) ||
        (status == 405 && add_header(wsi, "allow:", "GET, POST, OPTIONS", &p,
                                     end)))
        goto out;
    rc = listener_finish_answer(wsi, start, p, end, body, len);
out:
    free(buf);
    return rc;
}

/* The error object of code with msg, into b. */
static void error_body(struct jbuf *b, const char *code, const char *msg)
{
    jbuf_init(b);
    reply_error(b, NULL, 0, code, msg, strlen(msg));
}

int http_api_refuse(struct lws *wsi, const char *origin, unsigned status,
                    const char *code, const char *fmt, ...)
{
    char msg[256];
    struct jbuf b;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    metrics_error(code);
    error_body(&b, code, msg);
    if (!status)
        status = http_status_of(code);
    rc = b.failed ? -1 : http_api_respond(wsi, origin, status, b.p, b.len);
    jbuf_free(&b);
    return rc;
}

void http_api_refuse_later(struct session *s, unsigned status,
                           const char *code, const char *msg)
{
    struct http_conn *h = s->http;
    struct jbuf b;

    metrics_error(code);
    error_body(&b, code, msg);
    free(h->err_body);
    h->err_body = NULL;
    if (!b.failed && (h->err_body = malloc(b.len))) {
        memcpy(h->err_body, b.p, b.len);
        h->err_len = b.len;
    }
    h->err_status = status ? status : http_status_of(code);
    jbuf_free(&b);
    lws_callback_on_writable(s->wsi);
}

void http_api_finish(struct session *s)
{
    struct http_conn *h = s->http;

    if (!h)
        return;
    if (s->wsi)
        session_closed(s);
    for (size_t i = 0; i < h->n_args; i++)
        free(h->args[i]);
    free(h->args);
    free(h->last_event_id);
    if (h->q_parsed)
        evquery_clear(&h->q);
    free(h->err_body);
    free(h->body);
    for (size_t i = 0; h->answers && i < h->n_items; i++)
        free(h->answers[i]);
    free(h->answers);
    free(h);
    s->http = NULL;
}

/* Answers the refusal kept by http_api_refuse_later(): the session goes
 * first, the transaction completes. */
static int answer_kept(struct lws *wsi, struct session *s)
{
    struct http_conn *h = s->http;
    char origin[sizeof(h->origin)];
    unsigned status = h->err_status;
    char *body = h->err_body;
    size_t len = h->err_len;
    int rc;

    memcpy(origin, h->origin, sizeof(origin));
    h->err_body = NULL;
    http_api_finish(s);
    rc = body ? http_api_respond(wsi, origin, status, body, len) : -1;
    free(body);
    return rc;
}

/* ---- requests ----------------------------------------------------------- */

/* OPTIONS: a CORS preflight of either endpoint. */
static int preflight(struct lws *wsi, const char *origin)
{
    unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof(buf);

    http_api_count(wsi, 204);
    if (lws_add_http_common_headers(wsi, 204, NULL, 0, &p, end) ||
        http_api_cors(wsi, origin, &p, end) ||
        add_header(wsi, "access-control-allow-methods:", "GET, POST, OPTIONS",
                   &p, end) ||
        add_header(wsi, "access-control-allow-headers:",
                   "authorization, content-type, last-event-id", &p, end) ||
        add_header(wsi, "access-control-max-age:", "600", &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Copies the query's arguments (decoded by libwebsockets) and the
 * Last-Event-ID into h. */
static int copy_args(struct lws *wsi, struct http_conn *h, const char **why)
{
    char *buf = malloc(ARG_MAX);
    int n;

    *why = "out of memory";
    if (!buf || !(h->args = calloc(ARGS_MAX, sizeof(*h->args)))) {
        free(buf);
        return -1;
    }
    for (int i = 0;; i++) {
        n = lws_hdr_copy_fragment(wsi, buf, ARG_MAX, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        if (h->n_args == ARGS_MAX) {
            *why = "too many query arguments";
            free(buf);
            return -1;
        }
        if (!(h->args[h->n_args] = strdup(buf))) {
            free(buf);
            return -1;
        }
        h->n_args++;
    }
    n = lws_hdr_custom_copy(wsi, buf, ARG_MAX, "last-event-id:", 14);
    if (n > 0 && !(h->last_event_id = strdup(buf))) {
        free(buf);
        return -1;
    }
    free(buf);
    return 0;
}

/* Whether the Content-Type names JSON (parameters aside). */
static bool json_type(struct lws *wsi)
{
    char ct[128];
    size_t n;

    if (lws_hdr_copy(wsi, ct, sizeof(ct), WSI_TOKEN_HTTP_CONTENT_TYPE) <= 0)
        return false;
    n = strcspn(ct, "; \t");
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* What comes once s has its identity: the stream starts, or the body
 * (when it is in) is published. */
static int authenticated(struct lws *wsi, struct session *s)
{
    s->http->phase = HP_READY;
    if (s->http->events)
        return sse_start(wsi, s);
    if (s->http->body_done)
        return http_pub_run(wsi, s);
    return 0;
}

/* A credential check of s that waited ended (transport.h, auth_done). */
void http_api_auth_done(struct session *s, const char *why)
{
    if (why) {
        http_api_refuse_later(s, 401, "auth_failed", why);
        return;
    }
    s->http->phase = HP_READY;
    lws_callback_on_writable(s->wsi);
}

int http_api_request(struct lws *wsi, struct session *s,
                     const struct listener *l, const char *uri)
{
    bool events = strcmp(uri, EVENTS_PATH) == 0;
    char origin[sizeof(((struct http_conn *)0)->origin)];
    char ip[IPCOUNT_KEY_MAX], msg[256];
    const char *code, *why;
    struct http_conn *h;
    long max = conf()->limits.max_message_bytes;
    bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;

    if (!listener_origin_ok(wsi, l, origin, sizeof(origin)))
        return http_api_refuse(wsi, "", 403, "forbidden",
                               "origin not allowed");
    if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0)
        return preflight(wsi, origin);
    if (events ? !get : !post)
        return http_api_refuse(wsi, origin, 405, "bad_request",
                               "%s takes %s", uri, events ? "GET" : "POST");
    if (!events) {
        char cl[32];

        if (!json_type(wsi))
            return http_api_refuse(wsi, origin, 415, "bad_request",
                                   "expected Content-Type: application/json");
        if (lws_hdr_copy(wsi, cl, sizeof(cl),
                         WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
            return http_api_refuse(wsi, origin, 411, "bad_request",
                                   "expected Content-Length");
        if (strtoll(cl, NULL, 10) > max)
            return http_api_refuse(wsi, origin, 413, "limit_exceeded",
                                   "the body is over %ld bytes", max);
    }
    lws_get_peer_simple(wsi, ip, sizeof(ip));
    if (listener_refusing())
        return http_api_refuse(wsi, origin, 503, "broker_unavailable",
                               "the gateway is shutting down");
    if (listener_full(ip))
        return http_api_refuse(wsi, origin, 503, "limit_exceeded",
                               "too many connections");
    if (!(h = calloc(1, sizeof(*h))))
        return -1;
    h->events = events;
    memcpy(h->origin, origin, sizeof(origin));
    if (events) {
        enum req_err e;

        if (copy_args(wsi, h, &why) < 0) {
            /* no session yet: the conn goes with its arguments */
            s->http = h;
            http_api_finish(s);
            return http_api_refuse(wsi, origin, 400, "bad_request", "%s", why);
        }
        h->q_parsed = true;
        e = evquery_parse(&h->q, (const char *const *)h->args, h->n_args,
                          h->last_event_id, msg, sizeof(msg));
        if (e != RQ_OK) {
            s->http = h;
            http_api_finish(s);
            return http_api_refuse(wsi, origin, 0, request_err_code(e), "%s",
                                   msg);
        }
    }
    s->http = h;
    session_attach(s, events ? &sse_transport : &http_pub_transport, wsi, ip);
    switch (http_auth(s, &code, msg, sizeof(msg))) {
    case HA_OK:
        return authenticated(wsi, s);
    case HA_PENDING:
        /* a client that goes quiet meanwhile is not kept for long */
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
                        (int)conf()->auth.timeout_s);
        return 0;
    default:
        http_api_finish(s);
        return http_api_refuse(wsi, origin, 401, code, "%s", msg);
    }
}

/* ---- the connection's other callbacks ---------------------------------- */

static int body(struct session *s, const char *in, size_t len)
{
    struct http_conn *h = s->http;
    size_t max = (size_t)conf()->limits.max_message_bytes;

    if (h->events)
        return 0; /* a GET with a body: ignored */
    if (h->body_len + len > max)
        return -1; /* past its Content-Length, which was within max */
    if (h->body_len + len + 1 > h->body_cap) {
        size_t cap = h->body_cap ? h->body_cap : 1024;
        char *b;

        while (cap < h->body_len + len + 1)
            cap *= 2;
        if (!(b = realloc(h->body, cap)))
            return -1;
        h->body = b;
        h->body_cap = cap;
    }
    memcpy(h->body + h->body_len, in, len);
    h->body_len += len;
    return 0;
}

int http_api_callback(struct lws *wsi, enum lws_callback_reasons reason,
                      struct session *s, void *in, size_t len)
{
    struct http_conn *h = s->http;

    switch (reason) {
    case LWS_CALLBACK_HTTP_BODY:
        return body(s, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        h->body_done = true;
        if (h->phase == HP_READY && !h->err_body)
            return http_pub_run(wsi, s);
        if (h->err_body)
            lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (h->err_body && (h->events || h->body_done))
            return answer_kept(wsi, s);
        if (h->phase == HP_READY) {
            lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
            return authenticated(wsi, s);
        }
        if (h->phase != HP_RUNNING) {
            if (s->close_code)   /* shutting down before it started */
                return http_api_refuse(wsi, h->origin, 503,
                                       "broker_unavailable", "%s",
                                       s->close_reason);
            return 0;
        }
        return h->events ? sse_writable(wsi, s) : http_pub_writable(wsi, s);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        http_api_finish(s);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, s, in, len);
    }
}
