/* What subs.c (the registry) and fanout.c (delivery) share: a filter held
 * upstream and a session's hold on it. Private to those two files.
 * Service thread only. */
#ifndef MQG_SUBS_INT_H
#define MQG_SUBS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "subs.h"

struct session;

struct sub_reply {
    struct sub_reply *next;
    struct subs_opts opts;
    uint8_t qos;
    size_t id_len;
    char id[];                    /* then opts.ok_topic's bytes */
};

/* One session's hold on one filter. */
struct sub {
    struct rfilter *f;
    struct session *s;
    struct subs_holds *h;         /* s's, in it */
    struct sub *f_prev, *f_next;  /* the filter's holders */
    struct sub *s_next;           /* the session's holds */
    /* on at most one of its filter's lists: waiting (for the SUBACK of
     * want_gen) or replay (answered by the last SUBACK, acked_gen: it
     * takes the retained messages that follow) */
    struct sub *w_prev, *w_next;
    uint8_t wlist;                /* SUB_WL_* */
    uint32_t want_gen;            /* replay retained of this SUBSCRIBE */
    uint8_t qos;
    bool live;                    /* receives live messages */
    double max_rate;              /* 0: none */
    /* which of the broker's retained replay it takes: all, none
     * (retained: false), or the topics the history does not hold (the
     * history gave their newest state) */
    enum { SUB_RETAINED_ALL, SUB_RETAINED_NONE, SUB_RETAINED_UNSTORED }
        retained;
    struct sub_reply *replies;    /* sub requests awaiting the SUBACK */
};

enum { SUB_WL_NONE, SUB_WL_WAITING, SUB_WL_REPLAY };

/* A filter subscribed upstream, held by the sessions on its list. */
struct rfilter {
    struct rfilter *id_next;      /* subid hash chain */
    uint32_t subid;
    uint32_t req_gen, acked_gen;
    bool in_flight;               /* a SUBSCRIBE awaits its SUBACK */
    bool ever_acked;
    bool restoring;               /* its re-SUBSCRIBE after a reconnect */
    bool again;                   /* SUBSCRIBE once more after this SUBACK */
    uint8_t want_qos;             /* the highest QoS any holder asked */
    uint8_t flight_qos;           /* the QoS of the SUBSCRIBE in flight */
    uint8_t granted;
    struct sub *subs;
    /* the holders a SUBACK concerns, so that answering one costs what it
     * answers, not what the filter holds (a storm of sessions joining one
     * filter) */
    struct sub *waiting, *replay;
    size_t n_subs;
    size_t len;
    bool pinned;                  /* the gateway's own (subs_pin()) */
    char str[];
};

/* The filter whose SUBACK came last (retained messages with MQTT 3.1.1
 * follow it), or NULL. */
struct rfilter *subs_last_acked(void);

/* Calls fn(f, arg) for every filter held that matches topic[0..len)
 * (trie_match()); fn must not change the registry. */
void subs_match(const char *topic, size_t len,
                int (*fn)(void *f, void *arg), void *arg);

#endif
