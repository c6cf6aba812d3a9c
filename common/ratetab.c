#include <stdlib.h>
#include <string.h>

#include "keyhash.h"
#include "ratetab.h"

struct entry {
    char *key;            /* NULL: empty */
    size_t len;
    uint64_t hash;
    struct tbucket b;
};

struct ratetab {
    struct entry *v;
    size_t cap, used;
    struct keyhash *kh;
};

struct ratetab *ratetab_new(const unsigned char *seed)
{
    struct ratetab *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    if (!(t->kh = keyhash_new(seed)) ||
        !(t->v = calloc(t->cap = 64, sizeof(*t->v)))) {
        ratetab_free(t);
        return NULL;
    }
    return t;
}

void ratetab_free(struct ratetab *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->v && i < t->cap; i++)
        free(t->v[i].key);
    free(t->v);
    keyhash_free(t->kh);
    free(t);
}

size_t ratetab_size(const struct ratetab *t)
{
    return t->used;
}

static struct entry *slot(struct entry *v, size_t cap, uint64_t h,
                          const char *key, size_t len)
{
    size_t i = h & (cap - 1);

    while (v[i].key && !(v[i].hash == h && v[i].len == len &&
                         memcmp(v[i].key, key, len) == 0))
        i = (i + 1) & (cap - 1);
    return &v[i];
}

/* Rebuilds t with room for one more: without the buckets that are full
 * again by now, into a table twice as large when that is not enough. */
static int rebuild(struct ratetab *t, long rate, long burst, uint64_t now)
{
    size_t keep = 0, cap = t->cap;
    struct entry *v;

    for (size_t i = 0; i < t->cap; i++) {
        struct tbucket b;

        if (!t->v[i].key)
            continue;
        b = t->v[i].b;
        /* what a take would find, without taking */
        if (now > b.last_ms && rate > 0)
            b.tokens += (double)(now - b.last_ms) * (double)rate / 1000.0;
        if (b.tokens >= (double)burst) {
            free(t->v[i].key);
            t->v[i].key = NULL;
        } else {
            keep++;
        }
    }
    while ((keep + 1) * 2 > cap)
        cap *= 2;
    if (!(v = calloc(cap, sizeof(*v))))
        return -1;
    for (size_t i = 0; i < t->cap; i++)
        if (t->v[i].key)
            *slot(v, cap, t->v[i].hash, t->v[i].key, t->v[i].len) = t->v[i];
    free(t->v);
    t->v = v;
    t->cap = cap;
    t->used = keep;
    return 0;
}

struct tbucket *ratetab_get(struct ratetab *t, const char *key, size_t len,
                            long rate, long burst, uint64_t now_ms)
{
    uint64_t h = keyhash(t->kh, key, len);
    struct entry *e = slot(t->v, t->cap, h, key, len);

    if (e->key)
        return &e->b;
    if ((t->used + 1) * 2 > t->cap) {
        if (rebuild(t, rate, burst, now_ms) < 0)
            return NULL;
        e = slot(t->v, t->cap, h, key, len);
    }
    if (!(e->key = malloc(len ? len : 1)))
        return NULL;
    memcpy(e->key, key, len);
    e->len = len;
    e->hash = h;
    tbucket_init(&e->b, burst, now_ms);
    t->used++;
    return &e->b;
}
