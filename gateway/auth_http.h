/* The authentication webhook (config.md § auth.http): the gateway POSTs
 * a description of a password or token attempt to the operator's URL and
 * takes a 200 answer {"user","roles","expires_at"}; anything else (another
 * status, a timeout, a malformed answer, more than max_in_flight calls
 * waiting) fails closed. The call runs on the HTTP thread
 * (http_client.h); positive answers are kept cache_s seconds. The secret
 * (secret_file, sent as Authorization: Bearer) is never logged, nor are
 * passwords and tokens. Service thread only. */
#ifndef MQG_AUTH_HTTP_H
#define MQG_AUTH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"

struct http_call;

/* SIGHUP and start, as a transaction: auth_http_prepare() reads
 * cfg->auth.http's secret_file aside (0, or -1 logged); then
 * auth_http_commit() puts it in (the cache is emptied when the URL or the
 * secret changed, or the webhook went) or auth_http_abort() drops it. */
int auth_http_prepare(const struct config *cfg);
void auth_http_commit(void);
void auth_http_abort(void);
void auth_http_destroy(void);

/* True when a webhook is configured. */
bool auth_http_enabled(void);

/* An attempt to describe: method "password" (user, password, otp) or
 * "token" (token); address and origin of the client (origin may be
 * NULL). */
struct auth_http_query {
    const char *user, *password, *otp;   /* password */
    const char *token;                   /* token: set for that method */
    const char *address, *origin;
};

struct auth_http_result {
    bool ok;
    char *user;                    /* malloc'd; ok only */
    const struct cfg_role **roles; /* malloc'd, into the running config */
    size_t n_roles;                /* unknown names are left out */
    bool has_expiry;
    time_t expires_at;
    const char *reason;            /* !ok: static text for the client,
                                      which says nothing of the webhook's
                                      address or its errors */
    const char *detail;            /* !ok: for the log (valid during the
                                      callback), never a secret */
};

void auth_http_result_clear(struct auth_http_result *res);

/* Called with the outcome (res cleared after it returns). */
typedef void auth_http_done_fn(void *owner, struct auth_http_result *res);

enum auth_http_ask { AUTH_HTTP_ASKED, AUTH_HTTP_CACHED, AUTH_HTTP_BUSY };

/* Asks the webhook about q for owner. AUTH_HTTP_CACHED: a positive
 * answer in the cache is in *res (clear it), done is not called.
 * AUTH_HTTP_ASKED: *call is the call under way, done will be called
 * (unless auth_http_forget(*call)). AUTH_HTTP_BUSY: max_in_flight calls
 * wait already, or the call could not start (counted; *res holds the
 * reasons, not ok). */
enum auth_http_ask auth_http_ask(const struct auth_http_query *q,
                                 void *owner, auth_http_done_fn *done,
                                 struct http_call **call,
                                 struct auth_http_result *res);

/* The owner goes away: done will not be called for call. */
void auth_http_forget(struct http_call *call);

struct auth_http_stats {
    uint64_t ok, refused, failed, malformed, busy, cached;
    uint64_t in_flight, cache_entries;
};

void auth_http_stats(struct auth_http_stats *st);

#endif
