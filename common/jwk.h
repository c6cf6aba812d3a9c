/* A JWK Set (RFC 7517) as a list of verification keys: the members each
 * usable key has, decoded; the keys the gateway cannot or must not use
 * left out with the reason. And the rules that tie a token's header to a
 * key: chosen by kid, kty, crv and alg agreeing with the token's alg.
 * I/O-free; turning the members into a key is gateway/jwk_pem.c's. */
#ifndef MQG_JWK_H
#define MQG_JWK_H

#include <stdbool.h>
#include <stddef.h>

#include "errbuf.h"

#define JWK_SET_MAX_KEYS 64
#define JWK_RSA_MIN_BITS 2048
#define JWK_RSA_MAX_BITS 16384

enum jwk_kty { JWK_RSA, JWK_EC };

struct jwk {
    char *kid;                  /* NULL: none */
    enum jwk_kty kty;
    char *alg;                  /* NULL: any alg of its kty and crv */
    char *crv;                  /* EC: "P-256", "P-384" or "P-521" */
    /* RSA: n, e; EC: x, y (each exactly the curve's size) */
    unsigned char *a, *b;
    size_t a_len, b_len;
};

struct jwk_set {
    struct jwk *keys;
    size_t n;
};

/* Parses a JWK Set document text[0..len). Keys that are not for
 * verification with an algorithm libjwt 1.10 has ("use" not "sig",
 * "key_ops" without "verify", kty "oct" or "OKP", private members, an
 * unknown kty, crv or alg, an RSA modulus under JWK_RSA_MIN_BITS, a
 * repeated kid, more than JWK_SET_MAX_KEYS) are left out, one line each
 * in e ("keys[2] (kid \"x\"): left out: ..."). Returns 0 and sets *out
 * (free with jwk_set_free(); it may hold no key), or -1 when the text is
 * not a JSON object with a "keys" array (the reason in e). */
int jwk_set_parse(const char *text, size_t len, struct jwk_set **out,
                  struct errbuf *e);

void jwk_set_free(struct jwk_set *set);

/* Frees what k holds and zeroes it. */
void jwk_clear(struct jwk *k);

/* NULL when key k may verify a token signed with alg (its kty and crv
 * are alg's, and its own alg, when present, is alg), else why not. */
const char *jwk_agrees(const struct jwk *k, const char *alg);

enum jwk_find { JWK_FOUND, JWK_NO_KID, JWK_UNKNOWN_KID };

/* The key of set a token with kid (NULL: the token has none) names: the
 * key with that kid; without kid, the only key of a set of one.
 * JWK_FOUND sets *idx; JWK_NO_KID: no kid and the set holds more (or
 * fewer) than one key; JWK_UNKNOWN_KID: no key has that kid. */
enum jwk_find jwk_set_find(const struct jwk_set *set, const char *kid,
                           size_t *idx);

#endif
