/* Pass 2 of the config loader: the rules that span several keys
 * (mosquitto's config__check). Each broken rule is reported on the key
 * that has to change. */
#include <string.h>

#include "config_int.h"

static bool is_wildcard_bind(const char *b)
{
    return strcmp(b, "0.0.0.0") == 0 || strcmp(b, "::") == 0;
}

static bool is_hs(const char *alg)
{
    return alg[0] == 'H';
}

/* auth.jwt: one key source; the algorithms it needs and may verify. */
static void check_jwt(struct ctx *c, const struct cfg_jwt *jwt,
                      const struct path *p_jwt)
{
    static const char *const names[] = {
        "secret_file", "public_key_file", "jwks_file", "jwks_url"
    };
    const char *given[4] = {jwt->secret_file, jwt->public_key_file,
                            jwt->jwks_file, jwt->jwks_url};
    bool jwks = jwt->jwks_file || jwt->jwks_url;
    const char *first = NULL;
    size_t i;

    for (i = 0; i < 4; i++) {
        const struct path p = P(p_jwt, names[i]);

        if (!given[i])
            continue;
        if (first)
            config_err(c, &p, false, "only one key source may be given "
                       "(auth.jwt.%s is too)", first);
        else
            first = names[i];
    }
    if (!first && !(jwt->alg && is_hs(jwt->alg)))
        config_err(c, p_jwt, false, "expected a key source: one of "
                   "secret_file, public_key_file, jwks_file, jwks_url");
    if (!jwt->alg && !jwt->n_algs) {
        const struct path p = P(p_jwt, jwks ? "algs" : "alg");

        config_err(c, &p, false, "required key missing");
        return;
    }
    if (jwt->alg && jwt->n_algs) {
        const struct path p = P(p_jwt, "alg");
        bool in = false;

        for (i = 0; i < jwt->n_algs; i++)
            in = in || strcmp(jwt->algs[i], jwt->alg) == 0;
        if (!in)
            config_err(c, &p, true, "not one of auth.jwt.algs");
    }
    for (i = 0; i < (jwt->n_algs ? jwt->n_algs : 1); i++) {
        const char *a = jwt->n_algs ? jwt->algs[i] : jwt->alg;
        const struct path p_algs = P(p_jwt, jwt->n_algs ? "algs" : "alg");
        const struct path p_ai = PI(&p_algs, i);
        const struct path *p = jwt->n_algs ? &p_ai : &p_algs;

        /* a key set is public: an HMAC "key" in it would be known to
         * everybody, and a public key taken for an HMAC secret is the
         * algorithm confusion attack */
        if (is_hs(a) && !jwt->secret_file && !first) {
            const struct path p_s = P(p_jwt, "secret_file");

            config_err(c, &p_s, false, "required with alg %s", a);
            break;
        }
        if (is_hs(a) && !jwt->secret_file)
            config_err(c, p, true, "an HMAC algorithm needs "
                       "auth.jwt.secret_file");
        else if (!is_hs(a) && jwt->secret_file)
            config_err(c, p, true, "auth.jwt.secret_file holds an HMAC "
                       "secret: expected HS256, HS384 or HS512");
    }
    if (jwt->jwks_ca_file && !jwt->jwks_url) {
        const struct path p = P(p_jwt, "jwks_ca_file");

        config_err(c, &p, false, "only with auth.jwt.jwks_url");
    }
    if (jwt->jwks_min_refresh_s > jwt->jwks_refresh_s) {
        const struct path p = P(p_jwt, "jwks_min_refresh_s");

        config_err(c, &p, false, "%d is more than auth.jwt.jwks_refresh_s "
                   "(%d)", jwt->jwks_min_refresh_s, jwt->jwks_refresh_s);
    }
}

void config_check_rules(struct ctx *c, const struct config *cfg)
{
    const struct path p_listeners = P(NULL, "listeners");
    const struct path p_broker = P(NULL, "broker");
    const struct path p_auth = P(NULL, "auth");
    const struct path p_jwt = P(&p_auth, "jwt");
    const struct cfg_broker *b = &cfg->broker;
    const struct cfg_jwt *jwt = cfg->auth.jwt;
    size_t i, j;

    for (i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        const struct path p_l = PI(&p_listeners, i);
        const struct path p_tls = P(&p_l, "tls");
        const struct path p_port = P(&p_l, "port");
        const struct path p_ca = P(&p_tls, "ca_file");

        if (l->tls && l->tls->verify_client && !l->tls->ca_file)
            config_err(c, &p_ca, false,
                       "required when verify_client is true");
        for (j = 0; j < i; j++) {
            const struct cfg_listener *o = &cfg->listeners[j];

            if (o->port == l->port &&
                (strcmp(o->bind, l->bind) == 0 ||
                 is_wildcard_bind(o->bind) || is_wildcard_bind(l->bind))) {
                config_err(c, &p_port, false,
                           "%s port %d overlaps listeners[%zu] (%s port %d)",
                           l->bind, l->port, j, o->bind, o->port);
                break;
            }
        }
    }

    if (b->reconnect_max_s < b->reconnect_min_s) {
        const struct path p = P(&p_broker, "reconnect_max_s");

        config_err(c, &p, false,
                   "%d is less than broker.reconnect_min_s (%d)",
                   b->reconnect_max_s, b->reconnect_min_s);
    }
    if (b->tls && !b->tls->cert_file != !b->tls->key_file) {
        const struct path p_tls = P(&p_broker, "tls");
        const struct path p = P(&p_tls, b->tls->cert_file ? "key_file"
                                                          : "cert_file");

        config_err(c, &p, false, "required with broker.tls.%s",
                   b->tls->cert_file ? "cert_file" : "key_file");
    }

    if (cfg->auth.anonymous_role &&
        !config_role(cfg, cfg->auth.anonymous_role)) {
        const struct path p = P(&p_auth, "anonymous_role");

        config_err(c, &p, true, "expected the name of a role in roles");
    }
    if (jwt)
        check_jwt(c, jwt, &p_jwt);
    if (jwt) {
        for (i = 0; i < jwt->n_default_roles; i++) {
            const struct path p_dr = P(&p_jwt, "default_roles");
            const struct path p = PI(&p_dr, i);

            if (!config_role(cfg, jwt->default_roles[i]))
                config_err(c, &p, true,
                           "expected the name of a role in roles");
        }
    }
}
