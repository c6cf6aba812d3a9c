/* Request handlers of a session, one file per kind, as mosquitto has one
 * per packet: handle.c decodes a frame and dispatches it, handle_ping.c
 * answers ping, handle_sub.c sub and unsub, handle_pub.c pub,
 * handle_auth.c auth (auth.h).
 * Service thread only. */
#ifndef MQG_HANDLE_H
#define MQG_HANDLE_H

#include <stddef.h>
#include <stdint.h>

struct session;
struct request;

/* Decodes the frame buf[0..len) (valid UTF-8) of s and answers it. */
void handle_request(struct session *s, const char *buf, size_t len);

/* An error caused by the client's request: the error frame, counted
 * toward the error budget (limits.max_errors in 10 s, then 4429). */
void handle_error(struct session *s, const char *id, size_t id_len,
                  const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The broker-side topic: the session's mount, then t[0..len). Returns t
 * itself or *buf (malloc'd, the caller frees it; NULL when t is
 * returned), setting *out_len; NULL when the whole is too long or memory
 * is short. */
const char *handle_mounted(const struct session *s, const char *t,
                           size_t len, char **buf, size_t *out_len);

/* The session's role names, comma-separated, into buf (len bytes), for
 * messages. Returns buf. */
const char *handle_role_names(const struct session *s, char *buf,
                              size_t len);

void handle_ping(struct session *s, const struct request *r);
void handle_sub(struct session *s, const struct request *r);

/* What handle_sub() refuses before subscribing: the ACL (forbidden), a
 * history over what is kept (bad_request), the mount and filter too long
 * (bad_topic). Returns the code with msg[0..len), or NULL with *maxq the
 * highest QoS granted. */
const char *handle_sub_check(struct session *s, const struct request *r,
                             char *msg, size_t len, int *maxq);
void handle_unsub(struct session *s, const struct request *r);
void handle_pub(struct session *s, const struct request *r);
void handle_request_op(struct session *s, const struct request *r);

/* Publishes r's topic and body for s with the MQTT 5 properties
 * props[0..props_len) (records, props.h): the publish patterns, the rate,
 * the mount, max_qos. req_key 0: a pub, answered here (ok at once at QoS
 * 0, after the broker's acknowledgement otherwise); else the publish of
 * the waiting request req_key (requests.h), which only a failure of the
 * publish answers (requests_publish_failed()). Returns 0 when handed to
 * the broker connection, -1 when refused (the error already sent). */
int handle_publish(struct session *s, const struct request *r,
                   const uint8_t *props, size_t props_len, uint64_t req_key);

/* A publish of s completed (MB_PUBDONE): ctx from the publish, code
 * MQG_OK, MQG_EREFUSED or MQG_ELOST (errors.h). Answers the session if it
 * is still there; frees ctx. */
void handle_pub_done(void *ctx, int code);

/* QoS 1/2 publishes of sessions the broker has not acknowledged yet. */
long handle_pub_pending(void);

/* s is going away: its publishes awaiting the broker forget it. */
void handle_pub_disown(struct session *s);

#endif
