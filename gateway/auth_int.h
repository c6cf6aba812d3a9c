/* What auth.c (the methods, hello, the handshake, expiry) and
 * handle_auth.c (the auth request) share. Service thread only. */
#ifndef MQG_AUTH_INT_H
#define MQG_AUTH_INT_H

#include <time.h>

#include <libwebsockets.h>

#include "log.h"
#include "metrics.h"
#include "session.h"

struct session;
struct request;
struct jwt_identity;
struct jwks;

/* The JWT verifier of the running configuration, or NULL. */
struct jwt_verifier *auth_verifier(void);

/* s's token expires at exp (seconds since the Unix epoch): then
 * token_expired and 4401. */
void auth_arm_expiry(struct session *s, time_t exp);

/* Applies a verified identity id to s, which method m (AUTH_HANDSHAKE:
 * the handshake's credential, no hello sent yet) brought as cred: for a
 * request as take_identity() does (ok, forbidden, or auth_failed and
 * 4401) answering rid; for the handshake s only takes it. Arms the expiry
 * at id->exp (0: none). Counts and logs. Returns 0 when s took it. */
int auth_apply(struct session *s, enum auth_method m, enum session_cred cred,
               const struct jwt_identity *id, const char *rid,
               size_t rid_len);

/* The credential of method m was refused (why: for the client, detail
 * for the log, NULL: why; never a secret): counted, logged; a request
 * gets auth_failed and 4401, answering rid. */
void auth_apply_failed(struct session *s, enum auth_method m, const char *why,
                       const char *detail, const char *rid, size_t rid_len);

/* Frees the id of the request a check under way was to answer. */
void auth_forget_id(struct session *s);

/* auth_wait.c. Checks token for s (method m: AUTH_TOKEN, the id to
 * answer in s->auth_id, or AUTH_HANDSHAKE): a JWT when auth.jwt is
 * configured and token has the JWS form, else the webhook when
 * configured. 0: *id filled (clear it), from *cred; -1: refused, the
 * reason in why (for the client) and, when set, *detail (static, for
 * the log); 1: under way, applied with auth_apply() or
 * auth_apply_failed() when it ends (and for the handshake settled). */
int auth_token_check(struct session *s, const char *token, enum auth_method m,
                     struct jwt_identity *id, enum session_cred *cred,
                     char *why, size_t whylen, const char **detail);

/* A password request of r for a user the users file does not hold: the
 * webhook, answered now (cache, busy) or when it answers. s->auth_id
 * holds r's id. */
void auth_webhook_password(struct session *s, const struct request *r);

/* jwks_fetch.h's callback: the verifier takes set; each token waiting
 * for the fetch is checked once more. */
void auth_keys_fetched(const struct jwks *set);

/* Budgets of the failed-authentication log lines, per client address, and
 * of the lines refusing a login at once because too many are under way. */
extern struct log_limit *auth_fail_log, *auth_busy_log;

/* A line was held back: its count goes out when its window ends (a timer
 * on ctx). */
void auth_log_held(struct lws_context *ctx);

/* Logs a failed authentication of s within its address' budget. */
#define log_failure(lim, s, fmt, ...)                                      \
    do {                                                                   \
        if (!log_limited(lim, (s)->ip, LOG_LVL_INFO,                       \
                         "session %llu: " fmt " (from %s)",                \
                         (unsigned long long)(s)->serial, __VA_ARGS__,     \
                         (s)->ip))                                         \
            auth_log_held(lws_get_context((s)->wsi));                           \
    } while (0)

#endif
