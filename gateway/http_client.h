/* HTTP(S) calls off the service thread: one thread runs libcurl's multi
 * interface for every call (the JWKS fetches, the authentication
 * webhook); each result comes back through the mailbox as MB_HTTPDONE.
 *
 *   service thread                          HTTP thread
 *   http_call_start() --queue, wakeup-->    curl_multi_perform/poll
 *   http_call_finish() <--MB_HTTPDONE--     (ev->ctx is the call)
 *
 * Every function here but the thread's own is for the service thread.
 * A call never follows redirects, speaks http and https only, always
 * verifies the server's certificate and host name, uses no proxy, and
 * is bounded in time and in the size of its answer. */
#ifndef MQG_HTTP_CLIENT_H
#define MQG_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct mailbox;
struct http_call;

/* Called on the service thread with the finished call (its answer in
 * the accessors below), unless the owner disowned it; the call is freed
 * when it returns. */
typedef void http_done_fn(struct http_call *c, void *owner);

struct http_request {
    const char *url;
    const char *body;           /* NULL: GET; else POST application/json */
    size_t body_len;
    const char *bearer;         /* NULL: no Authorization header */
    const char *ca_file;        /* NULL: the system's CAs */
    long timeout_ms;            /* the whole call */
    size_t max_bytes;           /* a longer answer fails the call */
};

/* Starts the HTTP thread, which posts its results to mb. 0 or -1
 * (logged). Idempotent. */
int http_client_init(struct mailbox *mb);

/* Stops the thread: the calls under way end at once, failed ("shutting
 * down"), and come back through the mailbox like any other, as do the
 * ones still queued. Call before mailbox_destroy(). */
void http_client_destroy(void);

/* Queues a call; the strings of r are copied (the body and the bearer
 * are wiped when the call is freed). Returns the call, or NULL (logged
 * by the caller) when the thread does not run or memory is short; done
 * is then never called. */
struct http_call *http_call_start(const struct http_request *r,
                                  http_done_fn *done, void *owner);

/* The owner goes away: done will not be called; the call is freed when
 * it comes back. The caller forgets c. */
void http_call_disown(struct http_call *c);

/* The owner c was started with. */
void *http_call_owner(const struct http_call *c);

/* MB_HTTPDONE (ev->ctx): calls done (unless disowned) and frees c; the
 * event is freed by the caller, as any other. After shutdown too: every
 * owner has disowned its calls by then. */
void http_call_finish(struct http_call *c);

/* The answer of a finished call: the HTTP status (0 when there was no
 * answer: then http_call_error() says why), the body (NUL-terminated,
 * len bytes) and the failure (NULL when an answer came). */
long http_call_status(const struct http_call *c);
const char *http_call_body(const struct http_call *c, size_t *len);
const char *http_call_error(const struct http_call *c);

#endif
