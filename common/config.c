/* The operator's configuration file (config.md), loaded in two passes:
 *
 *  1. The key tables (config_table.c) list each object's keys with type,
 *     bounds and default. The walker here type-checks every key against
 *     its table, stores it, and fills in the defaults of the keys that are
 *     absent. Unknown keys are errors.
 *  2. config_check_rules() (config_check.c) applies the rules that span
 *     several keys (mosquitto's config__check). It runs only when pass 1
 *     found nothing, so that a key rejected in pass 1 (and left at its
 *     default) cannot cause a second, misleading error.
 *
 * The file itself is at most 16 MiB. All memory, jansson's and ours, comes
 * from jansson's allocator (json_set_alloc_funcs), so one hook lets a test
 * fail every allocation in turn. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "config_int.h"
#include "readfile.h"

#define CONFIG_MAX_BYTES (16L * 1024 * 1024)

/* ------------------------------------------------------------------------ */
/* Memory */

void *config_mem_alloc(size_t n)
{
    json_malloc_t m;
    json_free_t f;

    json_get_alloc_funcs(&m, &f);
    return m(n ? n : 1);
}

void config_mem_free(void *p)
{
    json_malloc_t m;
    json_free_t f;

    if (!p)
        return;
    json_get_alloc_funcs(&m, &f);
    f(p);
}

static char *mem_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = config_mem_alloc(n);

    if (d)
        memcpy(d, s, n);
    return d;
}

/* Zeroed room for n elements of size bytes at k's array field, and n in
 * its count. NULL when out of memory. */
static void *elems_alloc(const struct key *k, void *base, size_t n,
                         size_t size)
{
    void *p = NULL;

    if (!size || n <= SIZE_MAX / size)
        p = config_mem_alloc(n * size);
    if (!p)
        return NULL;
    memset(p, 0, n * size);
    FIELD(base, k->off, void *) = p;
    FIELD(base, k->off_n, size_t) = n;
    return p;
}

/* ------------------------------------------------------------------------ */
/* Pass 1: the table walker. Functions return -1 only when out of memory;
 * a bad value is reported, counted and replaced by the default. */

static int load_obj(struct ctx *c, const struct path *p, json_t *obj,
                    const struct table *t, void *base);

static int set_default(struct ctx *c, const struct path *p,
                       const struct key *k, void *base)
{
    char *arr = NULL;
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
        if (n > 0 && !elems_alloc(k, base, n, sizeof(char *)))
            return -1;
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
        if (n > 0 && !(arr = elems_alloc(k, base, n, k->sub->size)))
            return -1;
        for (i = 0; i < n; i++) {
            struct path ep = { p, NULL, i };

            if (load_obj(c, &ep, NULL, k->sub, arr + i * k->sub->size) < 0)
                return -1;
        }
        break;
    }
    return 0;
}

/* Reports what was expected instead of the value at p, and falls back to
 * k's default. */
static int reject(struct ctx *c, const struct path *p, const struct key *k,
                  void *base, const char *expected)
{
    config_err(c, p, true, "%s", expected);
    return set_default(c, p, k, base);
}

/* A string value, checked and copied into *dst (left NULL when bad). */
static int load_str(struct ctx *c, const struct path *p, const struct key *k,
                    json_t *v, char **dst)
{
    const char *s, *msg;

    if (!json_is_string(v)) {
        config_err(c, p, true, "expected string");
        return 0;
    }
    s = json_string_value(v);
    msg = k->check ? k->check(c, s) : NULL;
    if (c->oom)
        return -1;
    if (msg) {
        config_err(c, p, true, "%s", msg);
        return 0;
    }
    *dst = mem_strdup(s);
    return *dst ? 0 : -1;
}

/* One loader per kind: the value v of key k at path p, into base. */
typedef int load_fn(struct ctx *c, const struct path *p, const struct key *k,
                    json_t *v, void *base);

static int load_num(struct ctx *c, const struct path *p, const struct key *k,
                    json_t *v, void *base)
{
    json_int_t iv = json_is_integer(v) ? json_integer_value(v) : 0;

    if ((k->flags & KF_AUTO) && json_is_string(v) &&
        strcmp(json_string_value(v), "auto") == 0) {
        FIELD(base, k->off, int) = 0;
        return 0;
    }
    if (!json_is_integer(v) || iv < k->min || iv > k->max) {
        config_err(c, p, true, "expected integer %lld..%lld%s", k->min,
                   k->max, k->flags & KF_AUTO ? " or \"auto\"" : "");
        return set_default(c, p, k, base);
    }
    if (k->kind == K_INT)
        FIELD(base, k->off, int) = (int)iv;
    else
        FIELD(base, k->off, long) = (long)iv;
    return 0;
}

static int load_bool(struct ctx *c, const struct path *p, const struct key *k,
                     json_t *v, void *base)
{
    if (!json_is_boolean(v))
        return reject(c, p, k, base, "expected boolean");
    FIELD(base, k->off, bool) = json_is_true(v);
    return 0;
}

static int load_string(struct ctx *c, const struct path *p,
                       const struct key *k, json_t *v, void *base)
{
    if (json_is_null(v) && (k->flags & KF_NULL))
        return 0;
    if (!json_is_string(v) && (k->flags & KF_NULL)) {
        config_err(c, p, true, "expected string or null");
        return 0;
    }
    if (load_str(c, p, k, v, &FIELD(base, k->off, char *)) < 0)
        return -1;
    if (!FIELD(base, k->off, char *))
        return set_default(c, p, k, base);
    return 0;
}

static int load_enum(struct ctx *c, const struct path *p, const struct key *k,
                     json_t *v, void *base)
{
    size_t i;

    for (i = 0; json_is_string(v) && k->names[i]; i++) {
        if (strcmp(json_string_value(v), k->names[i]) == 0) {
            FIELD(base, k->off, int) = (int)i;
            return 0;
        }
    }
    return reject(c, p, k, base, k->expect);
}

/* An array of at least k->min elements of size bytes each: allocates them
 * and returns 1, or returns 0 when there is nothing more to load (empty,
 * or reported and defaulted), -1 when out of memory. */
static int load_array(struct ctx *c, const struct path *p,
                      const struct key *k, json_t *v, void *base,
                      const char *expected, size_t size)
{
    size_t n;

    if (!json_is_array(v))
        return reject(c, p, k, base, expected);
    n = json_array_size(v);
    if (n < (size_t)k->min)
        return reject(c, p, k, base, "expected a non-empty array");
    if (n == 0)
        return 0;
    return elems_alloc(k, base, n, size) ? 1 : -1;
}

static int load_strv(struct ctx *c, const struct path *p, const struct key *k,
                     json_t *v, void *base)
{
    int rc = load_array(c, p, k, v, base, "expected array of strings",
                        sizeof(char *));
    size_t i;
    json_t *e;

    if (rc <= 0)
        return rc;
    json_array_foreach(v, i, e) {
        struct path ep = { p, NULL, i };

        /* A bad element stays NULL: pass 2 does not run then. */
        if (load_str(c, &ep, k, e, &FIELD(base, k->off, char **)[i]) < 0)
            return -1;
    }
    return 0;
}

/* v as the object of table t at elem; a value that is no object is
 * reported and elem gets the defaults. */
static int load_elem(struct ctx *c, const struct path *p, json_t *v,
                     const struct table *t, void *elem)
{
    if (!json_is_object(v)) {
        config_err(c, p, true, "expected object");
        v = NULL;
    }
    return load_obj(c, p, v, t, elem);
}

static int load_object(struct ctx *c, const struct path *p,
                       const struct key *k, json_t *v, void *base)
{
    return load_elem(c, p, v, k->sub, (char *)base + k->off);
}

static int load_objp(struct ctx *c, const struct path *p, const struct key *k,
                     json_t *v, void *base)
{
    void *sub;

    if (!json_is_object(v)) {
        config_err(c, p, true, "expected object");
        return 0;
    }
    if (!(sub = config_mem_alloc(k->sub->size)))
        return -1;
    memset(sub, 0, k->sub->size);
    FIELD(base, k->off, void *) = sub;
    return load_obj(c, p, v, k->sub, sub);
}

static int load_objv(struct ctx *c, const struct path *p, const struct key *k,
                     json_t *v, void *base)
{
    int rc = load_array(c, p, k, v, base, "expected array of objects",
                        k->sub->size);
    char *arr;
    size_t i;
    json_t *e;

    if (rc <= 0)
        return rc;
    arr = FIELD(base, k->off, char *);
    json_array_foreach(v, i, e) {
        struct path ep = { p, NULL, i };

        if (load_elem(c, &ep, e, k->sub, arr + i * k->sub->size) < 0)
            return -1;
    }
    return 0;
}

static int load_objmap(struct ctx *c, const struct path *p,
                       const struct key *k, json_t *v, void *base)
{
    const char *name, *msg;
    size_t i = 0;
    char *arr;
    json_t *e;

    if (!json_is_object(v)) {
        config_err(c, p, true, "expected object");
        return 0;
    }
    if (json_object_size(v) == 0)
        return 0;
    if (!(arr = elems_alloc(k, base, json_object_size(v), k->sub->size)))
        return -1;
    json_object_foreach(v, name, e) {
        struct path ep = { p, name, 0 };
        char *elem = arr + i++ * k->sub->size;

        if (!(FIELD(elem, k->name_off, char *) = mem_strdup(name)))
            return -1;
        if ((msg = k->check(c, name)) != NULL)
            config_err(c, &ep, false, "%s", msg);
        /* Kept (with defaults) even when bad, so that references to it do
         * not fail as well. */
        if (load_elem(c, &ep, e, k->sub, elem) < 0)
            return -1;
    }
    return 0;
}

static load_fn *const loaders[] = {
    [K_INT] = load_num,       [K_LONG] = load_num,
    [K_BOOL] = load_bool,     [K_STR] = load_string,
    [K_STRV] = load_strv,     [K_ENUM] = load_enum,
    [K_OBJ] = load_object,    [K_OBJP] = load_objp,
    [K_OBJV] = load_objv,     [K_OBJMAP] = load_objmap,
};

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
                config_err(c, &kp, false, "unknown key");
                continue;
            }
            seen |= UINT64_C(1) << i;
            if (loaders[t->keys[i].kind](c, &kp, &t->keys[i], v, base) < 0)
                return -1;
        }
    }
    for (i = 0; i < t->n; i++) {
        const struct key *k = &t->keys[i];
        struct path kp = { p, k->name, 0 };

        if (seen & UINT64_C(1) << i)
            continue;
        if (k->flags & KF_REQUIRED)
            config_err(c, &kp, false, "required key missing");
        if (set_default(c, &kp, k, base) < 0)
            return -1;
    }
    return 0;
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
            config_mem_free(FIELD(base, k->off, char *));
            break;
        case K_STRV:
            n = FIELD(base, k->off_n, size_t);
            for (j = 0; j < n; j++)
                config_mem_free(FIELD(base, k->off, char **)[j]);
            config_mem_free(FIELD(base, k->off, char **));
            break;
        case K_OBJ:
            free_obj(k->sub, (char *)base + k->off);
            break;
        case K_OBJP:
            if (FIELD(base, k->off, void *))
                free_obj(k->sub, FIELD(base, k->off, void *));
            config_mem_free(FIELD(base, k->off, void *));
            break;
        case K_OBJV:
        case K_OBJMAP:
            n = FIELD(base, k->off_n, size_t);
            arr = FIELD(base, k->off, char *);
            for (j = 0; j < n; j++) {
                if (k->kind == K_OBJMAP)
                    config_mem_free(FIELD(arr + j * k->sub->size,
                                          k->name_off, char *));
                free_obj(k->sub, arr + j * k->sub->size);
            }
            config_mem_free(arr);
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
    free_obj(&config_table_root, cfg);
    config_mem_free(cfg->path);
    config_mem_free(cfg);
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
    const char *nul;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    /* RFC 8259 has no raw U+0000 anywhere, but jansson skips one that
     * follows a number or a literal ("true\0" loads as true). */
    if ((nul = memchr(c.text, '\0', c.len)) != NULL) {
        config_nul_err(&c, (size_t)(nul - c.text));
        goto fail;
    }
    root = json_loadb(c.text, c.len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        config_json_err(&c, &je);
        goto fail;
    }
    if (!json_is_object(root)) {
        config_err(&c, NULL, true, "expected object");
        goto fail;
    }
    if (!(cfg = config_mem_alloc(sizeof *cfg))) {
        c.oom = true;
        goto fail;
    }
    memset(cfg, 0, sizeof *cfg);
    if (!(cfg->path = mem_strdup(c.name)) ||
        load_obj(&c, NULL, root, &config_table_root, cfg) < 0) {
        c.oom = true;
        goto fail;
    }
    cfg->origins_set = json_is_array(json_object_get(root, "origins"));
    if (c.nerr == 0)
        config_check_rules(&c, cfg);
    if (c.nerr > 0)
        goto fail;
    json_decref(root);
    *out = cfg;
    return 0;

fail:
    if (c.oom)
        config_file_err(&c, "out of memory");
    json_decref(root);
    config_free(cfg);
    return -1;
}

int config_load(const char *path, struct config **out, char *err,
                size_t errlen)
{
    static const struct readfile_alloc a = { config_mem_alloc,
                                             config_mem_free };
    struct ctx c = { path, "", 0, { err, errlen, 0 }, 0, false };
    char *buf;
    size_t len;
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (readfile(path, CONFIG_MAX_BYTES, &a, &buf, &len) < 0) {
        if (errno == ENOMEM)
            config_file_err(&c, "out of memory");
        else if (errno == EFBIG)
            config_file_err(&c, "cannot read: larger than %ld bytes",
                            CONFIG_MAX_BYTES);
        else
            config_file_err(&c, "cannot read: %s", strerror(errno));
        return -1;
    }
    rc = config_parse(path, buf, len, out, err, errlen);
    config_mem_free(buf);
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
