/* A verification key of a JWK Set (common/jwk.h) as the PEM public key
 * libjwt 1.10 takes: built from the JWK's members with OpenSSL's EVP API
 * (EVP_PKEY_fromdata), checked by OpenSSL, and written out by it. */
#ifndef MQG_JWK_PEM_H
#define MQG_JWK_PEM_H

#include <stddef.h>

struct jwk;

/* The SubjectPublicKeyInfo PEM of k (malloc'd, NUL-terminated, *len
 * bytes; caller frees), or NULL with a static reason in *why. */
char *jwk_pem_new(const struct jwk *k, size_t *len, const char **why);

#endif
