/* auth (protocol.md § Authentication): a token checked here, a password
 * on the workers (auth_users.c) and answered in auth_password_done();
 * refreshes and upgrades through session_set_identity(). */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth_int.h"
#include "auth_jwt.h"
#include "auth_users.h"
#include "conf.h"
#include "jbuf.h"
#include "log.h"
#include "metrics.h"
#include "reply.h"
#include "request.h"
#include "session.h"
#include "session_int.h"
#include "transport.h"

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
        log_failure(auth_busy_log, s, "password authentication refused at once: %s",
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
        log_failure(auth_fail_log, s, "identity of %s refused: %s", user, why);
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
        log_failure(auth_fail_log, s, "password authentication of %s refused: %s",
                    res.user ? res.user : "?",
                    res.detail ? res.detail : res.reason);
        if (s->tp->password_done)
            s->tp->password_done(s, res.reason);
        else
            refuse_id(s, s->auth_id, s->auth_id_len, res.reason);
        goto out;
    }
    if (s->tp->password_done) {
        /* an HTTP request (Basic): no auth request to answer */
        const char *why = NULL;

        rc = session_set_identity(s, CRED_PASSWORD, res.user, res.roles,
                                  res.n_roles, &why);
        metrics_auth(AUTH_PASSWORD, rc == 0);
        if (rc < 0)
            log_failure(auth_fail_log, s, "identity of %s refused: %s",
                        res.user, why);
        s->tp->password_done(s, rc == 0 ? NULL : why);
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
        if (!auth_verifier()) {
            refuse(s, r, "token authentication is not configured");
            return;
        }
        if (jwt_verify_token(auth_verifier(), conf(), r->token, &id, why,
                             sizeof(why)) < 0) {
            metrics_auth(AUTH_TOKEN, false);
            log_failure(auth_fail_log, s, "token refused: %s", why);
            refuse(s, r, why);
            return;
        }
        rc = take_identity(s, CRED_TOKEN, id.user, id.roles, id.n_roles,
                           r->id, r->id_len);
        metrics_auth(AUTH_TOKEN, rc == 0);
        if (rc == 0) {
            auth_arm_expiry(s, id.exp);
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
