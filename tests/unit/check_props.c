/* MQTT 5 properties (common/props.c): records round-trip, malformed
 * records end the walk, the JSON of "props" (order, grouping of user
 * pairs, mount-relative response_topic, base64 correlation, counted
 * length equal to written length, parsed back with jansson), a pub's
 * "props" accepted and refused member by member, and the MQTT string
 * rule of utf8_mqtt_valid(). */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "props.h"
#include "utf8.h"

static size_t add(uint8_t **m, size_t *len, enum props_kind k,
                  const char *a, const char *b, uint32_t n)
{
    struct props_item it = {.kind = k, .a = a, .a_len = a ? strlen(a) : 0,
                            .b = b, .b_len = b ? strlen(b) : 0, .n = n};

    ck_assert_int_eq(props_append(m, len, &it), 0);
    return *len;
}

/* props_json() of meta, checked for an exact count, as a parsed object
 * (NULL when it wrote nothing). */
static json_t *as_json(const uint8_t *m, size_t len, const char *mount,
                       unsigned flags)
{
    size_t mlen = mount ? strlen(mount) : 0;
    size_t n = props_json(m, len, mount, mlen, flags, NULL);
    char *buf = malloc(n + 3);
    json_error_t e;
    json_t *j, *p;

    ck_assert_ptr_nonnull(buf);
    memset(buf, 'X', n + 3);
    buf[0] = '{';
    ck_assert_uint_eq(props_json(m, len, mount, mlen, flags, buf + 1), n);
    if (n == 0) {
        free(buf);
        return NULL;
    }
    ck_assert_int_eq(buf[1], ',');
    ck_assert_int_eq(buf[n + 1], 'X');  /* nothing past the count */
    buf[1] = ' ';
    buf[n + 1] = '}';
    j = json_loadb(buf, n + 2, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        ck_abort_msg("not JSON: %s in %.*s", e.text, (int)n + 2, buf);
    free(buf);
    p = json_incref(json_object_get(j, "props"));
    ck_assert_ptr_nonnull(p);
    json_decref(j);
    return p;
}

static void assert_json(json_t *got, const char *want)
{
    json_t *w = json_loads(want, 0, NULL);
    char *g = got ? json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT) : NULL;

    ck_assert_ptr_nonnull(w);
    ck_assert_msg(got && json_equal(got, w), "got %s, want %s",
                  g ? g : "(nothing)", want);
    free(g);
    json_decref(w);
    json_decref(got);
}

START_TEST(test_records_roundtrip)
{
    uint8_t *m = NULL;
    size_t len = 0, off = 0;
    struct props_item it;
    static const uint8_t bin[] = {0, 0xff, 'a'};
    struct props_item corr = {.kind = PROPS_CORRELATION,
                              .a = (const char *)bin, .a_len = 3};

    add(&m, &len, PROPS_USER, "k", "", 0);
    add(&m, &len, PROPS_EXPIRY, NULL, NULL, 4294967295u);
    ck_assert_int_eq(props_append(&m, &len, &corr), 0);
    add(&m, &len, PROPS_CONTENT_TYPE, "", NULL, 0);
    ck_assert_int_eq(props_next(m, len, &off, &it), 1);
    ck_assert_int_eq(it.kind, PROPS_USER);
    ck_assert_uint_eq(it.a_len, 1);
    ck_assert_uint_eq(it.b_len, 0);
    ck_assert_int_eq(props_next(m, len, &off, &it), 1);
    ck_assert_int_eq(it.kind, PROPS_EXPIRY);
    ck_assert_uint_eq(it.n, 4294967295u);
    ck_assert_int_eq(props_next(m, len, &off, &it), 1);
    ck_assert_int_eq(it.kind, PROPS_CORRELATION);
    ck_assert_mem_eq(it.a, bin, 3);
    ck_assert_int_eq(props_next(m, len, &off, &it), 1);
    ck_assert_int_eq(it.kind, PROPS_CONTENT_TYPE);
    ck_assert_uint_eq(it.a_len, 0);
    ck_assert_int_eq(props_next(m, len, &off, &it), 0);
    free(m);
}
END_TEST

/* Every cut of a record list is malformed at the cut (or a clean end). */
START_TEST(test_records_truncated)
{
    uint8_t *m = NULL;
    size_t len = 0;

    add(&m, &len, PROPS_USER, "name", "value", 0);
    add(&m, &len, PROPS_EXPIRY, NULL, NULL, 7);
    add(&m, &len, PROPS_RESPONSE_TOPIC, "a/b", NULL, 0);
    for (size_t cut = 0; cut < len; cut++) {
        size_t off = 0, n = 0;
        struct props_item it;
        int rc;

        while ((rc = props_next(m, cut, &off, &it)) > 0)
            n++;
        /* cuts at a record boundary end cleanly, others are malformed */
        ck_assert_int_eq(rc, (cut == 0 || cut == 14 || cut == 19) ? 0 : -1);
        ck_assert_uint_eq(off, cut);
        ck_assert_uint_le(n, 2);
    }
    {
        uint8_t badkind[] = {9, 0, 0};
        size_t off = 0;
        struct props_item it;

        ck_assert_int_eq(props_next(badkind, 3, &off, &it), -1);
    }
    free(m);
}
END_TEST

START_TEST(test_json_members)
{
    uint8_t *m = NULL;
    size_t len = 0;
    static const char corr[] = "\x01\x02\x03";

    /* user pairs grouped in their order, whatever stands between them */
    add(&m, &len, PROPS_USER, "a", "1", 0);
    add(&m, &len, PROPS_CONTENT_TYPE, "text/\"x\"", NULL, 0);
    add(&m, &len, PROPS_USER, "a", "2", 0);
    add(&m, &len, PROPS_RESPONSE_TOPIC, "t/r", NULL, 0);
    add(&m, &len, PROPS_CORRELATION, corr, NULL, 0);
    add(&m, &len, PROPS_EXPIRY, NULL, NULL, 60);
    assert_json(as_json(m, len, NULL, 0),
                "{\"user\":[[\"a\",\"1\"],[\"a\",\"2\"]],"
                "\"content_type\":\"text/\\\"x\\\"\",\"response_topic\":\"t/r\","
                "\"correlation\":\"AQID\",\"expiry\":60}");
    /* under the mount t/: relative; under another: left out */
    assert_json(as_json(m, len, "t/", 0),
                "{\"user\":[[\"a\",\"1\"],[\"a\",\"2\"]],"
                "\"content_type\":\"text/\\\"x\\\"\",\"response_topic\":\"r\","
                "\"correlation\":\"AQID\",\"expiry\":60}");
    assert_json(as_json(m, len, "u/", PROPS_JSON_NO_CORRELATION),
                "{\"user\":[[\"a\",\"1\"],[\"a\",\"2\"]],"
                "\"content_type\":\"text/\\\"x\\\"\",\"expiry\":60}");
    free(m);
}
END_TEST

START_TEST(test_json_nothing_left)
{
    uint8_t *m = NULL;
    size_t len = 0;

    ck_assert_ptr_null(as_json(NULL, 0, NULL, 0));
    add(&m, &len, PROPS_RESPONSE_TOPIC, "t/", NULL, 0);
    /* the mount itself is no topic under it */
    ck_assert_ptr_null(as_json(m, len, "t/", 0));
    add(&m, &len, PROPS_CORRELATION, "x", NULL, 0);
    ck_assert_ptr_null(as_json(m, len, "t/", PROPS_JSON_NO_CORRELATION));
    assert_json(as_json(m, len, "t/", 0), "{\"correlation\":\"eA==\"}");
    free(m);
}
END_TEST

/* A pub's props: accepted ones and the records they give. */
static const struct {
    const char *props;
    bool request;
    const char *json;         /* props_json() of the records; NULL: error */
    const char *rt;           /* the response topic returned */
    const char *msg;          /* part of the error message */
} from_rows[] = {
    {"{}", false, "", NULL, NULL},
    {"{\"user\":[]}", false, "", NULL, NULL},
    {"{\"other\":[1]}", false, "", NULL, NULL},
    {"{\"user\":[[\"k\",\"v\"],[\"k\",\"w\"]],\"content_type\":\"c\","
     "\"correlation\":\"AQID\",\"expiry\":4294967295}", false,
     "{\"user\":[[\"k\",\"v\"],[\"k\",\"w\"]],\"content_type\":\"c\","
     "\"correlation\":\"AQID\",\"expiry\":4294967295}", NULL, NULL},
    {"{\"response_topic\":\"a/b\"}", false, "", "a/b", NULL},
    {"{\"correlation\":\"\"}", false, "{\"correlation\":\"\"}", NULL, NULL},
    {"[]", false, NULL, NULL, "props: expected an object"},
    {"{\"user\":{}}", false, NULL, NULL, "props.user"},
    {"{\"user\":[\"k\"]}", false, NULL, NULL, "props.user"},
    {"{\"user\":[[\"k\"]]}", false, NULL, NULL, "props.user"},
    {"{\"user\":[[\"k\",\"v\",\"w\"]]}", false, NULL, NULL, "props.user"},
    {"{\"user\":[[\"k\",null]]}", false, NULL, NULL, "props.user"},
    {"{\"user\":[[\"k\\n\",\"v\"]]}", false, NULL, NULL, "props.user"},
    {"{\"user\":[[\"k\",\"\\u0000\"]]}", false, NULL, NULL, "props.user"},
    {"{\"user\":[[\"k\",\"\\ufdd0\"]]}", false, NULL, NULL, "props.user"},
    {"{\"content_type\":1}", false, NULL, NULL, "props.content_type"},
    {"{\"content_type\":\"\\u0085\"}", false, NULL, NULL,
     "props.content_type"},
    {"{\"response_topic\":\"a/#\"}", false, NULL, NULL,
     "props.response_topic"},
    {"{\"response_topic\":\"\"}", false, NULL, NULL, "props.response_topic"},
    {"{\"response_topic\":\"a\\tb\"}", false, NULL, NULL,
     "props.response_topic"},
    {"{\"correlation\":\"AQI\"}", false, NULL, NULL, "props.correlation"},
    {"{\"correlation\":true}", false, NULL, NULL, "props.correlation"},
    {"{\"expiry\":0}", false, NULL, NULL, "props.expiry"},
    {"{\"expiry\":4294967296}", false, NULL, NULL, "props.expiry"},
    {"{\"expiry\":2.0}", false, NULL, NULL, "props.expiry"},
    {"{\"expiry\":\"1\"}", false, NULL, NULL, "props.expiry"},
    /* a request's response topic and correlation data are the gateway's */
    {"{\"response_topic\":\"a/b\"}", true, NULL, NULL,
     "props.response_topic"},
    {"{\"correlation\":\"AQID\"}", true, NULL, NULL, "props.correlation"},
    {"{\"content_type\":\"c\",\"expiry\":5}", true,
     "{\"content_type\":\"c\",\"expiry\":5}", NULL, NULL},
};

START_TEST(test_from_json)
{
    json_t *v = json_loads(from_rows[_i].props, JSON_ALLOW_NUL, NULL);
    uint8_t *m = (uint8_t *)"junk";
    size_t len = 99, rt_len = 99;
    const char *rt = "junk";
    char msg[256] = "";
    int rc;

    ck_assert_ptr_nonnull(v);
    rc = props_from_json(v, from_rows[_i].request, &m, &len, &rt, &rt_len,
                         msg, sizeof(msg));
    if (!from_rows[_i].json) {
        ck_assert_int_eq(rc, -1);
        ck_assert_ptr_null(m);
        ck_assert_uint_eq(len, 0);
        ck_assert_msg(strstr(msg, from_rows[_i].msg), "row %d: message %s",
                      _i, msg);
    } else {
        ck_assert_msg(rc == 0, "row %d refused: %s", _i, msg);
        if (!*from_rows[_i].json) {
            ck_assert_ptr_null(m);
            ck_assert_uint_eq(len, 0);
        } else {
            assert_json(as_json(m, len, NULL, 0), from_rows[_i].json);
        }
        if (from_rows[_i].rt) {
            ck_assert_uint_eq(rt_len, strlen(from_rows[_i].rt));
            ck_assert_mem_eq(rt, from_rows[_i].rt, rt_len);
        } else {
            ck_assert_ptr_null(rt);
        }
    }
    free(m);
    json_decref(v);
}
END_TEST

START_TEST(test_from_json_long)
{
    char *big = malloc(65536 + 1);
    json_t *v;
    uint8_t *m;
    size_t len, rt_len;
    const char *rt;
    char msg[256];

    memset(big, 'x', 65536);
    big[65536] = '\0';
    v = json_pack("{s:[[s,s%]]}", "user", "k", big, (size_t)65535);
    ck_assert_int_eq(props_from_json(v, false, &m, &len, &rt, &rt_len, msg,
                                     sizeof(msg)), 0);
    ck_assert_uint_eq(len, 1 + 2 + 1 + 2 + 65535);
    free(m);
    json_decref(v);
    v = json_pack("{s:[[s,s%]]}", "user", "k", big, (size_t)65536);
    ck_assert_int_eq(props_from_json(v, false, &m, &len, &rt, &rt_len, msg,
                                     sizeof(msg)), -1);
    json_decref(v);
    free(big);
}
END_TEST

static const struct {
    const char *s;
    bool ok;
} mqtt_rows[] = {
    {"", true}, {"plain", true}, {"caf\xc3\xa9", true},
    {"\xf0\x9f\x98\x80", true}, {"\xef\xbf\xbd", true},
    {"a\x01", false}, {"\x1f", false}, {"\x7f", false},
    {"\xc2\x80", false}, {"\xc2\x9f", false}, {"\xc2\xa0", true},
    {"\xef\xb7\x90", false}, {"\xef\xb7\xaf", false}, {"\xef\xb7\xb0", true},
    {"\xef\xbf\xbe", false}, {"\xef\xbf\xbf", false},
    {"\xf0\x9f\xbf\xbe", false}, {"\xf4\x8f\xbf\xbf", false},
    {"\xc3", false}, {"\xed\xa0\x80", false},
};

START_TEST(test_utf8_mqtt)
{
    const char *s = mqtt_rows[_i].s;

    ck_assert_msg(utf8_mqtt_valid(s, strlen(s)) == mqtt_rows[_i].ok,
                  "row %d", _i);
    ck_assert(!utf8_mqtt_valid("a\0b", 3));
    ck_assert(utf8_mqtt_valid(NULL, 0));
}
END_TEST

static Suite *props_suite(void)
{
    Suite *s = suite_create("props");
    TCase *tc = tcase_create("records");

    tcase_add_test(tc, test_records_roundtrip);
    tcase_add_test(tc, test_records_truncated);
    suite_add_tcase(s, tc);
    tc = tcase_create("json");
    tcase_add_test(tc, test_json_members);
    tcase_add_test(tc, test_json_nothing_left);
    suite_add_tcase(s, tc);
    tc = tcase_create("from_json");
    tcase_add_loop_test(tc, test_from_json, 0,
                        (int)(sizeof from_rows / sizeof from_rows[0]));
    tcase_add_test(tc, test_from_json_long);
    suite_add_tcase(s, tc);
    tc = tcase_create("utf8_mqtt");
    tcase_add_loop_test(tc, test_utf8_mqtt, 0,
                        (int)(sizeof mqtt_rows / sizeof mqtt_rows[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(props_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
