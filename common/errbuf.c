#include <stdio.h>
#include <string.h>

#include "errbuf.h"

bool errbuf_room(const struct errbuf *e)
{
    return e->buf && e->pos + 1 < e->len;
}

void errbuf_putn(struct errbuf *e, const char *s, size_t n)
{
    size_t room;

    if (!errbuf_room(e))
        return;
    room = e->len - 1 - e->pos;
    if (n > room)
        n = room;
    memcpy(e->buf + e->pos, s, n);
    e->pos += n;
    e->buf[e->pos] = '\0';
}

void errbuf_puts(struct errbuf *e, const char *s)
{
    errbuf_putn(e, s, strlen(s));
}

void errbuf_vprintf(struct errbuf *e, const char *fmt, va_list ap)
{
    size_t room;
    int n;

    if (!errbuf_room(e))
        return;
    room = e->len - e->pos;
    n = vsnprintf(e->buf + e->pos, room, fmt, ap);
    if (n < 0)
        n = 0;
    e->pos += (size_t)n < room ? (size_t)n : room - 1;
}

void errbuf_printf(struct errbuf *e, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    errbuf_vprintf(e, fmt, ap);
    va_end(ap);
}
