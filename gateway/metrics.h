/* /metrics in the Prometheus text format. Service thread. */
#ifndef MQG_METRICS_H
#define MQG_METRICS_H

#include <stddef.h>

#include <stdbool.h>
#include <stdint.h>

enum auth_method {
    AUTH_TOKEN,       /* auth request with a JWT */
    AUTH_PASSWORD,    /* auth request with a password (and OTP) */
    AUTH_HANDSHAKE,   /* JWT in the handshake */
    AUTH_ANONYMOUS,   /* auth.anonymous_role */
    AUTH_METHODS
};

/* Counts an authentication outcome. */
void metrics_auth(enum auth_method m, bool ok);

/* Counts an error frame by its protocol code. */
void metrics_error(const char *code);

/* Records the time from a broker message's arrival to its frames being
 * queued to every session, in microseconds. */
void metrics_fanout_us(uint64_t us);

/* Renders every metric into *out (malloc'd, caller frees). 0 or -1. */
int metrics_render(char **out, size_t *len);

#endif
