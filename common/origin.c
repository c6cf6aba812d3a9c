#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "origin.h"

struct hostport {
    const char *host;
    size_t host_len;
    long port;
};

/* host[:port] or [v6]:port; default_port when none. -1 when malformed. */
static int parse_hostport(const char *s, size_t len, long default_port,
                          struct hostport *hp)
{
    const char *colon = NULL;

    if (len == 0)
        return -1;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);

        if (!close)
            return -1;
        hp->host = s;
        hp->host_len = (size_t)(close - s) + 1;
        if (hp->host_len < len) {
            if (close[1] != ':')
                return -1;
            colon = close + 1;
        }
    } else {
        colon = memchr(s, ':', len);
        hp->host = s;
        hp->host_len = colon ? (size_t)(colon - s) : len;
    }
    hp->port = default_port;
    if (colon) {
        char *end;
        size_t plen = len - (size_t)(colon + 1 - s);
        char buf[8];

        if (plen == 0 || plen >= sizeof(buf))
            return -1;
        memcpy(buf, colon + 1, plen);
        buf[plen] = '\0';
        hp->port = strtol(buf, &end, 10);
        if (*end || hp->port < 1 || hp->port > 65535)
            return -1;
    }
    return hp->host_len ? 0 : -1;
}

/* scheme://host[:port] with nothing after; -1 otherwise. */
static int parse_origin(const char *o, bool *https, struct hostport *hp)
{
    const char *rest;

    if (strncasecmp(o, "http://", 7) == 0) {
        *https = false;
        rest = o + 7;
    } else if (strncasecmp(o, "https://", 8) == 0) {
        *https = true;
        rest = o + 8;
    } else {
        return -1;
    }
    if (strpbrk(rest, "/?#@ "))
        return -1;
    return parse_hostport(rest, strlen(rest), *https ? 443 : 80, hp);
}

static bool same(const struct hostport *a, const struct hostport *b)
{
    return a->port == b->port && a->host_len == b->host_len &&
           strncasecmp(a->host, b->host, a->host_len) == 0;
}

bool origin_allowed(const char *origin, const char *host, bool tls,
                    char *const *list, size_t n, bool list_set)
{
    struct hostport o, h;
    bool https, https2;

    if (list_set) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(list[i], "*") == 0)
                return true;
        if (parse_origin(origin, &https, &o) < 0)
            return false;
        for (size_t i = 0; i < n; i++) {
            struct hostport e;

            if (parse_origin(list[i], &https2, &e) == 0 && https == https2 &&
                same(&o, &e))
                return true;
        }
        return false;
    }
    if (!host || parse_origin(origin, &https, &o) < 0 ||
        parse_hostport(host, strlen(host), tls ? 443 : 80, &h) < 0)
        return false;
    return same(&o, &h);
}
