/* libFuzzer target: users_parse() on arbitrary text.
 *
 * Each input is parsed with a large error buffer, with no buffer at all,
 * with a tiny one, and with the k-th allocation failing (k from the input).
 * A table that parses must keep the promises of users.h: one entry per
 * line that is not blank or a comment, in file order, each found by name,
 * with a clean name, a hash of the stated method, well-formed roles and a
 * TOTP key of 10..64 bytes or none. A refusal must name the file on every
 * line, and must never quote a hash (a plaintext password, often) or a
 * TOTP secret: outside the quoted user name, no error line may contain
 * the second or fourth field of any input line (fields shorter than 8
 * bytes, with a space, or found in the parser's fixed wording, are not
 * searched). */
#include <stdbool.h>

#include "fuzz.h"
#include "users.h"
#include "utf8.h"

#define NAME "fuzz.users"

/* The parser's own wording (users.c): a secret that is part of it could
 * appear in a message without having leaked. */
static const char wording[] =
    "expected name:hash:roles[:totp_base32] "
    "plaintext or unsupported hash (use mqgate-passwd or mkpasswd -m yescrypt) "
    "malformed yescrypt hash malformed SHA-512 hash malformed bcrypt hash "
    "empty user name user name longer than 256 bytes "
    "user name is not valid UTF-8 user name contains a control character "
    "empty role name role name with a space or control character "
    "role name is not valid UTF-8 empty TOTP secret "
    "role name with a character other than A-Z a-z 0-9 _ . - "
    "role name longer than 64 bytes "
    "TOTP secret is not valid base32 TOTP secret is bytes, expected 10..64 "
    "duplicate user (first on line ) line longer than 4096 bytes "
    "larger than 1048576 bytes out of memory";

static size_t n_allocs, fail_at;

static void *counting_malloc(size_t n)
{
    n_allocs++;
    if (fail_at && n_allocs == fail_at)
        return NULL;
    return malloc(n);
}

static bool is_blank_or_comment(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i == n || s[i] == '#';
}

/* Calls fn(line, len, number) for each line as users_parse() sees it. */
static void each_line(const char *text, size_t len,
                      void (*fn)(const char *, size_t, unsigned, void *),
                      void *arg)
{
    size_t pos = 0;
    unsigned no = 0;

    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;

        pos += n + (nl ? 1 : 0);
        no++;
        if (n > 0 && s[n - 1] == '\r')
            n--;
        fn(s, n, no, arg);
    }
}

struct expect {
    const struct users *u;
    size_t next;
};

static void check_entry_line(const char *s, size_t n, unsigned no, void *arg)
{
    struct expect *x = arg;
    const struct user_entry *e;
    size_t name_len, k;

    if (is_blank_or_comment(s, n))
        return;
    e = users_get(x->u, x->next);
    FUZZ_CHECK(e != NULL);
    FUZZ_CHECK(e->index == x->next && e->line == no);
    x->next++;

    name_len = strlen(e->name);
    FUZZ_CHECK(name_len >= 1 && name_len <= USERS_NAME_MAX);
    FUZZ_CHECK(n > name_len && memcmp(s, e->name, name_len) == 0 &&
               s[name_len] == ':');
    FUZZ_CHECK(utf8_valid(e->name, name_len));
    for (k = 0; k < name_len; k++)
        FUZZ_CHECK((unsigned char)e->name[k] >= 0x20 &&
                   e->name[k] != 0x7f && e->name[k] != ':');
    FUZZ_CHECK(users_find(x->u, e->name) == e);

    FUZZ_CHECK(strlen(e->hash) <= USERS_HASH_MAX);
    switch (e->method) {
    case USERS_YESCRYPT:
        FUZZ_CHECK(strncmp(e->hash, "$y$", 3) == 0);
        break;
    case USERS_SHA512:
        FUZZ_CHECK(strncmp(e->hash, "$6$", 3) == 0);
        break;
    case USERS_BCRYPT:
        FUZZ_CHECK(strncmp(e->hash, "$2", 2) == 0 && strlen(e->hash) == 60);
        break;
    default:
        FUZZ_CHECK(!"unknown method");
    }
    for (k = 0; k < e->n_roles; k++) {
        const char *r = e->roles[k];

        FUZZ_CHECK(r[0] != '\0');
        for (; *r; r++)
            FUZZ_CHECK((unsigned char)*r > 0x20 && *r != 0x7f &&
                       *r != ',' && *r != ':');
    }
    if (e->totp_key)
        FUZZ_CHECK(e->totp_key_len >= USERS_TOTP_MIN &&
                   e->totp_key_len <= USERS_TOTP_MAX);
    else
        FUZZ_CHECK(e->totp_key_len == 0);
}

/* The message part of an error line: past "FILE:LINE: " and past a quoted
 * user name, if any. */
static const char *message_part(const char *line, size_t n, size_t *mlen)
{
    const char *p = line, *end = line + n;
    const char *q;

    FUZZ_CHECK(n > sizeof NAME && memcmp(line, NAME ":", sizeof NAME) == 0);
    p += sizeof NAME;
    q = memchr(p, ' ', (size_t)(end - p));
    if (q && q > p && q[-1] == ':' && q - p > 1 &&
        p[0] >= '0' && p[0] <= '9')
        p = q + 1; /* "LINE: " */
    if (end - p > 6 && memcmp(p, "user \"", 6) == 0) {
        p += 6;
        while (p < end && *p != '"')
            p += *p == '\\' ? 2 : 1;
        p += 3; /* "\": " */
        if (p > end)
            p = end;
    }
    *mlen = (size_t)(end - p);
    return p;
}

struct leak {
    const char *err;
};

static void no_secret(const char *err, const char *secret, size_t n)
{
    const char *line = err;

    /* With a space, a field could be a piece of a message that holds a
     * number ("TOTP secret is 5 bytes"); hashes and base32 have none. */
    if (n < 8 || memchr(secret, ' ', n) ||
        memmem(wording, sizeof wording - 1, secret, n))
        return;
    for (;;) {
        const char *nl = strchr(line, '\n');
        size_t mlen;
        const char *m;

        if (!nl)
            break;
        m = message_part(line, (size_t)(nl - line), &mlen);
        FUZZ_CHECK(!memmem(m, mlen, secret, n));
        line = nl + 1;
    }
}

static void check_secret_line(const char *s, size_t n, unsigned no, void *arg)
{
    const struct leak *l = arg;
    const char *f[5];
    size_t fl[5], count = 0, start = 0;

    (void)no;
    for (size_t i = 0; i <= n && count < 5; i++) {
        if (i < n && s[i] != ':')
            continue;
        f[count] = s + start;
        fl[count] = i - start;
        count++;
        start = i + 1;
    }
    if (count >= 2)
        no_secret(l->err, f[1], fl[1]);
    if (count >= 4)
        no_secret(l->err, f[3], fl[3]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char err[65536];
    char tiny[3];
    struct users *u = NULL, *u2;
    char *text = fuzz_dup(data, size, 0);
    size_t total;
    int rc, rc2;

    users_set_alloc_funcs(counting_malloc, free);
    n_allocs = 0;
    fail_at = 0;
    rc = users_parse(NAME, text, size, &u, err, sizeof err);
    total = n_allocs;
    FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
    if (rc == 0) {
        struct expect x = { u, 0 };

        FUZZ_CHECK(u != NULL);
        each_line(text, size, check_entry_line, &x);
        FUZZ_CHECK(users_count(u) == x.next);
        FUZZ_CHECK(users_get(u, x.next) == NULL);
    } else {
        struct leak l = { err };

        FUZZ_CHECK(rc == -1 && u == NULL && err[0] != '\0');
        /* A full buffer may end in a cut line; complete lines are checked. */
        each_line(text, size, check_secret_line, &l);
    }

    rc2 = users_parse(NAME, text, size, &u2, NULL, 0);
    FUZZ_CHECK(rc2 == rc && (u2 != NULL) == (rc == 0));
    users_free(u2);
    memset(tiny, 0x55, sizeof tiny);
    rc2 = users_parse(NAME, text, size, &u2, tiny, 2);
    FUZZ_CHECK(rc2 == rc && (rc == 0 || memchr(tiny, '\0', 2)));
    FUZZ_CHECK(tiny[2] == 0x55);
    users_free(u2);

    if (total > 0) {
        n_allocs = 0;
        fail_at = 1 + (size * 2654435761u + (size ? data[size / 2] : 0)) %
                          total;
        rc2 = users_parse(NAME, text, size, &u2, err, sizeof err);
        FUZZ_CHECK((rc2 == 0) == (u2 != NULL));
        if (rc != 0)
            FUZZ_CHECK(rc2 != 0);
        users_free(u2);
    }

    users_free(u);
    users_set_alloc_funcs(NULL, NULL);
    free(text);
    return 0;
}
