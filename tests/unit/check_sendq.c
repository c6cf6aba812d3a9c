/* The send queue: order across wrap-around and growth, byte counts,
 * references, and when the ring is given back. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "sendq.h"

static struct frame *text(int i)
{
    char s[32];
    int n = snprintf(s, sizeof(s), "{\"n\":%d}", i);

    return frame_new_text(s, (size_t)n);
}

/* Pushes and pops in every interleaving step up to 40, past several
 * growths and wrap-arounds, checking FIFO order and the bytes held. */
START_TEST(test_sendq_order)
{
    struct sendq q;
    struct frame *f[600];
    int pushed = 0, popped = 0;
    size_t bytes = 0;

    memset(&q, 0, sizeof(q));
    for (int i = 0; i < 600; i++)
        ck_assert_ptr_nonnull(f[i] = text(i));
    while (popped < 600) {
        for (int k = 0; k < _i + 1 && pushed < 600; k++) {
            ck_assert_int_eq(sendq_push(&q, f[pushed]), 0);
            bytes += f[pushed++]->len;
        }
        /* fewer pops than pushes until all are in, then drain */
        int pops = pushed == 600 ? 600 : (_i + 2) / 2;

        for (int k = 0; k < pops && popped < pushed; k++) {
            struct frame *g = sendq_pop(&q);

            ck_assert_ptr_eq(g, f[popped]);
            ck_assert_uint_eq(g->refs, 2);
            bytes -= g->len;
            frame_unref(g);
            popped++;
        }
        ck_assert_uint_eq(q.count, (uint32_t)(pushed - popped));
        ck_assert_uint_eq(q.bytes, bytes);
        ck_assert_uint_eq(q.cap & (q.cap - 1), 0); /* a power of two */
    }
    for (int i = 0; i < 600; i++) {
        ck_assert_uint_eq(f[i]->refs, 1);
        frame_unref(f[i]);
    }
    sendq_free(&q);
}
END_TEST

START_TEST(test_sendq_drop_and_trim)
{
    struct sendq q;
    struct frame *f = text(1);

    memset(&q, 0, sizeof(q));
    for (int i = 0; i < 300; i++)
        ck_assert_int_eq(sendq_push(&q, f), 0);
    ck_assert_uint_eq(f->refs, 301);
    ck_assert_uint_eq(q.cap, 512);
    sendq_trim(&q); /* not empty: kept */
    ck_assert_uint_eq(q.cap, 512);
    sendq_drop(&q);
    ck_assert_uint_eq(f->refs, 1);
    ck_assert_uint_eq(q.bytes, 0);
    sendq_trim(&q); /* empty and big: given back */
    ck_assert_uint_eq(q.cap, 0);
    ck_assert_ptr_null(q.v);
    for (int i = 0; i < SENDQ_KEEP; i++)
        ck_assert_int_eq(sendq_push(&q, f), 0);
    sendq_drop(&q);
    sendq_trim(&q); /* small: kept for the next burst */
    ck_assert_uint_eq(q.cap, SENDQ_KEEP);
    sendq_free(&q);
    ck_assert_uint_eq(f->refs, 1);
    frame_unref(f);
}
END_TEST

/* Conflation keeps the newest frame of each topic and every other frame,
 * in order, and never the first keep ones. */
START_TEST(test_sendq_conflate)
{
    static const struct {
        uint64_t key[8];
        size_t n;
        uint32_t keep;
        const int kept[8];      /* indexes kept, -1 ends */
    } rows[] = {
        { { 1, 2, 1, 2, 1 }, 5, 0, { 3, 4, -1 } },
        { { 1, 2, 1, 2, 1 }, 5, 1, { 0, 3, 4, -1 } },
        { { 0, 1, 0, 1, 0 }, 5, 0, { 0, 2, 3, 4, -1 } },
        { { 7, 7, 7, 7 }, 4, 0, { 3, -1 } },
        { { 1, 2, 3 }, 3, 0, { 0, 1, 2, -1 } },
        { { 0 }, 0, 0, { -1 } },
    };

    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        struct sendq q;
        struct frame *f[8];
        size_t bytes = 0, nk = 0;

        memset(&q, 0, sizeof(q));
        /* start past the ring's start, so that it wraps */
        for (int i = 0; i < 3; i++) {
            struct frame *x = text(100 + i);

            sendq_push(&q, x);
            frame_unref(sendq_pop(&q));
            frame_unref(x);
        }
        for (size_t i = 0; i < rows[r].n; i++) {
            f[i] = text((int)i);
            f[i]->topic_key = rows[r].key[i];
            ck_assert_int_eq(sendq_push(&q, f[i]), 0);
        }
        while (rows[r].kept[nk] >= 0)
            bytes += f[rows[r].kept[nk++]]->len;
        ck_assert_int_eq(sendq_conflate(&q, rows[r].keep),
                         (long)(rows[r].n - nk));
        ck_assert_uint_eq(q.count, nk);
        ck_assert_uint_eq(q.bytes, bytes);
        for (size_t i = 0; i < nk; i++) {
            struct frame *g = sendq_pop(&q);

            ck_assert_ptr_eq(g, f[rows[r].kept[i]]);
            frame_unref(g);
        }
        for (size_t i = 0; i < rows[r].n; i++) {
            ck_assert_uint_eq(f[i]->refs, 1);
            frame_unref(f[i]);
        }
        sendq_free(&q);
    }
}
END_TEST

static Suite *sendq_suite(void)
{
    Suite *s = suite_create("sendq");
    TCase *tc = tcase_create("sendq");

    tcase_add_loop_test(tc, test_sendq_order, 0, 40);
    tcase_add_test(tc, test_sendq_drop_and_trim);
    tcase_add_test(tc, test_sendq_conflate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sendq_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
