/* The service loop's event loop: libwebsockets' own poll(), or a libuv
 * loop (epoll) that libwebsockets joins through its event-library plugin
 * (Debian's libwebsockets-evlib-uv), chosen when mqgate is built
 * (configure --with-event-loop). With epoll a wake-up costs what is
 * ready, not what is open. The loop is the gateway's ("foreign" to
 * libwebsockets), so that one pass can be run at a time, as lws_service()
 * does with poll(). Service thread only. */
#ifndef MQG_EVLOOP_H
#define MQG_EVLOOP_H

#include <libwebsockets.h>

/* Prepares the loop and sets what lws_create_context() needs of it in
 * info (info->pcontext included: the epoll loop's teardown clears it).
 * Returns 0, or -1 (logged). */
int evloop_init(struct lws_context_creation_info *info,
                struct lws_context **pcontext);

/* Serves the events that are ready, waiting for one (a socket, a timer,
 * lws_cancel_service()) if none is. Returns 0, or -1 when the loop
 * failed. */
int evloop_run_once(struct lws_context *ctx);

/* After lws_sul_schedule() outside a libwebsockets callback: libuv's
 * timer for lws' timers is re-armed only after lws served an event, so a
 * nearer timer scheduled between two passes needs one (a wake-up). */
void evloop_timers_changed(struct lws_context *ctx);

/* Destroys the context (*pcontext, set to NULL) and then the loop:
 * libuv closes each connection's handle in a pass of the loop, so the
 * loop runs until they are closed. */
void evloop_destroy(struct lws_context **pcontext);

/* "epoll (libuv)" or "poll", for the log. */
const char *evloop_name(void);

/* What the loop needs installed, for the error when the context cannot
 * be created ("" when nothing). */
const char *evloop_needs(void);

#endif
