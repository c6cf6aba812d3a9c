/* The users file (users.h); over 500 lines because parsing a line, its
 * error messages and the name table share the entry layout. One pass over
 * the lines; each bad line gets
 * one error (its first problem) and parsing goes on, so that the operator
 * sees every bad line at once. A good line becomes one allocation holding
 * the entry's strings, roles and key; names go into an open-addressing
 * hash table that also finds duplicates as they come.
 *
 * Decisions the spec leaves open:
 *   - lines may end in "\r\n"; one '\r' is dropped, any other is an error;
 *   - a line of spaces and tabs is blank, and a line whose first non-blank
 *     is '#' a comment (so a user name cannot start with '#');
 *   - a UTF-8 BOM at the start of the file is skipped;
 *   - C0, DEL and C1 code points count as control characters in names;
 *   - a supported prefix with a damaged rest gets its own message
 *     ("malformed SHA-512 hash"), not the plaintext one;
 *   - an empty TOTP field ("name:hash:roles:") is an error, not "no TOTP":
 *     a lost secret must not silently turn two factors into one;
 *   - the unused low bits of the last base32 character are ignored, as
 *     authenticator apps do (a random 26-character secret is common). */
#include "errbuf.h"
#include "readfile.h"
#include "users.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define MSG_FORMAT "expected name:hash:roles[:totp_base32]"
#define MSG_PLAINTEXT \
    "plaintext or unsupported hash (use mqgate-passwd or mkpasswd -m yescrypt)"

/* ------------------------------------------------------------------------ */
/* Memory */

static void *(*mem_malloc)(size_t) = malloc;
static void (*mem_release)(void *) = free;

void users_set_alloc_funcs(void *(*m)(size_t), void (*f)(void *))
{
    mem_malloc = m ? m : malloc;
    mem_release = f ? f : free;
}

static void *mem_alloc(size_t n)
{
    return mem_malloc(n ? n : 1);
}

/* Frees p after wiping its n bytes: blocks hold hashes and secrets. */
static void mem_wipe_free(void *p, size_t n)
{
    if (!p)
        return;
    explicit_bzero(p, n);
    mem_release(p);
}

/* ------------------------------------------------------------------------ */
/* The table */

struct slot {
    struct user_entry e;
    void *block;                  /* everything e points to */
    size_t block_len;
};

struct users {
    struct slot *v;
    size_t n, cap;
    size_t *table;                /* index + 1 into v; 0: empty */
    size_t table_cap;             /* a power of two, > 2 * n */
};

static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The table position of name, or of the empty slot where it would go. */
static size_t table_pos(const struct users *u, const char *name, size_t n)
{
    size_t mask = u->table_cap - 1;
    size_t i = (size_t)name_hash(name, n) & mask;

    while (u->table[i]) {
        const char *other = u->v[u->table[i] - 1].e.name;

        if (strncmp(other, name, n) == 0 && other[n] == '\0')
            break;
        i = (i + 1) & mask;
    }
    return i;
}

static int table_grow(struct users *u)
{
    size_t cap = u->table_cap ? u->table_cap * 2 : 16;
    size_t *old = u->table, old_cap = u->table_cap;

    if (cap > SIZE_MAX / sizeof(*u->table))
        return -1;
    u->table = mem_alloc(cap * sizeof(*u->table));
    if (!u->table) {
        u->table = old;
        return -1;
    }
    memset(u->table, 0, cap * sizeof(*u->table));
    u->table_cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i]) {
            const char *name = u->v[old[i] - 1].e.name;

            u->table[table_pos(u, name, strlen(name))] = old[i];
        }
    }
    mem_release(old);
    return 0;
}

static int slots_grow(struct users *u)
{
    size_t cap = u->cap ? u->cap * 2 : 16;
    struct slot *v;

    if (cap > SIZE_MAX / sizeof(*v))
        return -1;
    v = mem_alloc(cap * sizeof(*v));
    if (!v)
        return -1;
    if (u->n)
        memcpy(v, u->v, u->n * sizeof(*v));
    mem_release(u->v);
    u->v = v;
    u->cap = cap;
    return 0;
}

void users_free(struct users *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n; i++)
        mem_wipe_free(u->v[i].block, u->v[i].block_len);
    mem_release(u->v);
    mem_release(u->table);
    mem_release(u);
}

const struct user_entry *users_find(const struct users *u, const char *name)
{
    size_t i, n;

    if (!u || !name || !u->table_cap)
        return NULL;
    n = strlen(name);
    if (n > USERS_NAME_MAX)
        return NULL;
    i = u->table[table_pos(u, name, n)];
    return i ? &u->v[i - 1].e : NULL;
}

size_t users_count(const struct users *u)
{
    return u ? u->n : 0;
}

const struct user_entry *users_get(const struct users *u, size_t i)
{
    return u && i < u->n ? &u->v[i].e : NULL;
}

/* ------------------------------------------------------------------------ */
/* Error buffer */

struct ctx {
    const char *name;             /* the file, for messages */
    struct errbuf eb;
    int nerr;
    bool oom;
};

/* Control characters would break the one-error-a-line format; quotes and
 * backslashes are escaped so that a quoted name reads unambiguously. */
static void err_put_escaped(struct ctx *c, const char *s, size_t n,
                            bool quoted)
{
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch >= 0x20 && ch != 0x7f && !(quoted && (ch == '"' || ch == '\\')))
            continue;
        errbuf_putn(&c->eb, s + run, i - run);
        if (ch == '"' || ch == '\\')
            errbuf_printf(&c->eb, "\\%c", ch);
        else
            errbuf_printf(&c->eb, "\\u%04x", ch);
        run = i + 1;
    }
    errbuf_putn(&c->eb, s + run, n - run);
}

/* "FILE: message" */
__attribute__((format(printf, 2, 3)))
static void file_err(struct ctx *c, const char *fmt, ...)
{
    va_list ap;

    c->nerr++;
    err_put_escaped(c, c->name, strlen(c->name), false);
    errbuf_puts(&c->eb, ": ");
    va_start(ap, fmt);
    errbuf_vprintf(&c->eb, fmt, ap);
    va_end(ap);
    errbuf_puts(&c->eb, "\n");
}

/* "FILE:LINE: [user "NAME": ]message"; user is a validated name or NULL. */
__attribute__((format(printf, 5, 6)))
static void line_err(struct ctx *c, unsigned line, const char *user,
                     size_t user_len, const char *fmt, ...)
{
    va_list ap;

    c->nerr++;
    err_put_escaped(c, c->name, strlen(c->name), false);
    errbuf_printf(&c->eb, ":%u: ", line);
    if (user) {
        errbuf_puts(&c->eb, "user \"");
        err_put_escaped(c, user, user_len, true);
        errbuf_puts(&c->eb, "\": ");
    }
    va_start(ap, fmt);
    errbuf_vprintf(&c->eb, fmt, ap);
    va_end(ap);
    errbuf_puts(&c->eb, "\n");
}

/* ------------------------------------------------------------------------ */
/* Field checks: NULL when fine, else the message */

static bool is_c64(unsigned char ch)
{
    return ch == '.' || ch == '/' || (ch >= '0' && ch <= '9') ||
           (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static size_t c64_span(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && is_c64((unsigned char)s[i]))
        i++;
    return i;
}

static bool has_prefix(const char *s, size_t n, const char *p)
{
    size_t pn = strlen(p);

    return n >= pn && memcmp(s, p, pn) == 0;
}

/* $y$PARAMS$SALT$HASH, HASH being 256 bits in 43 characters. */
static bool yescrypt_ok(const char *s, size_t n)
{
    size_t k;

    s += 3;
    n -= 3;
    for (int part = 0; part < 2; part++) {
        k = c64_span(s, n);
        if (k == 0 || k == n || s[k] != '$')
            return false;
        s += k + 1;
        n -= k + 1;
    }
    return n == 43 && c64_span(s, n) == n;
}

/* $6$[rounds=N$]SALT$HASH: SALT 1..16 characters, HASH 86. */
static bool sha512_ok(const char *s, size_t n)
{
    size_t k;

    s += 3;
    n -= 3;
    if (has_prefix(s, n, "rounds=")) {
        s += 7;
        n -= 7;
        for (k = 0; k < n && s[k] >= '0' && s[k] <= '9'; k++)
            ;
        if (k == 0 || k > 9 || s[0] == '0' || k == n || s[k] != '$')
            return false;
        s += k + 1;
        n -= k + 1;
    }
    k = c64_span(s, n);
    if (k == 0 || k > 16 || k == n || s[k] != '$')
        return false;
    s += k + 1;
    n -= k + 1;
    return n == 86 && c64_span(s, n) == n;
}

/* $2b$NN$ then 22 characters of salt and 31 of hash: 60 in all. */
static bool bcrypt_ok(const char *s, size_t n)
{
    int cost;

    if (n != 60 || s[6] != '$' || s[4] < '0' || s[4] > '9' || s[5] < '0' ||
        s[5] > '9')
        return false;
    cost = (s[4] - '0') * 10 + (s[5] - '0');
    return cost >= 4 && cost <= 31 && c64_span(s + 7, 53) == 53;
}

static const char *check_hash(const char *s, size_t n,
                              enum users_method *method)
{
    if (has_prefix(s, n, "$y$")) {
        *method = USERS_YESCRYPT;
        return n <= USERS_HASH_MAX && yescrypt_ok(s, n)
                   ? NULL
                   : "malformed yescrypt hash";
    }
    if (has_prefix(s, n, "$6$")) {
        *method = USERS_SHA512;
        return n <= USERS_HASH_MAX && sha512_ok(s, n)
                   ? NULL
                   : "malformed SHA-512 hash";
    }
    if (has_prefix(s, n, "$2b$") || has_prefix(s, n, "$2a$") ||
        has_prefix(s, n, "$2y$")) {
        *method = USERS_BCRYPT;
        return bcrypt_ok(s, n) ? NULL : "malformed bcrypt hash";
    }
    return MSG_PLAINTEXT;
}

/* C0 controls, DEL, and C1 controls (U+0080..U+009F, as C2 80..C2 9F). */
static bool has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch < 0x20 || ch == 0x7f)
            return true;
        if (ch == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9f)
            return true;
    }
    return false;
}

static const char *check_name(const char *s, size_t n)
{
    if (n == 0)
        return "empty user name";
    if (n > USERS_NAME_MAX)
        return "user name longer than 256 bytes";
    if (!utf8_valid(s, n))
        return "user name is not valid UTF-8";
    if (has_control(s, n))
        return "user name contains a control character";
    return NULL;
}

const char *users_role_name_check(const char *s, size_t n)
{
    const char *msg = NULL;

    if (n == 0)
        return "empty role name";
    for (size_t k = 0; k < n; k++) {
        unsigned char ch = (unsigned char)s[k];

        if (ch <= 0x20 || ch == 0x7f)
            return "role name with a space or control character";
        if (!msg && !(ch >= '0' && ch <= '9') && !(ch >= 'a' && ch <= 'z') &&
            !(ch >= 'A' && ch <= 'Z') && !strchr("_.-", ch))
            msg = "role name with a character other than A-Z a-z 0-9 _ . -";
    }
    if (!utf8_valid(s, n))
        return "role name is not valid UTF-8";
    if (n > USERS_ROLE_MAX)
        return "role name longer than 64 bytes";
    return msg;
}

/* Counts the roles of s[0..n) into *count ("" has none). */
static const char *check_roles(const char *s, size_t n, size_t *count)
{
    size_t start = 0;
    const char *msg;

    *count = 0;
    if (n == 0)
        return NULL;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',')
            continue;
        if ((msg = users_role_name_check(s + start, i - start)))
            return msg;
        (*count)++;
        start = i + 1;
    }
    return NULL;
}

static int b32_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a';
    if (ch >= '2' && ch <= '7')
        return ch - '2' + 26;
    return -1;
}

/* RFC 4648 base32, any case, '=' padding optional but exact when present.
 * Writes into out (when not NULL) and returns the decoded length, or -1. */
static long b32_decode(const char *s, size_t n, unsigned char *out)
{
    size_t data = n, pad, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    while (data > 0 && s[data - 1] == '=')
        data--;
    pad = n - data;
    switch (data % 8) {
    case 1: case 3: case 6:
        return -1;    /* no whole byte ends there */
    }
    if (pad && (n % 8 != 0 || pad >= 8))
        return -1;
    for (size_t i = 0; i < data; i++) {
        int v = b32_value((unsigned char)s[i]);

        if (v < 0)
            return -1;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (out)
                out[o] = (unsigned char)(acc >> bits);
            o++;
            acc &= (1u << bits) - 1;
        }
    }
    return (long)o;
}

/* ------------------------------------------------------------------------ */
/* Lines */

struct fields {
    const char *p[4];
    size_t n[4];
    size_t count;                 /* 5 stands for "more than 4" */
};

static void split(const char *s, size_t n, struct fields *f)
{
    size_t start = 0;

    f->count = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ':')
            continue;
        if (f->count == 4) {
            f->count = 5;
            return;
        }
        f->p[f->count] = s + start;
        f->n[f->count] = i - start;
        f->count++;
        start = i + 1;
    }
}

/* Builds the entry of a checked line: one block holding, in this order,
 * the role pointers, the key, the name, the hash and the roles. */
static int add_user(struct users *u, const struct fields *f, size_t n_roles,
                    long key_len, enum users_method method, unsigned line)
{
    size_t len, key = key_len > 0 ? (size_t)key_len : 0;
    struct slot *sl;
    char *p, **roles;
    unsigned char *k;

    if (u->n == u->cap && slots_grow(u) < 0)
        return -1;
    if ((u->n + 1) * 2 >= u->table_cap && table_grow(u) < 0)
        return -1;
    len = n_roles * sizeof(char *) + key + f->n[0] + 1 + f->n[1] + 1 +
          f->n[2] + 1;
    if (!(roles = mem_alloc(len)))
        return -1;
    k = (unsigned char *)(roles + n_roles);
    p = (char *)k + key;
    if (key)
        b32_decode(f->p[3], f->n[3], k);

    sl = &u->v[u->n];
    memset(sl, 0, sizeof(*sl));
    sl->block = roles;
    sl->block_len = len;
    sl->e.name = p;
    memcpy(p, f->p[0], f->n[0]);
    p[f->n[0]] = '\0';
    p += f->n[0] + 1;
    sl->e.hash = p;
    memcpy(p, f->p[1], f->n[1]);
    p[f->n[1]] = '\0';
    p += f->n[1] + 1;
    memcpy(p, f->p[2], f->n[2]);
    p[f->n[2]] = '\0';
    for (size_t i = 0; i < n_roles; i++) {
        char *comma = strchr(p, ',');

        roles[i] = p;
        if (comma)
            *comma = '\0';
        p += strlen(p) + 1;
    }
    sl->e.method = method;
    sl->e.roles = (const char *const *)roles;
    sl->e.n_roles = n_roles;
    sl->e.totp_key = key ? k : NULL;
    sl->e.totp_key_len = key;
    sl->e.index = u->n;
    sl->e.line = line;
    u->table[table_pos(u, sl->e.name, f->n[0])] = ++u->n;
    return 0;
}

/* Checks line s[0..n) (without its end) and adds its user. Returns 0, also
 * after reporting a bad line, or -1 when out of memory. */
static int parse_line(struct ctx *c, struct users *u, const char *s,
                      size_t n, unsigned line)
{
    enum users_method method = USERS_YESCRYPT;
    const char *msg, *user;
    size_t i, n_roles, pos;
    long key_len = 0;
    struct fields f;

    if (n > USERS_LINE_MAX) {
        line_err(c, line, NULL, 0, "line longer than %d bytes",
                 USERS_LINE_MAX);
        return 0;
    }
    for (i = 0; i < n && (s[i] == ' ' || s[i] == '\t'); i++)
        ;
    if (i == n || s[i] == '#')
        return 0;
    split(s, n, &f);
    /* Without the expected shape the first field may be anything (a
     * password on a line of its own): quote nothing. */
    if (f.count < 3 || f.count > 4) {
        line_err(c, line, NULL, 0, MSG_FORMAT);
        return 0;
    }
    if ((msg = check_name(f.p[0], f.n[0]))) {
        line_err(c, line, NULL, 0, "%s", msg);
        return 0;
    }
    user = f.p[0];
    if ((msg = check_hash(f.p[1], f.n[1], &method)) ||
        (msg = check_roles(f.p[2], f.n[2], &n_roles))) {
        line_err(c, line, user, f.n[0], "%s", msg);
        return 0;
    }
    if (f.count == 4) {
        if (f.n[3] == 0) {
            line_err(c, line, user, f.n[0], "empty TOTP secret");
            return 0;
        }
        key_len = b32_decode(f.p[3], f.n[3], NULL);
        if (key_len < 0) {
            line_err(c, line, user, f.n[0],
                     "TOTP secret is not valid base32");
            return 0;
        }
        if (key_len < USERS_TOTP_MIN || key_len > USERS_TOTP_MAX) {
            line_err(c, line, user, f.n[0],
                     "TOTP secret is %ld bytes, expected %d..%d", key_len,
                     USERS_TOTP_MIN, USERS_TOTP_MAX);
            return 0;
        }
    }
    if (u->table_cap) {
        pos = u->table[table_pos(u, f.p[0], f.n[0])];
        if (pos) {
            line_err(c, line, user, f.n[0],
                     "duplicate user (first on line %u)",
                     u->v[pos - 1].e.line);
            return 0;
        }
    }
    return add_user(u, &f, n_roles, key_len, method, line);
}

int users_parse(const char *name, const char *text, size_t len,
                struct users **out, char *err, size_t errlen)
{
    struct ctx c = { name ? name : "(users)", { err, errlen, 0 }, 0, false };
    struct users *u = NULL;
    unsigned line = 0;
    size_t pos = 0;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!text)
        len = 0;
    if (len > USERS_MAX_BYTES) {
        file_err(&c, "larger than %d bytes", USERS_MAX_BYTES);
        return -1;
    }
    if (!(u = mem_alloc(sizeof(*u)))) {
        c.oom = true;
        goto fail;
    }
    memset(u, 0, sizeof(*u));
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;

        pos += n + (nl ? 1 : 0);
        line++;
        if (n > 0 && s[n - 1] == '\r')
            n--;
        if (parse_line(&c, u, s, n, line) < 0) {
            c.oom = true;
            goto fail;
        }
    }
    if (c.nerr)
        goto fail;
    *out = u;
    return 0;

fail:
    if (c.oom)
        file_err(&c, "out of memory");
    users_free(u);
    return -1;
}

int users_load(const char *path, struct users **out, char *err,
               size_t errlen)
{
    struct ctx c = { path, { err, errlen, 0 }, 0, false };
    const struct readfile_alloc a = { mem_alloc, mem_release };
    size_t len;
    char *buf;
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (readfile(path, USERS_MAX_BYTES, &a, &buf, &len) < 0) {
        if (errno == ENOMEM)
            file_err(&c, "out of memory");
        else if (errno == EFBIG)
            file_err(&c, "larger than %d bytes", USERS_MAX_BYTES);
        else
            file_err(&c, "cannot read: %s", strerror(errno));
        return -1;
    }
    rc = users_parse(path, buf, len, out, err, errlen);
    mem_wipe_free(buf, len);
    return rc;
}
