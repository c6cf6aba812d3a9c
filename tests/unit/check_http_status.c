/* The HTTP status of each protocol error code and the reason phrases. */
#include <check.h>
#include <string.h>

#include "http_status.h"
#include "request.h"

/* protocol.md, "Error codes" and "HTTP API" */
static const struct {
    const char *code;
    unsigned status;
} codes[] = {
    {"ok", 200},
    {"bad_json", 400},
    {"bad_request", 400},
    {"unknown_op", 400},
    {"bad_topic", 400},
    {"limit_exceeded", 400},
    {"unauthenticated", 401},
    {"auth_failed", 401},
    {"token_expired", 401},
    {"forbidden", 403},
    {"rate_limited", 429},
    {"broker_rejected", 502},
    {"broker_unavailable", 503},
    {"internal", 500},
    /* not a code: internal */
    {"", 500},
    {"OK", 500},
    {"Forbidden", 500},
    {"bad", 500},
    {"bad_json ", 500},
    {" bad_json", 500},
    {"forbidden2", 500},
    {"rate", 500},
    {"unknown", 500},
};

START_TEST(test_http_status_of)
{
    ck_assert_msg(http_status_of(codes[_i].code) == codes[_i].status,
                  "\"%s\": got %u", codes[_i].code,
                  http_status_of(codes[_i].code));
    /* every status a code maps to has its own phrase */
    ck_assert_str_ne(http_status_text(codes[_i].status), "Error");
}
END_TEST

/* What request_decode() answers maps as its code says. */
START_TEST(test_http_status_req_err)
{
    static const enum req_err errs[] = {RQ_OK, RQ_BAD_JSON, RQ_BAD_REQUEST,
                                        RQ_UNKNOWN_OP, RQ_BAD_TOPIC};

    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        ck_assert_uint_eq(http_status_of(request_err_code(errs[i])),
                          errs[i] == RQ_OK ? 200 : 400);
}
END_TEST

static const struct {
    unsigned status;
    const char *text;
} texts[] = {
    {200, "OK"},
    {204, "No Content"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {411, "Length Required"},
    {413, "Payload Too Large"},
    {415, "Unsupported Media Type"},
    {429, "Too Many Requests"},
    {500, "Internal Server Error"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    /* not listed */
    {0, "Error"},
    {100, "Error"},
    {201, "Error"},
    {418, "Error"},
    {504, "Error"},
    {999, "Error"},
    {4294967295u, "Error"},
};

START_TEST(test_http_status_text)
{
    ck_assert_str_eq(http_status_text(texts[_i].status), texts[_i].text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_status");
    TCase *tc = tcase_create("http_status");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, test_http_status_of, 0,
                        sizeof(codes) / sizeof(codes[0]));
    tcase_add_test(tc, test_http_status_req_err);
    tcase_add_loop_test(tc, test_http_status_text, 0,
                        sizeof(texts) / sizeof(texts[0]));
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
