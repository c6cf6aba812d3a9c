/* The JSON scanner over raw text: the RFC 8259 grammar, and a walk that
 * finds where values stand. The walk answers in byte offsets into the
 * text, so that a caller can slice a value out as written (a request's
 * "payload") or tell the line it stands on (a config error). No
 * allocation, apart from jscan_valid()'s nesting stack past 1024 levels.
 *
 * The walk expects a valid text (checked by jscan_valid() or by jansson):
 * it only finds boundaries. On any other input it still stays within
 * bounds, and ends early. */
#ifndef MQG_JSCAN_H
#define MQG_JSCAN_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..n) is exactly one JSON text (RFC 8259), surrounding
 * whitespace allowed, any nesting depth; false also when the nesting
 * stack cannot grow. UTF-8 is not checked: bytes >= 0x80 are content. */
bool jscan_valid(const char *s, size_t n);

/* The offset of the first byte at or after i that is not whitespace; n
 * when there is none. */
size_t jscan_ws(const char *s, size_t n, size_t i);

/* The offset just past the value whose first byte is s[i]: a string past
 * its closing quote, an object or array past its closing bracket, a
 * number or literal before the whitespace, ',', '}' or ']' after it. */
size_t jscan_value_end(const char *s, size_t n, size_t i);

/* True when the raw string contents r[0..rlen) (escapes as written)
 * unescape to key[0..key_len). A lone surrogate escape stands for no
 * UTF-8 sequence, so it matches nothing. */
bool jscan_key_eq(const char *r, size_t rlen, const char *key,
                  size_t key_len);

/* A walk over the members of one object or the elements of one array. */
struct jscan {
    const char *s;
    size_t n, i;
    bool object;                  /* members (with keys), else elements */
    bool done;
    size_t index;
};

/* One member or element, as offsets into the text. */
struct jscan_item {
    size_t index;                 /* 0, 1, ... in text order */
    size_t key, key_len;          /* objects: the key between its quotes */
    size_t key_end;               /* objects: just past the closing quote */
    bool has_value;               /* false: a key without ':' (last item) */
    size_t val, val_end;          /* the value as written */
};

/* Starts a walk over the object or array whose opening bracket is the
 * first byte at or after s[at] that is not whitespace. Returns false when
 * no object or array starts there. */
bool jscan_open(struct jscan *j, const char *s, size_t n, size_t at);

/* Sets *it to the next member or element. Returns false at the end of the
 * container, or where the text stops being JSON. */
bool jscan_next(struct jscan *j, struct jscan_item *it);

#endif
