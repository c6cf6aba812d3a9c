/* JWT verification through libjwt (config.md § auth.jwt). */
#ifndef MQG_AUTH_JWT_H
#define MQG_AUTH_JWT_H

#include <stddef.h>
#include <time.h>

#include "config.h"

struct jwt_verifier;

/* Loads the key of c (secret_file less one trailing newline, or
 * public_key_file: a PEM public key of the kind alg needs) into a new
 * verifier (free with jwt_verifier_free()). NULL on failure, with the
 * reason in why (not naming the file). */
struct jwt_verifier *jwt_verifier_load(const struct cfg_jwt *c, char *why,
                                       size_t whylen);

/* As jwt_verifier_load(), the reason logged with the key and file. */
struct jwt_verifier *jwt_verifier_new(const struct cfg_jwt *c);

/* The config key that names c's key file ("auth.jwt.secret_file" or
 * "auth.jwt.public_key_file"), and that file. */
const char *jwt_key_key(const struct cfg_jwt *c);
const char *jwt_key_file(const struct cfg_jwt *c);
void jwt_verifier_free(struct jwt_verifier *v);

struct jwt_identity {
    char *user;                   /* malloc'd */
    const struct cfg_role **roles; /* malloc'd, into cfg */
    size_t n_roles;
    time_t exp;
};

/* Verifies token against v and the claims rules of cfg->auth.jwt; on
 * success fills id (free with jwt_identity_clear()) and returns 0; else -1
 * with a reason (never quoting the token) in why. A user claim holding
 * U+0000 is refused; a roles claim that is not an array of strings gives
 * default_roles, and role names holding U+0000 are unknown names. */
int jwt_verify_token(const struct jwt_verifier *v, const struct config *cfg,
                     const char *token, struct jwt_identity *id, char *why,
                     size_t whylen);

void jwt_identity_clear(struct jwt_identity *id);

#endif
