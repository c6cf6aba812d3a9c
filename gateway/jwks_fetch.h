/* The key set of auth.jwt.jwks_url (config.md): fetched at start, every
 * jwks_refresh_s, and when a token names a kid the set lacks; never two
 * fetches within jwks_min_refresh_s, so that a flood of unknown kids
 * cannot make the gateway hammer the identity provider. A failed fetch
 * (no answer, a status other than 200, not a JWK Set, no usable key)
 * keeps the last good set, and is logged and counted; the next fetch
 * comes within a minute (or jwks_refresh_s when shorter, never within
 * the floor), or sooner for a token whose kid is unknown once the floor
 * has passed. The calls run on
 * the HTTP thread (http_client.h). Service thread only. */
#ifndef MQG_JWKS_FETCH_H
#define MQG_JWKS_FETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct jwks;
struct lws_context;

/* Called after every fetch ends (set: the set now in use, changed or
 * not, or NULL when none was ever fetched), and when a new set comes in:
 * before the previous set is freed. */
typedef void jwks_fetched_fn(const struct jwks *set);

/* Timers run on ctx; fetched is told of every fetch's end. Fetches
 * begin once both this and jwks_fetch_configure() were called. */
void jwks_fetch_start(struct lws_context *ctx, jwks_fetched_fn *fetched);

/* Takes c's jwks_url, jwks_ca_file and intervals (copied); c NULL or
 * without a jwks_url: no fetches, the set dropped. A new URL or CA file
 * drops the set and fetches at once; the same ones keep it. */
void jwks_fetch_configure(const struct cfg_jwt *c);

/* Stops the timers; forgets the call under way and the set. */
void jwks_fetch_destroy(void);

/* The last good set, or NULL. */
const struct jwks *jwks_fetch_set(void);

/* A token named a kid the set lacks: fetches now unless the floor
 * forbids it. Returns true when a fetch is under way (fetched will be
 * called), false when the floor held it back (counted). */
bool jwks_fetch_ask(void);

struct jwks_fetch_stats {
    bool configured;
    uint64_t keys;              /* in the set in use */
    uint64_t ok, failed;        /* fetches */
    uint64_t floored;           /* fetches an unknown kid asked for, held
                                   back by jwks_min_refresh_s */
    uint64_t last_ok_unix;      /* 0: never */
};

void jwks_fetch_stats(struct jwks_fetch_stats *st);

#endif
