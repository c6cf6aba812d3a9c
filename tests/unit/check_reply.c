/* jbuf and the reply frames: exact bytes whatever the sizes, escaping of
 * every string, UTF-8 cut of messages, allow lists. Every frame built here
 * is also parsed back with jansson. */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jbuf.h"
#include "reply.h"
#include "utf8.h"

/* The text b holds, NUL-terminated, as a fresh string. */
static char *text_of(const struct jbuf *b)
{
    char *s;

    ck_assert(!b->failed);
    s = malloc(b->len + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, b->p, b->len);
    s[b->len] = '\0';
    return s;
}

static json_t *parse(const struct jbuf *b)
{
    json_error_t e;
    json_t *j = json_loadb(b->p, b->len, JSON_REJECT_DUPLICATES, &e);

    if (!j)
        ck_abort_msg("not JSON (%s): %.*s", e.text, (int)b->len, b->p);
    return j;
}

/* --- jbuf ---------------------------------------------------------------- */

static const struct {
    const char *in;
    size_t len;
    const char *out;
} str_rows[] = {
    { "", 0, "\"\"" },
    { "abc", 3, "\"abc\"" },
    { "a\"b\\c", 5, "\"a\\\"b\\\\c\"" },
    { "\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"" },
    { "\x01\x1f", 2, "\"\\u0001\\u001f\"" },
    { "nul\0x", 5, "\"nul\\u0000x\"" },
    { "\xc3\xa9\xe2\x82\xac", 5, "\"\xc3\xa9\xe2\x82\xac\"" },
    { "\x7f", 1, "\"\x7f\"" },
};

START_TEST(test_jbuf_str)
{
    struct jbuf b;
    char *s;

    jbuf_init(&b);
    jbuf_str(&b, str_rows[_i].in, str_rows[_i].len);
    s = text_of(&b);
    ck_assert_str_eq(s, str_rows[_i].out);
    free(s);
    jbuf_free(&b);
}
END_TEST

/* Growing past the inline buffer in steps of every size keeps every byte. */
START_TEST(test_jbuf_grows)
{
    struct jbuf b;
    size_t total = 0;

    jbuf_init(&b);
    for (size_t step = 1; step < 3000; step += 7) {
        char chunk[3000];

        memset(chunk, 'a' + (int)(step % 26), step);
        jbuf_raw(&b, chunk, step);
        total += step;
        ck_assert_uint_eq(b.len, total);
    }
    for (size_t i = 0, off = 0, step = 1; step < 3000; off += step, step += 7)
        for (i = 0; i < step; i++)
            ck_assert_int_eq(b.p[off + i], 'a' + (int)(step % 26));
    jbuf_free(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_ptr_eq(b.p, b.inline_);
}
END_TEST

START_TEST(test_jbuf_int)
{
    static const struct {
        int64_t v;
        const char *s;
    } rows[] = {
        { 0, "0" }, { -1, "-1" }, { 9007199254740991LL, "9007199254740991" },
        { INT64_MIN, "-9223372036854775808" },
        { INT64_MAX, "9223372036854775807" },
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct jbuf b;
        char *s;

        jbuf_init(&b);
        jbuf_int(&b, rows[i].v);
        s = text_of(&b);
        ck_assert_str_eq(s, rows[i].s);
        free(s);
        jbuf_free(&b);
    }
}
END_TEST

/* --- replies ------------------------------------------------------------ */

START_TEST(test_reply_ok_and_id)
{
    static const struct {
        const char *id, *out;
    } rows[] = {
        { "", "{\"op\":\"ok\"}" },
        { "7", "{\"op\":\"ok\",\"id\":7}" },
        { "\"a\\\"b\"", "{\"op\":\"ok\",\"id\":\"a\\\"b\"}" },
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct jbuf b;
        char *s;

        jbuf_init(&b);
        reply_begin(&b, "ok", rows[i].id, strlen(rows[i].id));
        reply_end(&b);
        s = text_of(&b);
        ck_assert_str_eq(s, rows[i].out);
        free(s);
        jbuf_free(&b);
    }
}
END_TEST

/* The longest id the protocol allows (64 bytes, each escaped to 6) with
 * every message length up to past the cap, cut anywhere in a character. */
START_TEST(test_reply_error_sizes)
{
    char id[64 * 6 + 3], msg[600];
    size_t o = 0;

    id[o++] = '"';
    for (int i = 0; i < 64; i++)
        o += (size_t)sprintf(id + o, "\\u%04x", 1 + i % 31);
    id[o++] = '"';
    for (size_t i = 0; i + 1 < sizeof(msg); i += 2)
        memcpy(msg + i, "\xc3\xa9", 2); /* é: every odd cut splits one */
    for (size_t len = 0; len < sizeof(msg); len++) {
        struct jbuf b;
        json_t *j;
        const char *m;

        jbuf_init(&b);
        reply_error(&b, id, o, "forbidden", msg, len);
        j = parse(&b);
        ck_assert_str_eq(json_string_value(json_object_get(j, "op")), "error");
        ck_assert_str_eq(json_string_value(json_object_get(j, "code")),
                         "forbidden");
        ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "id"))),
                          64);
        m = json_string_value(json_object_get(j, "message"));
        ck_assert_uint_le(strlen(m), REPLY_MESSAGE_MAX);
        ck_assert_uint_eq(strlen(m), (len > REPLY_MESSAGE_MAX ? REPLY_MESSAGE_MAX
                                                              : len) &
                                         ~(size_t)1);
        ck_assert(utf8_valid(m, strlen(m)));
        json_decref(j);
        jbuf_free(&b);
    }
}
END_TEST

static struct cfg_role mkrole(char *name, char **sub, size_t nsub, char **pub,
                              size_t npub)
{
    struct cfg_role r = { name, sub, nsub, pub, npub, 2, NULL };

    return r;
}

/* Role names and users that need escaping, and an identity far larger than
 * any fixed buffer. */
START_TEST(test_reply_identity_escaped_and_large)
{
    static char names[80][80];
    struct cfg_role roles[80];
    const struct cfg_role *rp[80];
    char user[257];
    struct jbuf b;
    json_t *j, *a;

    for (int i = 0; i < 80; i++) {
        snprintf(names[i], sizeof(names[i]), "r\"%d\\%.64s", i,
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        roles[i] = mkrole(names[i], NULL, 0, NULL, 0);
        rp[i] = &roles[i];
    }
    for (int i = 0; i < 256; i++)
        user[i] = (char)(i % 3 == 0 ? 1 : i % 3 == 1 ? '"' : '\\');
    user[256] = '\0';
    jbuf_init(&b);
    reply_begin(&b, "ok", "1", 1);
    reply_identity(&b, user, rp, 80);
    reply_end(&b);
    ck_assert_uint_gt(b.len, 6000);
    j = parse(&b);
    ck_assert_str_eq(json_string_value(json_object_get(j, "user")), user);
    a = json_object_get(j, "roles");
    ck_assert_uint_eq(json_array_size(a), 80);
    for (int i = 0; i < 80; i++)
        ck_assert_str_eq(json_string_value(json_array_get(a, (size_t)i)),
                         names[i]);
    json_decref(j);
    jbuf_free(&b);
}
END_TEST

/* allow: %u expanded, duplicates left out across roles, unusable patterns
 * left out, publish and subscribe apart. */
START_TEST(test_reply_allow)
{
    static char *s1[] = { "sensor/#", "users/%u/#", "%u/x" };
    static char *p1[] = { "users/%u/cmd" };
    static char *s2[] = { "sensor/#", "device/+/status" };
    static char *p2[] = { "users/%u/cmd", "device/+/cmd" };
    static const struct {
        const char *user, *out;
    } rows[] = {
        { "alice",
          ",\"allow\":{\"subscribe\":[\"sensor/#\",\"users/alice/#\","
          "\"alice/x\",\"device/+/status\"],\"publish\":[\"users/alice/cmd\","
          "\"device/+/cmd\"]}" },
        /* a user name that cannot fill %u: only the plain patterns */
        { "a/b",
          ",\"allow\":{\"subscribe\":[\"sensor/#\",\"device/+/status\"],"
          "\"publish\":[\"device/+/cmd\"]}" },
        /* nor one that would make a pattern start with '$' */
        { "$SYS",
          ",\"allow\":{\"subscribe\":[\"sensor/#\",\"users/$SYS/#\","
          "\"device/+/status\"],\"publish\":[\"users/$SYS/cmd\","
          "\"device/+/cmd\"]}" },
        { "q\"u",
          ",\"allow\":{\"subscribe\":[\"sensor/#\",\"users/q\\\"u/#\","
          "\"q\\\"u/x\",\"device/+/status\"],\"publish\":[\"users/q\\\"u/cmd\","
          "\"device/+/cmd\"]}" },
    };
    struct cfg_role r1 = mkrole("a", s1, 3, p1, 1);
    struct cfg_role r2 = mkrole("b", s2, 2, p2, 2);
    const struct cfg_role *rp[] = { &r1, &r2 };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct jbuf b;
        char *s;

        jbuf_init(&b);
        reply_allow(&b, rp, 2, rows[i].user);
        s = text_of(&b);
        ck_assert_str_eq(s, rows[i].out);
        free(s);
        jbuf_free(&b);
    }
    {
        struct jbuf b;
        char *s;

        jbuf_init(&b);
        reply_allow(&b, rp, 0, "x");
        s = text_of(&b);
        ck_assert_str_eq(s, ",\"allow\":{\"subscribe\":[],\"publish\":[]}");
        free(s);
        jbuf_free(&b);
    }
}
END_TEST

static Suite *reply_suite(void)
{
    Suite *s = suite_create("reply");
    TCase *tc;

    tc = tcase_create("jbuf");
    tcase_add_loop_test(tc, test_jbuf_str, 0,
                        (int)(sizeof str_rows / sizeof str_rows[0]));
    tcase_add_test(tc, test_jbuf_grows);
    tcase_add_test(tc, test_jbuf_int);
    suite_add_tcase(s, tc);

    tc = tcase_create("reply");
    tcase_add_test(tc, test_reply_ok_and_id);
    tcase_add_test(tc, test_reply_error_sizes);
    tcase_add_test(tc, test_reply_identity_escaped_and_large);
    tcase_add_test(tc, test_reply_allow);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(reply_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
