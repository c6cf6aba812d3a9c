/* Open sessions per client address, for limits.max_connections_per_ip.
 * A small open-addressing table; no I/O. */
#ifndef MQG_IPCOUNT_H
#define MQG_IPCOUNT_H

#include <stdint.h>

#define IPCOUNT_KEY_MAX 64

struct ipcount;

struct ipcount *ipcount_new(void);
void ipcount_free(struct ipcount *t);

/* Sessions open from addr. */
uint32_t ipcount_get(const struct ipcount *t, const char *addr);

/* Counts one more session from addr; returns the new count, or 0 when out
 * of memory. */
uint32_t ipcount_inc(struct ipcount *t, const char *addr);

/* Counts one fewer; the entry goes at zero. */
void ipcount_dec(struct ipcount *t, const char *addr);

#endif
