#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define S(lit) lit, sizeof(lit) - 1

static const struct {
    const char *s;
    size_t len;
    bool valid;
    const char *what;
} rows[] = {
    { S(""), true, "empty" },
    { S("a"), true, "ASCII" },
    { S("hello, world: a longer ASCII run"), true, "ASCII run" },
    { S("\0"), true, "U+0000 is well-formed" },
    { S("\x7f"), true, "U+007F" },
    { S("\xc2\x80"), true, "U+0080, smallest 2-byte" },
    { S("\xc3\xa9"), true, "U+00E9" },
    { S("\xdf\xbf"), true, "U+07FF, largest 2-byte" },
    { S("\xe0\xa0\x80"), true, "U+0800, smallest 3-byte" },
    { S("\xe2\x82\xac"), true, "U+20AC" },
    { S("\xed\x9f\xbf"), true, "U+D7FF, below the surrogates" },
    { S("\xee\x80\x80"), true, "U+E000, above the surrogates" },
    { S("\xef\xbb\xbf"), true, "U+FEFF" },
    { S("\xef\xbf\xbf"), true, "U+FFFF, largest 3-byte" },
    { S("\xf0\x90\x80\x80"), true, "U+10000, smallest 4-byte" },
    { S("\xf0\x9f\x98\x80"), true, "U+1F600" },
    { S("\xf3\xbf\xbf\xbf"), true, "U+FFFFF" },
    { S("\xf4\x8f\xbf\xbf"), true, "U+10FFFF, the last" },
    { S("a\xc3\xa9z\xe2\x82\xac\xf0\x9f\x98\x80!"), true, "mixed" },
    { S("\xc0\x80"), false, "overlong U+0000" },
    { S("\xc0\xaf"), false, "overlong '/'" },
    { S("\xc1\xbf"), false, "overlong U+007F" },
    { S("\xe0\x80\x80"), false, "overlong 3-byte U+0000" },
    { S("\xe0\x80\xaf"), false, "overlong 3-byte '/'" },
    { S("\xe0\x9f\xbf"), false, "overlong U+07FF" },
    { S("\xf0\x80\x80\x80"), false, "overlong 4-byte U+0000" },
    { S("\xf0\x80\x80\xaf"), false, "overlong 4-byte '/'" },
    { S("\xf0\x8f\xbf\xbf"), false, "overlong U+FFFF" },
    { S("\xed\xa0\x80"), false, "U+D800" },
    { S("\xed\xad\xbf"), false, "U+DB7F" },
    { S("\xed\xb0\x80"), false, "U+DC00" },
    { S("\xed\xbf\xbf"), false, "U+DFFF" },
    { S("\xed\xa0\xbd\xed\xb8\x80"), false, "surrogate pair (CESU-8)" },
    { S("\xf4\x90\x80\x80"), false, "U+110000" },
    { S("\xf4\xbf\xbf\xbf"), false, "U+13FFFF" },
    { S("\xf5\x80\x80\x80"), false, "lead F5" },
    { S("\xf7\xbf\xbf\xbf"), false, "U+1FFFFF" },
    { S("\xf8\x88\x80\x80\x80"), false, "5-byte form" },
    { S("\xfc\x84\x80\x80\x80\x80"), false, "6-byte form" },
    { S("\xfe"), false, "FE" },
    { S("\xff"), false, "FF" },
    { S("\x80"), false, "lone continuation 80" },
    { S("\xbf"), false, "lone continuation BF" },
    { S("a\x80z"), false, "continuation among ASCII" },
    { S("\xc3\xa9\xa9"), false, "one continuation too many" },
    { S("\xc2"), false, "truncated 2-byte" },
    { S("\xe2\x82"), false, "truncated 3-byte after 2" },
    { S("\xe2"), false, "truncated 3-byte after 1" },
    { S("\xf0\x9f\x98"), false, "truncated 4-byte after 3" },
    { S("\xf0\x9f"), false, "truncated 4-byte after 2" },
    { S("\xf0"), false, "truncated 4-byte after 1" },
    { S("\xf4\x8f\xbf"), false, "truncated U+10FFFF" },
    { S("abcdefgh\xc3"), false, "truncated after an ASCII word" },
    { S("\xc2\x41"), false, "ASCII where a continuation belongs" },
    { S("\xe2\x41\x82"), false, "bad 2nd of 3" },
    { S("\xe2\x82\x41"), false, "bad 3rd of 3" },
    { S("\xf0\x9f\x41\x80"), false, "bad 3rd of 4" },
    { S("\xf0\x9f\x98\x41"), false, "bad 4th of 4" },
    { S("\xc3\xc3\xa9"), false, "lead where a continuation belongs" },
    { S("\xe2\x82\xe2\x82\xac"), false, "restart inside a sequence" },
};

START_TEST(test_rows)
{
    /* Copied to a buffer of exactly len bytes so that ASan sees any read
     * past the end. */
    size_t len = rows[_i].len;
    char *buf = malloc(len ? len : 1);

    ck_assert_ptr_nonnull(buf);
    memcpy(buf, rows[_i].s, len);
    ck_assert_msg(utf8_valid(buf, len) == rows[_i].valid,
                  "row %d (%s): expected %s", _i, rows[_i].what,
                  rows[_i].valid ? "valid" : "invalid");
    free(buf);
}
END_TEST

/* Each case placed at every offset of an ASCII buffer, so that the eight-
 * byte fast path meets it at every alignment and run length. */
static const struct {
    const char *s;
    size_t len;
    bool valid;
} inserts[] = {
    { S("\xc3\xa9"), true },
    { S("\xe2\x82\xac"), true },
    { S("\xf0\x9f\x98\x80"), true },
    { S("\x80"), false },
    { S("\xff"), false },
    { S("\xc0\xaf"), false },
    { S("\xed\xa0\x80"), false },
};

START_TEST(test_every_offset)
{
    const char *s = inserts[_i].s;
    size_t n = inserts[_i].len;

    for (size_t total = n; total <= 40; total++) {
        char *buf = malloc(total);
        ck_assert_ptr_nonnull(buf);
        for (size_t at = 0; at + n <= total; at++) {
            memset(buf, 'x', total);
            memcpy(buf + at, s, n);
            if (utf8_valid(buf, total) != inserts[_i].valid)
                ck_abort_msg("insert %d at %zu of %zu", _i, at, total);
            /* cut the sequence short at the very end of the buffer */
            if (n > 1 && at + n == total && utf8_valid(buf, total - 1))
                ck_abort_msg("truncated insert %d at %zu", _i, at);
        }
        free(buf);
    }
}
END_TEST

/* The definition, written as decoding: the sequence length the lead byte
 * announces, continuations 10xxxxxx, and then the code point must need
 * exactly that length and be a scalar value. */
static bool ref_valid(const unsigned char *s, size_t len)
{
    static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    size_t i = 0;

    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

START_TEST(test_against_reference)
{
    static const unsigned char tail[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f,
                                          0x90, 0x9f, 0xa0, 0xbf, 0xc0,
                                          0xc2, 0xe0, 0xf0, 0xff };
    unsigned char b[4];
    unsigned long checked = 0;

    /* all 1- and 2-byte inputs */
    for (unsigned x = 0; x < 0x10000; x++) {
        b[0] = (unsigned char)(x >> 8);
        b[1] = (unsigned char)x;
        if (utf8_valid(b, 1) != ref_valid(b, 1))
            ck_abort_msg("%02x", b[0]);
        if (utf8_valid(b, 2) != ref_valid(b, 2))
            ck_abort_msg("%02x %02x", b[0], b[1]);
        checked += 2;
    }
    /* every lead and second byte, with interesting later bytes */
    for (unsigned x = 0xC000; x < 0x10000; x++) {
        b[0] = (unsigned char)(x >> 8);
        b[1] = (unsigned char)x;
        for (size_t t = 0; t < sizeof tail; t++) {
            b[2] = tail[t];
            if (utf8_valid(b, 3) != ref_valid(b, 3))
                ck_abort_msg("%02x %02x %02x", b[0], b[1], b[2]);
            for (size_t u = 0; u < sizeof tail; u++) {
                b[3] = tail[u];
                if (utf8_valid(b, 4) != ref_valid(b, 4))
                    ck_abort_msg("%02x %02x %02x %02x", b[0], b[1], b[2],
                                 b[3]);
                checked++;
            }
        }
    }
    ck_assert_uint_gt(checked, 1000000);
}
END_TEST

START_TEST(test_every_scalar_value)
{
    /* Every scalar value, encoded by hand, is accepted; one buffer holds
     * them all so the long mixed run is exercised as well. */
    size_t cap = 0x110000 * 4, len = 0;
    unsigned char *buf = malloc(cap);

    ck_assert_ptr_nonnull(buf);
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        if (cp < 0x80) {
            buf[len++] = (unsigned char)cp;
        } else if (cp < 0x800) {
            buf[len++] = (unsigned char)(0xC0 | cp >> 6);
            buf[len++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            buf[len++] = (unsigned char)(0xE0 | cp >> 12);
            buf[len++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            buf[len++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else {
            buf[len++] = (unsigned char)(0xF0 | cp >> 18);
            buf[len++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
            buf[len++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            buf[len++] = (unsigned char)(0x80 | (cp & 0x3F));
        }
    }
    ck_assert(utf8_valid(buf, len));
    ck_assert(!utf8_valid(buf, len - 1)); /* cuts U+10FFFF */
    free(buf);
}
END_TEST

static Suite *utf8_suite(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc;

    tc = tcase_create("rows");
    tcase_add_loop_test(tc, test_rows, 0, (int)(sizeof rows / sizeof rows[0]));
    tcase_add_loop_test(tc, test_every_offset, 0,
                        (int)(sizeof inserts / sizeof inserts[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("exhaustive");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_against_reference);
    tcase_add_test(tc, test_every_scalar_value);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(utf8_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
