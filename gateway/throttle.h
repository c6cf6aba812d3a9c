/* Rate-limited views (protocol.md, max_rate): per session and topic, a
 * message goes out at once when the topic's previous delivery to the
 * session is at least one interval old; otherwise it waits until one
 * interval after that delivery, replacing any message of the topic already
 * waiting (the newest wins, per-topic order holds). One timer wheel for
 * all sessions: a waiting message costs one insertion, never a timer of
 * its own. Service thread only. */
#ifndef MQG_THROTTLE_H
#define MQG_THROTTLE_H

#include <stdint.h>

struct frame;
struct session;
struct throttle;

struct lws_context;

/* The loop whose timer sends what waits; NULL: none (tests). */
void throttle_init(struct lws_context *ctx);
void throttle_destroy(void);

/* Offers frame f (topic f->topic_key) to session s, whose throttle state
 * is *t (NULL at first: created here), at most one per interval_ms per
 * topic. Takes a new reference to f when it keeps it. */
void throttle_offer(struct throttle **t, struct session *s, struct frame *f,
                    uint64_t interval_ms, uint64_t now_ms);

/* Sends what is due by now_ms. Often (every few milliseconds). */
void throttle_tick(uint64_t now_ms);

/* The session of t is going away: drops what waits. t may be NULL. */
void throttle_free(struct throttle *t);

/* Messages skipped (replaced while waiting) since start. */
uint64_t throttle_skipped(void);

#endif
