/* The stream history: per topic the newest messages of the gateway's
 * history filters, bounded by count per topic, by age and by bytes for all
 * topics together, with what was dropped remembered so that a recovery
 * "since seq S" can tell whether it is complete. Pure: no I/O, no clock (the
 * caller passes the time), no locks: service thread only.
 *
 * Messages come in increasing seq (assigned by the caller, gaps allowed);
 * each is one allocation holding its header, payload and metadata, shared by
 * reference count with the cursors and whoever holds it. Ages are judged in
 * arrival order: the oldest message is dropped first, so with ts_ms not
 * decreasing (a clock that steps back breaks that) no message older than
 * max_age_s stays.
 *
 * Sizes: a stored message costs HISTORY_MSG_COST plus its topic, payload
 * and metadata bytes against max_bytes; in memory it takes a 32-byte header
 * (4 bytes more with metadata), malloc's header and rounding and an 8-byte
 * ring slot beyond the payload and metadata: 57 bytes on average
 * (docs/benchmarks.md). T below is the number of topics held, M the number
 * a query matches. */
#ifndef MQG_HISTORY_H
#define MQG_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HISTORY_MESSAGES_MAX 100000
/* What one message costs against max_bytes beyond its topic, payload and
 * metadata bytes. */
#define HISTORY_MSG_COST 48
/* ts_ms is kept in 48 bits (until the year 10889). */
#define HISTORY_TS_MAX ((UINT64_C(1) << 48) - 1)

struct history;
struct history_msg;
struct history_cursor;

struct history_limits {
    uint32_t messages;  /* kept per topic: 1..HISTORY_MESSAGES_MAX */
    uint32_t max_age_s; /* at least 1 */
    size_t max_bytes;   /* at least 1: all topics together */
};

/* A message to add; everything is copied. */
struct history_in {
    const char *topic;  /* a topic name, 1..65535 bytes, not NUL-terminated */
    size_t topic_len;
    const void *payload;
    size_t len;
    const void *meta;   /* opaque (MQTT 5 properties); NULL when meta_len 0 */
    size_t meta_len;
    uint64_t seq;       /* >= 1, greater than at any earlier history_add */
    uint64_t ts_ms;     /* when it arrived, <= HISTORY_TS_MAX */
    int qos;            /* 0..2 */
    bool retained;      /* a retained message the broker replayed */
};

/* What a message holds; the pointers live as long as the message. */
struct history_view {
    const char *topic;
    size_t topic_len;
    const void *payload; /* not NUL-terminated */
    size_t len;
    const void *meta;    /* NULL when the message has none */
    size_t meta_len;
    uint64_t seq, ts_ms;
    int qos;
    bool retained;
};

struct history_stats {
    size_t topics, messages;
    size_t bytes;       /* counted against max_bytes */
    uint64_t dropped_age, dropped_count, dropped_size;
    uint64_t retained_dups; /* replayed retained messages not kept */
};

/* A replay: messages of the topics that filter matches, in increasing seq
 * across topics. The three the gateway uses:
 *   since S:                  { after = S, per_topic = 0 }
 *   the newest N of each:     { after = 0, per_topic = N }
 *   the newest of each:       { after = 0, per_topic = 1 } (max_rate) */
struct history_query {
    const char *filter; /* a valid topic filter (topic.h), the mount added */
    size_t filter_len;
    uint64_t after;     /* only messages with seq > after */
    uint32_t per_topic; /* at most the newest per_topic of each topic; 0: all */
    uint64_t limit;     /* only messages with seq <= limit: the stream position
                           when the replay starts (later ones go live) */
};

/* A new empty store, or NULL when out of memory or lim is out of range. */
struct history *history_new(const struct history_limits *lim);

/* Drops the store's references. Cursors and messages held elsewhere stay
 * valid and are freed by their holders (a cursor still gives all it was
 * going to). h may be NULL. */
void history_free(struct history *h);

/* Changes the limits (a reload) and applies them at now_ms: topics over the
 * new count lose their oldest messages. Returns 0, or -EINVAL (lim out of
 * range, nothing changes). O(T) plus the messages dropped. */
int history_set_limits(struct history *h, const struct history_limits *lim,
                       uint64_t now_ms);

/* Stores a copy of m, first dropping what is older than max_age_s at
 * m->ts_ms, then the topic's oldest beyond `messages`, then the oldest of
 * all topics beyond max_bytes. A retained m is not kept when its payload
 * and metadata equal those of the topic's newest stored message. An m that
 * alone costs more than max_bytes is not kept and counts as dropped by
 * size. Returns 1 when stored, 0 when not kept, -EINVAL for a bad m
 * (nothing changes), -ENOMEM (m counts as dropped: recovery over it fails).
 * O(topic length + log T) amortized, plus the messages dropped. */
int history_add(struct history *h, const struct history_in *m);

/* Drops every message older than max_age_s at now_ms. O(log T) per message
 * dropped. */
void history_expire(struct history *h, uint64_t now_ms);

/* Records that the broker connection was lost when the newest seq the
 * caller had given out was seq: no recovery from a seq <= seq succeeds. */
void history_gap(struct history *h, uint64_t seq);

/* True when the store holds messages of the topic name (for the gateway:
 * whose broker retained replay the history stands in for). */
bool history_holds(const struct history *h, const char *topic, size_t len);

/* After history_expire(now_ms): true when a replay of q with per_topic 0
 * gives every message of q's topics with seq in (q->after, q->limit]: none
 * of them was dropped, no gap was recorded at or after q->after, and
 * q->after <= q->limit. Conservative: a message dropped from a topic that
 * was then dropped entirely (all its messages gone) fails every recovery
 * from below its seq, whatever the filter. An invalid filter gives false.
 * O(T) topic matches (O(topic length) when the filter has no wildcard). */
bool history_recoverable(struct history *h, const struct history_query *q,
                         uint64_t now_ms);

/* After history_expire(now_ms), a cursor over what q selects now. It gives
 * exactly those messages, also when the store drops them meanwhile (it
 * keeps them alive), and none added later. Returns 0 and sets *out, or
 * -EINVAL (bad filter) or -ENOMEM. O(T) topic matches plus O(M log n), n
 * the messages of a topic; while it has messages of a topic left, each
 * drop from that topic costs O(1) more. The caller frees it with
 * history_cursor_free(), before or after the store. */
int history_cursor_new(struct history *h, const struct history_query *q,
                       uint64_t now_ms, struct history_cursor **out);

/* How many messages the cursor has still to give. */
size_t history_cursor_left(const struct history_cursor *c);

/* The next message in seq order: returns 1 and sets *m to a new reference
 * (history_msg_unref() when done), 0 at the end, or -ENOMEM when the store
 * dropped a message the cursor had not given yet and it could not keep it
 * (the replay is incomplete; every later call says so too). O(log M). */
int history_cursor_next(struct history_cursor *c, struct history_msg **m);

/* Releases everything c holds. c may be NULL. */
void history_cursor_free(struct history_cursor *c);

/* Fills v with what m holds. */
void history_msg_view(const struct history_msg *m, struct history_view *v);

/* Takes one more reference to m / gives one back (the last frees it). */
void history_msg_ref(struct history_msg *m);
void history_msg_unref(struct history_msg *m);

/* What the store holds and has dropped since history_new(). */
void history_stats(const struct history *h, struct history_stats *st);

#endif
