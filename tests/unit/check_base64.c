#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

#define S(lit) lit, sizeof(lit) - 1

/* RFC 4648 section 10, then bytes that reach the last alphabet entries. */
static const struct {
    const char *raw;
    size_t rawlen;
    const char *enc;
} vectors[] = {
    { S(""), "" },
    { S("f"), "Zg==" },
    { S("fo"), "Zm8=" },
    { S("foo"), "Zm9v" },
    { S("foob"), "Zm9vYg==" },
    { S("fooba"), "Zm9vYmE=" },
    { S("foobar"), "Zm9vYmFy" },
    { S("\0"), "AA==" },
    { S("\0\0"), "AAA=" },
    { S("\0\0\0"), "AAAA" },
    { S("\xff"), "/w==" },
    { S("\xff\xff"), "//8=" },
    { S("\xff\xff\xff"), "////" },
    { S("\xfb\xff"), "+/8=" },
    { S("\xfb\xef\xbe"), "++++" },
    { S("\x14\xfb\x9c\x03\xd9\x7e"), "FPucA9l+" },
    { S("\x14\xfb\x9c\x03\xd9"), "FPucA9k=" },
    { S("\x14\xfb\x9c\x03"), "FPucAw==" },
};

START_TEST(test_vectors)
{
    const char *raw = vectors[_i].raw, *enc = vectors[_i].enc;
    size_t rawlen = vectors[_i].rawlen, enclen = strlen(enc);
    char out[64];
    unsigned char back[64];
    size_t n = 0;

    ck_assert_uint_eq(base64_encoded_len(rawlen), enclen);
    ck_assert_uint_eq(base64_encode(raw, rawlen, out), enclen);
    ck_assert_msg(memcmp(out, enc, enclen) == 0, "row %d: got %.*s", _i,
                  (int)enclen, out);
    ck_assert_int_eq(base64_decode(enc, enclen, back, &n), 0);
    ck_assert_uint_eq(n, rawlen);
    ck_assert(memcmp(back, raw, rawlen) == 0);
}
END_TEST

START_TEST(test_encoded_len)
{
    static const size_t want[] = { 0, 4, 4, 4, 8, 8, 8, 12, 12, 12, 16 };

    for (size_t n = 0; n < sizeof want / sizeof want[0]; n++)
        ck_assert_uint_eq(base64_encoded_len(n), want[n]);
    ck_assert_uint_eq(base64_encoded_len(3000000), 4000000);
    ck_assert_uint_eq(base64_encoded_len(3000001), 4000004);
}
END_TEST

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static bool alphabet(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* enc holds exactly base64_encoded_len(n) bytes and back exactly
 * base64_encoded_len(n) / 4 * 3, the documented sizes, so that ASan sees
 * any overrun. */
static void round_trip(const unsigned char *raw, size_t n, char *enc,
                       unsigned char *back)
{
    size_t elen = base64_encoded_len(n), got = (size_t)-1;

    if (base64_encode(raw, n, enc) != elen)
        ck_abort_msg("encoding %zu bytes: wrong length", n);
    for (size_t i = 0; i < elen; i++)
        if (!alphabet(enc[i]) && !(enc[i] == '=' && i + 2 >= elen))
            ck_abort_msg("byte %zu of %zu is '%c'", i, elen, enc[i]);
    if (base64_decode(enc, elen, back, &got) != 0)
        ck_abort_msg("own output of %zu bytes refused", n);
    if (got != n || memcmp(back, raw, n) != 0)
        ck_abort_msg("round trip of %zu bytes differs", n);
}

START_TEST(test_round_trip_random)
{
    uint64_t seed = 0x243F6A8885A308D3ULL;
    unsigned char raw[1024] = { 0 };

    for (size_t n = 0; n <= sizeof raw; n++) {
        size_t elen = base64_encoded_len(n);
        char *enc = malloc(elen + !elen);
        unsigned char *back = malloc(elen / 4 * 3 + !elen);
        ck_assert_ptr_nonnull(enc);
        ck_assert_ptr_nonnull(back);
        for (size_t i = 0; i < n; i++)
            raw[i] = (unsigned char)(rng_next(&seed) >> 56);
        round_trip(raw, n, enc, back);
        free(back);
        free(enc);
    }
}
END_TEST

START_TEST(test_round_trip_short)
{
    /* every 1- and 2-byte input */
    unsigned char raw[2];
    char *enc = malloc(4);
    unsigned char *back = malloc(3);

    ck_assert_ptr_nonnull(enc);
    ck_assert_ptr_nonnull(back);
    for (unsigned x = 0; x < 256; x++) {
        raw[0] = (unsigned char)x;
        round_trip(raw, 1, enc, back);
    }
    for (unsigned x = 0; x < 0x10000; x++) {
        raw[0] = (unsigned char)(x >> 8);
        raw[1] = (unsigned char)x;
        round_trip(raw, 2, enc, back);
    }
    free(back);
    free(enc);
}
END_TEST

static const struct {
    const char *in;
    size_t len;
    const char *what;
} malformed[] = {
    { S("Z"), "length 1" },
    { S("Zg"), "length 2, no padding" },
    { S("Zm9"), "length 3, no padding" },
    { S("Zg="), "length 3, short padding" },
    { S("Zm9vY"), "length 5" },
    { S("Zg==="), "extra '='" },
    { S("Zm9vYg=="
        "Zg=="), "padding in the middle" },
    { S("Zg==AAAA"), "padded quad before the last" },
    { S("Zm8=AAAA"), "one '=' before the last quad" },
    { S("===="), "only padding" },
    { S("A==="), "three '='" },
    { S("=AAA"), "'=' first" },
    { S("A=AA"), "'=' second" },
    { S("AA=A"), "'=' before a sextet" },
    { S("Zm=v"), "'=' third, then a sextet" },
    { S("Zh=="), "unused bits set, one byte" },
    { S("Zm9="), "unused bits set, two bytes" },
    { S("AB=="), "lowest unused bit set, one byte" },
    { S("AAB="), "lowest unused bit set, two bytes" },
    { S("Zm9v Zm9v"), "space" },
    { S("Zm9 "), "trailing space in a quad" },
    { S(" Zm9"), "leading space in a quad" },
    { S("Zm9v\n"), "newline, bad length" },
    { S("Zm9\n"), "newline in a quad" },
    { S("Zm9v\r\nZm9v"), "CRLF line break" },
    { S("Zm9\t"), "tab" },
    { S("Zm-v"), "URL-safe '-'" },
    { S("Zm_v"), "URL-safe '_'" },
    { S("Zm9v\0AAA"), "U+0000" },
    { S("Zm.v"), "'.'" },
    { S("Zm9\x80"), "byte 0x80" },
    { S("Zm9\xff"), "byte 0xFF" },
    { S("\xc3\xa9" "AA"), "UTF-8 letter" },
    { S("Zm9v*m9v"), "'*' in a full quad" },
    { S("Zm9vYmFy!g=="), "'!' in the last quad" },
};

START_TEST(test_malformed)
{
    const char *in = malformed[_i].in;
    size_t len = malformed[_i].len;
    unsigned char out[64];
    size_t n = 12345;

    ck_assert_msg(base64_decode(in, len, out, &n) == -1, "row %d (%s)", _i,
                  malformed[_i].what);
}
END_TEST

START_TEST(test_bad_byte_everywhere)
{
    /* Every byte outside the alphabet, at every position of a valid
     * two-quad input. */
    const char good[] = "Zm9vYmE=";
    unsigned char out[6];
    size_t n;

    ck_assert_int_eq(base64_decode(good, 8, out, &n), 0);
    ck_assert_uint_eq(n, 5);
    for (unsigned c = 0; c < 256; c++) {
        if (alphabet((char)c))
            continue;
        for (size_t at = 0; at < 8; at++) {
            char buf[8];
            memcpy(buf, good, 8);
            if (buf[at] == (char)c)
                continue;
            buf[at] = (char)c;
            /* '=' at 6 gives "Ym==", refused as 'm' has unused bits set */
            if (base64_decode(buf, 8, out, &n) != -1)
                ck_abort_msg("byte 0x%02x at %zu accepted", c, at);
        }
    }
}
END_TEST

static Suite *base64_suite(void)
{
    Suite *s = suite_create("base64");
    TCase *tc;

    tc = tcase_create("vectors");
    tcase_add_loop_test(tc, test_vectors, 0,
                        (int)(sizeof vectors / sizeof vectors[0]));
    tcase_add_test(tc, test_encoded_len);
    suite_add_tcase(s, tc);

    tc = tcase_create("round_trip");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_round_trip_random);
    tcase_add_test(tc, test_round_trip_short);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_loop_test(tc, test_malformed, 0,
                        (int)(sizeof malformed / sizeof malformed[0]));
    tcase_add_test(tc, test_bad_byte_everywhere);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(base64_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
