#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "frame.h"

struct frame *frame_new(size_t payload_len)
{
    struct frame *f;
    uint8_t *p;
    size_t hdr;

    if (payload_len > UINT32_MAX - LWS_PRE - FRAME_HDR_MAX)
        return NULL;
    f = malloc(sizeof(*f) + LWS_PRE + FRAME_HDR_MAX + payload_len);
    if (!f)
        return NULL;
    f->refs = 1;
    f->payload = f->buf + LWS_PRE + FRAME_HDR_MAX;
    f->payload_len = payload_len;
    hdr = payload_len < 126 ? 2 : payload_len < 65536 ? 4 : 10;
    p = f->data = f->payload - hdr;
    *p++ = 0x81; /* FIN, text */
    if (payload_len < 126) {
        *p = (uint8_t)payload_len;
    } else if (payload_len < 65536) {
        *p++ = 126;
        *p++ = (uint8_t)(payload_len >> 8);
        *p = (uint8_t)payload_len;
    } else {
        *p++ = 127;
        for (int i = 7; i >= 0; i--)
            *p++ = (uint8_t)((uint64_t)payload_len >> (8 * i));
    }
    f->len = (uint32_t)(hdr + payload_len);
    return f;
}

struct frame *frame_new_text(const char *s, size_t len)
{
    struct frame *f = frame_new(len);

    if (f)
        memcpy(f->payload, s, len);
    return f;
}

void frame_unref(struct frame *f)
{
    if (f && --f->refs == 0)
        free(f);
}
