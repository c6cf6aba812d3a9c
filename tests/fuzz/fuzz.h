/* Helpers shared by the libFuzzer targets: an assertion that survives
 * -DNDEBUG and tells which invariant broke, and splitting an input into
 * NUL-separated fields. */
#ifndef MQG_FUZZ_H
#define MQG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,      \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

struct field {
    const char *p;
    size_t len;
};

/* Splits data[0..size) at NUL bytes into at most max fields (the last one
 * keeps any further NULs). Returns the number of fields, at least 1. */
static inline size_t fuzz_split(const uint8_t *data, size_t size,
                                struct field *f, size_t max)
{
    size_t n = 0, start = 0;

    for (size_t i = 0; i < size && n + 1 < max; i++) {
        if (data[i] != 0)
            continue;
        f[n].p = (const char *)data + start;
        f[n].len = i - start;
        n++;
        start = i + 1;
    }
    f[n].p = (const char *)data + start;
    f[n].len = size - start;
    return n + 1;
}

/* An exact-size heap copy, so that ASan sees any read past the end; with
 * nul, one more byte holding '\0'. Never NULL (aborts on OOM). */
static inline char *fuzz_dup(const void *p, size_t len, int nul)
{
    char *d = malloc(len + (nul ? 1 : 0) + (len == 0 && !nul));

    if (!d)
        abort();
    if (len)
        memcpy(d, p, len);
    if (nul)
        d[len] = '\0';
    return d;
}

#endif
