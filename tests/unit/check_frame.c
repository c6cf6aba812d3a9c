/* Frames built once and shared: the WebSocket header for every payload
 * size class, the msg frame's JSON for each payload kind, references. */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "props.h"

/* The payload length the header of f announces, checking its form. */
static uint64_t header_len(const struct frame *f)
{
    const uint8_t *h = f->data;
    uint64_t n = h[1] & 0x7f;

    ck_assert_uint_eq(h[0], 0x81);      /* FIN, text */
    ck_assert_uint_eq(h[1] & 0x80, 0);  /* server frames are not masked */
    if (n == 126) {
        n = (uint64_t)h[2] << 8 | h[3];
        ck_assert_ptr_eq(f->payload, f->data + 4);
        ck_assert_uint_ge(n, 126);
    } else if (n == 127) {
        n = 0;
        for (int i = 2; i < 10; i++)
            n = n << 8 | h[i];
        ck_assert_ptr_eq(f->payload, f->data + 10);
        ck_assert_uint_ge(n, 65536);
    } else {
        ck_assert_ptr_eq(f->payload, f->data + 2);
    }
    return n;
}

START_TEST(test_frame_sizes)
{
    static const size_t sizes[] = { 0, 1, 125, 126, 127, 65535, 65536,
                                    70000 };
    size_t len = sizes[_i];
    char *s = malloc(len + 1);
    struct frame *f;

    memset(s, 'x', len);
    f = frame_new_text(s, len);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(header_len(f), len);
    ck_assert_uint_eq(f->payload_len, len);
    ck_assert_uint_eq(f->len, (size_t)(f->payload - f->data) + len);
    ck_assert_int_eq(memcmp(f->payload, s, len), 0);
    ck_assert_uint_eq(f->refs, 1);
    frame_ref(f);
    ck_assert_uint_eq(f->refs, 2);
    frame_unref(f);
    frame_unref(f);
    free(s);
}
END_TEST

static json_t *payload_json(const struct frame *f)
{
    json_error_t e;
    json_t *j;

    ck_assert_uint_eq(header_len(f), f->payload_len);
    j = json_loadb((const char *)f->payload, f->payload_len,
                   JSON_REJECT_DUPLICATES, &e);
    if (!j)
        ck_abort_msg("not JSON: %s", e.text);
    return j;
}

/* frame_new_msg() for a message without properties or mount. */
static struct frame *msg_frame(const char *topic, size_t tlen,
                               const uint8_t *p, size_t plen,
                               enum payload_kind kind, int qos, bool retain,
                               const struct frame_pos *pos)
{
    return frame_new_msg(&(struct frame_msg){.topic = topic,
                                             .topic_len = tlen,
                                             .payload = p,
                                             .payload_len = plen,
                                             .kind = kind,
                                             .qos = qos,
                                             .retain = retain},
                         pos);
}

START_TEST(test_frame_msg_kinds)
{
    static const uint8_t bin[] = { 0xff, 0x00, 0x80 };
    struct frame *f;
    json_t *j;

    f = msg_frame("a/\"b\"", 5, (const uint8_t *)" 21.50 ", 7, PAYLOAD_JSON, 1, false, NULL);
    ck_assert_ptr_nonnull(f);
    /* the JSON payload is spliced verbatim */
    ck_assert_ptr_nonnull(memmem(f->payload, f->payload_len,
                                 "\"payload\": 21.50 ,", 18));
    j = payload_json(f);
    ck_assert_str_eq(json_string_value(json_object_get(j, "op")), "msg");
    ck_assert_str_eq(json_string_value(json_object_get(j, "topic")),
                     "a/\"b\"");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "qos")), 1);
    ck_assert(json_is_false(json_object_get(j, "retain")));
    json_decref(j);
    frame_unref(f);

    f = msg_frame("t", 1, (const uint8_t *)"line\n\"q\"", 8, PAYLOAD_TEXT, 0, true, NULL);
    j = payload_json(f);
    ck_assert_str_eq(json_string_value(json_object_get(j, "text")),
                     "line\n\"q\"");
    ck_assert(json_is_true(json_object_get(j, "retain")));
    json_decref(j);
    frame_unref(f);

    f = msg_frame("t", 1, bin, sizeof(bin), PAYLOAD_BASE64, 2, false, NULL);
    j = payload_json(f);
    ck_assert_str_eq(json_string_value(json_object_get(j, "base64")),
                     "/wCA");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "qos")), 2);
    ck_assert_ptr_null(json_object_get(j, "seq"));
    json_decref(j);
    frame_unref(f);

    /* stream positions: the largest seq a JSON client reads exactly */
    {
        struct frame_pos pos = { 9007199254740991ULL, 1764547200123ULL,
                                 true };

        f = msg_frame("t", 1, (const uint8_t *)"1", 1, PAYLOAD_JSON, 0, false, &pos);
        j = payload_json(f);
        ck_assert(json_is_true(json_object_get(j, "history")));
        static const char want[] = "\"seq\":9007199254740991,"
                                   "\"ts\":1764547200123,";

        ck_assert_ptr_nonnull(memmem(f->payload, f->payload_len, want,
                                     sizeof(want) - 1));
        json_decref(j);
        frame_unref(f);
    }
}
END_TEST

/* A frame as a Server-Sent Event: built at the first call, the same
 * bytes (and buffer) at every later one; the id only with a seq. */
START_TEST(test_frame_sse)
{
    struct frame_pos pos = {42, 1700000000000ULL, false};
    struct frame *m = msg_frame("a/b", 3, (const uint8_t *)"hi", 2,
                                PAYLOAD_TEXT, 1, false, &pos);
    struct frame *st = frame_new_text("{\"op\":\"status\",\"broker\":\"up\"}",
                                      29);
    size_t n1, n2, n3;
    const char *e1 = frame_sse(m, "EPOCH", &n1);
    const char *e2 = frame_sse(m, "EPOCH", &n2);
    const char *e3 = frame_sse(st, "EPOCH", &n3);
    static const char want_m[] =
        "event: msg\nid: EPOCH:42\ndata: {\"op\":\"msg\",\"topic\":\"a/b\","
        "\"text\":\"hi\",\"qos\":1,\"retain\":false,\"seq\":42,"
        "\"ts\":1700000000000}\n\n";
    static const char want_st[] =
        "event: status\ndata: {\"op\":\"status\",\"broker\":\"up\"}\n\n";

    ck_assert_ptr_nonnull(e1);
    ck_assert_ptr_eq(e1, e2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_uint_eq(n1, sizeof(want_m) - 1);
    ck_assert_int_eq(memcmp(e1, want_m, n1), 0);
    ck_assert_uint_eq(n3, sizeof(want_st) - 1);
    ck_assert_int_eq(memcmp(e3, want_st, n3), 0);
    ck_assert_uint_eq(m->seq, 42);
    ck_assert_uint_eq(st->seq, 0);
    frame_unref(m);
    frame_unref(st);
}
END_TEST

/* props between the body and qos, written once with the mount's view. */
START_TEST(test_frame_msg_props)
{
    uint8_t *m = NULL;
    size_t len = 0;
    struct props_item ct = {.kind = PROPS_CONTENT_TYPE, .a = "c", .a_len = 1};
    struct props_item rt = {.kind = PROPS_RESPONSE_TOPIC, .a = "m/r",
                            .a_len = 3};
    struct frame *f;
    json_t *j;

    ck_assert_int_eq(props_append(&m, &len, &ct), 0);
    ck_assert_int_eq(props_append(&m, &len, &rt), 0);
    f = frame_new_msg(&(struct frame_msg){.topic = "t", .topic_len = 1,
                                          .payload = (const uint8_t *)"1",
                                          .payload_len = 1,
                                          .kind = PAYLOAD_JSON,
                                          .props = m, .props_len = len,
                                          .mount = "m/", .mount_len = 2,
                                          .qos = 1},
                      NULL);
    ck_assert_ptr_nonnull(f);
    static const char want[] = "{\"op\":\"msg\",\"topic\":\"t\",\"payload\":1,"
                               "\"props\":{\"content_type\":\"c\","
                               "\"response_topic\":\"r\"},\"qos\":1,"
                               "\"retain\":false}";
    ck_assert_uint_eq(f->payload_len, sizeof(want) - 1);
    ck_assert_mem_eq(f->payload, want, sizeof(want) - 1);
    j = payload_json(f);
    json_decref(j);
    frame_unref(f);
    free(m);
}
END_TEST

static Suite *frame_suite(void)
{
    Suite *s = suite_create("frame");
    TCase *tc = tcase_create("frame");

    tcase_add_loop_test(tc, test_frame_sizes, 0, 8);
    tcase_add_test(tc, test_frame_msg_kinds);
    tcase_add_test(tc, test_frame_sse);
    tcase_add_test(tc, test_frame_msg_props);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(frame_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
