/* Role permissions: %u expansion, subscribe coverage, publish matching and
 * mounts. A pattern without %u is used in place; one with %u is expanded
 * into a stack buffer, so the per-request path allocates only for
 * expansions longer than ACL_STACK_BUF (acl_mount's result is the one
 * allocation it hands out). */
#include "acl.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"
#include "utf8.h"

#define ACL_STACK_BUF 512

/* Besides the rules of acl.h, a user name that is not valid UTF-8 is
 * unsafe too: expanded into a mount it would make topics the broker must
 * refuse by closing the shared upstream connection. */
int acl_user_safe(const char *user, size_t len)
{
    size_t i;

    if (!user || len == 0)
        return 0;
    for (i = 0; i < len; i++)
        if (user[i] == '/' || user[i] == '+' || user[i] == '#' ||
            user[i] == '\0')
            return 0;
    return utf8_valid(user, len);
}

static bool uses_user(const char *pattern)
{
    return strstr(pattern, "%u") != NULL;
}

long acl_expand(const char *pattern, const char *user, char *out,
                size_t outlen)
{
    size_t ulen = user ? strlen(user) : 0, o = 0;
    const char *s;

    if (outlen == 0)
        return -1;
    if (uses_user(pattern) && !acl_user_safe(user, ulen))
        return -1;
    for (s = pattern; *s; s++) {
        const char *src = s;
        size_t n = 1;

        if (s[0] == '%' && s[1] == 'u') {
            src = user;
            n = ulen;
            s++;
        }
        if (n >= outlen - o)
            return -1;
        memcpy(out + o, src, n);
        o += n;
    }
    out[o] = '\0';
    return (long)o;
}

/* The pattern as it applies to user: the pattern itself, or its expansion
 * in stack (ACL_STACK_BUF bytes) or, when longer, in *heap (free it).
 * NULL when the pattern cannot apply: it uses %u and the user is unsafe,
 * or the expansion is longer than a topic may be, or it (or its part after
 * "$share/NAME/") starts with '$' only because the user name does, or out
 * of memory. */
static const char *pattern_for(const char *pattern, const char *user,
                               char *stack, char **heap, size_t *len)
{
    size_t plen = strlen(pattern), ulen, count = 0, need;
    const char *s;
    char *buf;
    long n;

    *heap = NULL;
    if (!uses_user(pattern)) {
        *len = plen;
        return pattern;
    }
    ulen = user ? strlen(user) : 0;
    if (!acl_user_safe(user, ulen) || ulen > TOPIC_MAX_LEN)
        return NULL;
    for (s = pattern; (s = strstr(s, "%u")) != NULL; s += 2)
        count++;
    need = plen - 2 * count + count * ulen;
    if (need > TOPIC_MAX_LEN)
        return NULL;
    buf = stack;
    if (need + 1 > ACL_STACK_BUF) {
        buf = *heap = malloc(need + 1);
        if (!buf)
            return NULL;
    }
    n = acl_expand(pattern, user, buf, need + 1);
    /* "%u/#" with user "$SYS" must not reach the broker's own topics, nor
     * "$share/g/%u/#" (after "$share/NAME/" as at the start). */
    if (n > 0) {
        size_t bs = topic_share_prefix(buf, (size_t)n);
        size_t ps = topic_share_prefix(pattern, plen);

        if ((size_t)n > bs && buf[bs] == '$' && pattern[ps] != '$')
            n = -1;
    }
    if (n < 0) {
        free(*heap);
        *heap = NULL;
        return NULL;
    }
    *len = (size_t)n;
    return buf;
}

int acl_subscribe_qos(const struct cfg_role *const *roles, size_t n,
                      const char *user, const char *filter, size_t flen)
{
    int best = -1;
    size_t i, j;

    for (i = 0; i < n; i++) {
        const struct cfg_role *r = roles[i];

        if (!r || r->max_qos <= best)
            continue;
        for (j = 0; j < r->n_subscribe; j++) {
            char stack[ACL_STACK_BUF], *heap;
            const char *pat;
            size_t plen;
            bool ok;

            pat = pattern_for(r->subscribe[j], user, stack, &heap, &plen);
            if (!pat)
                continue;
            ok = topic_covers(pat, plen, filter, flen);
            free(heap);
            if (ok) {
                best = r->max_qos;
                break;
            }
        }
    }
    return best;
}

int acl_publish_qos(const struct cfg_role *const *roles, size_t n,
                    const char *user, const char *topic, size_t tlen)
{
    int best = -1;
    size_t i, j;

    for (i = 0; i < n; i++) {
        const struct cfg_role *r = roles[i];

        if (!r || r->max_qos <= best)
            continue;
        for (j = 0; j < r->n_publish; j++) {
            char stack[ACL_STACK_BUF], *heap;
            const char *pat;
            size_t plen;
            bool ok;

            pat = pattern_for(r->publish[j], user, stack, &heap, &plen);
            if (!pat)
                continue;
            ok = topic_match(pat, plen, topic, tlen);
            free(heap);
            if (ok) {
                best = r->max_qos;
                break;
            }
        }
    }
    return best;
}

/* Walks the expansion of a pattern byte by byte, without building it. */
struct expander {
    const char *p, *user, *u;
};

static int expander_next(struct expander *x)
{
    for (;;) {
        if (x->u && *x->u)
            return (unsigned char)*x->u++;
        x->u = NULL;
        if (!*x->p)
            return -1;
        if (x->p[0] == '%' && x->p[1] == 'u') {
            x->p += 2;
            x->u = x->user;
            continue;
        }
        return (unsigned char)*x->p++;
    }
}

static bool same_expansion(const char *a, const char *b, const char *user)
{
    struct expander xa = { a, user, NULL }, xb = { b, user, NULL };
    int ca, cb;

    if (strcmp(a, b) == 0)
        return true;
    do {
        ca = expander_next(&xa);
        cb = expander_next(&xb);
    } while (ca == cb && ca != -1);
    return ca == cb;
}

int acl_mount(const struct cfg_role *const *roles, size_t n,
              const char *user, char **mount)
{
    size_t ulen = user ? strlen(user) : 0, i, need;
    const char *first, *s;
    long len;

    *mount = NULL;
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        const char *m = roles[i] && roles[i]->mount ? roles[i]->mount : "";

        if (uses_user(m) && !acl_user_safe(user, ulen))
            return -1;
    }
    first = roles[0] && roles[0]->mount ? roles[0]->mount : "";
    for (i = 1; i < n; i++) {
        const char *m = roles[i] && roles[i]->mount ? roles[i]->mount : "";

        if (!same_expansion(first, m, user))
            return -1;
    }
    if (!*first)
        return 0;
    /* A mount is at most a topic long, and so is the user in it. */
    if (ulen > TOPIC_MAX_LEN)
        return -1;
    need = strlen(first) + 1;
    for (s = first; (s = strstr(s, "%u")) != NULL; s += 2)
        need = need - 2 + ulen;
    *mount = malloc(need);
    if (!*mount)
        return -1;
    len = acl_expand(first, user, *mount, need);
    if (len > 0 && (*mount)[0] == '$' && first[0] != '$')
        len = -1;
    if (len < 0) {
        free(*mount);
        *mount = NULL;
        return -1;
    }
    return 0;
}

int acl_each_pattern(const struct cfg_role *const *roles, size_t n,
                     const char *user, bool publish,
                     void (*fn)(void *arg, const char *pat, size_t len),
                     void *arg)
{
    char **seen = NULL;
    size_t n_seen = 0, cap = 0, i, j, k;
    int rc = 0;

    for (i = 0; i < n; i++) {
        const struct cfg_role *r = roles[i];
        char *const *pats = r ? (publish ? r->publish : r->subscribe) : NULL;
        size_t np = r ? (publish ? r->n_publish : r->n_subscribe) : 0;

        for (j = 0; j < np; j++) {
            char stack[ACL_STACK_BUF], *heap, *copy;
            size_t plen;
            const char *pat = pattern_for(pats[j], user, stack, &heap, &plen);

            if (!pat)
                continue;
            for (k = 0; k < n_seen; k++)
                if (strlen(seen[k]) == plen && memcmp(seen[k], pat, plen) == 0)
                    break;
            if (k == n_seen) {
                if (n_seen == cap) {
                    size_t ncap = cap ? cap * 2 : 8;
                    char **ns = realloc(seen, ncap * sizeof(*ns));

                    if (!ns) {
                        free(heap);
                        rc = -1;
                        goto out;
                    }
                    seen = ns;
                    cap = ncap;
                }
                if (!(copy = malloc(plen + 1))) {
                    free(heap);
                    rc = -1;
                    goto out;
                }
                memcpy(copy, pat, plen);
                copy[plen] = '\0';
                seen[n_seen++] = copy;
                fn(arg, pat, plen);
            }
            free(heap);
        }
    }
out:
    for (k = 0; k < n_seen; k++)
        free(seen[k]);
    free(seen);
    return rc;
}
