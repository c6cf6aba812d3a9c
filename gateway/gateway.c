#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <libwebsockets.h>

#include "auth.h"
#include "auth_users.h"
#include "clock.h"
#include "conf.h"
#include "evloop.h"
#include "gateway.h"
#include "http_pub.h"
#include "fanout.h"
#include "handle.h"
#include "http_client.h"
#include "listener.h"
#include "log.h"
#include "mailbox.h"
#include "metrics.h"
#include "notify.h"
#include "preflight.h"
#include "requests.h"
#include "stream.h"
#include "subs.h"
#include "throttle.h"
#include "session.h"
#include "upstream.h"
#include "worker.h"
#include "ws.h"

/* The daemon's own state: what the service loop, the signals and the
 * reload need. Everything else lives with the module that owns it. */
static struct {
    struct config *cfg;              /* owned; conf_live points to it */
    const char *config_path;
    struct lws_context *ctx;
    struct mailbox mbox;
    struct upstream *up;
    /* set by the signal handler, which runs on the service thread only:
     * the other threads (Paho's, the password worker) block the signals */
    volatile sig_atomic_t stop, reload;
} G;

/* SIGTERM: up to SHUTDOWN_WAIT_MS for the broker's acknowledgements, then
 * up to SHUTDOWN_DISCONNECT_MS for the DISCONNECT to go out: the whole
 * shutdown ends within 6 s (config.md). */
#define SHUTDOWN_WAIT_MS 5000
#define SHUTDOWN_DISCONNECT_MS 500
/* ... and what a password check still running may take of it, to 5.8 s in
 * all: the process exits around a check still hashing then */
#define SHUTDOWN_TOTAL_MS 5800

static lws_sorted_usec_list_t reconnect_timer, shutdown_timer, keepalive_timer;
static bool ever_connected;

/* One timer for every session's keepalive, a quarter of the ping interval
 * apart (at most a second), instead of timers per connection. */
static void keepalive_tick(lws_sorted_usec_list_t *sul)
{
    uint64_t period_ms = session_keepalive_period_ms();

    session_keepalive(clock_now_ms());
    stream_tick();
    worker_tick();
    lws_sul_schedule(G.ctx, 0, sul, keepalive_tick,
                     (lws_usec_t)period_ms * LWS_US_PER_MS);
}

static void shutdown_tick(lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(G.ctx, 0, sul, shutdown_tick, 50 * LWS_US_PER_MS);
}

static void reconnect_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    upstream_connect(G.up);
}

/* Stopping with publishes the broker has not acknowledged, and no broker:
 * it has the shutdown's few seconds to come back, so it is tried this
 * often, not at the backoff's next turn (which may be past the exit). */
#define SHUTDOWN_RETRY_MS 500

static void schedule_reconnect(bool was_connected)
{
    uint32_t ms = upstream_retry_delay(G.up, was_connected);

    if (G.stop && handle_pub_pending() > 0 && ms > SHUTDOWN_RETRY_MS)
        ms = SHUTDOWN_RETRY_MS;
    log_info("reconnecting to the broker in %u ms", ms);
    lws_sul_schedule(G.ctx, 0, &reconnect_timer, reconnect_cb,
                     (lws_usec_t)ms * 1000);
}


/* The events taken from the mailbox and not handled yet: drain() handles
 * them for at most DRAIN_BUDGET_US at a time, so that a flood from the
 * broker cannot keep the loop from writing, answering and running its
 * timers; the rest waits for the next pass, in order. */
#define DRAIN_BUDGET_US 5000
static struct {
    struct mb_event *head, *tail;
    size_t n;
    lws_sorted_usec_list_t sul;   /* the next pass, armed while events wait */
} B;

static void drain(void);

static void drain_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    drain();
}

static void take_mailbox(void)
{
    struct mb_event *ev = mailbox_take_all(&G.mbox);

    for (; ev; ev = ev->next) {
        if (B.tail)
            B.tail->next = ev;
        else
            B.head = ev;
        B.tail = ev;
        B.n++;
    }
}

static struct mb_event *backlog_pop(void)
{
    struct mb_event *ev = B.head;

    if (ev) {
        B.head = ev->next;
        if (!B.head)
            B.tail = NULL;
        B.n--;
    }
    return ev;
}

size_t gateway_backlog(void)
{
    return B.n;
}

static void handle_event(struct mb_event *ev);

static void drain(void)
{
    uint64_t t0 = clock_now_us();
    struct mb_event *ev;
    unsigned n = 0;

    take_mailbox();
    while ((ev = backlog_pop())) {
        handle_event(ev);
        /* the clock only every 64 events: most take a microsecond */
        if (++n % 64 == 0 && clock_now_us() - t0 >= DRAIN_BUDGET_US)
            break;
    }
    if (B.head)
        lws_sul_schedule(G.ctx, 0, &B.sul, drain_cb, 1);
}

static void handle_event(struct mb_event *ev)
{
    {
        switch (ev->type) {
        case MB_MESSAGE:
            /* a response to a request is never a msg */
            if (requests_is_reply(ev->topic, ev->topic_len))
                requests_deliver(ev);
            else
                fanout_deliver(ev);
            break;
        case MB_CONNECTED:
            upstream_connected(G.up, ev->code);
            if (ever_connected)
                metrics_add(MC_RECONNECTS, 1);
            ever_connected = true;
            /* before any request's publish can go out */
            requests_broker_up();
            /* "up" only once the subscriptions are back: a client that
             * publishes on seeing it must not race our SUBSCRIBEs */
            if (subs_broker_up() == 0)
                session_set_broker_up(true);
            break;
        case MB_CONNECT_FAILED:
            if (upstream_connect_failed(G.up, ev->code))
                upstream_connect(G.up);
            else
                schedule_reconnect(false);
            break;
        case MB_CONN_LOST:
            log_warn("broker connection lost");
            stream_broker_lost();
            subs_broker_down();
            requests_broker_down();
            session_set_broker_up(false);
            schedule_reconnect(true);
            break;
        case MB_SUBACK:
            if (!requests_suback(ev->tag, ev->code))
                subs_suback(ev->tag, ev->code);
            break;
        case MB_PUBDONE:
            upstream_pub_done(G.up);
            handle_pub_done(ev->ctx, ev->code);
            break;
        case MB_AUTHDONE:
            auth_password_done(ev->ctx);
            break;
        case MB_HTTPDONE:
            http_call_finish(ev->ctx);
            break;
        }
        free(ev);
    }
}

/* After shutdown: answers nobody, frees what the events own. */
static void drain_discard(void)
{
    struct mb_event *ev;

    /* (its pass, if one was armed, went with the context) */
    take_mailbox();
    while ((ev = backlog_pop())) {
        if (ev->type == MB_PUBDONE)
            handle_pub_done(ev->ctx, ev->code);
        else if (ev->type == MB_AUTHDONE)
            auth_password_done(ev->ctx);
        else if (ev->type == MB_HTTPDONE)
            http_call_finish(ev->ctx); /* every owner has forgotten it */
        free(ev);
    }
}

/* Listeners and the broker connection keep their settings until a
 * restart: say which of them the file changed. */
static void warn_restart_only(const struct config *o, const struct config *n)
{
    char keys[1024];
    size_t k = config_restart_changes(o, n, keys, sizeof(keys));

    if (k)
        log_warn("reload: %s changed: %s at the next restart", keys,
                 k == 1 ? "it takes effect" : "they take effect");
}

static void reload(void)
{
    struct config *ncfg, *old = G.cfg;
    char err[8192];

    log_info("SIGHUP: reloading %s", G.config_path);
    if (config_load(G.config_path, &ncfg, err, sizeof(err)) < 0) {
        for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
            log_error("%s", line);
        log_error("reload refused: the running configuration stays");
        return;
    }
    /* A transaction: every part is prepared aside, and put in only once
     * all of them are ready; a refused reload has changed nothing. */
    if (preflight_check(ncfg, G.config_path, false) < 0 ||
        listener_tls_prepare(ncfg) < 0 ||
        auth_users_reload_prepare(ncfg) < 0 || auth_prepare(ncfg) < 0) {
        listener_tls_abort();
        auth_users_reload_abort();
        auth_abort();
        log_error("reload refused: the running configuration stays");
        config_free(ncfg);
        return;
    }
    warn_restart_only(old, ncfg);
    notify_reloading();
    listener_tls_commit();
    auth_users_reload_commit();
    auth_commit();
    G.cfg = ncfg;
    conf_live = ncfg;
    log_set_threshold(ncfg->log_level);
    session_reload_all();
    config_free(old);
    log_info("configuration reloaded");
    notify_ready(NULL);
}

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        G.reload = 1;
    else
        G.stop = 1;
    if (G.ctx)
        lws_cancel_service(G.ctx);
}

static int install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL) ||
        sigaction(SIGHUP, &sa, NULL))
        return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/* The open files limit sized for limits.max_connections (two descriptors
 * spare per session is more than enough: one each, plus the broker, the
 * listeners and the pipes), within the hard limit. libwebsockets 4.1 sizes
 * its connection tables from it and, as Debian builds it, scans the whole
 * table for every new connection: a limit far above what is used costs
 * time at every accept. */
static void size_fd_limit(const struct config *cfg)
{
    rlim_t want = (rlim_t)cfg->limits.max_connections + 1024;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
        want = rl.rlim_max;
    if (want != rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warn("cannot set the open files limit to %llu",
                     (unsigned long long)want);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        log_info("open files limit %llu", (unsigned long long)rl.rlim_cur);
    if ((rlim_t)cfg->limits.max_connections + 64 > rl.rlim_cur)
        log_warn("limits.max_connections %ld is above what the open files "
                 "limit allows", cfg->limits.max_connections);
}

/* One pass of the loop, then the writes its sessions' own callbacks left
 * for its end (ws.c). */
static int run_pass(void)
{
    int rc = evloop_run_once(G.ctx);

    ws_write_pending();
    return rc;
}

/* What is left of the whole shutdown's bound (SHUTDOWN_TOTAL_MS) since
 * started_ms, for joining the password workers; 0 when shutdown has not
 * begun (a failed start: wait for them). */
static int remaining_ms(uint64_t started_ms)
{
    uint64_t now = clock_now_ms();

    if (!started_ms)
        return -1;
    return now - started_ms >= SHUTDOWN_TOTAL_MS
               ? 0
               : (int)(SHUTDOWN_TOTAL_MS - (now - started_ms));
}

int gateway_run(struct config *cfg, const char *config_path)
{
    struct lws_context_creation_info info;
    uint64_t started_ms = 0;
    bool workers_gone;
    int rc = 1;

    memset(&G, 0, sizeof(G));
    G.cfg = cfg;
    conf_live = cfg;
    G.config_path = config_path;
    log_set_threshold(cfg->log_level);
    /* Paho honours http_proxy and ignores no_proxy: a proxy setting
     * would send the broker connection through it. */
    unsetenv("http_proxy");
    unsetenv("https_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");

    if (session_init() < 0 || mailbox_init(&G.mbox) < 0 ||
        subs_init() < 0 || fanout_init() < 0 || stream_init(cfg) < 0 ||
        http_pub_init() < 0 ||
        auth_users_init(cfg, &G.mbox) < 0 || http_client_init(&G.mbox) < 0 ||
        auth_init(cfg) < 0 || install_signals() < 0) {
        log_error("cannot initialise");
        goto out;
    }

    ws_on_wake(drain);
    log_init_lws();
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    /* No fd_limit_per_thread: below RLIMIT_NOFILE it switches lws 4.1 to
     * a linear search of its table on every event. The limit itself is
     * sized instead. */
    size_fd_limit(cfg);
    if (evloop_init(&info, &G.ctx) < 0)
        goto out;
    G.ctx = lws_create_context(&info);
    if (!G.ctx) {
        log_error("cannot create the libwebsockets context%s",
                  evloop_needs());
        goto out;
    }
    log_info("event loop: %s", evloop_name());
    mailbox_set_ctx(&G.mbox, G.ctx);
    throttle_init(G.ctx);
    auth_start(G.ctx);
    if (listener_start_all(cfg, G.ctx) < 0)
        goto out;
    if (!(G.up = upstream_new(cfg, &G.mbox)) ||
        requests_init(G.ctx, cfg->broker.reply_prefix,
                      upstream_client_id(G.up)) < 0)
        goto out;
    upstream_connect(G.up);
    keepalive_tick(&keepalive_timer);
    log_info("%s running", MQG_SERVER);
    notify_ready(G.ctx);
    notify_status("broker connecting");

    while (!G.stop) {
        if (run_pass() < 0)
            break;
        if (G.reload) {
            G.reload = 0;
            reload();
            evloop_timers_changed(G.ctx);
        }
    }

    log_info("shutting down");
    started_ms = clock_now_ms();
    notify_stopping();
    session_close_all(LWS_CLOSE_STATUS_GOINGAWAY, "gateway shutting down");
    listener_refuse_new();
    /* Let the close frames go out, and give the broker up to 5 s to
     * acknowledge the QoS 1/2 publishes it has not yet. */
    {
        uint64_t deadline = clock_now_ms() + SHUTDOWN_WAIT_MS;

        /* a pass of the loop sleeps until the next event or timer, which
         * may be a reconnect many seconds away: a tick bounds each wait */
        shutdown_tick(&shutdown_timer);
        if (handle_pub_pending() > 0 &&
            !lws_dll2_is_detached(&reconnect_timer.list) &&
            reconnect_timer.us > lws_now_usecs() + SHUTDOWN_RETRY_MS * 1000)
            lws_sul_schedule(G.ctx, 0, &reconnect_timer, reconnect_cb,
                             (lws_usec_t)SHUTDOWN_RETRY_MS * 1000);
        evloop_timers_changed(G.ctx);
        while ((session_count() || handle_pub_pending() > 0) &&
               clock_now_ms() < deadline)
            run_pass();
        lws_sul_cancel(&shutdown_timer);
        if (handle_pub_pending() > 0)
            log_warn("%ld publishes still unacknowledged at exit",
                     handle_pub_pending());
    }
    rc = 0;
out:
    if (G.up)
        upstream_free(G.up, SHUTDOWN_DISCONNECT_MS);
    G.up = NULL;
    if (G.ctx) {
        lws_sul_cancel(&reconnect_timer);
        lws_sul_cancel(&keepalive_timer);
        lws_sul_cancel(&B.sul);
        auth_shutdown();
        /* A password worker may finish a check at any time until
         * auth_users_destroy() joins it: it must not wake a context that
         * is gone. */
        mailbox_set_ctx(&G.mbox, NULL);
        throttle_destroy();
    }
    evloop_destroy(&G.ctx);
    /* The HTTP calls under way end now and come back failed. */
    http_client_destroy();
    /* Paho has stopped; the sessions are gone. What the worker answered
     * is settled here; auth_users_destroy() then frees the jobs it still
     * held, and mailbox_destroy() whatever events came meanwhile. */
    drain_discard();
    workers_gone = auth_users_destroy(remaining_ms(started_ms)) == 0;
    stream_destroy();
    requests_destroy();
    subs_destroy();
    fanout_destroy();
    listener_free_all();
    auth_destroy();
    if (workers_gone)
        mailbox_destroy(&G.mbox);
    session_destroy();
    http_pub_destroy();
    config_free(G.cfg);
    return rc;
}
