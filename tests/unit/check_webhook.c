/* Unit tests for common/webhook.c: the JSON the gateway POSTs to the
 * authentication webhook, byte for byte, and the answers it takes or
 * refuses. Table driven. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "webhook.h"

#define NOW 1700000000

START_TEST(test_requests)
{
    struct jbuf b;

    jbuf_init(&b);
    webhook_request_password(&b, "alice", "pa\"ss\\", "123456", "10.0.0.1",
                             "https://dash.example.com");
    ck_assert(!b.failed);
    ck_assert_str_eq(
        (jbuf_raw(&b, "", 1), b.p),
        "{\"method\":\"password\",\"user\":\"alice\",\"password\":\"pa\\\"ss"
        "\\\\\",\"otp\":\"123456\",\"address\":\"10.0.0.1\",\"origin\":"
        "\"https://dash.example.com\"}");
    jbuf_free(&b);

    /* otp and origin left out when absent; an origin that is not UTF-8
     * too */
    jbuf_init(&b);
    webhook_request_password(&b, "bob", "x", NULL, "::1", "http://\xff");
    jbuf_raw(&b, "", 1);
    ck_assert_str_eq(b.p, "{\"method\":\"password\",\"user\":\"bob\","
                          "\"password\":\"x\",\"address\":\"::1\"}");
    jbuf_free(&b);

    jbuf_init(&b);
    webhook_request_token(&b, "opaque\u00e9", "127.0.0.1", NULL);
    jbuf_raw(&b, "", 1);
    ck_assert_str_eq(b.p, "{\"method\":\"token\",\"token\":\"opaque\u00e9\","
                          "\"address\":\"127.0.0.1\"}");
    jbuf_free(&b);
}
END_TEST

static const struct {
    const char *body;
    const char *user;             /* NULL: refused */
    const char *roles;            /* comma-separated */
    long long exp;                /* 0: none */
    const char *why;
} answer_rows[] = {
    {"{\"user\":\"alice\",\"roles\":[\"operator\",\"viewer\"]}", "alice",
     "operator,viewer", 0, NULL},
    {"{\"user\":\"alice\",\"roles\":[],\"expires_at\":1700000600}", "alice",
     "", 1700000600, NULL},
    {"{\"user\":\"a\",\"roles\":[\"x\\u0000y\",\"v\"],\"extra\":{}}", "a",
     "v", 0, NULL},
    /* refused */
    {"", NULL, NULL, 0, "not a JSON object"},
    {"[]", NULL, NULL, 0, "not a JSON object"},
    {"{\"user\":\"a\",\"roles\":[]", NULL, NULL, 0, "not a JSON object"},
    {"{\"user\":\"a\",\"user\":\"b\",\"roles\":[]}", NULL, NULL, 0,
     "not a JSON object"},
    {"{\"roles\":[]}", NULL, NULL, 0, "no user"},
    {"{\"user\":\"\",\"roles\":[]}", NULL, NULL, 0, "no user"},
    {"{\"user\":5,\"roles\":[]}", NULL, NULL, 0, "no user"},
    {"{\"user\":\"a\\u0000b\",\"roles\":[]}", NULL, NULL, 0, "U+0000"},
    {"{\"user\":\"a\"}", NULL, NULL, 0, "no roles"},
    {"{\"user\":\"a\",\"roles\":\"viewer\"}", NULL, NULL, 0, "no roles"},
    {"{\"user\":\"a\",\"roles\":[\"v\",1]}", NULL, NULL, 0, "not all strings"},
    {"{\"user\":\"a\",\"roles\":[],\"expires_at\":\"soon\"}", NULL, NULL, 0,
     "integer"},
    {"{\"user\":\"a\",\"roles\":[],\"expires_at\":1.5e9}", NULL, NULL, 0,
     "integer"},
    {"{\"user\":\"a\",\"roles\":[],\"expires_at\":1700000000}", NULL, NULL, 0,
     "past"},
};

START_TEST(test_answers)
{
    struct webhook_answer a;
    const char *why = NULL;
    char roles[256] = "";
    int rc = webhook_answer_parse(answer_rows[_i].body,
                                  strlen(answer_rows[_i].body), NOW, &a, &why);

    if (!answer_rows[_i].user) {
        ck_assert_msg(rc < 0, "row %d accepted", _i);
        ck_assert_msg(strstr(why, answer_rows[_i].why), "row %d: %s", _i, why);
        ck_assert_ptr_null(a.user);
        return;
    }
    ck_assert_msg(rc == 0, "row %d: %s", _i, why);
    ck_assert_str_eq(a.user, answer_rows[_i].user);
    for (size_t i = 0; i < a.n_roles; i++) {
        strcat(roles, i ? "," : "");
        strcat(roles, a.roles[i]);
    }
    ck_assert_str_eq(roles, answer_rows[_i].roles);
    ck_assert_int_eq(a.has_expiry, answer_rows[_i].exp != 0);
    if (a.has_expiry)
        ck_assert_int_eq(a.expires_at, answer_rows[_i].exp);
    webhook_answer_clear(&a);
}
END_TEST

START_TEST(test_answer_bounds)
{
    char body[8192];
    struct webhook_answer a;
    const char *why;
    size_t o;

    /* a user of 256 bytes is taken, of 257 not */
    memset(body, 0, sizeof(body));
    strcpy(body, "{\"roles\":[],\"user\":\"");
    o = strlen(body);
    memset(body + o, 'u', 256);
    strcpy(body + o + 256, "\"}");
    ck_assert_int_eq(webhook_answer_parse(body, strlen(body), NOW, &a, &why),
                     0);
    webhook_answer_clear(&a);
    memmove(body + o + 1, body + o, strlen(body + o) + 1);
    ck_assert_int_lt(webhook_answer_parse(body, strlen(body), NOW, &a, &why),
                     0);

    /* 256 roles are taken, 257 not */
    strcpy(body, "{\"user\":\"a\",\"roles\":[");
    for (int i = 0; i < 257; i++)
        strcat(body, i ? ",\"r\"" : "\"r\"");
    strcat(body, "]}");
    ck_assert_int_lt(webhook_answer_parse(body, strlen(body), NOW, &a, &why),
                     0);
    memmove(strstr(body, ",\"r\"]"), "]}", 3);
    ck_assert_int_eq(webhook_answer_parse(body, strlen(body), NOW, &a, &why),
                     0);
    ck_assert_uint_eq(a.n_roles, 256);
    webhook_answer_clear(&a);
}
END_TEST

static Suite *webhook_suite(void)
{
    Suite *s = suite_create("webhook");
    TCase *tc = tcase_create("webhook");

    tcase_add_test(tc, test_requests);
    tcase_add_loop_test(tc, test_answers, 0,
                        (int)(sizeof answer_rows / sizeof answer_rows[0]));
    tcase_add_test(tc, test_answer_bounds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(webhook_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
