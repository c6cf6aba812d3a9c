#include "base64.h"

static const char enc[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Sextet of each byte, -1 for bytes outside the alphabet ('=' included). */
static const signed char dec[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

size_t base64_encoded_len(size_t n)
{
    return (n / 3 + (n % 3 != 0)) * 4;
}

size_t base64_encode(const void *in, size_t n, char *out)
{
    const unsigned char *s = in;
    char *o = out;
    size_t i = 0;

    for (; n - i >= 3; i += 3) {
        unsigned long v = (unsigned long)s[i] << 16 |
                          (unsigned long)s[i + 1] << 8 | s[i + 2];
        *o++ = enc[v >> 18];
        *o++ = enc[(v >> 12) & 63];
        *o++ = enc[(v >> 6) & 63];
        *o++ = enc[v & 63];
    }
    if (n - i == 1) {
        *o++ = enc[s[i] >> 2];
        *o++ = enc[(s[i] & 3) << 4];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        *o++ = enc[s[i] >> 2];
        *o++ = enc[(s[i] & 3) << 4 | s[i + 1] >> 4];
        *o++ = enc[(s[i + 1] & 15) << 2];
        *o++ = '=';
    }
    return (size_t)(o - out);
}

int base64_decode(const char *in, size_t n, void *out, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    unsigned char *o = out;

    if (n % 4 != 0)
        return -1;
    if (n == 0) {
        *outlen = 0;
        return 0;
    }

    size_t last = n - 4;
    for (size_t i = 0; i < last; i += 4) {
        int a = dec[s[i]], b = dec[s[i + 1]], c = dec[s[i + 2]],
            d = dec[s[i + 3]];
        if ((a | b | c | d) < 0)
            return -1;
        unsigned long v = (unsigned long)a << 18 | (unsigned long)b << 12 |
                          (unsigned long)c << 6 | (unsigned long)d;
        *o++ = (unsigned char)(v >> 16);
        *o++ = (unsigned char)(v >> 8);
        *o++ = (unsigned char)v;
    }

    const unsigned char *q = s + last;
    int a = dec[q[0]], b = dec[q[1]], c = dec[q[2]], d = dec[q[3]];
    if ((a | b) < 0)
        return -1;
    if (q[2] == '=' && q[3] == '=') {
        if (b & 15)
            return -1; /* bits that the padding says are unused */
        *o++ = (unsigned char)(a << 2 | b >> 4);
    } else if (q[3] == '=') {
        if (c < 0 || (c & 3))
            return -1;
        *o++ = (unsigned char)(a << 2 | b >> 4);
        *o++ = (unsigned char)((b & 15) << 4 | c >> 2);
    } else {
        if ((c | d) < 0)
            return -1;
        *o++ = (unsigned char)(a << 2 | b >> 4);
        *o++ = (unsigned char)((b & 15) << 4 | c >> 2);
        *o++ = (unsigned char)((c & 3) << 6 | d);
    }
    *outlen = (size_t)(o - (unsigned char *)out);
    return 0;
}

/* The sextet of c in the URL-safe alphabet (RFC 4648 section 5), or -1. */
static int url_sextet(unsigned char c)
{
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    if (c == '+' || c == '/')
        return -1;
    return dec[c];
}

size_t base64url_decoded_max(size_t n)
{
    return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
}

int base64url_decode(const char *in, size_t n, void *out, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    unsigned char *o = out;
    unsigned long v = 0;
    size_t i, bits = 0;

    if (n % 4 == 1)
        return -1;
    for (i = 0; i < n; i++) {
        int x = url_sextet(s[i]);

        if (x < 0)
            return -1;
        v = (v << 6 | (unsigned long)x) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (unsigned char)(v >> bits);
        }
    }
    /* the bits left over are unused and must be zero (one encoding per
     * value) */
    if (v & ((1ul << bits) - 1))
        return -1;
    *outlen = (size_t)(o - (unsigned char *)out);
    return 0;
}
