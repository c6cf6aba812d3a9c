#include <string.h>

#include "topic.h"
#include "utf8.h"

/* Levels are walked as [pos, end) spans: level_end() gives the index of the
 * next '/' (or len), and the following level starts one past it. A position
 * past len means there are no levels left, so "a/" has a final empty level
 * and "a" has none after "a". */
static size_t level_end(const char *s, size_t len, size_t pos)
{
    const char *slash = memchr(s + pos, '/', len - pos);
    return slash ? (size_t)(slash - s) : len;
}

static bool is_level(const char *s, size_t pos, size_t end, char c)
{
    return end - pos == 1 && s[pos] == c;
}

static int common_check(const char *s, size_t len)
{
    if (len == 0 || len > TOPIC_MAX_LEN)
        return -1;
    if (memchr(s, '\0', len) || !utf8_valid(s, len))
        return -1;
    return 0;
}

int topic_name_check(const char *s, size_t len)
{
    if (common_check(s, len) < 0)
        return -1;
    if (memchr(s, '+', len) || memchr(s, '#', len))
        return -1;
    return 0;
}

#define SHARE "$share/"
#define SHARE_LEN (sizeof(SHARE) - 1)

size_t topic_share_prefix(const char *s, size_t len)
{
    const char *slash;

    if (len <= SHARE_LEN || memcmp(s, SHARE, SHARE_LEN) != 0)
        return 0;
    slash = memchr(s + SHARE_LEN, '/', len - SHARE_LEN);
    return slash ? (size_t)(slash - s) + 1 : 0;
}

size_t topic_mount(const char *mount, size_t mlen, const char *t, size_t len,
                   char *out)
{
    size_t share = topic_share_prefix(t, len);

    memcpy(out, t, share);
    if (mlen)
        memcpy(out + share, mount, mlen);
    memcpy(out + share + mlen, t + share, len - share);
    return mlen + len;
}

long topic_unmount(const char *mount, size_t mlen, const char *full,
                   size_t len, char *out)
{
    size_t share = topic_share_prefix(full, len);

    if (len - share < mlen ||
        (mlen && memcmp(full + share, mount, mlen) != 0))
        return -1;
    memcpy(out, full, share);
    memcpy(out + share, full + share + mlen, len - share - mlen);
    return (long)(len - mlen);
}

int topic_filter_check(const char *s, size_t len)
{
    size_t share;

    if (common_check(s, len) < 0)
        return -1;
    if (len >= SHARE_LEN && memcmp(s, SHARE, SHARE_LEN) == 0) {
        /* "$share/NAME/FILTER": a name without wildcards, then a filter
         * of its own (checked below, as the rest of the string). */
        share = topic_share_prefix(s, len);
        if (share == 0 || share == SHARE_LEN + 1 || share == len ||
            memchr(s + SHARE_LEN, '+', share - SHARE_LEN) ||
            memchr(s + SHARE_LEN, '#', share - SHARE_LEN))
            return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '+' && s[i] != '#')
            continue;
        if (i > 0 && s[i - 1] != '/')
            return -1;
        if (s[i] == '#' && i + 1 != len)
            return -1;
        if (s[i] == '+' && i + 1 < len && s[i + 1] != '/')
            return -1;
    }
    return 0;
}

static bool wild_first(const char *s, size_t len)
{
    return len > 0 && (s[0] == '+' || s[0] == '#');
}

bool topic_match(const char *filter, size_t flen, const char *name,
                 size_t nlen)
{
    size_t fp = 0, np = 0;

    if (wild_first(filter, flen) && nlen > 0 && name[0] == '$')
        return false;
    for (;;) {
        if (fp > flen)
            return np > nlen;
        size_t fe = level_end(filter, flen, fp);
        if (is_level(filter, fp, fe, '#'))
            return true; /* the rest, also no level at all ("a/#" ~ "a") */
        if (np > nlen)
            return false;
        size_t ne = level_end(name, nlen, np);
        if (!is_level(filter, fp, fe, '+') &&
            (fe - fp != ne - np || memcmp(filter + fp, name + np, fe - fp)))
            return false;
        fp = fe + 1;
        np = ne + 1;
    }
}

static bool covers_plain(const char *pattern, size_t plen,
                         const char *filter, size_t flen)
{
    size_t pp = 0, fp = 0;

    /* A valid filter starting with '$' starts with a literal level, so it
     * matches only names that a leading wildcard refuses. */
    if (wild_first(pattern, plen) && flen > 0 && filter[0] == '$')
        return false;
    for (;;) {
        if (pp > plen)
            return fp > flen;
        size_t pe = level_end(pattern, plen, pp);
        if (is_level(pattern, pp, pe, '#'))
            return true;
        if (fp > flen)
            return false;
        size_t fe = level_end(filter, flen, fp);
        bool pplus = is_level(pattern, pp, pe, '+');
        if (is_level(filter, fp, fe, '#')) {
            /* The filter's '#' matches any number of further levels, and
             * zero of them unless that would leave the empty name, which is
             * not a topic: "#" and "/#" need at least one more level, and
             * exactly then "+/#" (at the same place) covers them too. */
            bool needs_one = fp == 0 || fp == 1;
            return needs_one && pplus && pe + 2 == plen &&
                   pattern[pe + 1] == '#';
        }
        if (!pplus &&
            (is_level(filter, fp, fe, '+') || pe - pp != fe - fp ||
             memcmp(pattern + pp, filter + fp, pe - pp)))
            return false;
        pp = pe + 1;
        fp = fe + 1;
    }
}

bool topic_covers(const char *pattern, size_t plen, const char *filter,
                  size_t flen)
{
    size_t ps = topic_share_prefix(pattern, plen);
    size_t fs = topic_share_prefix(filter, flen);

    /* A shared subscription is covered only by a pattern for the same
     * share name, and then by what its filter part covers: the '$' rule
     * and every other rule apply after "$share/NAME/". */
    if (ps != fs || memcmp(pattern, filter, ps) != 0)
        return false;
    return covers_plain(pattern + ps, plen - ps, filter + fs, flen - fs);
}
