/* A keyed hash of strings (SipHash-2-4, 64-bit output, OpenSSL's
 * EVP_MAC) for tables whose keys come from clients: without the key,
 * nobody can choose keys that pile up in one probe chain. No I/O. Not
 * thread-safe: a hash uses the one MAC context. */
#ifndef MQG_KEYHASH_H
#define MQG_KEYHASH_H

#include <stddef.h>
#include <stdint.h>

#define KEYHASH_SEED_BYTES 16

struct keyhash;

/* A hasher keyed with seed, or with random bytes from getrandom() when
 * seed is NULL; NULL when out of memory or without randomness. */
struct keyhash *keyhash_new(const unsigned char *seed);
void keyhash_free(struct keyhash *k);

/* The hash of s[0..len): the same for the same bytes for the life of k;
 * another seed gives other values. */
uint64_t keyhash(const struct keyhash *k, const char *s, size_t len);

#endif
