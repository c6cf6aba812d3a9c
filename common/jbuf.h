/* A growable byte buffer for building JSON text with exact lengths: no
 * fixed-size buffer, no truncation, no snprintf return value taken for a
 * length. A failed allocation sets a flag that every later call keeps;
 * check it once at the end. I/O-free. */
#ifndef MQG_JBUF_H
#define MQG_JBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JBUF_INLINE 512

struct jbuf {
    char *p;                  /* inline_ or malloc'd */
    size_t len, cap;
    bool failed;              /* out of memory: the contents are partial */
    char inline_[JBUF_INLINE];
};

/* Starts an empty buffer; small texts need no allocation. */
void jbuf_init(struct jbuf *b);

/* Frees what b holds; b may be used again after jbuf_init(). */
void jbuf_free(struct jbuf *b);

/* Appends s[0..n) verbatim. */
void jbuf_raw(struct jbuf *b, const void *s, size_t n);

/* Appends the NUL-terminated s verbatim. */
void jbuf_lit(struct jbuf *b, const char *s);

/* Appends s[0..n), valid UTF-8, as a JSON string: quoted and escaped. */
void jbuf_str(struct jbuf *b, const char *s, size_t n);

/* Appends n bytes for the caller to write at the pointer returned, or
 * NULL when out of memory. */
char *jbuf_room(struct jbuf *b, size_t n);

/* Appends v in decimal. */
void jbuf_int(struct jbuf *b, int64_t v);

#endif
