/* trie_bench: the cost of routing one message, before and after the
 * hashed trie of common/trie.c (docs/benchmarks.md, "Routing with many
 * sibling topics").
 *
 * "linear" is the router's trie as it was (gateway/router.c up to issue
 * 11): the literal children of a node in an array, found by comparing each
 * in turn (kid_find), matches pushed into an array. "trie" is common/trie.c
 * with a callback that pushes into the same array. Cases: N sibling
 * filters "sensor/devI" (N = 1, 10, 100, 1000, 10000) matched by topics
 * "sensor/devI" taken in a shuffled order, and one set of overlapping
 * wildcards ("wild": five filters match "site/a/temp").
 *
 *   trie_bench                 ns per match, the best of 40 runs of each
 *                              case and implementation, taking turns
 *   trie_bench --callgrind     instructions per match, each case and
 *                              implementation run under valgrind
 *                              --tool=callgrind, counting only the matching
 *                              loop (--toggle-collect=run_loop)
 *   trie_bench --one IMPL CASE ITERS   one loop, what --callgrind runs
 *
 * Built by `make bench-trie`, which runs both.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "trie.h"

struct hits {
    void *v[32];
    size_t n;
};

/* ---- before: the router's trie with a linear scan of siblings ------------ */

struct rnode {
    struct rnode *parent;
    struct rnode **kids;
    uint32_t n_kids, cap_kids;
    struct rnode *plus, *hash;
    void *filter;
    size_t level_len;
    char level[];
};

static struct rnode *node_new(struct rnode *parent, const char *lvl,
                              size_t len)
{
    struct rnode *n = calloc(1, sizeof(*n) + len + 1);

    if (!n)
        abort();
    n->parent = parent;
    n->level_len = len;
    memcpy(n->level, lvl, len);
    return n;
}

static struct rnode *kid_find(const struct rnode *n, const char *lvl,
                              size_t len)
{
    for (uint32_t i = 0; i < n->n_kids; i++) {
        struct rnode *k = n->kids[i];

        if (k->level_len == len && memcmp(k->level, lvl, len) == 0)
            return k;
    }
    return NULL;
}

static struct rnode *kid_add(struct rnode *n, const char *lvl, size_t len)
{
    struct rnode *k;

    if (len == 1 && lvl[0] == '+')
        return n->plus ? n->plus : (n->plus = node_new(n, lvl, len));
    if (len == 1 && lvl[0] == '#')
        return n->hash ? n->hash : (n->hash = node_new(n, lvl, len));
    if ((k = kid_find(n, lvl, len)))
        return k;
    if (n->n_kids == n->cap_kids) {
        n->cap_kids = n->cap_kids ? n->cap_kids * 2 : 2;
        n->kids = realloc(n->kids, n->cap_kids * sizeof(*n->kids));
        if (!n->kids)
            abort();
    }
    k = node_new(n, lvl, len);
    n->kids[n->n_kids++] = k;
    return k;
}

static void lin_insert(struct rnode *n, const char *f, void *value)
{
    size_t len = strlen(f), pos = 0;

    while (pos <= len) {
        const char *slash = memchr(f + pos, '/', len - pos);
        size_t end = slash ? (size_t)(slash - f) : len;

        n = kid_add(n, f + pos, end - pos);
        pos = end + 1;
    }
    n->filter = value;
}

static void push(struct hits *h, void *v)
{
    if (h->n < sizeof(h->v) / sizeof(h->v[0]))
        h->v[h->n++] = v;
}

static void lin_walk(const struct rnode *n, const char *t, size_t len,
                     size_t pos, bool wild_ok, struct hits *out)
{
    const struct rnode *k;
    const char *slash;
    size_t end;

    if (n->hash && n->hash->filter && wild_ok)
        push(out, n->hash->filter);
    if (pos > len) {
        if (n->filter)
            push(out, n->filter);
        return;
    }
    slash = memchr(t + pos, '/', len - pos);
    end = slash ? (size_t)(slash - t) : len;
    if ((k = kid_find(n, t + pos, end - pos)))
        lin_walk(k, t, len, end + 1, true, out);
    if (n->plus && wild_ok)
        lin_walk(n->plus, t, len, end + 1, true, out);
}

static void lin_free(struct rnode *n)
{
    if (!n)
        return;
    for (uint32_t i = 0; i < n->n_kids; i++)
        lin_free(n->kids[i]);
    lin_free(n->plus);
    lin_free(n->hash);
    free(n->kids);
    free(n);
}

/* ---- after: common/trie.c ------------------------------------------------ */

static int trie_push(void *value, void *arg)
{
    push(arg, value);
    return 0;
}

/* ---- cases --------------------------------------------------------------- */

struct bcase {
    const char *name;
    char **filters, **topics;
    size_t *tlen;
    size_t n_filters, n_topics;
    size_t want; /* matches per topic */
};

static char *dup_printf(const char *fmt, size_t i)
{
    char buf[64];
    int len = snprintf(buf, sizeof(buf), fmt, i);
    char *s = malloc((size_t)len + 1);

    if (!s)
        abort();
    memcpy(s, buf, (size_t)len + 1);
    return s;
}

static void case_alloc(struct bcase *c, size_t nf, size_t nt)
{
    c->filters = calloc(nf, sizeof(*c->filters));
    c->topics = calloc(nt, sizeof(*c->topics));
    c->tlen = calloc(nt, sizeof(*c->tlen));
    if (!c->filters || !c->topics || !c->tlen)
        abort();
    c->n_filters = nf;
    c->n_topics = nt;
}

static void case_siblings(struct bcase *c, size_t n)
{
    uint64_t x = 42;

    case_alloc(c, n, n);
    for (size_t i = 0; i < n; i++) {
        c->filters[i] = dup_printf("sensor/dev%zu", i);
        c->topics[i] = dup_printf("sensor/dev%zu", i);
    }
    for (size_t i = n; i > 1; i--) { /* shuffled: no lucky order */
        size_t j;
        char *tmp;

        x = x * 6364136223846793005u + 1442695040888963407u;
        j = (size_t)(x >> 33) % i;
        tmp = c->topics[i - 1];
        c->topics[i - 1] = c->topics[j];
        c->topics[j] = tmp;
    }
    for (size_t i = 0; i < n; i++)
        c->tlen[i] = strlen(c->topics[i]);
    c->want = 1;
}

static void case_wild(struct bcase *c)
{
    static const char *const f[] = {
        "site/+/temp", "site/#", "site/a/+", "+/a/temp", "site/a/temp",
        "site/b/temp", "site/a/hum", "other/#", "$SYS/#",
    };

    case_alloc(c, sizeof(f) / sizeof(f[0]), 1);
    for (size_t i = 0; i < c->n_filters; i++)
        c->filters[i] = dup_printf(f[i], 0);
    c->topics[0] = dup_printf("site/a/temp", 0);
    c->tlen[0] = strlen(c->topics[0]);
    c->want = 5;
}

static const char *const case_names[] = { "1", "10", "100", "1000", "10000",
                                          "wild" };
#define N_CASES (sizeof(case_names) / sizeof(case_names[0]))

static void case_make(struct bcase *c, size_t which)
{
    c->name = case_names[which];
    if (strcmp(c->name, "wild") == 0)
        case_wild(c);
    else
        case_siblings(c, (size_t)atol(c->name));
}

static void case_free(struct bcase *c)
{
    for (size_t i = 0; i < c->n_filters; i++)
        free(c->filters[i]);
    for (size_t i = 0; i < c->n_topics; i++)
        free(c->topics[i]);
    free(c->filters);
    free(c->topics);
    free(c->tlen);
}

struct impls {
    struct rnode *root;
    struct trie *trie;
};

/* One match; returns the number of filters matched. */
typedef size_t (*match_fn)(const struct impls *im, const char *t,
                           size_t len);

static size_t match_linear(const struct impls *im, const char *t, size_t len)
{
    struct hits h;

    h.n = 0; /* only what is pushed is read */
    lin_walk(im->root, t, len, 0, t[0] != '$', &h);
    return h.n;
}

static size_t match_trie(const struct impls *im, const char *t, size_t len)
{
    struct hits h;

    h.n = 0;
    trie_match(im->trie, t, len, trie_push, &h);
    return h.n;
}

/* The loop measured; callgrind counts only inside it. */
__attribute__((noinline)) static size_t run_loop(const struct impls *im,
                                                 match_fn match,
                                                 const struct bcase *c,
                                                 size_t iters)
{
    size_t total = 0;

    for (size_t i = 0; i < iters; i++) {
        size_t k = i % c->n_topics;

        total += match(im, c->topics[k], c->tlen[k]);
    }
    return total;
}

static void impls_build(struct impls *im, const struct bcase *c)
{
    im->root = node_new(NULL, "", 0);
    im->trie = trie_new_seeded(1); /* the same figures every run */
    if (!im->trie)
        abort();
    for (size_t i = 0; i < c->n_filters; i++) {
        lin_insert(im->root, c->filters[i], c->filters[i]);
        if (trie_insert(im->trie, c->filters[i], strlen(c->filters[i]),
                        c->filters[i]) != 0)
            abort();
    }
}

static void impls_free(struct impls *im)
{
    lin_free(im->root);
    trie_free(im->trie, NULL);
}

static size_t run(const struct impls *im, bool linear, const struct bcase *c,
                  size_t iters)
{
    size_t got = run_loop(im, linear ? match_linear : match_trie, c, iters);

    if (got != iters * c->want) {
        fprintf(stderr, "case %s: %zu matches, want %zu\n", c->name, got,
                iters * c->want);
        exit(1);
    }
    return got;
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Matches of one implementation that take about 5 ms. */
static size_t calibrate(const struct impls *im, bool linear,
                        const struct bcase *c)
{
    size_t iters = 100;

    for (;;) {
        double t0 = now_ns();

        run(im, linear, c, iters);
        if (now_ns() - t0 > 5e6)
            return iters;
        iters *= 2;
    }
}

/* ns per match of both implementations, out[0] linear and out[1] trie:
 * the best of 40 runs of about 5 ms each, the two taking turns, so that a
 * machine busy with other work disturbs both alike and the least
 * disturbed run of each is kept. */
static void ns_per_match(const struct impls *im, const struct bcase *c,
                         double out[2])
{
    size_t iters[2] = { calibrate(im, true, c), calibrate(im, false, c) };

    for (int rep = 0; rep < 40; rep++)
        for (int i = 0; i < 2; i++) {
            double t0 = now_ns(), ns;

            run(im, i == 0, c, iters[i]);
            ns = (now_ns() - t0) / (double)iters[i];
            if (rep == 0 || ns < out[i])
                out[i] = ns;
        }
}

/* Instructions per match of one case under callgrind, or -1. */
static double callgrind_ir(const char *self, const char *impl,
                           const char *name, size_t iters)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char out[512], arg_out[600], arg_iters[32], line[256];
    double ir = -1;
    pid_t pid;
    FILE *f;
    int fd, st;

    snprintf(out, sizeof(out), "%s/trie_bench.cg.XXXXXX", tmp);
    if ((fd = mkstemp(out)) < 0)
        return -1;
    close(fd);
    snprintf(arg_out, sizeof(arg_out), "--callgrind-out-file=%s", out);
    snprintf(arg_iters, sizeof(arg_iters), "%zu", iters);
    if ((pid = fork()) == 0) {
        execlp("valgrind", "valgrind", "--tool=callgrind", "-q", arg_out,
               "--toggle-collect=run_loop", self, "--one", impl, name, arg_iters, (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0)
        goto out;
    if (!(f = fopen(out, "r")))
        goto out;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "totals:", 7) == 0 ||
            strncmp(line, "summary:", 8) == 0)
            ir = atof(strchr(line, ':') + 1) / (double)iters;
    fclose(f);
out:
    unlink(out);
    return ir;
}

int main(int argc, char **argv)
{
    struct bcase c;
    struct impls im;

    if (argc == 5 && strcmp(argv[1], "--one") == 0) {
        size_t which = 0;

        while (which < N_CASES && strcmp(case_names[which], argv[3]) != 0)
            which++;
        if (which == N_CASES)
            return 2;
        case_make(&c, which);
        impls_build(&im, &c);
        run(&im, strcmp(argv[2], "linear") == 0, &c,
            (size_t)atol(argv[4]));
        impls_free(&im);
        case_free(&c);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--callgrind") == 0) {
        char self[4096];
        ssize_t n_self = readlink("/proc/self/exe", self, sizeof(self) - 1);

        if (n_self <= 0)
            return 1;
        self[n_self] = '\0';
        printf("| siblings | linear scan, instructions/match | hashed trie, "
               "instructions/match |\n|---|---|---|\n");
        for (size_t which = 0; which < N_CASES; which++) {
            /* a whole number of passes over the topics */
            size_t n = strcmp(case_names[which], "wild") == 0
                           ? 1
                           : (size_t)atol(case_names[which]);
            size_t iters = n >= 10000 ? 10000 : (20000 / n) * n;

            printf("| %s | %.0f | %.0f |\n", case_names[which],
                   callgrind_ir(self, "linear", case_names[which], iters),
                   callgrind_ir(self, "trie", case_names[which], iters));
            fflush(stdout);
        }
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: trie_bench [--callgrind | --one IMPL CASE "
                        "ITERS]\n");
        return 2;
    }
    printf("| siblings | linear scan, ns/match | hashed trie, ns/match |\n"
           "|---|---|---|\n");
    for (size_t which = 0; which < N_CASES; which++) {
        double ns[2];

        case_make(&c, which);
        impls_build(&im, &c);
        ns_per_match(&im, &c, ns);
        printf("| %s | %.1f | %.1f |\n", c.name, ns[0], ns[1]);
        fflush(stdout);
        impls_free(&im);
        case_free(&c);
    }
    return 0;
}
