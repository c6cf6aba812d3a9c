/* libFuzzer target: topic_name_check, topic_filter_check, topic_match and
 * topic_covers.
 *
 * The input is up to four NUL-separated fields A, B, C, D (a topic never
 * holds U+0000, so NUL is a safe separator). Every field, and the whole
 * input, goes through both checks. Then, for the fields that are valid:
 *   - a valid name is a valid filter (unless it begins with "$share/": as
 *     a filter that is a shared subscription, with rules of its own);
 *     match(t, t) for a valid name t, the name read as a literal filter;
 *   - a valid shared subscription "$share/G/F" matches what F matches (as
 *     the fan-out does): every match below is of F, and a name is built
 *     from F's wildcards;
 *   - covers(f, f) for every valid filter f;
 *   - topic_match agrees with a plain level-by-level reference matcher;
 *   - a name t (not "$share/..."), seen as a filter, is covered by a filter
 *     f that is not shared exactly when it is matched: covers(f, t) ==
 *     match(f, t);
 *   - covers(A, B) && match(B, t) => match(A, t), for t among the fields
 *     and for a name built from B by filling its wildcards from C;
 *   - covers(A, B) && covers(B, C) => covers(A, C).
 * Each string is passed as an exact-size heap copy, without a terminator,
 * so that ASan reports any read past its length. */
#include <stdbool.h>

#include "fuzz.h"
#include "topic.h"

#define NF 4

struct topic {
    char *s;
    size_t len;
    size_t ps; /* a valid shared subscription: the "$share/G/" length */
    bool name, filter;
};

struct level {
    const char *p;
    size_t len;
};

/* Splits s into its '/'-separated levels; returns how many (>= 1). */
static size_t levels(const char *s, size_t len, struct level *out)
{
    size_t n = 0, start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '/')
            continue;
        out[n].p = s + start;
        out[n].len = i - start;
        n++;
        start = i + 1;
    }
    return n;
}

static bool lvl_is(const struct level *l, char c)
{
    return l->len == 1 && l->p[0] == c;
}

/* MQTT 3.1.1 section 4.7, written the obvious way. */
static bool ref_match(const char *f, size_t flen, const char *t, size_t tlen)
{
    struct level *fl, *tl;
    size_t nf, nt, i;
    bool r = false;

    if (flen > 0 && (f[0] == '+' || f[0] == '#') && tlen > 0 && t[0] == '$')
        return false;
    fl = malloc((flen + 1) * sizeof *fl);
    tl = malloc((tlen + 1) * sizeof *tl);
    if (!fl || !tl)
        abort();
    nf = levels(f, flen, fl);
    nt = levels(t, tlen, tl);
    for (i = 0; i < nf; i++) {
        if (lvl_is(&fl[i], '#')) {
            r = true;
            goto out;
        }
        if (i >= nt)
            goto out;
        if (!lvl_is(&fl[i], '+') &&
            (fl[i].len != tl[i].len || memcmp(fl[i].p, tl[i].p, fl[i].len)))
            goto out;
    }
    r = i == nt;
out:
    free(fl);
    free(tl);
    return r;
}

/* A name that filter f matches, its '+' levels filled from the levels of
 * src and its '#' by all of src (or by nothing when src is empty). Returns
 * NULL when src gives nothing usable; the result may still be invalid
 * (empty, or too long) and is checked by the caller. */
static char *instantiate(const struct topic *f, const struct topic *src,
                         size_t *outlen)
{
    struct level *fl = malloc((f->len + 1) * sizeof *fl);
    struct level *sl = malloc((src->len + 1) * sizeof *sl);
    size_t nf, ns, k = 0, o = 0, cap;
    char *out;

    if (!fl || !sl)
        abort();
    nf = levels(f->s + f->ps, f->len - f->ps, fl);
    ns = src->name ? levels(src->s, src->len, sl) : 0;
    cap = f->len + nf * (src->len + 1) + 1;
    out = malloc(cap);
    if (!out)
        abort();
    for (size_t i = 0; i < nf; i++) {
        const struct level *l = &fl[i];

        if (lvl_is(l, '#')) {
            if (ns == 0)
                break; /* "a/#" matches "a" */
            if (i > 0)
                out[o++] = '/';
            memcpy(out + o, src->s, src->len);
            o += src->len;
            break;
        }
        if (i > 0)
            out[o++] = '/';
        if (lvl_is(l, '+')) {
            if (ns > 0) {
                l = &sl[k % ns];
                k++;
            } else {
                static const struct level x = { "x", 1 };
                l = &x;
            }
        }
        memcpy(out + o, l->p, l->len);
        o += l->len;
    }
    free(fl);
    free(sl);
    *outlen = o;
    return out;
}

/* A string that, as a filter, is a shared subscription. */
static bool shared(const char *s, size_t len)
{
    return len >= 7 && memcmp(s, "$share/", 7) == 0;
}

static bool match_raw(const char *f, size_t flen, const char *t, size_t tlen)
{
    bool m = topic_match(f, flen, t, tlen);

    FUZZ_CHECK(m == ref_match(f, flen, t, tlen));
    return m;
}

/* What the subscription f receives: a shared one, what its filter part
 * matches. */
static bool match(const struct topic *f, const char *t, size_t tlen)
{
    return match_raw(f->s + f->ps, f->len - f->ps, t, tlen);
}

static bool covers(const struct topic *p, const struct topic *f)
{
    return topic_covers(p->s, p->len, f->s, f->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct field fld[NF];
    struct topic t[NF];
    size_t n, i, j, k;
    char *whole = fuzz_dup(data, size, 0);

    /* The whole input: both checks must agree that names are filters. */
    if (topic_name_check(whole, size) == 0 && !shared(whole, size))
        FUZZ_CHECK(topic_filter_check(whole, size) == 0);
    free(whole);

    n = fuzz_split(data, size, fld, NF);
    for (i = 0; i < n; i++) {
        t[i].s = fuzz_dup(fld[i].p, fld[i].len, 0);
        t[i].len = fld[i].len;
        t[i].name = topic_name_check(t[i].s, t[i].len) == 0;
        t[i].filter = topic_filter_check(t[i].s, t[i].len) == 0;
        t[i].ps = t[i].filter ? topic_share_prefix(t[i].s, t[i].len) : 0;
        FUZZ_CHECK(t[i].ps == 0 || shared(t[i].s, t[i].len));
        if (t[i].name) {
            FUZZ_CHECK(t[i].filter || shared(t[i].s, t[i].len));
            FUZZ_CHECK(match_raw(t[i].s, t[i].len, t[i].s, t[i].len));
        }
        if (t[i].filter)
            FUZZ_CHECK(covers(&t[i], &t[i]));
    }

    for (i = 0; i < n; i++) {
        if (!t[i].filter)
            continue;
        for (j = 0; j < n; j++) {
            bool c;

            if (!t[j].filter)
                continue;
            c = covers(&t[i], &t[j]);
            if (t[j].name && !shared(t[j].s, t[j].len)) {
                if (t[i].ps == 0)
                    FUZZ_CHECK(c == match(&t[i], t[j].s, t[j].len));
                else
                    FUZZ_CHECK(!c);
            }
            if (c) {
                /* Every name among the fields that j matches, i matches. */
                for (k = 0; k < n; k++)
                    if (t[k].name && match(&t[j], t[k].s, t[k].len))
                        FUZZ_CHECK(match(&t[i], t[k].s, t[k].len));
                for (k = 0; k < n; k++)
                    if (t[k].filter && covers(&t[j], &t[k]))
                        FUZZ_CHECK(covers(&t[i], &t[k]));
            }
            /* A name built from j's wildcards. */
            for (k = 0; k < n; k++) {
                size_t ilen;
                char *inst = instantiate(&t[j], &t[k], &ilen);
                char *exact;

                if (topic_name_check(inst, ilen) < 0) {
                    free(inst);
                    continue;
                }
                exact = fuzz_dup(inst, ilen, 0);
                free(inst);
                char first = t[j].s[t[j].ps];
                bool dollar_skip = (first == '+' || first == '#') &&
                                   exact[0] == '$';
                bool m = match(&t[j], exact, ilen);
                FUZZ_CHECK(m || dollar_skip);
                if (m && c)
                    FUZZ_CHECK(match(&t[i], exact, ilen));
                free(exact);
            }
        }
    }

    for (i = 0; i < n; i++)
        free(t[i].s);
    return 0;
}
