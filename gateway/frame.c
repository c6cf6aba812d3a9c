#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "frame.h"
#include "props.h"
#include "sse.h"

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
    f->topic_key = 0;
    f->seq = 0;
    f->sse = NULL;
    f->sse_len = 0;
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
    if (f && --f->refs == 0) {
        if (f->sse)
            free(f->sse - LWS_PRE);
        free(f);
    }
}

const char *frame_sse(struct frame *f, const char *epoch, size_t *len)
{
    if (!f->sse) {
        const char *json = (const char *)f->payload;
        size_t n = sse_encoded_len(json, f->payload_len, epoch, f->seq);

        char *buf = malloc(LWS_PRE + n);

        /* with libwebsockets' headroom: a big event is written from here */
        if (!buf)
            return NULL;
        f->sse = buf + LWS_PRE;
        f->sse_len = sse_encode(json, f->payload_len, epoch, f->seq, f->sse);
    }
    *len = f->sse_len;
    return f->sse;
}

uint64_t frame_topic_key(const char *topic, size_t len)
{
    uint64_t h = 1469598103934665603ULL;  /* FNV-1a */

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)topic[i]) * 1099511628211ULL;
    return h ? h : 1;
}

/* Appends the decimal digits of v at w; returns how many. */
static size_t put_u64(char *w, uint64_t v)
{
    char d[20];
    size_t n = 0;

    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        w[i] = d[n - 1 - i];
    return n;
}

static size_t put_lit(char *w, const char *s)
{
    size_t n = strlen(s);

    memcpy(w, s, n);
    return n;
}

/* The msg frame's tail: ,"qos":Q,"retain":R[,"seq":S,"ts":T
 * [,"history":true]]} into out (96 bytes). Built without snprintf: a
 * replay builds one per message per session. */
static size_t msg_tail(char *out, const struct frame_msg *m,
                       const struct frame_pos *pos)
{
    char *w = out;

    w += put_lit(w, ",\"qos\":");
    *w++ = (char)('0' + (m->qos & 3));
    w += put_lit(w, m->retain ? ",\"retain\":true" : ",\"retain\":false");
    if (pos && pos->seq) {
        w += put_lit(w, ",\"seq\":");
        w += put_u64(w, pos->seq);
        w += put_lit(w, ",\"ts\":");
        w += put_u64(w, pos->ts_ms);
        if (pos->history)
            w += put_lit(w, ",\"history\":true");
    }
    *w++ = '}';
    return (size_t)(w - out);
}

struct frame *frame_new_msg(const struct frame_msg *m,
                            const struct frame_pos *pos)
{
    static const char head[] = "{\"op\":\"msg\",\"topic\":\"";
    char tail[96];
    size_t esc_t = json_escaped_len(m->topic, m->topic_len), body, tail_len;
    size_t props = 0;
    struct frame *f;
    char *w;

    body = payload_body(m->payload, m->payload_len, m->kind, NULL);
    if (m->props_len)
        props = props_json(m->props, m->props_len, m->mount, m->mount_len,
                           0, NULL);
    tail_len = msg_tail(tail, m, pos);
    f = frame_new(sizeof(head) - 1 + esc_t + 2 + body + props + tail_len);
    if (!f)
        return NULL;
    w = (char *)f->payload;
    memcpy(w, head, sizeof(head) - 1);
    w += sizeof(head) - 1;
    w += json_escape(m->topic, m->topic_len, w);
    *w++ = '"';
    *w++ = ',';
    w += payload_body(m->payload, m->payload_len, m->kind, w);
    if (props)
        w += props_json(m->props, m->props_len, m->mount, m->mount_len, 0,
                        w);
    memcpy(w, tail, tail_len);
    if (pos)
        f->seq = pos->seq;
    return f;
}
