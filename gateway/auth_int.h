/* What auth.c (the methods, hello, the handshake, expiry) and
 * handle_auth.c (the auth request) share. Service thread only. */
#ifndef MQG_AUTH_INT_H
#define MQG_AUTH_INT_H

#include <time.h>

#include <libwebsockets.h>

#include "log.h"

struct session;

/* The JWT verifier of the running configuration, or NULL. */
struct jwt_verifier *auth_verifier(void);

/* s's token expires at exp (seconds since the Unix epoch): then
 * token_expired and 4401. */
void auth_arm_expiry(struct session *s, time_t exp);

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
