#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "promtext.h"

/* --- promtext_label ------------------------------------------------------ */

static const struct {
    const char *in, *out;
} label_rows[] = {
    { "", "" },
    { "m 1\n", "m{worker=\"2\"} 1\n" },
    { "m{a=\"b\"} 1\n", "m{worker=\"2\",a=\"b\"} 1\n" },
    { "m{} 1\n", "m{worker=\"2\"} 1\n" },
    { "# HELP m Help text {x} 1\n# TYPE m gauge\nm 3\n",
      "# HELP m Help text {x} 1\n# TYPE m gauge\nm{worker=\"2\"} 3\n" },
    { "m_bucket{le=\"0.5\"} 4\nm_sum 1.5\nm_count 4\n",
      "m_bucket{worker=\"2\",le=\"0.5\"} 4\nm_sum{worker=\"2\"} 1.5\n"
      "m_count{worker=\"2\"} 4\n" },
    { "\nm 1", "\nm{worker=\"2\"} 1" },          /* no final newline */
    { "m{a=\"x y\"} 1 1700000000\n",             /* a space in a label */
      "m{worker=\"2\",a=\"x y\"} 1 1700000000\n" },
};

START_TEST(test_label)
{
    size_t n = 99;
    const char *in = label_rows[_i].in;
    char *out = promtext_label(in, strlen(in), "worker", "2", &n);

    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(out, label_rows[_i].out);
    ck_assert_uint_eq(n, strlen(label_rows[_i].out));
    free(out);
}
END_TEST

/* --- promtext_merge ------------------------------------------------------ */

START_TEST(test_merge)
{
    const char *a = "# HELP x X.\n# TYPE x gauge\nx{w=\"1\"} 1\n"
                    "# HELP y Y.\n# TYPE y counter\ny{w=\"1\"} 5\n";
    const char *b = "# HELP x X.\n# TYPE x gauge\nx{w=\"2\"} 2\n"
                    "# HELP z Z.\n# TYPE z gauge\nz 7\n"
                    "# HELP y Y.\n# TYPE y counter\ny{w=\"2\"} 6\n";
    const char *c = "# HELP s S.\n# TYPE s gauge\ns 1\n";
    const char *texts[] = { a, b, c };
    size_t lens[] = { strlen(a), strlen(b), strlen(c) }, n;
    char *out = promtext_merge(texts, lens, 3, &n);

    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(out,
                     "# HELP x X.\n# TYPE x gauge\nx{w=\"1\"} 1\nx{w=\"2\"} 2\n"
                     "# HELP y Y.\n# TYPE y counter\ny{w=\"1\"} 5\n"
                     "y{w=\"2\"} 6\n"
                     "# HELP z Z.\n# TYPE z gauge\nz 7\n"
                     "# HELP s S.\n# TYPE s gauge\ns 1\n");
    ck_assert_uint_eq(n, strlen(out));
    free(out);
}
END_TEST

START_TEST(test_merge_edges)
{
    const char *lead = "stray 1\n# HELP x X.\nx 1\n";
    const char *none = "";
    const char *texts[] = { lead, none, lead };
    size_t lens[] = { strlen(lead), 0, strlen(lead) }, n;
    char *out = promtext_merge(texts, lens, 3, &n);

    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(out, "stray 1\nstray 1\n# HELP x X.\nx 1\nx 1\n");
    free(out);
    out = promtext_merge(texts, lens, 0, &n);
    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(n, 0);
    free(out);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("promtext");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_label, 0,
                        sizeof(label_rows) / sizeof(label_rows[0]));
    tcase_add_test(tc, test_merge);
    tcase_add_test(tc, test_merge_edges);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
