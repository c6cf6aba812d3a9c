/* auth (protocol.md § Authentication): a token checked here or, when it
 * must wait (a key set's fetch, the webhook), in auth_wait.c; a password
 * on the workers (auth_users.c) or the webhook; every outcome applied
 * through auth_apply(), refreshes and upgrades through
 * session_set_identity(). */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth_http.h"
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

static const char *const method_words[AUTH_METHODS] = {
    [AUTH_TOKEN] = "token", [AUTH_PASSWORD] = "password",
    [AUTH_HANDSHAKE] = "handshake token", [AUTH_ANONYMOUS] = "anonymous",
};

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

/* Keeps the id of r to answer once the check under way ends. 0 or -1
 * (refused). */
static int keep_id(struct session *s, const struct request *r)
{
    free(s->auth_id);
    s->auth_id = NULL;
    s->auth_id_len = 0;
    if (r->id_len && !(s->auth_id = malloc(r->id_len))) {
        refuse(s, r, "out of memory");
        return -1;
    }
    if (r->id_len)
        memcpy(s->auth_id, r->id, r->id_len);
    s->auth_id_len = r->id_len;
    return 0;
}

void auth_forget_id(struct session *s)
{
    free(s->auth_id);
    s->auth_id = NULL;
    s->auth_id_len = 0;
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

int auth_apply(struct session *s, enum auth_method m, enum session_cred cred,
               const struct jwt_identity *id, const char *rid, size_t rid_len)
{
    const char *why;
    int rc;

    if (m == AUTH_HANDSHAKE) {
        rc = session_set_identity(s, cred, id->user, id->roles, id->n_roles,
                                  &why);
        if (rc < 0)
            log_failure(auth_fail_log, s, "identity of %s refused: %s",
                        id->user, why);
    } else {
        rc = take_identity(s, cred, id->user, id->roles, id->n_roles, rid,
                           rid_len);
    }
    metrics_auth(m, rc == 0);
    if (rc != 0)
        return rc;
    if (id->exp)
        auth_arm_expiry(s, id->exp);
    else
        lws_sul_cancel(&s->exp_timer); /* a password does not expire */
    log_info("session %llu: user %s authenticated by %s%s",
             (unsigned long long)s->serial, s->user, method_words[m],
             cred == CRED_WEBHOOK ? " (webhook)" : "");
    return 0;
}

void auth_apply_failed(struct session *s, enum auth_method m, const char *why,
                       const char *detail, const char *rid, size_t rid_len)
{
    metrics_auth(m, false);
    log_failure(auth_fail_log, s, "%s refused: %s", method_words[m],
                detail ? detail : why);
    if (m != AUTH_HANDSHAKE)
        refuse_id(s, rid, rid_len, why);
}

static bool busy(struct session *s, const struct request *r)
{
    if (!s->auth_job && !s->auth_call && !s->auth_token)
        return false;
    session_reply_error(s, r->id, r->id_len, "bad_request",
                        "an authentication is already under way");
    return true;
}

/* Queues a password check on the workers, or asks the webhook for a user
 * the users file does not hold; the answer comes in auth_password_done()
 * or auth_wait.c. */
static void password_request(struct session *s, const struct request *r)
{
    struct auth_job *job;
    const char *why;

    if (!auth_users_enabled() && !auth_http_enabled()) {
        refuse(s, r, "password authentication is not configured");
        return;
    }
    if (!r->user || !r->password) {
        refuse(s, r, "password authentication needs user and password");
        return;
    }
    if (busy(s, r) || keep_id(s, r) < 0)
        return;
    if (auth_http_enabled() && !auth_users_known(r->user)) {
        auth_webhook_password(s, r);
        return;
    }
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

void auth_password_done(void *jobp)
{
    struct auth_result res;
    int rc = auth_users_finish(jobp, conf(), &res);
    struct session *s = res.owner;
    struct jwt_identity id;

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
        if (s->tp->auth_done)
            s->tp->auth_done(s, res.reason);
        else
            refuse_id(s, s->auth_id, s->auth_id_len, res.reason);
        goto out;
    }
    if (s->tp->auth_done) {
        /* an HTTP request (Basic): no auth request to answer */
        const char *why = NULL;

        rc = session_set_identity(s, CRED_PASSWORD, res.user, res.roles,
                                  res.n_roles, &why);
        metrics_auth(AUTH_PASSWORD, rc == 0);
        if (rc < 0)
            log_failure(auth_fail_log, s, "identity of %s refused: %s",
                        res.user, why);
        s->tp->auth_done(s, rc == 0 ? NULL : why);
        goto out;
    }
    id = (struct jwt_identity){.user = res.user, .roles = res.roles,
                               .n_roles = res.n_roles};
    auth_apply(s, AUTH_PASSWORD, CRED_PASSWORD, &id, s->auth_id,
               s->auth_id_len);
out:
    if (s)
        auth_forget_id(s);
    auth_result_clear(&res);
}

void auth_request(struct session *s, const struct request *r)
{
    const char *detail = NULL;
    struct jwt_identity id;
    enum session_cred cred;
    char why[128];
    int rc;

    if (r->token) {
        if (busy(s, r) || keep_id(s, r) < 0)
            return;
        rc = auth_token_check(s, r->token, AUTH_TOKEN, &id, &cred, why,
                              sizeof(why), &detail);
        if (rc == 0)
            auth_apply(s, AUTH_TOKEN, cred, &id, r->id, r->id_len);
        else if (rc < 0)
            auth_apply_failed(s, AUTH_TOKEN, why, detail, r->id, r->id_len);
        if (rc <= 0)
            auth_forget_id(s);
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
