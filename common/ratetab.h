/* Token buckets by name (a user, or a client address for anonymous
 * clients): the publish rate of requests that each come on a connection
 * of their own (POST /api/publish). An open-addressing table on a keyed
 * hash (keyhash.h); a bucket that has refilled to its burst is the same as
 * a new one, so such entries are dropped when the table would grow. No
 * I/O. Service thread only. */
#ifndef MQG_RATETAB_H
#define MQG_RATETAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tbucket.h"

struct ratetab;

/* A new, empty table, keyed with seed (KEYHASH_SEED_BYTES) or at random
 * when seed is NULL; NULL when out of memory. */
struct ratetab *ratetab_new(const unsigned char *seed);
void ratetab_free(struct ratetab *t);

/* The bucket of key[0..len), created full (burst tokens) when t has none:
 * valid until the next ratetab_get(); NULL when out of memory. */
struct tbucket *ratetab_get(struct ratetab *t, const char *key, size_t len,
                            long rate, long burst, uint64_t now_ms);

/* Entries held. */
size_t ratetab_size(const struct ratetab *t);

#endif
