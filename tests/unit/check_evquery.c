/* The query of GET /api/events: topics in order, each option once, the
 * form of every value, Last-Event-ID over since, and the sub request of
 * each topic as request_decode() reads it. */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evquery.h"
#include "jbuf.h"
#include "request.h"

#define E65 "x0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"

static const struct {
    const char *args[10];       /* up to the first NULL */
    const char *lei;            /* Last-Event-ID, NULL: none */
    enum req_err want;          /* of evquery_parse() */
    const char *msg;            /* in the message of a refusal */
    /* RQ_OK: */
    const char *topics[4];      /* in order, up to the first NULL */
    const char *sub0;           /* evquery_sub() of the first topic */
    enum req_err dec;           /* request_decode() of every sub */
    /* what a decoded sub holds */
    int qos;
    long history;
    double max_rate;
    bool no_retained;           /* retained=false */
    const char *epoch;          /* since, NULL: none */
    uint64_t seq;
} rows[] = {
    /* topics in order; the options apply to every one */
    {.args = {"topic=a/b"}, .topics = {"a/b"},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"a/b\"}"},
    {.args = {"topic=sensor/#", "topic=device/+/status", "history=20",
              "max_rate=5"},
     .topics = {"sensor/#", "device/+/status"},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"sensor/#\",\"history\":20,"
             "\"max_rate\":5}",
     .history = 20, .max_rate = 5},
    {.args = {"qos=1", "topic=c", "history=3", "max_rate=2.5",
              "retained=false", "since=k9Qx2:81723", "topic=a", "topic=b"},
     .topics = {"c", "a", "b"},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"c\",\"qos\":1,\"history\":3,"
             "\"max_rate\":2.5,\"retained\":false,"
             "\"since\":{\"epoch\":\"k9Qx2\",\"seq\":81723}}",
     .qos = 1, .history = 3, .max_rate = 2.5, .no_retained = true,
     .epoch = "k9Qx2", .seq = 81723},
    {.args = {"topic=a", "topic=a"}, .topics = {"a", "a"},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"a\"}"},
    {.args = {"retained=true", "topic=a"}, .topics = {"a"},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"a\",\"retained\":true}"},
    {.args = {"topic=a", "qos=2", "history=100000", "max_rate=1000"},
     .topics = {"a"},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"a\",\"qos\":2,\"history\":100000,"
             "\"max_rate\":1000}",
     .qos = 2, .history = 100000, .max_rate = 1000},
    {.args = {"topic=a", "qos=0", "history=0", "max_rate=0.001"},
     .topics = {"a"},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"a\",\"qos\":0,\"history\":0,"
             "\"max_rate\":0.001}",
     .max_rate = 0.001},
    {.args = {"topic=a", "since=e:9223372036854775807"}, .topics = {"a"},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"a\",\"since\":{\"epoch\":\"e\","
             "\"seq\":9223372036854775807}}",
     .epoch = "e", .seq = 9223372036854775807ULL},
    /* a topic is escaped into the JSON and decodes to the same bytes */
    {.args = {"topic=a\"b\\c/t\xc3\xa9mp\xc3\xa9rature/\xf0\x9f\x8c\xa1"},
     .topics = {"a\"b\\c/t\xc3\xa9mp\xc3\xa9rature/\xf0\x9f\x8c\xa1"},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"a\\\"b\\\\c/t\xc3\xa9mp\xc3\xa9"
             "rature/\xf0\x9f\x8c\xa1\"}"},
    /* Last-Event-ID: the same as since, and before it */
    {.args = {"topic=a"}, .lei = "k9Qx2:7", .topics = {"a"},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"a\",\"since\":{\"epoch\":\"k9Qx2\","
             "\"seq\":7}}",
     .epoch = "k9Qx2", .seq = 7},
    {.args = {"topic=a", "since=old:1"}, .lei = "new:7", .topics = {"a"},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"a\",\"since\":{\"epoch\":\"new\","
             "\"seq\":7}}",
     .epoch = "new", .seq = 7},
    {.args = {"since=garbage", "topic=a"}, .lei = "new:7", .topics = {"a"},
     .epoch = "new", .seq = 7},
    {.args = {"topic=a", "since=old:1"}, .lei = "", .topics = {"a"},
     .epoch = "old", .seq = 1},
    {.args = {"topic=a", "since=old:1"}, .lei = "nocolon",
     .want = RQ_BAD_REQUEST, .msg = "since"},
    {.args = {"topic=a"}, .lei = "e:-1", .want = RQ_BAD_REQUEST,
     .msg = "since"},
    /* each option once, also with the same value */
    {.args = {"topic=a", "qos=1", "qos=1"}, .want = RQ_BAD_REQUEST,
     .msg = "qos: given twice"},
    {.args = {"history=1", "topic=a", "history=2"}, .want = RQ_BAD_REQUEST,
     .msg = "history: given twice"},
    {.args = {"max_rate=1", "max_rate=2", "topic=a"},
     .want = RQ_BAD_REQUEST, .msg = "max_rate: given twice"},
    {.args = {"topic=a", "retained=true", "retained=false"},
     .want = RQ_BAD_REQUEST, .msg = "retained: given twice"},
    {.args = {"topic=a", "since=e:1", "since=e:1"}, .want = RQ_BAD_REQUEST,
     .msg = "since: given twice"},
    {.args = {"topic=a", "since=e:1", "since=e:2"}, .lei = "e:3",
     .want = RQ_BAD_REQUEST, .msg = "since: given twice"},
    /* bad forms of qos and history: digits only, at most 9 */
    {.args = {"topic=a", "qos="}, .want = RQ_BAD_REQUEST, .msg = "qos"},
    {.args = {"topic=a", "qos=-1"}, .want = RQ_BAD_REQUEST, .msg = "qos"},
    {.args = {"topic=a", "qos=+1"}, .want = RQ_BAD_REQUEST, .msg = "qos"},
    {.args = {"topic=a", "qos=1.0"}, .want = RQ_BAD_REQUEST, .msg = "qos"},
    {.args = {"topic=a", "qos= 1"}, .want = RQ_BAD_REQUEST, .msg = "qos"},
    {.args = {"topic=a", "qos=1 "}, .want = RQ_BAD_REQUEST, .msg = "qos"},
    {.args = {"topic=a", "qos=one"}, .want = RQ_BAD_REQUEST, .msg = "qos"},
    {.args = {"topic=a", "qos=0x1"}, .want = RQ_BAD_REQUEST, .msg = "qos"},
    {.args = {"topic=a", "qos=1234567890"}, .want = RQ_BAD_REQUEST,
     .msg = "qos"},
    {.args = {"topic=a", "history="}, .want = RQ_BAD_REQUEST,
     .msg = "history"},
    {.args = {"topic=a", "history=-5"}, .want = RQ_BAD_REQUEST,
     .msg = "history"},
    {.args = {"topic=a", "history=1e3"}, .want = RQ_BAD_REQUEST,
     .msg = "history"},
    {.args = {"topic=a", "history=true"}, .want = RQ_BAD_REQUEST,
     .msg = "history"},
    /* bad forms of max_rate: DIGITS[.DIGITS] */
    {.args = {"topic=a", "max_rate="}, .want = RQ_BAD_REQUEST,
     .msg = "max_rate"},
    {.args = {"topic=a", "max_rate=.5"}, .want = RQ_BAD_REQUEST,
     .msg = "max_rate"},
    {.args = {"topic=a", "max_rate=5."}, .want = RQ_BAD_REQUEST,
     .msg = "max_rate"},
    {.args = {"topic=a", "max_rate=1.2.3"}, .want = RQ_BAD_REQUEST,
     .msg = "max_rate"},
    {.args = {"topic=a", "max_rate=-1"}, .want = RQ_BAD_REQUEST,
     .msg = "max_rate"},
    {.args = {"topic=a", "max_rate=1e3"}, .want = RQ_BAD_REQUEST,
     .msg = "max_rate"},
    {.args = {"topic=a", "max_rate=1,5"}, .want = RQ_BAD_REQUEST,
     .msg = "max_rate"},
    {.args = {"topic=a", "max_rate=NaN"}, .want = RQ_BAD_REQUEST,
     .msg = "max_rate"},
    {.args = {"topic=a", "max_rate=Infinity"}, .want = RQ_BAD_REQUEST,
     .msg = "max_rate"},
    {.args = {"topic=a", "max_rate=1234567890123"}, .want = RQ_BAD_REQUEST,
     .msg = "max_rate"},
    {.args = {"topic=a", "max_rate=0.1234567890123"},
     .want = RQ_BAD_REQUEST, .msg = "max_rate"},
    {.args = {"topic=a", "max_rate=12345678901234567890123456789012345"},
     .want = RQ_BAD_REQUEST, .msg = "max_rate"},
    /* bad forms of retained: true or false */
    {.args = {"topic=a", "retained="}, .want = RQ_BAD_REQUEST,
     .msg = "retained"},
    {.args = {"topic=a", "retained=TRUE"}, .want = RQ_BAD_REQUEST,
     .msg = "retained"},
    {.args = {"topic=a", "retained=1"}, .want = RQ_BAD_REQUEST,
     .msg = "retained"},
    {.args = {"topic=a", "retained=yes"}, .want = RQ_BAD_REQUEST,
     .msg = "retained"},
    {.args = {"topic=a", "retained=truex"}, .want = RQ_BAD_REQUEST,
     .msg = "retained"},
    /* bad forms of since: EPOCH:SEQ */
    {.args = {"topic=a", "since="}, .want = RQ_BAD_REQUEST, .msg = "since"},
    {.args = {"topic=a", "since=e"}, .want = RQ_BAD_REQUEST, .msg = "since"},
    {.args = {"topic=a", "since=:1"}, .want = RQ_BAD_REQUEST, .msg = "since"},
    {.args = {"topic=a", "since=e:"}, .want = RQ_BAD_REQUEST, .msg = "since"},
    {.args = {"topic=a", "since=e:-1"}, .want = RQ_BAD_REQUEST,
     .msg = "since"},
    {.args = {"topic=a", "since=e:9223372036854775808"},
     .want = RQ_BAD_REQUEST, .msg = "since"},
    {.args = {"topic=a", "since=" E65 ":1"}, .want = RQ_BAD_REQUEST,
     .msg = "since"},
    {.args = {"topic=a", "since=e\"x:1"}, .want = RQ_BAD_REQUEST,
     .msg = "since"},
    /* the right form but a value sub refuses: request_decode() says so */
    {.args = {"topic=a", "qos=3"}, .topics = {"a"},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"a\",\"qos\":3}",
     .dec = RQ_BAD_REQUEST},
    {.args = {"topic=a", "qos=123456789"}, .topics = {"a"},
     .dec = RQ_BAD_REQUEST},
    {.args = {"topic=a", "history=100001"}, .topics = {"a"},
     .dec = RQ_BAD_REQUEST},
    {.args = {"topic=a", "max_rate=0"}, .topics = {"a"},
     .dec = RQ_BAD_REQUEST},
    {.args = {"topic=a", "max_rate=0.0"}, .topics = {"a"},
     .dec = RQ_BAD_REQUEST},
    {.args = {"topic=a", "max_rate=1000.5"}, .topics = {"a"},
     .dec = RQ_BAD_REQUEST},
    /* a leading zero is not a JSON number: refused here */
    {.args = {"topic=a", "qos=01"}, .want = RQ_BAD_REQUEST, .msg = "qos"},
    {.args = {"topic=a", "history=007"}, .want = RQ_BAD_REQUEST,
     .msg = "history"},
    {.args = {"topic=a", "max_rate=01.5"}, .want = RQ_BAD_REQUEST,
     .msg = "max_rate"},
    /* a topic that is UTF-8 but not a filter: request_decode() refuses */
    {.args = {"topic=a/#/b"}, .topics = {"a/#/b"}, .dec = RQ_BAD_TOPIC},
    {.args = {"topic=a+"}, .topics = {"a+"}, .dec = RQ_BAD_TOPIC},
    {.args = {"topic="}, .topics = {""},
     .sub0 = "{\"op\":\"sub\",\"topic\":\"\"}", .dec = RQ_BAD_TOPIC},
    /* a topic that is not UTF-8 */
    {.args = {"topic=\xff"}, .want = RQ_BAD_TOPIC, .msg = "UTF-8"},
    {.args = {"topic=a", "topic=a/\xc3"}, .want = RQ_BAD_TOPIC,
     .msg = "UTF-8"},
    {.args = {"topic=\xc0\xaf"}, .want = RQ_BAD_TOPIC, .msg = "UTF-8"},
    {.args = {"topic=\xed\xa0\x80"}, .want = RQ_BAD_TOPIC, .msg = "UTF-8"},
    {.args = {"topic=\xf4\x90\x80\x80"}, .want = RQ_BAD_TOPIC,
     .msg = "UTF-8"},
    /* no topic */
    {.args = {NULL}, .want = RQ_BAD_REQUEST, .msg = "topic"},
    {.args = {"qos=1", "history=2"}, .want = RQ_BAD_REQUEST, .msg = "topic"},
    {.args = {"topic"}, .want = RQ_BAD_REQUEST, .msg = "topic"},
    {.args = {"topics=a", "Topic=a", "topic_=a"}, .want = RQ_BAD_REQUEST,
     .msg = "topic"},
    {.args = {NULL}, .lei = "e:1", .want = RQ_BAD_REQUEST, .msg = "topic"},
    /* other arguments are ignored, also ones that begin like an option */
    {.args = {"token=xyz", "topic=a", "foo=bar", "qos2=1", "qos", "=1", "",
              "Qos=1", "history_=9", "since"},
     .topics = {"a"}, .sub0 = "{\"op\":\"sub\",\"topic\":\"a\"}"},
    {.args = {"max_rate_=x", "topic=x", "retainedx=1", "QOS=7"},
     .topics = {"x"}, .sub0 = "{\"op\":\"sub\",\"topic\":\"x\"}"},
};

static size_t count(const char *const *v, size_t max)
{
    size_t n = 0;

    while (n < max && v[n])
        n++;
    return n;
}

START_TEST(test_evquery)
{
    size_t n = count(rows[_i].args, 10), nt = count(rows[_i].topics, 4);
    struct evquery *q = malloc(sizeof(*q));
    char msg[256] = "";
    enum req_err e;

    ck_assert_ptr_nonnull(q);
    e = evquery_parse(q, rows[_i].args, n, rows[_i].lei, msg, sizeof(msg));
    ck_assert_msg(e == rows[_i].want, "row %d: got %d (%s)", _i, e, msg);
    if (e != RQ_OK) {
        ck_assert_msg(strstr(msg, rows[_i].msg) != NULL,
                      "row %d: message \"%s\" without \"%s\"", _i, msg,
                      rows[_i].msg);
        evquery_clear(q);
        free(q);
        return;
    }
    ck_assert_uint_eq(q->n_topics, nt);
    for (size_t i = 0; i < nt; i++) {
        const char *t = rows[_i].topics[i];
        struct request r;
        struct jbuf b;

        ck_assert_uint_eq(q->topic_len[i], strlen(t));
        ck_assert_int_eq(memcmp(q->topic[i], t, strlen(t)), 0);
        jbuf_init(&b);
        evquery_sub(q, i, &b);
        ck_assert(!b.failed);
        if (i == 0 && rows[_i].sub0)
            ck_assert_msg(b.len == strlen(rows[_i].sub0) &&
                              memcmp(b.p, rows[_i].sub0, b.len) == 0,
                          "row %d: sub %.*s", _i, (int)b.len, b.p);
        e = request_decode(b.p, b.len, &r, msg, sizeof(msg));
        ck_assert_msg(e == rows[_i].dec, "row %d topic %zu: %.*s: %d (%s)",
                      _i, i, (int)b.len, b.p, e, msg);
        if (e == RQ_OK) {
            ck_assert_int_eq(r.op, OP_SUB);
            ck_assert_uint_eq(r.id_len, 0);
            ck_assert_uint_eq(r.topic_len, strlen(t));
            ck_assert_int_eq(memcmp(r.topic, t, strlen(t)), 0);
            ck_assert_int_eq(r.qos, rows[_i].qos);
            ck_assert_int_eq(r.history, rows[_i].history);
            ck_assert_double_eq(r.max_rate, rows[_i].max_rate);
            ck_assert(r.retained == !rows[_i].no_retained);
            ck_assert(r.has_since == (rows[_i].epoch != NULL));
            if (rows[_i].epoch) {
                ck_assert_uint_eq(r.since_epoch_len, strlen(rows[_i].epoch));
                ck_assert_int_eq(memcmp(r.since_epoch, rows[_i].epoch,
                                        r.since_epoch_len), 0);
                ck_assert_uint_eq(r.since_seq, rows[_i].seq);
            }
            ck_assert(r.body == BODY_NONE);
        }
        request_clear(&r);
        jbuf_free(&b);
    }
    evquery_clear(q);
    free(q);
}
END_TEST

/* Up to EVQ_TOPICS_MAX topics, in order; one more refuses the request. */
START_TEST(test_evquery_topics_max)
{
    static char store[EVQ_TOPICS_MAX + 2][32];
    const char *args[EVQ_TOPICS_MAX + 2];
    struct evquery *q = malloc(sizeof(*q));
    char msg[256] = "";

    ck_assert_ptr_nonnull(q);
    args[0] = "qos=1";
    for (int i = 1; i < EVQ_TOPICS_MAX + 2; i++) {
        snprintf(store[i], sizeof(store[i]), "topic=t/%d", i);
        args[i] = store[i];
    }
    ck_assert_int_eq(evquery_parse(q, args, EVQ_TOPICS_MAX + 1, NULL, msg,
                                   sizeof(msg)), RQ_OK);
    ck_assert_uint_eq(q->n_topics, EVQ_TOPICS_MAX);
    for (size_t i = 0; i < q->n_topics; i++) {
        struct request r;
        struct jbuf b;

        ck_assert_str_eq(q->topic[i], store[i + 1] + 6);
        jbuf_init(&b);
        evquery_sub(q, i, &b);
        ck_assert_int_eq(request_decode(b.p, b.len, &r, msg, sizeof(msg)),
                         RQ_OK);
        ck_assert_int_eq(r.op, OP_SUB);
        ck_assert_int_eq(r.qos, 1);
        ck_assert_uint_eq(r.topic_len, strlen(store[i + 1] + 6));
        ck_assert_int_eq(memcmp(r.topic, store[i + 1] + 6, r.topic_len), 0);
        request_clear(&r);
        jbuf_free(&b);
    }
    evquery_clear(q);
    ck_assert_int_eq(evquery_parse(q, args, EVQ_TOPICS_MAX + 2, NULL, msg,
                                   sizeof(msg)), RQ_BAD_REQUEST);
    {
        char want[64];

        snprintf(want, sizeof(want), "at most %d topics", EVQ_TOPICS_MAX);
        ck_assert_ptr_nonnull(strstr(msg, want));
    }
    evquery_clear(q);
    free(q);
}
END_TEST

/* A sub longer than a jbuf's inline storage, with the longest since. */
START_TEST(test_evquery_long_options)
{
    char since[128], topic[700];
    const char *args[3] = {topic, since, "max_rate=123456789012.123456789012"};
    struct evquery *q = malloc(sizeof(*q));
    struct request r;
    struct jbuf b;
    char msg[256] = "";

    ck_assert_ptr_nonnull(q);
    memcpy(topic, "topic=", 6);
    memset(topic + 6, 'x', sizeof(topic) - 7);
    topic[sizeof(topic) - 1] = '\0';
    snprintf(since, sizeof(since), "since=%s:%s",
             "0123456789012345678901234567890123456789012345678901234567890123",
             "9223372036854775807");
    ck_assert_int_eq(evquery_parse(q, args, 3, NULL, msg, sizeof(msg)), RQ_OK);
    jbuf_init(&b);
    evquery_sub(q, 0, &b);
    ck_assert(!b.failed);
    /* max_rate is out of range but well-formed: the sub says so */
    ck_assert_int_eq(request_decode(b.p, b.len, &r, msg, sizeof(msg)),
                     RQ_BAD_REQUEST);
    ck_assert_ptr_nonnull(strstr(msg, "max_rate"));
    request_clear(&r);
    jbuf_free(&b);
    evquery_clear(q);
    free(q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("evquery");
    TCase *tc = tcase_create("evquery");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, test_evquery, 0, sizeof(rows) / sizeof(rows[0]));
    tcase_add_test(tc, test_evquery_topics_max);
    tcase_add_test(tc, test_evquery_long_options);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
