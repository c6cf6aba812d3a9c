/* libFuzzer target: the query of GET /api/events (evquery_parse() and
 * evquery_sub()) and the SSE framing (sse_parse_id(), sse_encode()).
 *
 * The input is a flags byte, then NUL-separated fields: the decoded query
 * arguments "name=value", the last one being the Last-Event-ID header when
 * flags bit 0 is set. Each field is an exact-size heap copy, terminated as
 * the gateway's decoded arguments are.
 *
 * Invariants:
 *   - evquery_parse() answers RQ_OK, RQ_BAD_REQUEST (with a message) or
 *     RQ_BAD_TOPIC (only when a topic is not UTF-8), the same twice;
 *   - RQ_OK means 1..EVQ_TOPICS_MAX topics: exactly the topic= arguments,
 *     in order, pointing into them;
 *   - each evquery_sub() is a JSON text that request_decode() reads as a
 *     sub of that topic (or refuses as bad_request/bad_topic, a value sub
 *     does not allow), with the qos, history, max_rate and retained of the
 *     arguments and the since of the Last-Event-ID, else of since=;
 *   - sse_parse_id() accepts exactly EPOCH:SEQ, EPOCH 1..64 of
 *     [A-Za-z0-9_-], SEQ 1..19 digits up to INT64_MAX, reading no byte past
 *     its length;
 *   - sse_encode() writes sse_encoded_len() bytes: "event: OP\n", for a seq
 *     "id: EPOCH:SEQ\n", "data: JSON\n\n", OP being the frame's op when it
 *     starts {"op":"NAME" with NAME 1..31 of [a-z_], else "message". */
#include <inttypes.h>
#include <stdbool.h>

#include "evquery.h"
#include "fuzz.h"
#include "jbuf.h"
#include "payload.h"
#include "request.h"
#include "sse.h"
#include "utf8.h"

#define MAX_FIELDS (EVQ_TOPICS_MAX + 16)

/* ---- sse_parse_id ------------------------------------------------------ */

static bool epoch_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* The model: the epoch's length and the seq of an id, or false. */
static bool model_id(const char *s, size_t len, size_t *el, uint64_t *seq)
{
    size_t i = 0, d;
    uint64_t v = 0;

    while (i < len && epoch_char(s[i]))
        i++;
    if (i == 0 || i > 64 || i == len || s[i] != ':')
        return false;
    *el = i;
    for (d = 0, i++; i < len; i++, d++) {
        if (s[i] < '0' || s[i] > '9' || d == 19)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');   /* 19 digits fit */
    }
    if (d == 0 || v > INT64_MAX)
        return false;
    *seq = v;
    return true;
}

static void check_parse_id(const char *p, size_t len)
{
    char *s = fuzz_dup(p, len, 0);
    size_t el = 0, mel = 0;
    uint64_t seq = 0, mseq = 0;
    int r = sse_parse_id(s, len, &el, &seq);

    FUZZ_CHECK(r == 0 || r == -1);
    FUZZ_CHECK((r == 0) == model_id(s, len, &mel, &mseq));
    if (r == 0)
        FUZZ_CHECK(el == mel && seq == mseq);
    free(s);
}

/* ---- sse_encode -------------------------------------------------------- */

static bool op_name(const char *json, size_t len, size_t *n)
{
    static const char head[] = "{\"op\":\"";
    size_t i = 0;

    if (len < 7 || memcmp(json, head, 7) != 0)
        return false;
    while (7 + i < len && i < 31 &&
           ((json[7 + i] >= 'a' && json[7 + i] <= 'z') || json[7 + i] == '_'))
        i++;
    *n = i;
    return i > 0 && 7 + i < len && json[7 + i] == '"';
}

static void expect(const char **w, const char *end, const void *s, size_t n)
{
    FUZZ_CHECK((size_t)(end - *w) >= n && memcmp(*w, s, n) == 0);
    *w += n;
}

/* The frame json (no line break in it) as an event, with seq when not 0. */
static void check_encode(const char *p, size_t len, const char *epoch,
                         uint64_t seq)
{
    char *json = fuzz_dup(p, len, 0), *out;
    size_t n = sse_encoded_len(json, len, epoch, seq), op_len, name_len;
    const char *op = sse_op(json, len, &op_len), *w, *end;
    bool named = op_name(json, len, &name_len);

    FUZZ_CHECK(named ? (op == json + 7 && op_len == name_len)
                     : (op_len == 7 && memcmp(op, "message", 7) == 0));
    out = malloc(n);   /* exact size: ASan sees a byte past it */
    FUZZ_CHECK(out != NULL);
    FUZZ_CHECK(sse_encode(json, len, epoch, seq, out) == n);
    w = out;
    end = out + n;
    expect(&w, end, "event: ", 7);
    expect(&w, end, named ? json + 7 : "message", named ? name_len : 7);
    expect(&w, end, "\n", 1);
    if (seq) {
        char num[24];
        int nl = snprintf(num, sizeof(num), "%" PRIu64, seq);

        expect(&w, end, "id: ", 4);
        expect(&w, end, epoch, strlen(epoch));
        expect(&w, end, ":", 1);
        expect(&w, end, num, (size_t)nl);
        expect(&w, end, "\n", 1);
    }
    expect(&w, end, "data: ", 6);
    expect(&w, end, json, len);
    expect(&w, end, "\n\n", 2);
    FUZZ_CHECK(w == end);
    free(out);
    free(json);
}

/* ---- evquery ----------------------------------------------------------- */

/* The value of the first "name=VALUE" among the args, or NULL. */
static const char *first(char *const *args, size_t n, const char *name)
{
    size_t nl = strlen(name);

    for (size_t i = 0; i < n; i++)
        if (strncmp(args[i], name, nl) == 0 && args[i][nl] == '=')
            return args[i] + nl + 1;
    return NULL;
}

/* The options of a query as the arguments give them (NULL: absent). */
struct opts {
    const char *qos, *hist, *rate, *ret, *since;
};

static void check_sub(const struct evquery *q, size_t i, const struct opts *o)
{
    const char *qos = o->qos, *hist = o->hist, *rate = o->rate;
    const char *ret = o->ret, *since = o->since;
    struct request r;
    struct jbuf b;
    char msg[256];
    enum req_err e;
    size_t op_len;

    jbuf_init(&b);
    evquery_sub(q, i, &b);
    FUZZ_CHECK(!b.failed);
    FUZZ_CHECK(json_text_valid(b.p, b.len));
    FUZZ_CHECK(memchr(b.p, '\n', b.len) == NULL);
    FUZZ_CHECK(memcmp(sse_op(b.p, b.len, &op_len), "sub", 3) == 0 &&
               op_len == 3);
    e = request_decode(b.p, b.len, &r, msg, sizeof(msg));
    FUZZ_CHECK(e == RQ_OK || e == RQ_BAD_REQUEST || e == RQ_BAD_TOPIC);
    if (e == RQ_OK) {
        FUZZ_CHECK(r.op == OP_SUB && r.id_len == 0 && r.body == BODY_NONE);
        FUZZ_CHECK(r.topic_len == q->topic_len[i] &&
                   memcmp(r.topic, q->topic[i], r.topic_len) == 0);
        FUZZ_CHECK(r.qos == (qos ? atoi(qos) : 0));
        FUZZ_CHECK(r.history == (hist ? atol(hist) : 0));
        FUZZ_CHECK(r.max_rate == (rate ? strtod(rate, NULL) : 0));
        FUZZ_CHECK(r.retained == (!ret || strcmp(ret, "true") == 0));
        FUZZ_CHECK(r.has_since == (since != NULL));
        if (since) {
            size_t el;
            uint64_t seq;

            FUZZ_CHECK(sse_parse_id(since, strlen(since), &el, &seq) == 0);
            FUZZ_CHECK(r.since_epoch_len == el &&
                       memcmp(r.since_epoch, since, el) == 0 &&
                       r.since_seq == seq);
        }
    }
    request_clear(&r);
    jbuf_free(&b);
}

static void check_subs(const struct evquery *q, char *const *args, size_t n,
                       const char *lei)
{
    struct opts o = {
        .qos = first(args, n, "qos"),
        .hist = first(args, n, "history"),
        .rate = first(args, n, "max_rate"),
        .ret = first(args, n, "retained"),
        .since = lei && *lei ? lei : first(args, n, "since"),
    };

    for (size_t i = 0; i < q->n_topics; i++)
        check_sub(q, i, &o);
}

static void check_query(char *const *args, size_t n, const char *lei)
{
    struct evquery *q = malloc(sizeof(*q));
    char msg[256], msg2[256];
    enum req_err e, e2;
    size_t topics = 0, bad_utf8 = 0;

    FUZZ_CHECK(q != NULL);
    for (size_t i = 0; i < n; i++)
        if (strncmp(args[i], "topic=", 6) == 0) {
            topics++;
            bad_utf8 += !utf8_valid(args[i] + 6, strlen(args[i] + 6));
        }
    memset(msg, 0x55, sizeof(msg));
    e = evquery_parse(q, (const char *const *)args, n, lei, msg, sizeof(msg));
    FUZZ_CHECK(e == RQ_OK || e == RQ_BAD_REQUEST || e == RQ_BAD_TOPIC);
    if (e != RQ_OK)
        FUZZ_CHECK(memchr(msg, '\0', sizeof(msg)) != NULL && msg[0] != '\0');
    if (e == RQ_BAD_TOPIC)
        FUZZ_CHECK(bad_utf8 > 0);
    if (e == RQ_OK) {
        size_t k = 0;

        FUZZ_CHECK(bad_utf8 == 0);
        FUZZ_CHECK(topics >= 1 && topics <= EVQ_TOPICS_MAX);
        FUZZ_CHECK(q->n_topics == topics);
        for (size_t i = 0; i < n; i++) {
            if (strncmp(args[i], "topic=", 6) != 0)
                continue;
            FUZZ_CHECK(q->topic[k] == args[i] + 6 &&
                       q->topic_len[k] == strlen(args[i] + 6));
            k++;
        }
        check_subs(q, args, n, lei);
    }
    evquery_clear(q);
    e2 = evquery_parse(q, (const char *const *)args, n, lei, msg2,
                       sizeof(msg2));
    FUZZ_CHECK(e2 == e);
    if (e != RQ_OK)
        FUZZ_CHECK(strcmp(msg, msg2) == 0);
    evquery_clear(q);
    free(q);
}

/* A seq of every width from the field's bytes (FNV-1a), 0 for none. */
static uint64_t seq_of(const char *p, size_t len)
{
    uint64_t h = 14695981039346656037ULL;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
    return len ? h >> (h & 63) : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct field f[MAX_FIELDS];
    static char *args[MAX_FIELDS];
    char epoch[65] = "k9Qx2";
    const char *lei = NULL;
    size_t n;

    if (size < 1)
        return 0;
    n = fuzz_split(data + 1, size - 1, f, MAX_FIELDS);
    for (size_t i = 0; i < n; i++) {
        size_t el;
        uint64_t seq;

        args[i] = fuzz_dup(f[i].p, f[i].len, 1);
        check_parse_id(f[i].p, f[i].len);
        if (sse_parse_id(f[i].p, f[i].len, &el, &seq) == 0)
            memcpy(epoch, f[i].p, el), epoch[el] = '\0';
    }
    if (data[0] & 1)
        lei = args[--n];
    check_query(args, n, lei);
    /* each field as a frame (frames hold no line break) */
    for (size_t i = 0; i < n + (lei != NULL); i++) {
        if (memchr(f[i].p, '\n', f[i].len) || memchr(f[i].p, '\r', f[i].len))
            continue;
        check_encode(f[i].p, f[i].len, epoch, 0);
        check_encode(f[i].p, f[i].len, epoch, seq_of(f[i].p, f[i].len));
    }
    for (size_t i = 0; i < n + (lei != NULL); i++)
        free(args[i]);
    return 0;
}
