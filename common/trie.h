/* A trie of MQTT topic filters, each carrying one value of the caller's:
 * insert, remove, exact lookup, and match (every stored filter that matches
 * a topic name, through a callback). I/O-free apart from getrandom() in
 * trie_new().
 *
 * Levels are nodes. The literal children of a node are found through a
 * hash table keyed by a per-trie random key, so that a message costs the
 * same with 10 or 10,000 sibling levels and a client that chooses levels
 * cannot aim them at one bucket (trie.c says why the hash is enough);
 * '+' and '#' children are direct pointers.
 *
 * "$share/NAME/FILTER" is stored at the node of FILTER, tagged with NAME,
 * so matching finds every group at once instead of walking each one. A
 * filter that begins with "$share/" but lacks a NAME (1 or more bytes, not
 * a wildcard) or a FILTER is stored and found like any other but matches
 * no topic, as no broker accepts it.
 *
 * Not thread-safe: one thread owns a trie. */
#ifndef MQG_TRIE_H
#define MQG_TRIE_H

#include <stddef.h>
#include <stdint.h>

struct trie;

/* A new empty trie keyed from getrandom(). Returns NULL when out of
 * memory or when the kernel gives no randomness (errno tells). */
struct trie *trie_new(void);

/* The same with a key derived from seed: for tests and benchmarks that
 * must be reproducible, never for a trie whose levels come from clients. */
struct trie *trie_new_seeded(uint64_t seed);

/* Frees the trie. When drop is not NULL it is called once with each value
 * still stored (in no particular order) and must not use the trie. */
void trie_free(struct trie *t, void (*drop)(void *value));

/* Stores value (not NULL; the trie only keeps the pointer, the caller
 * owns what it points to) under filter[0..len), which need not be
 * NUL-terminated and is copied. Returns 0, -EINVAL when filter is not a
 * valid topic filter (topic_filter_check) or value is NULL, -EEXIST when
 * the filter is already stored (its value is unchanged), -ENOMEM. On error
 * the trie is as before. */
int trie_insert(struct trie *t, const char *filter, size_t len, void *value);

/* The value stored under exactly filter[0..len), or NULL. */
void *trie_find(const struct trie *t, const char *filter, size_t len);

/* Removes filter[0..len) and returns its value (the caller's again), or
 * NULL when it is not stored. Nodes left empty are freed. */
void *trie_remove(struct trie *t, const char *filter, size_t len);

/* Stored filters. */
size_t trie_count(const struct trie *t);

/* Called by trie_match() with each matching value and the caller's arg.
 * Returns 0 to go on; anything else stops the match. It must not insert
 * into or remove from the trie (finding and matching are fine). */
typedef int (*trie_match_fn)(void *value, void *arg);

/* Calls fn for every stored filter that matches the topic name
 * topic[0..len), exactly the filters for which topic_match() is true (for
 * "$share/NAME/FILTER": topic_match() of FILTER), each once: so a filter
 * whose first level is a wildcard does not match a topic that begins with
 * '$'. The order is depth first (at each level: '#', the filter ending
 * there, the literal level, then '+'; a plain filter before the shared
 * ones ending at the same node). Returns 0, or what fn returned to stop.
 * Allocates nothing; the stack used does not grow with the topic's depth. */
int trie_match(const struct trie *t, const char *topic, size_t len,
               trie_match_fn fn, void *arg);

#endif
