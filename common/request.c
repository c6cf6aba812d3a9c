#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base64.h"
#include "payload.h"
#include "props.h"
#include "request.h"
#include "topic.h"

#define ID_INT_MAX 9007199254740991LL /* 2^53 - 1 */

static const char *const err_codes[] = {
    [RQ_OK] = "ok",
    [RQ_BAD_JSON] = "bad_json",
    [RQ_BAD_REQUEST] = "bad_request",
    [RQ_UNKNOWN_OP] = "unknown_op",
    [RQ_BAD_TOPIC] = "bad_topic",
};

const char *request_err_code(enum req_err e)
{
    return err_codes[e];
}

static enum req_err fail(enum req_err e, char *msg, size_t msglen,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum req_err fail(enum req_err e, char *msg, size_t msglen,
                         const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return e;
}

static int decode_id(json_t *id, struct request *req)
{
    if (json_is_integer(id)) {
        json_int_t v = json_integer_value(id);

        if (v < 0 || v > ID_INT_MAX)
            return -1;
        req->id_len = (size_t)snprintf(req->id, sizeof(req->id), "%lld",
                                       (long long)v);
        return 0;
    }
    if (json_is_string(id)) {
        const char *s = json_string_value(id);
        size_t n = json_string_length(id);

        if (n > REQ_ID_MAX)
            return -1;
        req->id[0] = '"';
        req->id_len = 1 + json_escape(s, n, req->id + 1);
        req->id[req->id_len++] = '"';
        return 0;
    }
    return -1;
}

/* Optional field of one JSON type: 0 when absent or of that type, -1 when
 * present with another type. */
static int opt_field(json_t *root, const char *key, json_type type,
                     json_t **out)
{
    json_t *v = json_object_get(root, key);

    *out = v;
    if (!v)
        return 0;
    if (type == JSON_TRUE && json_is_boolean(v))
        return 0;
    return json_typeof(v) == type ? 0 : -1;
}

static enum req_err decode_topic(json_t *root, struct request *req,
                                 bool filter, char *msg, size_t msglen)
{
    json_t *t;

    if (opt_field(root, "topic", JSON_STRING, &t) || !t)
        return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                    "topic: expected a string");
    req->topic = json_string_value(t);
    req->topic_len = json_string_length(t);
    if ((filter ? topic_filter_check(req->topic, req->topic_len)
                : topic_name_check(req->topic, req->topic_len)) < 0)
        return fail(RQ_BAD_TOPIC, msg, msglen, "topic: not a valid topic %s",
                    filter ? "filter" : "name");
    return RQ_OK;
}

static enum req_err decode_qos(json_t *root, struct request *req, char *msg,
                               size_t msglen)
{
    json_t *q;

    if (opt_field(root, "qos", JSON_INTEGER, &q))
        return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                    "qos: expected 0, 1 or 2");
    if (q) {
        json_int_t v = json_integer_value(q);

        if (v < 0 || v > 2)
            return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                        "qos: expected 0, 1 or 2");
        req->qos = (int)v;
    }
    return RQ_OK;
}

/* sub's history, since, retained and max_rate. */
static enum req_err decode_stream(json_t *root, struct request *req,
                                  char *msg, size_t msglen)
{
    json_t *h, *since, *ret, *rate;

    req->retained = true;
    if (opt_field(root, "history", JSON_INTEGER, &h))
        return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                    "history: expected an integer");
    if (h) {
        json_int_t v = json_integer_value(h);

        if (v < 0 || v > REQ_HISTORY_MAX)
            return fail(RQ_BAD_REQUEST, msg, msglen,
                        "history: expected 0 to %d", REQ_HISTORY_MAX);
        req->history = (long)v;
    }
    if (opt_field(root, "since", JSON_OBJECT, &since))
        return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                    "since: expected {\"epoch\":string,\"seq\":integer}");
    if (since) {
        json_t *e = json_object_get(since, "epoch");
        json_t *s = json_object_get(since, "seq");
        size_t el = json_is_string(e) ? json_string_length(e) : 0;
        const char *ev = el ? json_string_value(e) : NULL;
        bool ok = ev && el <= REQ_EPOCH_MAX && json_is_integer(s) &&
                  json_integer_value(s) >= 0;

        for (size_t i = 0; ok && i < el; i++)
            ok = (ev[i] >= 'A' && ev[i] <= 'Z') ||
                 (ev[i] >= 'a' && ev[i] <= 'z') ||
                 (ev[i] >= '0' && ev[i] <= '9') || ev[i] == '_' ||
                 ev[i] == '-';
        if (!ok)
            return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                        "since: expected {\"epoch\":string,\"seq\":integer}");
        req->has_since = true;
        req->since_epoch = ev;
        req->since_epoch_len = el;
        req->since_seq = (uint64_t)json_integer_value(s);
    }
    if (opt_field(root, "retained", JSON_TRUE, &ret))
        return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                    "retained: expected a boolean");
    if (ret)
        req->retained = json_is_true(ret);
    rate = json_object_get(root, "max_rate");
    if (rate) {
        double v = json_is_number(rate) ? json_number_value(rate) : -1;

        if (!(v > 0 && v <= 1000))
            return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                        "max_rate: expected a number above 0, at most 1000");
        req->max_rate = v;
    }
    return RQ_OK;
}

static enum req_err decode_body(const char *frame, size_t len, json_t *root,
                                struct request *req, char *msg,
                                size_t msglen)
{
    json_t *payload = json_object_get(root, "payload");
    json_t *text, *b64;
    size_t off, vlen;

    if (opt_field(root, "text", JSON_STRING, &text))
        return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                    "text: expected a string");
    if (opt_field(root, "base64", JSON_STRING, &b64))
        return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                    "base64: expected a string");
    if ((payload != NULL) + (text != NULL) + (b64 != NULL) > 1)
        return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                    "at most one of payload, text and base64");
    if (payload) {
        /* The client's own bytes, compacted: numbers keep their exact
         * spelling ("21.50" stays 21.50), which re-encoding would lose. */
        if (json_member_span(frame, len, "payload", 7, &off, &vlen) < 0)
            return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                        "payload: not found");
        req->payload = malloc(vlen ? vlen : 1);
        if (!req->payload)
            return fail(RQ_BAD_REQUEST, msg, msglen, "%s", "out of memory");
        req->payload_len = json_compact(frame + off, vlen, req->payload);
        req->body = BODY_JSON;
    } else if (text) {
        size_t n = json_string_length(text);

        req->payload = malloc(n ? n : 1);
        if (!req->payload)
            return fail(RQ_BAD_REQUEST, msg, msglen, "%s", "out of memory");
        memcpy(req->payload, json_string_value(text), n);
        req->payload_len = n;
        req->body = BODY_TEXT;
    } else if (b64) {
        size_t n = json_string_length(b64);

        req->payload = malloc(n / 4 * 3 + 1);
        if (!req->payload)
            return fail(RQ_BAD_REQUEST, msg, msglen, "%s", "out of memory");
        if (base64_decode(json_string_value(b64), n, req->payload,
                          &req->payload_len) < 0)
            return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                        "base64: not valid base64");
        req->body = BODY_BASE64;
    }
    return RQ_OK;
}

/* pub's and request's props (props_from_json()). */
static enum req_err decode_props(json_t *root, struct request *req,
                                 char *msg, size_t msglen)
{
    json_t *p = json_object_get(root, "props");

    if (!p)
        return RQ_OK;
    req->has_props = true;
    if (props_from_json(p, req->op == OP_REQUEST, &req->props,
                        &req->props_len, &req->response_topic,
                        &req->response_topic_len, msg, msglen) < 0)
        return RQ_BAD_REQUEST;
    return RQ_OK;
}

static enum req_err decode_timeout(json_t *root, struct request *req,
                                   char *msg, size_t msglen)
{
    json_t *t;

    req->timeout_ms = REQ_TIMEOUT_DEFAULT;
    if (opt_field(root, "timeout_ms", JSON_INTEGER, &t) ||
        (t && (json_integer_value(t) < 1 ||
               json_integer_value(t) > REQ_TIMEOUT_MAX)))
        return fail(RQ_BAD_REQUEST, msg, msglen,
                    "timeout_ms: expected an integer 1..%d",
                    REQ_TIMEOUT_MAX);
    if (t)
        req->timeout_ms = (long)json_integer_value(t);
    return RQ_OK;
}

static enum req_err decode_auth(json_t *root, struct request *req,
                                char *msg, size_t msglen)
{
    static const char *const keys[] = {"token", "user", "password", "otp"};
    const char **dst[] = {&req->token, &req->user, &req->password,
                          &req->otp};

    for (size_t i = 0; i < 4; i++) {
        json_t *v;

        if (opt_field(root, keys[i], JSON_STRING, &v))
            return fail(RQ_BAD_REQUEST, msg, msglen, "%s: expected a string",
                        keys[i]);
        *dst[i] = v ? json_string_value(v) : NULL;
    }
    return RQ_OK;
}

enum req_err request_decode(const char *frame, size_t len,
                            struct request *req, char *msg, size_t msglen)
{
    static const struct {
        const char *name;
        enum req_op op;
    } ops[] = {{"sub", OP_SUB}, {"pub", OP_PUB}, {"unsub", OP_UNSUB},
               {"ping", OP_PING}, {"auth", OP_AUTH},
               {"request", OP_REQUEST}};
    json_error_t jerr;
    json_t *root, *op, *id, *retain;
    enum req_err e;
    size_t i;

    memset(req, 0, sizeof(*req));
    /* jansson skips a raw NUL that follows a number or a literal, so
     * {"payload":1<NUL>} would load, and the payload span taken from the
     * frame would carry the NUL: U+0000 is valid JSON only escaped. */
    if (memchr(frame, '\0', len))
        return fail(RQ_BAD_JSON, msg, msglen, "%s", "not JSON: NUL byte");
    root = json_loadb(frame, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY,
                      &jerr);
    if (!root) {
        /* jansson refuses some valid JSON texts (duplicate keys, integers
         * beyond 64 bits): they are JSON, only not a valid request. */
        if (json_error_code(&jerr) == json_error_duplicate_key ||
            json_error_code(&jerr) == json_error_numeric_overflow)
            return fail(RQ_BAD_REQUEST, msg, msglen, "%s", jerr.text);
        return fail(RQ_BAD_JSON, msg, msglen, "not JSON: %s", jerr.text);
    }
    req->json_ = root;
    if (!json_is_object(root))
        return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                    "a request is a JSON object");
    id = json_object_get(root, "id");
    if (id && decode_id(id, req) < 0)
        return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                    "id: expected an integer 0..2^53-1 or a string of at "
                    "most 64 bytes");
    op = json_object_get(root, "op");
    if (!op || !json_is_string(op))
        return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                    "op: expected a string");
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(json_string_value(op), ops[i].name) == 0 &&
            json_string_length(op) == strlen(ops[i].name))
            break;
    if (i == sizeof(ops) / sizeof(ops[0]))
        return fail(RQ_UNKNOWN_OP, msg, msglen, "%s", "unknown op");
    req->op = ops[i].op;

    switch (req->op) {
    case OP_PING:
        return RQ_OK;
    case OP_AUTH:
        return decode_auth(root, req, msg, msglen);
    case OP_SUB:
        if ((e = decode_qos(root, req, msg, msglen)) != RQ_OK ||
            (e = decode_stream(root, req, msg, msglen)) != RQ_OK)
            return e;
        return decode_topic(root, req, true, msg, msglen);
    case OP_UNSUB:
        return decode_topic(root, req, true, msg, msglen);
    case OP_PUB:
        if ((e = decode_qos(root, req, msg, msglen)) != RQ_OK)
            return e;
        if (opt_field(root, "retain", JSON_TRUE, &retain))
            return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                        "retain: expected a boolean");
        req->retain = retain && json_is_true(retain);
        if ((e = decode_body(frame, len, root, req, msg, msglen)) != RQ_OK ||
            (e = decode_props(root, req, msg, msglen)) != RQ_OK)
            return e;
        return decode_topic(root, req, false, msg, msglen);
    case OP_REQUEST:
        if (!req->id_len)
            return fail(RQ_BAD_REQUEST, msg, msglen, "%s",
                        "id: a request needs one");
        if ((e = decode_qos(root, req, msg, msglen)) != RQ_OK ||
            (e = decode_timeout(root, req, msg, msglen)) != RQ_OK ||
            (e = decode_body(frame, len, root, req, msg, msglen)) != RQ_OK ||
            (e = decode_props(root, req, msg, msglen)) != RQ_OK)
            return e;
        return decode_topic(root, req, false, msg, msglen);
    }
    return RQ_OK;
}

void request_clear(struct request *req)
{
    free(req->payload);
    req->payload = NULL;
    free(req->props);
    req->props = NULL;
    json_decref(req->json_);
    req->json_ = NULL;
}
