/* sub and unsub (protocol.md § sub, § unsub): the ACL, the mount and the
 * subscription limit here; the registry (subs.c) holds the filters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "conf.h"
#include "gateway.h"
#include "handle.h"
#include "request.h"
#include "subs.h"
#include "session.h"
#include "session_int.h"
#include "stream.h"
#include "topic.h"

const char *handle_sub_check(struct session *s, const struct request *r,
                             char *msg, size_t len, int *maxq)
{
    char roles[128];

    *maxq = acl_subscribe_qos(s->roles, s->n_roles, s->user, r->topic,
                              r->topic_len);
    if (*maxq < 0) {
        snprintf(msg, len, "role %s may not subscribe to %.*s",
                 handle_role_names(s, roles, sizeof(roles)),
                 (int)(r->topic_len > 128 ? 128 : r->topic_len), r->topic);
        return "forbidden";
    }
    /* with history configured, no more than it keeps (config.md); without,
     * any (protocol.md: replayed 0) */
    if (stream_enabled() && r->history > stream_max_messages()) {
        snprintf(msg, len, "history: at most %ld here", stream_max_messages());
        return "bad_request";
    }
    if (s->mount_len + r->topic_len > TOPIC_MAX_LEN) {
        snprintf(msg, len, "the mount and the filter together are too long");
        return "bad_topic";
    }
    return NULL;
}

void handle_sub(struct session *s, const struct request *r)
{
    char msg[256], *buf;
    const char *full, *code;
    size_t full_len;
    struct subs_opts o;
    int maxq;

    if ((code = handle_sub_check(s, r, msg, sizeof(msg), &maxq))) {
        handle_error(s, r->id, r->id_len, code, "%s", msg);
        return;
    }
    memset(&o, 0, sizeof(o));
    o.history = (uint32_t)r->history;
    o.has_since = r->has_since;
    o.since_seq = r->since_seq;
    if (r->has_since)
        memcpy(o.since_epoch, r->since_epoch, r->since_epoch_len);
    o.retained = r->retained;
    o.max_rate = r->max_rate;
    if (s->http) {
        /* an SSE stream's ok names its topic (protocol.md, HTTP API) */
        o.ok_topic = r->topic;
        o.ok_topic_len = r->topic_len;
    }
    if (!(full = handle_mounted(s, r->topic, r->topic_len, &buf, &full_len))) {
        handle_error(s, r->id, r->id_len, "internal", "out of memory");
        return;
    }
    if (!subs_session_holds(s, full, full_len) &&
        session_holds(s)->n >= (size_t)conf()->limits.max_subscriptions) {
        handle_error(s, r->id, r->id_len, "limit_exceeded",
                  "at most %ld subscriptions",
                  conf()->limits.max_subscriptions);
    } else {
        subs_subscribe(s, full, full_len, r->qos < maxq ? r->qos : maxq,
                       r->id, r->id_len, &o);
    }
    free(buf);
}

void handle_unsub(struct session *s, const struct request *r)
{
    char *buf;
    size_t full_len;
    const char *full = handle_mounted(s, r->topic, r->topic_len, &buf, &full_len);

    if (full)
        subs_unsubscribe(s, full, full_len);
    if (r->id_len)
        session_reply_ok(s, r->id, r->id_len);
    free(buf);
}

