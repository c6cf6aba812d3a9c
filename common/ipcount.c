#include <stdlib.h>
#include <string.h>

#include "ipcount.h"
#include "keyhash.h"

struct slot {
    char key[IPCOUNT_KEY_MAX];
    uint32_t count;   /* 0: empty */
};

struct ipcount {
    struct slot *slots;
    size_t cap, used;
    struct keyhash *kh;   /* linear probing from a keyed hash */
};

uint64_t ipcount_hash(const struct ipcount *t, const char *s)
{
    return keyhash(t->kh, s, strlen(s));
}

struct ipcount *ipcount_new_keyed(const unsigned char seed[IPCOUNT_SEED_BYTES])
{
    struct ipcount *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    if (!(t->kh = keyhash_new(seed)) ||
        !(t->slots = calloc(t->cap = 256, sizeof(*t->slots)))) {
        ipcount_free(t);
        return NULL;
    }
    return t;
}

struct ipcount *ipcount_new(void)
{
    return ipcount_new_keyed(NULL);
}

void ipcount_free(struct ipcount *t)
{
    if (!t)
        return;
    keyhash_free(t->kh);
    free(t->slots);
    free(t);
}

static struct slot *find(const struct ipcount *t, const char *k)
{
    size_t i = ipcount_hash(t, k) & (t->cap - 1);

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
        size_t home = ipcount_hash(t, t->slots[j].key) & (t->cap - 1);

        if ((j > i && (home <= i || home > j)) ||
            (j < i && (home <= i && home > j))) {
            t->slots[i] = t->slots[j];
            t->slots[j].count = 0;
            i = j;
        }
    }
    t->slots[i].count = 0;
}
