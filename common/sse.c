#include <stdbool.h>
#include <string.h>

#include "sse.h"

#define OP_HEAD "{\"op\":\""
#define OP_HEAD_LEN (sizeof(OP_HEAD) - 1)
#define OP_MAX 32

const char *sse_op(const char *json, size_t len, size_t *op_len)
{
    if (len > OP_HEAD_LEN && memcmp(json, OP_HEAD, OP_HEAD_LEN) == 0) {
        const char *name = json + OP_HEAD_LEN;
        size_t max = len - OP_HEAD_LEN > OP_MAX ? OP_MAX : len - OP_HEAD_LEN;
        size_t n = 0;

        while (n < max && ((name[n] >= 'a' && name[n] <= 'z') ||
                           name[n] == '_'))
            n++;
        if (n > 0 && n < max && name[n] == '"') {
            *op_len = n;
            return name;
        }
    }
    *op_len = 7;
    return "message";
}

static size_t dec_len(uint64_t v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

size_t sse_encoded_len(const char *json, size_t len, const char *epoch,
                       uint64_t seq)
{
    size_t op_len, n;

    sse_op(json, len, &op_len);
    n = 7 + op_len + 1 + 6 + len + 2;   /* "event: " op "\n" "data: " .. */
    if (seq)
        n += 4 + strlen(epoch) + 1 + dec_len(seq) + 1;
    return n;
}

size_t sse_encode(const char *json, size_t len, const char *epoch,
                  uint64_t seq, char *out)
{
    size_t op_len;
    const char *op = sse_op(json, len, &op_len);
    char *w = out;

    memcpy(w, "event: ", 7);
    w += 7;
    memcpy(w, op, op_len);
    w += op_len;
    *w++ = '\n';
    if (seq) {
        size_t el = strlen(epoch), dl = dec_len(seq);
        uint64_t v = seq;

        memcpy(w, "id: ", 4);
        w += 4;
        memcpy(w, epoch, el);
        w += el;
        *w++ = ':';
        for (size_t i = dl; i-- > 0; v /= 10)
            w[i] = (char)('0' + v % 10);
        w += dl;
        *w++ = '\n';
    }
    memcpy(w, "data: ", 6);
    w += 6;
    memcpy(w, json, len);
    w += len;
    *w++ = '\n';
    *w++ = '\n';
    return (size_t)(w - out);
}

static bool epoch_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int sse_parse_id(const char *s, size_t len, size_t *epoch_len,
                 uint64_t *seq)
{
    const char *colon = memchr(s, ':', len);
    size_t el, i;
    uint64_t v = 0;

    if (!colon)
        return -1;
    el = (size_t)(colon - s);
    if (el == 0 || el > 64 || el + 1 == len || len - el - 1 > 19)
        return -1;
    for (i = 0; i < el; i++)
        if (!epoch_char(s[i]))
            return -1;
    for (i = el + 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > INT64_MAX)
        return -1;
    *epoch_len = el;
    *seq = v;
    return 0;
}
