#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "auth_jwt.h"
#include "auth_users.h"
#include "conf.h"
#include "gateway.h"
#include "jbuf.h"
#include "log.h"
#include "metrics.h"
#include "payload.h"
#include "reply.h"
#include "request.h"
#include "session.h"

#define HANDSHAKE_TOKEN_MAX 8192

/* Failed authentications are logged per client address: at most
 * FAIL_LOG_BURST lines per FAIL_LOG_WINDOW_S seconds, then one line with
 * the count; refusals because too many checks are under way once per
 * window. */
#define FAIL_LOG_BURST 10
#define FAIL_LOG_WINDOW_S 10

static char hello[256];
static struct jwt_verifier *verifier;
static struct log_limit *fail_log, *busy_log;
static lws_sorted_usec_list_t log_timer;
static struct lws_context *log_timer_ctx;  /* while armed */
static bool log_timer_armed;

static void log_timer_cb(lws_sorted_usec_list_t *sul)
{
    int a = log_limit_flush(fail_log, false);
    int b = log_limit_flush(busy_log, false);
    int next = a < 0 || (b >= 0 && b < a) ? b : a;

    log_timer_armed = next >= 0;
    if (log_timer_armed)
        lws_sul_schedule(log_timer_ctx, 0, sul, log_timer_cb,
                         (lws_usec_t)(next ? next : 1) * LWS_US_PER_SEC);
}

/* A line was held back: its count goes out when its window ends. */
static void log_held(struct lws_context *ctx)
{
    if (!log_timer_armed) {
        log_timer_armed = true;
        log_timer_ctx = ctx;
        lws_sul_schedule(ctx, 0, &log_timer, log_timer_cb,
                         (lws_usec_t)FAIL_LOG_WINDOW_S * LWS_US_PER_SEC);
    }
}

/* Logs a failed authentication of s within its address' budget. */
#define log_failure(lim, s, fmt, ...)                                      \
    do {                                                                   \
        if (!log_limited(lim, (s)->ip, LOG_LVL_INFO,                       \
                         "session %llu: " fmt " (from %s)",                \
                         (unsigned long long)(s)->serial, __VA_ARGS__,     \
                         (s)->ip))                                         \
            log_held(lws_get_context((s)->wsi));                           \
    } while (0)

/* What auth_prepare() built, until the commit or the abort. */
static struct {
    bool ready;
    struct jwt_verifier *verifier;
    char hello[sizeof(hello)];
} pending;

void auth_abort(void)
{
    jwt_verifier_free(pending.verifier);
    memset(&pending, 0, sizeof(pending));
}

int auth_prepare(const struct config *cfg)
{
    const char *methods[2];
    size_t n = 0, o;

    auth_abort();
    if (cfg->auth.jwt &&
        !(pending.verifier = jwt_verifier_new(cfg->auth.jwt)))
        return -1;
    if (!fail_log)
        fail_log = log_limit_new("failed authentications", FAIL_LOG_BURST,
                                 FAIL_LOG_WINDOW_S);
    if (!busy_log)
        busy_log = log_limit_new("authentications refused while busy", 1,
                                 FAIL_LOG_WINDOW_S);
    if (cfg->auth.users_file)
        methods[n++] = "\"password\"";
    if (cfg->auth.jwt)
        methods[n++] = "\"token\"";
    o = (size_t)snprintf(pending.hello, sizeof(pending.hello),
                         "{\"op\":\"hello\",\"proto\":1,\"server\":\"%s\","
                         "\"auth\":[",
                         MQG_SERVER);
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(pending.hello + o, sizeof(pending.hello) - o,
                              "%s%s", i ? "," : "", methods[i]);
    snprintf(pending.hello + o, sizeof(pending.hello) - o, "]");
    pending.ready = true;
    return 0;
}

void auth_commit(void)
{
    if (!pending.ready)
        return;
    jwt_verifier_free(verifier);
    verifier = pending.verifier;
    memcpy(hello, pending.hello, sizeof(hello));
    memset(&pending, 0, sizeof(pending));
}

int auth_init(const struct config *cfg)
{
    if (auth_prepare(cfg) < 0)
        return -1;
    auth_commit();
    return 0;
}

void auth_shutdown(void)
{
    log_limit_flush(fail_log, true);
    log_limit_flush(busy_log, true);
    lws_sul_cancel(&log_timer);
    log_timer_armed = false;
}

void auth_destroy(void)
{
    auth_abort();
    jwt_verifier_free(verifier);
    verifier = NULL;
    log_limit_free(fail_log);
    log_limit_free(busy_log);
    fail_log = busy_log = NULL;
}

void auth_send_hello(struct session *s)
{
    struct jbuf b;

    jbuf_init(&b);
    jbuf_raw(&b, hello, strlen(hello));
    if (s->state == SS_AUTHED)
        session_identity_json(s, &b);
    reply_end(&b);
    session_send_jbuf(s, &b);
}

/* The ok of an auth request that refreshed an authenticated session. */
static void reply_refreshed(struct session *s, const char *id, size_t id_len)
{
    struct jbuf b;

    if (!id_len)
        return;
    jbuf_init(&b);
    reply_begin(&b, "ok", id, id_len);
    session_identity_json(s, &b);
    reply_end(&b);
    session_send_jbuf(s, &b);
}

static void expired(lws_sorted_usec_list_t *sul)
{
    struct session *s = lws_container_of(sul, struct session, exp_timer);

    session_reply_error(s, NULL, 0, "token_expired",
                        "the session's token expired");
    session_close(s, 4401, "token expired");
}

static void arm_expiry(struct session *s, time_t exp)
{
    time_t now = time(NULL);
    lws_usec_t us = exp > now ? (lws_usec_t)(exp - now) * LWS_US_PER_SEC : 0;

    s->token_exp = exp;
    lws_sul_schedule(lws_get_context(s->wsi), 0, &s->exp_timer, expired, us);
}

/* The token the handshake carries: Authorization: Bearer, the cookie,
 * or (when allowed) ?token=. */
static int handshake_token(struct lws *wsi, char *buf, size_t len)
{
    size_t max = len;
    int n;

    n = lws_hdr_copy(wsi, buf, (int)len, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 7 && strncasecmp(buf, "Bearer ", 7) == 0) {
        memmove(buf, buf + 7, (size_t)n - 6);
        return 0;
    }
    if (lws_http_cookie_get(wsi, conf()->auth.cookie, buf, &max) == 0 &&
        max > 0)
        return 0;
    if (conf()->auth.allow_query_token) {
        const char *v = lws_get_urlarg_by_name(wsi, "token=", buf, (int)len);

        if (v) {
            memmove(buf, v, strlen(v) + 1);
            return 0;
        }
    }
    return -1;
}

int auth_handshake(struct session *s)
{
    struct jwt_identity id;
    char *token, why[128];
    const char *reason;
    int rc = -1;

    if (!verifier)
        return -1;
    if (!(token = malloc(HANDSHAKE_TOKEN_MAX)))
        return -1;
    if (handshake_token(s->wsi, token, HANDSHAKE_TOKEN_MAX) < 0)
        goto out;
    if (jwt_verify_token(verifier, conf(), token, &id, why, sizeof(why)) < 0) {
        metrics_auth(AUTH_HANDSHAKE, false);
        log_failure(fail_log, s, "handshake token refused: %s", why);
        goto out;
    }
    rc = session_set_identity(s, CRED_TOKEN, id.user, id.roles, id.n_roles,
                              &reason);
    metrics_auth(AUTH_HANDSHAKE, rc == 0);
    if (rc == 0)
        arm_expiry(s, id.exp);
    jwt_identity_clear(&id);
out:
    free(token);
    return rc;
}

static void refuse_id(struct session *s, const char *id, size_t id_len,
                      const char *why)
{
    session_reply_error(s, id, id_len, "auth_failed", "%s", why);
    session_close(s, 4401, "authentication failed");
}

static void refuse(struct session *s, const struct request *r,
                   const char *why)
{
    refuse_id(s, r->id, r->id_len, why);
}

/* Queues a password check on the worker; the answer comes in
 * auth_password_done(). */
static void password_request(struct session *s, const struct request *r)
{
    struct auth_job *job;
    const char *why;

    if (!auth_users_enabled()) {
        refuse(s, r, "password authentication is not configured");
        return;
    }
    if (!r->user || !r->password) {
        refuse(s, r, "password authentication needs user and password");
        return;
    }
    if (s->auth_job) {
        session_reply_error(s, r->id, r->id_len, "bad_request",
                            "an authentication is already under way");
        return;
    }
    free(s->auth_id);
    s->auth_id = NULL;
    s->auth_id_len = 0;
    if (r->id_len && !(s->auth_id = malloc(r->id_len))) {
        refuse(s, r, "out of memory");
        return;
    }
    if (r->id_len)
        memcpy(s->auth_id, r->id, r->id_len);
    s->auth_id_len = r->id_len;
    if (!(job = auth_users_submit(r->user, r->password, r->otp, s->ip, s,
                                  &why))) {
        metrics_auth(AUTH_PASSWORD, false);
        log_failure(busy_log, s, "password authentication refused at once: %s",
                    why);
        refuse(s, r, "too many authentications under way: try again");
        return;
    }
    s->auth_job = job;
}

/* A verified credential for s: user with roles, from cred. A session
 * authenticated as another user gets forbidden; otherwise s takes the
 * identity (a refresh re-checks its roles and subscriptions) and gets ok,
 * or the credential is refused (auth_failed, 4401). Returns 0 when taken,
 * 1 for forbidden, -1 when refused. */
static int take_identity(struct session *s, enum session_cred cred,
                         const char *user, const struct cfg_role **roles,
                         size_t n_roles, const char *id, size_t id_len)
{
    bool refresh = s->state == SS_AUTHED && !s->anonymous;
    const char *why;

    if (refresh && strcmp(user, s->user) != 0) {
        session_reply_error(s, id, id_len, "forbidden",
                            "already authenticated as another user");
        return 1;
    }
    if (session_set_identity(s, cred, user, roles, n_roles, &why) < 0) {
        log_failure(fail_log, s, "identity of %s refused: %s", user, why);
        refuse_id(s, id, id_len, why);
        return -1;
    }
    if (refresh)
        reply_refreshed(s, id, id_len);
    else
        session_authenticated(s, id, id_len);
    return 0;
}

void auth_password_done(void *jobp)
{
    struct auth_result res;
    int rc = auth_users_finish(jobp, conf(), &res);
    struct session *s = res.owner;

    if (!s)
        goto out;
    s->auth_job = NULL;
    if (rc == 0 && s->state == SS_CLOSING) {
        /* closed meanwhile (the auth timeout, a protocol error): a result
         * that comes late must not authenticate it again */
        metrics_auth(AUTH_PASSWORD, false);
        log_info("session %llu: password of %s accepted after the session "
                 "began to close: ignored",
                 (unsigned long long)s->serial, res.user);
        goto out;
    }
    if (rc < 0) {
        metrics_auth(AUTH_PASSWORD, false);
        log_failure(fail_log, s, "password authentication of %s refused: %s",
                    res.user ? res.user : "?",
                    res.detail ? res.detail : res.reason);
        refuse_id(s, s->auth_id, s->auth_id_len, res.reason);
        goto out;
    }
    rc = take_identity(s, CRED_PASSWORD, res.user, res.roles, res.n_roles,
                       s->auth_id, s->auth_id_len);
    metrics_auth(AUTH_PASSWORD, rc == 0);
    if (rc == 0) {
        /* a password does not expire */
        lws_sul_cancel(&s->exp_timer);
        log_info("session %llu: user %s authenticated by password",
                 (unsigned long long)s->serial, s->user);
    }
out:
    if (s) {
        free(s->auth_id);
        s->auth_id = NULL;
        s->auth_id_len = 0;
    }
    auth_result_clear(&res);
}

void auth_request(struct session *s, const struct request *r)
{
    struct jwt_identity id;
    char why[128];
    int rc;

    if (r->token) {
        if (!verifier) {
            refuse(s, r, "token authentication is not configured");
            return;
        }
        if (jwt_verify_token(verifier, conf(), r->token, &id, why,
                             sizeof(why)) < 0) {
            metrics_auth(AUTH_TOKEN, false);
            log_failure(fail_log, s, "token refused: %s", why);
            refuse(s, r, why);
            return;
        }
        rc = take_identity(s, CRED_TOKEN, id.user, id.roles, id.n_roles,
                           r->id, r->id_len);
        metrics_auth(AUTH_TOKEN, rc == 0);
        if (rc == 0) {
            arm_expiry(s, id.exp);
            log_info("session %llu: user %s authenticated by token",
                     (unsigned long long)s->serial, s->user);
        }
        jwt_identity_clear(&id);
        return;
    }
    if (r->user || r->password) {
        password_request(s, r);
        return;
    }
    session_reply_error(s, r->id, r->id_len, "bad_request",
                        "auth needs token, or user and password");
}
