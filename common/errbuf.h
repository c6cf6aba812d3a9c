/* The caller's error buffer that common/ fills: appends that never
 * overflow it and keep it NUL-terminated, truncating what does not fit. */
#ifndef MQG_ERRBUF_H
#define MQG_ERRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct errbuf {
    char *buf;        /* may be NULL: nothing is written */
    size_t len, pos;  /* its size, and the bytes written so far */
};

/* True while there is room for at least one more byte. */
bool errbuf_room(const struct errbuf *e);

void errbuf_putn(struct errbuf *e, const char *s, size_t n);
void errbuf_puts(struct errbuf *e, const char *s);
void errbuf_vprintf(struct errbuf *e, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void errbuf_printf(struct errbuf *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
