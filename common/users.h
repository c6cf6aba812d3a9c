/* The users file of the password method (config.md § auth.users_file):
 *
 *   name:hash:role1,role2[:totp_base32]
 *
 * '#' comments and blank lines are ignored; every other line must be a
 * valid user, else the whole file is refused. I/O-free apart from reading
 * the file itself. Errors are written to the caller's buffer, one per line,
 * as "FILE:LINE: message" (or "FILE: message" for the file as a whole);
 * a message may quote the user name, never the hash, a role list or the
 * TOTP secret. The table is immutable once parsed: whoever needs state per
 * user keeps it aside, indexed by user_entry.index. */
#ifndef MQG_USERS_H
#define MQG_USERS_H

#include <stddef.h>

#define USERS_MAX_BYTES (1024 * 1024) /* the whole file */
#define USERS_LINE_MAX 4096           /* one line, without its end */
#define USERS_NAME_MAX 256            /* bytes of a user name */
#define USERS_HASH_MAX 255            /* bytes of a crypt string */
#define USERS_TOTP_MIN 10             /* bytes of a decoded TOTP secret */
#define USERS_TOTP_MAX 64

#define USERS_ROLE_MAX 64             /* bytes of a role name */

enum users_method { USERS_YESCRYPT, USERS_SHA512, USERS_BCRYPT };

/* The method and cost mqgate-passwd gives a new user by default: yescrypt
 * at libcrypt's default cost (crypt_gensalt()'s prefix and cost). The
 * gateway checks unknown user names against a hash of these, so that they
 * cost what a user made with the defaults costs. */
#define USERS_DEFAULT_PREFIX "$y$"
#define USERS_DEFAULT_COST 0UL

struct user_entry {
    const char *name;             /* valid UTF-8, no ':' nor control char */
    const char *hash;             /* a crypt(3) string of method */
    enum users_method method;
    const char *const *roles;     /* n_roles names as written (may repeat) */
    size_t n_roles;
    const unsigned char *totp_key; /* decoded secret; NULL: no TOTP */
    size_t totp_key_len;          /* USERS_TOTP_MIN..USERS_TOTP_MAX, or 0 */
    size_t index;                 /* 0-based, in file order */
    unsigned line;                /* where the user stands in the file */
};

struct users;

/* Parses text[0..len) (at most USERS_MAX_BYTES); name is used in messages.
 * On success returns 0 and sets *out (free with users_free()). On failure
 * returns -1, sets *out to NULL and writes every error found into err
 * (always NUL-terminated, truncated to errlen; err may be NULL). A leading
 * UTF-8 BOM is skipped and one '\r' before each '\n' is dropped. */
int users_parse(const char *name, const char *text, size_t len,
                struct users **out, char *err, size_t errlen);

/* As users_parse() on the contents of the file at path. */
int users_load(const char *path, struct users **out, char *err,
               size_t errlen);

/* Wipes the hashes and secrets and frees u. NULL is fine. */
void users_free(struct users *u);

/* The user called name, or NULL. A hash lookup: O(1) per request. */
const struct user_entry *users_find(const struct users *u, const char *name);

/* Number of users, and the i-th one in file order (i < users_count()). */
size_t users_count(const struct users *u);
const struct user_entry *users_get(const struct users *u, size_t i);

/* NULL when s[0..n) is a role name as both the config and the users file
 * spell them: 1..USERS_ROLE_MAX bytes of A-Z a-z 0-9 '_' '.' '-' (plain
 * in JSON, logs and file fields alike); else why it is not. */
const char *users_role_name_check(const char *s, size_t n);

/* Tests only: routes users.c's allocations through m and f; (NULL, NULL)
 * restores malloc() and free(). Not thread-safe. */
void users_set_alloc_funcs(void *(*m)(size_t), void (*f)(void *));

#endif
