#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth_jwt.h"
#include "jwks.h"
#include "jws.h"
#include "log.h"

#define KEY_MAX (64 * 1024)
#define TOKEN_MAX (16 * 1024)

struct jwt_verifier {
    unsigned algs;              /* 1 << jwt_alg_t, for each accepted */
    unsigned char *key;         /* secret_file, public_key_file */
    size_t key_len;
    struct jwks *own;           /* jwks_file */
    bool url;                   /* jwks_url: the set given by use_set */
    const struct jwks *set;     /* own, or the jwks_url's last good set */
};

static int refuse(char *why, size_t whylen, const char *reason)
{
    snprintf(why, whylen, "%s", reason);
    return -1;
}

/* The whole file, NUL-terminated, at most KEY_MAX bytes. */
static unsigned char *read_file(const char *path, size_t *len, char *why,
                                size_t whylen)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    size_t n;

    if (!f) {
        snprintf(why, whylen, "%s", strerror(errno));
        return NULL;
    }
    buf = malloc(KEY_MAX + 1);
    if (!buf) {
        fclose(f);
        refuse(why, whylen, "out of memory");
        return NULL;
    }
    n = fread(buf, 1, KEY_MAX + 1, f);
    if (ferror(f) || n > KEY_MAX) {
        if (ferror(f))
            refuse(why, whylen, "cannot be read");
        else
            snprintf(why, whylen, "larger than %d bytes", KEY_MAX);
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The EC group an ES* algorithm needs, or NULL for the others. */
static const char *es_group(jwt_alg_t alg)
{
    switch (alg) {
    case JWT_ALG_ES256: return "prime256v1";
    case JWT_ALG_ES384: return "secp384r1";
    case JWT_ALG_ES512: return "secp521r1";
    default: return NULL;
    }
}

static bool is_rs(jwt_alg_t alg)
{
    return alg == JWT_ALG_RS256 || alg == JWT_ALG_RS384 ||
           alg == JWT_ALG_RS512;
}

/* NULL when pem holds a public key that libjwt can verify alg with (a
 * SubjectPublicKeyInfo PEM, "BEGIN PUBLIC KEY": RSA for RS*, EC of the
 * curve for ES*), else the reason. */
static const char *public_key_problem(jwt_alg_t alg, const unsigned char *pem,
                                      size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    const char *why = NULL, *want = es_group(alg);
    char group[64];

    if (!k)
        why = "not a PEM public key (-----BEGIN PUBLIC KEY-----)";
    else if (is_rs(alg) && EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA)
        why = "not an RSA public key, which RS256, RS384 and RS512 need";
    else if (want &&
             (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
              EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME,
                                             group, sizeof(group),
                                             NULL) != 1 ||
              strcmp(group, want) != 0))
        why = alg == JWT_ALG_ES256   ? "not an EC P-256 public key, which ES256 needs"
              : alg == JWT_ALG_ES384 ? "not an EC P-384 public key, which ES384 needs"
                                     : "not an EC P-521 public key, which ES512 needs";
    EVP_PKEY_free(k);
    BIO_free(b);
    ERR_clear_error();
    return why;
}

/* The accepted algorithms of c: algs, or [alg]. */
static size_t n_algs(const struct cfg_jwt *c)
{
    return c->n_algs ? c->n_algs : 1;
}

static const char *alg_at(const struct cfg_jwt *c, size_t i)
{
    return c->n_algs ? c->algs[i] : c->alg;
}

struct jwt_verifier *jwt_verifier_load(const struct cfg_jwt *c, char *why,
                                       size_t whylen)
{
    struct jwt_verifier *v = calloc(1, sizeof(*v));
    const char *problem;

    if (!v) {
        refuse(why, whylen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n_algs(c); i++) {
        jwt_alg_t a = jwt_str_alg(alg_at(c, i));

        if (a == JWT_ALG_NONE || a == JWT_ALG_INVAL) {
            snprintf(why, whylen, "alg %s: not supported", alg_at(c, i));
            goto fail;
        }
        v->algs |= 1u << a;
    }
    if (c->jwks_url) {
        v->url = true;
        return v;
    }
    if (c->jwks_file) {
        struct errbuf e = {.buf = why, .len = whylen};

        if (whylen)
            why[0] = '\0';
        if (!(v->own = jwks_load(c->jwks_file, &e)))
            goto fail;
        v->set = v->own;
        return v;
    }
    if (!(v->key = read_file(jwt_key_file(c), &v->key_len, why, whylen)))
        goto fail;
    if (c->secret_file && v->key_len && v->key[v->key_len - 1] == '\n')
        v->key[--v->key_len] = '\0';
    if (v->key_len == 0) {
        refuse(why, whylen, "empty");
        goto fail;
    }
    for (size_t i = 0; !c->secret_file && i < n_algs(c); i++)
        if ((problem = public_key_problem(jwt_str_alg(alg_at(c, i)), v->key,
                                          v->key_len))) {
            refuse(why, whylen, problem);
            goto fail;
        }
    return v;
fail:
    jwt_verifier_free(v);
    return NULL;
}

void jwt_verifier_use_set(struct jwt_verifier *v, const struct jwks *set)
{
    if (v && v->url)
        v->set = set;
}

const char *jwt_key_key(const struct cfg_jwt *c)
{
    return c->secret_file  ? "auth.jwt.secret_file"
           : c->jwks_file  ? "auth.jwt.jwks_file"
           : c->jwks_url   ? "auth.jwt.jwks_url"
                           : "auth.jwt.public_key_file";
}

const char *jwt_key_file(const struct cfg_jwt *c)
{
    return c->secret_file  ? c->secret_file
           : c->jwks_file  ? c->jwks_file
           : c->jwks_url   ? c->jwks_url
                           : c->public_key_file;
}

/* Logs each line of text at lvl, with the key and file. */
static void log_lines(enum log_level lvl, const struct cfg_jwt *c,
                      const char *text)
{
    for (const char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        log_msg(lvl, "%s: %s: %.*s", jwt_key_key(c), jwt_key_file(c),
                (int)(nl ? (size_t)(nl - line) : strlen(line)), line);
        if (!nl)
            break;
    }
}

struct jwt_verifier *jwt_verifier_new(const struct cfg_jwt *c)
{
    char why[4096] = "";
    struct jwt_verifier *v = jwt_verifier_load(c, why, sizeof(why));

    if (!v)
        log_lines(LOG_LVL_ERROR, c, why);
    else if (c->jwks_file && why[0])
        log_lines(LOG_LVL_WARN, c, why);
    if (v && c->jwks_file)
        log_info("%s: %s: %zu key%s", jwt_key_key(c), jwt_key_file(c),
                 jwks_count(v->own), jwks_count(v->own) == 1 ? "" : "s");
    return v;
}

void jwt_verifier_free(struct jwt_verifier *v)
{
    if (!v)
        return;
    if (v->key)
        memset(v->key, 0, v->key_len);
    free(v->key);
    jwks_free(v->own);
    free(v);
}

void jwt_identity_clear(struct jwt_identity *id)
{
    free(id->user);
    free(id->roles);
    memset(id, 0, sizeof(*id));
}

/* v is a string equal to want, byte for byte (a U+0000 in v is no end). */
static bool str_is(json_t *v, const char *want)
{
    return json_is_string(v) && json_string_length(v) == strlen(want) &&
           memcmp(json_string_value(v), want, json_string_length(v)) == 0;
}

static bool aud_matches(json_t *aud, const char *want)
{
    size_t i;
    json_t *v;

    if (json_is_string(aud))
        return str_is(aud, want);
    json_array_foreach(aud, i, v)
        if (str_is(v, want))
            return true;
    return false;
}

/* A JSON string that holds no U+0000 (C sees all of it). */
static bool plain_string(json_t *v)
{
    return json_is_string(v) &&
           strlen(json_string_value(v)) == json_string_length(v);
}

/* An array of strings (config.md: else default_roles apply). */
static bool string_array(json_t *a)
{
    size_t i;
    json_t *x;

    if (!json_is_array(a))
        return false;
    json_array_foreach(a, i, x)
        if (!json_is_string(x))
            return false;
    return true;
}

static void add_role(const struct config *cfg, struct jwt_identity *id,
                     const char *name)
{
    const struct cfg_role *r = config_role(cfg, name);

    if (!r)
        return; /* unknown names are ignored */
    for (size_t i = 0; i < id->n_roles; i++)
        if (id->roles[i] == r)
            return;
    id->roles[id->n_roles++] = r;
}

/* The claims rules of cfg->auth.jwt on verified claims at time now: fills
 * id and returns 0, or -1 with the reason in why (id to be cleared). */
static int check_claims(const struct config *cfg, json_t *claims, time_t now,
                        struct jwt_identity *id, char *why, size_t whylen)
{
    const struct cfg_jwt *c = cfg->auth.jwt;
    json_t *exp, *nbf, *user, *roles, *x;
    size_t i;

    if (!json_is_object(claims))
        return refuse(why, whylen, "token claims not readable");
    exp = json_object_get(claims, "exp");
    if (!json_is_number(exp))
        return refuse(why, whylen, "token has no exp");
    if (json_number_value(exp) <= (double)now)
        return refuse(why, whylen, "token expired");
    id->exp = (time_t)json_number_value(exp);
    nbf = json_object_get(claims, "nbf");
    if (nbf && (!json_is_number(nbf) || json_number_value(nbf) > (double)now))
        return refuse(why, whylen, "token not valid yet (nbf)");
    if (c->issuer && !str_is(json_object_get(claims, "iss"), c->issuer))
        return refuse(why, whylen, "token issuer not accepted");
    if (c->audience && !aud_matches(json_object_get(claims, "aud"),
                                    c->audience))
        return refuse(why, whylen, "token audience not accepted");
    user = json_object_get(claims, c->user_claim);
    if (!json_is_string(user) || json_string_length(user) == 0 ||
        json_string_length(user) > 256)
        return refuse(why, whylen, "token carries no user name");
    /* "alice\u0000x" would be "alice" to every C string function */
    if (!plain_string(user))
        return refuse(why, whylen, "token user name holds U+0000");
    if (!(id->user = strdup(json_string_value(user))))
        return refuse(why, whylen, "out of memory");
    id->roles = calloc(cfg->n_roles + 1, sizeof(*id->roles));
    if (!id->roles)
        return refuse(why, whylen, "out of memory");
    roles = json_object_get(claims, c->roles_claim);
    if (string_array(roles)) {
        /* a name holding U+0000 is no role's name: ignored as unknown */
        json_array_foreach(roles, i, x)
            if (plain_string(x))
                add_role(cfg, id, json_string_value(x));
    } else {
        for (i = 0; i < c->n_default_roles; i++)
            add_role(cfg, id, c->default_roles[i]);
    }
    return 0;
}

/* The key for the token with header h: v's own, or the key set's. 0,
 * -1 (refused, why set) or JWT_VERIFY_UNKNOWN_KID. */
static int pick_key(const struct jwt_verifier *v, const struct jws_header *h,
                    const unsigned char **key, size_t *len, const char **why)
{
    if (!v->own && !v->url) {
        *key = v->key;
        *len = v->key_len;
        return 0;
    }
    if (!v->set) {
        *why = "no key set fetched yet";
        return JWT_VERIFY_UNKNOWN_KID;
    }
    switch (jwks_pick(v->set, h, key, len, why)) {
    case JWKS_KEY:
        return 0;
    case JWKS_UNKNOWN_KID:
        return v->url ? JWT_VERIFY_UNKNOWN_KID : -1;
    case JWKS_REFUSED:
        break;
    }
    return -1;
}

int jwt_verify_token(const struct jwt_verifier *v, const struct config *cfg,
                     const char *token, struct jwt_identity *id, char *why,
                     size_t whylen)
{
    struct jws_header h;
    const unsigned char *key;
    const char *reason;
    jwt_t *jwt = NULL;
    char *grants = NULL;
    json_t *claims = NULL;
    size_t key_len;
    jwt_alg_t alg;
    int rc = -1;

    memset(id, 0, sizeof(*id));
    if (strlen(token) > TOKEN_MAX)
        return refuse(why, whylen, "token too long");
    if (jws_header_parse(token, &h, &reason) < 0)
        return refuse(why, whylen, reason);
    /* Only the configured algorithms, chosen before any key is: never
     * "none", never an HMAC made with a public key as the secret. */
    alg = jwt_str_alg(h.alg);
    if (alg == JWT_ALG_INVAL || alg == JWT_ALG_NONE || !(v->algs & (1u << alg)))
        return refuse(why, whylen, "token algorithm not accepted");
    if ((rc = pick_key(v, &h, &key, &key_len, &reason)) != 0) {
        refuse(why, whylen, reason);
        return rc;
    }
    rc = -1;
    if (jwt_decode(&jwt, token, key, (int)key_len) != 0 || !jwt) {
        refuse(why, whylen, "token not valid (signature or format)");
        goto out;
    }
    if (jwt_get_alg(jwt) != alg) {
        refuse(why, whylen, "token algorithm not accepted");
        goto out;
    }
    if (!(grants = jwt_get_grants_json(jwt, NULL)) ||
        !(claims = json_loads(grants, JSON_ALLOW_NUL, NULL))) {
        refuse(why, whylen, "token claims not readable");
        goto out;
    }
    rc = check_claims(cfg, claims, time(NULL), id, why, whylen);
out:
    if (rc < 0)
        jwt_identity_clear(id);
    json_decref(claims);
    free(grants);
    jwt_free(jwt);
    return rc;
}
