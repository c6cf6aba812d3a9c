#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "auth_int.h"
#include "auth_jwt.h"
#include "auth_users.h"
#include "conf.h"
#include "fanout.h"
#include "gateway.h"
#include "jbuf.h"
#include "log.h"
#include "metrics.h"
#include "payload.h"
#include "reply.h"
#include "request.h"
#include "session.h"
#include "session_int.h"

#define HANDSHAKE_TOKEN_MAX 8192

/* Failed authentications are logged per client address: at most
 * FAIL_LOG_BURST lines per FAIL_LOG_WINDOW_S seconds, then one line with
 * the count; refusals because too many checks are under way once per
 * window. */
#define FAIL_LOG_BURST 10
#define FAIL_LOG_WINDOW_S 10

static char hello[256];
static struct jwt_verifier *verifier;

struct log_limit *auth_fail_log, *auth_busy_log;
static lws_sorted_usec_list_t log_timer;
static struct lws_context *log_timer_ctx;  /* while armed */
static bool log_timer_armed;

static void log_timer_cb(lws_sorted_usec_list_t *sul)
{
    int a = log_limit_flush(auth_fail_log, false);
    int b = log_limit_flush(auth_busy_log, false);
    int next = a < 0 || (b >= 0 && b < a) ? b : a;

    log_timer_armed = next >= 0;
    if (log_timer_armed)
        lws_sul_schedule(log_timer_ctx, 0, sul, log_timer_cb,
                         (lws_usec_t)(next ? next : 1) * LWS_US_PER_SEC);
}

void auth_log_held(struct lws_context *ctx)
{
    if (!log_timer_armed) {
        log_timer_armed = true;
        log_timer_ctx = ctx;
        lws_sul_schedule(ctx, 0, &log_timer, log_timer_cb,
                         (lws_usec_t)FAIL_LOG_WINDOW_S * LWS_US_PER_SEC);
    }
}


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
    if (!auth_fail_log)
        auth_fail_log = log_limit_new("failed authentications", FAIL_LOG_BURST,
                                 FAIL_LOG_WINDOW_S);
    if (!auth_busy_log)
        auth_busy_log = log_limit_new("authentications refused while busy", 1,
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
    snprintf(pending.hello + o, sizeof(pending.hello) - o,
             "],\"epoch\":\"%s\"", fanout_epoch());
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
    log_limit_flush(auth_fail_log, true);
    log_limit_flush(auth_busy_log, true);
    lws_sul_cancel(&log_timer);
    log_timer_armed = false;
}

void auth_destroy(void)
{
    auth_abort();
    jwt_verifier_free(verifier);
    verifier = NULL;
    log_limit_free(auth_fail_log);
    log_limit_free(auth_busy_log);
    auth_fail_log = auth_busy_log = NULL;
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

static void expired(lws_sorted_usec_list_t *sul)
{
    struct session *s = lws_container_of(sul, struct session, exp_timer);

    session_reply_error(s, NULL, 0, "token_expired",
                        "the session's token expired");
    session_close(s, 4401, "token expired");
}

void auth_arm_expiry(struct session *s, time_t exp)
{
    time_t now = time(NULL);
    lws_usec_t us = exp > now ? (lws_usec_t)(exp - now) * LWS_US_PER_SEC : 0;

    s->token_exp = exp;
    lws_sul_schedule(lws_get_context(s->wsi), 0, &s->exp_timer, expired, us);
}

int auth_handshake_token(struct lws *wsi, char *buf, size_t len)
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

struct jwt_verifier *auth_verifier(void)
{
    return verifier;
}

int auth_handshake(struct session *s)
{
    char *token, why[128];
    int rc = -1;

    if (!verifier)
        return -1;
    if (!(token = malloc(HANDSHAKE_TOKEN_MAX)))
        return -1;
    if (auth_handshake_token(s->wsi, token, HANDSHAKE_TOKEN_MAX) == 0)
        rc = auth_token(s, token, why, sizeof(why));
    free(token);
    return rc;
}

int auth_token(struct session *s, const char *token, char *why, size_t len)
{
    struct jwt_identity id;
    const char *reason;
    int rc;

    if (!verifier) {
        snprintf(why, len, "token authentication is not configured");
        return -1;
    }
    if (jwt_verify_token(verifier, conf(), token, &id, why, len) < 0) {
        metrics_auth(AUTH_HANDSHAKE, false);
        log_failure(auth_fail_log, s, "handshake token refused: %s", why);
        return -1;
    }
    rc = session_set_identity(s, CRED_TOKEN, id.user, id.roles, id.n_roles,
                              &reason);
    metrics_auth(AUTH_HANDSHAKE, rc == 0);
    if (rc == 0)
        auth_arm_expiry(s, id.exp);
    else
        snprintf(why, len, "%s", reason);
    jwt_identity_clear(&id);
    return rc;
}

