#include <stdlib.h>
#include <string.h>

#include "ipcount.h"

struct slot {
    char key[IPCOUNT_KEY_MAX];
    uint32_t count;   /* 0: empty */
};

struct ipcount {
    struct slot *slots;
    size_t cap, used;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ULL;
    return h;
}

struct ipcount *ipcount_new(void)
{
    struct ipcount *t = calloc(1, sizeof(*t));

    if (t && !(t->slots = calloc(t->cap = 256, sizeof(*t->slots)))) {
        free(t);
        return NULL;
    }
    return t;
}

void ipcount_free(struct ipcount *t)
{
    if (t)
        free(t->slots);
    free(t);
}

static struct slot *find(const struct ipcount *t, const char *k)
{
    size_t i = hash(k) & (t->cap - 1);

    while (t->slots[i].count) {
        if (strcmp(t->slots[i].key, k) == 0)
            return &t->slots[i];
        i = (i + 1) & (t->cap - 1);
    }
    return &t->slots[i];
}

static int grow(struct ipcount *t)
{
    struct slot *old = t->slots;
    size_t cap = t->cap;

    if (!(t->slots = calloc(cap * 2, sizeof(*t->slots)))) {
        t->slots = old;
        return -1;
    }
    t->cap = cap * 2;
    for (size_t i = 0; i < cap; i++)
        if (old[i].count)
            *find(t, old[i].key) = old[i];
    free(old);
    return 0;
}

uint32_t ipcount_get(const struct ipcount *t, const char *addr)
{
    return find(t, addr)->count;
}

uint32_t ipcount_inc(struct ipcount *t, const char *addr)
{
    char k[IPCOUNT_KEY_MAX];
    struct slot *s;

    strncpy(k, addr, sizeof(k) - 1);
    k[sizeof(k) - 1] = '\0';
    s = find(t, k);
    if (!s->count) {
        if ((t->used + 1) * 2 > t->cap) {
            if (grow(t) < 0)
                return 0;
            s = find(t, k);
        }
        memcpy(s->key, k, sizeof(k));
        t->used++;
    }
    return ++s->count;
}

void ipcount_dec(struct ipcount *t, const char *addr)
{
    char k[IPCOUNT_KEY_MAX];
    struct slot *s;
    size_t i, j;

    strncpy(k, addr, sizeof(k) - 1);
    k[sizeof(k) - 1] = '\0';
    s = find(t, k);
    if (!s->count || --s->count)
        return;
    /* backward-shift deletion keeps probe chains whole */
    t->used--;
    i = (size_t)(s - t->slots);
    for (j = (i + 1) & (t->cap - 1); t->slots[j].count;
         j = (j + 1) & (t->cap - 1)) {
        size_t home = hash(t->slots[j].key) & (t->cap - 1);

        if ((j > i && (home <= i || home > j)) ||
            (j < i && (home <= i && home > j))) {
            t->slots[i] = t->slots[j];
            t->slots[j].count = 0;
            i = j;
        }
    }
    t->slots[i].count = 0;
}
