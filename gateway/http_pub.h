/* POST /api/publish (protocol.md, HTTP API): one pub object or an array
 * of them, each published as a WebSocket session's pub would be (roles,
 * mount, topic rules, max_qos, the publish rate of the user or, for
 * anonymous requests, of the client address), answered once every
 * message is safe: one object's answer with its status, or an array of
 * answers with 200. The request's session is the transport: the pub
 * handler's replies land in its queue and are collected here by index.
 * Service thread only. */
#ifndef MQG_HTTP_PUB_H
#define MQG_HTTP_PUB_H

#include <libwebsockets.h>

struct session;

extern const struct transport http_pub_transport;

int http_pub_init(void);
void http_pub_destroy(void);

/* The body is in and s is authenticated: publishes. Returns what the
 * callback returns. */
int http_pub_run(struct lws *wsi, struct session *s);

/* The request's connection is writable: answers once complete. */
int http_pub_writable(struct lws *wsi, struct session *s);

#endif
