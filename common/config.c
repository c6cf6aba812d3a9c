/* The operator's configuration file (config.md), loaded in two passes:
 *
 *  1. One table per JSON object lists its keys with type, bounds and
 *     default (redis' createIntConfig idea). A generic walker type-checks
 *     every key against its table, stores it, and fills in the defaults of
 *     the keys that are absent. Unknown keys are errors.
 *  2. check_rules() applies the rules that span several keys (mosquitto's
 *     config__check). It runs only when pass 1 found nothing, so that a key
 *     rejected in pass 1 (and left at its default) cannot cause a second,
 *     misleading error.
 *
 * jansson does not remember where keys stand, so a small scanner over the
 * raw text finds the line of a key's value when an error needs it (only
 * then: a valid file is never scanned).
 *
 * Bounds (the ones config.md leaves open are chosen here):
 *
 *   listeners[i].port             1..65535        [8080]
 *   listeners[i].path             starts with '/' ["/ws"]
 *   listeners                     1 or more       [one plain listener]
 *   broker.uris                   1 or more, tcp:// or ssl://
 *   broker.mqtt_version           4..5            [5]
 *   broker.keepalive_s            0..65535        [30]  (0: no keepalive)
 *   broker.reconnect_min_s        1..3600         [1]
 *   broker.reconnect_max_s        1..86400        [30]  >= reconnect_min_s
 *   broker.buffer_messages        0..1000000      [10000]
 *   auth.timeout_s                1..3600         [10]
 *   auth.password_workers         1..64           [0: the number of CPUs,
 *                                                  which the gateway reads]
 *   roles.X.max_qos               0..2            [2]
 *   limits.max_connections        1..10000000     [100000]
 *   limits.max_connections_per_ip 1..10000000     [1000]
 *   limits.max_message_bytes      64..16777216    [65536]
 *   limits.max_subscriptions      1..100000       [64]
 *   limits.max_queue_bytes        1024..1073741824 [1048576]
 *   limits.publish_rate           1..1000000      [100]
 *   limits.publish_burst          1..10000000     [200]
 *   limits.subscribe_rate         1..1000000      [10]
 *   limits.subscribe_burst        1..10000000     [100]
 *   limits.max_errors             1..100000       [20]
 *   limits.ping_interval_s        1..3600         [30]
 *   the file itself               at most 16 MiB
 *
 * All memory, jansson's and ours, comes from jansson's allocator
 * (json_set_alloc_funcs), so one hook lets a test fail every allocation in
 * turn. */
#include "config.h"
#include "errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topic.h"
#include "users.h"

#define CONFIG_MAX_BYTES (16L * 1024 * 1024)

/* ------------------------------------------------------------------------ */
/* Memory */

static void *mem_alloc(size_t n)
{
    json_malloc_t m;
    json_free_t f;

    json_get_alloc_funcs(&m, &f);
    return m(n ? n : 1);
}

static void mem_free(void *p)
{
    json_malloc_t m;
    json_free_t f;

    if (!p)
        return;
    json_get_alloc_funcs(&m, &f);
    f(p);
}

static void *mem_zalloc(size_t n, size_t size)
{
    void *p;

    if (size && n > SIZE_MAX / size)
        return NULL;
    p = mem_alloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static char *mem_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = mem_alloc(n);

    if (d)
        memcpy(d, s, n);
    return d;
}

/* ------------------------------------------------------------------------ */
/* Error buffer and key paths */

struct ctx {
    const char *name;             /* file name as given, for messages */
    const char *text;
    size_t len;
    struct errbuf eb;
    int nerr;
    bool oom;
};

/* A key path as a chain of stack frames: "listeners[1].port" is
 * {key "port"} -> {index 1} -> {key "listeners"} -> NULL (the root). */
struct path {
    const struct path *up;
    const char *key;              /* NULL: an array element */
    size_t index;
};

/* Control characters would break the one-error-a-line format. */
static void err_put_escaped(struct ctx *c, const char *s, size_t n)
{
    size_t i, run = 0;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch >= 0x20 && ch != 0x7f)
            continue;
        errbuf_putn(&c->eb, s + run, i - run);
        errbuf_printf(&c->eb, "\\u%04x", ch);
        run = i + 1;
    }
    errbuf_putn(&c->eb, s + run, n - run);
}

static void err_path(struct ctx *c, const struct path *p)
{
    if (!p)
        return;
    err_path(c, p->up);
    if (p->key) {
        if (p->up)
            errbuf_puts(&c->eb, ".");
        err_put_escaped(c, p->key, strlen(p->key));
    } else {
        errbuf_printf(&c->eb, "[%zu]", p->index);
    }
}

/* ------------------------------------------------------------------------ */
/* Scanner: where a key path stands in the raw text */

struct scan {
    const char *s;
    size_t n, i;
    int line;
};

static void sc_ws(struct scan *sc)
{
    while (sc->i < sc->n) {
        char ch = sc->s[sc->i];

        if (ch == '\n')
            sc->line++;
        else if (ch != ' ' && ch != '\t' && ch != '\r')
            return;
        sc->i++;
    }
}

/* At '"': moves past the closing quote. */
static void sc_string(struct scan *sc)
{
    sc->i++;
    while (sc->i < sc->n) {
        char ch = sc->s[sc->i];

        if (ch == '"') {
            sc->i++;
            return;
        }
        if (ch == '\n')
            sc->line++;
        sc->i += ch == '\\' ? 2 : 1;
    }
    sc->i = sc->n;
}

/* Moves past one value; containers by counting brackets, so the depth of
 * the document costs no stack. */
static void sc_skip(struct scan *sc)
{
    int depth = 0;

    do {
        char ch;

        sc_ws(sc);
        if (sc->i >= sc->n)
            return;
        ch = sc->s[sc->i];
        if (ch == '"') {
            sc_string(sc);
        } else if (ch == '{' || ch == '[') {
            depth++;
            sc->i++;
        } else if (ch == '}' || ch == ']') {
            depth--;
            sc->i++;
        } else if (ch == ',' || ch == ':') {
            sc->i++;
        } else {
            /* At least one byte: strchr() finds the terminator, so a NUL
             * byte (which jansson lets through after a number or a
             * literal) would otherwise stop the scan where it stands. */
            do
                sc->i++;
            while (sc->i < sc->n &&
                   !memchr(" \t\r\n,:[]{}\"", sc->s[sc->i], 12));
        }
    } while (depth > 0);
}

static int hex4(const char *s, size_t n, size_t i, unsigned *v)
{
    size_t k;

    *v = 0;
    if (i + 4 > n)
        return -1;
    for (k = i; k < i + 4; k++) {
        char ch = s[k];
        unsigned d;

        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        else
            return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

/* True when the raw JSON string body r[0..n) (escapes undecoded) spells
 * key. */
static bool sc_key_eq(const char *r, size_t n, const char *key)
{
    const unsigned char *k = (const unsigned char *)key;
    size_t i = 0;

    while (i < n) {
        unsigned char b[4];
        size_t bl = 1, j;

        if (r[i] != '\\') {
            b[0] = (unsigned char)r[i++];
        } else {
            char e = i + 1 < n ? r[i + 1] : '\0';
            unsigned cp, lo;

            i += 2;
            switch (e) {
            case '"': case '\\': case '/': b[0] = (unsigned char)e; break;
            case 'b': b[0] = '\b'; break;
            case 'f': b[0] = '\f'; break;
            case 'n': b[0] = '\n'; break;
            case 'r': b[0] = '\r'; break;
            case 't': b[0] = '\t'; break;
            case 'u':
                if (hex4(r, n, i, &cp) < 0)
                    return false;
                i += 4;
                if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= n &&
                    r[i] == '\\' && r[i + 1] == 'u' &&
                    hex4(r, n, i + 2, &lo) == 0 && lo >= 0xdc00 &&
                    lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                }
                if (cp < 0x80) {
                    b[0] = (unsigned char)cp;
                } else if (cp < 0x800) {
                    b[0] = (unsigned char)(0xc0 | cp >> 6);
                    b[1] = (unsigned char)(0x80 | (cp & 0x3f));
                    bl = 2;
                } else if (cp < 0x10000) {
                    b[0] = (unsigned char)(0xe0 | cp >> 12);
                    b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
                    b[2] = (unsigned char)(0x80 | (cp & 0x3f));
                    bl = 3;
                } else {
                    b[0] = (unsigned char)(0xf0 | cp >> 18);
                    b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
                    b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
                    b[3] = (unsigned char)(0x80 | (cp & 0x3f));
                    bl = 4;
                }
                break;
            default:
                return false;
            }
        }
        for (j = 0; j < bl; j++) {
            if (b[j] == 0 || *k != b[j])
                return false;
            k++;
        }
    }
    return *k == '\0';
}

#define LOCATE_MAX_DEPTH 8

/* Finds the value at path p: sets *line, and [*start, *end) to its raw
 * text. Returns true when found; otherwise *line is that of the deepest
 * enclosing value found (so a missing key is reported where its object
 * stands) and the span is empty. */
static bool locate(const struct ctx *c, const struct path *p, int *line,
                   size_t *start, size_t *end)
{
    const struct path *comp[LOCATE_MAX_DEPTH];
    struct scan sc = { c->text, c->len, 0, 1 };
    size_t depth = 0, d;
    const struct path *q;

    for (q = p; q; q = q->up)
        depth++;
    if (depth > LOCATE_MAX_DEPTH) {
        for (d = depth, q = p; d > LOCATE_MAX_DEPTH; d--)
            q = q->up;
        depth = LOCATE_MAX_DEPTH;
    } else {
        q = p;
    }
    for (d = depth; d > 0; d--, q = q->up)
        comp[d - 1] = q;

    sc_ws(&sc);
    *line = sc.line;
    *start = *end = sc.i;
    for (d = 0; d < depth; d++) {
        const struct path *want = comp[d];

        if (sc.i >= sc.n)
            return false;
        if (want->key && sc.s[sc.i] == '{') {
            sc.i++;
            for (;;) {
                size_t k0, k1;

                sc_ws(&sc);
                if (sc.i >= sc.n || sc.s[sc.i] != '"')
                    return false;
                k0 = sc.i + 1;
                sc_string(&sc);
                k1 = sc.i - 1;
                sc_ws(&sc);
                if (sc.i >= sc.n || sc.s[sc.i] != ':')
                    return false;
                sc.i++;
                sc_ws(&sc);
                if (k1 >= k0 && sc_key_eq(sc.s + k0, k1 - k0, want->key))
                    break;
                sc_skip(&sc);
                sc_ws(&sc);
                if (sc.i >= sc.n || sc.s[sc.i] != ',')
                    return false;
                sc.i++;
            }
        } else if (!want->key && sc.s[sc.i] == '[') {
            size_t k;

            sc.i++;
            for (k = 0;; k++) {
                sc_ws(&sc);
                if (sc.i >= sc.n || sc.s[sc.i] == ']')
                    return false;
                if (k == want->index)
                    break;
                sc_skip(&sc);
                sc_ws(&sc);
                if (sc.i >= sc.n || sc.s[sc.i] != ',')
                    return false;
                sc.i++;
            }
        } else {
            return false;
        }
        *line = sc.line;
        *start = *end = sc.i;
    }
    sc_skip(&sc);
    *end = sc.i;
    return true;
}

/* Appends the path of the object member whose key token ends at byte off
 * (where jansson stops on a duplicate key). Keys are shown as written. */
static void err_path_at(struct ctx *c, size_t off)
{
    struct scan sc = { c->text, c->len, 0, 1 };
    bool first = true;

    for (;;) {
        sc_ws(&sc);
        if (sc.i >= sc.n)
            return;
        if (sc.s[sc.i] == '{') {
            sc.i++;
            for (;;) {
                size_t k0, k1, v0;

                sc_ws(&sc);
                if (sc.i >= sc.n || sc.s[sc.i] != '"')
                    return;
                k0 = sc.i;
                sc_string(&sc);
                k1 = sc.i;
                if (k1 >= off || k1 - k0 < 2) {
                    if (!first)
                        errbuf_puts(&c->eb, ".");
                    err_put_escaped(c, sc.s + k0 + 1, k1 - k0 - 2);
                    return;
                }
                sc_ws(&sc);
                if (sc.i >= sc.n || sc.s[sc.i] != ':')
                    return;
                sc.i++;
                sc_ws(&sc);
                v0 = sc.i;
                sc_skip(&sc);
                if (off <= sc.i) {
                    if (!first)
                        errbuf_puts(&c->eb, ".");
                    err_put_escaped(c, sc.s + k0 + 1, k1 - k0 - 2);
                    first = false;
                    sc.i = v0;
                    break;
                }
                sc_ws(&sc);
                if (sc.i >= sc.n || sc.s[sc.i] != ',')
                    return;
                sc.i++;
            }
        } else if (sc.s[sc.i] == '[') {
            size_t k;

            sc.i++;
            for (k = 0;; k++) {
                size_t v0;

                sc_ws(&sc);
                if (sc.i >= sc.n || sc.s[sc.i] == ']')
                    return;
                v0 = sc.i;
                sc_skip(&sc);
                if (off <= sc.i) {
                    errbuf_printf(&c->eb, "[%zu]", k);
                    first = false;
                    sc.i = v0;
                    break;
                }
                sc_ws(&sc);
                if (sc.i >= sc.n || sc.s[sc.i] != ',')
                    return;
                sc.i++;
            }
        } else {
            return;
        }
    }
}

/* The value as written: short values verbatim, long ones cut. */
static void err_value(struct ctx *c, size_t start, size_t end)
{
    const char *s = c->text + start;
    size_t n = end - start, cut = 48;

    if (n <= 64 && !memchr(s, '\n', n)) {
        err_put_escaped(c, s, n);
    } else if (s[0] == '[' || s[0] == '{') {
        errbuf_puts(&c->eb, s[0] == '[' ? "[...]" : "{...}");
    } else {
        while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
            cut--;
        err_put_escaped(c, s, cut);
        errbuf_puts(&c->eb, "...");
    }
}

/* Reports "NAME:LINE: KEY: message[, got VALUE]" on a line of its own. */
__attribute__((format(printf, 4, 5)))
static void cfg_err(struct ctx *c, const struct path *p, bool got,
                    const char *fmt, ...)
{
    size_t start, end;
    bool found;
    va_list ap;
    int line;

    c->nerr++;
    if (!errbuf_room(&c->eb))
        return;
    found = locate(c, p, &line, &start, &end);
    err_put_escaped(c, c->name, strlen(c->name));
    errbuf_printf(&c->eb, ":%d: ", line);
    if (p)
        err_path(c, p);
    else
        errbuf_puts(&c->eb, "(top level)");
    errbuf_puts(&c->eb, ": ");
    va_start(ap, fmt);
    errbuf_vprintf(&c->eb, fmt, ap);
    va_end(ap);
    if (got && found && end > start) {
        errbuf_puts(&c->eb, ", got ");
        err_value(c, start, end);
    }
    errbuf_puts(&c->eb, "\n");
}

/* An error not tied to a key: "NAME: message". */
__attribute__((format(printf, 2, 3)))
static void file_err(struct ctx *c, const char *fmt, ...)
{
    va_list ap;

    c->nerr++;
    err_put_escaped(c, c->name, strlen(c->name));
    errbuf_puts(&c->eb, ": ");
    va_start(ap, fmt);
    errbuf_vprintf(&c->eb, fmt, ap);
    va_end(ap);
    errbuf_puts(&c->eb, "\n");
}

/* ------------------------------------------------------------------------ */
/* Value checks: NULL when s is fine, else what was expected. On allocation
 * failure they set c->oom (and return NULL). */

typedef const char *check_fn(struct ctx *c, const char *s);

static bool is_alnum(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
           (ch >= 'A' && ch <= 'Z');
}

static const char *check_nonempty(struct ctx *c, const char *s)
{
    (void)c;
    return *s ? NULL : "expected a non-empty string";
}

/* An address or interface name, printed in messages as is. */
static const char *check_bind(struct ctx *c, const char *s)
{
    (void)c;
    if (!*s)
        goto bad;
    for (; *s; s++)
        if (!is_alnum(*s) && !strchr(".:-_%", *s))
            goto bad;
    return NULL;
bad:
    return "expected an IP address or host name";
}

static const char *check_url_path(struct ctx *c, const char *s)
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

static const char *check_uri(struct ctx *c, const char *s)
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
static const char *check_origin(struct ctx *c, const char *s)
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
static const char *check_cookie(struct ctx *c, const char *s)
{
    (void)c;
    if (!*s)
        goto bad;
    for (; *s; s++)
        if (!is_alnum(*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            goto bad;
    return NULL;
bad:
    return "expected a cookie name (letters, digits, !#$%&'*+-.^_`|~)";
}

static const char *const jwt_algs[] = {
    "HS256", "HS384", "HS512", "RS256", "ES256", NULL
};

static const char *check_alg(struct ctx *c, const char *s)
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
        d = mem_alloc(n + 1);
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
        mem_free(d);
}

static const char *check_filter(struct ctx *c, const char *s)
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

static const char *check_mount(struct ctx *c, const char *s)
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

/* Role names are plain (users.h): they stand in the users file as
 * "name:hash:role1,role2" and go into JSON and logs as they are. */
#define ROLE_NAME_EXPECTED \
    "expected a role name: 1 to 64 bytes of A-Z a-z 0-9 _ . -"

static const char *check_role(struct ctx *c, const char *s)
{
    (void)c;
    return users_role_name_check(s, strlen(s)) ? ROLE_NAME_EXPECTED : NULL;
}

/* ------------------------------------------------------------------------ */
/* The key tables */

enum kind {
    K_INT,      /* int field, bounds min..max */
    K_LONG,     /* long field, bounds min..max */
    K_BOOL,
    K_STR,      /* char *, optional check */
    K_STRV,     /* char ** + size_t count, at least min elements */
    K_ENUM,     /* int field: index into names */
    K_OBJ,      /* an object whose keys live in the same struct at off */
    K_OBJP,     /* optional object: pointer to an allocated struct */
    K_OBJV,     /* array of objects: array + count, at least min */
    K_OBJMAP    /* object of named objects: array + count, name at name_off */
};

enum { KF_REQUIRED = 1, KF_NULL = 2 };

struct table;

struct key {
    const char *name;
    enum kind kind;
    unsigned flags;
    size_t off, off_n, name_off;
    long long min, max;           /* bounds; K_STRV K_OBJV: min length */
    long long dflt;               /* K_OBJV: element count when absent */
    const char *dstr;             /* K_STR default */
    const char *const *dstrv;     /* K_STRV default, NULL-terminated */
    check_fn *check;              /* K_STR, K_STRV elements */
    const char *const *names;     /* K_ENUM, NULL-terminated */
    const char *expect;           /* K_ENUM message */
    const struct table *sub;
};

struct table {
    const struct key *keys;
    size_t n;
    size_t size;                  /* of the struct the keys live in */
};

#define FIELD(base, off, type) (*(type *)(void *)((char *)(base) + (off)))
#define NKEYS(k) (sizeof(k) / sizeof((k)[0]))
#define TABLE(k, st) { k, NKEYS(k), sizeof(st) }

/* The field's C type picks K_INT or K_LONG; any other type fails to
 * compile. */
#define NUM(n, st, f, lo, hi, d) \
    { .name = n, .kind = _Generic(((st *)0)->f, int: K_INT, long: K_LONG), \
      .off = offsetof(st, f), .min = lo, .max = hi, .dflt = d }
#define BOOL(n, st, f, d) \
    { .name = n, .kind = K_BOOL, .off = offsetof(st, f), .dflt = d }
#define STR(n, st, f, fl, d, chk) \
    { .name = n, .kind = K_STR, .flags = fl, .off = offsetof(st, f), \
      .dstr = d, .check = chk }
#define STRV(n, st, f, fn, lo, d, chk) \
    { .name = n, .kind = K_STRV, .off = offsetof(st, f), \
      .off_n = offsetof(st, fn), .min = lo, .dstrv = d, .check = chk }
#define OBJ(n, o, t) { .name = n, .kind = K_OBJ, .off = o, .sub = &t }
#define OBJP(n, st, f, t) \
    { .name = n, .kind = K_OBJP, .off = offsetof(st, f), .sub = &t }

static const struct key listener_tls_keys[] = {
    STR("cert_file", struct cfg_tls, cert_file, KF_REQUIRED, NULL,
        check_nonempty),
    STR("key_file", struct cfg_tls, key_file, KF_REQUIRED, NULL,
        check_nonempty),
    STR("ca_file", struct cfg_tls, ca_file, 0, NULL, check_nonempty),
    BOOL("verify_client", struct cfg_tls, verify_client, false),
};
static const struct table listener_tls_table =
    TABLE(listener_tls_keys, struct cfg_tls);

static const struct key listener_keys[] = {
    STR("bind", struct cfg_listener, bind, 0, "127.0.0.1", check_bind),
    NUM("port", struct cfg_listener, port, 1, 65535, 8080),
    STR("path", struct cfg_listener, path, 0, "/ws", check_url_path),
    OBJP("tls", struct cfg_listener, tls, listener_tls_table),
    STR("static_dir", struct cfg_listener, static_dir, 0, NULL,
        check_nonempty),
    BOOL("compression", struct cfg_listener, compression, false),
};
static const struct table listener_table =
    TABLE(listener_keys, struct cfg_listener);

static const struct key broker_tls_keys[] = {
    STR("ca_file", struct cfg_broker_tls, ca_file, 0, NULL, check_nonempty),
    STR("cert_file", struct cfg_broker_tls, cert_file, 0, NULL,
        check_nonempty),
    STR("key_file", struct cfg_broker_tls, key_file, 0, NULL,
        check_nonempty),
    BOOL("verify", struct cfg_broker_tls, verify, true),
};
static const struct table broker_tls_table =
    TABLE(broker_tls_keys, struct cfg_broker_tls);

static const char *const default_uris[] = { "tcp://127.0.0.1:1883", NULL };

static const struct key broker_keys[] = {
    STRV("uris", struct cfg_broker, uris, n_uris, 1, default_uris,
         check_uri),
    STR("client_id", struct cfg_broker, client_id, 0, "mqgate-%h-%p",
        check_nonempty),
    STR("username", struct cfg_broker, username, 0, NULL, check_nonempty),
    STR("password_file", struct cfg_broker, password_file, 0, NULL,
        check_nonempty),
    NUM("mqtt_version", struct cfg_broker, mqtt_version, 4, 5, 5),
    NUM("keepalive_s", struct cfg_broker, keepalive_s, 0, 65535, 30),
    OBJP("tls", struct cfg_broker, tls, broker_tls_table),
    NUM("reconnect_min_s", struct cfg_broker, reconnect_min_s, 1, 3600, 1),
    NUM("reconnect_max_s", struct cfg_broker, reconnect_max_s, 1, 86400, 30),
    NUM("buffer_messages", struct cfg_broker, buffer_messages, 0, 1000000,
        10000),
};
static const struct table broker_table =
    TABLE(broker_keys, struct cfg_broker);

static const struct key jwt_keys[] = {
    STR("alg", struct cfg_jwt, alg, KF_REQUIRED, NULL, check_alg),
    STR("secret_file", struct cfg_jwt, secret_file, 0, NULL, check_nonempty),
    STR("public_key_file", struct cfg_jwt, public_key_file, 0, NULL,
        check_nonempty),
    STR("issuer", struct cfg_jwt, issuer, 0, NULL, check_nonempty),
    STR("audience", struct cfg_jwt, audience, 0, NULL, check_nonempty),
    STR("user_claim", struct cfg_jwt, user_claim, 0, "sub", check_nonempty),
    STR("roles_claim", struct cfg_jwt, roles_claim, 0, "roles",
        check_nonempty),
    STRV("default_roles", struct cfg_jwt, default_roles, n_default_roles, 0,
         NULL, check_role),
};
static const struct table jwt_table = TABLE(jwt_keys, struct cfg_jwt);

static const struct key auth_keys[] = {
    STR("users_file", struct cfg_auth, users_file, 0, NULL, check_nonempty),
    OBJP("jwt", struct cfg_auth, jwt, jwt_table),
    STR("anonymous_role", struct cfg_auth, anonymous_role, KF_NULL, NULL,
        check_role),
    NUM("timeout_s", struct cfg_auth, timeout_s, 1, 3600, 10),
    STR("cookie", struct cfg_auth, cookie, 0, "mqgate_token", check_cookie),
    BOOL("allow_query_token", struct cfg_auth, allow_query_token, false),
    NUM("password_workers", struct cfg_auth, password_workers,
        1, CONFIG_PASSWORD_WORKERS_MAX, 0),
};
static const struct table auth_table = TABLE(auth_keys, struct cfg_auth);

static const struct key role_keys[] = {
    STRV("subscribe", struct cfg_role, subscribe, n_subscribe, 0, NULL,
         check_filter),
    STRV("publish", struct cfg_role, publish, n_publish, 0, NULL,
         check_filter),
    NUM("max_qos", struct cfg_role, max_qos, 0, 2, 2),
    STR("mount", struct cfg_role, mount, 0, NULL, check_mount),
};
static const struct table role_table = TABLE(role_keys, struct cfg_role);

static const struct key limits_keys[] = {
    NUM("max_connections", struct cfg_limits, max_connections,
        1, 10000000, 100000),
    NUM("max_connections_per_ip", struct cfg_limits, max_connections_per_ip,
        1, 10000000, 1000),
    NUM("max_message_bytes", struct cfg_limits, max_message_bytes,
        64, 16777216, 65536),
    NUM("max_subscriptions", struct cfg_limits, max_subscriptions,
        1, 100000, 64),
    NUM("max_queue_bytes", struct cfg_limits, max_queue_bytes,
        1024, 1073741824, 1048576),
    NUM("publish_rate", struct cfg_limits, publish_rate, 1, 1000000, 100),
    NUM("publish_burst", struct cfg_limits, publish_burst,
        1, 10000000, 200),
    NUM("subscribe_rate", struct cfg_limits, subscribe_rate,
        1, 1000000, 10),
    NUM("subscribe_burst", struct cfg_limits, subscribe_burst,
        1, 10000000, 100),
    NUM("max_errors", struct cfg_limits, max_errors, 1, 100000, 20),
    NUM("ping_interval_s", struct cfg_limits, ping_interval_s, 1, 3600, 30),
};
static const struct table limits_table =
    TABLE(limits_keys, struct cfg_limits);

/* In the order of enum log_level. */
static const char *const log_levels[] = {
    "error", "warn", "info", "debug", NULL
};

/* "log" is an object in the file but its one key lives in struct config. */
static const struct key log_keys[] = {
    { .name = "level", .kind = K_ENUM,
      .off = offsetof(struct config, log_level), .dflt = LOG_LVL_INFO,
      .names = log_levels, .expect = "expected one of error, warn, info, debug" },
};
static const struct table log_table = TABLE(log_keys, struct config);

static const struct key root_keys[] = {
    { .name = "listeners", .kind = K_OBJV,
      .off = offsetof(struct config, listeners),
      .off_n = offsetof(struct config, n_listeners),
      .min = 1, .dflt = 1, .sub = &listener_table },
    STRV("origins", struct config, origins, n_origins, 0, NULL,
         check_origin),
    OBJ("broker", offsetof(struct config, broker), broker_table),
    OBJ("auth", offsetof(struct config, auth), auth_table),
    { .name = "roles", .kind = K_OBJMAP,
      .off = offsetof(struct config, roles),
      .off_n = offsetof(struct config, n_roles),
      .name_off = offsetof(struct cfg_role, name), .sub = &role_table },
    OBJ("limits", offsetof(struct config, limits), limits_table),
    BOOL("metrics", struct config, metrics, true),
    OBJ("log", 0, log_table),
};
static const struct table root_table = TABLE(root_keys, struct config);

/* load_obj() marks seen keys in a 64-bit mask. */
_Static_assert(NKEYS(broker_keys) <= 64 && NKEYS(root_keys) <= 64 &&
               NKEYS(limits_keys) <= 64 && NKEYS(jwt_keys) <= 64,
               "a table has more keys than load_obj() can track");

/* ------------------------------------------------------------------------ */
/* Pass 1: the table walker. Functions return -1 only when out of memory;
 * a bad value is reported, counted and replaced by the default. */

static int load_obj(struct ctx *c, const struct path *p, json_t *obj,
                    const struct table *t, void *base);

static int set_default(struct ctx *c, const struct path *p,
                       const struct key *k, void *base)
{
    size_t i, n;

    switch (k->kind) {
    case K_INT:
    case K_ENUM:
        FIELD(base, k->off, int) = (int)k->dflt;
        break;
    case K_LONG:
        FIELD(base, k->off, long) = (long)k->dflt;
        break;
    case K_BOOL:
        FIELD(base, k->off, bool) = k->dflt != 0;
        break;
    case K_STR:
        if (k->dstr && !(FIELD(base, k->off, char *) = mem_strdup(k->dstr)))
            return -1;
        break;
    case K_STRV:
        for (n = 0; k->dstrv && k->dstrv[n]; n++)
            ;
        if (n == 0)
            break;
        if (!(FIELD(base, k->off, char **) = mem_zalloc(n, sizeof(char *))))
            return -1;
        FIELD(base, k->off_n, size_t) = n;
        for (i = 0; i < n; i++)
            if (!(FIELD(base, k->off, char **)[i] = mem_strdup(k->dstrv[i])))
                return -1;
        break;
    case K_OBJ:
        return load_obj(c, p, NULL, k->sub, (char *)base + k->off);
    case K_OBJP:
    case K_OBJMAP:
        break;
    case K_OBJV:
        n = (size_t)k->dflt;
        if (n == 0)
            break;
        if (!(FIELD(base, k->off, void *) = mem_zalloc(n, k->sub->size)))
            return -1;
        FIELD(base, k->off_n, size_t) = n;
        for (i = 0; i < n; i++) {
            struct path ep = { p, NULL, i };

            if (load_obj(c, &ep, NULL, k->sub,
                         FIELD(base, k->off, char *) + i * k->sub->size) < 0)
                return -1;
        }
        break;
    }
    return 0;
}

/* A string value, checked and copied into *dst. */
static int load_str(struct ctx *c, const struct path *p, const struct key *k,
                    json_t *v, char **dst)
{
    const char *s, *msg;

    if (!json_is_string(v)) {
        cfg_err(c, p, true, "expected string");
        return 0;
    }
    s = json_string_value(v);
    msg = k->check ? k->check(c, s) : NULL;
    if (c->oom)
        return -1;
    if (msg) {
        cfg_err(c, p, true, "%s", msg);
        return 0;
    }
    *dst = mem_strdup(s);
    return *dst ? 0 : -1;
}

static int load_key(struct ctx *c, const struct path *p, const struct key *k,
                    json_t *v, void *base)
{
    size_t i, n;
    json_int_t iv;
    const char *key;
    json_t *e;

    switch (k->kind) {
    case K_INT:
    case K_LONG:
        iv = json_is_integer(v) ? json_integer_value(v) : 0;
        if (!json_is_integer(v) || iv < k->min || iv > k->max) {
            cfg_err(c, p, true, "expected integer %lld..%lld", k->min,
                    k->max);
            return set_default(c, p, k, base);
        }
        if (k->kind == K_INT)
            FIELD(base, k->off, int) = (int)iv;
        else
            FIELD(base, k->off, long) = (long)iv;
        return 0;
    case K_BOOL:
        if (!json_is_boolean(v)) {
            cfg_err(c, p, true, "expected boolean");
            return set_default(c, p, k, base);
        }
        FIELD(base, k->off, bool) = json_is_true(v);
        return 0;
    case K_STR:
        if (json_is_null(v) && (k->flags & KF_NULL))
            return 0;
        if (!json_is_string(v) && (k->flags & KF_NULL)) {
            cfg_err(c, p, true, "expected string or null");
            return 0;
        }
        if (load_str(c, p, k, v, &FIELD(base, k->off, char *)) < 0)
            return -1;
        if (!FIELD(base, k->off, char *))
            return set_default(c, p, k, base);
        return 0;
    case K_ENUM:
        for (i = 0; json_is_string(v) && k->names[i]; i++) {
            if (strcmp(json_string_value(v), k->names[i]) == 0) {
                FIELD(base, k->off, int) = (int)i;
                return 0;
            }
        }
        cfg_err(c, p, true, "%s", k->expect);
        return set_default(c, p, k, base);
    case K_STRV:
        if (!json_is_array(v)) {
            cfg_err(c, p, true, "expected array of strings");
            return set_default(c, p, k, base);
        }
        n = json_array_size(v);
        if (n < (size_t)k->min) {
            cfg_err(c, p, true, "expected a non-empty array");
            return set_default(c, p, k, base);
        }
        if (n == 0)
            return 0;
        if (!(FIELD(base, k->off, char **) = mem_zalloc(n, sizeof(char *))))
            return -1;
        FIELD(base, k->off_n, size_t) = n;
        json_array_foreach(v, i, e) {
            struct path ep = { p, NULL, i };

            /* A bad element stays NULL: pass 2 does not run then. */
            if (load_str(c, &ep, k, e, &FIELD(base, k->off, char **)[i]) < 0)
                return -1;
        }
        return 0;
    case K_OBJ:
        if (!json_is_object(v)) {
            cfg_err(c, p, true, "expected object");
            v = NULL;
        }
        return load_obj(c, p, v, k->sub, (char *)base + k->off);
    case K_OBJP:
        if (!json_is_object(v)) {
            cfg_err(c, p, true, "expected object");
            return 0;
        }
        if (!(FIELD(base, k->off, void *) = mem_zalloc(1, k->sub->size)))
            return -1;
        return load_obj(c, p, v, k->sub, FIELD(base, k->off, void *));
    case K_OBJV:
        if (!json_is_array(v)) {
            cfg_err(c, p, true, "expected array of objects");
            return set_default(c, p, k, base);
        }
        n = json_array_size(v);
        if (n < (size_t)k->min) {
            cfg_err(c, p, true, "expected a non-empty array");
            return set_default(c, p, k, base);
        }
        if (n == 0)
            return 0;
        if (!(FIELD(base, k->off, void *) = mem_zalloc(n, k->sub->size)))
            return -1;
        FIELD(base, k->off_n, size_t) = n;
        json_array_foreach(v, i, e) {
            struct path ep = { p, NULL, i };

            if (!json_is_object(e)) {
                cfg_err(c, &ep, true, "expected object");
                e = NULL;
            }
            if (load_obj(c, &ep, e, k->sub,
                         FIELD(base, k->off, char *) + i * k->sub->size) < 0)
                return -1;
        }
        return 0;
    case K_OBJMAP:
        if (!json_is_object(v)) {
            cfg_err(c, p, true, "expected object");
            return 0;
        }
        n = json_object_size(v);
        if (n == 0)
            return 0;
        if (!(FIELD(base, k->off, void *) = mem_zalloc(n, k->sub->size)))
            return -1;
        FIELD(base, k->off_n, size_t) = n;
        i = 0;
        json_object_foreach(v, key, e) {
            struct path ep = { p, key, 0 };
            char *elem = FIELD(base, k->off, char *) + i++ * k->sub->size;

            if (!(FIELD(elem, k->name_off, char *) = mem_strdup(key)))
                return -1;
            if (check_role(c, key))
                cfg_err(c, &ep, false, "%s", ROLE_NAME_EXPECTED);
            /* Kept (with defaults) even when bad, so that references to it
             * do not fail as well. */
            if (!json_is_object(e)) {
                cfg_err(c, &ep, true, "expected object");
                e = NULL;
            }
            if (load_obj(c, &ep, e, k->sub, elem) < 0)
                return -1;
        }
        return 0;
    }
    return 0;
}

/* Loads obj (NULL: all defaults) into base, keys in file order. */
static int load_obj(struct ctx *c, const struct path *p, json_t *obj,
                    const struct table *t, void *base)
{
    uint64_t seen = 0;
    const char *name;
    json_t *v;
    size_t i;

    if (obj) {
        json_object_foreach(obj, name, v) {
            struct path kp = { p, name, 0 };

            for (i = 0; i < t->n; i++)
                if (strcmp(t->keys[i].name, name) == 0)
                    break;
            if (i == t->n) {
                cfg_err(c, &kp, false, "unknown key");
                continue;
            }
            seen |= UINT64_C(1) << i;
            if (load_key(c, &kp, &t->keys[i], v, base) < 0)
                return -1;
        }
    }
    for (i = 0; i < t->n; i++) {
        const struct key *k = &t->keys[i];
        struct path kp = { p, k->name, 0 };

        if (seen & UINT64_C(1) << i)
            continue;
        if (k->flags & KF_REQUIRED)
            cfg_err(c, &kp, false, "required key missing");
        if (set_default(c, &kp, k, base) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Pass 2: rules across keys */

#define P(up, k) { up, k, 0 }
#define PI(up, i) { up, NULL, i }

static bool is_wildcard_bind(const char *b)
{
    return strcmp(b, "0.0.0.0") == 0 || strcmp(b, "::") == 0;
}

static void check_rules(struct ctx *c, const struct config *cfg)
{
    const struct path p_listeners = P(NULL, "listeners");
    const struct path p_broker = P(NULL, "broker");
    const struct path p_auth = P(NULL, "auth");
    const struct path p_jwt = P(&p_auth, "jwt");
    const struct cfg_broker *b = &cfg->broker;
    const struct cfg_jwt *jwt = cfg->auth.jwt;
    size_t i, j;

    for (i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        const struct path p_l = PI(&p_listeners, i);
        const struct path p_tls = P(&p_l, "tls");
        const struct path p_port = P(&p_l, "port");
        const struct path p_ca = P(&p_tls, "ca_file");

        if (l->tls && l->tls->verify_client && !l->tls->ca_file)
            cfg_err(c, &p_ca, false, "required when verify_client is true");
        for (j = 0; j < i; j++) {
            const struct cfg_listener *o = &cfg->listeners[j];

            if (o->port == l->port &&
                (strcmp(o->bind, l->bind) == 0 ||
                 is_wildcard_bind(o->bind) || is_wildcard_bind(l->bind))) {
                cfg_err(c, &p_port, false,
                        "%s port %d overlaps listeners[%zu] (%s port %d)",
                        l->bind, l->port, j, o->bind, o->port);
                break;
            }
        }
    }

    if (b->reconnect_max_s < b->reconnect_min_s) {
        const struct path p = P(&p_broker, "reconnect_max_s");

        cfg_err(c, &p, false, "%d is less than broker.reconnect_min_s (%d)",
                b->reconnect_max_s, b->reconnect_min_s);
    }
    if (b->tls && !b->tls->cert_file != !b->tls->key_file) {
        const struct path p_tls = P(&p_broker, "tls");
        const struct path p = P(&p_tls, b->tls->cert_file ? "key_file"
                                                          : "cert_file");

        cfg_err(c, &p, false, "required with broker.tls.%s",
                b->tls->cert_file ? "cert_file" : "key_file");
    }

    if (cfg->auth.anonymous_role &&
        !config_role(cfg, cfg->auth.anonymous_role)) {
        const struct path p = P(&p_auth, "anonymous_role");

        cfg_err(c, &p, true, "expected the name of a role in roles");
    }
    if (jwt) {
        bool hs = jwt->alg && jwt->alg[0] == 'H';

        if (jwt->alg && hs && !jwt->secret_file) {
            const struct path p = P(&p_jwt, "secret_file");

            cfg_err(c, &p, false, "required with alg %s", jwt->alg);
        }
        if (jwt->alg && !hs && !jwt->public_key_file) {
            const struct path p = P(&p_jwt, "public_key_file");

            cfg_err(c, &p, false, "required with alg %s", jwt->alg);
        }
        for (i = 0; i < jwt->n_default_roles; i++) {
            const struct path p_dr = P(&p_jwt, "default_roles");
            const struct path p = PI(&p_dr, i);

            if (!config_role(cfg, jwt->default_roles[i]))
                cfg_err(c, &p, true, "expected the name of a role in roles");
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Freeing, by the same tables */

static void free_obj(const struct table *t, void *base)
{
    size_t i, j, n;

    for (i = 0; i < t->n; i++) {
        const struct key *k = &t->keys[i];
        char *arr;

        switch (k->kind) {
        case K_STR:
            mem_free(FIELD(base, k->off, char *));
            break;
        case K_STRV:
            n = FIELD(base, k->off_n, size_t);
            for (j = 0; j < n; j++)
                mem_free(FIELD(base, k->off, char **)[j]);
            mem_free(FIELD(base, k->off, char **));
            break;
        case K_OBJ:
            free_obj(k->sub, (char *)base + k->off);
            break;
        case K_OBJP:
            if (FIELD(base, k->off, void *))
                free_obj(k->sub, FIELD(base, k->off, void *));
            mem_free(FIELD(base, k->off, void *));
            break;
        case K_OBJV:
        case K_OBJMAP:
            n = FIELD(base, k->off_n, size_t);
            arr = FIELD(base, k->off, char *);
            for (j = 0; j < n; j++) {
                if (k->kind == K_OBJMAP)
                    mem_free(FIELD(arr + j * k->sub->size, k->name_off,
                                   char *));
                free_obj(k->sub, arr + j * k->sub->size);
            }
            mem_free(arr);
            break;
        case K_INT:
        case K_LONG:
        case K_BOOL:
        case K_ENUM:
            break;
        }
    }
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    free_obj(&root_table, cfg);
    mem_free(cfg->path);
    mem_free(cfg);
}

/* ------------------------------------------------------------------------ */
/* Entry points */

int config_parse(const char *name, const char *text, size_t len,
                 struct config **out, char *err, size_t errlen)
{
    struct ctx c = { name ? name : "(config)", text ? text : "",
                     text ? len : 0, { err, errlen, 0 }, 0, false };
    struct config *cfg = NULL;
    json_t *root = NULL;
    json_error_t je;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    /* RFC 8259 has no raw U+0000 anywhere, but jansson skips one that
     * follows a number or a literal ("true\0" loads as true). */
    {
        const char *nul = memchr(c.text, '\0', c.len);

        if (nul) {
            int line = 1;

            for (const char *q = c.text; q < nul; q++)
                line += *q == '\n';
            err_put_escaped(&c, c.name, strlen(c.name));
            errbuf_printf(&c.eb, ":%d: syntax error: NUL byte\n", line);
            c.nerr++;
            goto fail;
        }
    }
    root = json_loadb(c.text, c.len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        enum json_error_code code = json_error_code(&je);

        /* jansson fails some allocations without an error text. */
        if (code == json_error_out_of_memory || je.text[0] == '\0') {
            c.oom = true;
        } else if (code == json_error_duplicate_key) {
            err_put_escaped(&c, c.name, strlen(c.name));
            errbuf_printf(&c.eb, ":%d: ", je.line);
            err_path_at(&c, (size_t)je.position);
            errbuf_puts(&c.eb, ": duplicate key\n");
        } else {
            err_put_escaped(&c, c.name, strlen(c.name));
            errbuf_printf(&c.eb, ":%d: syntax error: ", je.line);
            err_put_escaped(&c, je.text, strlen(je.text));
            errbuf_puts(&c.eb, "\n");
        }
        goto fail;
    }
    if (!json_is_object(root)) {
        cfg_err(&c, NULL, true, "expected object");
        goto fail;
    }
    cfg = mem_zalloc(1, sizeof *cfg);
    if (!cfg || !(cfg->path = mem_strdup(c.name))) {
        c.oom = true;
        goto fail;
    }
    if (load_obj(&c, NULL, root, &root_table, cfg) < 0) {
        c.oom = true;
        goto fail;
    }
    cfg->origins_set = json_is_array(json_object_get(root, "origins"));
    if (c.nerr == 0)
        check_rules(&c, cfg);
    if (c.nerr > 0)
        goto fail;
    json_decref(root);
    *out = cfg;
    return 0;

fail:
    if (c.oom)
        file_err(&c, "out of memory");
    json_decref(root);
    config_free(cfg);
    return -1;
}

/* Reads the whole file, at most CONFIG_MAX_BYTES, into an allocated
 * buffer. Returns 0, or -1 with errno set (EFBIG: too large). */
static int read_file(const char *path, char **buf, size_t *len)
{
    size_t cap = 64 * 1024, n = 0;
    char *b = NULL;
    int fd, saved;

    *buf = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    for (;;) {
        ssize_t r;

        if (!b || n == cap) {
            char *nb;

            if (b) {
                if (cap > (size_t)CONFIG_MAX_BYTES) {
                    errno = EFBIG;
                    goto fail;
                }
                cap *= 2;
            }
            /* One byte beyond the cap tells a too large file. */
            if (cap > (size_t)CONFIG_MAX_BYTES + 1)
                cap = (size_t)CONFIG_MAX_BYTES + 1;
            nb = mem_alloc(cap);
            if (!nb) {
                errno = ENOMEM;
                goto fail;
            }
            if (b)
                memcpy(nb, b, n);
            mem_free(b);
            b = nb;
        }
        r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > (size_t)CONFIG_MAX_BYTES) {
        errno = EFBIG;
        goto fail;
    }
    close(fd);
    *buf = b;
    *len = n;
    return 0;

fail:
    saved = errno;
    mem_free(b);
    close(fd);
    errno = saved;
    return -1;
}

int config_load(const char *path, struct config **out, char *err,
                size_t errlen)
{
    struct ctx c = { path, "", 0, { err, errlen, 0 }, 0, false };
    char *buf;
    size_t len;
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (read_file(path, &buf, &len) < 0) {
        if (errno == ENOMEM)
            file_err(&c, "out of memory");
        else if (errno == EFBIG)
            file_err(&c, "cannot read: larger than %ld bytes",
                     CONFIG_MAX_BYTES);
        else
            file_err(&c, "cannot read: %s", strerror(errno));
        return -1;
    }
    rc = config_parse(path, buf, len, out, err, errlen);
    mem_free(buf);
    return rc;
}

struct config *config_default(void)
{
    struct config *cfg;

    return config_parse("(defaults)", "{}", 2, &cfg, NULL, 0) == 0 ? cfg
                                                                  : NULL;
}

const struct cfg_role *config_role(const struct config *cfg,
                                   const char *name)
{
    size_t i;

    for (i = 0; cfg && name && i < cfg->n_roles; i++)
        if (cfg->roles[i].name && strcmp(cfg->roles[i].name, name) == 0)
            return &cfg->roles[i];
    return NULL;
}
