/* pub (protocol.md § pub): the ACL, the rate, the mount, MQTT 5
 * properties, and the answer once the message is safe. The publish of a
 * request (handle_request_op.c) goes through the same checks. */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "clock.h"
#include "conf.h"
#include "gateway.h"
#include "handle.h"
#include "metrics.h"
#include "props.h"
#include "request.h"
#include "requests.h"
#include "session.h"
#include "session_int.h"
#include "tbucket.h"
#include "upstream.h"

/* A publish waiting for the broker's PUBACK/PUBCOMP. Owned by the upstream
 * request until MB_PUBDONE; s is cleared when the session goes first. */
struct pub_ctx {
    struct pub_ctx *prev, *next;
    struct session *s;
    uint64_t req_key;           /* a request's publish (requests.h); 0: a pub */
    size_t id_len;
    char id[];
};

/* QoS 1/2 publishes not yet acknowledged. */
static long pending;

long handle_pub_pending(void)
{
    return pending;
}

int handle_publish(struct session *s, const struct request *r,
                   const uint8_t *props, size_t props_len, uint64_t req_key)
{
    char roles[128], *buf;
    const char *full;
    size_t full_len;
    struct pub_ctx *ctx = NULL;
    struct upstream_msg msg;
    int maxq = acl_publish_qos(s->roles, s->n_roles, s->user, r->topic,
                               r->topic_len);
    int rc, ret = -1;

    if (maxq < 0) {
        handle_error(s, r->id, r->id_len, "forbidden",
                  "role %s may not publish to %.*s",
                  handle_role_names(s, roles, sizeof(roles)),
                  (int)(r->topic_len > 128 ? 128 : r->topic_len), r->topic);
        return -1;
    }
    if (!tbucket_take(&s->bucket, conf()->limits.publish_rate,
                      conf()->limits.publish_burst, clock_now_ms())) {
        handle_error(s, r->id, r->id_len, "rate_limited",
                  "more than %ld publishes a second",
                  conf()->limits.publish_rate);
        return -1;
    }
    if (!(full = handle_mounted(s, r->topic, r->topic_len, &buf, &full_len))) {
        handle_error(s, r->id, r->id_len, "bad_topic",
                  "the mount and the topic together are too long");
        return -1;
    }
    msg = (struct upstream_msg){
        .payload = r->payload, .len = r->payload_len,
        .qos = r->qos < maxq ? r->qos : maxq, .retain = r->retain,
        .props = props, .props_len = props_len};
    if (msg.qos > 0) {
        if (!(ctx = malloc(sizeof(*ctx) + r->id_len))) {
            session_reply_error(s, r->id, r->id_len, "internal",
                                "out of memory");
            goto out;
        }
        ctx->s = s;
        ctx->req_key = req_key;
        pending++;
        ctx->id_len = r->id_len;
        memcpy(ctx->id, r->id, r->id_len);
    }
    rc = upstream_publish(upstream_get(), full, &msg, ctx);
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
    ret = 0;
    if (ctx) {
        ctx->prev = NULL;
        ctx->next = s->pubs;
        if (s->pubs)
            s->pubs->prev = ctx;
        s->pubs = ctx;
    } else if (r->id_len && !req_key) {
        session_reply_ok(s, r->id, r->id_len);
    }
out:
    free(buf);
    return ret;
}

void handle_pub(struct session *s, const struct request *r)
{
    char roles[128], *buf = NULL;
    const char *rt;
    size_t rt_len;
    uint8_t *props = r->props;
    size_t props_len = r->props_len;
    struct props_item it = {.kind = PROPS_RESPONSE_TOPIC};

    if (r->has_props && upstream_version(upstream_get()) != 5) {
        handle_error(s, r->id, r->id_len, "bad_request",
                     "props: the broker connection is MQTT 3.1.1");
        return;
    }
    if (r->response_topic) {
        /* where the answers go: a topic the session may receive */
        if (acl_subscribe_qos(s->roles, s->n_roles, s->user,
                              r->response_topic,
                              r->response_topic_len) < 0) {
            handle_error(s, r->id, r->id_len, "forbidden",
                         "role %s may not subscribe to the response topic "
                         "%.*s",
                         handle_role_names(s, roles, sizeof(roles)),
                         (int)(r->response_topic_len > 128
                                   ? 128 : r->response_topic_len),
                         r->response_topic);
            return;
        }
        if (!(rt = handle_mounted(s, r->response_topic,
                                  r->response_topic_len, &buf, &rt_len))) {
            handle_error(s, r->id, r->id_len, "bad_topic",
                         "the mount and the response topic together are "
                         "too long");
            return;
        }
        it.a = rt;
        it.a_len = rt_len;
        /* the records of props, then the mounted response topic */
        props = NULL;
        props_len = 0;
        if (r->props_len) {
            if (!(props = malloc(r->props_len)))
                goto oom;
            memcpy(props, r->props, r->props_len);
            props_len = r->props_len;
        }
        if (props_append(&props, &props_len, &it) < 0)
            goto oom;
    }
    handle_publish(s, r, props, props_len, 0);
    goto out;
oom:
    session_reply_error(s, r->id, r->id_len, "internal", "out of memory");
out:
    if (props != r->props)
        free(props);
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
        if (ctx->req_key) {
            /* a request's publish: its answer is the response */
            if (code != MQG_OK)
                requests_publish_failed(ctx->req_key, code);
        } else if (code == MQG_OK) {
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
