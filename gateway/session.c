#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/sockios.h>

#include "acl.h"
#include "auth.h"
#include "auth_users.h"
#include "frame.h"
#include "ipcount.h"
#include "jbuf.h"
#include "gateway.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "payload.h"
#include "reply.h"
#include "request.h"
#include "router.h"
#include "session.h"
#include "tbucket.h"
#include "topic.h"
#include "upstream.h"
#include "utf8.h"

/* A publish waiting for the broker's PUBACK/PUBCOMP. Owned by the upstream
 * request until MB_PUBDONE; s is cleared when the session goes first. */
struct pub_ctx {
    struct pub_ctx *prev, *next;
    struct session *s;
    size_t id_len;
    char id[];
};

#define ERROR_WINDOW_MS 10000
#define PREAUTH_MESSAGE_MAX 16384  /* bytes of a message before auth */
#define PREAUTH_QUEUE_MAX 65536    /* bytes queued to it before auth */
#define TX_CHUNK 16384             /* bytes of a fragment (flush_ext()) */

/* ---- sending ------------------------------------------------------------ */

/* Takes the frame at the head of the queue off it, keeping the
 * reference for the caller. */
static struct frame *queue_pop(struct session *s)
{
    struct frame *f = s->q[s->q_head];

    s->q_head = (s->q_head + 1) % s->q_cap;
    s->q_count--;
    s->q_bytes -= f->len;
    return f;
}

static void queue_drop(struct session *s)
{
    while (s->q_count)
        frame_unref(queue_pop(s));
    s->tx_off = 0;
}

void session_close(struct session *s, int code, const char *reason)
{
    if (s->close_code)
        return;
    s->close_code = code;
    snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason);
    s->state = SS_CLOSING;
    lws_sul_cancel(&s->auth_timer);
    lws_sul_cancel(&s->exp_timer);
    /* a peer that never reads cannot hold the close up for long */
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, 10);
    lws_callback_on_writable(s->wsi);
    log_debug("session %llu: closing %d (%s)", (unsigned long long)s->serial,
              code, reason);
}

/* Bytes the kernel holds unsent for s, asked now. */
static void probe_kernel(struct session *s)
{
    int outq;

    s->unprobed = 0;
    if (ioctl(lws_get_socket_fd(s->wsi), SIOCOUTQ, &outq) == 0)
        s->k_bytes = outq > 0 ? (size_t)outq : 0;
}

/* The queue bound (limits.max_queue_bytes) counts what s has unsent, here
 * and in the kernel. A message larger than the bound is not a backlog: a
 * session within the bound takes it, and its bound grows by the message's
 * size until it is back within the bound. */
static bool queue_admits(struct session *s, const struct frame *f, size_t max)
{
    size_t backlog = s->q_bytes + s->k_bytes;

    if (s->slack && backlog <= max)
        s->slack = 0;
    if (backlog + f->len <= max + s->slack)
        return true;
    /* k_bytes is as last seen: ask the kernel before judging */
    probe_kernel(s);
    backlog = s->q_bytes + s->k_bytes;
    if (backlog + f->len <= max + s->slack)
        return true;
    if (backlog <= max && f->len > max) {
        s->slack = f->len;
        return true;
    }
    return false;
}

void session_send(struct session *s, struct frame *f)
{
    size_t max = (size_t)G.cfg->limits.max_queue_bytes;

    if (s->close_code)
        return;
    /* a client that has not said who it is gets little room either way */
    if (s->state != SS_AUTHED && max > PREAUTH_QUEUE_MAX)
        max = PREAUTH_QUEUE_MAX;
    if (!queue_admits(s, f, max)) {
        G.m.slow_closes++;
        G.m.frames_dropped += s->q_count + 1;
        queue_drop(s);
        session_close(s, 4408, "too slow");
        return;
    }
    if (s->q_count == s->q_cap) {
        uint32_t cap = s->q_cap ? s->q_cap * 2 : 4;
        struct frame **q = malloc(cap * sizeof(*q));

        if (!q) {
            queue_drop(s);
            session_close(s, 1011, "out of memory");
            return;
        }
        for (uint32_t i = 0; i < s->q_count; i++)
            q[i] = s->q[(s->q_head + i) % s->q_cap];
        free(s->q);
        s->q = q;
        s->q_cap = cap;
        s->q_head = 0;
    }
    s->q[(s->q_head + s->q_count) % s->q_cap] = frame_ref(f);
    s->q_count++;
    s->q_bytes += f->len;
    G.m.msgs_out++;
    G.m.bytes_out += f->len;
    if (s->q_count == 1)
        lws_callback_on_writable(s->wsi);
}

void session_send_json(struct session *s, const char *json, size_t len)
{
    struct frame *f = frame_new_text(json, len);

    if (!f) {
        session_close(s, 1011, "out of memory");
        return;
    }
    session_send(s, f);
    frame_unref(f);
}

void session_send_jbuf(struct session *s, struct jbuf *b)
{
    if (b->failed)
        session_close(s, 1011, "out of memory");
    else
        session_send_json(s, b->p, b->len);
    jbuf_free(b);
}

void session_reply_ok(struct session *s, const char *id, size_t id_len)
{
    struct jbuf b;

    jbuf_init(&b);
    reply_begin(&b, "ok", id, id_len);
    reply_end(&b);
    session_send_jbuf(s, &b);
}

void session_reply_error(struct session *s, const char *id, size_t id_len,
                         const char *code, const char *fmt, ...)
{
    char msg[REPLY_MESSAGE_MAX + 1];
    struct jbuf b;
    va_list ap;
    int n;

    metrics_error(code);
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    jbuf_init(&b);
    /* the message may quote client text: reply_error() keeps it valid
     * UTF-8 */
    reply_error(&b, id, id_len, code, msg, strnlen(msg, sizeof(msg)));
    session_send_jbuf(s, &b);
}

void session_send_status(struct session *s, bool up)
{
    static const char st_up[] = "{\"op\":\"status\",\"broker\":\"up\"}";
    static const char st_down[] = "{\"op\":\"status\",\"broker\":\"down\"}";

    if (up)
        session_send_json(s, st_up, sizeof(st_up) - 1);
    else
        session_send_json(s, st_down, sizeof(st_down) - 1);
}

/* On a connection with an extension (permessage-deflate), the head
 * frame's payload goes through libwebsockets' framing in fragments of at
 * most TX_CHUNK bytes, one per writable callback, whatever its size. Each
 * is copied into the session's own buffer: the extension keeps pointing
 * into it while it drains its output over later callbacks, so it must not
 * be shared with other sessions, and it is freed only at a callback that
 * finds the queue empty (libwebsockets calls back only once it drained).
 * Returns the bytes written, or -1 to close. */
static long flush_ext(struct session *s)
{
    struct frame *f = s->q[s->q_head];
    size_t left = f->payload_len - s->tx_off;
    size_t n = left > TX_CHUNK ? TX_CHUNK : left;
    int flags = s->tx_off ? LWS_WRITE_CONTINUATION : LWS_WRITE_TEXT;

    if (n < left)
        flags |= LWS_WRITE_NO_FIN;
    if (!s->tx && !(s->tx = malloc(LWS_PRE + TX_CHUNK)))
        return -1;
    memcpy(s->tx + LWS_PRE, f->payload + s->tx_off, n);
    if (lws_write(s->wsi, s->tx + LWS_PRE, n, (enum lws_write_protocol)flags) <
        (int)n)
        return -1;
    s->tx_off += n;
    if (s->tx_off == f->payload_len) {
        s->tx_off = 0;
        frame_unref(queue_pop(s));
    }
    return (long)n;
}

/* Writes what is queued: pre-framed frames coalesced into one write, or,
 * on a connection with an extension, a fragment of one frame at a time
 * (flush_ext()). Returns -1 to close. */
static int flush(struct session *s)
{
    uint8_t *out = G.scratch + LWS_PRE;
    size_t n = 0;

    if (!s->raw_ok) {
        long w = flush_ext(s);

        if (w < 0)
            return -1;
        n = (size_t)w;
        goto more;
    }
    if (s->q[s->q_head]->len > G.scratch_size) {
        /* too big to coalesce: written from its own buffer, which has
         * LWS_PRE headroom */
        struct frame *f = queue_pop(s);
        int rc = lws_write(s->wsi, f->data, f->len, LWS_WRITE_RAW);

        n = f->len;
        frame_unref(f);
        if (rc < 0)
            return -1;
        goto more;
    }
    while (s->q_count) {
        struct frame *f = s->q[s->q_head];

        if (n + f->len > G.scratch_size)
            break;
        memcpy(out + n, f->data, f->len);
        n += f->len;
        frame_unref(queue_pop(s));
    }
    if (lws_write(s->wsi, out, n, LWS_WRITE_RAW) < 0)
        return -1;
more:
    /* What the kernel holds unsent counts toward the session's queue: a
     * peer that stops reading fills the socket buffer (megabytes on
     * loopback) long before it fills ours. Asked after big writes, which
     * is when a backlog builds, after every 64 KiB of small ones, and
     * until it has drained. */
    s->unprobed += n;
    if (n >= 8192 || s->unprobed >= 65536 || s->k_bytes)
        probe_kernel(s);
    /* (with an extension, once more when the queue is empty: the callback
     * that frees the fragment buffer) */
    if (s->q_count || s->close_code || s->tx)
        lws_callback_on_writable(s->wsi);
    else if (s->q_cap > 256) {
        /* a big burst is over: give its ring back (smaller rings stay, so
         * that a steady stream does not allocate one per burst) */
        free(s->q);
        s->q = NULL;
        s->q_cap = 0;
        s->q_head = 0;
    }
    return 0;
}

/* ---- requests ----------------------------------------------------------- */

/* An error caused by the client's request: it counts toward the error
 * budget (limits.max_errors in 10 s). */
static void req_error(struct session *s, const char *id, size_t id_len,
                      const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void req_error(struct session *s, const char *id, size_t id_len,
                      const char *code, const char *fmt, ...)
{
    uint64_t now = gateway_now_ms();
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    session_reply_error(s, id, id_len, code, "%s", msg);
    if (now - s->err_window_ms >= ERROR_WINDOW_MS) {
        s->err_window_ms = now;
        s->err_count = 0;
    }
    if (++s->err_count > (uint32_t)G.cfg->limits.max_errors) {
        G.m.error_closes++;
        session_close(s, 4429, "too many errors");
    }
}

/* The broker-side topic: the session's mount, then the topic. Returns a
 * pointer to use (t itself, or *buf which the caller frees), or NULL when
 * the whole is too long. */
static const char *mounted(const struct session *s, const char *t,
                           size_t len, char **buf, size_t *out_len)
{
    *buf = NULL;
    *out_len = s->mount_len + len;
    if (!s->mount_len)
        return t;
    if (*out_len > TOPIC_MAX_LEN || !(*buf = malloc(*out_len + 1)))
        return NULL;
    memcpy(*buf, s->mount, s->mount_len);
    memcpy(*buf + s->mount_len, t, len);
    (*buf)[*out_len] = '\0';
    return *buf;
}

static const char *role_names(const struct session *s, char *buf,
                              size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < s->n_roles && o + 1 < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "," : "",
                              s->roles[i]->name);
    if (!s->n_roles)
        snprintf(buf, len, "(none)");
    return buf;
}

static void do_sub(struct session *s, const struct request *r)
{
    char roles[128], *buf;
    const char *full;
    size_t full_len;
    int maxq = acl_subscribe_qos(s->roles, s->n_roles, s->user, r->topic,
                                 r->topic_len);

    if (maxq < 0) {
        req_error(s, r->id, r->id_len, "forbidden",
                  "role %s may not subscribe to %.*s",
                  role_names(s, roles, sizeof(roles)),
                  (int)(r->topic_len > 128 ? 128 : r->topic_len), r->topic);
        return;
    }
    if (!(full = mounted(s, r->topic, r->topic_len, &buf, &full_len))) {
        req_error(s, r->id, r->id_len, "bad_topic",
                  "the mount and the filter together are too long");
        return;
    }
    if (!router_session_holds(s, full, full_len) &&
        s->n_subs >= (size_t)G.cfg->limits.max_subscriptions) {
        req_error(s, r->id, r->id_len, "limit_exceeded",
                  "at most %ld subscriptions",
                  G.cfg->limits.max_subscriptions);
    } else {
        router_subscribe(s, full, full_len, r->qos < maxq ? r->qos : maxq,
                         r->id, r->id_len);
    }
    free(buf);
}

static void do_unsub(struct session *s, const struct request *r)
{
    char *buf;
    size_t full_len;
    const char *full = mounted(s, r->topic, r->topic_len, &buf, &full_len);

    if (full)
        router_unsubscribe(s, full, full_len);
    if (r->id_len)
        session_reply_ok(s, r->id, r->id_len);
    free(buf);
}

static void do_pub(struct session *s, const struct request *r)
{
    char roles[128], *buf;
    const char *full;
    size_t full_len;
    struct pub_ctx *ctx = NULL;
    int maxq = acl_publish_qos(s->roles, s->n_roles, s->user, r->topic,
                               r->topic_len);
    int qos, rc;

    if (maxq < 0) {
        req_error(s, r->id, r->id_len, "forbidden",
                  "role %s may not publish to %.*s",
                  role_names(s, roles, sizeof(roles)),
                  (int)(r->topic_len > 128 ? 128 : r->topic_len), r->topic);
        return;
    }
    if (!tbucket_take(&s->bucket, G.cfg->limits.publish_rate,
                      G.cfg->limits.publish_burst, gateway_now_ms())) {
        req_error(s, r->id, r->id_len, "rate_limited",
                  "more than %ld publishes a second",
                  G.cfg->limits.publish_rate);
        return;
    }
    if (!(full = mounted(s, r->topic, r->topic_len, &buf, &full_len))) {
        req_error(s, r->id, r->id_len, "bad_topic",
                  "the mount and the topic together are too long");
        return;
    }
    qos = r->qos < maxq ? r->qos : maxq;
    if (qos > 0) {
        if (!(ctx = malloc(sizeof(*ctx) + r->id_len))) {
            session_reply_error(s, r->id, r->id_len, "internal",
                                "out of memory");
            goto out;
        }
        ctx->s = s;
        G.pubs_pending++;
        ctx->id_len = r->id_len;
        memcpy(ctx->id, r->id, r->id_len);
    }
    rc = upstream_publish(G.up, full, r->payload, r->payload_len, qos,
                          r->retain, ctx);
    G.m.pubs++;
    if (rc < 0) {
        if (ctx)
            G.pubs_pending--;
        free(ctx);
        G.m.pub_errors++;
        session_reply_error(s, r->id, r->id_len, "broker_unavailable",
                            rc == UPSTREAM_FULL
                                ? "the broker is away and its buffer is full"
                                : "the broker is not reachable");
        goto out;
    }
    if (ctx) {
        ctx->prev = NULL;
        ctx->next = s->pubs;
        if (s->pubs)
            s->pubs->prev = ctx;
        s->pubs = ctx;
    } else if (r->id_len) {
        session_reply_ok(s, r->id, r->id_len);
    }
out:
    free(buf);
}

void session_pubdone(void *ctxp, int code)
{
    struct pub_ctx *ctx = ctxp;
    struct session *s = ctx->s;

    G.pubs_pending--;
    if (s) {
        if (ctx->prev)
            ctx->prev->next = ctx->next;
        else
            s->pubs = ctx->next;
        if (ctx->next)
            ctx->next->prev = ctx->prev;
        if (code == PUBDONE_OK) {
            if (ctx->id_len)
                session_reply_ok(s, ctx->id, ctx->id_len);
        } else {
            G.m.pub_errors++;
            if (code == PUBDONE_REJECTED)
                session_reply_error(s, ctx->id, ctx->id_len,
                                    "broker_rejected",
                                    "the broker refused the message");
            else
                session_reply_error(s, ctx->id, ctx->id_len,
                                    "broker_unavailable",
                                    "the broker connection was lost before "
                                    "it acknowledged the message");
        }
    }
    free(ctx);
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Drops, each with a forbidden error frame, every subscription of s that
 * roles (n of them) do not cover; with keep_none, all of them (they were
 * made under another mount). s->mount and s->mount_len are still those the
 * subscriptions were made under. */
static void recheck_subs(struct session *s, const struct cfg_role **roles,
                         size_t n, bool keep_none)
{
    const struct cfg_role **had = s->roles;
    size_t had_n = s->n_roles;

    s->roles = roles;
    s->n_roles = keep_none ? 0 : n;
    router_session_recheck(s);
    s->roles = had;
    s->n_roles = had_n;
}

/* Replaces the roles of s, whose user stays, by roles[0..n): after a
 * refresh or a reload. Returns 0, or -1 with *why when they leave no role
 * (where s had some), carry different mounts or change the mount: s
 * keeps no role then, and the caller closes it with 4401. */
static int swap_roles(struct session *s, const struct cfg_role **roles,
                      size_t n, const char **why)
{
    const struct cfg_role **r = NULL;
    char *mount = NULL;
    bool same;

    if (s->n_roles && !n) {
        *why = "no role is left";
        goto fail;
    }
    if (acl_mount(roles, n, s->user, &mount) < 0) {
        *why = "the roles carry different mounts";
        goto fail;
    }
    same = str_eq(mount, s->mount);
    free(mount);
    if (!same) {
        *why = "the mount changed";
        goto fail;
    }
    if (n && !(r = malloc(n * sizeof(*r)))) {
        *why = "out of memory";
        goto fail;
    }
    if (n)
        memcpy(r, roles, n * sizeof(*r));
    free(s->roles);
    s->roles = r;
    s->n_roles = n;
    router_session_recheck(s);
    return 0;
fail:
    s->n_roles = 0;
    return -1;
}

int session_set_identity(struct session *s, enum session_cred cred,
                         const char *user, const struct cfg_role **roles,
                         size_t n_roles, const char **why)
{
    char *mount = NULL, *u;
    const struct cfg_role **r = NULL;

    if (s->close_code) {
        *why = "the session is closing";
        return -1;
    }
    if (s->state == SS_AUTHED && s->cred != CRED_ANONYMOUS) {
        if (strcmp(s->user, user) != 0) {
            *why = "already authenticated as another user";
            return -1;
        }
        s->cred = cred;
        return swap_roles(s, roles, n_roles, why);
    }
    if (acl_mount(roles, n_roles, user, &mount) < 0) {
        log_info("session %llu: user %s: roles with different mounts, or "
                 "a user name a mount cannot carry",
                 (unsigned long long)s->serial, user);
        *why = "the roles of this user cannot be combined";
        return -1;
    }
    if (!(u = strdup(user)) ||
        (n_roles && !(r = malloc(n_roles * sizeof(*r))))) {
        free(u);
        free(mount);
        *why = "out of memory";
        return -1;
    }
    if (n_roles)
        memcpy(r, roles, n_roles * sizeof(*r));
    /* An anonymous session taking an identity: what it holds is checked
     * against the new roles; under another mount, nothing is kept. */
    if (s->state == SS_AUTHED)
        recheck_subs(s, r, n_roles, !str_eq(mount, s->mount));
    free(s->user);
    free(s->mount);
    free(s->roles);
    s->user = u;
    s->roles = r;
    s->n_roles = n_roles;
    s->mount = mount;
    s->mount_len = mount ? strlen(mount) : 0;
    s->state = SS_AUTHED;
    s->cred = cred;
    s->anonymous = cred == CRED_ANONYMOUS;
    lws_sul_cancel(&s->auth_timer);
    return 0;
}

void session_authenticated(struct session *s, const char *id, size_t id_len)
{
    if (id_len) {
        struct jbuf b;

        jbuf_init(&b);
        reply_begin(&b, "ok", id, id_len);
        session_identity_json(s, &b);
        reply_end(&b);
        session_send_jbuf(s, &b);
    }
    session_send_status(s, G.broker_up);
}

void session_identity_json(const struct session *s, struct jbuf *b)
{
    if (!s->anonymous)
        reply_identity(b, s->user, s->roles, s->n_roles);
    reply_allow(b, s->roles, s->n_roles, s->user);
}

static void handle(struct session *s, const char *buf, size_t len)
{
    struct request r;
    char msg[256];
    enum req_err e = request_decode(buf, len, &r, msg, sizeof(msg));

    if (e != RQ_OK) {
        req_error(s, r.id, r.id_len, request_err_code(e), "%s", msg);
        goto out;
    }
    if (r.op == OP_PING) {
        struct jbuf b;

        jbuf_init(&b);
        reply_begin(&b, "pong", r.id, r.id_len);
        reply_end(&b);
        session_send_jbuf(s, &b);
        goto out;
    }
    if (r.op == OP_AUTH) {
        auth_request(s, &r);
        goto out;
    }
    if (s->state != SS_AUTHED) {
        req_error(s, r.id, r.id_len, "unauthenticated",
                  "authenticate first");
        goto out;
    }
    /* each may make an upstream SUBSCRIBE and a retained replay */
    if ((r.op == OP_SUB || r.op == OP_UNSUB) &&
        !tbucket_take(&s->sub_bucket, G.cfg->limits.subscribe_rate,
                      G.cfg->limits.subscribe_burst, gateway_now_ms())) {
        req_error(s, r.id, r.id_len, "rate_limited",
                  "more than %ld subscription requests a second",
                  G.cfg->limits.subscribe_rate);
        goto out;
    }
    switch (r.op) {
    case OP_SUB:
        do_sub(s, &r);
        break;
    case OP_UNSUB:
        do_unsub(s, &r);
        break;
    case OP_PUB:
        do_pub(s, &r);
        break;
    default:
        break;
    }
out:
    request_clear(&r);
}

void session_reload(struct session *s)
{
    const struct cfg_role *roles[64], **looked = NULL;
    const char *why = NULL;
    size_t n = 0;

    if (s->state != SS_AUTHED)
        return;
    /* s->roles still point into the old configuration: take them over to
     * the new one, from where they came */
    switch (s->cred) {
    case CRED_NONE:
        return;
    case CRED_ANONYMOUS: {
        const char *a = G.cfg->auth.anonymous_role;
        const struct cfg_role *r = a ? config_role(G.cfg, a) : NULL;

        if (r)
            roles[n++] = r;
        break;
    }
    case CRED_PASSWORD:
        /* the users file decides, as at a new login */
        if (auth_users_lookup(s->user, G.cfg, &looked, &n) < 0) {
            s->n_roles = 0;
            session_close(s, 4401, "user removed by a reload");
            return;
        }
        if (swap_roles(s, looked, n, &why) < 0)
            goto refuse;
        free(looked);
        return;
    case CRED_TOKEN:
        if (!G.cfg->auth.jwt) {
            s->n_roles = 0;
            session_close(s, 4401, "token authentication removed by a "
                                   "reload");
            return;
        }
        for (size_t i = 0; i < s->n_roles && n < 64; i++) {
            const struct cfg_role *r = config_role(G.cfg, s->roles[i]->name);

            if (r)
                roles[n++] = r;
        }
        break;
    }
    if (swap_roles(s, roles, n, &why) == 0)
        return;
refuse:
    free(looked);
    log_info("session %llu: closed by the reload: %s",
             (unsigned long long)s->serial, why);
    session_close(s, 4401, "roles withdrawn by a reload");
}

/* ---- receiving ---------------------------------------------------------- */

static void receive(struct session *s, const char *in, size_t len)
{
    struct lws *wsi = s->wsi;
    size_t max = (size_t)G.cfg->limits.max_message_bytes;
    bool complete = lws_is_final_fragment(wsi);

    /* Before authentication only auth and ping make sense: a client that
     * has not said who it is gets a small buffer. */
    if (s->state != SS_AUTHED && max > PREAUTH_MESSAGE_MAX)
        max = PREAUTH_MESSAGE_MAX;

    if (s->close_code)
        return;
    if (lws_frame_is_binary(wsi)) {
        session_close(s, 1003, "binary frames are not accepted");
        return;
    }
    if (s->rx_len + len > max) {
        session_close(s, 1009, "message too big");
        return;
    }
    if (complete && s->rx_len == 0) {
        if (!utf8_valid(in, len)) {
            session_close(s, 1007, "invalid UTF-8");
            return;
        }
        handle(s, in, len);
        return;
    }
    if (s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 1024;
        char *rx;

        while (cap < s->rx_len + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        if (!(rx = realloc(s->rx, cap))) {
            session_close(s, 1011, "out of memory");
            return;
        }
        s->rx = rx;
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    if (!complete)
        return;
    if (!utf8_valid(s->rx, s->rx_len)) {
        session_close(s, 1007, "invalid UTF-8");
    } else {
        handle(s, s->rx, s->rx_len);
    }
    /* idle sessions hold no assembly buffer */
    s->rx_len = 0;
    free(s->rx);
    s->rx = NULL;
    s->rx_cap = 0;
}

/* ---- lifecycle ---------------------------------------------------------- */

void session_keepalive(uint64_t now)
{
    uint64_t interval = (uint64_t)G.cfg->limits.ping_interval_s * 1000;

    for (struct session *s = G.sessions; s; s = s->next) {
        if (now - s->last_rx_ms >= 2 * interval) {
            /* silent for two intervals: hang up, as there is nobody to
             * read a close frame */
            log_debug("session %llu: silent for %llu ms, hanging up",
                      (unsigned long long)s->serial,
                      (unsigned long long)(now - s->last_rx_ms));
            s->last_rx_ms = now; /* once */
            lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
                            LWS_TO_KILL_ASYNC);
        } else if (now - s->last_ping_ms >= interval && !s->close_code) {
            s->last_ping_ms = now;
            s->ping_due = true;
            lws_callback_on_writable(s->wsi);
        }
    }
}

static void auth_timeout(lws_sorted_usec_list_t *sul)
{
    struct session *s = lws_container_of(sul, struct session, auth_timer);

    if (s->state == SS_OPENING)
        session_close(s, 4401, "authentication timeout");
}

static void opened(struct session *s, struct lws *wsi)
{
    static uint64_t serial;
    const struct listener *lis = lws_vhost_user(lws_get_vhost(wsi));

    memset(s, 0, sizeof(*s));
    s->wsi = wsi;
    s->serial = ++serial;
    s->state = SS_OPENING;
    s->last_rx_ms = s->last_ping_ms = gateway_now_ms();
    s->raw_ok = !(lis && lis->compression);
    tbucket_init(&s->bucket, G.cfg->limits.publish_burst, gateway_now_ms());
    tbucket_init(&s->sub_bucket, G.cfg->limits.subscribe_burst,
                 gateway_now_ms());
    s->next = G.sessions;
    if (G.sessions)
        G.sessions->prev = s;
    G.sessions = s;
    G.n_sessions++;
    G.m.sessions_total++;
    lws_get_peer_simple(wsi, s->ip, sizeof(s->ip));
    ipcount_inc(G.ipc, s->ip);

    if (auth_handshake(s) == 0) {
        auth_send_hello(s);
        session_send_status(s, G.broker_up);
        return;
    }
    if (G.cfg->auth.anonymous_role) {
        const struct cfg_role *role =
            config_role(G.cfg, G.cfg->auth.anonymous_role);

        const char *why;

        if (role && session_set_identity(s, CRED_ANONYMOUS, "anonymous",
                                         &role, 1, &why) == 0) {
            metrics_auth(AUTH_ANONYMOUS, true);
            auth_send_hello(s);
            session_send_status(s, G.broker_up);
            return;
        }
    }
    auth_send_hello(s);
    lws_sul_schedule(G.ctx, 0, &s->auth_timer, auth_timeout,
                     (lws_usec_t)G.cfg->auth.timeout_s * LWS_US_PER_SEC);
}

static void closed(struct session *s)
{
    if (s->auth_job)
        auth_job_disown(s->auth_job);
    free(s->auth_id);
    lws_sul_cancel(&s->auth_timer);
    lws_sul_cancel(&s->exp_timer);
    router_session_gone(s);
    for (struct pub_ctx *p = s->pubs; p; p = p->next)
        p->s = NULL;
    s->pubs = NULL;
    queue_drop(s);
    free(s->q);
    free(s->tx);
    free(s->rx);
    free(s->user);
    free(s->roles);
    free(s->mount);
    if (s->prev)
        s->prev->next = s->next;
    else
        G.sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    G.n_sessions--;
    ipcount_dec(G.ipc, s->ip);
    s->wsi = NULL;
}

int session_callback(struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len)
{
    struct session *s = user;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        opened(s, wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        s->last_rx_ms = gateway_now_ms();
        receive(s, in, len);
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        s->last_rx_ms = gateway_now_ms();
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (s->ping_due && !s->close_code) {
            /* with a payload: libwebsockets 4.1 reports no pong that
             * echoes an empty ping */
            uint8_t ping[LWS_PRE + 8];

            s->ping_due = false;
            memcpy(ping + LWS_PRE, "mqgate.k", 8);
            if (lws_write(wsi, ping + LWS_PRE, 8, LWS_WRITE_PING) < 0)
                return -1;
            if (s->q_count)
                lws_callback_on_writable(wsi);
            return 0;
        }
        if (s->q_count)
            return flush(s);
        /* the extension drained what it had of the fragment buffer */
        free(s->tx);
        s->tx = NULL;
        if (s->close_code) {
            lws_close_reason(wsi, (enum lws_close_status)s->close_code,
                             (unsigned char *)s->close_reason,
                             strlen(s->close_reason));
            return -1;
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (s->wsi)
            closed(s);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        gateway_drain();
        return 0;
    default:
        return listener_http_callback(wsi, reason, user, in, len);
    }
}
