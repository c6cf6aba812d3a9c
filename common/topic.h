/* MQTT topic names and filters: validity, matching and coverage.
 * Pure functions, no I/O. Strings are (pointer, length) pairs and need not
 * be NUL-terminated. */
#ifndef MQG_TOPIC_H
#define MQG_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#define TOPIC_MAX_LEN 65535

/* Returns 0 when s is a valid topic name: 1..65535 bytes of valid UTF-8,
 * no U+0000, no '+' or '#'. Returns -1 otherwise. */
int topic_name_check(const char *s, size_t len);

/* Returns 0 when s is a valid topic filter: as a name, but '+' may stand as
 * a whole level and '#' as a whole, last level. A filter that begins with
 * "$share/" is a shared subscription, "$share/NAME/FILTER": NAME is not
 * empty and holds no wildcard, FILTER is a valid filter. Returns -1
 * otherwise. */
int topic_filter_check(const char *s, size_t len);

/* The length of the "$share/NAME/" that begins s, or 0 when s does not
 * begin with "$share/" and a '/' after it. */
size_t topic_share_prefix(const char *s, size_t len);

/* The broker-side form of the mount-relative t[0..len) under mount[0..mlen)
 * into out (room for mlen + len bytes, not terminated): the mount, then t;
 * for a shared subscription "$share/NAME/F", "$share/NAME/", the mount,
 * then F. Returns mlen + len. */
size_t topic_mount(const char *mount, size_t mlen, const char *t, size_t len,
                   char *out);

/* The inverse of topic_mount() for full[0..len) into out (room for len
 * bytes): returns the length of the mount-relative form, or -1 when full
 * does not lie under the mount (mlen 0: everything does). */
long topic_unmount(const char *mount, size_t mlen, const char *full,
                   size_t len, char *out);

/* True when the valid filter matches the valid topic name, level by level
 * ("$share/" has no meaning here). A filter whose first level is a
 * wildcard does not match a name that begins with '$'. */
bool topic_match(const char *filter, size_t flen, const char *name,
                 size_t nlen);

/* True when every topic name that filter can match is matched by pattern
 * (both valid filters): "a/#" covers "a/+/b" and "a/#", not "#" or "+/b".
 * A shared subscription is covered only by a pattern with the same
 * "$share/NAME/", and then as its FILTER part is by the pattern's, '$' rule
 * included: "$share/g/#" covers "$share/g/a", not "$share/g/$SYS/#". */
bool topic_covers(const char *pattern, size_t plen, const char *filter,
                  size_t flen);

#endif
