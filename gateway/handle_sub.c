/* sub and unsub (protocol.md § sub, § unsub): the ACL, the mount and the
 * subscription limit here; the registry (subs.c) holds the filters. */
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

void handle_sub(struct session *s, const struct request *r)
{
    char roles[128], *buf;
    const char *full;
    size_t full_len;
    struct subs_opts o;
    int maxq = acl_subscribe_qos(s->roles, s->n_roles, s->user, r->topic,
                                 r->topic_len);

    if (maxq < 0) {
        handle_error(s, r->id, r->id_len, "forbidden",
                     "role %s may not subscribe to %.*s",
                     handle_role_names(s, roles, sizeof(roles)),
                     (int)(r->topic_len > 128 ? 128 : r->topic_len),
                     r->topic);
        return;
    }
    /* with history configured, no more than it keeps (config.md); without,
     * any (protocol.md: replayed 0) */
    if (stream_enabled() && r->history > stream_max_messages()) {
        handle_error(s, r->id, r->id_len, "bad_request",
                     "history: at most %ld here", stream_max_messages());
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
    if (!(full = handle_mounted(s, r->topic, r->topic_len, &buf, &full_len))) {
        handle_error(s, r->id, r->id_len, "bad_topic",
                  "the mount and the filter together are too long");
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

