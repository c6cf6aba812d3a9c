/* JWT verification through libjwt (config.md § auth.jwt). */
#ifndef MQG_AUTH_JWT_H
#define MQG_AUTH_JWT_H

#include <stddef.h>
#include <time.h>

#include "config.h"

struct jwt_verifier;

/* Loads the key of c (secret_file less one trailing newline, or
 * public_key_file). NULL on failure, with the reason logged. */
struct jwt_verifier *jwt_verifier_new(const struct cfg_jwt *c);
void jwt_verifier_free(struct jwt_verifier *v);

struct jwt_identity {
    char *user;                   /* malloc'd */
    const struct cfg_role **roles; /* malloc'd, into cfg */
    size_t n_roles;
    time_t exp;
};

/* Verifies token against v and the claims rules of cfg->auth.jwt; on
 * success fills id (free with jwt_identity_clear()) and returns 0; else -1
 * with a reason (never quoting the token) in why. */
int jwt_verify_token(const struct jwt_verifier *v, const struct config *cfg,
                     const char *token, struct jwt_identity *id, char *why,
                     size_t whylen);

void jwt_identity_clear(struct jwt_identity *id);

#endif
