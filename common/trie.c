/* One file, over 500 lines, on purpose: the node layout, the keyed child
 * tables and the non-recursive walks (match, prune, free) share one node
 * representation that no other file should see. */
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
 *     0) and then its bytes in 32-bit words (level_hash() says which).
 *     Two distinct levels give distinct polynomials of degree at most
 *     d = len/4 + 2, which agree in at most d points: they collide for at
 *     most d of the p - 1 keys, a chance below 2^-47 for the longest level
 *     (Carter-Wegman; no assumption about the inputs).
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
 * cost far more per level than this does on the fan-out path.
 *
 * A node with at most FEW_KIDS literal children (most of them) is not
 * hashed into on the match path: comparing those few is cheaper, and
 * costs the same whatever the levels. */

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
    struct tnode *only;        /* the literal child when there is one */
    struct tnode **bucket;     /* literal children when there are more:
                                * 1 << bits chains; else NULL */
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
    uint64_t lead[9];    /* (len + 1) * k^2 mod p for levels up to 8 bytes */
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

static inline uint32_t load32(const char *s)
{
    uint32_t w;

    memcpy(&w, s, 4);
    return w;
}

/* One step of the polynomial, two coefficients: h * k^2 + a * k + b. */
static inline uint64_t poly2(const struct trie *t, uint64_t h, uint32_t a,
                             uint32_t b)
{
    return fold(mulmod(h, t->k2) + mulmod(a, t->k) + b);
}

/* The coefficients after the length are 32-bit words of the level, two a
 * step, the last step's words ending at the level's end (overlapping the
 * previous step's when the length is not a multiple of 8; with fewer than
 * 4 bytes, the bytes at 0, len/2 and len-1). For a given length they
 * determine the bytes, which is all the bound needs. */
static inline uint64_t level_hash(const struct trie *t, const char *s,
                                  size_t len)
{
    uint64_t h, a, b;

    if (len > 8) {
        h = fold(len + 1);
        for (size_t i = 0; i + 8 < len; i += 8)
            h = poly2(t, h, load32(s + i), load32(s + i + 4));
        h = poly2(t, h, load32(s + len - 8), load32(s + len - 4));
    } else {
        /* one step, the length's term from the table */
        if (len >= 4) {
            a = load32(s);
            b = load32(s + len - 4);
        } else {
            a = len ? (uint32_t)(uint8_t)s[0] |
                          (uint32_t)(uint8_t)s[len / 2] << 8 |
                          (uint32_t)(uint8_t)s[len - 1] << 16
                    : 0;
            b = 0;
        }
        h = fold(t->lead[len] + mulmod(a, t->k) + b);
    }
    /* equal values mod p need not be equal here: distinct ones are */
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

static inline bool level_eq(const struct tnode *k, const char *lvl,
                            size_t len)
{
    if (k->level_len != len)
        return false;
    if (len > 8)
        return memcmp(k->level, lvl, len) == 0;
    if (len >= 4) /* two words that cover it */
        return load32(k->level) == load32(lvl) &&
               load32(k->level + len - 4) == load32(lvl + len - 4);
    return len == 0 || (k->level[0] == lvl[0] &&
                        k->level[len / 2] == lvl[len / 2] &&
                        k->level[len - 1] == lvl[len - 1]);
}

/* The literal child of n (which has some) for level lvl of hash hv. */
static inline struct tnode *kid_find(const struct tnode *n, const char *lvl,
                                     size_t len, uint64_t hv)
{
    struct tnode *k = n->bucket[hv >> (64 - n->bits)];

    while (k && (k->hv != hv || !level_eq(k, lvl, len)))
        k = k->next;
    return k;
}

/* The same without the hash, looking at every child: for a node with
 * FEW_KIDS children or fewer (and a table), cheaper than hashing. */
#define FEW_KIDS 4

static inline struct tnode *kid_scan(const struct tnode *n, const char *lvl,
                                     size_t len)
{
    for (size_t i = 0; i < (size_t)1 << n->bits; i++)
        for (struct tnode *k = n->bucket[i]; k; k = k->next)
            if (level_eq(k, lvl, len))
                return k;
    return NULL;
}

/* Rehashes the literal children of n into 1 << bits buckets. */
static int kids_resize(struct tnode *n, uint8_t bits)
{
    struct tnode **b = calloc((size_t)1 << bits, sizeof(*b)), *k;

    if (!b)
        return -ENOMEM;
    if ((k = n->only)) {
        n->only = NULL;
        b[k->hv >> (64 - bits)] = k;
        k->next = NULL;
    }
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

/* Links the new literal child k into n: the only one, or into the table,
 * grown to keep at most one child a bucket (or kept fuller when memory is
 * short). */
static int kid_link(struct tnode *n, struct tnode *k)
{
    uint8_t bits = n->bucket ? n->bits : MIN_BITS;

    if (n->n_kids == 0) {
        n->only = k;
        n->n_kids = 1;
        return 0;
    }
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
 * full and goes when one child is left. */
static void kid_unlink(struct tnode *n, struct tnode *k)
{
    struct tnode **pp;

    if (n->only == k) {
        n->only = NULL;
        n->n_kids = 0;
        return;
    }
    pp = &n->bucket[k->hv >> (64 - n->bits)];
    while (*pp != k)
        pp = &(*pp)->next;
    *pp = k->next;
    if (--n->n_kids == 1) {
        for (size_t i = 0; !n->only; i++)
            n->only = n->bucket[i];
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
    if (!n->n_kids && !create)
        return NULL;
    hv = level_hash(t, lvl, len);
    if (n->only)
        k = n->only->hv == hv && level_eq(n->only, lvl, len) ? n->only : NULL;
    else
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
    if (n->only)
        n->only->next = list, list = n->only;
    for (size_t i = 0; n->bucket && i < (size_t)1 << n->bits; i++)
        while ((k = n->bucket[i])) {
            n->bucket[i] = k->next;
            k->next = list;
            list = k;
        }
    free(n->bucket);
    n->bucket = NULL;
    n->hash = n->only = NULL;
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
    const char *name, *slash;

    *pl = (struct place){ .root = t->root, .path = f, .path_len = len };
    if (len < 7 || memcmp(f, "$share/", 7) != 0)
        return;
    name = f + 7;
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
    for (uint64_t i = 0; i < 9; i++)
        t->lead[i] = mulmod(i + 1, t->k2);
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

static inline int emit(const struct tnode *n, trie_match_fn fn, void *arg)
{
    int rc;

    if (n->value && (rc = fn(n->value, arg)))
        return rc;
    for (const struct tshare *s = n->shares; s; s = s->next)
        if ((rc = fn(s->value, arg)))
            return rc;
    return 0;
}

/* Levels whose bounds and hash a match keeps: deeper ones are found
 * again by scanning, and hashed again on each visit. */
#define MEMO 32

/* The walk is depth first without recursion or an allocated stack: a
 * node's parent is its parent pointer, and the topic level it was reached
 * by is the same on every branch at that depth (its end and hash are kept
 * for the first MEMO levels, found again beyond). It returns as soon as
 * no node on the way back has a '+' child left. */
int trie_match(const struct trie *t, const char *topic, size_t len,
               trie_match_fn fn, void *arg)
{
    const struct tnode *n = t->root, *k;
    bool dollar = len > 0 && topic[0] == '$';
    bool wild = !dollar; /* a '$' topic skips the root's wildcards */
    size_t pos = 0, end; /* the level n's children take: [pos, end) */
    size_t depth = 0, pending = 0; /* '+' children left on the way back */
    size_t ends[MEMO], known = 0;  /* the ends of levels 0..known-1 */
    uint64_t hv[MEMO];
    uint32_t hashed = 0; /* bit d: hv[d] is known */
    int rc;

enter:
    if (wild && n->hash && (rc = emit(n->hash, fn, arg)))
        return rc;
    if (pos > len) {
        if ((rc = emit(n, fn, arg)))
            return rc;
        goto up;
    }
    if (depth < known) {
        end = ends[depth];
    } else {
        end = level_end(topic, len, pos);
        if (known < MEMO)
            ends[known++] = end; /* depth == known */
    }
    if ((k = n->only)) {
        if (!level_eq(k, topic + pos, end - pos))
            k = NULL;
    } else if (n->n_kids <= FEW_KIDS) {
        k = n->n_kids ? kid_scan(n, topic + pos, end - pos) : NULL;
    } else {
        uint64_t h;

        if (depth < MEMO && (hashed & (UINT32_C(1) << depth))) {
            h = hv[depth];
        } else {
            h = level_hash(t, topic + pos, end - pos);
            if (depth < MEMO) {
                hv[depth] = h;
                hashed |= UINT32_C(1) << depth;
            }
        }
        k = kid_find(n, topic + pos, end - pos, h);
    }
    if (k) {
        pending += wild && n->plus;
        goto down;
    }
    if (wild && n->plus) {
        k = n->plus;
        goto down;
    }
up:
    while (pending) {
        k = n;
        n = n->parent;
        if (--depth >= known) {
            /* past the kept levels: n's ends where k's began */
            end = pos - 1;
            pos = (size_t)((const char *)memrchr(topic, '/', end) - topic) + 1;
        }
        /* back from the literal child: the '+' one is next, if any */
        if (k == n->plus || !n->plus || (!n->parent && dollar))
            continue;
        pending--;
        if (depth < known)
            end = ends[depth];
        k = n->plus;
        goto down;
    }
    return 0;
down:
    depth++;
    n = k;
    wild = true;
    pos = end + 1;
    goto enter;
}
