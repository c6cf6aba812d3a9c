#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

/* Lengths come from sizeof so that rows may hold U+0000. */
#define S(lit) lit, sizeof(lit) - 1

/* --- validity ------------------------------------------------------------ */

static const struct {
    const char *s;
    size_t len;
    bool name_ok, filter_ok;
} valid_rows[] = {
    { S("a"), true, true },
    { S("a/b"), true, true },
    { S("a b"), true, true },
    { S("/"), true, true },
    { S("//"), true, true },
    { S("a/"), true, true },
    { S("/a"), true, true },
    { S("a//b"), true, true },
    { S("$SYS/broker"), true, true },
    { S("$"), true, true },
    { S("caf\xc3\xa9/\xf0\x9f\x98\x80"), true, true },
    { S("\x7f"), true, true },
    { S(""), false, false },
    { S("+"), false, true },
    { S("#"), false, true },
    { S("a/+"), false, true },
    { S("+/a"), false, true },
    { S("a/+/b"), false, true },
    { S("+/+"), false, true },
    { S("/+"), false, true },
    { S("+/"), false, true },
    { S("a/#"), false, true },
    { S("/#"), false, true },
    { S("+/#"), false, true },
    { S("$SYS/#"), false, true },
    { S("caf\xc3\xa9/+/#"), false, true },
    { S("a+"), false, false },
    { S("+a"), false, false },
    { S("a/b+"), false, false },
    { S("a/+b/c"), false, false },
    { S("++"), false, false },
    { S("a#"), false, false },
    { S("#a"), false, false },
    { S("#/a"), false, false },
    { S("#/"), false, false },
    { S("a/#/b"), false, false },
    { S("a/b#"), false, false },
    { S("##"), false, false },
    { S("+#"), false, false },
    { S("#+"), false, false },
    { S("a\0b"), false, false },
    { S("\0"), false, false },
    { S("a/\0"), false, false },
    { S("\xc3"), false, false },          /* truncated */
    { S("a/\xe2\x82"), false, false },    /* truncated */
    { S("\xc0\xaf"), false, false },      /* overlong '/' */
    { S("\xed\xa0\x80"), false, false },  /* surrogate */
    { S("\xf4\x90\x80\x80"), false, false }, /* above U+10FFFF */
    { S("\xff"), false, false },
    { S("\x80/+"), false, false },
    /* "$share/NAME/FILTER": a name, then a filter of its own. Names are
     * matched level by level and may begin with "$share/". */
    { S("$share/g/a"), true, true },
    { S("$share/g/#"), false, true },
    { S("$share/g/+/b"), false, true },
    { S("$share/g/$SYS/#"), false, true },
    { S("$share/g//"), true, true },
    { S("$share/g/a/"), true, true },
    { S("$share/$g/a"), true, true },
    { S("$share"), true, true },
    { S("$share/"), true, false },
    { S("$share/g"), true, false },
    { S("$share/g/"), true, false },
    { S("$share//a"), true, false },
    { S("$share//"), true, false },
    { S("$share/+/a"), false, false },
    { S("$share/+"), false, false },
    { S("$share/#"), false, false },
    { S("$share/#/a"), false, false },
    { S("$share/g+/a"), false, false },
    { S("$share/g#/a"), false, false },
    { S("$share/g/a+"), false, false },
    { S("$share/g/#/a"), false, false },
    { S("$shares/+/a"), false, true },
    { S("$SHARE/+/a"), false, true },
};

START_TEST(test_validity)
{
    const char *s = valid_rows[_i].s;
    size_t len = valid_rows[_i].len;

    ck_assert_msg((topic_name_check(s, len) == 0) == valid_rows[_i].name_ok,
                  "row %d: name \"%s\" expected %s", _i, s,
                  valid_rows[_i].name_ok ? "valid" : "invalid");
    ck_assert_msg((topic_filter_check(s, len) == 0) ==
                      valid_rows[_i].filter_ok,
                  "row %d: filter \"%s\" expected %s", _i, s,
                  valid_rows[_i].filter_ok ? "valid" : "invalid");
}
END_TEST

START_TEST(test_length_limits)
{
    char *buf = malloc(TOPIC_MAX_LEN + 2);

    ck_assert_ptr_nonnull(buf);
    memset(buf, 'a', TOPIC_MAX_LEN + 1);
    ck_assert_int_eq(topic_name_check(buf, TOPIC_MAX_LEN), 0);
    ck_assert_int_eq(topic_filter_check(buf, TOPIC_MAX_LEN), 0);
    ck_assert_int_eq(topic_name_check(buf, TOPIC_MAX_LEN + 1), -1);
    ck_assert_int_eq(topic_filter_check(buf, TOPIC_MAX_LEN + 1), -1);

    memcpy(buf + TOPIC_MAX_LEN - 2, "/#", 2);
    ck_assert_int_eq(topic_filter_check(buf, TOPIC_MAX_LEN), 0);
    ck_assert_int_eq(topic_name_check(buf, TOPIC_MAX_LEN), -1);
    memcpy(buf + TOPIC_MAX_LEN - 1, "/#", 2);
    ck_assert_int_eq(topic_filter_check(buf, TOPIC_MAX_LEN + 1), -1);

    /* A multi-byte character must not be split at the limit either. */
    memset(buf, 'a', TOPIC_MAX_LEN + 1);
    memcpy(buf + TOPIC_MAX_LEN - 2, "\xe2\x82\xac", 3);
    ck_assert_int_eq(topic_name_check(buf, TOPIC_MAX_LEN), -1);
    ck_assert_int_eq(topic_name_check(buf, TOPIC_MAX_LEN + 1), -1);
    ck_assert_int_eq(topic_name_check(buf + 1, TOPIC_MAX_LEN), 0);
    free(buf);
}
END_TEST

START_TEST(test_not_nul_terminated)
{
    /* Only len bytes are looked at. */
    const char buf[] = { 'a', '/', '+', '#' };

    ck_assert_int_eq(topic_name_check(buf, 2), 0);
    ck_assert_int_eq(topic_filter_check(buf, 3), 0);
    ck_assert_int_eq(topic_filter_check(buf, 4), -1);
    ck_assert(topic_match(buf, 3, "a/b", 3));
    ck_assert(!topic_match(buf, 1, "a/b", 3));
}
END_TEST

/* --- matching ------------------------------------------------------------ */

static const struct {
    const char *filter, *name;
    bool match;
} match_rows[] = {
    { "a", "a", true },
    { "a", "b", false },
    { "A", "a", false },
    { "a", "ab", false },
    { "ab", "a", false },
    { "a", "a/b", false },
    { "a/b", "a", false },
    { "a/b", "a/b", true },
    { "a", "a/", false },
    { "a/", "a", false },
    { "a/", "a/", true },
    { "a//b", "a//b", true },
    { "a//b", "a/b", false },
    { "/a", "/a", true },
    { "/a", "a", false },
    { "+", "a", true },
    { "+", "a/b", false },
    { "+", "/", false },
    { "+/+", "/", true },
    { "+/+", "a/b", true },
    { "+/+", "a", false },
    { "+/b", "a/b", true },
    { "+/b", "/b", true },
    { "/+", "/a", true },
    { "/+", "/", true },
    { "/+", "a", false },
    { "a/+", "a/", true },
    { "a/+", "a", false },
    { "a/+", "a/b/c", false },
    { "a/+/c", "a/b/c", true },
    { "a/+/c", "a//c", true },
    { "a/+/c", "a/b/d", false },
    { "sensor/+/temp", "sensor/1/temp", true },
    { "sensor/+/temp", "sensor/1/hum", false },
    { "sensor/+/temp", "sensor/1/2/temp", false },
    { "sensor/+/temp", "sensor//temp", true },
    { "#", "a", true },
    { "#", "a/b/c", true },
    { "#", "/", true },
    { "#", "/a", true },
    { "#", "a/", true },
    { "a/#", "a", true },
    { "a/#", "a/", true },
    { "a/#", "a/b", true },
    { "a/#", "a/b/c", true },
    { "a/#", "a//", true },
    { "a/#", "ab", false },
    { "a/#", "b/a", false },
    { "a/b/#", "a", false },
    { "a/b/#", "a/b", true },
    { "a/b/#", "a/bc", false },
    { "+/#", "a", true },
    { "+/#", "/", true },
    { "+/#", "a/b/c", true },
    { "/#", "/", true },
    { "/#", "/a/b", true },
    { "/#", "a", false },
    { "+/+/#", "a", false },
    { "+/+/#", "a/b", true },
    /* the '$' rule: only a wildcard first level refuses '$' names */
    { "#", "$SYS", false },
    { "#", "$SYS/broker/load", false },
    { "+", "$a", false },
    { "+/x", "$a/x", false },
    { "+/#", "$SYS/a", false },
    { "$SYS/#", "$SYS", true },
    { "$SYS/#", "$SYS/broker/load", true },
    { "$SYS/+", "$SYS/a", true },
    { "$SYS", "$SYS", true },
    { "$", "$", true },
    { "a/+", "a/$b", true },
    { "a/#", "a/$b", true },
    { "+", "x$", true },
    { "#", "/$a", true },
    { "caf\xc3\xa9/+", "caf\xc3\xa9/1", true },
    { "caf\xc3\xa9", "cafe", false },
    { "\xf0\x9f\x98\x80/#", "\xf0\x9f\x98\x80/x", true },
};

START_TEST(test_match)
{
    const char *f = match_rows[_i].filter, *n = match_rows[_i].name;

    ck_assert_msg(topic_filter_check(f, strlen(f)) == 0, "bad row %d", _i);
    ck_assert_msg(topic_name_check(n, strlen(n)) == 0, "bad row %d", _i);
    ck_assert_msg(topic_match(f, strlen(f), n, strlen(n)) ==
                      match_rows[_i].match,
                  "row %d: \"%s\" %s \"%s\"", _i, f,
                  match_rows[_i].match ? "should match" : "should not match",
                  n);
}
END_TEST

/* --- coverage ------------------------------------------------------------ */

static const struct {
    const char *pattern, *filter;
    bool covers;
} cover_rows[] = {
    { "sensor/#", "sensor/+/temp", true },
    { "sensor/#", "sensor/#", true },
    { "sensor/#", "sensor", true },
    { "sensor/#", "#", false },
    { "sensor/#", "+/temp", false },
    { "sensor/#", "sensorx/1", false },
    { "+/x", "#", false },
    { "#", "+/x", true },
    { "#", "a/#", true },
    { "#", "$SYS/#", false },
    { "$SYS/#", "$SYS/+", true },
    { "a", "a", true },
    { "a", "b", false },
    { "a", "a/b", false },
    { "a/b", "a", false },
    { "a", "+", false },
    { "a", "#", false },
    { "+", "a", true },
    { "+", "+", true },
    { "+", "#", false },
    { "+", "a/b", false },
    { "+", "/", false },
    { "+/+", "a/+", true },
    { "+/+", "+/+", true },
    { "+/+", "/", true },
    { "+/+", "a", false },
    { "a/+", "+/+", false },
    { "a/+", "a/", true },
    { "a/+", "a", false },
    { "a/+", "a/#", false },
    { "#", "#", true },
    { "#", "a", true },
    { "#", "+", true },
    { "#", "/", true },
    { "#", "/#", true },
    { "a/#", "a", true },
    { "a/#", "a/", true },
    { "a/#", "a/+", true },
    { "a/#", "a/b/c", true },
    { "a/#", "a/+/#", true },
    { "a/#", "+", false },
    { "a/#", "ab", false },
    { "a/#", "ab/#", false },
    { "a/b/#", "a/#", false },
    { "a/b/#", "a", false },
    { "a/+/#", "a/#", false },  /* "a/#" matches "a" */
    { "a/+/#", "a/b", true },
    { "a/+/#", "a", false },
    { "//", "//", true },
    { "/+", "//", false },
    { "/+/+", "//", true },
    { "/+", "/", true },
    { "/", "/+", false },
    /* '#' never needs to match zero levels where that leaves the empty
     * name, so "+/#" is as wide as "#", and "/+/#" as "/#". */
    { "+/#", "#", true },
    { "+/#", "a", true },
    { "+/#", "+", true },
    { "+/#", "+/#", true },
    { "+/+/#", "#", false },
    { "/+/#", "/#", true },
    { "+/+/#", "/#", true },
    { "+/+/#", "+/#", false },  /* "+/#" matches "a" */
    { "a/+/#", "a/#", false },
    /* '$' */
    { "#", "$SYS", false },
    { "+", "$SYS", false },
    { "+/#", "$SYS/a", false },
    { "+/+", "$SYS/a", false },
    { "$SYS/#", "$SYS/#", true },
    { "$SYS/#", "$SYS", true },
    { "$SYS/#", "#", false },
    { "$SYS/#", "+/a", false },
    { "$SYS/+", "$SYS/#", false },
    { "$share/g/#", "$share/g/a", true },
    { "#", "$share/g/a", false },
    /* "$share/NAME/": the same name, then the rules on the filter part */
    { "$share/g/#", "$share/g/#", true },
    { "$share/g/#", "$share/g/+/x", true },
    { "$share/g/#", "$share/g/$SYS/#", false },
    { "$share/g/#", "$share/g/$SYS", false },
    { "$share/g/+/#", "$share/g/$SYS/x", false },
    { "$share/g/+", "$share/g/$x", false },
    { "$share/g/$SYS/#", "$share/g/$SYS/broker/uptime", true },
    { "$share/g/$SYS/#", "$share/g/$SYS/#", true },
    { "$share/g/a/#", "$share/g/a/b", true },
    { "$share/g/a/#", "$share/g/b", false },
    { "$share/g/#", "$share/h/a", false },
    { "$share/g/#", "$share/gg/a", false },
    { "$share/gg/#", "$share/g/a", false },
    { "$share/g/#", "a", false },
    { "$share/g/#", "$share", false },
    { "+/g/#", "$share/g/a", false },
    { "$share/g/x", "$share/g/x", true },
    { "$share/g/+/+", "$share/g//", true },
    { "$share/g/+/#", "$share/g/#", true },
    { "$share/g/+/+/#", "$share/g/#", false },
    { "$share", "$share", true },
    { "a/$b/#", "a/$b/c", true },
    { "a/+", "a/$b", true },
    { "#", "x$/y", true },
};

START_TEST(test_covers)
{
    const char *p = cover_rows[_i].pattern, *f = cover_rows[_i].filter;

    ck_assert_msg(topic_filter_check(p, strlen(p)) == 0, "bad row %d", _i);
    ck_assert_msg(topic_filter_check(f, strlen(f)) == 0, "bad row %d", _i);
    ck_assert_msg(topic_covers(p, strlen(p), f, strlen(f)) ==
                      cover_rows[_i].covers,
                  "row %d: \"%s\" %s \"%s\"", _i, p,
                  cover_rows[_i].covers ? "should cover" : "should not cover",
                  f);
}
END_TEST

/* --- exhaustive cross-checks over a small alphabet -----------------------
 * Every valid filter up to FMAX bytes over "a$+#/", every name up to NMAX
 * bytes over "ab$/". topic_match() is checked against a reference written
 * differently (split into levels first); topic_covers() against its
 * definition, inclusion of the sets of names matched. */

#define FMAX 4
#define NMAX 6
#define MAX_LEVELS (NMAX + 1)

struct levels {
    size_t n;
    size_t off[MAX_LEVELS], len[MAX_LEVELS];
};

static void split(const char *s, struct levels *lv)
{
    size_t start = 0, i;

    lv->n = 0;
    for (i = 0;; i++) {
        if (s[i] == '/' || s[i] == '\0') {
            lv->off[lv->n] = start;
            lv->len[lv->n] = i - start;
            lv->n++;
            start = i + 1;
            if (s[i] == '\0')
                break;
        }
    }
}

static bool ref_match(const char *f, const char *n)
{
    struct levels fl, nl;

    if ((f[0] == '+' || f[0] == '#') && n[0] == '$')
        return false;
    split(f, &fl);
    split(n, &nl);
    for (size_t i = 0; i < fl.n; i++) {
        const char *lv = f + fl.off[i];
        if (fl.len[i] == 1 && lv[0] == '#')
            return true;
        if (i >= nl.n)
            return false;
        if (fl.len[i] == 1 && lv[0] == '+')
            continue;
        if (fl.len[i] != nl.len[i] || memcmp(lv, n + nl.off[i], fl.len[i]))
            return false;
    }
    return fl.n == nl.n;
}

/* Fills out with every string of 1..maxlen bytes over alphabet, each in a
 * slot of maxlen + 1 bytes; returns how many. */
static size_t enumerate(const char *alphabet, size_t maxlen, char *out)
{
    size_t k = strlen(alphabet), count = 0;
    size_t idx[NMAX];

    for (size_t len = 1; len <= maxlen; len++) {
        memset(idx, 0, sizeof idx);
        for (;;) {
            char *s = out + count * (maxlen + 1);
            for (size_t i = 0; i < len; i++)
                s[i] = alphabet[idx[i]];
            s[len] = '\0';
            count++;
            size_t i = len;
            while (i > 0 && ++idx[i - 1] == k)
                idx[--i] = 0;
            if (i == 0)
                break;
        }
    }
    return count;
}

static size_t pow_sum(size_t k, size_t maxlen)
{
    size_t total = 0, p = 1;

    for (size_t i = 0; i < maxlen; i++) {
        p *= k;
        total += p;
    }
    return total;
}

START_TEST(test_exhaustive)
{
    size_t nf_all = pow_sum(5, FMAX), nn = pow_sum(4, NMAX);
    char *fbuf = malloc(nf_all * (FMAX + 1));
    char *nbuf = malloc(nn * (NMAX + 1));
    size_t words = (nn + 63) / 64;
    uint64_t *sets;
    size_t nf = 0, pairs = 0, covered = 0;

    ck_assert_ptr_nonnull(fbuf);
    ck_assert_ptr_nonnull(nbuf);
    ck_assert_uint_eq(enumerate("ab$/", NMAX, nbuf), nn);

    /* keep the valid filters only, packed at the front */
    size_t all = enumerate("a$+#/", FMAX, fbuf);
    for (size_t i = 0; i < all; i++) {
        char *f = fbuf + i * (FMAX + 1);
        if (topic_filter_check(f, strlen(f)) == 0)
            memmove(fbuf + nf++ * (FMAX + 1), f, FMAX + 1);
    }
    sets = calloc(nf * words, sizeof *sets);
    ck_assert_ptr_nonnull(sets);

    for (size_t i = 0; i < nf; i++) {
        const char *f = fbuf + i * (FMAX + 1);
        for (size_t j = 0; j < nn; j++) {
            const char *n = nbuf + j * (NMAX + 1);
            bool m = topic_match(f, strlen(f), n, strlen(n));
            if (m != ref_match(f, n))
                ck_abort_msg("match(\"%s\", \"%s\") = %d", f, n, m);
            if (m)
                sets[i * words + j / 64] |= (uint64_t)1 << (j % 64);
        }
    }

    for (size_t i = 0; i < nf; i++) {
        const char *p = fbuf + i * (FMAX + 1);
        for (size_t j = 0; j < nf; j++) {
            const char *f = fbuf + j * (FMAX + 1);
            bool subset = true;
            for (size_t w = 0; w < words && subset; w++)
                subset = (sets[j * words + w] & ~sets[i * words + w]) == 0;
            bool c = topic_covers(p, strlen(p), f, strlen(f));
            if (c != subset)
                ck_abort_msg("covers(\"%s\", \"%s\") = %d, names say %d", p,
                             f, c, subset);
            pairs++;
            covered += c;
        }
    }
    /* guard against a vacuous run */
    ck_assert_uint_gt(nf, 100);
    ck_assert_uint_gt(covered, nf);
    ck_assert_uint_lt(covered, pairs / 2);

    free(sets);
    free(nbuf);
    free(fbuf);
}
END_TEST

/* topic_mount() and topic_unmount(): the mount goes after a shared
 * subscription's "$share/NAME/", and comes off again exactly. */
static const struct {
    const char *mount, *rel, *full;
} mount_rows[] = {
    { "", "a/b", "a/b" },
    { "t/u/", "a/b", "t/u/a/b" },
    { "t/u/", "#", "t/u/#" },
    { "t/u/", "$share/g/a/#", "$share/g/t/u/a/#" },
    { "t/u/", "$share/g/#", "$share/g/t/u/#" },
    { "", "$share/g/#", "$share/g/#" },
    { "t/", "$sharex/a", "t/$sharex/a" },
};

START_TEST(test_mount)
{
    const char *m = mount_rows[_i].mount, *rel = mount_rows[_i].rel;
    const char *full = mount_rows[_i].full;
    char out[64];
    long n;

    ck_assert_uint_eq(topic_mount(m, strlen(m), rel, strlen(rel), out),
                      strlen(full));
    ck_assert_int_eq(memcmp(out, full, strlen(full)), 0);
    n = topic_unmount(m, strlen(m), full, strlen(full), out);
    ck_assert_int_eq(n, (long)strlen(rel));
    ck_assert_int_eq(memcmp(out, rel, strlen(rel)), 0);
}
END_TEST

START_TEST(test_unmount_outside)
{
    char out[64];

    ck_assert_int_eq(topic_unmount("t/u/", 4, "t/v/a", 5, out), -1);
    ck_assert_int_eq(topic_unmount("t/u/", 4, "t/u", 3, out), -1);
    ck_assert_int_eq(topic_unmount("t/u/", 4, "$share/g/a/#", 12, out), -1);
    ck_assert_int_eq(topic_unmount("t/u/", 4, "$share/g/t/u", 12, out), -1);
    /* no mount at all: a NULL mount of length 0 */
    ck_assert_int_eq(topic_unmount(NULL, 0, "a/b", 3, out), 3);
    ck_assert_uint_eq(topic_mount(NULL, 0, "$share/g/a", 10, out), 10);
}
END_TEST

static Suite *topic_suite(void)
{
    Suite *s = suite_create("topic");
    TCase *tc;

    tc = tcase_create("validity");
    tcase_add_loop_test(tc, test_validity, 0,
                        (int)(sizeof valid_rows / sizeof valid_rows[0]));
    tcase_add_test(tc, test_length_limits);
    tcase_add_test(tc, test_not_nul_terminated);
    suite_add_tcase(s, tc);

    tc = tcase_create("match");
    tcase_add_loop_test(tc, test_match, 0,
                        (int)(sizeof match_rows / sizeof match_rows[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("covers");
    tcase_add_loop_test(tc, test_covers, 0,
                        (int)(sizeof cover_rows / sizeof cover_rows[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("mount");
    tcase_add_loop_test(tc, test_mount, 0,
                        (int)(sizeof mount_rows / sizeof mount_rows[0]));
    tcase_add_test(tc, test_unmount_outside);
    suite_add_tcase(s, tc);

    tc = tcase_create("exhaustive");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_exhaustive);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(topic_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
