/* Decoding of client requests (protocol.md § Requests): one text frame in,
 * one validated request or one protocol error out. I/O-free. */
#ifndef MQG_REQUEST_H
#define MQG_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum req_op { OP_AUTH, OP_SUB, OP_UNSUB, OP_PUB, OP_PING, OP_REQUEST };

enum req_err {
    RQ_OK = 0,
    RQ_BAD_JSON,
    RQ_BAD_REQUEST,
    RQ_UNKNOWN_OP,
    RQ_BAD_TOPIC,
};

enum req_body { BODY_NONE, BODY_JSON, BODY_TEXT, BODY_BASE64 };

#define REQ_ID_MAX 64  /* bytes of a string id */
#define REQ_HISTORY_MAX 100000  /* sub's history: what any gateway accepts */
#define REQ_EPOCH_MAX 64        /* characters of an epoch */
#define REQ_TIMEOUT_MAX 60000   /* request's timeout_ms */
#define REQ_TIMEOUT_DEFAULT 10000

struct request {
    enum req_op op;
    /* The id, already serialized as JSON ("7" or "\"abc\""); id_len 0 when
     * the request has none. */
    char id[REQ_ID_MAX * 6 + 3];
    size_t id_len;
    /* sub, unsub, pub, request: the topic (filter for sub/unsub), validated against
     * the topic rules; points into the request's own storage. */
    const char *topic; size_t topic_len;
    int qos;              /* [0] */
    bool retain;          /* [false] */
    /* sub (protocol.md, History, max_rate): */
    long history;         /* [0] 0..REQ_HISTORY_MAX */
    bool has_since;       /* since given: since_epoch, since_seq */
    const char *since_epoch; size_t since_epoch_len;
    uint64_t since_seq;
    bool retained;        /* [true]: the broker's retained replay wanted */
    double max_rate;      /* 0: none; else (0, 1000] per second */
    /* pub, request: the bytes to publish (decoded base64, text bytes or
     * compact JSON); owned by the request. */
    enum req_body body;
    char *payload; size_t payload_len;
    /* pub, request: "props" given (has_props), as records (props.h, owned
     * by the request; NULL when none) and the response topic (pub only,
     * mount-relative, into the request; NULL when absent). */
    bool has_props;
    uint8_t *props; size_t props_len;
    const char *response_topic; size_t response_topic_len;
    /* request: [REQ_TIMEOUT_DEFAULT] 1..REQ_TIMEOUT_MAX */
    long timeout_ms;
    /* auth: each NULL when absent; owned by the request. */
    const char *token, *user, *password, *otp;
    void *json_;          /* private */
};

/* Decodes frame[0..len), which is valid UTF-8. Returns RQ_OK and fills req,
 * or an error and writes a human message into msg (msglen bytes). On error
 * req->id/id_len still hold the id when one could be read, so the reply can
 * carry it. Always call request_clear() afterwards. */
enum req_err request_decode(const char *frame, size_t len,
                            struct request *req, char *msg, size_t msglen);

void request_clear(struct request *req);

/* The protocol's code for an error ("bad_json", ...). */
const char *request_err_code(enum req_err e);

#endif
