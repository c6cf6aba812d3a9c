/* The gateway's stream history (protocol.md, History; config.md,
 * history): the store of common/history.c, fed with every message of the
 * history filters (which the gateway holds upstream itself, subs_pin()),
 * and the replays a sub asks for. Service thread only. */
#ifndef MQG_STREAM_H
#define MQG_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct mb_event;
struct subs_opts;
struct history_cursor;

/* Creates the store and pins cfg's history filters (none without
 * cfg->history). 0 or -1 (logged). After subs_init(). */
int stream_init(const struct config *cfg);
void stream_destroy(void);

/* True when history is configured; its history.messages. */
bool stream_enabled(void);
long stream_max_messages(void);

/* A broker message of a history filter, at stream position seq (a
 * retained replay too, flagged). Stores it once per seq. */
void stream_store(const struct mb_event *ev, uint64_t seq, bool retained);

/* The broker connection was lost: recovery across this point fails. */
void stream_broker_lost(void);

/* Drops what aged out. Every second or so. */
void stream_tick(void);

/* True when the store holds messages of topic[0..len). */
bool stream_holds(const char *topic, size_t len);

/* The replay for a sub of the (mounted) filter full[0..len) with opts:
 * sets *c (NULL: nothing to replay) and *recovered (opts->has_since: the
 * recovery from since succeeded). Returns 0, or -1 out of memory. */
int stream_replay(const char *full, size_t len, const struct subs_opts *opts,
                  struct history_cursor **c, bool *recovered);

struct stream_stats {
    size_t topics, messages, bytes;
    uint64_t dropped_age, dropped_count, dropped_size;
    uint64_t recoveries, recoveries_failed;
};

void stream_stats(struct stream_stats *st);

#endif
