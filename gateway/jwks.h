/* A key set ready for libjwt: the usable keys of a JWK Set document
 * (common/jwk.c), each with the PEM public key jwk_pem.c made of it, and
 * the choice of a token's key. Does not log: reasons go to the caller. */
#ifndef MQG_JWKS_H
#define MQG_JWKS_H

#include <stddef.h>

#include "errbuf.h"

struct jwks;
struct jws_header;

/* The largest JWK Set document read or fetched. */
#define JWKS_DOC_MAX (1024 * 1024)

/* Builds a set from the document text[0..len): the keys jwk_set_parse()
 * takes and OpenSSL accepts. Each key left out gets a line in e. Returns
 * the set (free with jwks_free()), or NULL when the document is not a
 * JWK Set or no key is usable (the reason, last, in e). */
struct jwks *jwks_new(const char *text, size_t len, struct errbuf *e);

/* As jwks_new(), from the file at path (at most JWKS_DOC_MAX bytes). */
struct jwks *jwks_load(const char *path, struct errbuf *e);

void jwks_free(struct jwks *set);

/* How many keys set holds. */
size_t jwks_count(const struct jwks *set);

enum jwks_pick { JWKS_KEY, JWKS_REFUSED, JWKS_UNKNOWN_KID };

/* The key for a token with header h (its alg already one of the
 * accepted): by kid (without kid, the key of a set of one), whose kty,
 * crv and alg agree with h->alg. JWKS_KEY sets *pem and *len (owned by
 * set); JWKS_REFUSED and JWKS_UNKNOWN_KID set a static *why. */
enum jwks_pick jwks_pick(const struct jwks *set, const struct jws_header *h,
                         const unsigned char **pem, size_t *len,
                         const char **why);

#endif
