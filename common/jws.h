/* A token in JWS compact form (RFC 7515 § 7.1), as the gateway meets it
 * before any key is chosen: its form, and the parts of its protected
 * header that choose and constrain the key. I/O-free; the signature is
 * checked elsewhere (gateway/auth_jwt.c, through libjwt). */
#ifndef MQG_JWS_H
#define MQG_JWS_H

#include <stdbool.h>
#include <stddef.h>

#define JWS_ALG_MAX 15
#define JWS_KID_MAX 256
#define JWS_HEADER_MAX 4096   /* bytes of the encoded header part */

/* True when token is three dot-separated base64url parts, the first two
 * not empty: a JWT as config.md's auth.http rule means it. */
bool jws_compact_form(const char *token);

struct jws_header {
    char alg[JWS_ALG_MAX + 1];
    char kid[JWS_KID_MAX + 1];
    bool has_kid;
};

/* Reads the protected header of a compact token: a JSON object without
 * duplicate names, "alg" a string, "kid" (optional) a string of at most
 * JWS_KID_MAX bytes without U+0000, no "crit" (no extension is
 * understood, RFC 7515 § 4.1.11). Keys the header offers ("jwk", "jku",
 * "x5u", "x5c") are never used. Returns 0, or -1 with a static reason
 * (never quoting the token) in *why. */
int jws_header_parse(const char *token, struct jws_header *h,
                     const char **why);

#endif
