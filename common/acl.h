/* Role-based topic permissions with %u placeholders and mounts (config.md
 * § roles). Pure functions over the roles of one session; nothing is
 * allocated per session: patterns are expanded into a scratch buffer. */
#ifndef MQG_ACL_H
#define MQG_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* True when user may replace %u: not empty, no '/', '+', '#' or U+0000,
 * and valid UTF-8. */
int acl_user_safe(const char *user, size_t len);

/* The highest max_qos among roles with a subscribe pattern that covers the
 * (mount-relative, valid) filter, or -1 when none does. A pattern using %u
 * never matches when the user is unsafe, or when the expansion (or its
 * part after "$share/NAME/") starts with '$' only because the user name
 * does. "$share/NAME/..." is covered only by a pattern that starts with
 * the same "$share/NAME/", as topic_covers() says. */
int acl_subscribe_qos(const struct cfg_role *const *roles, size_t n,
                      const char *user, const char *filter, size_t flen);

/* The highest max_qos among roles with a publish pattern that matches the
 * (mount-relative, valid) topic name, or -1. */
int acl_publish_qos(const struct cfg_role *const *roles, size_t n,
                    const char *user, const char *topic, size_t tlen);

/* The session's mount with %u expanded. Returns 0 and sets *mount to a
 * malloc'd string (caller frees) or NULL when no role has a mount; returns
 * -1 when the roles carry different mounts (a role without one counts as
 * ""), or the mount uses %u and the user is unsafe (or makes it start with
 * '$'), or out of memory. */
int acl_mount(const struct cfg_role *const *roles, size_t n,
              const char *user, char **mount);

/* Expands %u in pattern with user into out (outlen bytes, NUL-terminated).
 * Returns the length written (without the NUL), or -1 when it does not fit
 * or the user is unsafe and the pattern uses %u. */
long acl_expand(const char *pattern, const char *user, char *out,
                size_t outlen);

/* Calls fn once for each distinct subscribe (publish when publish is true)
 * pattern of the roles as it applies to user: %u expanded, patterns a user
 * name makes unusable left out (protocol.md, "allow"). Returns 0, or -1
 * when out of memory (fn has seen some of them). */
int acl_each_pattern(const struct cfg_role *const *roles, size_t n,
                     const char *user, bool publish,
                     void (*fn)(void *arg, const char *pat, size_t len),
                     void *arg);

#endif
