/* JWT verification through libjwt (config.md § auth.jwt). */
#ifndef MQG_AUTH_JWT_H
#define MQG_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"

struct jwt_verifier;
struct jwks;

/* Loads the key of c (secret_file less one trailing newline;
 * public_key_file, a PEM public key of the kind each of the algorithms
 * needs; jwks_file, a JWK Set with at least one usable key) into a new
 * verifier (free with jwt_verifier_free()); a jwks_url verifier has no
 * key until jwt_verifier_use_set(). NULL on failure, with the reason in
 * why (not naming the file). For a jwks_file, why holds on success the
 * lines of the keys left out (empty when none). */
struct jwt_verifier *jwt_verifier_load(const struct cfg_jwt *c, char *why,
                                       size_t whylen);

/* As jwt_verifier_load(), the reason logged with the key and file. */
struct jwt_verifier *jwt_verifier_new(const struct cfg_jwt *c);

/* A jwks_url verifier verifies with set (borrowed: give it the next set
 * before this one is freed; NULL: no key yet). Nothing for others. */
void jwt_verifier_use_set(struct jwt_verifier *v, const struct jwks *set);

/* The config key that names c's key source ("auth.jwt.secret_file",
 * "auth.jwt.public_key_file", "auth.jwt.jwks_file", "auth.jwt.jwks_url"),
 * and that file or URL. */
const char *jwt_key_key(const struct cfg_jwt *c);
const char *jwt_key_file(const struct cfg_jwt *c);
void jwt_verifier_free(struct jwt_verifier *v);

struct jwt_identity {
    char *user;                   /* malloc'd */
    const struct cfg_role **roles; /* malloc'd, into cfg */
    size_t n_roles;
    time_t exp;
};

/* What jwt_verify_token() returns when v fetches its keys and holds none
 * of the token's kid (or no set yet): a refresh may bring it. */
#define JWT_VERIFY_UNKNOWN_KID 1

/* Verifies token against v and the claims rules of cfg->auth.jwt: its
 * header's alg one of the accepted, its key v's own or chosen from v's
 * set by kid (jwks.h). On success fills id (free with
 * jwt_identity_clear()) and returns 0; else -1 or JWT_VERIFY_UNKNOWN_KID
 * with a reason (never quoting the token) in why. A user claim holding
 * U+0000 is refused; a roles claim that is not an array of strings gives
 * default_roles, and role names holding U+0000 are unknown names. */
int jwt_verify_token(const struct jwt_verifier *v, const struct config *cfg,
                     const char *token, struct jwt_identity *id, char *why,
                     size_t whylen);

void jwt_identity_clear(struct jwt_identity *id);

#endif
