/* What the files of the config loader share, and nothing else includes:
 *
 *   config.c         the entry points and the table walker (pass 1)
 *   config_table.c   the key tables: type, bounds, default, flags per key
 *   config_value.c   what a string key accepts (the tables' checks)
 *   config_check.c   the rules across keys (pass 2)
 *   config_err.c     error lines: key paths and where they stand
 *   config_restart.c the restart-only keys two configurations differ in
 */
#ifndef MQG_CONFIG_INT_H
#define MQG_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "config.h"
#include "errbuf.h"

/* One load: the text, and the errors found in it so far. */
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

#define P(up, k) { up, k, 0 }
#define PI(up, i) { up, NULL, i }

/* ------------------------------------------------------------------------ */
/* The key tables (config_table.c) */

/* NULL when s is fine, else what was expected. On allocation failure a
 * check sets c->oom (and returns NULL). */
typedef const char *check_fn(struct ctx *c, const char *s);

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
    K_OBJMAP    /* object of named objects: array + count, name at name_off;
                   check applies to the names */
};

enum {
    KF_REQUIRED = 1,
    KF_NULL = 2,                  /* K_STR: null stands for absent */
    KF_RESTART = 4,               /* read at start only: a reload keeps it
                                     (K_OBJP: its presence; K_STRV, K_OBJV:
                                     their length) */
    KF_AUTO = 8                   /* K_INT: the string "auto" is also
                                     accepted, stored as 0 */
};

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
    check_fn *check;              /* K_STR, K_STRV elements, K_OBJMAP names */
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
#define CFIELD(base, off, type) \
    (*(const type *)(const void *)((const char *)(base) + (off)))

/* The keys of struct config, the file's top level. */
extern const struct table config_table_root;

/* ------------------------------------------------------------------------ */
/* Value checks (config_value.c), for the tables */

check_fn config_value_nonempty, config_value_bind, config_value_url_path,
    config_value_uri, config_value_origin, config_value_cookie,
    config_value_alg, config_value_filter, config_value_mount,
    config_value_role;

/* ------------------------------------------------------------------------ */
/* Memory (config.c): jansson's allocator, for everything */

void *config_mem_alloc(size_t n);
void config_mem_free(void *p);

/* ------------------------------------------------------------------------ */
/* Pass 2 (config_check.c): reports every rule across keys cfg breaks. */
void config_check_rules(struct ctx *c, const struct config *cfg);

/* ------------------------------------------------------------------------ */
/* Error lines (config_err.c), each counted in c->nerr */

/* "NAME:LINE: KEY: message[, got VALUE]": the line where the value at p
 * stands (or, when absent, its object); VALUE as written when got. p NULL:
 * the top level. */
void config_err(struct ctx *c, const struct path *p, bool got,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* "NAME: message", for the file as a whole. */
void config_file_err(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "NAME:LINE: syntax error: NUL byte", for the NUL at text[off]. */
void config_nul_err(struct ctx *c, size_t off);

/* What json_loadb() refused: a syntax error or a duplicate key, with its
 * line; only sets c->oom when memory was the cause. */
void config_json_err(struct ctx *c, const json_error_t *je);

/* Appends the key path p (keys with control characters escaped). */
void config_put_path(struct errbuf *eb, const struct path *p);

#endif
