/* The event loop (evloop.h). */
#include <string.h>

#include "autoconfig.h"
#include "evloop.h"
#include "log.h"

#ifdef MQG_EVLOOP_UV
#include <uv.h>

/* Handles (connections, lws' timer and idle handle) close in passes of
 * the loop: at most this many passes at teardown, each without waiting. */
#define TEARDOWN_PASSES 1000

static uv_loop_t loop;
static bool loop_ready;
static void *foreign_loops[1];

int evloop_init(struct lws_context_creation_info *info,
                struct lws_context **pcontext)
{
    int rc = uv_loop_init(&loop);

    if (rc) {
        log_error("cannot create the event loop: %s", uv_strerror(rc));
        return -1;
    }
    loop_ready = true;
    foreign_loops[0] = &loop;
    /* libwebsockets loads its libuv plugin (libwebsockets-evlib_uv.so)
     * for this option; with a loop of ours it installs no signal
     * handlers, so the gateway's stay. (Not the libev plugin: lws 4.1's
     * changes an armed libev timer in place, which delays a nearer
     * timer until the armed one fires.) */
    info->options |= LWS_SERVER_OPTION_LIBUV;
    info->foreign_loops = foreign_loops;
    info->pcontext = pcontext;
    return 0;
}

int evloop_run_once(struct lws_context *ctx)
{
    /* blocks until something is ready unless lws' idle handle is
     * active (lws starts it after serving a socket) */
    uv_run(&loop, UV_RUN_ONCE);
    /* lws 4.1's idle callback serves buffered input once and stops
     * itself, even when a connection still holds some (its flow control
     * lifted from a timer or the mailbox, say): nothing would serve that
     * until its socket, or another, is ready again. A wake-up makes the
     * next pass serve it (the poll loop's lws_service() does the same
     * with a zero wait). */
    if (!lws_service_adjust_timeout(ctx, 1, 0))
        lws_cancel_service(ctx);
    return 0;
}

void evloop_timers_changed(struct lws_context *ctx)
{
    lws_cancel_service(ctx);
}

void evloop_destroy(struct lws_context **pcontext)
{
    int passes = 0;

    if (*pcontext) {
        /* starts closing every connection's handle; the context is
         * freed (and *pcontext cleared) once they all are */
        lws_context_destroy(*pcontext);
        while (*pcontext && passes++ < TEARDOWN_PASSES &&
               uv_run(&loop, UV_RUN_NOWAIT))
            ;
        /* what lws leaves to a second call once its handles are closed */
        if (*pcontext)
            lws_context_destroy(*pcontext);
    }
    if (!loop_ready)
        return;
    uv_run(&loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&loop))
        log_warn("event loop: handles still open at exit");
    loop_ready = false;
}

const char *evloop_name(void)
{
    return "epoll (libuv)";
}

const char *evloop_needs(void)
{
    return " (is libwebsockets-evlib-uv installed? the epoll loop needs "
           "libwebsockets' libuv plugin)";
}

#else

int evloop_init(struct lws_context_creation_info *info,
                struct lws_context **pcontext)
{
    (void)info;
    (void)pcontext;
    return 0;
}

int evloop_run_once(struct lws_context *ctx)
{
    return lws_service(ctx, 0) < 0 ? -1 : 0;
}

void evloop_timers_changed(struct lws_context *ctx)
{
    (void)ctx; /* poll() waits for the nearest timer every pass */
}

void evloop_destroy(struct lws_context **pcontext)
{
    if (*pcontext)
        lws_context_destroy(*pcontext);
    *pcontext = NULL;
}

const char *evloop_name(void)
{
    return "poll";
}

const char *evloop_needs(void)
{
    return "";
}

#endif
