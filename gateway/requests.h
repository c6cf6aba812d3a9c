/* The requests waiting for their response (protocol.md, "request"): the
 * gateway's reply subscription PREFIX# (broker.reply_prefix, held while
 * connected with MQTT 5 and made again after every reconnect), and one
 * entry per waiting request: its key, which names its response topic
 * PREFIXkey, its random correlation data (getrandom()), its timeout (a
 * libwebsockets timer) and the session and id it answers. Responses are
 * taken here, before the fan-out: no msg ever carries one. Service thread
 * only. */
#ifndef MQG_REQUESTS_H
#define MQG_REQUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lws_context;
struct mb_event;
struct session;
struct request_wait;

/* What a session holds of the table (session_requests()): its waiting
 * requests. Written by requests.c only. */
struct requests_held {
    struct request_wait *head;
    size_t n;
};

/* The prefix from broker.reply_prefix, %c replaced by client_id. Returns
 * 0, or -1 (logged) when the result is not a topic name ending in '/'
 * without wildcards, or memory is short. */
int requests_init(struct lws_context *ctx, const char *prefix_tmpl,
                  const char *client_id);
void requests_destroy(void);

/* True when topic[0..len) lies under the reply prefix: the message is a
 * response for requests_deliver(), never for the fan-out. */
bool requests_is_reply(const char *topic, size_t len);

/* A message under the reply prefix: answers the request whose key its
 * topic names when its correlation data is that request's; otherwise
 * ignored (a late answer, or a wrong one). */
void requests_deliver(const struct mb_event *ev);

/* The broker connection came up (after upstream_connected()): with MQTT
 * 5, subscribes PREFIX#. */
void requests_broker_up(void);

/* The broker connection went down: every waiting request fails with
 * broker_unavailable. */
void requests_broker_down(void);

/* MB_SUBACK with tag: true when it is the reply subscription's (then
 * taken here). */
bool requests_suback(uint64_t tag, int granted);

/* Whether a request can be made now: NULL, or the error code and *why
 * (static text): broker_unavailable while the broker is away or refused
 * the reply subscription, limit_exceeded when s has limits.max_requests
 * waiting. */
const char *requests_refusal(struct session *s, const char **why);

/* A new waiting request of s, answering id[0..id_len) within timeout_ms.
 * *props (records, props.h; *props_len bytes, malloc'd or NULL) gets its
 * correlation data and response topic appended: the publish carries
 * them. Returns its key (never 0), or 0 when memory is short. The entry
 * waits from now; requests_cancel() drops it without an answer. */
uint64_t requests_new(struct session *s, const char *id, size_t id_len,
                      long timeout_ms, uint8_t **props, size_t *props_len);

/* The request's publish was refused (the error already sent): drops it. */
void requests_cancel(uint64_t key);

/* The request's publish failed at the broker (MB_PUBDONE code,
 * errors.h): answers broker_rejected or broker_unavailable. A key no
 * longer waiting is ignored. */
void requests_publish_failed(uint64_t key, int code);

/* s is going away: its requests are dropped unanswered. */
void requests_session_gone(struct session *s);

/* Requests waiting, for /metrics. */
size_t requests_waiting(void);

#endif
