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

/* The counters of /metrics, each owned here and counted by the module
 * whose event it is. Service thread only. */
enum mcounter {
    MC_MSGS_IN,          /* messages from the broker */
    MC_BYTES_IN,         /* their payload bytes */
    MC_FRAMES_OUT,       /* frames queued to sessions */
    MC_BYTES_OUT,        /* their bytes */
    MC_PUBS,             /* publishes from sessions handed to the broker */
    MC_PUB_ERRORS,       /* publishes from sessions that failed */
    MC_SLOW_CLOSES,      /* sessions closed with 4408 */
    MC_ERROR_CLOSES,     /* sessions closed with 4429 */
    MC_FRAMES_DROPPED,   /* frames dropped with the queue of a slow session */
    MC_SESSIONS_OPENED,  /* sessions opened since start */
    MC_RECONNECTS,       /* broker connections after the first */
    MC_CONFLATED,        /* msg frames dropped by conflation */
    MC_MQTT5_REFUSED,    /* broker connects refused for MQTT 5 */
    MC_REQUESTS,         /* requests published (requests.c) */
    MC_REQUEST_TIMEOUTS, /* requests answered with timeout */
    MC_RESPONSES_IGNORED, /* reply messages that answered nothing */
    MC_COUNTERS
};

extern uint64_t metrics_counters[MC_COUNTERS];

/* Adds n to counter c. */
static inline void metrics_add(enum mcounter c, uint64_t n)
{
    metrics_counters[c] += n;
}

/* Counts an authentication outcome. */
void metrics_auth(enum auth_method m, bool ok);

/* Counts an error frame by its protocol code. */
void metrics_error(const char *code);

/* Records the time from a broker message's arrival to its frames being
 * queued to every session, in microseconds. */
void metrics_fanout_us(uint64_t us);

/* Counts an answer of the HTTP API: events (else publish) with status. */
void metrics_http(bool events, unsigned status);

/* Renders every metric into *out (malloc'd, caller frees). 0 or -1. */
int metrics_render(char **out, size_t *len);

#endif
