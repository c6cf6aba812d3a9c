/* Pass 2 of the config loader: the rules that span several keys
 * (mosquitto's config__check). Each broken rule is reported on the key
 * that has to change. */
#include <string.h>

#include "config_int.h"

static bool is_wildcard_bind(const char *b)
{
    return strcmp(b, "0.0.0.0") == 0 || strcmp(b, "::") == 0;
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
    if (jwt) {
        bool hs = jwt->alg && jwt->alg[0] == 'H';

        if (jwt->alg && hs && !jwt->secret_file) {
            const struct path p = P(&p_jwt, "secret_file");

            config_err(c, &p, false, "required with alg %s", jwt->alg);
        }
        if (jwt->alg && !hs && !jwt->public_key_file) {
            const struct path p = P(&p_jwt, "public_key_file");

            config_err(c, &p, false, "required with alg %s", jwt->alg);
        }
        for (i = 0; i < jwt->n_default_roles; i++) {
            const struct path p_dr = P(&p_jwt, "default_roles");
            const struct path p = PI(&p_dr, i);

            if (!config_role(cfg, jwt->default_roles[i]))
                config_err(c, &p, true,
                           "expected the name of a role in roles");
        }
    }
}
