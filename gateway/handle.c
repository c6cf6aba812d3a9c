#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "clock.h"
#include "conf.h"
#include "gateway.h"
#include "handle.h"
#include "jbuf.h"
#include "metrics.h"
#include "reply.h"
#include "request.h"
#include "session.h"
#include "session_int.h"
#include "tbucket.h"
#include "topic.h"

#define ERROR_WINDOW_MS 10000

void handle_error(struct session *s, const char *id, size_t id_len,
                  const char *code, const char *fmt, ...)
{
    uint64_t now = clock_now_ms();
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    session_reply_error(s, id, id_len, code, "%s", msg);
    if (now - s->err_window_ms >= ERROR_WINDOW_MS) {
        s->err_window_ms = now;
        s->err_count = 0;
    }
    if (++s->err_count > (uint32_t)conf()->limits.max_errors) {
        metrics_add(MC_ERROR_CLOSES, 1);
        session_close(s, 4429, "too many errors");
    }
}

const char *handle_mounted(const struct session *s, const char *t,
                           size_t len, char **buf, size_t *out_len)
{
    *buf = NULL;
    *out_len = s->mount_len + len;
    if (!s->mount_len)
        return t;
    if (*out_len > TOPIC_MAX_LEN || !(*buf = malloc(*out_len + 1)))
        return NULL;
    /* a shared subscription keeps "$share/NAME/" in front of the mount */
    topic_mount(s->mount, s->mount_len, t, len, *buf);
    (*buf)[*out_len] = '\0';
    return *buf;
}

const char *handle_role_names(const struct session *s, char *buf,
                              size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < s->n_roles && o + 1 < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "," : "",
                              s->roles[i]->name);
    if (!s->n_roles)
        snprintf(buf, len, "(none)");
    return buf;
}

void handle_request(struct session *s, const char *buf, size_t len)
{
    struct request r;
    char msg[256];
    enum req_err e = request_decode(buf, len, &r, msg, sizeof(msg));

    if (e != RQ_OK) {
        handle_error(s, r.id, r.id_len, request_err_code(e), "%s", msg);
        goto out;
    }
    if (r.op == OP_PING) {
        handle_ping(s, &r);
        goto out;
    }
    if (r.op == OP_AUTH) {
        auth_request(s, &r);
        goto out;
    }
    if (s->state != SS_AUTHED) {
        handle_error(s, r.id, r.id_len, "unauthenticated",
                     "authenticate first");
        goto out;
    }
    /* each may make an upstream SUBSCRIBE and a retained replay */
    if ((r.op == OP_SUB || r.op == OP_UNSUB) &&
        !tbucket_take(&s->sub_bucket, conf()->limits.subscribe_rate,
                      conf()->limits.subscribe_burst, clock_now_ms())) {
        handle_error(s, r.id, r.id_len, "rate_limited",
                     "more than %ld subscription requests a second",
                     conf()->limits.subscribe_rate);
        goto out;
    }
    switch (r.op) {
    case OP_SUB:
        handle_sub(s, &r);
        break;
    case OP_UNSUB:
        handle_unsub(s, &r);
        break;
    case OP_PUB:
        handle_pub(s, &r);
        break;
    case OP_REQUEST:
        handle_request_op(s, &r);
        break;
    default:
        break;
    }
out:
    request_clear(&r);
}

