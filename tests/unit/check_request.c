/* The request decoder: every protocol error class, ids, bodies. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

#define S(lit) lit, sizeof(lit) - 1

static const struct {
    const char *frame;
    size_t len;
    enum req_err err;
    const char *id;     /* expected serialized id, NULL: none */
} rows[] = {
    /* not JSON */
    {S("nope"), RQ_BAD_JSON, NULL},
    {S("{\"op\":\"ping\""), RQ_BAD_JSON, NULL},
    {S(""), RQ_BAD_JSON, NULL},
    {S("{\"op\":\"ping\"} x"), RQ_BAD_JSON, NULL},
    /* a raw NUL, which jansson lets through after a literal or number */
    {S("{\"op\":\"pub\",\"topic\":\"a\",\"payload\":1\0}"), RQ_BAD_JSON, NULL},
    {S("{\"op\":\"ping\",\"id\":true\0}"), RQ_BAD_JSON, NULL},
    /* JSON, not an object */
    {S("[]"), RQ_BAD_REQUEST, NULL},
    {S("\"ping\""), RQ_BAD_REQUEST, NULL},
    {S("42"), RQ_BAD_REQUEST, NULL},
    {S("null"), RQ_BAD_REQUEST, NULL},
    /* op */
    {S("{}"), RQ_BAD_REQUEST, NULL},
    {S("{\"op\":1}"), RQ_BAD_REQUEST, NULL},
    {S("{\"op\":\"pingx\"}"), RQ_UNKNOWN_OP, NULL},
    {S("{\"op\":\"PING\"}"), RQ_UNKNOWN_OP, NULL},
    {S("{\"op\":\"ping\\u0000\"}"), RQ_UNKNOWN_OP, NULL},
    {S("{\"op\":\"nope\",\"id\":3}"), RQ_UNKNOWN_OP, "3"},
    /* ids */
    {S("{\"op\":\"ping\",\"id\":0}"), RQ_OK, "0"},
    {S("{\"op\":\"ping\",\"id\":9007199254740991}"), RQ_OK,
     "9007199254740991"},
    {S("{\"op\":\"ping\",\"id\":9007199254740992}"), RQ_BAD_REQUEST, NULL},
    {S("{\"op\":\"ping\",\"id\":-1}"), RQ_BAD_REQUEST, NULL},
    {S("{\"op\":\"ping\",\"id\":1.5}"), RQ_BAD_REQUEST, NULL},
    {S("{\"op\":\"ping\",\"id\":1.0}"), RQ_BAD_REQUEST, NULL},
    {S("{\"op\":\"ping\",\"id\":1e3}"), RQ_BAD_REQUEST, NULL},
    {S("{\"op\":\"ping\",\"id\":true}"), RQ_BAD_REQUEST, NULL},
    {S("{\"op\":\"ping\",\"id\":null}"), RQ_BAD_REQUEST, NULL},
    {S("{\"op\":\"ping\",\"id\":{}}"), RQ_BAD_REQUEST, NULL},
    {S("{\"op\":\"ping\",\"id\":[1]}"), RQ_BAD_REQUEST, NULL},
    {S("{\"op\":\"ping\",\"id\":99999999999999999999999}"), RQ_BAD_REQUEST,
     NULL},
    {S("{\"op\":\"ping\",\"id\":\"a\\\"b\"}"), RQ_OK, "\"a\\\"b\""},
    {S("{\"op\":\"ping\",\"id\":\"\"}"), RQ_OK, "\"\""},
    {S("{\"op\":\"ping\",\"id\":"
       "\"0123456789012345678901234567890123456789012345678901234567890123\"}"),
     RQ_OK, "\"0123456789012345678901234567890123456789012345678901234567890123\""},
    {S("{\"op\":\"ping\",\"id\":"
       "\"01234567890123456789012345678901234567890123456789012345678901234\"}"),
     RQ_BAD_REQUEST, NULL},
    /* duplicate keys are JSON, but not a usable request */
    {S("{\"op\":\"ping\",\"op\":\"sub\"}"), RQ_BAD_REQUEST, NULL},
    /* sub / unsub */
    {S("{\"op\":\"sub\",\"id\":1,\"topic\":\"a/+/c\",\"qos\":1}"), RQ_OK, "1"},
    {S("{\"op\":\"sub\",\"id\":1}"), RQ_BAD_REQUEST, "1"},
    {S("{\"op\":\"sub\",\"id\":1,\"topic\":5}"), RQ_BAD_REQUEST, "1"},
    {S("{\"op\":\"sub\",\"id\":1,\"topic\":\"a\",\"qos\":3}"), RQ_BAD_REQUEST,
     "1"},
    {S("{\"op\":\"sub\",\"id\":1,\"topic\":\"a\",\"qos\":-1}"),
     RQ_BAD_REQUEST, "1"},
    {S("{\"op\":\"sub\",\"id\":1,\"topic\":\"a\",\"qos\":\"1\"}"),
     RQ_BAD_REQUEST, "1"},
    {S("{\"op\":\"sub\",\"id\":1,\"topic\":\"a\",\"qos\":1.0}"),
     RQ_BAD_REQUEST, "1"},
    {S("{\"op\":\"sub\",\"id\":1,\"topic\":\"\"}"), RQ_BAD_TOPIC, "1"},
    {S("{\"op\":\"sub\",\"id\":1,\"topic\":\"a/#/b\"}"), RQ_BAD_TOPIC, "1"},
    {S("{\"op\":\"sub\",\"id\":1,\"topic\":\"a+\"}"), RQ_BAD_TOPIC, "1"},
    {S("{\"op\":\"sub\",\"id\":1,\"topic\":\"#a\"}"), RQ_BAD_TOPIC, "1"},
    {S("{\"op\":\"sub\",\"id\":1,\"topic\":\"a\\u0000b\"}"), RQ_BAD_TOPIC,
     "1"},
    {S("{\"op\":\"unsub\",\"id\":2,\"topic\":\"a/#\"}"), RQ_OK, "2"},
    {S("{\"op\":\"unsub\",\"id\":2,\"topic\":\"a/#/\"}"), RQ_BAD_TOPIC, "2"},
    /* pub */
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d/7/cmd\",\"payload\":{\"on\":true}}"),
     RQ_OK, "4"},
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d/+/cmd\"}"), RQ_BAD_TOPIC, "4"},
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d/#\"}"), RQ_BAD_TOPIC, "4"},
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d\",\"text\":\"a\",\"payload\":1}"),
     RQ_BAD_REQUEST, "4"},
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d\",\"text\":\"a\",\"base64\":\"\"}"),
     RQ_BAD_REQUEST, "4"},
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d\",\"text\":1}"), RQ_BAD_REQUEST,
     "4"},
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d\",\"base64\":\"#$%\"}"),
     RQ_BAD_REQUEST, "4"},
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d\",\"base64\":\"QQ\"}"),
     RQ_BAD_REQUEST, "4"},
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d\",\"retain\":1}"),
     RQ_BAD_REQUEST, "4"},
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d\",\"retain\":false}"), RQ_OK,
     "4"},
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d\",\"extra\":[1,2]}"), RQ_OK,
     "4"},
    /* pub's props (their members: check_props.c) */
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d\",\"props\":{}}"), RQ_OK,
     "4"},
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d\",\"props\":[]}"),
     RQ_BAD_REQUEST, "4"},
    {S("{\"op\":\"pub\",\"id\":4,\"topic\":\"d\","
       "\"props\":{\"expiry\":0}}"), RQ_BAD_REQUEST, "4"},
    /* request */
    {S("{\"op\":\"request\",\"id\":9,\"topic\":\"d/rpc\","
       "\"payload\":{\"get\":1},\"timeout_ms\":5000}"), RQ_OK, "9"},
    {S("{\"op\":\"request\",\"topic\":\"d/rpc\"}"), RQ_BAD_REQUEST, NULL},
    {S("{\"op\":\"request\",\"id\":9,\"topic\":\"d/+\"}"), RQ_BAD_TOPIC,
     "9"},
    {S("{\"op\":\"request\",\"id\":9,\"topic\":\"d\",\"timeout_ms\":0}"),
     RQ_BAD_REQUEST, "9"},
    {S("{\"op\":\"request\",\"id\":9,\"topic\":\"d\","
       "\"timeout_ms\":60000}"), RQ_OK, "9"},
    {S("{\"op\":\"request\",\"id\":9,\"topic\":\"d\","
       "\"timeout_ms\":60001}"), RQ_BAD_REQUEST, "9"},
    {S("{\"op\":\"request\",\"id\":9,\"topic\":\"d\","
       "\"timeout_ms\":\"1\"}"), RQ_BAD_REQUEST, "9"},
    {S("{\"op\":\"request\",\"id\":9,\"topic\":\"d\","
       "\"props\":{\"response_topic\":\"r\"}}"), RQ_BAD_REQUEST, "9"},
    {S("{\"op\":\"request\",\"id\":9,\"topic\":\"d\","
       "\"props\":{\"correlation\":\"AAAA\"}}"), RQ_BAD_REQUEST, "9"},
    {S("{\"op\":\"request\",\"id\":9,\"topic\":\"d\",\"text\":\"a\","
       "\"base64\":\"AA==\"}"), RQ_BAD_REQUEST, "9"},
    /* auth */
    {S("{\"op\":\"auth\",\"id\":1,\"token\":\"x.y.z\"}"), RQ_OK, "1"},
    {S("{\"op\":\"auth\",\"id\":1,\"token\":5}"), RQ_BAD_REQUEST, "1"},
    {S("{\"op\":\"auth\",\"id\":1,\"user\":\"a\",\"password\":null}"),
     RQ_BAD_REQUEST, "1"},
};

START_TEST(test_rows)
{
    struct request r;
    char msg[256];
    enum req_err e = request_decode(rows[_i].frame, rows[_i].len, &r, msg,
                                    sizeof(msg));

    ck_assert_msg(e == rows[_i].err, "row %d (%s): got %s (%s)", _i,
                  rows[_i].frame, request_err_code(e), msg);
    if (rows[_i].id) {
        ck_assert_uint_eq(r.id_len, strlen(rows[_i].id));
        ck_assert(memcmp(r.id, rows[_i].id, r.id_len) == 0);
    } else if (e == RQ_OK) {
        ck_assert_uint_eq(r.id_len, 0);
    }
    request_clear(&r);
}
END_TEST

static const struct {
    const char *frame;
    size_t len;
    enum req_body body;
    const char *bytes;
    size_t blen;
} bodies[] = {
    {S("{\"op\":\"pub\",\"topic\":\"t\",\"payload\":{ \"t\" : 21.50 , \"a\": [1, 2] }}"),
     BODY_JSON, S("{\"t\":21.50,\"a\":[1,2]}")},
    {S("{\"op\":\"pub\",\"topic\":\"t\",\"payload\":\"a b\"}"), BODY_JSON,
     S("\"a b\"")},
    {S("{\"op\":\"pub\",\"topic\":\"t\",\"payload\":null}"), BODY_JSON,
     S("null")},
    {S("{\"op\":\"pub\",\"topic\":\"t\",\"text\":\"h\\u00e9\\u0000\"}"),
     BODY_TEXT, S("h\xc3\xa9\0")},
    {S("{\"op\":\"pub\",\"topic\":\"t\",\"base64\":\"AP8=\"}"), BODY_BASE64,
     S("\x00\xff")},
    {S("{\"op\":\"pub\",\"topic\":\"t\"}"), BODY_NONE, S("")},
};

START_TEST(test_bodies)
{
    struct request r;
    char msg[256];

    ck_assert_int_eq(request_decode(bodies[_i].frame, bodies[_i].len, &r,
                                    msg, sizeof(msg)),
                     RQ_OK);
    ck_assert_int_eq(r.body, bodies[_i].body);
    ck_assert_uint_eq(r.payload_len, bodies[_i].blen);
    if (r.payload_len)
        ck_assert(memcmp(r.payload, bodies[_i].bytes, r.payload_len) == 0);
    request_clear(&r);
}
END_TEST

START_TEST(test_fields)
{
    static const char f[] = "{\"op\":\"pub\",\"id\":\"x\",\"topic\":\"a/b\","
                            "\"qos\":2,\"retain\":true,\"text\":\"\"}";
    struct request r;
    char msg[64];

    ck_assert_int_eq(request_decode(f, sizeof(f) - 1, &r, msg, sizeof(msg)),
                     RQ_OK);
    ck_assert_int_eq(r.op, OP_PUB);
    ck_assert_int_eq(r.qos, 2);
    ck_assert(r.retain);
    ck_assert_uint_eq(r.topic_len, 3);
    ck_assert(memcmp(r.topic, "a/b", 3) == 0);
    ck_assert_int_eq(r.body, BODY_TEXT);
    ck_assert_uint_eq(r.payload_len, 0);
    request_clear(&r);
}
END_TEST

/* sub's stream fields: history, since, retained, max_rate. */
static const struct {
    const char *frame;
    enum req_err err;
    long history;
    int since;               /* 1: since given */
    const char *epoch;
    uint64_t seq;
    bool retained;
    double max_rate;
} stream_rows[] = {
    {"{\"op\":\"sub\",\"topic\":\"a\"}", RQ_OK, 0, 0, NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"history\":50}", RQ_OK, 50, 0, NULL, 0,
     true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"history\":100000}", RQ_OK, 100000, 0,
     NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"history\":100001}", RQ_BAD_REQUEST, 0,
     0, NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"history\":-1}", RQ_BAD_REQUEST, 0, 0,
     NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"history\":1.5}", RQ_BAD_REQUEST, 0, 0,
     NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"history\":\"5\"}", RQ_BAD_REQUEST, 0,
     0, NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"since\":{\"epoch\":\"k9Qx2\","
     "\"seq\":81723}}", RQ_OK, 0, 1, "k9Qx2", 81723, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"since\":{\"epoch\":\"a_-Z9\","
     "\"seq\":0},\"history\":3}", RQ_OK, 3, 1, "a_-Z9", 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"since\":{\"epoch\":\"\",\"seq\":1}}",
     RQ_BAD_REQUEST, 0, 0, NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"since\":{\"epoch\":\"a b\",\"seq\":1}}",
     RQ_BAD_REQUEST, 0, 0, NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"since\":{\"epoch\":\"e\",\"seq\":-1}}",
     RQ_BAD_REQUEST, 0, 0, NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"since\":{\"epoch\":\"e\"}}",
     RQ_BAD_REQUEST, 0, 0, NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"since\":\"e:1\"}", RQ_BAD_REQUEST, 0,
     0, NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"since\":{\"epoch\":\"aaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"seq\":1}}",
     RQ_BAD_REQUEST, 0, 0, NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"retained\":false}", RQ_OK, 0, 0, NULL,
     0, false, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"retained\":0}", RQ_BAD_REQUEST, 0, 0,
     NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"max_rate\":2}", RQ_OK, 0, 0, NULL, 0,
     true, 2},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"max_rate\":0.5}", RQ_OK, 0, 0, NULL,
     0, true, 0.5},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"max_rate\":1000}", RQ_OK, 0, 0, NULL,
     0, true, 1000},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"max_rate\":1000.5}", RQ_BAD_REQUEST,
     0, 0, NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"max_rate\":0}", RQ_BAD_REQUEST, 0, 0,
     NULL, 0, true, 0},
    {"{\"op\":\"sub\",\"topic\":\"a\",\"max_rate\":\"1\"}", RQ_BAD_REQUEST, 0,
     0, NULL, 0, true, 0},
};

START_TEST(test_stream_fields)
{
    struct request r;
    char msg[256];
    enum req_err e = request_decode(stream_rows[_i].frame,
                                    strlen(stream_rows[_i].frame), &r, msg,
                                    sizeof(msg));

    ck_assert_int_eq(e, stream_rows[_i].err);
    if (e == RQ_OK) {
        ck_assert_int_eq(r.history, stream_rows[_i].history);
        ck_assert_int_eq(r.has_since, stream_rows[_i].since);
        if (r.has_since) {
            ck_assert_uint_eq(r.since_epoch_len,
                              strlen(stream_rows[_i].epoch));
            ck_assert_int_eq(memcmp(r.since_epoch, stream_rows[_i].epoch,
                                    r.since_epoch_len), 0);
            ck_assert_uint_eq(r.since_seq, stream_rows[_i].seq);
        }
        ck_assert_int_eq(r.retained, stream_rows[_i].retained);
        ck_assert(r.max_rate == stream_rows[_i].max_rate);
    }
    request_clear(&r);
}
END_TEST

/* request's fields, and pub's props as records with the response topic
 * aside. */
START_TEST(test_request_fields)
{
    static const char f1[] =
        "{\"op\":\"request\",\"id\":\"r\",\"topic\":\"d/7/rpc\",\"qos\":1,"
        "\"text\":\"hi\",\"props\":{\"content_type\":\"c\"}}";
    static const char f2[] =
        "{\"op\":\"pub\",\"topic\":\"t\",\"props\":{\"response_topic\":"
        "\"a/b\",\"expiry\":9}}";
    struct request r;
    char msg[256];

    ck_assert_int_eq(request_decode(f1, sizeof(f1) - 1, &r, msg, sizeof(msg)),
                     RQ_OK);
    ck_assert_int_eq(r.op, OP_REQUEST);
    ck_assert_int_eq(r.timeout_ms, REQ_TIMEOUT_DEFAULT);
    ck_assert_int_eq(r.qos, 1);
    ck_assert(r.has_props);
    ck_assert_uint_eq(r.props_len, 1 + 2 + 1);
    ck_assert_ptr_null(r.response_topic);
    ck_assert_uint_eq(r.payload_len, 2);
    request_clear(&r);
    ck_assert_int_eq(request_decode(f2, sizeof(f2) - 1, &r, msg, sizeof(msg)),
                     RQ_OK);
    ck_assert(r.has_props);
    ck_assert_uint_eq(r.props_len, 5);
    ck_assert_uint_eq(r.response_topic_len, 3);
    ck_assert_mem_eq(r.response_topic, "a/b", 3);
    request_clear(&r);
}
END_TEST

START_TEST(test_codes)
{
    ck_assert_str_eq(request_err_code(RQ_BAD_JSON), "bad_json");
    ck_assert_str_eq(request_err_code(RQ_BAD_REQUEST), "bad_request");
    ck_assert_str_eq(request_err_code(RQ_UNKNOWN_OP), "unknown_op");
    ck_assert_str_eq(request_err_code(RQ_BAD_TOPIC), "bad_topic");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("request");
    TCase *tc = tcase_create("decode");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, test_rows, 0, sizeof(rows) / sizeof(rows[0]));
    tcase_add_loop_test(tc, test_bodies, 0,
                        sizeof(bodies) / sizeof(bodies[0]));
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_request_fields);
    tcase_add_loop_test(tc, test_stream_fields, 0,
                        sizeof(stream_rows) / sizeof(stream_rows[0]));
    tcase_add_test(tc, test_codes);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
