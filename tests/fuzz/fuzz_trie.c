/* libFuzzer target: trie_insert, trie_remove, trie_find, trie_match and
 * trie_free against a brute-force model.
 *
 * The input is a list of NUL-separated operations; the first byte of each
 * says which, the rest is its string:
 *   'i' insert the filter, 'r' remove it, 'f' find it, anything else:
 *   match the rest as a topic (any bytes, valid name or not).
 * The model is the list of stored filters. Every answer is checked:
 *   - insert: -EINVAL exactly for what topic_filter_check refuses, -EEXIST
 *     exactly for a filter stored already, else 0;
 *   - remove and find: the value stored under exactly that text, or NULL;
 *   - match: each stored filter is reported once when topic_match() of it
 *     (of FILTER for "$share/NAME/FILTER"; never for a malformed "$share/")
 *     is true, never otherwise; a callback that stops the walk stops it;
 *   - trie_count is the model's size.
 * At the end, an odd-sized input removes every filter and checks that no
 * node is left; an even one frees the trie with its values dropped once.
 * Strings are exact-size heap copies, so ASan sees any read past them. */
#include <errno.h>
#include <stdbool.h>

#include "fuzz.h"
#include "topic.h"
#include "trie.c" /* its statics: the nodes left after removing everything */

#define MAX_OPS 512

struct entry {
    char *f;
    size_t len;
    bool in;
    unsigned hits;
};

static struct entry model[MAX_OPS];
static size_t n_model;
static size_t stop_after, calls;

/* The part of f that topic_match() applies to, as trie.h states it:
 * false for a "$share/" filter without a group name or without a filter. */
static bool ref_match(const char *f, size_t len, const char *t, size_t tlen)
{
    if (len >= 7 && memcmp(f, "$share/", 7) == 0) {
        const char *g = f + 7, *end = f + len, *slash = g;

        while (slash < end && *slash != '/')
            slash++;
        if (slash == g || slash + 1 >= end ||
            (slash == g + 1 && (*g == '+' || *g == '#')))
            return false;
        len = (size_t)(end - (slash + 1));
        f = slash + 1;
    }
    return topic_match(f, len, t, tlen);
}

static struct entry *model_find(const char *f, size_t len)
{
    for (size_t i = 0; i < n_model; i++)
        if (model[i].in && model[i].len == len &&
            memcmp(model[i].f, f, len) == 0)
            return &model[i];
    return NULL;
}

static int hit(void *value, void *arg)
{
    struct entry *e = value;

    (void)arg;
    FUZZ_CHECK(e >= model && e < model + n_model && e->in);
    e->hits++;
    return ++calls == stop_after ? 7 : 0;
}

static void check_match(struct trie *t, const char *topic, size_t len)
{
    size_t want = 0;

    for (size_t i = 0; i < n_model; i++)
        model[i].hits = 0;
    calls = 0;
    stop_after = 0;
    FUZZ_CHECK(trie_match(t, topic, len, hit, NULL) == 0);
    for (size_t i = 0; i < n_model; i++) {
        unsigned m = model[i].in &&
                     ref_match(model[i].f, model[i].len, topic, len);

        FUZZ_CHECK(model[i].hits == m);
        want += m;
    }
    FUZZ_CHECK(calls == want);
    if (want == 0)
        return;
    /* stopping at one of the calls returns the callback's value */
    calls = 0;
    stop_after = 1 + len % want;
    FUZZ_CHECK(trie_match(t, topic, len, hit, NULL) == 7);
    FUZZ_CHECK(calls == stop_after);
}

static size_t dropped;

static void drop(void *value)
{
    struct entry *e = value;

    FUZZ_CHECK(e >= model && e < model + n_model && e->in);
    e->in = false;
    dropped++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct field ops[MAX_OPS];
    struct trie *t = trie_new_seeded(size);
    size_t n = fuzz_split(data, size, ops, MAX_OPS), stored = 0;

    FUZZ_CHECK(t != NULL);
    n_model = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = ops[i].p + 1;
        size_t len = ops[i].len ? ops[i].len - 1 : 0;
        char *s;
        struct entry *e;

        if (ops[i].len == 0)
            continue;
        s = fuzz_dup(p, len, 0);
        e = model_find(s, len);
        switch (ops[i].p[0]) {
        case 'i': {
            struct entry *slot = &model[n_model];
            int want = topic_filter_check(s, len) < 0 ? -EINVAL
                       : e                            ? -EEXIST
                                                      : 0;

            FUZZ_CHECK(trie_insert(t, s, len, slot) == want);
            if (want == 0) {
                *slot = (struct entry){ .f = s, .len = len, .in = true };
                n_model++;
                stored++;
                s = NULL; /* the model keeps it */
            }
            break;
        }
        case 'r':
            FUZZ_CHECK(trie_remove(t, s, len) == e);
            if (e) {
                e->in = false;
                stored--;
            }
            break;
        case 'f':
            FUZZ_CHECK(trie_find(t, s, len) == e);
            break;
        default:
            check_match(t, s, len);
        }
        FUZZ_CHECK(trie_count(t) == stored);
        free(s);
    }

    if (size & 1) {
        for (size_t i = 0; i < n_model; i++)
            if (model[i].in)
                FUZZ_CHECK(trie_remove(t, model[i].f, model[i].len) ==
                           &model[i]);
        FUZZ_CHECK(trie_count(t) == 0);
        FUZZ_CHECK(!t->root->n_kids && !t->root->only && !t->root->bucket &&
                   !t->root->plus && !t->root->hash && !t->root->value &&
                   !t->root->shares);
        FUZZ_CHECK(!t->inert->n_kids && !t->inert->only &&
                   !t->inert->bucket && !t->inert->plus && !t->inert->hash &&
                   !t->inert->value && !t->inert->shares);
        trie_free(t, NULL);
    } else {
        dropped = 0;
        trie_free(t, drop);
        FUZZ_CHECK(dropped == stored);
    }
    for (size_t i = 0; i < n_model; i++)
        free(model[i].f);
    return 0;
}
