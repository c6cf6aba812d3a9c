/* Base64, standard alphabet (RFC 4648 section 4), with padding; and the
 * URL-safe alphabet without padding that JOSE uses (decoding only). */
#ifndef MQG_BASE64_H
#define MQG_BASE64_H

#include <stddef.h>

/* Bytes base64_encode() writes for n input bytes (no terminator). */
size_t base64_encoded_len(size_t n);

/* Encodes in[0..n) into out, which holds base64_encoded_len(n) bytes.
 * Writes no terminator. Returns the number of bytes written. */
size_t base64_encode(const void *in, size_t n, char *out);

/* Decodes in[0..n) strictly: length a multiple of 4, '=' only as final
 * padding, no whitespace, unused bits zero. out holds at least n / 4 * 3
 * bytes. Returns 0 and sets *outlen, or -1 on malformed input. */
int base64_decode(const char *in, size_t n, void *out, size_t *outlen);

/* The most bytes base64url_decode() writes for n input bytes. */
size_t base64url_decoded_max(size_t n);

/* Decodes in[0..n), base64url without padding (RFC 7515's base64url, RFC
 * 4648 section 5), strictly: no '=', no whitespace, unused bits zero.
 * out holds base64url_decoded_max(n) bytes. Returns 0 and sets *outlen,
 * or -1 on malformed input. */
int base64url_decode(const char *in, size_t n, void *out, size_t *outlen);

#endif
