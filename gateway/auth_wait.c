/* The credential checks that wait (protocol.md § Authentication): a JWT
 * whose kid the fetched key set lacks waits for one fetch (jwks_fetch.h,
 * which the refresh floor bounds), then is checked once
 * more; a token the gateway cannot verify itself, and a password of a
 * user the users file does not hold, go to the webhook (auth_http.h).
 * Each outcome is applied by auth_apply() or auth_apply_failed(), and for
 * the handshake settled with session_handshake_settled(). Service thread
 * only. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth_http.h"
#include "auth_int.h"
#include "auth_jwt.h"
#include "conf.h"
#include "jwks_fetch.h"
#include "jws.h"
#include "log.h"
#include "request.h"
#include "session.h"
#include "session_int.h"

/* Sessions whose token waits for the key set's fetch. */
static struct session *waiters;

static void unlink_waiter(struct session *s)
{
    if (s->kid_prev)
        s->kid_prev->kid_next = s->kid_next;
    else if (waiters == s)
        waiters = s->kid_next;
    if (s->kid_next)
        s->kid_next->kid_prev = s->kid_prev;
    s->kid_prev = s->kid_next = NULL;
}

/* Ends the check under way of s: the answer (authed or not) is applied,
 * the handshake settled. */
static void settle(struct session *s, enum auth_method m, bool authed)
{
    auth_forget_id(s);
    if (m == AUTH_HANDSHAKE)
        session_handshake_settled(s, authed);
}

static void webhook_done(void *owner, struct auth_http_result *res)
{
    struct session *s = owner;
    enum auth_method m = (enum auth_method)s->auth_method;
    struct jwt_identity id;
    bool authed = false;

    s->auth_call = NULL;
    if (s->state == SS_CLOSING) {
        /* closed meanwhile: a late answer must not authenticate it */
        auth_forget_id(s);
        return;
    }
    if (res->ok) {
        id = (struct jwt_identity){.user = res->user, .roles = res->roles,
                                   .n_roles = res->n_roles,
                                   .exp = res->has_expiry ? res->expires_at
                                                          : 0};
        authed = auth_apply(s, m, CRED_WEBHOOK, &id, s->auth_id,
                            s->auth_id_len) == 0;
    } else {
        auth_apply_failed(s, m, res->reason, res->detail, s->auth_id,
                          s->auth_id_len);
    }
    settle(s, m, authed);
}

/* Asks the webhook about q for s (method m). 0 with *id and CRED_WEBHOOK
 * from the cache, 1 under way, -1 refused (why, *detail). */
static int ask_webhook(struct session *s, const struct auth_http_query *q,
                       enum auth_method m, struct jwt_identity *id,
                       char *why, size_t whylen, const char **detail)
{
    struct auth_http_result res;

    switch (auth_http_ask(q, s, webhook_done, &s->auth_call, &res)) {
    case AUTH_HTTP_ASKED:
        s->auth_method = m;
        return 1;
    case AUTH_HTTP_CACHED:
        *id = (struct jwt_identity){
            .user = res.user, .roles = res.roles, .n_roles = res.n_roles,
            .exp = res.has_expiry ? res.expires_at : 0};
        res.user = NULL;
        res.roles = NULL;
        auth_http_result_clear(&res);
        return 0;
    case AUTH_HTTP_BUSY:
        break;
    }
    snprintf(why, whylen, "%s", res.reason);
    *detail = res.detail; /* static when busy */
    auth_http_result_clear(&res);
    return -1;
}

int auth_token_check(struct session *s, const char *token, enum auth_method m,
                     struct jwt_identity *id, enum session_cred *cred,
                     char *why, size_t whylen, const char **detail)
{
    struct jwt_verifier *v = auth_verifier();
    int rc;

    memset(id, 0, sizeof(*id));
    *cred = CRED_TOKEN;
    if (v && jws_compact_form(token)) {
        rc = jwt_verify_token(v, conf(), token, id, why, whylen);
        if (rc != JWT_VERIFY_UNKNOWN_KID)
            return rc;
        if (!jwks_fetch_ask()) {
            snprintf(why, whylen, "token kid not in the key set (fetched "
                     "again at most every %d s)",
                     conf()->auth.jwt->jwks_min_refresh_s);
            return -1;
        }
        if (!(s->auth_token = strdup(token))) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        s->auth_method = m;
        s->kid_prev = NULL;
        s->kid_next = waiters;
        if (waiters)
            waiters->kid_prev = s;
        waiters = s;
        return 1;
    }
    if (auth_http_enabled()) {
        struct auth_http_query q = {.token = token, .address = s->ip,
                                    .origin = s->origin};

        *cred = CRED_WEBHOOK;
        return ask_webhook(s, &q, m, id, why, whylen, detail);
    }
    snprintf(why, whylen, "%s", v ? "token not in JWS compact form"
                                  : "token authentication is not "
                                    "configured");
    return -1;
}

void auth_webhook_password(struct session *s, const struct request *r)
{
    struct auth_http_query q = {.user = r->user, .password = r->password,
                                .otp = r->otp && r->otp[0] ? r->otp : NULL,
                                .address = s->ip, .origin = s->origin};
    struct jwt_identity id = {0};
    const char *detail = NULL;
    char why[128];
    int rc = ask_webhook(s, &q, AUTH_PASSWORD, &id, why, sizeof(why),
                         &detail);

    if (rc == 0)
        auth_apply(s, AUTH_PASSWORD, CRED_WEBHOOK, &id, s->auth_id,
                   s->auth_id_len);
    else if (rc < 0)
        auth_apply_failed(s, AUTH_PASSWORD, why, detail, s->auth_id,
                          s->auth_id_len);
    if (rc <= 0)
        auth_forget_id(s);
    jwt_identity_clear(&id);
}

void auth_keys_fetched(const struct jwks *set)
{
    struct session *list = waiters, *s;

    jwt_verifier_use_set(auth_verifier(), set);
    waiters = NULL;
    while ((s = list)) {
        enum auth_method m = (enum auth_method)s->auth_method;
        enum session_cred cred;
        struct jwt_identity id = {0};
        char why[128];
        char *token = s->auth_token;
        int rc = -1;

        list = s->kid_next;
        if (list)
            list->kid_prev = NULL;
        s->kid_prev = s->kid_next = NULL;
        s->auth_token = NULL;
        if (s->state == SS_CLOSING) {
            free(token);
            auth_forget_id(s);
            continue;
        }
        /* once: a kid still unknown after the fetch is refused */
        if (auth_verifier() && jws_compact_form(token))
            rc = jwt_verify_token(auth_verifier(), conf(), token, &id, why,
                                  sizeof(why));
        else
            snprintf(why, sizeof(why), "token authentication is off");
        cred = CRED_TOKEN;
        if (rc == 0)
            rc = auth_apply(s, m, cred, &id, s->auth_id, s->auth_id_len);
        else
            auth_apply_failed(s, m,
                              rc == JWT_VERIFY_UNKNOWN_KID
                                  ? "token kid not in the key set, also "
                                    "after fetching it again"
                                  : why,
                              NULL, s->auth_id, s->auth_id_len);
        jwt_identity_clear(&id);
        free(token);
        settle(s, m, rc == 0);
    }
}

void auth_wait_cancel(struct session *s)
{
    if (s->auth_call)
        auth_http_forget(s->auth_call);
    s->auth_call = NULL;
    if (s->auth_token) {
        unlink_waiter(s);
        free(s->auth_token);
        s->auth_token = NULL;
    }
}
