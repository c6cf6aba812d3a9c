/* Server-Sent Events framing: the event name of a frame (its "op"), the
 * exact bytes of an event with and without an id, and EPOCH:SEQ ids. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

#define OP31 "abcdefghijklmnopqrstuvwxyz_abcd"
#define OP40 OP31 "efghijklm"

static const struct {
    const char *json;
    const char *epoch;
    uint64_t seq;
    const char *op;     /* what sse_op() names it */
    const char *want;   /* what sse_encode() writes */
} enc[] = {
    /* every op the gateway writes, without a stream position */
    {"{\"op\":\"hello\",\"epoch\":\"k9\"}", "k9", 0, "hello",
     "event: hello\ndata: {\"op\":\"hello\",\"epoch\":\"k9\"}\n\n"},
    {"{\"op\":\"status\",\"broker\":\"up\"}", "k9", 0, "status",
     "event: status\ndata: {\"op\":\"status\",\"broker\":\"up\"}\n\n"},
    {"{\"op\":\"ok\",\"topic\":\"a/#\",\"qos\":0}", "k9", 0, "ok",
     "event: ok\ndata: {\"op\":\"ok\",\"topic\":\"a/#\",\"qos\":0}\n\n"},
    {"{\"op\":\"msg\",\"topic\":\"a\",\"retain\":true}", "k9", 0, "msg",
     "event: msg\ndata: {\"op\":\"msg\",\"topic\":\"a\",\"retain\":true}\n\n"},
    {"{\"op\":\"error\",\"code\":\"forbidden\"}", "k9", 0, "error",
     "event: error\ndata: {\"op\":\"error\",\"code\":\"forbidden\"}\n\n"},
    {"{\"op\":\"close\",\"code\":4408}", "k9", 0, "close",
     "event: close\ndata: {\"op\":\"close\",\"code\":4408}\n\n"},
    {"{\"op\":\"pong\"}", "k9", 0, "pong",
     "event: pong\ndata: {\"op\":\"pong\"}\n\n"},
    {"{\"op\":\"request\",\"id\":1}", "", 0, "request",
     "event: request\ndata: {\"op\":\"request\",\"id\":1}\n\n"},
    /* with a stream position: the id line, every width of seq */
    {"{\"op\":\"msg\",\"seq\":1}", "k9Qx2", 1, "msg",
     "event: msg\nid: k9Qx2:1\ndata: {\"op\":\"msg\",\"seq\":1}\n\n"},
    {"{\"op\":\"msg\"}", "e", 9, "msg",
     "event: msg\nid: e:9\ndata: {\"op\":\"msg\"}\n\n"},
    {"{\"op\":\"msg\"}", "e", 10, "msg",
     "event: msg\nid: e:10\ndata: {\"op\":\"msg\"}\n\n"},
    {"{\"op\":\"msg\"}", "e", 81723, "msg",
     "event: msg\nid: e:81723\ndata: {\"op\":\"msg\"}\n\n"},
    {"{\"op\":\"msg\"}", "A-_z", 9223372036854775807ULL, "msg",
     "event: msg\nid: A-_z:9223372036854775807\ndata: {\"op\":\"msg\"}\n\n"},
    {"{\"op\":\"msg\"}", "e", UINT64_MAX, "msg",
     "event: msg\nid: e:18446744073709551615\ndata: {\"op\":\"msg\"}\n\n"},
    {"{\"op\":\"msg\"}",
     "0123456789012345678901234567890123456789012345678901234567890123", 7,
     "msg",
     "event: msg\nid: "
     "0123456789012345678901234567890123456789012345678901234567890123:7\n"
     "data: {\"op\":\"msg\"}\n\n"},
    /* the shortest frame that names its op */
    {"{\"op\":\"ok\"", "e", 0, "ok", "event: ok\ndata: {\"op\":\"ok\"\n\n"},
    /* op names: [a-z_], up to 31 characters */
    {"{\"op\":\"a_b\"}", "e", 0, "a_b", "event: a_b\ndata: {\"op\":\"a_b\"}\n\n"},
    {"{\"op\":\"" OP31 "\"}", "e", 0, OP31,
     "event: " OP31 "\ndata: {\"op\":\"" OP31 "\"}\n\n"},
    {"{\"op\":\"" OP40 "\"}", "e", 0, "message",
     "event: message\ndata: {\"op\":\"" OP40 "\"}\n\n"},
    /* not {"op":"NAME": the default event name, also with an id */
    {"{\"op\":\"Msg\"}", "e", 0, "message",
     "event: message\ndata: {\"op\":\"Msg\"}\n\n"},
    {"{\"op\":\"a-b\"}", "e", 0, "message",
     "event: message\ndata: {\"op\":\"a-b\"}\n\n"},
    {"{\"op\":\"a b\"}", "e", 0, "message",
     "event: message\ndata: {\"op\":\"a b\"}\n\n"},
    {"{\"op\":\"ok1\"}", "e", 0, "message",
     "event: message\ndata: {\"op\":\"ok1\"}\n\n"},
    {"{\"op\":\"o\\u006b\"}", "e", 0, "message",
     "event: message\ndata: {\"op\":\"o\\u006b\"}\n\n"},
    {"{\"op\":\"\xc3\xa9\"}", "e", 0, "message",
     "event: message\ndata: {\"op\":\"\xc3\xa9\"}\n\n"},
    {"{\"op\":\"\"}", "e", 0, "message",
     "event: message\ndata: {\"op\":\"\"}\n\n"},
    {"{\"op\":\"ok", "e", 0, "message", "event: message\ndata: {\"op\":\"ok\n\n"},
    {"{\"op\":\"", "e", 0, "message", "event: message\ndata: {\"op\":\"\n\n"},
    {"{\"op\":7}", "e", 0, "message", "event: message\ndata: {\"op\":7}\n\n"},
    {"{\"op\": \"ok\"}", "e", 0, "message",
     "event: message\ndata: {\"op\": \"ok\"}\n\n"},
    {"{\"id\":1,\"op\":\"ok\"}", "e", 3, "message",
     "event: message\nid: e:3\ndata: {\"id\":1,\"op\":\"ok\"}\n\n"},
    {"[1,2]", "e", 0, "message", "event: message\ndata: [1,2]\n\n"},
    {"", "e", 0, "message", "event: message\ndata: \n\n"},
};

START_TEST(test_sse_encode)
{
    const char *json = enc[_i].json;
    size_t len = strlen(json), want_len = strlen(enc[_i].want), op_len;
    const char *op = sse_op(json, len, &op_len);
    /* exact size, so that ASan sees a byte written past the end */
    char *out = malloc(want_len ? want_len : 1);

    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(op_len, strlen(enc[_i].op));
    ck_assert_int_eq(memcmp(op, enc[_i].op, op_len), 0);
    if (strcmp(enc[_i].op, "message") != 0)
        ck_assert_ptr_eq(op, json + 7);   /* a name inside the frame */
    ck_assert_uint_eq(sse_encoded_len(json, len, enc[_i].epoch, enc[_i].seq),
                      want_len);
    ck_assert_uint_eq(sse_encode(json, len, enc[_i].epoch, enc[_i].seq, out),
                      want_len);
    ck_assert_msg(memcmp(out, enc[_i].want, want_len) == 0,
                  "row %d: got %.*s", _i, (int)want_len, out);
    free(out);
}
END_TEST

/* The frame is json[0..len): bytes after it are not read as its op. */
START_TEST(test_sse_op_bounded)
{
    static const char buf[] = "{\"op\":\"msg\",\"x\":1}";
    size_t op_len;

    /* cut inside the name, and right before its closing quote */
    ck_assert_str_eq(sse_op(buf, 9, &op_len), "message");
    ck_assert_str_eq(sse_op(buf, 10, &op_len), "message");
    ck_assert_uint_eq(op_len, 7);
    ck_assert_ptr_eq(sse_op(buf, 11, &op_len), buf + 7);
    ck_assert_uint_eq(op_len, 3);
}
END_TEST

#define E64 "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"

static const struct {
    const char *s;
    size_t len;          /* 0: strlen(s) */
    int want;
    size_t epoch_len;
    uint64_t seq;
} ids[] = {
    {"k9Qx2:81723", 0, 0, 5, 81723},
    {"a:0", 0, 0, 1, 0},
    {"A-_z9:1", 0, 0, 5, 1},
    {E64 ":1", 0, 0, 64, 1},
    {"e:9223372036854775807", 0, 0, 1, 9223372036854775807ULL},
    {"e:0000000000000000042", 0, 0, 1, 42},    /* 19 digits */
    {"e:1234567", 4, 0, 1, 12},                 /* only s[0..len) */
    /* the epoch: 1..64 of [A-Za-z0-9_-] */
    {"x" E64 ":1", 0, -1, 0, 0},               /* 65 characters */
    {":5", 0, -1, 0, 0},
    {"e.x:5", 0, -1, 0, 0},
    {"e x:5", 0, -1, 0, 0},
    {"e/x:5", 0, -1, 0, 0},
    {"\xc3\xa9:5", 0, -1, 0, 0},
    {"e\0:5", 4, -1, 0, 0},
    /* the seq: 1..19 digits, at most INT64_MAX */
    {"e:", 0, -1, 0, 0},
    {"e:9223372036854775808", 0, -1, 0, 0},
    {"e:9999999999999999999", 0, -1, 0, 0},
    {"e:18446744073709551615", 0, -1, 0, 0},   /* 20 digits */
    {"e:18446744073709551616", 0, -1, 0, 0},   /* wraps in 64 bits */
    {"e:00000000000000000001", 0, -1, 0, 0},   /* 20 digits */
    {"e:+5", 0, -1, 0, 0},
    {"e:-5", 0, -1, 0, 0},
    {"e: 5", 0, -1, 0, 0},
    {"e:5 ", 0, -1, 0, 0},
    {"e:1a", 0, -1, 0, 0},
    {"e:0x10", 0, -1, 0, 0},
    {"e:1.5", 0, -1, 0, 0},
    {"e:5\0", 4, -1, 0, 0},
    {"e:5:6", 0, -1, 0, 0},
    /* no colon, nothing */
    {"e5", 0, -1, 0, 0},
    {"e", 0, -1, 0, 0},
    {":", 0, -1, 0, 0},
    {"", 0, -1, 0, 0},
};

START_TEST(test_sse_parse_id)
{
    size_t len = ids[_i].len ? ids[_i].len : strlen(ids[_i].s);
    /* exact-size copy without a terminator */
    char *s = malloc(len ? len : 1);
    size_t el = 999;
    uint64_t seq = 999;
    int r;

    ck_assert_ptr_nonnull(s);
    memcpy(s, ids[_i].s, len);
    r = sse_parse_id(s, len, &el, &seq);
    ck_assert_msg(r == ids[_i].want, "row %d (%s): got %d", _i, ids[_i].s, r);
    if (r == 0) {
        ck_assert_uint_eq(el, ids[_i].epoch_len);
        ck_assert_uint_eq(seq, ids[_i].seq);
    }
    free(s);
}
END_TEST

/* What sse_encode() writes as an id, sse_parse_id() reads back. */
START_TEST(test_sse_id_roundtrip)
{
    static const uint64_t seqs[] = {1, 9, 10, 99, 100, 81723,
                                    9223372036854775807ULL};
    static const char json[] = "{\"op\":\"msg\"}";
    char out[256];

    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        size_t n = sse_encode(json, sizeof(json) - 1, "k9Qx2", seqs[i], out);
        const char *id = out + strlen("event: msg\nid: ");
        const char *nl = memchr(id, '\n', n - (size_t)(id - out));
        size_t el;
        uint64_t seq;

        ck_assert_ptr_nonnull(nl);
        ck_assert_int_eq(sse_parse_id(id, (size_t)(nl - id), &el, &seq), 0);
        ck_assert_uint_eq(el, 5);
        ck_assert_uint_eq(seq, seqs[i]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sse");
    TCase *tc = tcase_create("sse");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, test_sse_encode, 0, sizeof(enc) / sizeof(enc[0]));
    tcase_add_test(tc, test_sse_op_bounded);
    tcase_add_loop_test(tc, test_sse_parse_id, 0,
                        sizeof(ids) / sizeof(ids[0]));
    tcase_add_test(tc, test_sse_id_roundtrip);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
