#include <stdarg.h>
#include <stdio.h>

#include <libwebsockets.h>

#include "autoconfig.h"
#include "notify.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

static lws_sorted_usec_list_t watchdog_timer;
static uint64_t watchdog_us;
static struct lws_context *wd_ctx;

static void watchdog_ping(lws_sorted_usec_list_t *sul)
{
    /* runs on the service loop: a loop that stops turning stops pinging */
    sd_notify(0, "WATCHDOG=1");
    lws_sul_schedule(wd_ctx, 0, sul, watchdog_ping,
                     (lws_usec_t)(watchdog_us / 2));
}

void notify_ready(struct lws_context *ctx)
{
    sd_notify(0, "READY=1");
    if (ctx && !wd_ctx && sd_watchdog_enabled(0, &watchdog_us) > 0 &&
        watchdog_us) {
        wd_ctx = ctx;
        watchdog_ping(&watchdog_timer);
    }
}

void notify_status(const char *fmt, ...)
{
    char buf[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sd_notifyf(0, "STATUS=%s", buf);
}

void notify_stopping(void)
{
    if (wd_ctx)
        lws_sul_cancel(&watchdog_timer);
    wd_ctx = NULL;
    sd_notify(0, "STOPPING=1");
}

void notify_reloading(void)
{
    sd_notify(0, "RELOADING=1");
}

unsigned long long notify_watchdog_usec(void)
{
    uint64_t usec = 0;

    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

void notify_watchdog(void)
{
    sd_notify(0, "WATCHDOG=1");
}

#else

void notify_ready(struct lws_context *ctx)
{
    (void)ctx;
}

void notify_status(const char *fmt, ...)
{
    (void)fmt;
}

void notify_stopping(void)
{
}

void notify_reloading(void)
{
}

unsigned long long notify_watchdog_usec(void)
{
    return 0;
}

void notify_watchdog(void)
{
}

#endif
