#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "clock.h"
#include "conf.h"
#include "frame.h"
#include "handle.h"
#include "http_api.h"
#include "http_pub.h"
#include "http_status.h"
#include "jbuf.h"
#include "jscan.h"
#include "ratetab.h"
#include "reply.h"
#include "request.h"
#include "sendq.h"
#include "session.h"
#include "session_int.h"
#include "transport.h"

/* The publish rate of requests, by user or client address. */
static struct ratetab *rates;

int http_pub_init(void)
{
    return (rates = ratetab_new(NULL)) ? 0 : -1;
}

void http_pub_destroy(void)
{
    ratetab_free(rates);
    rates = NULL;
}

const struct transport http_pub_transport = {
    "http", http_api_want_write, http_api_closing, NULL, ws_kernel_unsent,
    http_api_auth_done,
};

/* Keeps answer i (a JSON object of len bytes) unless one is in. */
static void answer(struct http_conn *h, size_t i, const char *json,
                   size_t len)
{
    char *a;

    if (i >= h->n_items || h->answers[i] || !(a = malloc(len + 1)))
        return;
    memcpy(a, json, len);
    a[len] = '\0';
    h->answers[i] = a;
    h->n_answered++;
}

static void answer_error(struct http_conn *h, size_t i, const char *code,
                         const char *msg)
{
    struct jbuf b;

    jbuf_init(&b);
    reply_error(&b, NULL, 0, code, msg, strlen(msg));
    if (!b.failed)
        answer(h, i, b.p, b.len);
    jbuf_free(&b);
}

/* Item i of the body, the object whose '{' is at body[at]: published
 * through the pub handler as the request {"op":"pub","id":I,...} with
 * the item's members as written (a payload's numbers stay as the client
 * wrote them), an op and id of the item's own left out. */
static void publish_one(struct session *s, const char *body, size_t n,
                        size_t at, size_t i)
{
    char msg[256];
    struct request r;
    struct jscan j;
    struct jscan_item it;
    struct jbuf b;
    enum req_err e;

    if (!jscan_open(&j, body, n, at) || !j.object) {
        answer_error(s->http, i, "bad_request", "expected a pub object");
        return;
    }
    jbuf_init(&b);
    jbuf_lit(&b, "{\"op\":\"pub\",\"id\":");
    jbuf_int(&b, (int64_t)i);
    while (jscan_next(&j, &it)) {
        if (!it.has_value || jscan_key_eq(body + it.key, it.key_len, "op", 2) ||
            jscan_key_eq(body + it.key, it.key_len, "id", 2))
            continue;
        jbuf_lit(&b, ",");
        /* from the key's opening quote to the end of its value */
        jbuf_raw(&b, body + it.key - 1, it.val_end - (it.key - 1));
    }
    jbuf_lit(&b, "}");
    if (b.failed) {
        jbuf_free(&b);
        answer_error(s->http, i, "internal", "out of memory");
        return;
    }
    e = request_decode(b.p, b.len, &r, msg, sizeof(msg));
    jbuf_free(&b);
    if (e != RQ_OK)
        answer_error(s->http, i, request_err_code(e), msg);
    else
        handle_pub(s, &r);
    request_clear(&r);
    /* each item is a request of its own: none closes the others' session */
    s->err_count = 0;
}

int http_pub_run(struct lws *wsi, struct session *s)
{
    struct http_conn *h = s->http;
    const char *key = s->anonymous ? s->ip : s->user;
    const struct config *cfg = conf();
    struct tbucket *tb;
    json_error_t jerr;
    json_t *root;
    size_t n;

    h->phase = HP_RUNNING;
    root = json_loadb(h->body ? h->body : "", h->body_len,
                      JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char origin[sizeof(h->origin)];

        memcpy(origin, h->origin, sizeof(origin));
        http_api_finish(s);
        return http_api_refuse(wsi, origin, 400, "bad_json", "%s", jerr.text);
    }
    h->array = json_is_array(root);
    n = h->array ? json_array_size(root) : 1;
    if (!(h->answers = calloc(n ? n : 1, sizeof(*h->answers)))) {
        json_decref(root);
        return -1;
    }
    h->n_items = n;
    /* the rate is the user's across requests */
    tb = ratetab_get(rates, key, strlen(key), cfg->limits.publish_rate,
                     cfg->limits.publish_burst, clock_now_ms());
    if (tb)
        s->bucket = *tb;
    /* jansson checked the text (and refused duplicate keys); the items
     * are taken from it as written */
    if (h->array) {
        struct jscan j;
        struct jscan_item it;

        jscan_open(&j, h->body, h->body_len, 0);
        while (!s->close_code && jscan_next(&j, &it) && it.index < n)
            publish_one(s, h->body, h->body_len, it.val, it.index);
    } else {
        publish_one(s, h->body, h->body_len, 0, 0);
    }
    if ((tb = ratetab_get(rates, key, strlen(key), cfg->limits.publish_rate,
                          cfg->limits.publish_burst, clock_now_ms())))
        *tb = s->bucket;
    json_decref(root);
    lws_callback_on_writable(wsi);
    return 0;
}

/* A reply of the pub handler, {"op":OP,"id":N...}: N, and the reply
 * without its id into h. */
static void collect(struct http_conn *h, const char *p, size_t len)
{
    static const char *const heads[] = {"{\"op\":\"ok\"", "{\"op\":\"error\""};

    for (size_t k = 0; k < 2; k++) {
        size_t hl = strlen(heads[k]), o = hl + 6, i = 0, d = 0;
        char *a;

        if (len < o || memcmp(p, heads[k], hl) != 0 ||
            memcmp(p + hl, ",\"id\":", 6) != 0)
            continue;
        while (o + d < len && p[o + d] >= '0' && p[o + d] <= '9' && d < 12)
            i = i * 10 + (size_t)(p[o + d++] - '0');
        if (!d || i >= h->n_items || h->answers[i] ||
            !(a = malloc(len - 6 - d + 1)))
            return;
        memcpy(a, p, hl);
        memcpy(a + hl, p + o + d, len - o - d);
        a[len - 6 - d] = '\0';
        h->answers[i] = a;
        h->n_answered++;
        return;
    }
}

/* The whole answer: the one object's, or the array. */
static int respond(struct lws *wsi, struct session *s)
{
    struct http_conn *h = s->http;
    char origin[sizeof(h->origin)];
    unsigned status = 200;
    struct jbuf b;
    int rc;

    jbuf_init(&b);
    if (h->array)
        jbuf_lit(&b, "[");
    for (size_t i = 0; i < h->n_items; i++) {
        if (i)
            jbuf_lit(&b, ",");
        jbuf_lit(&b, h->answers[i]);
    }
    if (h->array) {
        jbuf_lit(&b, "]");
    } else {
        json_t *o = json_loads(h->answers[0], 0, NULL);
        const char *code = json_string_value(json_object_get(o, "code"));

        status = code ? http_status_of(code) : 200;
        json_decref(o);
    }
    memcpy(origin, h->origin, sizeof(origin));
    http_api_finish(s);
    rc = b.failed ? -1 : http_api_respond(wsi, origin, status, b.p, b.len);
    jbuf_free(&b);
    return rc;
}

int http_pub_writable(struct lws *wsi, struct session *s)
{
    struct http_conn *h = s->http;

    s->ping_due = false;
    while (s->q.count) {
        struct frame *f = sendq_pop(&s->q);

        collect(h, (const char *)f->payload, f->payload_len);
        frame_unref(f);
    }
    if (s->close_code)
        /* shutting down, or out of memory: what is not answered now
         * never will be */
        for (size_t i = 0; i < h->n_items; i++)
            if (!h->answers[i])
                answer_error(h, i, "broker_unavailable", s->close_reason);
    if (h->n_answered < h->n_items)
        return 0;
    return respond(wsi, s);
}
