/* libFuzzer target: request_decode() and request_clear() on one frame.
 *
 * The gateway hands request_decode() only frames that passed utf8_valid()
 * (it closes with 1007 otherwise); this target decodes that way, and also
 * decodes the frames the gateway would have refused, since a decoder that
 * trusts its caller is one refactoring away from a hole. The frame is an
 * exact-size heap copy without a terminator.
 *
 * Invariants on the result:
 *   - invalid UTF-8 never decodes (jansson refuses it), and what decodes
 *     is a JSON text by payload.c's RFC 8259 scanner;
 *   - the error code has a name; the message is NUL-terminated, also in a
 *     one-byte buffer;
 *   - an id, when read, is a JSON integer or string that fits its buffer;
 *   - sub/unsub carry a valid filter, pub a valid name; qos is 0..2;
 *   - a JSON body is a valid JSON text no longer than the frame; a text or
 *     base64 body has a payload buffer; no body means no payload;
 *   - decoding is deterministic (a second decode gives the same answer). */
#include <stdbool.h>

#include "fuzz.h"
#include "payload.h"
#include "props.h"
#include "request.h"
#include "topic.h"
#include "utf8.h"

/* A pub's or request's props: well-formed records, every string one a
 * broker takes, JSON that jansson reads back; no correlation or response
 * topic set by a request. */
static void check_props(const struct request *r)
{
    struct props_item it;
    size_t off = 0, n;
    char *json;
    json_t *j;
    int rc;

    FUZZ_CHECK(r->has_props || (!r->props && !r->response_topic));
    FUZZ_CHECK(!r->props == !r->props_len);
    if (r->response_topic)
        FUZZ_CHECK(topic_name_check(r->response_topic,
                                    r->response_topic_len) == 0 &&
                   utf8_mqtt_valid(r->response_topic,
                                   r->response_topic_len));
    while ((rc = props_next(r->props, r->props_len, &off, &it)) > 0) {
        FUZZ_CHECK(it.kind != PROPS_RESPONSE_TOPIC);
        FUZZ_CHECK(r->op != OP_REQUEST || it.kind != PROPS_CORRELATION);
        if (it.kind == PROPS_EXPIRY)
            FUZZ_CHECK(it.n >= 1);
        else if (it.kind != PROPS_CORRELATION)
            FUZZ_CHECK(utf8_mqtt_valid(it.a, it.a_len) &&
                       utf8_mqtt_valid(it.b, it.b_len));
    }
    FUZZ_CHECK(rc == 0);
    n = props_json(r->props, r->props_len, NULL, 0, 0, NULL);
    json = malloc(n + 2);
    FUZZ_CHECK(json != NULL);
    json[0] = '{';
    FUZZ_CHECK(props_json(r->props, r->props_len, NULL, 0, 0, json + 1) ==
               n);
    if (n) {
        json[1] = ' ';
        json[n + 1] = '}';
        j = json_loadb(json, n + 2, JSON_REJECT_DUPLICATES, NULL);
        FUZZ_CHECK(j != NULL);
        json_decref(j);
    }
    free(json);
}

static void check_ok(const struct request *r, size_t len)
{
    switch (r->op) {
    case OP_SUB:
    case OP_UNSUB:
        FUZZ_CHECK(r->topic != NULL);
        FUZZ_CHECK(topic_filter_check(r->topic, r->topic_len) == 0);
        break;
    case OP_REQUEST:
        FUZZ_CHECK(r->id_len > 0);
        FUZZ_CHECK(r->timeout_ms >= 1 && r->timeout_ms <= REQ_TIMEOUT_MAX);
        FUZZ_CHECK(!r->response_topic);
        /* fall through */
    case OP_PUB:
        FUZZ_CHECK(r->topic != NULL);
        FUZZ_CHECK(topic_name_check(r->topic, r->topic_len) == 0);
        check_props(r);
        break;
    case OP_AUTH:
    case OP_PING:
        break;
    default:
        FUZZ_CHECK(!"unknown op");
    }
    FUZZ_CHECK(r->qos >= 0 && r->qos <= 2);
    switch (r->body) {
    case BODY_NONE:
        FUZZ_CHECK(r->payload == NULL && r->payload_len == 0);
        break;
    case BODY_JSON:
        FUZZ_CHECK((r->op == OP_PUB || r->op == OP_REQUEST) &&
                   r->payload != NULL);
        FUZZ_CHECK(r->payload_len <= len);
        FUZZ_CHECK(json_text_valid(r->payload, r->payload_len));
        break;
    case BODY_TEXT:
        FUZZ_CHECK((r->op == OP_PUB || r->op == OP_REQUEST) &&
                   r->payload != NULL);
        FUZZ_CHECK(r->payload_len <= len);
        break;
    case BODY_BASE64:
        FUZZ_CHECK((r->op == OP_PUB || r->op == OP_REQUEST) &&
                   r->payload != NULL);
        FUZZ_CHECK(r->payload_len <= len / 4 * 3);
        break;
    }
    if (r->op != OP_AUTH)
        FUZZ_CHECK(!r->token && !r->user && !r->password && !r->otp);
}

static enum req_err decode(const char *frame, size_t len, bool gateway_path)
{
    struct request r, r2;
    char msg[256], tiny[1];
    enum req_err e, e2;

    memset(msg, 0x55, sizeof msg);
    e = request_decode(frame, len, &r, msg, sizeof msg);
    FUZZ_CHECK(request_err_code(e) != NULL);
    if (e != RQ_OK)
        FUZZ_CHECK(memchr(msg, '\0', sizeof msg) != NULL);
    FUZZ_CHECK(r.id_len < sizeof r.id);
    if (r.id_len > 0) {
        FUZZ_CHECK(json_text_valid(r.id, r.id_len));
        FUZZ_CHECK(r.id[0] == '"' || (r.id[0] >= '0' && r.id[0] <= '9'));
    }
    if (e == RQ_OK) {
        /* Only a JSON text (RFC 8259) is a request. */
        FUZZ_CHECK(json_text_valid(frame, len));
        check_ok(&r, len);
    }
    if (!gateway_path)
        FUZZ_CHECK(e != RQ_OK || utf8_valid(frame, len));

    tiny[0] = 'x';
    e2 = request_decode(frame, len, &r2, tiny, sizeof tiny);
    FUZZ_CHECK(e2 == e);
    if (e2 != RQ_OK)
        FUZZ_CHECK(tiny[0] == '\0');
    FUZZ_CHECK(r2.id_len == r.id_len && memcmp(r2.id, r.id, r.id_len) == 0);
    if (e == RQ_OK) {
        FUZZ_CHECK(r2.op == r.op && r2.body == r.body &&
                   r2.payload_len == r.payload_len &&
                   r2.topic_len == r.topic_len);
        FUZZ_CHECK(r.payload_len == 0 ||
                   memcmp(r2.payload, r.payload, r.payload_len) == 0);
    }
    request_clear(&r2);
    request_clear(&r);
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *frame = fuzz_dup(data, size, 0);

    if (utf8_valid(frame, size))
        decode(frame, size, true);
    else
        decode(frame, size, false);
    free(frame);
    return 0;
}
