/* What each string key of the config accepts: the checks the key tables
 * (config_table.c) name. Each returns NULL when s is fine, else what was
 * expected, as the error line shows it. */
#include <string.h>

#include "config_int.h"
#include "topic.h"
#include "users.h"

static bool is_alnum(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
           (ch >= 'A' && ch <= 'Z');
}

const char *config_value_nonempty(struct ctx *c, const char *s)
{
    (void)c;
    return *s ? NULL : "expected a non-empty string";
}

/* True when s is not empty and each of its bytes is a letter, a digit or
 * one of extra. */
static bool is_word(const char *s, const char *extra)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!is_alnum(*s) && !strchr(extra, *s))
            return false;
    return true;
}

/* An address or interface name, printed in messages as is. */
const char *config_value_bind(struct ctx *c, const char *s)
{
    (void)c;
    return is_word(s, ".:-_%") ? NULL : "expected an IP address or host name";
}

const char *config_value_url_path(struct ctx *c, const char *s)
{
    (void)c;
    if (*s != '/')
        goto bad;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f || *s == '?' ||
            *s == '#')
            goto bad;
    return NULL;
bad:
    return "expected a URL path starting with '/' (no spaces, '?' or '#')";
}

const char *config_value_uri(struct ctx *c, const char *s)
{
    const char *h;

    (void)c;
    if (strncmp(s, "tcp://", 6) != 0 && strncmp(s, "ssl://", 6) != 0)
        goto bad;
    h = s + 6;
    if (!*h)
        goto bad;
    for (; *h; h++)
        if ((unsigned char)*h <= 0x20 || *h == 0x7f || *h == '/')
            goto bad;
    return NULL;
bad:
    return "expected tcp://HOST:PORT or ssl://HOST:PORT";
}

/* "*" or scheme://host[:port], scheme http or https, no path: the form a
 * browser sends in Origin. */
const char *config_value_origin(struct ctx *c, const char *s)
{
    const char *h;
    long port = 0;
    size_t n = 0;

    (void)c;
    if (strcmp(s, "*") == 0)
        return NULL;
    if (strncmp(s, "http://", 7) == 0)
        h = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        h = s + 8;
    else
        goto bad;
    if (*h == '[') {
        for (h++; is_alnum(*h) || *h == ':' || *h == '.'; h++)
            n++;
        if (*h++ != ']' || n < 2)
            goto bad;
    } else {
        for (; is_alnum(*h) || *h == '-' || *h == '.'; h++)
            n++;
        if (n == 0)
            goto bad;
    }
    if (*h == ':') {
        for (n = 0, h++; *h >= '0' && *h <= '9' && n < 6; h++, n++)
            port = port * 10 + (*h - '0');
        if (n == 0 || port < 1 || port > 65535)
            goto bad;
    }
    if (*h)
        goto bad;
    return NULL;
bad:
    return "expected \"*\" or an origin http[s]://HOST[:PORT] (no path)";
}

/* An RFC 6265 cookie-name: an RFC 7230 token. */
const char *config_value_cookie(struct ctx *c, const char *s)
{
    (void)c;
    return is_word(s, "!#$%&'*+-.^_`|~")
               ? NULL
               : "expected a cookie name (letters, digits, !#$%&'*+-.^_`|~)";
}

static const char *const jwt_algs[] = {
    "HS256", "HS384", "HS512", "RS256", "ES256", NULL
};

const char *config_value_alg(struct ctx *c, const char *s)
{
    size_t i;

    (void)c;
    for (i = 0; jwt_algs[i]; i++)
        if (strcmp(s, jwt_algs[i]) == 0)
            return NULL;
    return "expected one of HS256, HS384, HS512, RS256, ES256";
}

/* Replaces each "%u" in s with "u" (the shortest user name) into a stack
 * buffer, or an allocated one for long patterns. Returns the result (free
 * with sample_done()) or NULL when out of memory. */
static char *sample_expand(struct ctx *c, const char *s, char *buf,
                           size_t buflen, size_t *len)
{
    size_t n = strlen(s), i, o = 0;
    char *d = buf;

    if (n + 1 > buflen) {
        d = config_mem_alloc(n + 1);
        if (!d) {
            c->oom = true;
            return NULL;
        }
    }
    for (i = 0; i < n; i++) {
        if (s[i] == '%' && s[i + 1] == 'u') {
            d[o++] = 'u';
            i++;
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = '\0';
    *len = o;
    return d;
}

static void sample_done(char *d, const char *buf)
{
    if (d != buf)
        config_mem_free(d);
}

const char *config_value_filter(struct ctx *c, const char *s)
{
    char buf[512], *d;
    size_t n;
    int rc;

    d = sample_expand(c, s, buf, sizeof buf, &n);
    if (!d)
        return NULL;
    rc = topic_filter_check(d, n);
    sample_done(d, buf);
    return rc == 0 ? NULL : "expected an MQTT topic filter (%u: user name)";
}

const char *config_value_mount(struct ctx *c, const char *s)
{
    char buf[512], *d;
    size_t n;
    int rc;

    d = sample_expand(c, s, buf, sizeof buf, &n);
    if (!d)
        return NULL;
    rc = n > 0 && d[n - 1] == '/' ? topic_name_check(d, n) : -1;
    sample_done(d, buf);
    return rc == 0 ? NULL
                   : "expected a topic prefix ending in '/', no wildcards";
}

/* A topic prefix ending in '/' without wildcards once %c (the client id)
 * is replaced; the client id's own characters are checked at start. */
const char *config_value_reply_prefix(struct ctx *c, const char *s)
{
    size_t n = strlen(s);

    (void)c;
    if (n == 0 || s[n - 1] != '/' || topic_name_check(s, n) < 0)
        return "expected a topic prefix ending in '/', no wildcards "
               "(%c: the broker client id)";
    return NULL;
}

/* Role names are plain (users.h): they stand in the users file as
 * "name:hash:role1,role2" and go into JSON and logs as they are. */
const char *config_value_role(struct ctx *c, const char *s)
{
    (void)c;
    return users_role_name_check(s, strlen(s))
               ? "expected a role name: 1 to 64 bytes of A-Z a-z 0-9 _ . -"
               : NULL;
}
