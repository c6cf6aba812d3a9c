#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "evquery.h"
#include "sse.h"
#include "utf8.h"

/* 1 to max digits. */
static bool is_digits(const char *v, size_t max)
{
    size_t n = strlen(v);

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

/* Digits, no leading zero (but "0"): a JSON integer as it stands. */
static bool is_uint(const char *v, size_t max)
{
    return is_digits(v, max) && (v[0] != '0' || v[1] == '\0');
}

/* DIGITS[.DIGITS]: a JSON number as it stands. */
static bool is_decimal(const char *v)
{
    const char *dot = strchr(v, '.');
    char whole[32];
    size_t wl = dot ? (size_t)(dot - v) : strlen(v);

    if (wl == 0 || wl >= sizeof(whole))
        return false;
    memcpy(whole, v, wl);
    whole[wl] = '\0';
    return is_uint(whole, 12) && (!dot || is_digits(dot + 1, 12));
}

static enum req_err bad(char *msg, size_t msglen, const char *what)
{
    snprintf(msg, msglen, "%s", what);
    return RQ_BAD_REQUEST;
}

/* name=value: the value when args names name, else NULL. */
static const char *arg_of(const char *arg, const char *name)
{
    size_t n = strlen(name);

    return strncmp(arg, name, n) == 0 && arg[n] == '=' ? arg + n + 1 : NULL;
}

static enum req_err since_member(struct evquery *q, const char *id,
                                 char *msg, size_t msglen)
{
    size_t el;
    uint64_t seq;

    if (sse_parse_id(id, strlen(id), &el, &seq) < 0)
        return bad(msg, msglen, "since: expected EPOCH:SEQ");
    jbuf_lit(&q->opts, ",\"since\":{\"epoch\":");
    jbuf_str(&q->opts, id, el);
    jbuf_lit(&q->opts, ",\"seq\":");
    jbuf_int(&q->opts, (int64_t)seq);
    jbuf_lit(&q->opts, "}");
    return RQ_OK;
}

enum req_err evquery_parse(struct evquery *q, const char *const *args,
                           size_t n, const char *last_event_id, char *msg,
                           size_t msglen)
{
    static const char *const single[] = {"qos", "history", "max_rate",
                                         "retained", "since"};
    bool seen[5] = {false};
    const char *since = NULL;

    memset(q, 0, sizeof(*q));
    jbuf_init(&q->opts);
    for (size_t i = 0; i < n; i++) {
        const char *v;
        size_t k;

        if ((v = arg_of(args[i], "topic"))) {
            if (q->n_topics == EVQ_TOPICS_MAX) {
                snprintf(msg, msglen, "at most %d topics in one request",
                         EVQ_TOPICS_MAX);
                return RQ_BAD_REQUEST;
            }
            if (!utf8_valid(v, strlen(v))) {
                snprintf(msg, msglen, "topic: not valid UTF-8");
                return RQ_BAD_TOPIC;
            }
            q->topic[q->n_topics] = v;
            q->topic_len[q->n_topics++] = strlen(v);
            continue;
        }
        for (k = 0; k < 5; k++)
            if ((v = arg_of(args[i], single[k])))
                break;
        if (k == 5)
            continue;
        if (seen[k]) {
            snprintf(msg, msglen, "%s: given twice", single[k]);
            return RQ_BAD_REQUEST;
        }
        seen[k] = true;
        switch (k) {
        case 0: /* qos */
        case 1: /* history */
            if (!is_uint(v, 9)) {
                snprintf(msg, msglen, "%s: expected an integer", single[k]);
                return RQ_BAD_REQUEST;
            }
            jbuf_lit(&q->opts, k == 0 ? ",\"qos\":" : ",\"history\":");
            jbuf_lit(&q->opts, v);
            break;
        case 2:
            if (!is_decimal(v))
                return bad(msg, msglen, "max_rate: expected a number");
            jbuf_lit(&q->opts, ",\"max_rate\":");
            jbuf_lit(&q->opts, v);
            break;
        case 3:
            if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
                return bad(msg, msglen, "retained: expected true or false");
            jbuf_lit(&q->opts, ",\"retained\":");
            jbuf_lit(&q->opts, v);
            break;
        default:
            since = v;
            break;
        }
    }
    if (last_event_id && *last_event_id)
        since = last_event_id;
    if (since && since_member(q, since, msg, msglen) != RQ_OK)
        return RQ_BAD_REQUEST;
    if (q->n_topics == 0)
        return bad(msg, msglen, "at least one topic is needed");
    if (q->opts.failed)
        return bad(msg, msglen, "out of memory");
    return RQ_OK;
}

void evquery_sub(const struct evquery *q, size_t i, struct jbuf *b)
{
    jbuf_lit(b, "{\"op\":\"sub\",\"topic\":");
    jbuf_str(b, q->topic[i], q->topic_len[i]);
    jbuf_raw(b, q->opts.p, q->opts.len);
    jbuf_lit(b, "}");
}

void evquery_clear(struct evquery *q)
{
    jbuf_free(&q->opts);
}
