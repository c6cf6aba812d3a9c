/* Prometheus text: labels and merging (promtext.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "jbuf.h"
#include "promtext.h"

/* The line at text[pos..) up to and including its '\n' (or the end). */
static size_t line_end(const char *text, size_t len, size_t pos)
{
    const char *nl = memchr(text + pos, '\n', len - pos);

    return nl ? (size_t)(nl - text) + 1 : len;
}

static bool starts(const char *s, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);

    return n >= pl && memcmp(s, prefix, pl) == 0;
}

static char *take(struct jbuf *b, size_t *outlen)
{
    char *out;

    if (b->failed || !(out = malloc(b->len + 1))) {
        jbuf_free(b);
        return NULL;
    }
    memcpy(out, b->p, b->len);
    out[b->len] = '\0';
    *outlen = b->len;
    jbuf_free(b);
    return out;
}

char *promtext_label(const char *text, size_t len, const char *name,
                     const char *value, size_t *outlen)
{
    struct jbuf b;

    jbuf_init(&b);
    for (size_t pos = 0; pos < len;) {
        size_t end = line_end(text, len, pos), n = end - pos;
        const char *l = text + pos;
        size_t m = 0;

        if (n == 0 || l[0] == '#' || l[0] == '\n') {
            jbuf_raw(&b, l, n);
            pos = end;
            continue;
        }
        while (m < n && l[m] != '{' && l[m] != ' ' && l[m] != '\n')
            m++;
        jbuf_raw(&b, l, m);
        jbuf_lit(&b, "{");
        jbuf_lit(&b, name);
        jbuf_lit(&b, "=\"");
        jbuf_lit(&b, value);
        jbuf_lit(&b, "\"");
        if (m < n && l[m] == '{') {
            /* an empty label set: {} */
            if (m + 1 < n && l[m + 1] == '}')
                jbuf_raw(&b, l + m + 1, n - m - 1);
            else {
                jbuf_lit(&b, ",");
                jbuf_raw(&b, l + m + 1, n - m - 1);
            }
        } else {
            jbuf_lit(&b, "}");
            jbuf_raw(&b, l + m, n - m);
        }
        pos = end;
    }
    return take(&b, outlen);
}

/* One family of one text: its name, its comment lines and its samples. */
struct block {
    const char *name;
    size_t name_len;
    const char *head, *samples;   /* into the text */
    size_t head_len, samples_len;
    size_t text;
};

/* Splits text t into blocks (appended to *v). Returns 0 or -1 (OOM). */
static int split(const char *text, size_t len, size_t t, struct block **v,
                 size_t *n, size_t *cap)
{
    struct block *cur = NULL;

    for (size_t pos = 0; pos < len;) {
        size_t end = line_end(text, len, pos), ln = end - pos;
        const char *l = text + pos;

        if (starts(l, ln, "# HELP ") || !cur) {
            if (*n == *cap) {
                size_t nc = *cap ? *cap * 2 : 32;
                struct block *nv = realloc(*v, nc * sizeof(*nv));

                if (!nv)
                    return -1;
                *v = nv;
                *cap = nc;
            }
            cur = &(*v)[(*n)++];
            memset(cur, 0, sizeof(*cur));
            cur->text = t;
            cur->head = cur->samples = l;
            if (starts(l, ln, "# HELP ")) {
                cur->name = l + 7;
                while (cur->name_len < ln - 7 &&
                       cur->name[cur->name_len] != ' ' &&
                       cur->name[cur->name_len] != '\n')
                    cur->name_len++;
            }
        }
        if (l[0] == '#' && cur->samples_len == 0) {
            cur->head_len += ln;
            cur->samples = l + ln;
        } else {
            cur->samples_len += ln;
        }
        pos = end;
    }
    return 0;
}

static bool same_family(const struct block *a, const struct block *b)
{
    return a->name_len == b->name_len &&
           (a->name_len == 0 || memcmp(a->name, b->name, a->name_len) == 0);
}

char *promtext_merge(const char *const *texts, const size_t *lens, size_t n,
                     size_t *outlen)
{
    struct block *v = NULL;
    size_t nb = 0, cap = 0;
    bool *done;
    struct jbuf b;

    for (size_t t = 0; t < n; t++)
        if (split(texts[t], lens[t], t, &v, &nb, &cap) < 0) {
            free(v);
            return NULL;
        }
    if (!(done = calloc(nb ? nb : 1, sizeof(*done)))) {
        free(v);
        return NULL;
    }
    jbuf_init(&b);
    for (size_t i = 0; i < nb; i++) {
        if (done[i])
            continue;
        jbuf_raw(&b, v[i].head, v[i].head_len);
        for (size_t j = i; j < nb; j++)
            if (!done[j] && same_family(&v[i], &v[j])) {
                jbuf_raw(&b, v[j].samples, v[j].samples_len);
                done[j] = true;
            }
    }
    free(done);
    free(v);
    return take(&b, outlen);
}
