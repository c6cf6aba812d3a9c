#include "jbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"

void jbuf_init(struct jbuf *b)
{
    b->p = b->inline_;
    b->len = 0;
    b->cap = sizeof(b->inline_);
    b->failed = false;
}

void jbuf_free(struct jbuf *b)
{
    if (b->p != b->inline_)
        free(b->p);
    jbuf_init(b);
}

/* Room for n more bytes; false (and b->failed) when there is none. */
static bool reserve(struct jbuf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->failed)
        return false;
    if (n <= b->cap - b->len)
        return true;
    if (n > SIZE_MAX / 2 - b->len)
        goto fail;
    for (cap = b->cap * 2; cap - b->len < n; cap *= 2)
        ;
    if (b->p == b->inline_) {
        if (!(p = malloc(cap)))
            goto fail;
        memcpy(p, b->p, b->len);
    } else if (!(p = realloc(b->p, cap))) {
        goto fail;
    }
    b->p = p;
    b->cap = cap;
    return true;
fail:
    b->failed = true;
    return false;
}

void jbuf_raw(struct jbuf *b, const void *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void jbuf_lit(struct jbuf *b, const char *s)
{
    jbuf_raw(b, s, strlen(s));
}

void jbuf_str(struct jbuf *b, const char *s, size_t n)
{
    size_t need = json_escaped_len(s, n);

    if (!reserve(b, need + 2))
        return;
    b->p[b->len++] = '"';
    b->len += json_escape(s, n, b->p + b->len);
    b->p[b->len++] = '"';
}

void jbuf_int(struct jbuf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);

    jbuf_raw(b, tmp, (size_t)n);
}

char *jbuf_room(struct jbuf *b, size_t n)
{
    char *p;

    if (!reserve(b, n))
        return NULL;
    p = b->p + b->len;
    b->len += n;
    return p;
}
