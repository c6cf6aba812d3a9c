#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fanout.h"
#include "history.h"
#include "log.h"
#include "mailbox.h"
#include "stream.h"
#include "subs.h"
#include "topic.h"

static struct {
    struct history *h;            /* NULL: no history configured */
    long messages;
    uint64_t last_seq;            /* of the last message stored */
    uint64_t recoveries, recoveries_failed;
} ST;

int stream_init(const struct config *cfg)
{
    const struct cfg_history *hc = cfg->history;
    struct history_limits lim;

    if (!hc)
        return 0;
    lim.messages = (uint32_t)hc->messages;
    lim.max_age_s = (uint32_t)hc->max_age_s;
    lim.max_bytes = (size_t)hc->max_bytes;
    if (!(ST.h = history_new(&lim))) {
        log_error("history: cannot create the store");
        return -1;
    }
    ST.messages = hc->messages;
    for (size_t i = 0; i < hc->n_filters; i++)
        if (subs_pin(hc->filters[i], strlen(hc->filters[i]), hc->qos) < 0) {
            log_error("history: out of memory");
            return -1;
        }
    log_info("history: %zu filters, %ld messages per topic, %ld s, %ld bytes",
             hc->n_filters, hc->messages, hc->max_age_s, hc->max_bytes);
    return 0;
}

void stream_destroy(void)
{
    history_free(ST.h);
    memset(&ST, 0, sizeof(ST));
}

bool stream_enabled(void)
{
    return ST.h != NULL;
}

long stream_max_messages(void)
{
    return ST.messages;
}

void stream_store(const struct mb_event *ev, uint64_t seq, bool retained)
{
    struct history_in m;
    int rc;

    if (!ST.h || seq <= ST.last_seq)
        return;
    ST.last_seq = seq;
    memset(&m, 0, sizeof(m));
    m.topic = ev->topic;
    m.topic_len = ev->topic_len;
    m.payload = ev->payload;
    m.len = ev->payload_len;
    m.meta = ev->props;
    m.meta_len = ev->props_len;
    m.seq = seq;
    m.ts_ms = ev->ts_ms;
    m.qos = ev->qos;
    m.retained = retained;
    if ((rc = history_add(ST.h, &m)) < 0 && rc != -ENOMEM)
        log_warn("history: message of %s not kept (%d)", ev->topic, rc);
}

void stream_broker_lost(void)
{
    if (ST.h)
        history_gap(ST.h, fanout_seq());
}

void stream_tick(void)
{
    if (ST.h)
        history_expire(ST.h, clock_wall_ms());
}

bool stream_holds(const char *topic, size_t len)
{
    return ST.h && history_holds(ST.h, topic, len);
}

int stream_replay(const char *full, size_t len, const struct subs_opts *o,
                  struct history_cursor **c, bool *recovered)
{
    size_t share = topic_share_prefix(full, len);
    struct history_query q;
    uint64_t now = clock_wall_ms();
    int rc;

    *c = NULL;
    *recovered = false;
    if (o->has_since)
        ST.recoveries++;
    if (!ST.h) {
        ST.recoveries_failed += o->has_since;
        return 0;
    }
    /* a shared subscription's messages are its filter's */
    memset(&q, 0, sizeof(q));
    q.filter = full + share;
    q.filter_len = len - share;
    q.limit = fanout_seq();
    history_expire(ST.h, now);
    if (o->has_since && strcmp(o->since_epoch, fanout_epoch()) == 0) {
        q.after = o->since_seq;
        *recovered = history_recoverable(ST.h, &q, now);
    }
    if (o->has_since && !*recovered)
        ST.recoveries_failed++;
    if (!*recovered) {
        if (!o->history)
            return 0;
        q.after = 0;
        q.per_topic = o->history;
    } else if (o->max_rate > 0) {
        /* a rate-limited view recovers the current state of each topic */
        q.per_topic = 1;
    }
    rc = history_cursor_new(ST.h, &q, now, c);
    if (rc == -ENOMEM)
        return -1;
    if (rc < 0)
        *c = NULL;
    return 0;
}

void stream_stats(struct stream_stats *st)
{
    struct history_stats hs;

    memset(st, 0, sizeof(*st));
    st->recoveries = ST.recoveries;
    st->recoveries_failed = ST.recoveries_failed;
    if (!ST.h)
        return;
    history_stats(ST.h, &hs);
    st->topics = hs.topics;
    st->messages = hs.messages;
    st->bytes = hs.bytes;
    st->dropped_age = hs.dropped_age;
    st->dropped_count = hs.dropped_count;
    st->dropped_size = hs.dropped_size;
}
