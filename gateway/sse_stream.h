/* The Server-Sent Events transport (protocol.md, "GET /api/events"): the
 * stream's start (every topic checked as a sub, then the headers, hello,
 * status and the subscriptions), and writing a session's queue as events:
 * each frame's event built once and shared (frame_sse()), many events in
 * one write, a comment every ping interval, a close event where a
 * WebSocket would be closed. Service thread only. */
#ifndef MQG_SSE_STREAM_H
#define MQG_SSE_STREAM_H

#include <libwebsockets.h>

struct session;

extern const struct transport sse_transport;

/* s is authenticated: checks every topic of its query as a sub (any
 * refusal answers the request with its status, nothing subscribed), then
 * starts the stream. Returns what the callback returns. */
int sse_start(struct lws *wsi, struct session *s);

/* The stream's connection is writable. */
int sse_writable(struct lws *wsi, struct session *s);

#endif
