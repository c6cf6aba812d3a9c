/* One browser session: its state, its roles, its subscriptions and its
 * bounded send queue. struct session is the session module's own
 * (session_int.h: session.c, the transports, the request handlers);
 * everything else uses the functions here. Service thread only. */
#ifndef MQG_SESSION_H
#define MQG_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct frame;
struct jbuf;
struct lws;
struct session;
struct subs_holds;
struct requests_held;
struct transport;

/* What gave a session its identity; a reload re-checks it there. */
/* How a session's identity came: CRED_WEBHOOK from auth.http (a password
 * or a token the gateway could not verify itself). */
enum session_cred { CRED_NONE, CRED_ANONYMOUS, CRED_TOKEN, CRED_PASSWORD,
                    CRED_WEBHOOK };

/* The sessions' module state: the per-address table. 0 or -1. */
int session_init(void);
void session_destroy(void);

/* Open sessions, and those from address ip. */
long session_count(void);
uint32_t session_count_ip(const char *ip);

/* What the sessions were last told of the broker ("up" once every
 * subscription is back after a connect, for /healthz too); telling a
 * change sends the status frame to every authenticated session and says
 * it to systemd. */
bool session_broker_up(void);
void session_set_broker_up(bool up);

/* Closes every session with code; after a reload, re-checks every one
 * (session_reload()). */
void session_close_all(int code, const char *why);
void session_reload_all(void);

struct session_stats {
    unsigned long long queued;            /* bytes in the send queues */
    unsigned long long opening, authed, closing;
    unsigned long long ws, sse;           /* by transport */
};

/* Counts for /metrics. */
void session_stats(struct session_stats *st);

/* What the ok of a sub with history or since says. */
struct session_replay {
    size_t replayed;
    bool recovered;
};

struct subs_opts;

/* The sub of the (mounted) filter full[0..len), granted qos, asked for the
 * stored messages opts names: prepares their replay and says how many
 * follow (out). The caller queues the ok, then calls session_replay_go(),
 * which starts feeding them. */
void session_replay_start(struct session *s, const char *full, size_t len,
                          uint8_t qos, const struct subs_opts *opts,
                          struct session_replay *out);
void session_replay_go(struct session *s);

/* The queue drained: more of the replay under way, if any. */
void session_replay_feed(struct session *s);

/* Frees the replays of a session that goes away. */
void session_replay_free(struct session *s);

/* The registry's part of s (subs.h). */
struct subs_holds *session_holds(struct session *s);

/* The request table's part of s (requests.h). */
struct requests_held *session_requests(struct session *s);

/* s's mount and its length (NULL, 0: none). */
const char *session_mount(const struct session *s, size_t *len);

/* The QoS s's roles allow for the mount-relative filter[0..len), or -1
 * when they do not cover it. */
int session_subscribe_qos(const struct session *s, const char *filter,
                          size_t len);

/* A transport opened s (zeroed by the caller, apart from what the
 * transport keeps in it) on connection wsi from address ip: counts it,
 * authenticates it from the handshake or as anonymous, and queues hello
 * (and status); or arms the authentication timeout. */
void session_open(struct session *s, const struct transport *tp,
                  struct lws *wsi, const char *ip);

/* Gives s the anonymous role (auth.anonymous_role) when there is one.
 * Returns 0, or -1 when there is none (or s cannot take it). */
int session_set_anonymous(struct session *s);

/* As session_open(), without the authentication and the hello: for the
 * HTTP transports, which authenticate the request first (http_auth.c). */
void session_attach(struct session *s, const struct transport *tp,
                    struct lws *wsi, const char *ip);

/* The check of the handshake's credential that session_open() left under
 * way ended: authed, s has its identity and gets the hello (and status);
 * else s goes on as without a credential (anonymous, or the hello and
 * the authentication timeout). */
void session_handshake_settled(struct session *s, bool authed);

/* The connection of s is gone: releases everything s holds. */
void session_closed(struct session *s);

/* Reads how many bytes the kernel holds unsent for s (s->k_bytes). */
void session_probe_kernel(struct session *s);

/* A transport wrote n bytes of s's queue: the kernel's backlog is read
 * when it may have grown, and a replay under way is fed (replay.c). */
void session_wrote(struct session *s, size_t n);

/* Queues frame for s, taking a new reference. Closes s with 4408 when its
 * queue would pass limits.max_queue_bytes. */
void session_send(struct session *s, struct frame *f);

/* Keepalive, every session_keepalive_period_ms(): pings each session
 * every limits.ping_interval_s and hangs up one silent for two intervals.
 * Done here rather than by libwebsockets' per-connection timers, whose
 * sorted insertion makes a connection storm quadratic; a tick visits the
 * sessions of a few slots of a wheel, so that each session is looked at
 * about four times an interval and a tick costs what it visits, not every
 * session, and the pings of sessions opened together are spread over the
 * interval. The period: a 256th of the interval, from 50 ms to 1 s. */
void session_keepalive(uint64_t now_ms);
uint64_t session_keepalive_period_ms(void);

/* Queues a frame holding a copy of json[0..len). */
void session_send_json(struct session *s, const char *json, size_t len);

/* Queues the text b holds as one frame and frees it (jbuf_free()); a b
 * that ran out of memory closes s with 1011 instead. */
void session_send_jbuf(struct session *s, struct jbuf *b);

/* Queues {"op":"ok","id":ID}. */
void session_reply_ok(struct session *s, const char *id, size_t id_len);

/* Appends what s may know of its identity: ,"user":U,"roles":[...] (not
 * for an anonymous session) and ,"allow":{...}. s is authenticated. */
void session_identity_json(const struct session *s, struct jbuf *b);

/* Queues an error frame with code and a message. */
void session_reply_error(struct session *s, const char *id, size_t id_len,
                         const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Closes s with code after its queued frames are written. reason is kept,
 * not copied: a string literal (at most 123 bytes, the close frame's). */
void session_close(struct session *s, int code, const char *reason);

/* Sends the status frame for the broker state. */
void session_send_status(struct session *s, bool up);

/* Gives s the identity user with roles (copied), from cred, and marks it
 * authenticated, sending nothing but the error frames of subscriptions it
 * loses. For a session already authenticated as user (a refresh) the new
 * roles replace the old ones and every subscription is checked again; for
 * an anonymous one, too, and under another mount none is kept. Returns 0,
 * or -1 with *why (static text for the client) when s is closing, the
 * roles carry different mounts, the user cannot fill the mount's %u, it
 * is another user than s has, or a refresh leaves no role or changes the
 * mount: the caller refuses the credential (auth_failed, 4401). */
int session_set_identity(struct session *s, enum session_cred cred,
                         const char *user, const struct cfg_role **roles,
                         size_t n_roles, const char **why);

/* Replies ok with user and roles (when id_len) and sends the status. */
void session_authenticated(struct session *s, const char *id,
                           size_t id_len);

/* After a reload swapped G.cfg: takes s's roles from the new
 * configuration (a password session's from the new users file, a token
 * session's by name), closing s with 4401 when its user or its method is
 * gone, no role is left or its mount changed, then re-checks its
 * subscriptions. */
void session_reload(struct session *s);


#endif
