/* Payload classification and the JSON the protocol needs; the scanning
 * itself is jscan.c's. */
#include <string.h>

#include "base64.h"
#include "jscan.h"
#include "payload.h"
#include "utf8.h"

bool json_text_valid(const void *buf, size_t len)
{
    if (len == 0)
        return false;
    return utf8_valid(buf, len) && jscan_valid(buf, len);
}

enum payload_kind payload_classify(const void *buf, size_t len)
{
    if (len == 0)
        return PAYLOAD_TEXT;
    if (!utf8_valid(buf, len))
        return PAYLOAD_BASE64;
    /* jscan_valid() is false also when the nesting stack cannot grow; the
     * bytes are then still faithfully carried as text. */
    return jscan_valid(buf, len) ? PAYLOAD_JSON : PAYLOAD_TEXT;
}

int json_member_span(const char *buf, size_t len, const char *key,
                     size_t key_len, size_t *off, size_t *vlen)
{
    struct jscan j;
    struct jscan_item it;
    int found = -1;

    if (!jscan_open(&j, buf, len, 0) || !j.object)
        return -1;
    while (jscan_next(&j, &it)) {
        if (it.has_value && it.val_end > it.val &&
            jscan_key_eq(buf + it.key, it.key_len, key, key_len)) {
            *off = it.val;
            *vlen = it.val_end - it.val;
            found = 0;
        }
    }
    return found;
}

/* --- output -------------------------------------------------------------- */

size_t json_compact(const char *in, size_t len, char *out)
{
    size_t i = 0, o = 0;

    while ((i = jscan_ws(in, len, i)) < len) {
        char c = in[i++];

        out[o++] = c;
        if (c != '"')
            continue;
        while (i < len) {
            c = in[i++];
            out[o++] = c;
            if (c == '"')
                break;
            if (c == '\\' && i < len)
                out[o++] = in[i++];
        }
    }
    return o;
}

/* Bytes each input byte grows by when escaped: 1 for the two-character
 * escapes, 5 for \u00XX; bytes >= 0x80 are copied. */
static const unsigned char esc_extra[256] = {
    5, 5, 5, 5, 5, 5, 5, 5, 1, 1, 1, 5, 1, 1, 5, 5,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
};

size_t json_escaped_len(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = len;

    for (size_t i = 0; i < len; i++)
        n += esc_extra[u[i]];
    return n;
}

size_t json_escape(const char *s, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, run = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = u[i];
        if (esc_extra[c] == 0)
            continue;
        if (i > run) {
            memcpy(out + o, s + run, i - run);
            o += i - run;
        }
        run = i + 1;
        out[o++] = '\\';
        switch (c) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '\b': out[o++] = 'b'; break;
        case '\f': out[o++] = 'f'; break;
        case '\n': out[o++] = 'n'; break;
        case '\r': out[o++] = 'r'; break;
        case '\t': out[o++] = 't'; break;
        default:
            out[o++] = 'u';
            out[o++] = '0';
            out[o++] = '0';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
            break;
        }
    }
    if (len > run) {
        memcpy(out + o, s + run, len - run);
        o += len - run;
    }
    return o;
}

size_t payload_body(const void *p, size_t plen, enum payload_kind kind,
                    char *out)
{
    static const char kjson[] = "\"payload\":", ktext[] = "\"text\":\"",
                      kb64[] = "\"base64\":\"";
    const char *key = kind == PAYLOAD_JSON   ? kjson
                      : kind == PAYLOAD_TEXT ? ktext
                                             : kb64;
    size_t klen = strlen(key), n;

    if (!out) {
        n = kind == PAYLOAD_JSON   ? plen
            : kind == PAYLOAD_TEXT ? json_escaped_len(p, plen) + 1
                                   : base64_encoded_len(plen) + 1;
        return klen + n;
    }
    memcpy(out, key, klen);
    n = klen;
    switch (kind) {
    case PAYLOAD_JSON:
        if (plen)
            memcpy(out + n, p, plen);
        n += plen;
        break;
    case PAYLOAD_TEXT:
        n += json_escape(p, plen, out + n);
        out[n++] = '"';
        break;
    default:
        n += base64_encode(p, plen, out + n);
        out[n++] = '"';
        break;
    }
    return n;
}
