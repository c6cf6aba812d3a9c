#include <check.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "payload.h"

#define S(lit) lit, sizeof(lit) - 1

static const char *kind_name(enum payload_kind k)
{
    return k == PAYLOAD_JSON ? "json" : k == PAYLOAD_TEXT ? "text" : "base64";
}

/* --- classification ------------------------------------------------------
 * Decision: a \uXXXX escape naming a lone surrogate ("\ud800") fits the
 * RFC 8259 grammar, which section 8.2 leaves meaningful or not to the
 * receiver; the payload is embedded verbatim, so it is accepted as JSON.
 * Raw surrogates in UTF-8 bytes are not UTF-8 at all: base64. */

static const struct {
    const char *s;
    size_t len;
    enum payload_kind kind;
} class_rows[] = {
    { S("21.50"), PAYLOAD_JSON },
    { S(" {\"a\":1} "), PAYLOAD_JSON },
    { S("{}"), PAYLOAD_JSON },
    { S("[]"), PAYLOAD_JSON },
    { S("{ }"), PAYLOAD_JSON },
    { S("[ ]"), PAYLOAD_JSON },
    { S("0"), PAYLOAD_JSON },
    { S("-0"), PAYLOAD_JSON },
    { S("7"), PAYLOAD_JSON },
    { S("-0.0e+0"), PAYLOAD_JSON },
    { S("1E5"), PAYLOAD_JSON },
    { S("1e-5"), PAYLOAD_JSON },
    { S("1.5E+10"), PAYLOAD_JSON },
    { S("123456789012345678901234567890.25e999"), PAYLOAD_JSON },
    { S("true"), PAYLOAD_JSON },
    { S("false"), PAYLOAD_JSON },
    { S("null"), PAYLOAD_JSON },
    { S("\"\""), PAYLOAD_JSON },
    { S("\"abc\""), PAYLOAD_JSON },
    { S("\"\\ud800\""), PAYLOAD_JSON },
    { S("\"\\udc00x\\uDBFF\""), PAYLOAD_JSON },
    { S("\"\\uD83D\\uDE00\""), PAYLOAD_JSON },
    { S("\"\\u0000\""), PAYLOAD_JSON },
    { S("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uABCD\""), PAYLOAD_JSON },
    { S("\"caf\xc3\xa9 \xf0\x9f\x98\x80\""), PAYLOAD_JSON },
    { S("\"\x7f\""), PAYLOAD_JSON },
    { S("\"a/b\""), PAYLOAD_JSON },
    { S("[1,2,3]"), PAYLOAD_JSON },
    { S("[1,[2,[3,[]]],{}]"), PAYLOAD_JSON },
    { S("{\"a\":{\"b\":[1,{\"c\":null}]}}"), PAYLOAD_JSON },
    { S(" \t\r\n1\n"), PAYLOAD_JSON },
    { S("{\"a\" : 1 , \"b\" : [ true , false ] }"), PAYLOAD_JSON },
    { S("{\"a\":1,\"a\":2}"), PAYLOAD_JSON },
    { S("{\"\":\"\"}"), PAYLOAD_JSON },
    { S("\t[\r\n]\t"), PAYLOAD_JSON },
    { S(""), PAYLOAD_TEXT },
    { S(" "), PAYLOAD_TEXT },
    { S(" \t\r\n"), PAYLOAD_TEXT },
    { S("{"), PAYLOAD_TEXT },
    { S("}"), PAYLOAD_TEXT },
    { S("["), PAYLOAD_TEXT },
    { S("]"), PAYLOAD_TEXT },
    { S(","), PAYLOAD_TEXT },
    { S("01"), PAYLOAD_TEXT },
    { S("-01"), PAYLOAD_TEXT },
    { S("00"), PAYLOAD_TEXT },
    { S("+1"), PAYLOAD_TEXT },
    { S(".5"), PAYLOAD_TEXT },
    { S("-.5"), PAYLOAD_TEXT },
    { S("1."), PAYLOAD_TEXT },
    { S("1.e5"), PAYLOAD_TEXT },
    { S("1e"), PAYLOAD_TEXT },
    { S("1e+"), PAYLOAD_TEXT },
    { S("1E-"), PAYLOAD_TEXT },
    { S("-"), PAYLOAD_TEXT },
    { S("--1"), PAYLOAD_TEXT },
    { S("1-"), PAYLOAD_TEXT },
    { S("0x10"), PAYLOAD_TEXT },
    { S("1_000"), PAYLOAD_TEXT },
    { S("NaN"), PAYLOAD_TEXT },
    { S("Infinity"), PAYLOAD_TEXT },
    { S("-Infinity"), PAYLOAD_TEXT },
    { S("tru"), PAYLOAD_TEXT },
    { S("truex"), PAYLOAD_TEXT },
    { S("True"), PAYLOAD_TEXT },
    { S("nul"), PAYLOAD_TEXT },
    { S("nulll"), PAYLOAD_TEXT },
    { S("fals"), PAYLOAD_TEXT },
    { S("\"abc"), PAYLOAD_TEXT },
    { S("\""), PAYLOAD_TEXT },
    { S("\"\\\""), PAYLOAD_TEXT },
    { S("\"a\\x\""), PAYLOAD_TEXT },
    { S("\"a\\'\""), PAYLOAD_TEXT },
    { S("\"\\u12\""), PAYLOAD_TEXT },
    { S("\"\\u12G4\""), PAYLOAD_TEXT },
    { S("\"\\U0041\""), PAYLOAD_TEXT },
    { S("\"tab\there\""), PAYLOAD_TEXT },
    { S("\"nl\n\""), PAYLOAD_TEXT },
    { S("\"\0\""), PAYLOAD_TEXT },
    { S("'a'"), PAYLOAD_TEXT },
    { S("[1,]"), PAYLOAD_TEXT },
    { S("[,1]"), PAYLOAD_TEXT },
    { S("[1 2]"), PAYLOAD_TEXT },
    { S("[1:2]"), PAYLOAD_TEXT },
    { S("{\"a\":1,}"), PAYLOAD_TEXT },
    { S("{\"a\"}"), PAYLOAD_TEXT },
    { S("{\"a\":}"), PAYLOAD_TEXT },
    { S("{\"a\",1}"), PAYLOAD_TEXT },
    { S("{\"a\":1 \"b\":2}"), PAYLOAD_TEXT },
    { S("{a:1}"), PAYLOAD_TEXT },
    { S("{1:1}"), PAYLOAD_TEXT },
    { S("{'a':1}"), PAYLOAD_TEXT },
    { S("[}"), PAYLOAD_TEXT },
    { S("{]"), PAYLOAD_TEXT },
    { S("[1]]"), PAYLOAD_TEXT },
    { S("1 2"), PAYLOAD_TEXT },
    { S("{}{}"), PAYLOAD_TEXT },
    { S("[][]"), PAYLOAD_TEXT },
    { S("\xef\xbb\xbf{}"), PAYLOAD_TEXT },
    { S("\f1"), PAYLOAD_TEXT },
    { S("1\v"), PAYLOAD_TEXT },
    { S("1\xc2\xa0"), PAYLOAD_TEXT },
    { S("// note\n1"), PAYLOAD_TEXT },
    { S("hello"), PAYLOAD_TEXT },
    { S("hello world"), PAYLOAD_TEXT },
    { S("caf\xc3\xa9"), PAYLOAD_TEXT },
    { S("\0"), PAYLOAD_TEXT },
    { S("{\"a\":1}\0"), PAYLOAD_TEXT },
    { S("\xff"), PAYLOAD_BASE64 },
    { S("\x80"), PAYLOAD_BASE64 },
    { S("\xc0\xaf"), PAYLOAD_BASE64 },
    { S("{\"a\":\"\xff\"}"), PAYLOAD_BASE64 },
    { S("\"\xed\xa0\x80\""), PAYLOAD_BASE64 },
    { S("\"\xf4\x90\x80\x80\""), PAYLOAD_BASE64 },
    { S("hello\xff"), PAYLOAD_BASE64 },
    { S("\xfe\xff\0\x01"), PAYLOAD_BASE64 },
    { S("\x1f\x8b\x08\0"), PAYLOAD_BASE64 },
    { S("21.5\xc3"), PAYLOAD_BASE64 },
};

START_TEST(test_classify)
{
    /* exact-size copy: ASan then sees any read past len */
    size_t len = class_rows[_i].len;
    char *buf = malloc(len ? len : 1);
    enum payload_kind want = class_rows[_i].kind, got;

    ck_assert_ptr_nonnull(buf);
    memcpy(buf, class_rows[_i].s, len);
    got = payload_classify(buf, len);
    ck_assert_msg(got == want, "row %d (%.*s): %s, expected %s", _i,
                  (int)len, class_rows[_i].s, kind_name(got),
                  kind_name(want));
    ck_assert_msg(json_text_valid(buf, len) == (want == PAYLOAD_JSON),
                  "row %d: json_text_valid disagrees", _i);
    free(buf);
}
END_TEST

START_TEST(test_classify_single_byte)
{
    unsigned char b = (unsigned char)_i;
    enum payload_kind want = b >= 0x80                 ? PAYLOAD_BASE64
                             : b >= '0' && b <= '9'    ? PAYLOAD_JSON
                                                       : PAYLOAD_TEXT;

    ck_assert_int_eq(payload_classify(&b, 1), want);
}
END_TEST

START_TEST(test_empty)
{
    ck_assert_int_eq(payload_classify(NULL, 0), PAYLOAD_TEXT);
    ck_assert(!json_text_valid(NULL, 0));
    ck_assert(!json_text_valid("", 0));
}
END_TEST

/* --- nesting ------------------------------------------------------------- */

/* depth containers, the i-th an object when pattern(i) says so; bad_at, if
 * below depth, closes that level with the wrong bracket. */
static char *nest(size_t depth, bool (*is_object)(size_t), size_t bad_at,
                  size_t *len)
{
    char *buf = malloc(depth * 6 + 2);
    size_t n = 0;

    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < depth; i++) {
        if (is_object(i)) {
            memcpy(buf + n, "{\"k\":", 5);
            n += 5;
        } else {
            buf[n++] = '[';
        }
    }
    buf[n++] = '1';
    for (size_t i = depth; i-- > 0;) {
        bool obj = is_object(i) != (i == bad_at);
        buf[n++] = obj ? '}' : ']';
    }
    *len = n;
    return buf;
}

static bool never(size_t i)
{
    (void)i;
    return false;
}

static bool always(size_t i)
{
    (void)i;
    return true;
}

static bool alternate(size_t i)
{
    return i % 2 == 1;
}

static bool scattered(size_t i)
{
    return (i * 2654435761u) >> 7 & 1;
}

static const struct {
    size_t depth;
    bool (*is_object)(size_t);
} nest_rows[] = {
    { 1, never }, { 1, always }, { 63, alternate }, { 64, scattered },
    { 65, scattered }, { 1023, scattered }, { 1024, scattered },
    { 1025, scattered }, { 1025, always }, { 2048, alternate },
    { 2049, scattered }, { 5000, scattered }, { 70000, scattered },
    { 100000, never }, { 100000, always },
};

START_TEST(test_nesting)
{
    size_t depth = nest_rows[_i].depth, len;
    char *buf = nest(depth, nest_rows[_i].is_object, (size_t)-1, &len);

    ck_assert_msg(payload_classify(buf, len) == PAYLOAD_JSON, "depth %zu",
                  depth);
    /* a missing closer, then one too many */
    ck_assert(payload_classify(buf, len - 1) == PAYLOAD_TEXT);
    buf[len] = buf[len - 1];
    ck_assert(payload_classify(buf, len + 1) == PAYLOAD_TEXT);
    free(buf);

    /* the wrong closer at the deepest, the outermost and a middle level:
     * what the stack remembers about each level must survive growth */
    size_t at[] = { depth - 1, 0, depth / 2 };
    for (size_t k = 0; k < 3; k++) {
        buf = nest(depth, nest_rows[_i].is_object, at[k], &len);
        ck_assert_msg(payload_classify(buf, len) == PAYLOAD_TEXT,
                      "depth %zu, bad closer at %zu", depth, at[k]);
        free(buf);
    }
}
END_TEST

START_TEST(test_deep_brackets)
{
    /* 100000 '[' then 100000 ']': JSON, found without recursion */
    size_t n = 100000;
    char *buf = malloc(2 * n);

    ck_assert_ptr_nonnull(buf);
    memset(buf, '[', n);
    memset(buf + n, ']', n);
    ck_assert_int_eq(payload_classify(buf, 2 * n), PAYLOAD_JSON);
    ck_assert(json_text_valid(buf, 2 * n));
    ck_assert_int_eq(payload_classify(buf, 2 * n - 1), PAYLOAD_TEXT);
    ck_assert_int_eq(payload_classify(buf, n), PAYLOAD_TEXT);
    free(buf);
}
END_TEST

/* --- a recursive reference validator, for random inputs -------------------
 * Written apart from the real one: numbers by regular expression over the
 * longest run of number characters, structure by recursive descent. */

struct ref {
    const char *p, *end;
    regex_t number;
};

static void ref_ws(struct ref *r)
{
    while (r->p < r->end &&
           (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool ref_string(struct ref *r)
{
    r->p++;
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p++;
        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (r->p == r->end)
            return false;
        c = (unsigned char)*r->p++;
        if (c == 'u') {
            for (int k = 0; k < 4; k++, r->p++)
                if (r->p == r->end || !strchr("0123456789abcdefABCDEF",
                                              *r->p) || *r->p == '\0')
                    return false;
        } else if (!c || !strchr("\"\\/bfnrt", c)) {
            return false;
        }
    }
    return false;
}

static bool ref_value(struct ref *r);

static bool ref_container(struct ref *r, char close, bool object)
{
    r->p++;
    ref_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return true;
    }
    for (;;) {
        if (object) {
            ref_ws(r);
            if (r->p == r->end || *r->p != '"' || !ref_string(r))
                return false;
            ref_ws(r);
            if (r->p == r->end || *r->p++ != ':')
                return false;
        }
        if (!ref_value(r))
            return false;
        ref_ws(r);
        if (r->p == r->end)
            return false;
        char c = *r->p++;
        if (c == close)
            return true;
        if (c != ',')
            return false;
    }
}

static bool ref_value(struct ref *r)
{
    ref_ws(r);
    if (r->p == r->end)
        return false;
    switch (*r->p) {
    case '{': return ref_container(r, '}', true);
    case '[': return ref_container(r, ']', false);
    case '"': return ref_string(r);
    }
    for (size_t k = 0; k < 3; k++) {
        static const char *const lit[] = { "true", "false", "null" };
        size_t n = strlen(lit[k]);
        if ((size_t)(r->end - r->p) >= n && memcmp(r->p, lit[k], n) == 0) {
            r->p += n;
            return true;
        }
    }
    size_t n = strspn(r->p, "0123456789+-.eE");
    if (n == 0 || n > 63 || (size_t)(r->end - r->p) < n)
        return false;
    char tok[64];
    memcpy(tok, r->p, n);
    tok[n] = '\0';
    r->p += n;
    return regexec(&r->number, tok, 0, NULL, 0) == 0;
}

static bool ref_valid(struct ref *r, const char *s, size_t len)
{
    r->p = s;
    r->end = s + len;
    if (!ref_value(r))
        return false;
    ref_ws(r);
    return r->p == r->end;
}

START_TEST(test_random_against_reference)
{
    static const char *const piece[] = {
        "{", "}", "[", "]", ",", ":", " ", "\n", "\"k\"", "\"\"", "\"",
        "\\", "\\u00e9", "\\ud800", "\\u12", "\\n", "\\q", "1", "0", "-",
        "01", "2.5", ".", "e", "E+", "-0.5e-3", "true", "nul", "null",
        "false", "x", "\t", "\"\xc3\xa9\"", "\"a\\\"b\"", "{\"a\":1}",
        "[1,2]",
    };
    static const char number_re[] =
        "^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?$";
    struct ref r;
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    size_t valid = 0, rounds = 200000;

    ck_assert_int_eq(regcomp(&r.number, number_re, REG_EXTENDED | REG_NOSUB),
                     0);
    for (size_t i = 0; i < rounds; i++) {
        char buf[128];
        size_t len = 0, count;

        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        count = 1 + seed % 9;
        for (size_t k = 0; k < count; k++) {
            const char *p = piece[(seed >> (8 + 5 * k)) % (sizeof piece /
                                                          sizeof piece[0])];
            size_t n = strlen(p);
            memcpy(buf + len, p, n);
            len += n;
        }
        buf[len] = '\0';
        bool want = ref_valid(&r, buf, len), got = json_text_valid(buf, len);
        if (got != want)
            ck_abort_msg("\"%s\": %d, reference says %d", buf, got, want);
        valid += want;
    }
    regfree(&r.number);
    /* both outcomes well represented */
    ck_assert_uint_gt(valid, rounds / 50);
    ck_assert_uint_lt(valid, rounds / 2);
}
END_TEST

/* --- member lookup ------------------------------------------------------- */

static const struct {
    const char *json;
    const char *key;
    size_t key_len;
    const char *value; /* NULL: absent */
} member_rows[] = {
    { "{\"a\":1}", S("a"), "1" },
    { "{\"a\":1,\"b\":2}", S("b"), "2" },
    { "{\"a\":1,\"b\":2}", S("c"), NULL },
    { "{}", S("a"), NULL },
    { "{ }", S("a"), NULL },
    { "{\"ab\":1}", S("a"), NULL },
    { "{\"a\":1}", S("ab"), NULL },
    { "{\"A\":1}", S("a"), NULL },
    { "{\"\":5}", S(""), "5" },
    { "  {\"a\" :\n 21.50 }  ", S("a"), "21.50" },
    { "{\"a\":-1.5e3,\"z\":0}", S("a"), "-1.5e3" },
    { "{\"a\":true}", S("a"), "true" },
    { "{\"a\":null }", S("a"), "null" },
    { "{\"a\":\"v\"}", S("a"), "\"v\"" },
    { "{\"a\":\"}\",\"b\":1}", S("b"), "1" },
    { "{\"a\":\"x\\\"y\"}", S("a"), "\"x\\\"y\"" },
    { "{\"a\":\"\\\\\",\"b\":2}", S("b"), "2" },
    { "{\"a\":[]}", S("a"), "[]" },
    { "{\"a\":[1,{\"a\":2}]}", S("a"), "[1,{\"a\":2}]" },
    { "{\"x\":{\"a\":1}}", S("a"), NULL },
    { "{\"a\":{\"b\":2},\"b\":3}", S("b"), "3" },
    { "{\"a\":{\"b\":{\"c\":{}}},\"z\":0}", S("a"), "{\"b\":{\"c\":{}}}" },
    { "{\"a\":{\"s\":\"}]\"},\"b\":[\"[\"]}", S("b"), "[\"[\"]" },
    { "{\"b\":\"a\",\"c\":[\"a\"]}", S("a"), NULL },
    { "{\"a\":1,\"a\":2}", S("a"), "2" },
    { "{\"a\":1,\"b\":{\"a\":5},\"a\":\"x\"}", S("a"), "\"x\"" },
    { "{\"a\":[1],\"b\":0,\"a\":{}}", S("a"), "{}" },
    { "{\"k\\u0065y\":true}", S("key"), "true" },
    { "{\"\\\"q\":1}", S("\"q"), "1" },
    { "{\"a\\/b\":null}", S("a/b"), "null" },
    { "{\"a\\\\b\":0}", S("a\\b"), "0" },
    { "{\"\\n\\t\":0}", S("\n\t"), "0" },
    { "{\"\\u00e9\":1}", S("\xc3\xa9"), "1" },
    { "{\"\\u00E9\":1}", S("\xc3\xa9"), "1" },
    { "{\"\xc3\xa9\":1}", S("\xc3\xa9"), "1" },
    { "{\"\\u20ac\":1}", S("\xe2\x82\xac"), "1" },
    { "{\"\\ud83d\\ude00\":1}", S("\xf0\x9f\x98\x80"), "1" },
    { "{\"\\ud800\":1}", S("\xed\xa0\x80"), NULL },
    { "{\"\\ud800x\":1}", S("x"), NULL },
    { "{\"a\\u0000b\":1}", S("a\0b"), "1" },
    { "{\"a\\u0000b\":1}", S("a"), NULL },
    { "{\"op\":\"pub\",\"payload\":{\"on\":true},\"qos\":1}", S("payload"),
      "{\"on\":true}" },
    { "{\"payload\" : [ 1 , 2 ] , \"qos\" : 1}", S("payload"), "[ 1 , 2 ]" },
    { "[1]", S("a"), NULL },
};

START_TEST(test_member_span)
{
    const char *json = member_rows[_i].json, *want = member_rows[_i].value;
    size_t len = strlen(json), off = 99, vlen = 99;
    char *buf = malloc(len);
    int rc;

    ck_assert_ptr_nonnull(buf);
    memcpy(buf, json, len);
    ck_assert_msg(json_text_valid(buf, len), "row %d is not JSON", _i);
    rc = json_member_span(buf, len, member_rows[_i].key,
                          member_rows[_i].key_len, &off, &vlen);
    if (!want) {
        ck_assert_msg(rc == -1, "row %d: found at %zu+%zu", _i, off, vlen);
    } else {
        ck_assert_msg(rc == 0, "row %d: not found", _i);
        ck_assert_msg(vlen == strlen(want) && off + vlen <= len &&
                          memcmp(buf + off, want, vlen) == 0,
                      "row %d: got \"%.*s\", expected \"%s\"", _i,
                      (int)(off + vlen <= len ? vlen : 0), buf + off, want);
    }
    free(buf);
}
END_TEST

/* --- the walk (jscan.h) --------------------------------------------------
 * Each item as KEY=VALUE (arrays: [INDEX]=VALUE; a key without ':' as
 * KEY:), raw as written, space-separated; NULL: no container opens. */

static const struct {
    const char *json, *items;
} walk_rows[] = {
    { "{}", "" },
    { " [ ] ", "" },
    { "{\"a\":1,\"b\":[2,3]}", "a=1 b=[2,3]" },
    { "[1, \"x\" ,{}]", "[0]=1 [1]=\"x\" [2]={}" },
    { "{ \"a\" : { \"b\" : \"}\" } , \"c\" : null }",
      "a={ \"b\" : \"}\" } c=null" },
    { "{\"k\\\"q\":true}", "k\\\"q=true" },
    /* Where jansson stops on a duplicate key: the key is still named. */
    { "{\"a\":1,\"a\"", "a=1 a:" },
    { "{\"a\" 1}", "a:" },
    /* No ',': the walk ends after the item. */
    { "{\"a\":1 \"b\":2}", "a=1" },
    { "[1 2]", "[0]=1" },
    { "[1,]", "[0]=1" },
    { "{\"a\":1,}", "a=1" },
    { "\"s\"", NULL },
    { "5", NULL },
    { "", NULL },
};

START_TEST(test_walk)
{
    const char *json = walk_rows[_i].json;
    size_t len = strlen(json), o = 0;
    char got[256] = "";
    struct jscan j;
    struct jscan_item it;

    if (!jscan_open(&j, json, len, 0)) {
        ck_assert_msg(walk_rows[_i].items == NULL, "row %d: no container",
                      _i);
        return;
    }
    ck_assert_msg(walk_rows[_i].items != NULL, "row %d: opened", _i);
    while (jscan_next(&j, &it)) {
        int n;

        ck_assert(it.val <= it.val_end && it.val_end <= len);
        if (j.object)
            n = snprintf(got + o, sizeof got - o, "%s%.*s%s%.*s",
                         o ? " " : "", (int)it.key_len, json + it.key,
                         it.has_value ? "=" : ":",
                         (int)(it.val_end - it.val), json + it.val);
        else
            n = snprintf(got + o, sizeof got - o, "%s[%zu]=%.*s",
                         o ? " " : "", it.index,
                         (int)(it.val_end - it.val), json + it.val);
        ck_assert(n > 0 && (size_t)n < sizeof got - o);
        o += (size_t)n;
    }
    ck_assert(!jscan_next(&j, &it));
    ck_assert_msg(strcmp(got, walk_rows[_i].items) == 0,
                  "row %d: got \"%s\", expected \"%s\"", _i, got,
                  walk_rows[_i].items);
}
END_TEST

/* --- compaction ---------------------------------------------------------- */

static const struct {
    const char *in, *out;
} compact_rows[] = {
    { "{}", "{}" },
    { "[ ]", "[]" },
    { "\n\t\r 21.50 \n", "21.50" },
    { " { \"a\" : 1 , \"b\" : [ 1 , 2 ] } ", "{\"a\":1,\"b\":[1,2]}" },
    { "{\"a b\": \" x \"}", "{\"a b\":\" x \"}" },
    { "[\"\\\" \", 1]", "[\"\\\" \",1]" },
    { "[\"\\\\\" , \" \"]", "[\"\\\\\",\" \"]" },
    { "[true, false, null]", "[true,false,null]" },
    { "\"caf\xc3\xa9 \"", "\"caf\xc3\xa9 \"" },
    { "{\"a\":\"\\u0020 \\n\"}", "{\"a\":\"\\u0020 \\n\"}" },
    { "[ -1.5e+3 ,\n 0 ]", "[-1.5e+3,0]" },
    { "{\n  \"op\": \"pub\",\n  \"payload\": {\"t\": 21.50}\n}\n",
      "{\"op\":\"pub\",\"payload\":{\"t\":21.50}}" },
};

START_TEST(test_compact)
{
    const char *in = compact_rows[_i].in, *want = compact_rows[_i].out;
    size_t len = strlen(in);
    char *out = malloc(len);
    size_t n;

    ck_assert_ptr_nonnull(out);
    ck_assert_msg(json_text_valid(in, len), "row %d is not JSON", _i);
    n = json_compact(in, len, out);
    ck_assert_msg(n == strlen(want) && memcmp(out, want, n) == 0,
                  "row %d: got %.*s", _i, (int)n, out);
    ck_assert(json_text_valid(out, n));
    /* compact output is a fixed point */
    char *again = malloc(n);
    ck_assert_ptr_nonnull(again);
    ck_assert_uint_eq(json_compact(out, n, again), n);
    ck_assert(memcmp(again, out, n) == 0);
    free(again);
    free(out);
}
END_TEST

/* --- escaping ------------------------------------------------------------ */

static const struct {
    const char *in;
    size_t len;
    const char *out;
} escape_rows[] = {
    { S(""), "" },
    { S("abc"), "abc" },
    { S("a\"b"), "a\\\"b" },
    { S("a\\b"), "a\\\\b" },
    { S("a/b"), "a/b" },
    { S("\n\r\t\b\f"), "\\n\\r\\t\\b\\f" },
    { S("\0"), "\\u0000" },
    { S("\x01\x1f"), "\\u0001\\u001f" },
    { S("\x0b"), "\\u000b" },
    { S("\x1b[0m"), "\\u001b[0m" },
    { S("\x7f"), "\x7f" },
    { S("caf\xc3\xa9"), "caf\xc3\xa9" },
    { S("\xe2\x80\xa8\xe2\x80\xa9"), "\xe2\x80\xa8\xe2\x80\xa9" },
    { S("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80" },
    { S("line1\nline2\"end\\"), "line1\\nline2\\\"end\\\\" },
    { S("\"\"\\\\"), "\\\"\\\"\\\\\\\\" },
    { S("x\0y\0"), "x\\u0000y\\u0000" },
};

START_TEST(test_escape)
{
    const char *in = escape_rows[_i].in, *want = escape_rows[_i].out;
    size_t len = escape_rows[_i].len, elen = json_escaped_len(in, len);
    char *out = malloc(elen + 2);
    size_t n;

    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(elen, strlen(want));
    n = json_escape(in, len, out + 1);
    ck_assert_uint_eq(n, elen);
    ck_assert_msg(memcmp(out + 1, want, n) == 0, "row %d: got %.*s", _i,
                  (int)n, out + 1);
    out[0] = out[n + 1] = '"';
    ck_assert(json_text_valid(out, n + 2));
    free(out);
}
END_TEST

START_TEST(test_escape_every_ascii_byte)
{
    /* Each byte below 0x80, alone and among others, quoted after escaping,
     * is one JSON string; only '"', '\\' and controls grow. */
    char in[3] = { 'a', (char)_i, 'z' };
    char out[3 * 6 + 2];
    size_t n = json_escape(in, 3, out + 1);

    ck_assert_uint_eq(n, json_escaped_len(in, 3));
    ck_assert_uint_eq(n == 3, _i >= 0x20 && _i != '"' && _i != '\\');
    out[0] = out[n + 1] = '"';
    ck_assert(json_text_valid(out, n + 2));
}
END_TEST

static Suite *payload_suite(void)
{
    Suite *s = suite_create("payload");
    TCase *tc;

    tc = tcase_create("classify");
    tcase_add_loop_test(tc, test_classify, 0,
                        (int)(sizeof class_rows / sizeof class_rows[0]));
    tcase_add_loop_test(tc, test_classify_single_byte, 0, 256);
    tcase_add_test(tc, test_empty);
    suite_add_tcase(s, tc);

    tc = tcase_create("nesting");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_nesting, 0,
                        (int)(sizeof nest_rows / sizeof nest_rows[0]));
    tcase_add_test(tc, test_deep_brackets);
    suite_add_tcase(s, tc);

    tc = tcase_create("reference");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_random_against_reference);
    suite_add_tcase(s, tc);

    tc = tcase_create("member_span");
    tcase_add_loop_test(tc, test_member_span, 0,
                        (int)(sizeof member_rows / sizeof member_rows[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("walk");
    tcase_add_loop_test(tc, test_walk, 0,
                        (int)(sizeof walk_rows / sizeof walk_rows[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("compact");
    tcase_add_loop_test(tc, test_compact, 0,
                        (int)(sizeof compact_rows / sizeof compact_rows[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("escape");
    tcase_add_loop_test(tc, test_escape, 0,
                        (int)(sizeof escape_rows / sizeof escape_rows[0]));
    tcase_add_loop_test(tc, test_escape_every_ascii_byte, 0, 0x80);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(payload_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
