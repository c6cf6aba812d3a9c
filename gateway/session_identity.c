/* A session's identity (session.h: session_set_identity(), session_reload(),
 * session_identity_json()): taking one, refreshing it with a new
 * credential's roles, re-checking its subscriptions, and what a reload
 * leaves of it. Part of the session module. Service thread only. */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "auth_users.h"
#include "conf.h"
#include "jbuf.h"
#include "log.h"
#include "reply.h"
#include "session.h"
#include "session_int.h"
#include "subs.h"

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
    subs_session_recheck(s);
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
    subs_session_recheck(s);
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
    subs_holds_view(&s->holds, s->mount, s->mount_len, false);
    session_set_state(s, SS_AUTHED);
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
    session_send_status(s, session_broker_up());
}

int session_subscribe_qos(const struct session *s, const char *filter,
                          size_t len)
{
    return acl_subscribe_qos(s->roles, s->n_roles, s->user, filter, len);
}

void session_identity_json(const struct session *s, struct jbuf *b)
{
    if (!s->anonymous)
        reply_identity(b, s->user, s->roles, s->n_roles);
    reply_allow(b, s->roles, s->n_roles, s->user);
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
        const char *a = conf()->auth.anonymous_role;
        const struct cfg_role *r = a ? config_role(conf(), a) : NULL;

        if (r)
            roles[n++] = r;
        break;
    }
    case CRED_PASSWORD:
        /* the users file decides, as at a new login */
        if (auth_users_lookup(s->user, conf(), &looked, &n) < 0) {
            s->n_roles = 0;
            session_close(s, 4401, "user removed by a reload");
            return;
        }
        if (swap_roles(s, looked, n, &why) < 0)
            goto refuse;
        free(looked);
        return;
    case CRED_TOKEN:
    case CRED_WEBHOOK:
        if (s->cred == CRED_TOKEN ? !conf()->auth.jwt : !conf()->auth.http) {
            s->n_roles = 0;
            session_close(s, 4401, s->cred == CRED_TOKEN
                                       ? "token authentication removed by "
                                         "a reload"
                                       : "webhook authentication removed "
                                         "by a reload");
            return;
        }
        for (size_t i = 0; i < s->n_roles && n < 64; i++) {
            const struct cfg_role *r = config_role(conf(), s->roles[i]->name);

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

