#include <stdint.h>
#include <string.h>

#include "utf8.h"

#define HIGH_BITS 0x8080808080808080ULL

bool utf8_valid(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    const unsigned char *end = p + len;

    while (p < end) {
        /* Payloads and topics are mostly ASCII: test eight bytes at once. */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, sizeof w);
            if (w & HIGH_BITS)
                break;
            p += 8;
        }
        while (p < end && *p < 0x80)
            p++;
        if (p == end)
            return true;

        unsigned c = *p;
        size_t left = (size_t)(end - p);
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
        size_t n;

        if (c < 0xC2) {
            return false; /* stray continuation, or overlong 2-byte lead */
        } else if (c < 0xE0) {
            n = 2;
        } else if (c < 0xF0) {
            n = 3;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* U+D800..U+DFFF */
        } else if (c < 0xF5) {
            n = 4;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return false;
        }
        if (left < n || p[1] < lo || p[1] > hi)
            return false;
        for (size_t i = 2; i < n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += n;
    }
    return true;
}

bool utf8_mqtt_valid(const void *buf, size_t len)
{
    const unsigned char *p = buf;

    if (len == 0)
        return true;          /* buf may be NULL */
    if (!utf8_valid(buf, len))
        return false;
    for (size_t i = 0; i < len;) {
        uint32_t c = p[i];
        size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;

        if (n > 1) {
            c &= 0x3F >> (n - 1);
            for (size_t k = 1; k < n; k++)
                c = c << 6 | (p[i + k] & 0x3F);
        }
        if (c <= 0x1F || (c >= 0x7F && c <= 0x9F) ||
            (c >= 0xFDD0 && c <= 0xFDEF) || (c & 0xFFFE) == 0xFFFE)
            return false;
        i += n;
    }
    return true;
}
