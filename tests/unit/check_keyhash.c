/* The keyed hash: SipHash-2-4's reference vectors under a fixed seed, the
 * same value for the same bytes, other values under another seed. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "keyhash.h"

static const unsigned char k0[KEYHASH_SEED_BYTES] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
};

/* SipHash-2-4 reference vectors (Aumasson & Bernstein): key 00..0f, the
 * message 00 01 .. (len-1), the output read as a little-endian integer. */
static const struct {
    size_t len;
    uint64_t want;
} vec[] = {
    {0, 0x726fdb47dd0e0e31ULL},
    {1, 0x74f839c593dc67fdULL},
    {8, 0x93f5f5799a932462ULL},
    {15, 0xa129ca6149be45e5ULL},
};

START_TEST(test_keyhash_vectors)
{
    struct keyhash *k = keyhash_new(k0);
    char msg[64];

    ck_assert_ptr_nonnull(k);
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (char)i;
    ck_assert_uint_eq(keyhash(k, msg, vec[_i].len), vec[_i].want);
    /* and again, after other hashes on the same context */
    ck_assert_uint_ne(keyhash(k, "other", 5), vec[_i].want);
    ck_assert_uint_eq(keyhash(k, msg, vec[_i].len), vec[_i].want);
    keyhash_free(k);
}
END_TEST

START_TEST(test_keyhash_stable)
{
    static const unsigned char k1[KEYHASH_SEED_BYTES] = {1};
    struct keyhash *a = keyhash_new(k0), *a2 = keyhash_new(k0);
    struct keyhash *b = keyhash_new(k1);
    struct keyhash *r1 = keyhash_new(NULL), *r2 = keyhash_new(NULL);
    char key[64];
    int differ_ab = 0, differ_r = 0, differ_len = 0;

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(a2);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(r1);
    ck_assert_ptr_nonnull(r2);
    for (int i = 0; i < 200; i++) {
        int n = snprintf(key, sizeof(key), "user-%d", i);
        uint64_t h = keyhash(a, key, (size_t)n);

        ck_assert_uint_eq(keyhash(a, key, (size_t)n), h);
        ck_assert_uint_eq(keyhash(a2, key, (size_t)n), h);
        ck_assert_uint_eq(keyhash(r1, key, (size_t)n),
                          keyhash(r1, key, (size_t)n));
        differ_ab += keyhash(b, key, (size_t)n) != h;
        differ_r += keyhash(r1, key, (size_t)n) != keyhash(r2, key, (size_t)n);
        /* the length is part of the input: a NUL more is another key */
        differ_len += keyhash(a, key, (size_t)n + 1) != h;
    }
    ck_assert_int_eq(differ_ab, 200);
    ck_assert_int_eq(differ_r, 200);
    ck_assert_int_eq(differ_len, 200);
    keyhash_free(a);
    keyhash_free(a2);
    keyhash_free(b);
    keyhash_free(r1);
    keyhash_free(r2);
    keyhash_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keyhash");
    TCase *tc = tcase_create("keyhash");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, test_keyhash_vectors, 0,
                        sizeof(vec) / sizeof(vec[0]));
    tcase_add_test(tc, test_keyhash_stable);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
