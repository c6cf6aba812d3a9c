/* Token buckets by name: a new key gets a full bucket, a known key its own
 * bucket back, keys are bytes with a length, and buckets that have refilled
 * are dropped when the table would grow while the others keep their
 * tokens. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "keyhash.h"
#include "ratetab.h"

static const unsigned char seed[KEYHASH_SEED_BYTES] = {7, 7, 7};

START_TEST(test_ratetab_same_key)
{
    struct ratetab *t = ratetab_new(seed);
    struct tbucket *b;
    char key[16];

    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(ratetab_size(t), 0);
    b = ratetab_get(t, "alice", 5, 1, 3, 1000);
    ck_assert_ptr_nonnull(b);
    ck_assert_double_eq(b->tokens, 3.0);
    ck_assert_uint_eq(b->last_ms, 1000);
    ck_assert_uint_eq(ratetab_size(t), 1);
    for (int i = 0; i < 3; i++)
        ck_assert(tbucket_take(b, 1, 3, 1000));
    ck_assert(!tbucket_take(b, 1, 3, 1000));
    /* the same bucket on the next request, from another copy of the key;
     * a get neither refills nor resets it */
    memcpy(key, "alice", 5);
    b = ratetab_get(t, key, 5, 1, 3, 1500);
    ck_assert_ptr_nonnull(b);
    ck_assert_double_eq(b->tokens, 0.0);
    ck_assert_uint_eq(b->last_ms, 1000);
    ck_assert_uint_eq(ratetab_size(t), 1);
    ck_assert(!tbucket_take(b, 1, 3, 1500));
    ck_assert(tbucket_take(b, 1, 3, 2000));
    /* another key: a full bucket of its own */
    b = ratetab_get(t, "bob", 3, 1, 3, 2000);
    ck_assert_double_eq(b->tokens, 3.0);
    ck_assert_uint_eq(ratetab_size(t), 2);
    b = ratetab_get(t, "alice", 5, 1, 3, 2000);
    ck_assert_double_eq(b->tokens, 0.0);
    ck_assert_uint_eq(b->last_ms, 2000);
    ratetab_free(t);
    ratetab_free(NULL);
}
END_TEST

/* Keys that differ only in their length, or in bytes after a NUL or after
 * a common prefix, are distinct. */
static const struct {
    const char *key;
    size_t len;
} keys[] = {
    {"", 0},
    {"\0", 1},
    {"\0\0", 2},
    {"ab", 2},
    {"abc", 3},
    {"abd", 3},
    {"ab\0", 3},
    {"ab\0\0", 4},
    {"a\0b", 3},
    {"a\0c", 3},
    {"a\0bc", 4},
    {"192.0.2.1", 9},
    {"192.0.2.10", 10},
    {"192.0.2.1\0" "0", 11},
};

START_TEST(test_ratetab_distinct)
{
    const size_t n = sizeof(keys) / sizeof(keys[0]);
    struct ratetab *t = ratetab_new(seed);
    char buf[16];

    ck_assert_ptr_nonnull(t);
    /* key i: i + 1 tokens taken of 20, from a buffer overwritten after */
    for (size_t i = 0; i < n; i++) {
        struct tbucket *b;

        memcpy(buf, keys[i].key, keys[i].len);
        b = ratetab_get(t, buf, keys[i].len, 1, 20, 0);
        ck_assert_ptr_nonnull(b);
        ck_assert_msg(b->tokens == 20.0, "key %zu is not new", i);
        for (size_t k = 0; k <= i; k++)
            ck_assert(tbucket_take(b, 1, 20, 0));
        memset(buf, 'z', sizeof(buf));
    }
    ck_assert_uint_eq(ratetab_size(t), n);
    for (size_t i = 0; i < n; i++) {
        struct tbucket *b = ratetab_get(t, keys[i].key, keys[i].len, 1, 20, 0);

        ck_assert_msg(b->tokens == 20.0 - (double)(i + 1), "key %zu: %g", i,
                      b->tokens);
    }
    ck_assert_uint_eq(ratetab_size(t), n);
    ratetab_free(t);
}
END_TEST

static struct tbucket *get(struct ratetab *t, const char *group, int i,
                           uint64_t now)
{
    char key[32];
    int n = snprintf(key, sizeof(key), "%s-%d", group, i);

    return ratetab_get(t, key, (size_t)n, 1, 5, now);
}

/* The table starts with 64 slots and grows past half full: the 33rd key
 * makes it drop the buckets that have refilled by then. */
START_TEST(test_ratetab_evict)
{
    struct ratetab *t = ratetab_new(seed);
    struct tbucket *b;

    ck_assert_ptr_nonnull(t);
    /* at 0 ms: "light" keys spend 1 token of 5, "heavy" keys all 5 */
    for (int i = 0; i < 16; i++) {
        ck_assert(tbucket_take(get(t, "light", i, 0), 1, 5, 0));
        b = get(t, "heavy", i, 0);
        for (int k = 0; k < 5; k++)
            ck_assert(tbucket_take(b, 1, 5, 0));
    }
    ck_assert_uint_eq(ratetab_size(t), 32);
    /* at 1500 ms, at 1 token/s, the light ones are full again (4 + 1.5),
     * the heavy ones are not (0 + 1.5): only the light ones go */
    b = ratetab_get(t, "new", 3, 1, 5, 1500);
    ck_assert_double_eq(b->tokens, 5.0);
    ck_assert_uint_eq(ratetab_size(t), 17);
    for (int i = 0; i < 16; i++) {
        b = get(t, "heavy", i, 1500);
        ck_assert_double_eq(b->tokens, 0.0);   /* not refilled by the drop */
        ck_assert_uint_eq(b->last_ms, 0);
        ck_assert(tbucket_take(b, 1, 5, 1500));   /* 1.5 tokens by now */
        ck_assert(!tbucket_take(b, 1, 5, 1500));
    }
    ck_assert_uint_eq(ratetab_size(t), 17);
    /* a dropped key comes back as a new, full bucket */
    for (int i = 0; i < 15; i++) {
        b = get(t, "light", i, 1500);
        ck_assert_double_eq(b->tokens, 5.0);
        ck_assert_uint_eq(b->last_ms, 1500);
    }
    ck_assert_uint_eq(ratetab_size(t), 32);
    /* the next one drops every full bucket again ("new", the light ones),
     * keeping the heavy ones with what they have (0.5 tokens) */
    get(t, "light", 15, 1500);
    ck_assert_uint_eq(ratetab_size(t), 17);
    for (int i = 0; i < 16; i++) {
        b = get(t, "heavy", i, 1500);
        ck_assert_double_eq_tol(b->tokens, 0.5, 1e-9);
        ck_assert_uint_eq(b->last_ms, 1500);
    }
    ck_assert_uint_eq(ratetab_size(t), 17);
    ratetab_free(t);
}
END_TEST

START_TEST(test_ratetab_thousands)
{
    struct ratetab *t = ratetab_new(NULL);
    struct tbucket *b;
    char key[32];

    ck_assert_ptr_nonnull(t);
    /* without a refill nothing is full again: the table grows to hold
     * them all, each with its own tokens */
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof(key), "user-%d", i);

        b = ratetab_get(t, key, (size_t)n, 0, 10, 0);
        ck_assert_ptr_nonnull(b);
        ck_assert_double_eq(b->tokens, 10.0);
        for (int k = 0; k <= i % 9; k++)
            ck_assert(tbucket_take(b, 0, 10, 0));
    }
    ck_assert_uint_eq(ratetab_size(t), 5000);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof(key), "user-%d", i);

        b = ratetab_get(t, key, (size_t)n, 0, 10, 0);
        ck_assert_double_eq(b->tokens, (double)(10 - 1 - i % 9));
    }
    ck_assert_uint_eq(ratetab_size(t), 5000);
    ratetab_free(t);

    /* keys that are never charged stay full: the table holds no more of
     * them than fit before it would grow */
    t = ratetab_new(seed);
    ck_assert_ptr_nonnull(t);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);

        b = ratetab_get(t, key, (size_t)n, 10, 10, (uint64_t)i);
        ck_assert_ptr_nonnull(b);
        ck_assert_double_eq(b->tokens, 10.0);
        ck_assert_uint_le(ratetab_size(t), 32);
    }
    ratetab_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ratetab");
    TCase *tc = tcase_create("ratetab");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_ratetab_same_key);
    tcase_add_test(tc, test_ratetab_distinct);
    tcase_add_test(tc, test_ratetab_evict);
    tcase_add_test(tc, test_ratetab_thousands);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
