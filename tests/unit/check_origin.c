/* Origin checks and the per-address session count. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "ipcount.h"
#include "origin.h"

static char *list_a[] = {"https://dash.example.com", "http://127.0.0.1:8080"};
static char *list_star[] = {"*"};

static const struct {
    const char *origin, *host;
    bool tls;
    char **list;
    size_t n;
    bool set;
    bool want;
} rows[] = {
    /* exact list */
    {"https://dash.example.com", "gw:8443", true, list_a, 2, true, true},
    {"https://dash.example.com:443", "gw", true, list_a, 2, true, true},
    {"https://DASH.example.com", "gw", true, list_a, 2, true, true},
    {"http://dash.example.com", "gw", true, list_a, 2, true, false},
    {"https://dash.example.com:8443", "gw", true, list_a, 2, true, false},
    {"https://evil.example.com", "gw", true, list_a, 2, true, false},
    {"https://dash.example.com.evil.com", "gw", true, list_a, 2, true, false},
    {"https://dash.example.com/path", "gw", true, list_a, 2, true, false},
    {"http://127.0.0.1:8080", "gw", false, list_a, 2, true, true},
    {"http://127.0.0.1", "gw", false, list_a, 2, true, false},
    {"null", "gw", false, list_a, 2, true, false},
    {"", "gw", false, list_a, 2, true, false},
    /* "*" */
    {"https://anything.example", "gw", false, list_star, 1, true, true},
    {"null", "gw", false, list_star, 1, true, true},
    /* empty list: nothing */
    {"http://127.0.0.1:8080", "127.0.0.1:8080", false, NULL, 0, true, false},
    /* same origin */
    {"http://127.0.0.1:8080", "127.0.0.1:8080", false, NULL, 0, false, true},
    {"http://localhost:8080", "127.0.0.1:8080", false, NULL, 0, false, false},
    {"http://127.0.0.1:8081", "127.0.0.1:8080", false, NULL, 0, false, false},
    {"http://gw.example", "gw.example", false, NULL, 0, false, true},
    {"http://gw.example:80", "gw.example", false, NULL, 0, false, true},
    {"https://gw.example", "gw.example", true, NULL, 0, false, true},
    {"https://gw.example", "gw.example:443", true, NULL, 0, false, true},
    {"http://gw.example", "gw.example", true, NULL, 0, false, false},
    {"http://[::1]:8080", "[::1]:8080", false, NULL, 0, false, true},
    {"http://[::1]:8080", "[::1]:8081", false, NULL, 0, false, false},
    {"null", "gw.example", false, NULL, 0, false, false},
    {"http://gw.example", NULL, false, NULL, 0, false, false},
    {"http://gw.example:99999", "gw.example:99999", false, NULL, 0, false,
     false},
    {"ftp://gw.example", "gw.example", false, NULL, 0, false, false},
};

START_TEST(test_origin)
{
    ck_assert_msg(origin_allowed(rows[_i].origin, rows[_i].host, rows[_i].tls,
                                 rows[_i].list, rows[_i].n,
                                 rows[_i].set) == rows[_i].want,
                  "row %d: %s vs %s", _i, rows[_i].origin,
                  rows[_i].host ? rows[_i].host : "(none)");
}
END_TEST

START_TEST(test_ipcount)
{
    struct ipcount *t = ipcount_new();
    char addr[32];

    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(ipcount_get(t, "10.0.0.1"), 0);
    ck_assert_uint_eq(ipcount_inc(t, "10.0.0.1"), 1);
    ck_assert_uint_eq(ipcount_inc(t, "10.0.0.1"), 2);
    ck_assert_uint_eq(ipcount_inc(t, "::1"), 1);
    /* enough addresses to grow the table several times */
    for (int i = 0; i < 5000; i++) {
        snprintf(addr, sizeof(addr), "192.168.%d.%d", i / 256, i % 256);
        ck_assert_uint_eq(ipcount_inc(t, addr), 1);
    }
    for (int i = 0; i < 5000; i += 2) {
        snprintf(addr, sizeof(addr), "192.168.%d.%d", i / 256, i % 256);
        ipcount_dec(t, addr);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(addr, sizeof(addr), "192.168.%d.%d", i / 256, i % 256);
        ck_assert_uint_eq(ipcount_get(t, addr), (uint32_t)(i % 2));
    }
    ck_assert_uint_eq(ipcount_get(t, "10.0.0.1"), 2);
    ipcount_dec(t, "10.0.0.1");
    ipcount_dec(t, "10.0.0.1");
    ipcount_dec(t, "10.0.0.1"); /* one too many: harmless */
    ck_assert_uint_eq(ipcount_get(t, "10.0.0.1"), 0);
    ck_assert_uint_eq(ipcount_get(t, "::1"), 1);
    ipcount_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("origin");
    TCase *tc = tcase_create("origin");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, test_origin, 0, sizeof(rows) / sizeof(rows[0]));
    tcase_add_test(tc, test_ipcount);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
