/* The shared MQTT connection to the broker (Paho MQTTAsync). Requests are
 * made from the service thread; every outcome arrives through the mailbox.
 * Reconnects with backoff and jitter, walking broker.uris in order. */
#ifndef MQG_UPSTREAM_H
#define MQG_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "errors.h"

struct upstream;
struct mailbox;

/* Creates the client for cfg->broker; does not connect yet. NULL on
 * failure (logged). */
struct upstream *upstream_new(const struct config *cfg, struct mailbox *mb);

/* The connection upstream_new() made last and upstream_free() has not
 * freed (one per process), or NULL: what the registry and the publish
 * handler send through. */
struct upstream *upstream_get(void);

/* Starts (or restarts after a loss) connecting. */
void upstream_connect(struct upstream *up);

/* A connect failed with code (MB_CONNECT_FAILED: a CONNACK's refusal, or
 * < 0 without one): true when the broker refused MQTT 5 and mqtt_version
 * is "auto": the caller connects again at once, now with MQTT 3.1.1. A
 * refusal is counted, and with mqtt_version 5 logged once with what to
 * set. With "auto", a connect without any answer makes the next attempt
 * speak the other version (a broker that closes an MQTT 5 connect
 * silently). */
bool upstream_connect_failed(struct upstream *up, int code);

/* The mailbox told of MB_CONNECT_FAILED or MB_CONN_LOST: returns the delay
 * in ms before the next attempt, moving to the next URI. */
uint32_t upstream_retry_delay(struct upstream *up, bool was_connected);

/* The mailbox told of MB_CONNECTED, whose code is the broker's Receive
 * Maximum (0: none announced). */
void upstream_connected(struct upstream *up, int receive_maximum);

/* A QoS 1/2 publish completed (MB_PUBDONE): its room in the window goes
 * to the next waiting one. */
void upstream_pub_done(struct upstream *up);

/* True between MB_CONNECTED and the next loss. */
bool upstream_is_connected(const struct upstream *up);

/* The MQTT version of the connection, 4 or 5 (0 when up is NULL). */
int upstream_version(const struct upstream *up);

/* The broker client id, expanded (broker.client_id). */
const char *upstream_client_id(const struct upstream *up);

/* SUBSCRIBE at qos with subscription identifier subid (MQTT 5; 0:
 * none). The
 * outcome comes as MB_SUBACK with tag (ctx NULL). Returns 0, or
 * MQG_ENOTCONN, MQG_ENOMEM or MQG_EFAIL (errors.h) when the request could
 * not be made: then no MB_SUBACK comes. */
int upstream_subscribe(struct upstream *up, const char *filter,
                       uint32_t subid, int qos, uint64_t tag);

void upstream_unsubscribe(struct upstream *up, const char *filter);

/* What a publish sends: payload[0..len), and MQTT 5 properties as
 * records (props.h; props_len 0: none). */
struct upstream_msg {
    const void *payload;
    size_t len;
    int qos;
    bool retain;
    const uint8_t *props;
    size_t props_len;
};

/* Publishes msg to topic (everything copied); the outcome comes as
 * MB_PUBDONE with ctx, its code MQG_OK
 * when the broker has it (QoS 1: PUBACK, QoS 2: PUBCOMP), MQG_EREFUSED
 * when it refused it (MQTT 5), MQG_ELOST when the connection went first.
 * For QoS 0 no event comes. QoS 1/2 publishes beyond the broker's receive
 * window wait in order (copied). Returns 0, MQG_EFULL when
 * broker.buffer_messages publishes already wait, or MQG_ENOTCONN,
 * MQG_ENOMEM, MQG_EFAIL: then no event comes. */
int upstream_publish(struct upstream *up, const char *topic,
                     const struct upstream_msg *msg, void *ctx);

/* Sends DISCONNECT at once, without waiting for acknowledgements still
 * due (the caller has waited for them as long as it would), waits at most
 * timeout_ms for it to go out, then frees. */
void upstream_free(struct upstream *up, int timeout_ms);

#endif
