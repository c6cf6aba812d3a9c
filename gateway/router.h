/* The topic router (design.md § Data flow): a trie of every filter any
 * session holds, one upstream subscription per distinct filter (reference
 * counted by the sessions holding it), fan-out of broker messages to the
 * sessions whose filters match, at most once per session, with the
 * retained replay after each sub. Service thread only. */
#ifndef MQG_ROUTER_H
#define MQG_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session;
struct mb_event;

int router_init(void);
void router_destroy(void);

/* Subscribes s to its filter (mount already prepended: full[0..len)) at
 * qos (already capped by the roles). Replies to id (may be empty) with ok
 * once the broker granted the subscription, or with an error. The caller
 * has checked the ACL, the topic rules and the subscription limit
 * (router_session_holds() tells whether this is a new filter). */
void router_subscribe(struct session *s, const char *full, size_t len,
                      int qos, const char *id, size_t id_len);

/* True when s already holds the filter full[0..len). */
bool router_session_holds(const struct session *s, const char *full,
                          size_t len);

/* Drops s's hold on the filter, if any. */
void router_unsubscribe(struct session *s, const char *full, size_t len);

/* Drops every hold of s (the session is closing). */
void router_session_gone(struct session *s);

/* Fans a broker message out. */
void router_deliver(const struct mb_event *ev);

/* A SUBSCRIBE completed: tag as given to upstream_subscribe(), granted
 * the granted QoS or <0 when refused. */
void router_suback(uint64_t tag, int granted);

/* The broker connection came up: subscribes every filter again. Returns
 * how many SUBSCRIBEs are under way; when it is not 0, the router tells
 * the sessions the broker is up (session_set_broker_up()) once the last
 * is settled. */
size_t router_broker_up(void);

/* The broker connection went down: settle pending subscriptions. */
void router_broker_down(void);

/* After a reload: drops, with an error frame, every filter of s that its
 * roles no longer cover, and lowers QoS to the new max_qos. */
void router_session_recheck(struct session *s);

/* Counts for /metrics. */
size_t router_filter_count(void);
size_t router_sub_count(void);

#endif
