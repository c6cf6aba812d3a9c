/* The HTTP status of a protocol error code (protocol.md, HTTP API). Pure. */
#ifndef MQG_HTTP_STATUS_H
#define MQG_HTTP_STATUS_H

/* 400 bad_json, bad_request, bad_topic, unknown_op, limit_exceeded; 401
 * auth_failed, unauthenticated, token_expired; 403 forbidden; 429
 * rate_limited; 502 broker_rejected; 503 broker_unavailable; 200 for
 * "ok"; 500 for anything else (internal). The statuses that depend on the
 * request rather than on a code (413, 415, ...) are the caller's. */
unsigned http_status_of(const char *code);

/* The reason phrase of status ("Bad Request"), "Error" for one not
 * listed. */
const char *http_status_text(unsigned status);

#endif
