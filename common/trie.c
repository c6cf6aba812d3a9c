#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "topic.h"
#include "trie.h"

/* Why this hash is enough against clients that choose topic levels.
 *
 * A level is hashed in two keyed steps, the key drawn per trie from
 * getrandom():
 *  1. a polynomial over the field of p = 2^61 - 1, evaluated at a random
 *     point k, whose coefficients are the level's length plus one (never
 *     0) and then its bytes in 32-bit chunks. Two distinct levels give
 *     distinct polynomials of degree at most d = len/4 + 2, which agree in
 *     at most d points: they
 *     collide for at most d of the p - 1 keys, a chance below 2^-47 for the
 *     longest level (Carter-Wegman; no assumption about the inputs).
 *  2. multiply-shift (Dietzfelbinger et al.): the value times a random odd
 *     64-bit m; a table of 2^b buckets takes the top b bits. Distinct
 *     values share a bucket with a chance of at most 2/2^b.
 * So for any set of levels chosen without knowing the key, a lookup meets
 * on average at most 1 + 2n/2^b other children, and the table keeps n at
 * most 2^b: a handful, however the levels were chosen. This is universal
 * hashing, not cryptography: it bounds collisions for inputs chosen in
 * advance, and an attacker who could time lookups precisely enough to
 * learn the key could still aim later inputs at one bucket. The worst case
 * of a chain is then a scan of the siblings, which is what every lookup
 * cost before. A cryptographic PRF (SipHash from OpenSSL's EVP_MAC) would
 * cost far more per level than this does on the fan-out path. */

#define P61 ((UINT64_C(1) << 61) - 1)
#define MIN_BITS 1

struct tshare {
    struct tshare *next;
    void *value;
    size_t name_len;
    char name[];
};

struct tnode {
    struct tnode *parent;
    struct tnode *next;        /* the next child in the parent's bucket */
    struct tnode **bucket;     /* literal children: 1 << bits chains, or NULL */
    struct tnode *plus, *hash; /* the '+' and '#' children (teardown: plus
                                * heads the list of all children) */
    void *value;               /* the plain filter ending here */
    struct tshare *shares;     /* the "$share/NAME/..." ending here */
    uint64_t hv;               /* level_hash() of level */
    uint32_t n_kids;           /* literal children */
    uint8_t bits;
    size_t level_len;
    char level[];
};

struct trie {
    struct tnode *root;
    struct tnode *inert; /* malformed "$share/...", by their whole text */
    uint64_t k, k2, m;   /* the hash key: k, k * k mod p, odd m */
    size_t count;
};

/* ---- hash ---------------------------------------------------------------- */

/* a * b as two 64-bit halves, with 64-bit arithmetic only. */
static inline void mul64_portable(uint64_t a, uint64_t b, uint64_t *hi,
                                  uint64_t *lo)
{
    uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;

    *lo = (mid << 32) | (uint32_t)p00;
    *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

static inline void mul64(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo)
{
#ifdef __SIZEOF_INT128__
    unsigned __int128 r = (unsigned __int128)a * b;

    *hi = (uint64_t)(r >> 64);
    *lo = (uint64_t)r;
#else
    mul64_portable(a, b, hi, lo);
#endif
}

/* x mod p, not fully reduced: below 2^61 + 8. */
static inline uint64_t fold(uint64_t x)
{
    return (x & P61) + (x >> 61);
}

/* a * b mod p for a, b below 2^62; the result is below 2^61 + 8. */
static inline uint64_t mulmod(uint64_t a, uint64_t b)
{
    uint64_t hi, lo;

    mul64(a, b, &hi, &lo);
    return fold((lo & P61) + ((hi << 3) | (lo >> 61)));
}

static uint64_t level_hash(const struct trie *t, const char *s, size_t len)
{
    uint64_t h = fold(len + 1), w, tail = 0;
    size_t i = 0;

    /* two coefficients a step: h * k^2 + hi * k + lo */
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, s + i, 8);
        h = fold(mulmod(h, t->k2) + mulmod(w >> 32, t->k) + (uint32_t)w);
    }
    if (i + 4 <= len) {
        uint32_t w4;

        memcpy(&w4, s + i, 4);
        h = fold(mulmod(h, t->k) + w4);
        i += 4;
    }
    for (; i < len; i++)
        tail = tail << 8 | (uint8_t)s[i];
    h = fold(mulmod(h, t->k) + tail);
    if (h >= P61)
        h -= P61;
    return h * t->m;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* ---- nodes --------------------------------------------------------------- */

static struct tnode *node_new(struct tnode *parent, const char *lvl, size_t len,
                              uint64_t hv)
{
    struct tnode *n = calloc(1, sizeof(*n) + len + 1);

    if (!n)
        return NULL;
    n->parent = parent;
    n->hv = hv;
    n->level_len = len;
    memcpy(n->level, lvl, len);
    return n;
}

static size_t level_end(const char *s, size_t len, size_t pos)
{
    const char *slash = memchr(s + pos, '/', len - pos);

    return slash ? (size_t)(slash - s) : len;
}

static bool is_wild(const char *lvl, size_t len, char c)
{
    return len == 1 && lvl[0] == c;
}

/* The literal child of n (which has some) for level lvl of hash hv. */
static struct tnode *kid_find(const struct tnode *n, const char *lvl,
                              size_t len, uint64_t hv)
{
    struct tnode *k = n->bucket[hv >> (64 - n->bits)];

    while (k && (k->hv != hv || k->level_len != len ||
                 memcmp(k->level, lvl, len) != 0))
        k = k->next;
    return k;
}

/* Rehashes the literal children of n into 1 << bits buckets. */
static int kids_resize(struct tnode *n, uint8_t bits)
{
    struct tnode **b = calloc((size_t)1 << bits, sizeof(*b)), *k;

    if (!b)
        return -ENOMEM;
    for (size_t i = 0; n->bucket && i < (size_t)1 << n->bits; i++)
        while ((k = n->bucket[i])) {
            n->bucket[i] = k->next;
            k->next = b[k->hv >> (64 - bits)];
            b[k->hv >> (64 - bits)] = k;
        }
    free(n->bucket);
    n->bucket = b;
    n->bits = bits;
    return 0;
}

/* Links the new literal child k into n, growing the table to keep at most
 * one child a bucket (or keeping it fuller when memory is short). */
static int kid_link(struct tnode *n, struct tnode *k)
{
    uint8_t bits = n->bucket ? n->bits : MIN_BITS;

    while ((uint64_t)n->n_kids >= (uint64_t)1 << bits)
        bits++;
    if ((!n->bucket || bits != n->bits) && kids_resize(n, bits) < 0 &&
        !n->bucket)
        return -ENOMEM;
    k->next = n->bucket[k->hv >> (64 - n->bits)];
    n->bucket[k->hv >> (64 - n->bits)] = k;
    n->n_kids++;
    return 0;
}

/* Unlinks the literal child k from n; the table shrinks below a quarter
 * full and goes with the last child. */
static void kid_unlink(struct tnode *n, struct tnode *k)
{
    struct tnode **pp = &n->bucket[k->hv >> (64 - n->bits)];

    while (*pp != k)
        pp = &(*pp)->next;
    *pp = k->next;
    if (--n->n_kids == 0) {
        free(n->bucket);
        n->bucket = NULL;
        n->bits = 0;
    } else if (n->bits > MIN_BITS && n->n_kids < (uint32_t)1 << (n->bits - 2)) {
        kids_resize(n, n->bits - 1); /* out of memory: stays as large */
    }
}

/* The child of n for level lvl, made when missing (create). */
static struct tnode *kid_get(const struct trie *t, struct tnode *n,
                             const char *lvl, size_t len, bool create)
{
    struct tnode **wild = is_wild(lvl, len, '+')   ? &n->plus
                          : is_wild(lvl, len, '#') ? &n->hash
                                                   : NULL;
    struct tnode *k;
    uint64_t hv;

    if (wild) {
        if (!*wild && create)
            *wild = node_new(n, lvl, len, 0);
        return *wild;
    }
    if (!n->bucket && !create)
        return NULL;
    hv = level_hash(t, lvl, len);
    k = n->bucket ? kid_find(n, lvl, len, hv) : NULL;
    if (k || !create)
        return k;
    if (!(k = node_new(n, lvl, len, hv)))
        return NULL;
    if (kid_link(n, k) < 0) {
        free(k);
        return NULL;
    }
    return k;
}

/* Frees n and its ancestors below the root while they hold nothing. */
static void node_prune(struct tnode *n)
{
    while (n->parent && !n->value && !n->shares && !n->n_kids && !n->plus &&
           !n->hash) {
        struct tnode *p = n->parent;

        if (p->plus == n)
            p->plus = NULL;
        else if (p->hash == n)
            p->hash = NULL;
        else
            kid_unlink(p, n);
        free(n);
        n = p;
    }
}

/* The node of path[0..len) from n, or NULL; with create, the path is made
 * (on failure, what was made is pruned again). */
static struct tnode *path_walk(const struct trie *t, struct tnode *n,
                               const char *path, size_t len, bool create)
{
    size_t pos = 0;

    while (pos <= len) {
        size_t end = level_end(path, len, pos);
        struct tnode *k = kid_get(t, n, path + pos, end - pos, create);

        if (!k) {
            if (create)
                node_prune(n);
            return NULL;
        }
        n = k;
        pos = end + 1;
    }
    return n;
}

/* Teardown: n's values are dropped and its children become one list
 * through their next fields, headed by n->plus. */
static void node_flatten(struct tnode *n, void (*drop)(void *))
{
    struct tnode *list = NULL, *k;
    struct tshare *s;

    if (n->plus)
        n->plus->next = list, list = n->plus;
    if (n->hash)
        n->hash->next = list, list = n->hash;
    for (size_t i = 0; n->bucket && i < (size_t)1 << n->bits; i++)
        while ((k = n->bucket[i])) {
            n->bucket[i] = k->next;
            k->next = list;
            list = k;
        }
    free(n->bucket);
    n->bucket = NULL;
    n->hash = NULL;
    n->plus = list;
    if (n->value && drop)
        drop(n->value);
    while ((s = n->shares)) {
        n->shares = s->next;
        if (drop)
            drop(s->value);
        free(s);
    }
}

/* Frees the tree under root without recursion: trees may be deep. */
static void tree_free(struct tnode *root, void (*drop)(void *))
{
    struct tnode *n = root;

    if (!n)
        return;
    node_flatten(n, drop);
    while (n) {
        struct tnode *k = n->plus, *p;

        if (k) {
            n->plus = k->next;
            node_flatten(k, drop);
            n = k;
            continue;
        }
        p = n->parent;
        free(n);
        n = p;
    }
}

/* ---- filters ------------------------------------------------------------- */

/* Where filter f[0..len) lives: the tree, the path in it and, for a shared
 * subscription, its group name (NULL otherwise). */
struct place {
    struct tnode *root;
    const char *path, *name;
    size_t path_len, name_len;
};

static void place_of(const struct trie *t, const char *f, size_t len,
                     struct place *pl)
{
    const char *name = f + 7, *slash;

    *pl = (struct place){ .root = t->root, .path = f, .path_len = len };
    if (len < 7 || memcmp(f, "$share/", 7) != 0)
        return;
    slash = memchr(name, '/', len - 7);
    if (!slash || slash == name || is_wild(name, (size_t)(slash - name), '+') ||
        is_wild(name, (size_t)(slash - name), '#') || slash + 1 == f + len) {
        pl->root = t->inert;
        return;
    }
    pl->name = name;
    pl->name_len = (size_t)(slash - name);
    pl->path = slash + 1;
    pl->path_len = len - (size_t)(slash + 1 - f);
}

/* The group of a shared filter at n, as the link that holds it (*link is
 * NULL when the group has none there). */
static struct tshare **share_link(struct tnode *n, const struct place *pl)
{
    struct tshare **pp = &n->shares;

    while (*pp && ((*pp)->name_len != pl->name_len ||
                   memcmp((*pp)->name, pl->name, pl->name_len) != 0))
        pp = &(*pp)->next;
    return pp;
}

static struct trie *trie_keyed(uint64_t seed)
{
    struct trie *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->k = 1 + splitmix64(&seed) % (P61 - 1);
    t->k2 = mulmod(t->k, t->k);
    t->m = splitmix64(&seed) | 1;
    t->root = node_new(NULL, "", 0, 0);
    t->inert = node_new(NULL, "", 0, 0);
    if (!t->root || !t->inert) {
        trie_free(t, NULL);
        return NULL;
    }
    return t;
}

struct trie *trie_new(void)
{
    uint64_t seed;
    ssize_t r;

    while ((r = getrandom(&seed, sizeof(seed), 0)) < 0 && errno == EINTR)
        ;
    if (r != (ssize_t)sizeof(seed)) {
        if (r >= 0)
            errno = EIO;
        return NULL;
    }
    return trie_keyed(seed);
}

struct trie *trie_new_seeded(uint64_t seed)
{
    return trie_keyed(seed);
}

void trie_free(struct trie *t, void (*drop)(void *value))
{
    if (!t)
        return;
    tree_free(t->root, drop);
    tree_free(t->inert, drop);
    free(t);
}

int trie_insert(struct trie *t, const char *filter, size_t len, void *value)
{
    struct place pl;
    struct tnode *n;
    struct tshare **link, *s;

    if (!value || topic_filter_check(filter, len) < 0)
        return -EINVAL;
    place_of(t, filter, len, &pl);
    if (!(n = path_walk(t, pl.root, pl.path, pl.path_len, true)))
        return -ENOMEM;
    if (!pl.name) {
        if (n->value)
            return -EEXIST;
        n->value = value;
    } else {
        if (*(link = share_link(n, &pl)))
            return -EEXIST;
        if (!(s = malloc(sizeof(*s) + pl.name_len))) {
            node_prune(n);
            return -ENOMEM;
        }
        s->next = NULL;
        s->value = value;
        s->name_len = pl.name_len;
        memcpy(s->name, pl.name, pl.name_len);
        *link = s;
    }
    t->count++;
    return 0;
}

void *trie_find(const struct trie *t, const char *filter, size_t len)
{
    struct place pl;
    struct tnode *n;
    struct tshare *s;

    place_of(t, filter, len, &pl);
    if (!(n = path_walk(t, pl.root, pl.path, pl.path_len, false)))
        return NULL;
    if (!pl.name)
        return n->value;
    return (s = *share_link(n, &pl)) ? s->value : NULL;
}

void *trie_remove(struct trie *t, const char *filter, size_t len)
{
    struct place pl;
    struct tnode *n;
    struct tshare **link, *s;
    void *v;

    place_of(t, filter, len, &pl);
    if (!(n = path_walk(t, pl.root, pl.path, pl.path_len, false)))
        return NULL;
    if (!pl.name) {
        v = n->value;
        n->value = NULL;
    } else {
        if (!(s = *(link = share_link(n, &pl))))
            return NULL;
        *link = s->next;
        v = s->value;
        free(s);
    }
    if (v) {
        t->count--;
        node_prune(n);
    }
    return v;
}

size_t trie_count(const struct trie *t)
{
    return t->count;
}

/* ---- match --------------------------------------------------------------- */

static int emit(const struct tnode *n, trie_match_fn fn, void *arg)
{
    int rc;

    if (n->value && (rc = fn(n->value, arg)))
        return rc;
    for (const struct tshare *s = n->shares; s; s = s->next)
        if ((rc = fn(s->value, arg)))
            return rc;
    return 0;
}

/* The walk is depth first without recursion or a stack: a node's parent
 * is its parent pointer, and the topic level it was reached by is found
 * again from where its child's level starts. */
int trie_match(const struct trie *t, const char *topic, size_t len,
               trie_match_fn fn, void *arg)
{
    enum { ENTER, PLUS, UP } step = ENTER;
    const struct tnode *n = t->root, *k;
    bool dollar = len > 0 && topic[0] == '$';
    size_t pos = 0, end = 0; /* the level n's children take: [pos, end) */
    int rc;

    for (;;) {
        /* a topic that begins with '$' skips the wildcards at the root */
        bool wild = n->parent || !dollar;

        switch (step) {
        case ENTER:
            if (wild && n->hash && (rc = emit(n->hash, fn, arg)))
                return rc;
            if (pos > len) {
                if ((rc = emit(n, fn, arg)))
                    return rc;
                step = UP;
                continue;
            }
            end = level_end(topic, len, pos);
            if (n->n_kids &&
                (k = kid_find(n, topic + pos, end - pos,
                              level_hash(t, topic + pos, end - pos)))) {
                n = k;
                pos = end + 1;
                continue;
            }
            /* fall through */
        case PLUS:
            if (wild && n->plus) {
                n = n->plus;
                pos = end + 1;
                step = ENTER;
                continue;
            }
            /* fall through */
        case UP:
            if (!n->parent)
                return 0;
            k = n;
            n = n->parent;
            end = pos - 1;
            {
                const char *slash = memrchr(topic, '/', end);

                pos = slash ? (size_t)(slash - topic) + 1 : 0;
            }
            step = k == n->plus ? UP : PLUS;
        }
    }
}
