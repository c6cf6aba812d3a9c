/* Error lines of the config loader (config_int.h). jansson does not
 * remember where keys stand, so jscan walks the raw text to the value a
 * path names when an error needs it (only then: a valid file is never
 * walked), and the line is that of the value's first byte. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config_int.h"
#include "jscan.h"

/* Control characters would break the one-error-a-line format. */
static void put_escaped(struct errbuf *eb, const char *s, size_t n)
{
    size_t i, run = 0;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch >= 0x20 && ch != 0x7f)
            continue;
        errbuf_putn(eb, s + run, i - run);
        errbuf_printf(eb, "\\u%04x", ch);
        run = i + 1;
    }
    errbuf_putn(eb, s + run, n - run);
}

void config_put_path(struct errbuf *eb, const struct path *p)
{
    if (!p)
        return;
    config_put_path(eb, p->up);
    if (p->key) {
        if (p->up)
            errbuf_puts(eb, ".");
        put_escaped(eb, p->key, strlen(p->key));
    } else {
        errbuf_printf(eb, "[%zu]", p->index);
    }
}

/* "NAME:LINE: " */
static void put_name_line(struct ctx *c, int line)
{
    put_escaped(&c->eb, c->name, strlen(c->name));
    errbuf_printf(&c->eb, ":%d: ", line);
}

/* The line of text[off], from 1. */
static int line_at(const struct ctx *c, size_t off)
{
    const char *q = c->text, *end = c->text + off;
    int line = 1;

    while ((q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
        line++;
        q++;
    }
    return line;
}

#define LOCATE_MAX_DEPTH 8

/* Finds the value at path p: sets [*start, *end) to its raw text and
 * returns true. Otherwise *start is where the deepest enclosing value
 * found starts (so that a missing key is reported where its object
 * stands), the span is empty, and it returns false. */
static bool locate(const struct ctx *c, const struct path *p, size_t *start,
                   size_t *end)
{
    const struct path *comp[LOCATE_MAX_DEPTH];
    size_t depth = 0, d, at;
    const struct path *q;

    for (q = p; q; q = q->up)
        depth++;
    for (q = p; depth > LOCATE_MAX_DEPTH; depth--)
        q = q->up;
    for (d = depth; d > 0; d--, q = q->up)
        comp[d - 1] = q;

    at = jscan_ws(c->text, c->len, 0);
    *start = *end = at;
    for (d = 0; d < depth; d++) {
        const struct path *want = comp[d];
        struct jscan j;
        struct jscan_item it;
        bool hit = false;

        if (!jscan_open(&j, c->text, c->len, at) ||
            j.object != (want->key != NULL))
            return false;
        while (!hit && jscan_next(&j, &it))
            hit = it.has_value &&
                  (want->key ? jscan_key_eq(c->text + it.key, it.key_len,
                                            want->key, strlen(want->key))
                             : it.index == want->index);
        if (!hit)
            return false;
        *start = *end = at = it.val;
    }
    *end = jscan_value_end(c->text, c->len, at);
    return true;
}

/* Appends the path of the object member whose key token ends at byte off
 * (where jansson stops on a duplicate key). Keys are shown as written. */
static void put_path_at(struct ctx *c, size_t off)
{
    struct jscan j;
    struct jscan_item it;
    size_t at = 0;
    bool first = true;

    for (;;) {
        if (!jscan_open(&j, c->text, c->len, at))
            return;
        do {
            if (!jscan_next(&j, &it))
                return;
            if (j.object && it.key_end >= off) {
                if (!first)
                    errbuf_puts(&c->eb, ".");
                put_escaped(&c->eb, c->text + it.key, it.key_len);
                return;
            }
            if (!it.has_value)
                return;
        } while (off > it.val_end);
        if (!j.object) {
            errbuf_printf(&c->eb, "[%zu]", it.index);
        } else {
            if (!first)
                errbuf_puts(&c->eb, ".");
            put_escaped(&c->eb, c->text + it.key, it.key_len);
        }
        first = false;
        at = it.val;
    }
}

/* The value as written: short values verbatim, long ones cut. */
static void put_value(struct ctx *c, size_t start, size_t end)
{
    const char *s = c->text + start;
    size_t n = end - start, cut = 48;

    if (n <= 64 && !memchr(s, '\n', n)) {
        put_escaped(&c->eb, s, n);
    } else if (s[0] == '[' || s[0] == '{') {
        errbuf_puts(&c->eb, s[0] == '[' ? "[...]" : "{...}");
    } else {
        while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
            cut--;
        put_escaped(&c->eb, s, cut);
        errbuf_puts(&c->eb, "...");
    }
}

void config_err(struct ctx *c, const struct path *p, bool got,
                const char *fmt, ...)
{
    size_t start, end;
    bool found;
    va_list ap;

    c->nerr++;
    if (!errbuf_room(&c->eb))
        return;
    found = locate(c, p, &start, &end);
    put_name_line(c, line_at(c, start));
    if (p)
        config_put_path(&c->eb, p);
    else
        errbuf_puts(&c->eb, "(top level)");
    errbuf_puts(&c->eb, ": ");
    va_start(ap, fmt);
    errbuf_vprintf(&c->eb, fmt, ap);
    va_end(ap);
    if (got && found && end > start) {
        errbuf_puts(&c->eb, ", got ");
        put_value(c, start, end);
    }
    errbuf_puts(&c->eb, "\n");
}

void config_file_err(struct ctx *c, const char *fmt, ...)
{
    va_list ap;

    c->nerr++;
    put_escaped(&c->eb, c->name, strlen(c->name));
    errbuf_puts(&c->eb, ": ");
    va_start(ap, fmt);
    errbuf_vprintf(&c->eb, fmt, ap);
    va_end(ap);
    errbuf_puts(&c->eb, "\n");
}

void config_nul_err(struct ctx *c, size_t off)
{
    c->nerr++;
    put_name_line(c, line_at(c, off));
    errbuf_puts(&c->eb, "syntax error: NUL byte\n");
}

void config_json_err(struct ctx *c, const json_error_t *je)
{
    enum json_error_code code = json_error_code(je);

    /* jansson fails some allocations without an error text. */
    if (code == json_error_out_of_memory || je->text[0] == '\0') {
        c->oom = true;
        return;
    }
    c->nerr++;
    put_name_line(c, je->line);
    if (code == json_error_duplicate_key) {
        put_path_at(c, (size_t)je->position);
        errbuf_puts(&c->eb, ": duplicate key\n");
    } else {
        errbuf_puts(&c->eb, "syntax error: ");
        put_escaped(&c->eb, je->text, strlen(je->text));
        errbuf_puts(&c->eb, "\n");
    }
}
