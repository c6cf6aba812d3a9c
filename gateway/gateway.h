/* The daemon's state, owned by the libwebsockets service thread. */
#ifndef MQG_GATEWAY_H
#define MQG_GATEWAY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "autoconfig.h"
#include "config.h"
#include "mailbox.h"

struct lws_context;
struct session;
struct upstream;
struct ipcount;

#define MQG_SERVER "mqgate/" PACKAGE_VERSION

struct metrics {
    uint64_t msgs_in, bytes_in;      /* from the broker */
    uint64_t msgs_out, bytes_out;    /* frames queued to sessions */
    uint64_t pubs, pub_errors;       /* publishes from sessions */
    uint64_t slow_closes, error_closes, frames_dropped;
    uint64_t sessions_total;
    uint64_t reconnects;
};

struct gateway {
    struct config *cfg;
    const char *config_path;
    struct lws_context *ctx;
    struct mailbox mbox;
    struct upstream *up;
    struct session *sessions;        /* every open session */
    long n_sessions;
    struct ipcount *ipc;             /* sessions per client address */
    bool broker_up;
    bool stopping;                   /* shutting down: no new sessions */
    long pubs_pending;               /* QoS 1/2 publishes not yet acked */
    uint64_t seq;                    /* per delivered broker message */
    uint8_t *scratch;                /* write coalescing, LWS_PRE + size */
    size_t scratch_size;
    struct metrics m;
    /* set by the signal handler, which runs on the service thread only:
     * the other threads (Paho's, the password worker) block the signals */
    volatile sig_atomic_t stop, reload;
};

extern struct gateway G;

/* Runs the daemon with cfg (ownership passes to the gateway) until SIGTERM
 * or SIGINT. Returns the process exit status. */
int gateway_run(struct config *cfg, const char *config_path);

/* Milliseconds, and microseconds, of a monotonic clock. */
uint64_t gateway_now_ms(void);
uint64_t gateway_now_us(void);

/* Every subscription is back after a reconnect: the broker is "up" for
 * the sessions and /healthz. Service thread. */
void gateway_subscriptions_restored(void);

/* Takes and handles every mailbox event. Service thread. */
void gateway_drain(void);

#endif
