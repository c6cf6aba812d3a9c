/* Open sessions per client address, for limits.max_connections_per_ip.
 * A small open-addressing table, its hash keyed per table (SipHash-2-4,
 * OpenSSL's EVP_MAC); no I/O. Service thread only: lookups use the
 * table's one MAC context. */
#ifndef MQG_IPCOUNT_H
#define MQG_IPCOUNT_H

#include <stdint.h>

#define IPCOUNT_KEY_MAX 64
#define IPCOUNT_SEED_BYTES 16

struct ipcount;

/* A new, empty table keyed with a random seed from getrandom(); NULL when
 * out of memory or without randomness. Free with ipcount_free(). */
struct ipcount *ipcount_new(void);

/* As ipcount_new(), keyed with seed (tests). */
struct ipcount *ipcount_new_keyed(const unsigned char seed[IPCOUNT_SEED_BYTES]);

void ipcount_free(struct ipcount *t);

/* The keyed hash of addr in t: the same for the same address for the life
 * of t; another seed gives other values. */
uint64_t ipcount_hash(const struct ipcount *t, const char *addr);

/* Sessions open from addr. */
uint32_t ipcount_get(const struct ipcount *t, const char *addr);

/* Counts one more session from addr; returns the new count, or 0 when out
 * of memory. */
uint32_t ipcount_inc(struct ipcount *t, const char *addr);

/* Counts one fewer; the entry goes at zero. */
void ipcount_dec(struct ipcount *t, const char *addr);

#endif
