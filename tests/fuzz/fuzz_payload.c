/* libFuzzer target: payload classification, the JSON scanner, member
 * lookup, compaction, escaping and base64, with jansson as the second
 * opinion.
 *
 * Invariants, on arbitrary bytes X:
 *   - payload_classify(X) is JSON exactly when json_text_valid(X), TEXT
 *     exactly when X is empty or valid UTF-8 but not JSON, BASE64 exactly
 *     when X is not UTF-8;
 *   - whatever jansson parses (any value, escaped NULs allowed; inputs
 *     with a raw NUL byte are left out, as jansson skips some of those),
 *     json_text_valid accepts (the converse does not hold: jansson refuses
 *     lone surrogate escapes, huge numbers and deep nesting, which RFC 8259
 *     allows);
 *   - json_compact of a valid text is valid, no longer, a fixed point of
 *     itself, and equal (json_equal) to the original when jansson reads it;
 *   - for each member of a top-level object that jansson reads,
 *     json_member_span finds bytes that jansson reads as the same value;
 *     json_member_span stays in bounds on any input;
 *   - json_escape writes json_escaped_len bytes, which in quotes jansson
 *     reads back as X (for valid UTF-8 X);
 *   - base64: decode(encode(X)) == X, and when decode(X) succeeds,
 *     encode(decode(X)) == X (the decoder is strict, so canonical). */
#include <stdbool.h>

#include <jansson.h>

#include "base64.h"
#include "fuzz.h"
#include "payload.h"
#include "utf8.h"

static json_t *jload(const char *s, size_t len)
{
    json_error_t e;

    return json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
}

static void check_members(const char *text, size_t len, json_t *root)
{
    const char *key;
    size_t key_len;
    json_t *v;

    if (!json_is_object(root))
        return;
    json_object_keylen_foreach(root, key, key_len, v) {
        size_t off = 0, vlen = 0;

        FUZZ_CHECK(json_member_span(text, len, key, key_len, &off,
                                    &vlen) == 0);
        FUZZ_CHECK(off <= len && vlen <= len - off && vlen > 0);
        json_t *got = jload(text + off, vlen);
        FUZZ_CHECK(got != NULL);
        FUZZ_CHECK(json_equal(got, v));
        json_decref(got);
    }
}

static void check_json(const char *text, size_t len)
{
    bool valid = json_text_valid(text, len);
    enum payload_kind kind = payload_classify(text, len);
    bool utf8 = utf8_valid(text, len);
    /* jansson 2.14 skips a raw NUL byte between tokens ("[1\0]" loads as
     * [1]), which RFC 8259 does not allow: no second opinion on those. */
    json_t *root = memchr(text, '\0', len) ? NULL : jload(text, len);

    if (len == 0)
        FUZZ_CHECK(kind == PAYLOAD_TEXT && !valid);
    else if (!utf8)
        FUZZ_CHECK(kind == PAYLOAD_BASE64 && !valid);
    else
        FUZZ_CHECK(kind == (valid ? PAYLOAD_JSON : PAYLOAD_TEXT));
    if (root)
        FUZZ_CHECK(valid);

    /* Whatever the input, the lookup stays within it. */
    {
        size_t off = 0, vlen = 0;

        if (json_member_span(text, len, "payload", 7, &off, &vlen) == 0)
            FUZZ_CHECK(off <= len && vlen <= len - off);
    }

    if (valid) {
        char *out = fuzz_dup(text, len, 0);
        size_t n = json_compact(text, len, out);
        char *c = fuzz_dup(out, n, 0);

        free(out);
        FUZZ_CHECK(n <= len);
        FUZZ_CHECK(json_text_valid(c, n));
        char *again = fuzz_dup(c, n, 0);
        FUZZ_CHECK(json_compact(c, n, again) == n);
        FUZZ_CHECK(memcmp(again, c, n) == 0);
        free(again);
        if (root) {
            json_t *croot = jload(c, n);

            FUZZ_CHECK(croot != NULL);
            FUZZ_CHECK(json_equal(root, croot));
            json_decref(croot);
            check_members(text, len, root);
            check_members(c, n, root);
        }
        free(c);
    }
    json_decref(root);
}

static void check_escape(const char *s, size_t len)
{
    size_t need, n;
    char *out;
    json_t *back;

    if (!utf8_valid(s, len))
        return;
    need = json_escaped_len(s, len);
    out = malloc(need + 2);
    if (!out)
        abort();
    out[0] = '"';
    n = json_escape(s, len, out + 1);
    FUZZ_CHECK(n == need);
    out[n + 1] = '"';
    FUZZ_CHECK(json_text_valid(out, n + 2));
    back = jload(out, n + 2);
    FUZZ_CHECK(back && json_is_string(back));
    FUZZ_CHECK(json_string_length(back) == len);
    FUZZ_CHECK(memcmp(json_string_value(back), s, len) == 0);
    json_decref(back);
    free(out);
}

static void check_base64(const char *s, size_t len)
{
    size_t elen = base64_encoded_len(len), n, dlen = 0;
    char *enc = malloc(elen ? elen : 1), *dec;

    if (!enc)
        abort();
    n = base64_encode(s, len, enc);
    FUZZ_CHECK(n == elen && n % 4 == 0);
    dec = malloc(n / 4 * 3 + 1);
    if (!dec)
        abort();
    FUZZ_CHECK(base64_decode(enc, n, dec, &dlen) == 0);
    FUZZ_CHECK(dlen == len && memcmp(dec, s, len) == 0);
    free(dec);
    free(enc);

    /* The input itself as base64: canonical when accepted. */
    dec = malloc(len / 4 * 3 + 1);
    if (!dec)
        abort();
    if (base64_decode(s, len, dec, &dlen) == 0) {
        FUZZ_CHECK(dlen <= len / 4 * 3);
        enc = malloc(base64_encoded_len(dlen) + 1);
        if (!enc)
            abort();
        n = base64_encode(dec, dlen, enc);
        FUZZ_CHECK(n == len && memcmp(enc, s, len) == 0);
        free(enc);
    }
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_dup(data, size, 0);

    check_json(s, size);
    check_escape(s, size);
    check_base64(s, size);
    free(s);
    return 0;
}
