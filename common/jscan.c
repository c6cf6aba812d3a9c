/* The JSON scanner (jscan.h). Both halves work on cursors into the raw
 * text: the validator follows the grammar with an explicit stack of open
 * containers, the walk only finds boundaries (it counts brackets, so the
 * depth of a document costs no memory). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"

typedef const unsigned char *cursor;

/* --- nesting stack: one bit per open container, 1 = object ------------- */

#define STACK_INLINE_WORDS 16 /* 1024 levels before any allocation */

struct bitstack {
    uint64_t *bits;
    size_t depth, cap; /* in bits */
    uint64_t inline_bits[STACK_INLINE_WORDS];
};

static void stack_init(struct bitstack *st)
{
    st->bits = st->inline_bits;
    st->depth = 0;
    st->cap = STACK_INLINE_WORDS * 64;
}

static void stack_free(struct bitstack *st)
{
    if (st->bits != st->inline_bits)
        free(st->bits);
}

static int stack_push(struct bitstack *st, bool object)
{
    if (st->depth == st->cap) {
        size_t words = st->cap / 64 * 2;
        uint64_t *nb;
        if (st->bits == st->inline_bits) {
            nb = malloc(words * sizeof *nb);
            if (nb)
                memcpy(nb, st->inline_bits, sizeof st->inline_bits);
        } else {
            nb = realloc(st->bits, words * sizeof *nb);
        }
        if (!nb)
            return -1;
        st->bits = nb;
        st->cap = words * 64;
    }
    uint64_t mask = (uint64_t)1 << (st->depth % 64);
    if (object)
        st->bits[st->depth / 64] |= mask;
    else
        st->bits[st->depth / 64] &= ~mask;
    st->depth++;
    return 0;
}

static bool stack_top_is_object(const struct bitstack *st)
{
    size_t d = st->depth - 1;
    return (st->bits[d / 64] >> (d % 64)) & 1;
}

/* --- lexical pieces ------------------------------------------------------ */

static bool is_ws(unsigned c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(unsigned c)
{
    return c - '0' < 10;
}

static int hex_val(unsigned c)
{
    if (c - '0' < 10)
        return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6)
        return (int)(c - 'a' + 10);
    return -1;
}

static cursor skip_ws(cursor p, cursor end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

/* p is just past the opening quote; returns just past the closing one, or
 * NULL. UTF-8 is checked by the caller over the whole text, so bytes >= 0x80
 * are plain content here. */
static cursor scan_string(cursor p, cursor end)
{
    while (p < end) {
        unsigned c = *p++;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (c == '"')
            return p;
        if (c < 0x20 || p == end)
            return NULL;
        switch (*p++) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
        case 't':
            break;
        case 'u':
            /* Any four hex digits: a lone surrogate escape fits the RFC 8259
             * grammar (its section 8.2 leaves the meaning open). */
            if (end - p < 4 || (hex_val(p[0]) | hex_val(p[1]) |
                                hex_val(p[2]) | hex_val(p[3])) < 0)
                return NULL;
            p += 4;
            break;
        default:
            return NULL;
        }
    }
    return NULL;
}

static cursor scan_digits(cursor p, cursor end)
{
    while (p < end && is_digit(*p))
        p++;
    return p;
}

/* number = [ "-" ] ( "0" / 1-9 *DIGIT ) [ "." 1*DIGIT ]
 *          [ ( "e" / "E" ) [ "+" / "-" ] 1*DIGIT ] */
static cursor scan_number(cursor p, cursor end)
{
    if (*p == '-')
        p++;
    if (p == end || !is_digit(*p))
        return NULL;
    if (*p++ != '0')
        p = scan_digits(p, end);
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            return NULL;
        p = scan_digits(p, end);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return NULL;
        p = scan_digits(p, end);
    }
    return p;
}

static cursor scan_literal(cursor p, cursor end, const char *lit, size_t n)
{
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
        return NULL;
    return p + n;
}

/* --- validation ---------------------------------------------------------- */

/* The grammar of RFC 8259 over p[0..end), UTF-8 aside. Iterative: the only
 * memory that grows with depth is the bit stack. */
static bool scan_text(cursor p, cursor end)
{
    struct bitstack st;
    bool ok = false;

    stack_init(&st);

value:
    p = skip_ws(p, end);
    if (p == end)
        goto out;
    switch (*p) {
    case '{':
        if (stack_push(&st, true) < 0)
            goto out;
        p = skip_ws(p + 1, end);
        if (p < end && *p == '}') {
            p++;
            st.depth--;
            break;
        }
        goto key;
    case '[':
        if (stack_push(&st, false) < 0)
            goto out;
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']') {
            p++;
            st.depth--;
            break;
        }
        goto value;
    case '"':
        p = scan_string(p + 1, end);
        break;
    case 't':
        p = scan_literal(p, end, "true", 4);
        break;
    case 'f':
        p = scan_literal(p, end, "false", 5);
        break;
    case 'n':
        p = scan_literal(p, end, "null", 4);
        break;
    default:
        p = scan_number(p, end);
        break;
    }
    if (!p)
        goto out;

after_value:
    p = skip_ws(p, end);
    if (st.depth == 0) {
        ok = p == end;
        goto out;
    }
    if (p == end)
        goto out;
    if (*p == ',') {
        p++;
        if (stack_top_is_object(&st))
            goto key;
        goto value;
    }
    if (*p == (stack_top_is_object(&st) ? '}' : ']')) {
        p++;
        st.depth--;
        goto after_value;
    }
    goto out;

key:
    p = skip_ws(p, end);
    if (p == end || *p != '"')
        goto out;
    p = scan_string(p + 1, end);
    if (!p)
        goto out;
    p = skip_ws(p, end);
    if (p == end || *p != ':')
        goto out;
    p++;
    goto value;

out:
    stack_free(&st);
    return ok;
}

bool jscan_valid(const char *s, size_t n)
{
    return scan_text((cursor)s, (cursor)s + n);
}

/* --- the walk -------------------------------------------------------------
 * Over text already known to be valid, so it only finds boundaries; it
 * still stays within bounds whatever the input. */

static cursor skip_string(cursor p, cursor end)
{
    while (p < end) {
        unsigned c = *p++;
        if (c == '"')
            return p;
        if (c == '\\' && p < end)
            p++;
    }
    return end;
}

static cursor skip_value(cursor p, cursor end)
{
    size_t depth = 0;

    if (p < end && *p == '"')
        return skip_string(p + 1, end);
    if (p < end && (*p == '{' || *p == '[')) {
        while (p < end) {
            unsigned c = *p++;
            if (c == '"')
                p = skip_string(p, end);
            else if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return p;
        }
        return end;
    }
    while (p < end && !is_ws(*p) && *p != ',' && *p != '}' && *p != ']')
        p++;
    return p;
}

static size_t utf8_put(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static long hex4(cursor p, cursor end)
{
    if (end - p < 4)
        return -1;
    int a = hex_val(p[0]), b = hex_val(p[1]), c = hex_val(p[2]),
        d = hex_val(p[3]);
    if ((a | b | c | d) < 0)
        return -1;
    return (long)a << 12 | b << 8 | c << 4 | d;
}

bool jscan_key_eq(const char *r, size_t rlen, const char *key,
                  size_t key_len)
{
    cursor k = (cursor)r, kend = k + rlen;
    const unsigned char *want = (const unsigned char *)key;
    size_t j = 0;

    if (!memchr(k, '\\', (size_t)(kend - k)))
        return (size_t)(kend - k) == key_len && memcmp(k, key, key_len) == 0;
    while (k < kend) {
        unsigned char dec[4];
        size_t n = 1;
        if (*k != '\\') {
            dec[0] = *k++;
        } else {
            if (kend - k < 2)
                return false;
            k += 2;
            switch (k[-1]) {
            case 'b': dec[0] = '\b'; break;
            case 'f': dec[0] = '\f'; break;
            case 'n': dec[0] = '\n'; break;
            case 'r': dec[0] = '\r'; break;
            case 't': dec[0] = '\t'; break;
            case 'u': {
                long cp = hex4(k, kend);
                if (cp < 0)
                    return false;
                k += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && kend - k >= 6 &&
                    k[0] == '\\' && k[1] == 'u') {
                    long lo = hex4(k + 2, kend);
                    if (lo >= 0xDC00 && lo < 0xE000) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        k += 6;
                    }
                }
                if (cp >= 0xD800 && cp < 0xE000)
                    return false;
                n = utf8_put((uint32_t)cp, dec);
                break;
            }
            default: dec[0] = k[-1]; break; /* '"', '\\', '/' */
            }
        }
        if (key_len - j < n || memcmp(want + j, dec, n) != 0)
            return false;
        j += n;
    }
    return j == key_len;
}

size_t jscan_ws(const char *s, size_t n, size_t i)
{
    cursor u = (cursor)s;

    return (size_t)(skip_ws(u + i, u + n) - u);
}

size_t jscan_value_end(const char *s, size_t n, size_t i)
{
    cursor u = (cursor)s;

    return (size_t)(skip_value(u + i, u + n) - u);
}

bool jscan_open(struct jscan *j, const char *s, size_t n, size_t at)
{
    at = jscan_ws(s, n, at);
    if (at >= n || (s[at] != '{' && s[at] != '['))
        return false;
    j->s = s;
    j->n = n;
    j->i = at + 1;
    j->object = s[at] == '{';
    j->done = false;
    j->index = 0;
    return true;
}

bool jscan_next(struct jscan *j, struct jscan_item *it)
{
    cursor u = (cursor)j->s;
    size_t n = j->n, i;

    if (j->done)
        return false;
    /* Until a ',' shows that another item follows. */
    j->done = true;
    memset(it, 0, sizeof *it);
    it->index = j->index;
    i = jscan_ws(j->s, n, j->i);
    if (j->object) {
        if (i >= n || u[i] != '"')
            return false;
        it->key = i + 1;
        it->key_end = (size_t)(skip_string(u + i + 1, u + n) - u);
        it->key_len = it->key_end > it->key ? it->key_end - it->key - 1 : 0;
        i = jscan_ws(j->s, n, it->key_end);
        if (i >= n || u[i] != ':') {
            it->val = it->val_end = i;
            return true;
        }
        i = jscan_ws(j->s, n, i + 1);
    } else if (i >= n || u[i] == ']') {
        return false;
    }
    it->has_value = true;
    it->val = i;
    it->val_end = jscan_value_end(j->s, n, i);
    i = jscan_ws(j->s, n, it->val_end);
    if (i < n && u[i] == ',') {
        j->i = i + 1;
        j->done = false;
        j->index++;
    }
    return true;
}
