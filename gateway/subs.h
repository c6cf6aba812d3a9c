/* The subscription registry (subs.c): every filter any session holds, one
 * upstream subscription per distinct filter, reference counted by its
 * holders, with the SUBSCRIBE/SUBACK state machine and the retained replay
 * after each sub. Filters are broker-side (mount already applied). Service
 * thread only. */
#ifndef MQG_SUBS_H
#define MQG_SUBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session;
struct sub;

/* What the registry keeps in a session (session_holds()): its holds, and
 * the sequence number of the last message delivered to it (fanout.c), so
 * that a message reaches it at most once. Written by subs.c and fanout.c
 * only. */
struct subs_holds {
    struct sub *head;
    size_t n;
    uint64_t stamp;               /* fanout.c's pass of the last delivery */
    /* what the fan-out needs of the session, kept current by it
     * (subs_holds_view()): its mount, and whether it is closing */
    const char *mount;
    size_t mount_len;
    bool closing;
    struct throttle *thr;         /* max_rate state (throttle.c) */
};

/* The session owning h has mount[0..len) (NULL, 0: none) and is closing
 * or not. */
static inline void subs_holds_view(struct subs_holds *h, const char *mount,
                                   size_t len, bool closing)
{
    h->mount = mount;
    h->mount_len = len;
    h->closing = closing;
}

/* What a sub asked of the stream (protocol.md, History). */
struct subs_opts {
    uint32_t history;             /* replay the newest N of each topic */
    bool has_since;               /* replay what came after since_seq */
    uint64_t since_seq;
    char since_epoch[65];
    bool retained;                /* the broker's retained replay wanted */
    double max_rate;              /* 0: none; messages a second per topic */
    /* NULL, or the filter as the client gave it, for an ok that names it
     * (an SSE stream's); subs_subscribe() keeps a copy */
    const char *ok_topic;
    size_t ok_topic_len;
};

int subs_init(void);
void subs_destroy(void);

/* The gateway's own hold on filter[0..len) (history.filters): subscribed
 * upstream at qos while the gateway runs, with or without sessions. 0 or
 * -1 (out of memory). */
int subs_pin(const char *filter, size_t len, int qos);

/* Subscribes s to the filter full[0..len) at qos (already capped by the
 * roles). Replies to id (may be empty) with ok once the broker granted the
 * subscription (then the stored messages opts asks for are replayed to s,
 * session_replay_start()), or with an error. The caller has checked the ACL, the
 * topic rules and the subscription limit (subs_session_holds() tells
 * whether this is a new filter for s). */
void subs_subscribe(struct session *s, const char *full, size_t len, int qos,
                    const char *id, size_t id_len,
                    const struct subs_opts *opts);

/* True when s already holds the filter full[0..len). */
bool subs_session_holds(struct session *s, const char *full, size_t len);

/* Drops s's hold on the filter, if any. */
void subs_unsubscribe(struct session *s, const char *full, size_t len);

/* Drops every hold of s (the session is closing). */
void subs_session_gone(struct session *s);

/* After a change of roles: drops, with an error frame, every filter of s
 * its roles no longer cover (session_subscribe_qos()), and lowers QoS to
 * the new max_qos. */
void subs_session_recheck(struct session *s);

/* A SUBSCRIBE completed: tag as given to upstream_subscribe(), granted the
 * granted QoS or <0 when refused. */
void subs_suback(uint64_t tag, int granted);

/* The broker connection came up: subscribes every filter again. Returns
 * how many SUBSCRIBEs are under way; when it is not 0, the registry tells
 * the sessions the broker is up (session_set_broker_up()) once the last
 * is settled. */
size_t subs_broker_up(void);

/* The broker connection went down: settles pending subscriptions. */
void subs_broker_down(void);

/* Counts for /metrics: distinct filters, holds of sessions. */
size_t subs_filter_count(void);
size_t subs_hold_count(void);

#endif
