/* The keys marked KF_RESTART in the tables (config_table.c) that differ
 * between two configurations: both are walked by the same tables, side
 * by side. */
#include <string.h>

#include "config_int.h"

struct diff {
    struct errbuf eb;
    size_t n;
};

static void changed(struct diff *d, const struct path *p)
{
    if (d->n++ > 0)
        errbuf_puts(&d->eb, ", ");
    config_put_path(&d->eb, p);
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool strv_eq(const struct key *k, const void *a, const void *b)
{
    size_t n = CFIELD(a, k->off_n, size_t), i;

    if (n != CFIELD(b, k->off_n, size_t))
        return false;
    for (i = 0; i < n; i++)
        if (!str_eq(CFIELD(a, k->off, char **)[i],
                    CFIELD(b, k->off, char **)[i]))
            return false;
    return true;
}

static void diff_obj(struct diff *d, const struct path *p,
                     const struct table *t, const void *a, const void *b);

/* The elements of two arrays of k->sub objects of the same length. */
static void diff_elems(struct diff *d, const struct path *p,
                       const struct key *k, const void *a, const void *b)
{
    const char *ea = CFIELD(a, k->off, char *);
    const char *eb = CFIELD(b, k->off, char *);
    size_t n = CFIELD(a, k->off_n, size_t), size = k->sub->size, i;

    for (i = 0; i < n; i++) {
        struct path ep = { p, NULL, i };

        if (k->kind == K_OBJMAP)
            ep.key = CFIELD(ea + i * size, k->name_off, char *);
        diff_obj(d, &ep, k->sub, ea + i * size, eb + i * size);
    }
}

/* Whether the value of k is the same in a and b; containers are compared
 * by presence or length only (their keys have rows of their own). */
static bool same(const struct key *k, const void *a, const void *b)
{
    switch (k->kind) {
    case K_INT:
    case K_ENUM:
        return CFIELD(a, k->off, int) == CFIELD(b, k->off, int);
    case K_LONG:
        return CFIELD(a, k->off, long) == CFIELD(b, k->off, long);
    case K_BOOL:
        return CFIELD(a, k->off, bool) == CFIELD(b, k->off, bool);
    case K_STR:
        return str_eq(CFIELD(a, k->off, char *), CFIELD(b, k->off, char *));
    case K_STRV:
        return strv_eq(k, a, b);
    case K_OBJP:
        return !CFIELD(a, k->off, void *) == !CFIELD(b, k->off, void *);
    case K_OBJV:
    case K_OBJMAP:
        return CFIELD(a, k->off_n, size_t) == CFIELD(b, k->off_n, size_t);
    case K_OBJ:
        break;
    }
    return true;
}

static void diff_obj(struct diff *d, const struct path *p,
                     const struct table *t, const void *a, const void *b)
{
    size_t i;

    for (i = 0; i < t->n; i++) {
        const struct key *k = &t->keys[i];
        struct path kp = { p, k->name, 0 };
        bool eq = same(k, a, b);

        if (!eq && (k->flags & KF_RESTART))
            changed(d, &kp);
        if (!eq)
            continue;
        if (k->kind == K_OBJ)
            diff_obj(d, &kp, k->sub, (const char *)a + k->off,
                     (const char *)b + k->off);
        else if (k->kind == K_OBJP && CFIELD(a, k->off, void *))
            diff_obj(d, &kp, k->sub, CFIELD(a, k->off, void *),
                     CFIELD(b, k->off, void *));
        else if (k->kind == K_OBJV || k->kind == K_OBJMAP)
            diff_elems(d, &kp, k, a, b);
    }
}

size_t config_restart_changes(const struct config *o, const struct config *n,
                              char *buf, size_t buflen)
{
    struct diff d = { { buf, buflen, 0 }, 0 };

    if (buf && buflen)
        buf[0] = '\0';
    diff_obj(&d, NULL, &config_table_root, o, n);
    return d.n;
}
