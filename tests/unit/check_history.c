/* The history store: count, age and byte bounds, retained duplicates after
 * a reconnect, gaps and recovery decisions, the three replays, cursors that
 * outlive drops and the store, seq order and the seq limit, bad input; then
 * random operation sequences against the brute-force model that the fuzz
 * target uses (tests/fuzz/history_model.h). */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not ck_assert(): Check records every passing one (a write each), and
 * the model checks millions of times. */
#define HM_CHECK(cond)                                                      \
    do {                                                                    \
        if (!(cond))                                                        \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);           \
    } while (0)
#include "../fuzz/history_model.h"
#include "history.h"

#define NOW UINT64_MAX /* as a limit: no limit */

struct op {
    const char *topic;
    uint64_t seq, ts;
    const char *payload;
    bool retained;
    const char *meta;
};

#define OPS_MAX 12
/* A message, a retained one, and one with everything given. */
#define M(t, s, ms, p) { .topic = t, .seq = s, .ts = ms, .payload = p }
#define R(t, s, ms, p) \
    { .topic = t, .seq = s, .ts = ms, .payload = p, .retained = true }
#define X(t, s, ms, p, r, m) \
    { .topic = t, .seq = s, .ts = ms, .payload = p, .retained = r, .meta = m }

static int add(struct history *h, const struct op *o)
{
    struct history_in in = {
        .topic = o->topic, .topic_len = strlen(o->topic),
        .payload = o->payload, .len = o->payload ? strlen(o->payload) : 0,
        .meta = o->meta, .meta_len = o->meta ? strlen(o->meta) : 0,
        .seq = o->seq, .ts_ms = o->ts, .qos = 1, .retained = o->retained
    };

    return history_add(h, &in);
}

static void add_all(struct history *h, const struct op *ops)
{
    for (size_t i = 0; i < OPS_MAX && ops[i].topic; i++)
        ck_assert_int_ge(add(h, &ops[i]), 0);
}

/* The seqs a replay gives, as "1,2,5" (with "r" after a retained one). */
static void replay(struct history *h, const char *filter, uint64_t after,
                   uint32_t per_topic, uint64_t limit, uint64_t now,
                   char *out, size_t len)
{
    struct history_query q = { filter, strlen(filter), after, per_topic,
                               limit };
    struct history_cursor *c;
    struct history_msg *m;
    size_t pos = 0, left;

    ck_assert_int_eq(history_cursor_new(h, &q, now, &c), 0);
    left = history_cursor_left(c);
    out[0] = '\0';
    while (history_cursor_next(c, &m) == 1) {
        struct history_view v;

        history_msg_view(m, &v);
        pos += (size_t)snprintf(out + pos, len - pos, "%s%llu%s",
                                pos ? "," : "", (unsigned long long)v.seq,
                                v.retained ? "r" : "");
        ck_assert_uint_lt(pos, len);
        history_msg_unref(m);
        left--;
        ck_assert_uint_eq(history_cursor_left(c), left);
    }
    ck_assert_uint_eq(left, 0);
    history_cursor_free(c);
}

static bool recoverable(struct history *h, const char *filter,
                        uint64_t after, uint64_t limit, uint64_t now)
{
    struct history_query q = { filter, strlen(filter), after, 0, limit };

    return history_recoverable(h, &q, now);
}

/* --- bounds -------------------------------------------------------------- */

/* max_bytes in rows: a multiple of one message "t" with a 2-byte payload. */
#define ONE (HISTORY_MSG_COST + 1 + 2)

static const struct {
    struct history_limits lim;
    struct op ops[OPS_MAX];
    uint64_t now;           /* expire at */
    const char *kept;       /* replay of "#" */
    uint64_t age, count, size;
} bound_rows[] = {
    /* count: the oldest of the topic goes, other topics keep theirs */
    { { 2, 60, 1 << 20 },
      { M("t", 1, 0, "aa"), M("t", 2, 0, "aa"), M("u", 3, 0, "aa"),
        M("t", 4, 0, "aa"), M("t", 5, 0, "aa") },
      0, "3,4,5", 0, 2, 0 },
    { { 1, 60, 1 << 20 },
      { M("t", 1, 0, "aa"), M("t", 2, 0, "aa"), M("t", 3, 0, "aa") },
      0, "3", 0, 2, 0 },
    /* age: 1 s, judged at each add and at the expiry time */
    { { 5, 1, 1 << 20 },
      { M("t", 1, 0, "aa"), M("u", 2, 500, "aa"), M("t", 3, 1000, "aa"),
        M("u", 4, 1001, "aa") },
      0, "2,3,4", 1, 0, 0 },
    { { 5, 1, 1 << 20 },
      { M("t", 1, 0, "aa"), M("u", 2, 500, "aa"), M("t", 3, 1000, "aa") },
      1501, "3", 2, 0, 0 },
    { { 5, 1, 1 << 20 }, { M("t", 1, 0, "aa") }, 1000, "1", 0, 0, 0 },
    { { 5, 1, 1 << 20 }, { M("t", 1, 0, "aa") }, 1001, "", 1, 0, 0 },
    /* bytes: the oldest of all topics first */
    { { 5, 60, 3 * ONE },
      { M("t", 1, 0, "aa"), M("u", 2, 0, "aa"), M("u", 3, 0, "aa"),
        M("t", 4, 0, "aa") },
      0, "2,3,4", 0, 0, 1 },
    { { 5, 60, 3 * ONE },
      { M("t", 1, 0, "aa"), M("u", 2, 0, "aa"), M("v", 3, 0, "aaaaaaaa") },
      0, "2,3", 0, 0, 1 },
    /* one message bigger than max_bytes is not kept and drops nothing */
    { { 5, 60, 3 * ONE },
      { M("t", 1, 0, "aa"), M("u", 2, 0, "aa"),
        M("t", 3, 0, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") },
      0, "1,2", 0, 0, 1 },
    /* all three */
    { { 2, 1, 4 * ONE },
      { M("t", 1, 0, "aa"), M("t", 2, 600, "aa"), M("t", 3, 700, "aa"),
        M("u", 4, 1200, "aa"), M("v", 5, 1300, "aa"), M("w", 6, 1400, "aa"),
        M("x", 7, 1701, "aa") },
      0, "4,5,6,7", 1, 1, 1 },
};

START_TEST(test_bounds)
{
    struct history *h = history_new(&bound_rows[_i].lim);
    struct history_stats st;
    char got[256];

    ck_assert_ptr_nonnull(h);
    add_all(h, bound_rows[_i].ops);
    history_expire(h, bound_rows[_i].now);
    replay(h, "#", 0, 0, NOW, bound_rows[_i].now, got, sizeof(got));
    ck_assert_str_eq(got, bound_rows[_i].kept);
    history_stats(h, &st);
    ck_assert_uint_eq(st.dropped_age, bound_rows[_i].age);
    ck_assert_uint_eq(st.dropped_count, bound_rows[_i].count);
    ck_assert_uint_eq(st.dropped_size, bound_rows[_i].size);
    ck_assert_uint_le(st.bytes, bound_rows[_i].lim.max_bytes);
    history_free(h);
}
END_TEST

/* --- retained duplicates ------------------------------------------------- */

static const struct {
    struct op ops[OPS_MAX];
    const char *kept;
    uint64_t dups;
} retained_rows[] = {
    /* the first replay is kept, flagged */
    { { R("t", 1, 0, "on") }, "1r", 0 },
    /* a replay equal to the newest after a reconnect is not */
    { { R("t", 1, 0, "on"), R("t", 2, 0, "on") }, "1r", 1 },
    { { M("t", 1, 0, "on"), R("t", 2, 0, "on") }, "1", 1 },
    /* a different payload or metadata is kept */
    { { M("t", 1, 0, "on"), R("t", 2, 0, "off") }, "1,2r", 0 },
    { { X("t", 1, 0, "on", false, "p1"), X("t", 2, 0, "on", true, "p2") },
      "1,2r", 0 },
    { { X("t", 1, 0, "on", false, "p1"), R("t", 2, 0, "on") },
      "1,2r", 0 },
    { { X("t", 1, 0, "on", false, "p1"), X("t", 2, 0, "on", true, "p1") },
      "1", 1 },
    /* compared with the newest only, of the same topic only */
    { { M("t", 1, 0, "on"), M("t", 2, 0, "off"), R("t", 3, 0, "on") },
      "1,2,3r", 0 },
    { { M("u", 1, 0, "on"), R("t", 2, 0, "on") }, "1,2r", 0 },
    /* empty payloads are equal */
    { { M("t", 1, 0, ""), R("t", 2, 0, "") }, "1", 1 },
    /* a live message equal to the newest is kept */
    { { R("t", 1, 0, "on"), M("t", 2, 0, "on") }, "1r,2", 0 },
};

START_TEST(test_retained)
{
    struct history_limits lim = { 10, 60, 1 << 20 };
    struct history *h = history_new(&lim);
    struct history_stats st;
    char got[256];

    add_all(h, retained_rows[_i].ops);
    replay(h, "#", 0, 0, NOW, 0, got, sizeof(got));
    ck_assert_str_eq(got, retained_rows[_i].kept);
    history_stats(h, &st);
    ck_assert_uint_eq(st.retained_dups, retained_rows[_i].dups);
    history_free(h);
}
END_TEST

/* --- recovery ------------------------------------------------------------ */

/* Store: a/1 a/2 b/3 a/4 b/5 c/6, 2 per topic: a loses seq 1 to the count.
 * At 5000 everything has expired and every topic is let go: the global
 * watermark (6) then fails every filter from below 6. */
static const struct op recovery_ops[OPS_MAX] = {
    M("a", 1, 0, "x"), M("a", 2, 0, "x"), M("b", 3, 0, "x"),
    M("a", 4, 2000, "x"), M("b", 5, 2000, "x"), M("c", 6, 0, "x"),
};

static const struct {
    const char *filter;
    uint64_t after, limit, now;
    uint64_t gap;           /* history_gap(gap - 1) first when not 0 */
    bool ok;
} recovery_rows[] = {
    { "a", 0, 6, 0, 0, false },   /* a/1 was dropped */
    { "a", 1, 6, 0, 0, true },
    { "a", 4, 6, 0, 0, true },
    { "a", 6, 6, 0, 0, true },
    { "b", 0, 6, 0, 0, true },
    { "#", 0, 6, 0, 0, false },
    { "#", 1, 6, 0, 0, true },
    { "+", 1, 6, 0, 0, true },
    { "nothing/here", 0, 6, 0, 0, true },
    /* an unknown seq: after the stream position */
    { "a", 7, 6, 0, 0, false },
    { "a", 7, 7, 0, 0, true },
    /* an outage when seq 4 was the newest given out */
    { "a", 3, 6, 0, 5, false },
    { "a", 4, 6, 0, 5, false },
    { "a", 5, 6, 0, 5, true },
    { "b", 4, 6, 0, 5, false },
    { "b", 0, 6, 0, 1, false },   /* an outage before any message */
    { "b", 1, 6, 0, 1, true },
    /* c expires: its topic goes, and its watermark fails every filter */
    { "nothing/here", 5, 6, 5000, 0, false },
    { "nothing/here", 6, 6, 5000, 0, true },
    { "b", 6, 6, 5000, 0, true },
    /* at 3000 a/2 and b/3 have expired, c/6 (older ts, newer seq) not */
    { "a", 1, 6, 3000, 0, false },
    { "a", 2, 6, 3000, 0, true },
    { "+", 2, 6, 3000, 0, false },
    { "c", 0, 6, 3000, 0, true },
};

START_TEST(test_recovery)
{
    struct history_limits lim = { 2, 2, 1 << 20 };
    struct history *h = history_new(&lim);
    bool ok;

    add_all(h, recovery_ops);
    if (recovery_rows[_i].gap)
        history_gap(h, recovery_rows[_i].gap - 1);
    ok = recoverable(h, recovery_rows[_i].filter, recovery_rows[_i].after,
                     recovery_rows[_i].limit, recovery_rows[_i].now);
    if (ok != recovery_rows[_i].ok)
        ck_abort_msg("row %d: %s after %llu: %d", _i,
                     recovery_rows[_i].filter,
                     (unsigned long long)recovery_rows[_i].after, ok);
    history_free(h);
}
END_TEST

/* --- replays ------------------------------------------------------------- */

static const struct op replay_ops[OPS_MAX] = {
    M("s/1", 1, 0, "x"), M("s/2", 2, 0, "x"), M("s/1", 4, 0, "x"),
    M("$s/1", 5, 0, "x"), M("s/1/t", 7, 0, "x"), M("s/2", 8, 0, "x"),
    M("s/1", 9, 0, "x"), R("x", 10, 0, "x"),
};

static const struct {
    const char *filter;
    uint64_t after;
    uint32_t per_topic;
    uint64_t limit;
    const char *seqs;
} replay_rows[] = {
    /* since */
    { "#", 0, 0, NOW, "1,2,4,7,8,9,10r" },
    { "#", 4, 0, NOW, "7,8,9,10r" },
    { "s/+", 2, 0, NOW, "4,8,9" },
    { "s/#", 8, 0, NOW, "9" },
    { "#", 10, 0, NOW, "" },
    { "$s/#", 0, 0, NOW, "5" },
    { "+/1", 0, 0, NOW, "1,4,9" },
    /* newest N of each */
    { "#", 0, 2, NOW, "2,4,7,8,9,10r" },
    { "s/+", 0, 2, NOW, "2,4,8,9" },
    { "s/1", 0, 5, NOW, "1,4,9" },
    /* newest of each */
    { "#", 0, 1, NOW, "7,8,9,10r" },
    { "s/+", 0, 1, NOW, "8,9" },
    { "s/1/t", 0, 1, NOW, "7" },
    /* both: the newest of each after a seq (max_rate with since) */
    { "s/+", 4, 1, NOW, "8,9" },
    { "s/+", 8, 1, NOW, "9" },
    /* the limit */
    { "#", 0, 0, 8, "1,2,4,7,8" },
    { "#", 0, 1, 8, "4,7,8" },
    { "#", 0, 1, 3, "1,2" },
    { "#", 5, 0, 6, "" },
    { "#", 0, 0, 0, "" },
    { "nomatch/#", 0, 0, NOW, "" },
};

START_TEST(test_replay)
{
    struct history_limits lim = { 10, 60, 1 << 20 };
    struct history *h = history_new(&lim);
    char got[256];

    add_all(h, replay_ops);
    replay(h, replay_rows[_i].filter, replay_rows[_i].after,
           replay_rows[_i].per_topic, replay_rows[_i].limit, 0, got,
           sizeof(got));
    if (strcmp(got, replay_rows[_i].seqs) != 0)
        ck_abort_msg("row %d: %s: \"%s\", expected \"%s\"", _i,
                     replay_rows[_i].filter, got, replay_rows[_i].seqs);
    history_free(h);
}
END_TEST

/* --- cursors under change ------------------------------------------------ */

static struct history_in msg(const char *topic, uint64_t seq, uint64_t ts,
                             const char *payload)
{
    return (struct history_in){ .topic = topic, .topic_len = strlen(topic),
                                .payload = payload, .len = strlen(payload),
                                .seq = seq, .ts_ms = ts, .qos = 0 };
}

static uint64_t next_seq(struct history_cursor *c)
{
    struct history_msg *m;
    struct history_view v;
    uint64_t seq;

    ck_assert_int_eq(history_cursor_next(c, &m), 1);
    history_msg_view(m, &v);
    seq = v.seq;
    history_msg_unref(m);
    return seq;
}

/* One message per topic, a cursor over all of them, then every topic
 * replaced (count 1) and everything expired while it is read. */
START_TEST(test_cursor_survives_drops)
{
    struct history_limits lim = { 1, 10, 40 * (HISTORY_MSG_COST + 8) };
    struct history *h = history_new(&lim);
    struct history_query q = { "#", 1, 0, 0, 20 };
    struct history_cursor *c;
    char t[8];
    uint64_t seq = 0;

    for (int i = 0; i < 20; i++) {
        struct history_in in;

        snprintf(t, sizeof(t), "t/%02d", i);
        in = msg(t, ++seq, 0, "abc");
        ck_assert_int_eq(history_add(h, &in), 1);
    }
    ck_assert_int_eq(history_cursor_new(h, &q, 0, &c), 0);
    ck_assert_uint_eq(history_cursor_left(c), 20);
    ck_assert_uint_eq(next_seq(c), 1);
    for (int i = 0; i < 20; i++) { /* each replaces seq i + 1 */
        struct history_in in;

        snprintf(t, sizeof(t), "t/%02d", i);
        in = msg(t, ++seq, 100, "abc");
        ck_assert_int_eq(history_add(h, &in), 1);
    }
    ck_assert_uint_eq(next_seq(c), 2);
    history_expire(h, 100000); /* everything */
    for (uint64_t s = 3; s <= 20; s++)
        ck_assert_uint_eq(next_seq(c), s);
    ck_assert_uint_eq(history_cursor_left(c), 0);
    {
        struct history_msg *m;

        ck_assert_int_eq(history_cursor_next(c, &m), 0);
    }
    history_cursor_free(c);
    history_free(h);
}
END_TEST

/* A cursor and a held message outlive the store; a topic let go and
 * added again is a new topic. */
START_TEST(test_outlive_store)
{
    struct history_limits lim = { 3, 10, 1 << 20 };
    struct history *h = history_new(&lim);
    struct history_query q = { "a/+", 3, 0, 0, NOW };
    struct history_cursor *c;
    struct history_msg *held, *m;
    struct history_view v;
    struct history_in in;
    struct history_stats st;

    in = msg("a/1", 1, 0, "one");
    history_add(h, &in);
    in = msg("a/2", 2, 0, "two");
    history_add(h, &in);
    in = msg("a/1", 3, 0, "three");
    history_add(h, &in);
    ck_assert_int_eq(history_cursor_new(h, &q, 0, &c), 0);
    ck_assert_int_eq(history_cursor_next(c, &held), 1);
    history_free(h);
    ck_assert_int_eq(history_cursor_next(c, &m), 1);
    history_msg_view(m, &v);
    ck_assert_uint_eq(v.seq, 2);
    ck_assert_mem_eq(v.payload, "two", 3);
    ck_assert_mem_eq(v.topic, "a/2", 3);
    history_msg_unref(m);
    history_cursor_free(c);
    history_msg_view(held, &v);
    ck_assert_uint_eq(v.seq, 1);
    ck_assert_uint_eq(v.len, 3);
    ck_assert_mem_eq(v.payload, "one", 3);
    ck_assert_mem_eq(v.topic, "a/1", 3);
    history_msg_ref(held);
    history_msg_unref(held);
    history_msg_unref(held);

    h = history_new(&lim);
    in = msg("a/1", 1, 0, "x");
    history_add(h, &in);
    ck_assert(history_holds(h, "a/1", 3));
    ck_assert(!history_holds(h, "a/", 2));
    history_expire(h, 20000);
    history_stats(h, &st);
    ck_assert_uint_eq(st.topics, 0);
    ck_assert(!history_holds(h, "a/1", 3));
    in = msg("a/1", 2, 20000, "y");
    ck_assert_int_eq(history_add(h, &in), 1);
    ck_assert(history_holds(h, "a/1", 3));
    history_stats(h, &st);
    ck_assert_uint_eq(st.topics, 1);
    ck_assert_uint_eq(st.messages, 1);
    history_free(h);
}
END_TEST

/* Lowering the limits applies them at once. */
START_TEST(test_set_limits)
{
    struct history_limits lim = { 5, 60, 1 << 20 };
    struct history *h = history_new(&lim);
    struct history_stats st;
    char got[256];

    for (uint64_t s = 1; s <= 8; s++) {
        struct history_in in = msg(s % 2 ? "odd" : "even", s, s * 1000, "x");

        history_add(h, &in);
    }
    lim.messages = 2;
    ck_assert_int_eq(history_set_limits(h, &lim, 8000), 0);
    replay(h, "#", 0, 0, NOW, 8000, got, sizeof(got));
    ck_assert_str_eq(got, "5,6,7,8");
    lim.max_age_s = 2;
    ck_assert_int_eq(history_set_limits(h, &lim, 8000), 0);
    replay(h, "#", 0, 0, NOW, 8000, got, sizeof(got));
    ck_assert_str_eq(got, "6,7,8");
    lim.max_bytes = 2 * (HISTORY_MSG_COST + 4 + 1);
    ck_assert_int_eq(history_set_limits(h, &lim, 8000), 0);
    replay(h, "#", 0, 0, NOW, 8000, got, sizeof(got));
    ck_assert_str_eq(got, "7,8");
    history_stats(h, &st);
    ck_assert_uint_eq(st.dropped_count, 4);
    ck_assert_uint_eq(st.dropped_age, 1);
    ck_assert_uint_eq(st.dropped_size, 1);
    lim.messages = 0;
    ck_assert_int_eq(history_set_limits(h, &lim, 8000), -EINVAL);
    history_free(h);
}
END_TEST

/* --- bad input ----------------------------------------------------------- */

START_TEST(test_bad_input)
{
    static const struct history_limits bad[] = {
        { 0, 60, 1 << 20 }, { HISTORY_MESSAGES_MAX + 1, 60, 1 << 20 },
        { 10, 0, 1 << 20 }, { 10, 60, 0 },
    };
    struct history_limits lim = { 10, 60, 1 << 20 };
    struct history *h;
    struct history_in in;
    struct history_query q = { "a/#b", 4, 0, 0, NOW };
    struct history_cursor *c = NULL;
    struct history_stats st;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_ptr_null(history_new(&bad[i]));
    h = history_new(&lim);
    in = msg("a", 5, 0, "x");
    ck_assert_int_eq(history_add(h, &in), 1);
    in.seq = 5; /* not increasing */
    ck_assert_int_eq(history_add(h, &in), -EINVAL);
    in.seq = 4;
    ck_assert_int_eq(history_add(h, &in), -EINVAL);
    in.seq = 6;
    in.qos = 3;
    ck_assert_int_eq(history_add(h, &in), -EINVAL);
    in.qos = 0;
    in.ts_ms = HISTORY_TS_MAX + 1;
    ck_assert_int_eq(history_add(h, &in), -EINVAL);
    in.ts_ms = 0;
    in.topic_len = 0;
    ck_assert_int_eq(history_add(h, &in), -EINVAL);
    in.topic_len = 1;
    in.meta = NULL;
    in.meta_len = 2;
    ck_assert_int_eq(history_add(h, &in), -EINVAL);
    in.meta_len = 0;
    ck_assert_int_eq(history_add(h, &in), 1);
    ck_assert_int_eq(history_cursor_new(h, &q, 0, &c), -EINVAL);
    ck_assert_ptr_null(c);
    ck_assert(!history_recoverable(h, &q, 0));
    history_stats(h, &st);
    ck_assert_uint_eq(st.messages, 2);
    history_cursor_free(NULL);
    history_msg_unref(NULL);
    history_free(h);
    history_free(NULL);
}
END_TEST

/* --- random sequences against the model ---------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13; /* xorshift64 */
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

START_TEST(test_random_against_model)
{
    uint64_t s = 0x9e3779b97f4a7c15ULL * (uint64_t)(_i + 1);
    size_t len = 500 + rng_next(&s) % 4000;
    uint8_t *buf = malloc(len);

    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(rng_next(&s) >> 24);
    hm_run(buf, len);
    free(buf);
}
END_TEST

static Suite *history_suite(void)
{
    Suite *s = suite_create("history");
    TCase *tc = tcase_create("history");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_bounds, 0,
                        sizeof(bound_rows) / sizeof(bound_rows[0]));
    tcase_add_loop_test(tc, test_retained, 0,
                        sizeof(retained_rows) / sizeof(retained_rows[0]));
    tcase_add_loop_test(tc, test_recovery, 0,
                        sizeof(recovery_rows) / sizeof(recovery_rows[0]));
    tcase_add_loop_test(tc, test_replay, 0,
                        sizeof(replay_rows) / sizeof(replay_rows[0]));
    tcase_add_test(tc, test_cursor_survives_drops);
    tcase_add_test(tc, test_outlive_store);
    tcase_add_test(tc, test_set_limits);
    tcase_add_test(tc, test_bad_input);
    tcase_add_loop_test(tc, test_random_against_model, 0, 1000);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(history_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
