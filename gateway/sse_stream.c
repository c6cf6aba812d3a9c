#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "conf.h"
#include "fanout.h"
#include "frame.h"
#include "handle.h"
#include "http_api.h"
#include "jbuf.h"
#include "metrics.h"
#include "request.h"
#include "sendq.h"
#include "session.h"
#include "session_int.h"
#include "sse.h"
#include "sse_stream.h"
#include "transport.h"

#define SCRATCH_SIZE (64 * 1024)   /* bytes coalesced into one write */
#define CONFLATE_SNDBUF (64 * 1024)

static char scratch[LWS_PRE + SCRATCH_SIZE];

const struct transport sse_transport = {
    "sse", http_api_want_write, http_api_closing, NULL, ws_kernel_unsent,
    http_api_auth_done,
};

/* The sub requests of the query, decoded and checked; the code of the
 * first refusal (msg says why), or NULL. */
static const char *decode_all(struct session *s, struct request *r,
                              char *msg, size_t len)
{
    const struct evquery *q = &s->http->q;
    const char *code;
    int maxq;

    if (q->n_topics > (size_t)conf()->limits.max_subscriptions) {
        snprintf(msg, len, "at most %ld subscriptions",
                 conf()->limits.max_subscriptions);
        return "limit_exceeded";
    }
    for (size_t i = 0; i < q->n_topics; i++) {
        struct jbuf b;
        enum req_err e;

        jbuf_init(&b);
        evquery_sub(q, i, &b);
        if (b.failed) {
            jbuf_free(&b);
            snprintf(msg, len, "out of memory");
            return "internal";
        }
        e = request_decode(b.p, b.len, &r[i], msg, len);
        jbuf_free(&b);
        if (e != RQ_OK)
            return request_err_code(e);
        if ((code = handle_sub_check(s, &r[i], msg, len, &maxq)))
            return code;
    }
    return NULL;
}

static int headers(struct lws *wsi, const char *origin)
{
    unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof(buf);

    http_api_count(wsi, 200);
    if (lws_add_http_common_headers(wsi, 200, "text/event-stream",
                                    LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
        lws_add_http_header_by_name(wsi,
                                    (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p,
                                    end) ||
        lws_add_http_header_by_name(
            wsi, (const unsigned char *)"x-accel-buffering:",
            (const unsigned char *)"no", 2, &p, end) ||
        http_api_cors(wsi, origin, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    /* from here the connection is the stream's, without a timeout (lws'
     * lws_http_mark_sse() is for HTTP/2 streams; listeners speak 1.1) */
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    return 0;
}

int sse_start(struct lws *wsi, struct session *s)
{
    size_t n = s->http->q.n_topics;
    struct request *r = calloc(n, sizeof(*r));
    char msg[256], origin[sizeof(s->http->origin)];
    const char *code;

    memcpy(origin, s->http->origin, sizeof(origin));
    if (!r) {
        http_api_finish(s);
        return -1;
    }
    if ((code = decode_all(s, r, msg, sizeof(msg)))) {
        for (size_t i = 0; i < n; i++)
            request_clear(&r[i]);
        free(r);
        http_api_finish(s);
        return http_api_refuse(wsi, origin, 0, code, "%s", msg);
    }
    if (headers(wsi, origin) < 0) {
        for (size_t i = 0; i < n; i++)
            request_clear(&r[i]);
        free(r);
        return -1;
    }
    if (conf()->limits.slow_consumer == SLOW_CONFLATE) {
        int sndbuf = CONFLATE_SNDBUF;

        setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &sndbuf,
                   sizeof(sndbuf));
    }
    s->http->phase = HP_RUNNING;
    auth_send_hello(s);
    session_send_status(s, session_broker_up());
    for (size_t i = 0; i < n; i++) {
        handle_sub(s, &r[i]);
        request_clear(&r[i]);
    }
    free(r);
    return 0;
}

/* The close event: {"op":"close","code":C,"reason":R}. */
static size_t close_event(struct session *s, char *out, size_t cap)
{
    struct jbuf b;
    size_t n = 0;

    jbuf_init(&b);
    jbuf_lit(&b, "{\"op\":\"close\",\"code\":");
    jbuf_int(&b, s->close_code);
    jbuf_lit(&b, ",\"reason\":");
    jbuf_str(&b, s->close_reason, strlen(s->close_reason));
    jbuf_lit(&b, "}");
    if (!b.failed) {
        n = sse_encoded_len(b.p, b.len, "", 0);
        if (n <= cap)
            sse_encode(b.p, b.len, "", 0, out);
        else
            n = 0;
    }
    jbuf_free(&b);
    return n;
}

int sse_writable(struct lws *wsi, struct session *s)
{
    char *out = scratch + LWS_PRE;
    size_t n = 0;

    if (s->http->close_sent)
        return -1; /* the close event is out: the stream ends */
    if (!s->q.count && s->replays)
        session_replay_feed(s); /* its budget ran out last time */
    if (s->ping_due) {
        s->ping_due = false;
        memcpy(out, ": ping\n\n", 8);
        n = 8;
    }
    while (s->q.count) {
        struct frame *f = sendq_peek(&s->q);
        size_t len;
        const char *ev = frame_sse(f, fanout_epoch(), &len);

        if (!ev) {
            session_close(s, 1011, "out of memory");
            break;
        }
        if (n + len > SCRATCH_SIZE) {
            if (n)
                break;
            /* too big to coalesce: written from its own buffer (what the
             * socket does not take, libwebsockets keeps) */
            n = len;
            if (lws_write(wsi, (unsigned char *)ev, len, LWS_WRITE_HTTP) < 0)
                return -1;
            frame_unref(sendq_pop(&s->q));
            goto written;
        }
        memcpy(out + n, ev, len);
        n += len;
        frame_unref(sendq_pop(&s->q));
    }
    if (!s->q.count && s->close_code) {
        size_t c = close_event(s, out + n, SCRATCH_SIZE - n);

        if (c || n == 0) {
            n += c;
            s->http->close_sent = true;
        }
    }
    if (n && lws_write(wsi, (unsigned char *)out, n, LWS_WRITE_HTTP) < 0)
        return -1;
written:
    session_wrote(s, n);
    if (s->q.count || s->close_code)
        lws_callback_on_writable(wsi);
    else
        sendq_trim(&s->q);
    return 0;
}
