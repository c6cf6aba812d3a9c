/* Origin checks and the per-address session count. */
#include <check.h>
#include <stdint.h>
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

/* The hash is SipHash-2-4 under the table's seed: the reference vector
 * for the empty message under key 00..0f, a stable value per address in
 * one table, other values under another seed or another random table. */
START_TEST(test_ipcount_keyed)
{
    static const unsigned char k0[IPCOUNT_SEED_BYTES] = {
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    };
    static const unsigned char k1[IPCOUNT_SEED_BYTES] = { 1 };
    struct ipcount *a = ipcount_new_keyed(k0), *a2 = ipcount_new_keyed(k0);
    struct ipcount *b = ipcount_new_keyed(k1);
    struct ipcount *r1 = ipcount_new(), *r2 = ipcount_new();
    char addr[64];
    int differ_ab = 0, differ_r = 0;

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(a2);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(r1);
    ck_assert_ptr_nonnull(r2);
    ck_assert_uint_eq(ipcount_hash(a, ""), 0x726fdb47dd0e0e31ULL);
    for (int i = 0; i < 64; i++) {
        snprintf(addr, sizeof(addr), "2001:db8::%x", i);
        uint64_t h = ipcount_hash(a, addr);

        /* the same slot for the same address, also after the table
         * changed (grown, entries added and removed) */
        ck_assert_uint_eq(ipcount_inc(a, addr), 1);
        ck_assert_uint_eq(ipcount_hash(a, addr), h);
        ck_assert_uint_eq(ipcount_hash(a2, addr), h);
        differ_ab += ipcount_hash(b, addr) != h;
        differ_r += ipcount_hash(r1, addr) != ipcount_hash(r2, addr);
    }
    for (int i = 0; i < 2000; i++) {
        snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 256, i % 256);
        ck_assert_uint_eq(ipcount_inc(a, addr), 1);
    }
    for (int i = 0; i < 64; i++) {
        snprintf(addr, sizeof(addr), "2001:db8::%x", i);
        ck_assert_uint_eq(ipcount_hash(a, addr), ipcount_hash(a2, addr));
        ck_assert_uint_eq(ipcount_get(a, addr), 1);
    }
    ck_assert_int_eq(differ_ab, 64);
    ck_assert_int_eq(differ_r, 64);
    ipcount_free(a);
    ipcount_free(a2);
    ipcount_free(b);
    ipcount_free(r1);
    ipcount_free(r2);
    ipcount_free(NULL);
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
    tcase_add_test(tc, test_ipcount_keyed);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
