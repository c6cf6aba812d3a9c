#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>

#include "auth_jwt.h"
#include "log.h"

#define KEY_MAX (64 * 1024)
#define TOKEN_MAX (16 * 1024)

struct jwt_verifier {
    jwt_alg_t alg;
    unsigned char *key;
    size_t key_len;
};

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    size_t n;

    if (!f)
        return NULL;
    buf = malloc(KEY_MAX + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, KEY_MAX + 1, f);
    fclose(f);
    if (n > KEY_MAX) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

struct jwt_verifier *jwt_verifier_new(const struct cfg_jwt *c)
{
    struct jwt_verifier *v = calloc(1, sizeof(*v));
    const char *file = c->secret_file ? c->secret_file : c->public_key_file;

    if (!v)
        return NULL;
    v->alg = jwt_str_alg(c->alg);
    if (v->alg == JWT_ALG_NONE || v->alg == JWT_ALG_INVAL) {
        log_error("auth.jwt.alg %s: not supported", c->alg);
        goto fail;
    }
    if (!(v->key = read_file(file, &v->key_len))) {
        log_error("auth.jwt: cannot read the key file %s", file);
        goto fail;
    }
    if (c->secret_file && v->key_len && v->key[v->key_len - 1] == '\n')
        v->key[--v->key_len] = '\0';
    if (v->key_len == 0) {
        log_error("auth.jwt: the key file %s is empty", file);
        goto fail;
    }
    return v;
fail:
    jwt_verifier_free(v);
    return NULL;
}

void jwt_verifier_free(struct jwt_verifier *v)
{
    if (!v)
        return;
    if (v->key)
        memset(v->key, 0, v->key_len);
    free(v->key);
    free(v);
}

void jwt_identity_clear(struct jwt_identity *id)
{
    free(id->user);
    free(id->roles);
    memset(id, 0, sizeof(*id));
}

static int fail(char *why, size_t whylen, const char *reason)
{
    snprintf(why, whylen, "%s", reason);
    return -1;
}

static int aud_matches(json_t *aud, const char *want)
{
    size_t i;
    json_t *v;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    json_array_foreach(aud, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return 1;
    return 0;
}

static int add_role(const struct config *cfg, struct jwt_identity *id,
                    const char *name)
{
    const struct cfg_role *r = config_role(cfg, name);

    if (!r)
        return 0; /* unknown names are ignored */
    for (size_t i = 0; i < id->n_roles; i++)
        if (id->roles[i] == r)
            return 0;
    id->roles[id->n_roles++] = r;
    return 0;
}

int jwt_verify_token(const struct jwt_verifier *v, const struct config *cfg,
                     const char *token, struct jwt_identity *id, char *why,
                     size_t whylen)
{
    const struct cfg_jwt *c = cfg->auth.jwt;
    jwt_t *jwt = NULL;
    char *grants = NULL;
    json_t *claims = NULL, *exp, *nbf, *user, *roles, *x;
    time_t now = time(NULL);
    size_t i;
    int rc = -1;

    memset(id, 0, sizeof(*id));
    if (strlen(token) > TOKEN_MAX)
        return fail(why, whylen, "token too long");
    if (jwt_decode(&jwt, token, v->key, (int)v->key_len) != 0 || !jwt) {
        fail(why, whylen, "token not valid (signature or format)");
        goto out;
    }
    /* Only the configured algorithm: never "none", never an HMAC made
     * with a public key as the secret. */
    if (jwt_get_alg(jwt) != v->alg) {
        fail(why, whylen, "token algorithm not accepted");
        goto out;
    }
    if (!(grants = jwt_get_grants_json(jwt, NULL)) ||
        !(claims = json_loads(grants, 0, NULL)) || !json_is_object(claims)) {
        fail(why, whylen, "token claims not readable");
        goto out;
    }
    exp = json_object_get(claims, "exp");
    if (!json_is_number(exp)) {
        fail(why, whylen, "token has no exp");
        goto out;
    }
    if (json_number_value(exp) <= (double)now) {
        fail(why, whylen, "token expired");
        goto out;
    }
    id->exp = (time_t)json_number_value(exp);
    nbf = json_object_get(claims, "nbf");
    if (nbf && (!json_is_number(nbf) || json_number_value(nbf) > (double)now)) {
        fail(why, whylen, "token not valid yet (nbf)");
        goto out;
    }
    if (c->issuer) {
        x = json_object_get(claims, "iss");
        if (!json_is_string(x) || strcmp(json_string_value(x), c->issuer)) {
            fail(why, whylen, "token issuer not accepted");
            goto out;
        }
    }
    if (c->audience && !aud_matches(json_object_get(claims, "aud"),
                                    c->audience)) {
        fail(why, whylen, "token audience not accepted");
        goto out;
    }
    user = json_object_get(claims, c->user_claim);
    if (!json_is_string(user) || json_string_length(user) == 0 ||
        json_string_length(user) > 256) {
        fail(why, whylen, "token carries no user name");
        goto out;
    }
    if (!(id->user = strdup(json_string_value(user))))
        goto out;
    roles = json_object_get(claims, c->roles_claim);
    if (!json_is_array(roles))
        roles = NULL;
    id->roles = calloc(cfg->n_roles + 1, sizeof(*id->roles));
    if (!id->roles)
        goto out;
    if (roles) {
        json_array_foreach(roles, i, x)
            if (json_is_string(x))
                add_role(cfg, id, json_string_value(x));
    } else {
        for (i = 0; i < c->n_default_roles; i++)
            add_role(cfg, id, c->default_roles[i]);
    }
    rc = 0;
out:
    if (rc < 0)
        jwt_identity_clear(id);
    json_decref(claims);
    free(grants);
    jwt_free(jwt);
    return rc;
}
