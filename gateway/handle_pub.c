/* pub (protocol.md § pub): the ACL, the rate, the mount, and the answer
 * once the message is safe. */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "clock.h"
#include "conf.h"
#include "gateway.h"
#include "handle.h"
#include "metrics.h"
#include "request.h"
#include "session.h"
#include "session_int.h"
#include "tbucket.h"
#include "upstream.h"

/* A publish waiting for the broker's PUBACK/PUBCOMP. Owned by the upstream
 * request until MB_PUBDONE; s is cleared when the session goes first. */
struct pub_ctx {
    struct pub_ctx *prev, *next;
    struct session *s;
    size_t id_len;
    char id[];
};

/* QoS 1/2 publishes not yet acknowledged. */
static long pending;

long handle_pub_pending(void)
{
    return pending;
}

void handle_pub(struct session *s, const struct request *r)
{
    char roles[128], *buf;
    const char *full;
    size_t full_len;
    struct pub_ctx *ctx = NULL;
    int maxq = acl_publish_qos(s->roles, s->n_roles, s->user, r->topic,
                               r->topic_len);
    int qos, rc;

    if (maxq < 0) {
        handle_error(s, r->id, r->id_len, "forbidden",
                  "role %s may not publish to %.*s",
                  handle_role_names(s, roles, sizeof(roles)),
                  (int)(r->topic_len > 128 ? 128 : r->topic_len), r->topic);
        return;
    }
    if (!tbucket_take(&s->bucket, conf()->limits.publish_rate,
                      conf()->limits.publish_burst, clock_now_ms())) {
        handle_error(s, r->id, r->id_len, "rate_limited",
                  "more than %ld publishes a second",
                  conf()->limits.publish_rate);
        return;
    }
    if (!(full = handle_mounted(s, r->topic, r->topic_len, &buf, &full_len))) {
        handle_error(s, r->id, r->id_len, "bad_topic",
                  "the mount and the topic together are too long");
        return;
    }
    qos = r->qos < maxq ? r->qos : maxq;
    if (qos > 0) {
        if (!(ctx = malloc(sizeof(*ctx) + r->id_len))) {
            session_reply_error(s, r->id, r->id_len, "internal",
                                "out of memory");
            goto out;
        }
        ctx->s = s;
        pending++;
        ctx->id_len = r->id_len;
        memcpy(ctx->id, r->id, r->id_len);
    }
    rc = upstream_publish(upstream_get(), full, r->payload, r->payload_len, qos,
                          r->retain, ctx);
    metrics_add(MC_PUBS, 1);
    if (rc < 0) {
        if (ctx)
            pending--;
        free(ctx);
        metrics_add(MC_PUB_ERRORS, 1);
        session_reply_error(s, r->id, r->id_len, "broker_unavailable",
                            rc == MQG_EFULL
                                ? "the broker is away and its buffer is full"
                                : "the broker is not reachable");
        goto out;
    }
    if (ctx) {
        ctx->prev = NULL;
        ctx->next = s->pubs;
        if (s->pubs)
            s->pubs->prev = ctx;
        s->pubs = ctx;
    } else if (r->id_len) {
        session_reply_ok(s, r->id, r->id_len);
    }
out:
    free(buf);
}

void handle_pub_done(void *ctxp, int code)
{
    struct pub_ctx *ctx = ctxp;
    struct session *s = ctx->s;

    pending--;
    if (s) {
        if (ctx->prev)
            ctx->prev->next = ctx->next;
        else
            s->pubs = ctx->next;
        if (ctx->next)
            ctx->next->prev = ctx->prev;
        if (code == MQG_OK) {
            if (ctx->id_len)
                session_reply_ok(s, ctx->id, ctx->id_len);
        } else {
            metrics_add(MC_PUB_ERRORS, 1);
            if (code == MQG_EREFUSED)
                session_reply_error(s, ctx->id, ctx->id_len,
                                    "broker_rejected",
                                    "the broker refused the message");
            else
                session_reply_error(s, ctx->id, ctx->id_len,
                                    "broker_unavailable",
                                    "the broker connection was lost before "
                                    "it acknowledged the message");
        }
    }
    free(ctx);
}

void handle_pub_disown(struct session *s)
{
    for (struct pub_ctx *p = s->pubs; p; p = p->next)
        p->s = NULL;
    s->pubs = NULL;
}
