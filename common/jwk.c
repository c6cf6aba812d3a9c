#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base64.h"
#include "jwk.h"

/* An EC curve's JWK name, coordinate size and the algorithm of it. */
static const struct curve {
    const char *crv;
    size_t len;
    const char *alg;
} curves[] = {
    {"P-256", 32, "ES256"},
    {"P-384", 48, "ES384"},
    {"P-521", 66, "ES512"},
};

#define NCURVES (sizeof(curves) / sizeof(curves[0]))

static const struct curve *curve_named(const char *crv)
{
    for (size_t i = 0; i < NCURVES; i++)
        if (crv && strcmp(crv, curves[i].crv) == 0)
            return &curves[i];
    return NULL;
}

static bool is_rsa_alg(const char *alg)
{
    return strcmp(alg, "RS256") == 0 || strcmp(alg, "RS384") == 0 ||
           strcmp(alg, "RS512") == 0;
}

const char *jwk_agrees(const struct jwk *k, const char *alg)
{
    const struct curve *c;

    if (k->alg && strcmp(k->alg, alg) != 0)
        return "the key's alg is not the token's";
    if (k->kty == JWK_RSA)
        return is_rsa_alg(alg) ? NULL
                               : "the key's kty (RSA) does not fit the token's alg";
    c = curve_named(k->crv);
    return c && strcmp(c->alg, alg) == 0
               ? NULL
               : "the key's kty or crv does not fit the token's alg";
}

enum jwk_find jwk_set_find(const struct jwk_set *set, const char *kid,
                           size_t *idx)
{
    if (!kid) {
        if (set->n != 1)
            return JWK_NO_KID;
        *idx = 0;
        return JWK_FOUND;
    }
    for (size_t i = 0; i < set->n; i++)
        if (set->keys[i].kid && strcmp(set->keys[i].kid, kid) == 0) {
            *idx = i;
            return JWK_FOUND;
        }
    return JWK_UNKNOWN_KID;
}

void jwk_clear(struct jwk *k)
{
    free(k->kid);
    free(k->alg);
    free(k->crv);
    free(k->a);
    free(k->b);
    memset(k, 0, sizeof(*k));
}

void jwk_set_free(struct jwk_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        jwk_clear(&set->keys[i]);
    free(set->keys);
    free(set);
}

/* A member that is a non-empty string without U+0000, or NULL. */
static const char *str_member(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);

    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

/* Decodes the base64url member name of o into *out (malloc'd), its
 * leading zero bytes dropped when strip. NULL when fine, else why not. */
static const char *bytes_member(json_t *o, const char *name, bool strip,
                                unsigned char **out, size_t *len)
{
    const char *s = str_member(o, name);
    size_t n, skip = 0;

    *out = NULL;
    if (!s)
        return "a member is missing or not a string";
    if (!(*out = malloc(base64url_decoded_max(strlen(s)) + 1)))
        return "out of memory";
    if (base64url_decode(s, strlen(s), *out, &n) < 0) {
        free(*out);
        *out = NULL;
        return "a member is not base64url";
    }
    while (strip && skip + 1 < n && (*out)[skip] == 0)
        skip++;
    memmove(*out, *out + skip, n - skip);
    *len = n - skip;
    return NULL;
}

/* The bits of the big-endian unsigned a[0..n), leading zeros dropped. */
static size_t bits_of(const unsigned char *a, size_t n)
{
    size_t bits = n * 8;

    for (unsigned char top = n ? a[0] : 0; bits && !(top & 0x80); top <<= 1)
        bits--;
    return bits;
}

static bool has_verify_op(json_t *ops)
{
    size_t i;
    json_t *v;

    json_array_foreach(ops, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), "verify") == 0)
            return true;
    return false;
}

/* Fills k from the JWK o; NULL when it is a usable verification key,
 * else why it is left out. */
static const char *take_key(json_t *o, struct jwk *k)
{
    static const char *const private_members[] = {"d", "p", "q", "dp",
                                                  "dq", "qi", "k", NULL};
    const char *kty, *s, *why;
    json_t *ops;

    if (!json_is_object(o))
        return "not a JSON object";
    kty = str_member(o, "kty");
    if (!kty)
        return "no kty";
    if (strcmp(kty, "oct") == 0)
        return "kty oct: a shared secret is not taken from a key set";
    if (strcmp(kty, "OKP") == 0)
        return "kty OKP (EdDSA): not supported by this build's libjwt (1.10)";
    if (strcmp(kty, "RSA") != 0 && strcmp(kty, "EC") != 0)
        return "kty not RSA or EC";
    for (size_t i = 0; private_members[i]; i++)
        if (json_object_get(o, private_members[i]))
            return "holds a private key: a key set is public";
    if ((s = str_member(o, "use")) && strcmp(s, "sig") != 0)
        return "use is not sig";
    if (json_object_get(o, "use") && !s)
        return "use is not a string";
    ops = json_object_get(o, "key_ops");
    if (ops && (!json_is_array(ops) || !has_verify_op(ops)))
        return "key_ops without verify";
    if (json_object_get(o, "kid") && !str_member(o, "kid"))
        return "kid is not a non-empty string";
    if (json_object_get(o, "alg") && !str_member(o, "alg"))
        return "alg is not a string";
    k->kty = strcmp(kty, "RSA") == 0 ? JWK_RSA : JWK_EC;
    if ((s = str_member(o, "kid")) && !(k->kid = strdup(s)))
        return "out of memory";
    if ((s = str_member(o, "alg")) && !(k->alg = strdup(s)))
        return "out of memory";
    if (k->kty == JWK_RSA) {
        size_t bits;

        if (k->alg && !is_rsa_alg(k->alg))
            return strncmp(k->alg, "PS", 2) == 0
                       ? "alg PS*: not supported by this build's libjwt "
                         "(1.10)"
                       : "alg is not RS256, RS384 or RS512";
        if ((why = bytes_member(o, "n", true, &k->a, &k->a_len)) ||
            (why = bytes_member(o, "e", true, &k->b, &k->b_len)))
            return why;
        bits = bits_of(k->a, k->a_len);
        if (bits < JWK_RSA_MIN_BITS || bits > JWK_RSA_MAX_BITS)
            return "RSA modulus not of 2048 to 16384 bits";
        if (k->b_len > 8 || bits_of(k->b, k->b_len) < 2 ||
            !(k->b[k->b_len - 1] & 1))
            return "RSA exponent not an odd number of at most 64 bits";
    } else {
        const struct curve *c = curve_named(str_member(o, "crv"));

        if (!c)
            return "crv not P-256, P-384 or P-521";
        if (!(k->crv = strdup(c->crv)))
            return "out of memory";
        if (k->alg && strcmp(k->alg, c->alg) != 0)
            return "alg is not the one of its curve";
        if ((why = bytes_member(o, "x", false, &k->a, &k->a_len)) ||
            (why = bytes_member(o, "y", false, &k->b, &k->b_len)))
            return why;
        if (k->a_len != c->len || k->b_len != c->len)
            return "x or y not of the curve's size";
    }
    return NULL;
}

int jwk_set_parse(const char *text, size_t len, struct jwk_set **out,
                  struct errbuf *e)
{
    json_t *doc, *keys, *o;
    json_error_t je;
    struct jwk_set *set = NULL;
    size_t i;

    *out = NULL;
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        errbuf_printf(e, "line %d: %s\n", je.line, je.text);
        return -1;
    }
    keys = json_object_get(doc, "keys");
    if (!json_is_object(doc) || !json_is_array(keys)) {
        errbuf_puts(e, "not a JWK Set: expected an object with a \"keys\" "
                       "array\n");
        goto fail;
    }
    if (!(set = calloc(1, sizeof(*set))) ||
        !(set->keys = calloc(json_array_size(keys) ? json_array_size(keys)
                                                    : 1,
                             sizeof(*set->keys)))) {
        errbuf_puts(e, "out of memory\n");
        goto fail;
    }
    json_array_foreach(keys, i, o) {
        struct jwk *k = &set->keys[set->n];
        const char *why = take_key(o, k);
        size_t dup;

        if (!why && set->n == JWK_SET_MAX_KEYS)
            why = "more keys than the 64 taken from a set";
        if (!why && k->kid && jwk_set_find(set, k->kid, &dup) == JWK_FOUND)
            why = "its kid is another key's";
        if (why) {
            const char *kid = json_is_object(o) ? str_member(o, "kid") : NULL;

            errbuf_printf(e, "keys[%zu]%s%.64s%s: left out: %s\n", i,
                          kid ? " (kid \"" : "", kid ? kid : "",
                          kid ? "\")" : "", why);
            jwk_clear(k);
            if (strcmp(why, "out of memory") == 0)
                goto fail;
            continue;
        }
        set->n++;
    }
    json_decref(doc);
    *out = set;
    return 0;
fail:
    jwk_set_free(set);
    json_decref(doc);
    return -1;
}
