#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* The trie is included whole, with its allocations routed through a
 * counter that can make the n-th one fail, so that the tests can see its
 * nodes and check that a failed insert leaves it as it was. */
static long alloc_left = -1; /* allocations before one fails; -1: never */

static bool alloc_fails(void)
{
    if (alloc_left < 0)
        return false;
    return alloc_left-- == 0;
}

static void *t_malloc(size_t n)
{
    return alloc_fails() ? NULL : malloc(n);
}

static void *t_calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : calloc(n, size);
}

#define malloc t_malloc
#define calloc t_calloc
#include "trie.c"
#undef malloc
#undef calloc

#define S(lit) lit, sizeof(lit) - 1

/* ck_assert records every passing check (a write to the parent in fork
 * mode): in loops of millions, only a failure calls into Check. */
#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond))                                                        \
            ck_abort_msg(__VA_ARGS__);                                      \
    } while (0)

/* ---- helpers ------------------------------------------------------------- */

/* Nodes under root, root included (no recursion: trees may be deep). */
static size_t tree_nodes(const struct tnode *root)
{
    size_t cap = 64, n = 0, count = 0;
    const struct tnode **stack = malloc(cap * sizeof(*stack));

    ck_assert_ptr_nonnull(stack);
    stack[n++] = root;
    while (n) {
        const struct tnode *x = stack[--n];
        const struct tnode *kids[3] = { x->plus, x->hash, x->only };

        count++;
        if (n + 3 + x->n_kids > cap) {
            cap = 2 * (n + 3 + x->n_kids);
            stack = realloc(stack, cap * sizeof(*stack));
            ck_assert_ptr_nonnull(stack);
        }
        for (int i = 0; i < 3; i++)
            if (kids[i])
                stack[n++] = kids[i];
        for (size_t b = 0; x->bucket && b < (size_t)1 << x->bits; b++)
            for (const struct tnode *k = x->bucket[b]; k; k = k->next)
                stack[n++] = k;
    }
    free(stack);
    return count;
}

static size_t all_nodes(const struct trie *t)
{
    return tree_nodes(t->root) + tree_nodes(t->inert);
}

/* Nothing stored and nothing left of what was. */
static void assert_bare(const struct trie *t)
{
    ck_assert_uint_eq(trie_count(t), 0);
    ck_assert_uint_eq(all_nodes(t), 2);
    ck_assert_ptr_null(t->root->bucket);
    ck_assert_ptr_null(t->root->only);
    ck_assert_ptr_null(t->inert->bucket);
    ck_assert_ptr_null(t->inert->only);
}

/* Matches collected as a list of values (all distinct in these tests). */
struct hits {
    const void *v[64];
    size_t n;
};

static int collect(void *value, void *arg)
{
    struct hits *h = arg;

    CHECK(h->n < sizeof(h->v) / sizeof(h->v[0]), "too many matches");
    h->v[h->n++] = value;
    return 0;
}

static bool has_hit(const struct hits *h, const void *v)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i] == v)
            return true;
    return false;
}

static void insert_ok(struct trie *t, const char *f, void *v)
{
    int rc = trie_insert(t, f, strlen(f), v);

    ck_assert_msg(rc == 0, "insert \"%s\": %d", f, rc);
}

/* ---- table: one set of filters, topics and what each matches ------------- */

static const char *const table_filters[] = {
    "#", "+", "+/+", "+/#", "/", "/+", "/#", "//",
    "a", "a/", "a/+", "a/#", "a/b", "a/+/c", "a//c", "a/b/c", "a/b/#",
    "+/b", "+/+/c",
    "$SYS", "$SYS/#", "$SYS/+", "$SYS/broker/load",
    "$share", /* a plain filter: no '/' after "$share" */
    "$share/g1/a/+", "$share/g2/a/+", "$share/g1/#", "$share/g1/a/b",
    "$share/g/$SYS/#", "$share/g/+/#",
};

/* Malformed shared subscriptions are not valid filters (topic.h): never
 * stored. */
static const char *const malformed_shares[] = {
    "$share/", "$share/g", "$share/g/", "$share//a", "$share/+/a",
    "$share/#",
};
#define N_TABLE_FILTERS (sizeof(table_filters) / sizeof(table_filters[0]))

static const struct {
    const char *topic;
    const char *match[24]; /* NULL-terminated */
} table_rows[] = {
    { "a", { "#", "+", "+/#", "a", "a/#", "$share/g1/#", "$share/g/+/#" } },
    { "a/", { "#", "+/+", "+/#", "a/", "a/+", "a/#", "$share/g1/a/+",
              "$share/g2/a/+", "$share/g1/#", "$share/g/+/#" } },
    { "a/b", { "#", "+/+", "+/#", "a/+", "a/#", "a/b", "a/b/#", "+/b",
               "$share/g1/a/+", "$share/g2/a/+", "$share/g1/#",
               "$share/g1/a/b", "$share/g/+/#" } },
    { "a/b/c", { "#", "+/#", "a/#", "a/+/c", "a/b/c", "a/b/#", "+/+/c",
                 "$share/g1/#", "$share/g/+/#" } },
    { "a//c", { "#", "+/#", "a/#", "a/+/c", "a//c", "+/+/c", "$share/g1/#",
                "$share/g/+/#" } },
    { "a/b/c/d", { "#", "+/#", "a/#", "a/b/#", "$share/g1/#",
                   "$share/g/+/#" } },
    { "/", { "#", "+/+", "+/#", "/", "/+", "/#", "$share/g1/#",
             "$share/g/+/#" } },
    { "//", { "#", "+/#", "/#", "//", "$share/g1/#", "$share/g/+/#" } },
    { "/a", { "#", "+/+", "+/#", "/+", "/#", "$share/g1/#",
              "$share/g/+/#" } },
    { "b", { "#", "+", "+/#", "$share/g1/#", "$share/g/+/#" } },
    { "x/b", { "#", "+/+", "+/#", "+/b", "$share/g1/#", "$share/g/+/#" } },
    /* '$' topics: no filter whose first level is a wildcard */
    { "$SYS", { "$SYS", "$SYS/#", "$share/g/$SYS/#" } },
    { "$SYS/broker", { "$SYS/#", "$SYS/+", "$share/g/$SYS/#" } },
    { "$SYS/broker/load", { "$SYS/#", "$SYS/broker/load",
                            "$share/g/$SYS/#" } },
    { "$share", { "$share" } },
    { "$share/g1/a/b", { NULL } },
    { "$other/b", { NULL } },
    { "A", { "#", "+", "+/#", "$share/g1/#", "$share/g/+/#" } },
};

START_TEST(test_table)
{
    struct trie *t = trie_new_seeded(1);
    struct hits h = { .n = 0 };
    size_t want = 0;

    ck_assert_ptr_nonnull(t);
    for (size_t i = 0; i < N_TABLE_FILTERS; i++)
        insert_ok(t, table_filters[i], (void *)table_filters[i]);
    ck_assert_int_eq(trie_match(t, table_rows[_i].topic,
                                strlen(table_rows[_i].topic), collect, &h),
                     0);
    for (const char *const *m = table_rows[_i].match; *m; m++, want++) {
        const void *v = trie_find(t, *m, strlen(*m));

        ck_assert_msg(v != NULL, "row %d: \"%s\" not stored", _i, *m);
        ck_assert_msg(has_hit(&h, v), "row %d: \"%s\" should match \"%s\"",
                      _i, *m, table_rows[_i].topic);
    }
    for (size_t i = 0; i < h.n; i++)
        for (size_t j = 0; j < i; j++)
            ck_assert_ptr_ne(h.v[i], h.v[j]);
    if (h.n != want) {
        for (size_t i = 0; i < h.n; i++)
            fprintf(stderr, "row %d: matched \"%s\"\n", _i,
                    (const char *)h.v[i]);
    }
    ck_assert_uint_eq(h.n, want);
    trie_free(t, NULL);
}
END_TEST

/* The order trie.h promises: depth first; at each level '#', the filter
 * ending there, the literal child, then '+'; plain before shared. */
START_TEST(test_order)
{
    static const char *const filters[] = {
        "+/#", "a/b", "#", "+/b", "a/#", "a/+", "$share/g/a/b", "$share/h/a/b",
    };
    static const char *const want[] = {
        "#", "a/#", "a/b", "$share/g/a/b", "$share/h/a/b", "a/+", "+/#", "+/b",
    };
    struct trie *t = trie_new_seeded(2);
    struct hits h = { .n = 0 };

    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
        insert_ok(t, filters[i], (void *)filters[i]);
    trie_match(t, S("a/b"), collect, &h);
    ck_assert_uint_eq(h.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < h.n; i++)
        ck_assert_str_eq(h.v[i], want[i]);
    trie_free(t, NULL);
}
END_TEST

static int stop_at_second(void *value, void *arg)
{
    int *calls = arg;

    (void)value;
    return ++*calls == 2 ? 42 : 0;
}

START_TEST(test_stop)
{
    struct trie *t = trie_new_seeded(3);
    int calls = 0;

    insert_ok(t, "#", (void *)"1");
    insert_ok(t, "a", (void *)"2");
    insert_ok(t, "+", (void *)"3");
    ck_assert_int_eq(trie_match(t, S("a"), stop_at_second, &calls), 42);
    ck_assert_int_eq(calls, 2);
    calls = 0;
    ck_assert_int_eq(trie_match(t, S("b"), stop_at_second, &calls), 42);
    calls = 0;
    ck_assert_int_eq(trie_match(t, S("$b"), stop_at_second, &calls), 0);
    ck_assert_int_eq(calls, 0);
    trie_free(t, NULL);
}
END_TEST

/* ---- insert, find, remove ----------------------------------------------- */

START_TEST(test_insert_errors)
{
    struct trie *t = trie_new_seeded(4);
    int v1, v2;

    ck_assert_int_eq(trie_insert(t, S("a/b"), &v1), 0);
    ck_assert_int_eq(trie_insert(t, S("a/b"), &v2), -EEXIST);
    ck_assert_ptr_eq(trie_find(t, S("a/b")), &v1);
    ck_assert_int_eq(trie_insert(t, S("$share/g/a/b"), &v2), 0);
    ck_assert_int_eq(trie_insert(t, S("$share/g/a/b"), &v1), -EEXIST);
    ck_assert_ptr_eq(trie_find(t, S("$share/g/a/b")), &v2);
    ck_assert_int_eq(trie_insert(t, S("$share"), &v1), 0);
    ck_assert_int_eq(trie_insert(t, S("$share"), &v1), -EEXIST);
    ck_assert_uint_eq(trie_count(t), 3);
    for (size_t i = 0; i < sizeof(malformed_shares) / sizeof(*malformed_shares);
         i++)
        ck_assert_int_eq(trie_insert(t, malformed_shares[i],
                                     strlen(malformed_shares[i]), &v1),
                         -EINVAL);
    ck_assert_uint_eq(trie_count(t), 3);

    ck_assert_int_eq(trie_insert(t, S("c"), NULL), -EINVAL);
    ck_assert_int_eq(trie_insert(t, S(""), &v1), -EINVAL);
    ck_assert_int_eq(trie_insert(t, S("a/#/b"), &v1), -EINVAL);
    ck_assert_int_eq(trie_insert(t, S("a+"), &v1), -EINVAL);
    ck_assert_int_eq(trie_insert(t, S("a\0b"), &v1), -EINVAL);
    ck_assert_int_eq(trie_insert(t, S("\xff"), &v1), -EINVAL);
    ck_assert_int_eq(trie_insert(t, S("$share/g/a#"), &v1), -EINVAL);
    ck_assert_uint_eq(trie_count(t), 3);

    /* the value is found by the exact text only */
    ck_assert_ptr_null(trie_find(t, S("a")));
    ck_assert_ptr_null(trie_find(t, S("a/+")));
    ck_assert_ptr_null(trie_find(t, S("a/b/")));
    ck_assert_ptr_null(trie_find(t, S("$share/h/a/b")));
    ck_assert_ptr_null(trie_find(t, S("$share/g/a")));
    ck_assert_ptr_null(trie_find(t, S("$share/g/")));
    ck_assert_ptr_null(trie_find(t, S("")));
    ck_assert_ptr_null(trie_find(t, S("a/b+")));
    trie_free(t, NULL);
}
END_TEST

START_TEST(test_remove_prune)
{
    static const char *const filters[] = {
        "a/b/c", "a/b", "a/+/c", "a/#", "+", "#", "/", "//", "a//",
        "$share/g/a/b", "$share/h/a/b", "$share/g/a/b/c", "$share/g/#",
        "$share", "$share/g/+", "$share/h/#", "x/y/z/w",
    };
    size_t n = sizeof(filters) / sizeof(filters[0]);
    struct trie *t = trie_new_seeded(5);
    size_t nodes;

    /* removal in both orders, then everything again */
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < n; i++)
            insert_ok(t, filters[i], (void *)filters[i]);
        ck_assert_uint_eq(trie_count(t), n);
        nodes = all_nodes(t);
        for (size_t j = 0; j < n; j++) {
            size_t i = round == 1 ? n - 1 - j : j;
            const char *f = filters[i];

            ck_assert_ptr_eq(trie_remove(t, f, strlen(f)), f);
            ck_assert_ptr_null(trie_remove(t, f, strlen(f)));
            ck_assert_ptr_null(trie_find(t, f, strlen(f)));
            ck_assert_uint_eq(trie_count(t), n - 1 - j);
            ck_assert_uint_le(all_nodes(t), nodes);
            nodes = all_nodes(t);
            /* the others are still there */
            for (size_t k = j + 1; k < n; k++) {
                size_t o = round == 1 ? n - 1 - k : k;

                ck_assert_ptr_eq(trie_find(t, filters[o], strlen(filters[o])),
                                 filters[o]);
            }
        }
        assert_bare(t);
    }

    /* a prefix goes, the longer filter stays, and the other way round */
    insert_ok(t, "a/b", (void *)"ab");
    insert_ok(t, "a/b/c/d", (void *)"abcd");
    nodes = all_nodes(t);
    ck_assert_ptr_nonnull(trie_remove(t, S("a/b")));
    ck_assert_uint_eq(all_nodes(t), nodes);
    {
        struct hits h = { .n = 0 };

        trie_match(t, S("a/b/c/d"), collect, &h);
        ck_assert_uint_eq(h.n, 1);
    }
    insert_ok(t, "a/b", (void *)"ab");
    ck_assert_ptr_nonnull(trie_remove(t, S("a/b/c/d")));
    ck_assert_uint_eq(all_nodes(t), nodes - 2);
    ck_assert_ptr_nonnull(trie_remove(t, S("a/b")));
    assert_bare(t);
    trie_free(t, NULL);
}
END_TEST

static size_t drops;

static int count_hit(void *value, void *arg)
{
    (void)arg;
    ++*(unsigned *)value;
    return 0;
}

static void count_drop(void *value)
{
    (void)value;
    drops++;
}

START_TEST(test_free_drops)
{
    struct trie *t = trie_new_seeded(6);

    insert_ok(t, "a/b", (void *)"1");
    insert_ok(t, "$share/g/a/b", (void *)"2");
    insert_ok(t, "$share/h/a/b", (void *)"3");
    insert_ok(t, "$share", (void *)"4");
    insert_ok(t, "#", (void *)"5");
    drops = 0;
    trie_free(t, count_drop);
    ck_assert_uint_eq(drops, 5);
    trie_free(NULL, count_drop);
}
END_TEST

/* Every allocation of an insert fails in turn: -ENOMEM, and the trie is
 * as before (what it held is found, nothing more is, no node is left). */
START_TEST(test_insert_oom)
{
    static const char *const f[] = {
        "x/y/+/z/#", "$share/g/x/y", "$share/g/x/y/q/r", "$share/h/#", "s/3",
    };
    struct trie *t = trie_new_seeded(7);

    insert_ok(t, "x/y", (void *)"xy");
    insert_ok(t, "s/1", (void *)"s"); /* s/3 grows the table of s/ */
    insert_ok(t, "s/2", (void *)"s");
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        size_t nodes = all_nodes(t), count = trie_count(t);
        long fail;
        int rc;

        for (fail = 0;; fail++) {
            alloc_left = fail;
            rc = trie_insert(t, f[i], strlen(f[i]), (void *)f[i]);
            alloc_left = -1;
            if (rc == 0)
                break;
            ck_assert_int_eq(rc, -ENOMEM);
            ck_assert_uint_eq(trie_count(t), count);
            ck_assert_uint_eq(all_nodes(t), nodes);
            ck_assert_ptr_null(trie_find(t, f[i], strlen(f[i])));
            ck_assert_ptr_nonnull(trie_find(t, S("x/y")));
        }
        ck_assert_int_gt(fail, 0);
        ck_assert_ptr_eq(trie_find(t, f[i], strlen(f[i])), f[i]);
    }
    trie_free(t, NULL);
}
END_TEST

/* A table that cannot grow takes more children a bucket; one that cannot
 * shrink stays as large. Every child is found either way. */
START_TEST(test_table_oom)
{
    struct trie *t = trie_new_seeded(8);
    struct tnode *w;
    char lvl[16];

    for (int i = 0; i < 40; i++) {
        int len = snprintf(lvl, sizeof(lvl), "w/%d", i);

        alloc_left = i > 1 ? 1 : -1; /* the node, not the table */
        ck_assert_int_eq(trie_insert(t, lvl, (size_t)len, (void *)"w"), 0);
        alloc_left = -1;
    }
    w = kid_get(t, t->root, S("w"), false);
    ck_assert_uint_eq(w->bits, MIN_BITS);
    ck_assert_uint_eq(w->n_kids, 40);
    for (int i = 40; i < 80; i++) {
        int len = snprintf(lvl, sizeof(lvl), "w/%d", i);

        ck_assert_int_eq(trie_insert(t, lvl, (size_t)len, (void *)"w"), 0);
    }
    ck_assert_uint_eq((size_t)1 << w->bits, 128);
    for (int i = 0; i < 76; i++) {
        int len = snprintf(lvl, sizeof(lvl), "w/%d", i);

        alloc_left = 0;
        ck_assert_ptr_nonnull(trie_remove(t, lvl, (size_t)len));
        alloc_left = -1;
    }
    ck_assert_uint_eq((size_t)1 << w->bits, 128);
    for (int i = 0; i < 80; i++) {
        int len = snprintf(lvl, sizeof(lvl), "w/%d", i);

        ck_assert_ptr_eq(trie_find(t, lvl, (size_t)len),
                         i < 76 ? NULL : (void *)"w");
    }
    for (int i = 76; i < 80; i++) {
        int len = snprintf(lvl, sizeof(lvl), "w/%d", i);

        ck_assert_ptr_nonnull(trie_remove(t, lvl, (size_t)len));
    }
    assert_bare(t);
    trie_free(t, NULL);
}
END_TEST

/* ---- the hash table of siblings ------------------------------------------ */

static size_t longest_chain(const struct tnode *n)
{
    size_t longest = 0;

    for (size_t b = 0; n->bucket && b < (size_t)1 << n->bits; b++) {
        size_t len = 0;

        for (const struct tnode *k = n->bucket[b]; k; k = k->next)
            len++;
        if (len > longest)
            longest = len;
    }
    return longest;
}

START_TEST(test_siblings)
{
    enum { N = 10000 };
    struct trie *t = trie_new_seeded(8 + (uint64_t)_i);
    struct tnode *sensor;
    char f[32];

    for (int i = 0; i < N; i++) {
        int len = snprintf(f, sizeof(f), "sensor/dev%d", i);

        CHECK(trie_insert(t, f, (size_t)len, (void *)(intptr_t)(i + 1)) == 0,
              "insert %s", f);
    }
    sensor = kid_get(t, t->root, S("sensor"), false);
    ck_assert_ptr_nonnull(sensor);
    ck_assert_uint_eq(sensor->n_kids, N);
    /* at most one child a bucket on average, and no long chain */
    ck_assert_uint_ge((size_t)1 << sensor->bits, N);
    ck_assert_uint_le((size_t)1 << sensor->bits, 2 * N);
    ck_assert_uint_le(longest_chain(sensor), 10);
    for (int i = 0; i < N; i++) {
        int len = snprintf(f, sizeof(f), "sensor/dev%d", i);
        struct hits h = { .n = 0 };

        trie_match(t, f, (size_t)len, collect, &h);
        CHECK(h.n == 1 && h.v[0] == (void *)(intptr_t)(i + 1), "match %s", f);
    }
    /* the table shrinks as children go */
    for (int i = 10; i < N; i++) {
        int len = snprintf(f, sizeof(f), "sensor/dev%d", i);

        CHECK(trie_remove(t, f, (size_t)len), "remove %s", f);
    }
    ck_assert_uint_eq(sensor->n_kids, 10);
    ck_assert_uint_le((size_t)1 << sensor->bits, 64);
    for (int i = 0; i < 10; i++) {
        int len = snprintf(f, sizeof(f), "sensor/dev%d", i);

        ck_assert_ptr_nonnull(trie_find(t, f, (size_t)len));
        ck_assert_ptr_nonnull(trie_remove(t, f, (size_t)len));
    }
    assert_bare(t);
    trie_free(t, NULL);
}
END_TEST

/* The portable 64 x 64 -> 128 product agrees with the compiler's. */
START_TEST(test_mul64)
{
    uint64_t x = 12345;

    for (int i = 0; i < 100000; i++) {
        uint64_t a = splitmix64(&x), b = splitmix64(&x), hi, lo, phi, plo;

        if (i < 4) { /* the extremes */
            a = i & 1 ? UINT64_MAX : 0;
            b = i & 2 ? UINT64_MAX : 1;
        }
        mul64(a, b, &hi, &lo);
        mul64_portable(a, b, &phi, &plo);
        CHECK(hi == phi && lo == plo, "%d: portable product", i);
#ifdef __SIZEOF_INT128__
        unsigned __int128 r = (unsigned __int128)a * b;
        CHECK(hi == (uint64_t)(r >> 64) && lo == (uint64_t)r, "%d: product",
              i);
        /* mulmod stays below 2^61 + 8 and is a * b mod p */
        a &= (UINT64_C(1) << 62) - 1;
        b &= (UINT64_C(1) << 62) - 1;
        uint64_t m = mulmod(a, b);
        CHECK(m < P61 + 8 &&
                  m % P61 == (uint64_t)(((unsigned __int128)a * b) % P61),
              "%d: mulmod", i);
#endif
    }
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Distinct levels, including ones that differ only in length or by a
 * trailing NUL byte, get distinct 64-bit hashes, and two keys place them
 * differently. */
START_TEST(test_level_hash)
{
    enum { N = 20000 };
    struct trie *t1 = trie_new_seeded(11), *t2 = trie_new_seeded(12);
    uint64_t *h = malloc(N * sizeof(*h));
    size_t same_bucket = 0;
    char s[32];

    ck_assert_ptr_nonnull(h);
    for (int i = 0; i < N; i++) {
        int len = snprintf(s, sizeof(s), "%d", i);

        if (i % 3 == 1) /* "7\0\0" is not "7" */
            len += i % 7;
        memset(s + strlen(s), 0, sizeof(s) - strlen(s));
        h[i] = level_hash(t1, s, (size_t)len);
        same_bucket += h[i] >> 52 == level_hash(t2, s, (size_t)len) >> 52;
    }
    qsort(h, N, sizeof(*h), cmp_u64);
    for (int i = 1; i < N; i++)
        CHECK(h[i] != h[i - 1], "two levels share a hash");
    ck_assert_uint_lt(same_bucket, 50); /* about N / 4096 by chance */
    ck_assert_uint_ne(level_hash(t1, S("")), level_hash(t2, S("")));
    free(h);
    trie_free(t1, NULL);
    trie_free(t2, NULL);
}
END_TEST

START_TEST(test_trie_new)
{
    struct trie *t1 = trie_new(), *t2 = trie_new();

    ck_assert_ptr_nonnull(t1);
    ck_assert_ptr_nonnull(t2);
    ck_assert(t1->k != t2->k || t1->m != t2->m);
    ck_assert_int_eq(trie_insert(t1, S("a/+"), (void *)"x"), 0);
    ck_assert_ptr_nonnull(trie_find(t1, S("a/+")));
    trie_free(t1, NULL);
    trie_free(t2, NULL);
}
END_TEST

/* ---- deep trees: no recursion anywhere --------------------------------- */

START_TEST(test_deep)
{
    struct trie *t = trie_new_seeded(13);
    size_t len = TOPIC_MAX_LEN;
    char *f = malloc(len);
    struct hits h = { .n = 0 };

    ck_assert_ptr_nonnull(f);
    /* 32768 levels "a", then 65536 empty levels */
    for (size_t i = 0; i < len; i++)
        f[i] = i % 2 ? '/' : 'a';
    ck_assert_int_eq(trie_insert(t, f, len, (void *)"a"), 0);
    f[len - 1] = '+';
    ck_assert_int_eq(trie_insert(t, f, len, (void *)"a+"), 0);
    memset(f, '/', len);
    ck_assert_int_eq(trie_insert(t, f, len, (void *)"slashes"), 0);
    ck_assert_uint_eq(all_nodes(t), 2 + 32768 + 1 + 65536);
    trie_match(t, f, len, collect, &h);
    ck_assert_uint_eq(h.n, 1);
    for (size_t i = 0; i < len; i++)
        f[i] = i % 2 ? '/' : 'a';
    h.n = 0;
    trie_match(t, f, len, collect, &h);
    ck_assert_uint_eq(h.n, 2);
    ck_assert_ptr_nonnull(trie_remove(t, f, len));
    trie_free(t, NULL); /* the rest goes without recursion too */
    free(f);
}
END_TEST

/* Filters and topics of 28 to 40 levels that branch from level 30, with
 * '+' on either side of the levels a match keeps (MEMO), against
 * topic_match. */
START_TEST(test_deep_wild)
{
    enum { NF = 300, NT = 300, MAXL = 40 };
    struct trie *t = trie_new_seeded(15);
    char (*f)[2 * MAXL] = calloc(NF, sizeof(*f)), topic[2 * MAXL];
    unsigned *hits = calloc(NF, sizeof(*hits));
    uint64_t x = 99;

    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(hits);
    for (size_t i = 0; i < NF; i++) {
        size_t levels = 28 + splitmix64(&x) % 13;

        for (size_t l = 0; l < levels; l++) { /* branching from level 30 */
            uint64_t r = l < 30 ? 1 : splitmix64(&x) % 4;

            f[i][2 * l] = r == 0 ? '+' : r < 3 ? 'a' : 'b';
            f[i][2 * l + 1] = '/';
        }
        f[i][2 * levels - 1] = '\0';
        if (trie_insert(t, f[i], strlen(f[i]), &hits[i]) != 0)
            f[i][0] = '\0'; /* drawn twice */
    }
    for (size_t j = 0; j < NT; j++) {
        size_t levels = 28 + splitmix64(&x) % 13;

        for (size_t l = 0; l < levels; l++) {
            topic[2 * l] = l < 30 || splitmix64(&x) % 3 < 2 ? 'a' : 'b';
            topic[2 * l + 1] = '/';
        }
        topic[2 * levels - 1] = '\0';
        /* topics that some filter matches, too */
        if (j % 2 == 0) {
            const char *src = f[j % NF];

            memcpy(topic, src, strlen(src) + 1);
            for (size_t c = 0; topic[c]; c++)
                if (topic[c] == '+')
                    topic[c] = 'b';
        }
        memset(hits, 0, NF * sizeof(*hits));
        trie_match(t, topic, strlen(topic), count_hit, NULL);
        for (size_t i = 0; i < NF; i++)
            CHECK(hits[i] == (f[i][0] && topic_match(f[i], strlen(f[i]),
                                                     topic, strlen(topic))),
                  "filter %s, topic %s: %u", f[i], topic, hits[i]);
    }
    trie_free(t, NULL);
    free(f);
    free(hits);
}
END_TEST

/* ---- randomized, against a brute-force matcher --------------------------- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    return (uint32_t)(splitmix64(&rng_state) % n);
}

/* The filter part that topic_match() sees, written from trie.h's rules:
 * -1 for a "$share/" filter without a group name or a filter. */
static int ref_match(const char *f, size_t len, const char *t, size_t tlen)
{
    if (len >= 7 && memcmp(f, "$share/", 7) == 0) {
        size_t i = 7;

        while (i < len && f[i] != '/')
            i++;
        if (i == 7 || i >= len - 1 ||
            (i == 8 && (f[7] == '+' || f[7] == '#')))
            return false;
        f += i + 1;
        len -= i + 1;
    }
    return topic_match(f, len, t, tlen);
}

static const char *const rand_levels[] = {
    "a", "b", "c", "", "$x", "$SYS", "dev1", "dev2", "sensor", "x y",
    "\xc3\xa9",
};
#define N_LEVELS (sizeof(rand_levels) / sizeof(rand_levels[0]))

/* A random name, or with wild a random filter (valid either way). */
static size_t rand_topic(char *out, bool wild)
{
    size_t depth = 1 + rnd(5), o = 0, pre_len = 0;

    if (wild && rnd(6) == 0) {
        static const char *const pre[] = { "$share/g/", "$share/h/" };
        const char *p = pre[rnd(2)];

        o = pre_len = strlen(p);
        memcpy(out, p, o);
    }
    for (size_t i = 0; i < depth; i++) {
        const char *l = rand_levels[rnd(N_LEVELS)];

        if (wild && rnd(4) == 0)
            l = i == depth - 1 && rnd(2) ? "#" : "+";
        if (i > 0)
            out[o++] = '/';
        memcpy(out + o, l, strlen(l));
        o += strlen(l);
    }
    if (o == pre_len)
        out[o++] = '/'; /* a share's filter part is not empty */
    out[o] = '\0';
    return o;
}

struct model {
    char f[96];
    size_t len;
    bool in;
    unsigned hits;
};

static int mark(void *value, void *arg)
{
    struct model *m = value;

    (void)arg;
    m->hits++;
    return 0;
}

/* Every filter of the model is reported once when it matches topic, and
 * never otherwise. */
static void check_topic(struct trie *t, struct model *m, size_t nm,
                        const char *topic, size_t tlen)
{
    for (size_t i = 0; i < nm; i++)
        m[i].hits = 0;
    CHECK(trie_match(t, topic, tlen, mark, NULL) == 0, "match stopped");
    for (size_t i = 0; i < nm; i++) {
        unsigned want = m[i].in && ref_match(m[i].f, m[i].len, topic, tlen);

        CHECK(m[i].hits == want,
              "filter \"%s\", topic \"%.*s\": %u calls, want %u", m[i].f,
              (int)tlen, topic, m[i].hits, want);
    }
}

static void check_all_topics(struct trie *t, struct model *m, size_t nm,
                             size_t topics)
{
    char topic[96];

    for (size_t j = 0; j < topics; j++) {
        size_t tlen = rand_topic(topic, false);

        check_topic(t, m, nm, topic, tlen);
    }
}

START_TEST(test_random)
{
    enum { NF = 2000, NT = 1000 };
    struct model *m = calloc(NF, sizeof(*m));
    struct trie *t = trie_new_seeded(100 + (uint64_t)_i);
    size_t nm = 0, stored = 0;

    rng_state = 0x5eed + (uint64_t)_i;
    ck_assert_ptr_nonnull(m);
    while (nm < NF) {
        struct model *x = &m[nm];
        void *old;

        x->len = rand_topic(x->f, true);
        CHECK(topic_filter_check(x->f, x->len) == 0, "bad filter %s", x->f);
        old = trie_find(t, x->f, x->len);
        if (old) {
            CHECK(trie_insert(t, x->f, x->len, x) == -EEXIST, "%s", x->f);
            continue;
        }
        CHECK(trie_insert(t, x->f, x->len, x) == 0, "insert %s", x->f);
        x->in = true;
        nm++;
        stored++;
    }
    ck_assert_uint_eq(trie_count(t), stored);
    check_all_topics(t, m, nm, NT);

    /* remove a random half (and find the rest), match again */
    for (size_t i = 0; i < nm; i++) {
        if (rnd(2))
            continue;
        CHECK(trie_remove(t, m[i].f, m[i].len) == &m[i], "remove %s", m[i].f);
        m[i].in = false;
        stored--;
    }
    for (size_t i = 0; i < nm; i++)
        CHECK(trie_find(t, m[i].f, m[i].len) == (m[i].in ? &m[i] : NULL),
              "find %s", m[i].f);
    ck_assert_uint_eq(trie_count(t), stored);
    check_all_topics(t, m, nm, NT);

    /* put half of them back, then remove everything */
    for (size_t i = 0; i < nm; i++)
        if (!m[i].in && rnd(2)) {
            CHECK(trie_insert(t, m[i].f, m[i].len, &m[i]) == 0, "%s", m[i].f);
            m[i].in = true;
        }
    check_all_topics(t, m, nm, NT / 4);
    for (size_t i = nm; i-- > 0;)
        CHECK(trie_remove(t, m[i].f, m[i].len) == (m[i].in ? &m[i] : NULL),
              "remove %s", m[i].f);
    assert_bare(t);
    trie_free(t, NULL);
    free(m);
}
END_TEST

/* Steps s[0..*len) to the next string over alpha, shortest first;
 * false after the last one of max bytes. Starts from *len == 0. */
static bool next_word(char *s, size_t *len, const char *alpha, size_t max)
{
    for (size_t i = 0; i < *len; i++) {
        const char *p = strchr(alpha, s[i]);

        if (p[1]) {
            s[i] = p[1];
            return true;
        }
        s[i] = alpha[0];
    }
    if (*len == max)
        return false;
    s[(*len)++] = alpha[0];
    return true;
}

/* Every valid filter up to 4 bytes over "a$+#/", plain and in two share
 * groups, against every name up to 6 bytes over "ab$/". */
START_TEST(test_exhaustive)
{
    static const char *const pre[] = { "", "$share/g/", "$share/h/" };
    enum { MAX_MODEL = 3 * 800 };
    struct model *m = calloc(MAX_MODEL, sizeof(*m));
    struct trie *t = trie_new_seeded(14);
    size_t nm = 0, len = 0;
    char s[8];

    ck_assert_ptr_nonnull(m);
    while (next_word(s, &len, "a$+#/", 4)) {
        if (topic_filter_check(s, len) < 0)
            continue;
        for (int g = 0; g < 3; g++, nm++) {
            ck_assert_uint_lt(nm, MAX_MODEL);
            m[nm].len = (size_t)snprintf(m[nm].f, sizeof(m[nm].f), "%s%.*s",
                                         pre[g], (int)len, s);
            CHECK(trie_insert(t, m[nm].f, m[nm].len, &m[nm]) == 0, "%s",
                  m[nm].f);
            m[nm].in = true;
        }
    }
    ck_assert_uint_gt(nm, 3 * 100);
    len = 0;
    while (next_word(s, &len, "ab$/", 6))
        check_topic(t, m, nm, s, len);
    for (size_t i = 0; i < nm; i++)
        ck_assert_ptr_eq(trie_remove(t, m[i].f, m[i].len), &m[i]);
    assert_bare(t);
    trie_free(t, NULL);
    free(m);
}
END_TEST

static Suite *trie_suite(void)
{
    Suite *s = suite_create("trie");
    TCase *tc;

    tc = tcase_create("match");
    tcase_add_loop_test(tc, test_table, 0,
                        (int)(sizeof table_rows / sizeof table_rows[0]));
    tcase_add_test(tc, test_order);
    tcase_add_test(tc, test_stop);
    suite_add_tcase(s, tc);

    tc = tcase_create("store");
    tcase_add_test(tc, test_insert_errors);
    tcase_add_test(tc, test_remove_prune);
    tcase_add_test(tc, test_free_drops);
    tcase_add_test(tc, test_insert_oom);
    tcase_add_test(tc, test_table_oom);
    tcase_add_test(tc, test_deep);
    tcase_add_test(tc, test_deep_wild);
    suite_add_tcase(s, tc);

    tc = tcase_create("hash");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_siblings, 0, 3);
    tcase_add_test(tc, test_mul64);
    tcase_add_test(tc, test_level_hash);
    tcase_add_test(tc, test_trie_new);
    suite_add_tcase(s, tc);

    tc = tcase_create("random");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_random, 0, 2);
    tcase_add_test(tc, test_exhaustive);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(trie_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
