/* Unit tests for what chooses a token's key before libjwt verifies it:
 * base64url (common/base64.c), the JWS compact form and header
 * (common/jws.c), JWK Sets and the agreement of a key with a token's alg
 * (common/jwk.c), and the keys OpenSSL builds of them (gateway/jwks.c,
 * gateway/jwk_pem.c). Table driven. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "jwk.h"
#include "jwks.h"
#include "jws.h"

#define RSA_N \
    "olN8p9hV9XrbaR82XM1tcl_ab4o-E5S9MvF7dL-t91g8DkgoIRZIWTqh0LHtNmTWc1cG" \
    "UrYhPWanfKv5fyhMAVMa8ZBs9g2ADbdsgfhW9dEzsmGmYuS-4kJpywTpu16k3RJsmpj8" \
    "cpA0mccfjXoHhA4AfJeg2Asob067IOkrNTecOTUerOJHRm6bOj8Nd222KBgXqna-ygKB" \
    "LJtutWuZygZEO0vBGfAky_nY8qKZP4XfiBuj6Z_V2RPutyXCrs9cu22UVVocEuX8xIlt" \
    "mNujDdpclLX-iy64dOhqpaoPBwI1O2MC5W842hU1lo_fjxXarCdLrp1aQsw6cZoRvDpv" \
    "vw"
#define RSA1024_N \
    "yzvEHuzKJDoYMMQ_rinzVRsUdWLJXNSbYwEnxfrKKPpT1MUJAvICD_oaUdFDaMOEw92e" \
    "5ZgSQYtEMq9jFsEDSQwqKojqo1fZ1mCF6nKdoHtWmHC9ACc7qesThQdwsxtbUsSGdR7C" \
    "LWqhsv-7Sh3WMEIZgjVehEKqny8QnP0YB90"
#define P256_X "9bFbKaFdxovAKFptFHXhZNTvKbbXMmxIn45M6VwSFLI"
#define P256_Y "PKH6j5iZufU5A61gisfK2x2CJTi8N3322PIqRvpZi1A"
#define P256_Y_OFF "PKH7j5iZufU5A61gisfK2x2CJTi8N3322PIqRvpZi1A"
#define P384_X "Zxf2dob9lJvO3Fm_R9ICeJFJlsM2kdFlZMNeexLVkT2fOva4ucSPosMWoexxBsv1"
#define P384_Y "lMhhQQIf-ffnZhsWGcMUCeV7aSwBjw_IgyTHyT0aysZSI_Xn73gdt8Cc2L3CRnxh"

#define RSA(extra) "{\"kty\":\"RSA\",\"n\":\"" RSA_N "\",\"e\":\"AQAB\"" extra "}"
#define EC256(extra) \
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" P256_X "\",\"y\":\"" P256_Y \
    "\"" extra "}"
#define EC384(extra) \
    "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"" P384_X "\",\"y\":\"" P384_Y \
    "\"" extra "}"
#define SET(keys) "{\"keys\":[" keys "]}"

/* ------------------------------------------------------------------------ */
/* base64url */

static const struct {
    const char *in;
    const char *out;              /* NULL: refused */
    size_t out_len;
} b64url_rows[] = {
    {"", "", 0},
    {"Zg", "f", 1},
    {"Zm8", "fo", 2},
    {"Zm9v", "foo", 3},
    {"Zm9vYmFy", "foobar", 6},
    {"-_8", "\xfb\xff", 2},
    {"____", "\xff\xff\xff", 3},
    {"Zg==", NULL, 0},            /* no padding in JOSE */
    {"Zm9vY", NULL, 0},           /* 5 characters: no whole byte */
    {"Zh", NULL, 0},              /* unused bits set */
    {"Zm9=", NULL, 0},
    {"+/8", NULL, 0},             /* the standard alphabet */
    {"Zm 9v", NULL, 0},
};

START_TEST(test_base64url)
{
    const char *in = b64url_rows[_i].in;
    unsigned char out[16];
    size_t n = 99;
    int rc = base64url_decode(in, strlen(in), out, &n);

    ck_assert_uint_le(base64url_decoded_max(strlen(in)), sizeof(out));
    if (!b64url_rows[_i].out) {
        ck_assert_msg(rc < 0, "row %d accepted", _i);
        return;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(n, b64url_rows[_i].out_len);
    ck_assert(memcmp(out, b64url_rows[_i].out, n) == 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* JWS compact form and header */

/* base64url of {"alg":"RS256","kid":"k1"} etc., made with python */
#define H_RS256_K1 "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0"
#define H_ES256 "eyJhbGciOiJFUzI1NiJ9"
#define H_NONE "eyJhbGciOiJub25lIn0"
#define H_CRIT "eyJhbGciOiJSUzI1NiIsImNyaXQiOlsiZXhwIl19"
#define H_NOALG "eyJraWQiOiJrMSJ9"
#define H_DUP "eyJhbGciOiJSUzI1NiIsImFsZyI6IkhTMjU2In0"
#define H_KIDNUM "eyJhbGciOiJSUzI1NiIsImtpZCI6NX0"
#define H_ARRAY "WyJSUzI1NiJd"

static const struct {
    const char *token;
    bool form;
    const char *alg;              /* NULL: header refused */
    const char *kid;              /* NULL: none */
    const char *why;
} jws_rows[] = {
    {H_RS256_K1 ".e30.c2ln", true, "RS256", "k1", NULL},
    {H_RS256_K1 ".e30.", true, "RS256", "k1", NULL},
    {H_ES256 ".e30.c2ln", true, "ES256", NULL, NULL},
    {H_NONE ".e30.", true, "none", NULL, NULL}, /* refused by the alg list */
    {H_CRIT ".e30.c2ln", true, NULL, NULL, "crit"},
    {H_NOALG ".e30.c2ln", true, NULL, NULL, "no alg"},
    {H_DUP ".e30.c2ln", true, NULL, NULL, "not a JSON object"},
    {H_KIDNUM ".e30.c2ln", true, NULL, NULL, "kid"},
    {H_ARRAY ".e30.c2ln", true, NULL, NULL, "not a JSON object"},
    {"opaque-session-token", false, NULL, NULL, "compact form"},
    {"a.b", false, NULL, NULL, "compact form"},
    {"a.b.c.d", false, NULL, NULL, "compact form"},
    {".e30.c2ln", false, NULL, NULL, "compact form"},
    {H_ES256 "..c2ln", false, NULL, NULL, "compact form"},
    {H_ES256 ".e30.c2l=", false, NULL, NULL, "compact form"},
    {"Zg==.e30.c2ln", false, NULL, NULL, "compact form"},
    {"Zh.e30.c2ln", true, NULL, NULL, "not readable"},
};

START_TEST(test_jws)
{
    struct jws_header h;
    const char *why = NULL;
    int rc;

    ck_assert_int_eq(jws_compact_form(jws_rows[_i].token), jws_rows[_i].form);
    rc = jws_header_parse(jws_rows[_i].token, &h, &why);
    if (!jws_rows[_i].alg) {
        ck_assert_msg(rc < 0, "row %d accepted", _i);
        ck_assert_msg(strstr(why, jws_rows[_i].why), "row %d: %s", _i, why);
        return;
    }
    ck_assert_msg(rc == 0, "row %d: %s", _i, why);
    ck_assert_str_eq(h.alg, jws_rows[_i].alg);
    ck_assert_int_eq(h.has_kid, jws_rows[_i].kid != NULL);
    if (jws_rows[_i].kid)
        ck_assert_str_eq(h.kid, jws_rows[_i].kid);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* JWK Sets */

static const struct {
    const char *doc;
    int n;                        /* keys taken; -1: refused */
    const char *note;             /* in the lines, NULL: no line */
} set_rows[] = {
    {SET(RSA(",\"kid\":\"r1\",\"use\":\"sig\",\"alg\":\"RS256\"")), 1, NULL},
    {SET(RSA(",\"kid\":\"r1\"") "," EC256(",\"kid\":\"e1\"") "," EC384(",\"kid\":\"e2\"")), 3, NULL},
    {SET(RSA("")), 1, NULL},      /* one key without kid */
    {SET(""), 0, NULL},
    /* left out, each with its reason */
    {SET(RSA(",\"kid\":\"r1\",\"use\":\"enc\"")), 0, "use is not sig"},
    {SET(RSA(",\"kid\":\"r1\",\"key_ops\":[\"encrypt\"]")), 0, "key_ops"},
    {SET(RSA(",\"kid\":\"r1\",\"key_ops\":[\"verify\"]")), 1, NULL},
    {SET(RSA(",\"kid\":\"r1\",\"alg\":\"PS256\"")), 0, "PS*"},
    {SET(RSA(",\"kid\":\"r1\",\"alg\":\"ES256\"")), 0, "not RS256"},
    {SET(RSA(",\"kid\":\"r1\",\"d\":\"AQAB\"")), 0, "private key"},
    {SET("{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"" RSA1024_N "\",\"e\":\"AQAB\"}"), 0, "2048"},
    {SET("{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"" RSA_N "\",\"e\":\"AQ\"}"), 0, "exponent"},
    {SET("{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"" RSA_N "\",\"e\":\"AQA\"}"), 0, "exponent"},
    {SET("{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"" RSA_N "\"}"), 0, "missing"},
    {SET("{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"a+b\",\"e\":\"AQAB\"}"), 0, "base64url"},
    {SET("{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"}"), 0, "kty oct"},
    {SET("{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\",\"x\":\"AA\"}"), 0, "EdDSA"},
    {SET("{\"kty\":\"XYZ\",\"kid\":\"x\"}"), 0, "kty not"},
    {SET("{\"kid\":\"x\"}"), 0, "no kty"},
    {SET("5"), 0, "not a JSON object"},
    {SET(EC256(",\"kid\":\"e\",\"alg\":\"ES384\"")), 0, "its curve"},
    {SET("{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-192\",\"x\":\"AA\",\"y\":\"AA\"}"), 0, "crv"},
    {SET("{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-256\",\"x\":\"" P384_X "\",\"y\":\"" P384_Y "\"}"), 0, "size"},
    {SET(RSA(",\"kid\":\"same\"") "," EC256(",\"kid\":\"same\"")), 1, "another key's"},
    {SET(RSA(",\"kid\":5")), 0, "kid"},
    {SET(RSA(",\"kid\":\"r\",\"use\":5")), 0, "use"},
    /* not a set */
    {"[]", -1, "not a JWK Set"},
    {"{\"keys\":{}}", -1, "not a JWK Set"},
    {"{\"kty\":\"RSA\"}", -1, "not a JWK Set"},
    {"{\"keys\":[]", -1, "line 1"},
    {"{\"keys\":[],\"keys\":[]}", -1, "duplicate"},
};

START_TEST(test_set)
{
    char lines[2048] = "";
    struct errbuf e = {.buf = lines, .len = sizeof(lines)};
    struct jwk_set *set = NULL;
    int rc = jwk_set_parse(set_rows[_i].doc, strlen(set_rows[_i].doc), &set,
                           &e);

    if (set_rows[_i].n < 0) {
        ck_assert_msg(rc < 0, "row %d accepted", _i);
        ck_assert_ptr_null(set);
    } else {
        ck_assert_msg(rc == 0, "row %d: %s", _i, lines);
        ck_assert_uint_eq(set->n, (size_t)set_rows[_i].n);
    }
    if (set_rows[_i].note)
        ck_assert_msg(strstr(lines, set_rows[_i].note), "row %d: %s", _i,
                      lines);
    else
        ck_assert_msg(!lines[0], "row %d: %s", _i, lines);
    jwk_set_free(set);
}
END_TEST

START_TEST(test_set_many)
{
    char doc[64 * 1024], lines[1024] = "";
    struct errbuf e = {.buf = lines, .len = sizeof(lines)};
    struct jwk_set *set;
    size_t o = 0;

    o += (size_t)snprintf(doc + o, sizeof(doc) - o, "{\"keys\":[");
    for (int i = 0; i < JWK_SET_MAX_KEYS + 2; i++)
        o += (size_t)snprintf(doc + o, sizeof(doc) - o,
                              "%s" EC256(",\"kid\":\"k%d\""), i ? "," : "", i);
    snprintf(doc + o, sizeof(doc) - o, "]}");
    ck_assert_int_eq(jwk_set_parse(doc, strlen(doc), &set, &e), 0);
    ck_assert_uint_eq(set->n, JWK_SET_MAX_KEYS);
    ck_assert_ptr_nonnull(strstr(lines, "more keys than"));
    jwk_set_free(set);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* a key against a token's alg */

static const struct {
    const char *key;              /* a JWK */
    const char *alg;
    bool agrees;
} agree_rows[] = {
    {RSA(""), "RS256", true},
    {RSA(""), "RS384", true},
    {RSA(""), "RS512", true},
    {RSA(",\"alg\":\"RS256\""), "RS256", true},
    {RSA(",\"alg\":\"RS256\""), "RS512", false}, /* the key's own alg */
    {RSA(""), "ES256", false},                   /* kty */
    {RSA(""), "HS256", false},                   /* algorithm confusion */
    {EC256(""), "ES256", true},
    {EC256(""), "ES384", false},                 /* crv */
    {EC256(""), "RS256", false},
    {EC256(""), "HS256", false},
    {EC384(""), "ES384", true},
    {EC384(",\"alg\":\"ES384\""), "ES384", true},
    {EC384(""), "ES512", false},
};

START_TEST(test_agrees)
{
    char doc[4096], lines[256] = "";
    struct errbuf e = {.buf = lines, .len = sizeof(lines)};
    struct jwk_set *set;

    snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", agree_rows[_i].key);
    ck_assert_int_eq(jwk_set_parse(doc, strlen(doc), &set, &e), 0);
    ck_assert_uint_eq(set->n, 1);
    ck_assert_msg((jwk_agrees(&set->keys[0], agree_rows[_i].alg) == NULL) ==
                      agree_rows[_i].agrees,
                  "row %d", _i);
    jwk_set_free(set);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* choosing by kid */

START_TEST(test_find)
{
    static const char one[] = SET(RSA(",\"kid\":\"r1\""));
    static const char nokid[] = SET(RSA(""));
    static const char two[] =
        SET(RSA(",\"kid\":\"r1\"") "," EC256(",\"kid\":\"e1\""));
    struct errbuf e = {0};
    struct jwk_set *a, *b, *c;
    size_t i = 99;

    ck_assert_int_eq(jwk_set_parse(one, strlen(one), &a, &e), 0);
    ck_assert_int_eq(jwk_set_parse(nokid, strlen(nokid), &b, &e), 0);
    ck_assert_int_eq(jwk_set_parse(two, strlen(two), &c, &e), 0);
    ck_assert_int_eq(jwk_set_find(a, "r1", &i), JWK_FOUND);
    ck_assert_uint_eq(i, 0);
    ck_assert_int_eq(jwk_set_find(a, NULL, &i), JWK_FOUND);
    ck_assert_int_eq(jwk_set_find(a, "r2", &i), JWK_UNKNOWN_KID);
    ck_assert_int_eq(jwk_set_find(b, NULL, &i), JWK_FOUND);
    ck_assert_int_eq(jwk_set_find(b, "r1", &i), JWK_UNKNOWN_KID);
    ck_assert_int_eq(jwk_set_find(c, "e1", &i), JWK_FOUND);
    ck_assert_uint_eq(i, 1);
    /* no kid with several keys: never a guess */
    ck_assert_int_eq(jwk_set_find(c, NULL, &i), JWK_NO_KID);
    jwk_set_free(a);
    jwk_set_free(b);
    jwk_set_free(c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* the keys OpenSSL makes of them */

START_TEST(test_jwks_openssl)
{
    static const char good[] =
        SET(RSA(",\"kid\":\"r1\"") "," EC256(",\"kid\":\"e1\"") ","
            EC384(",\"kid\":\"e2\""));
    static const char off_curve[] = SET(
        "{\"kty\":\"EC\",\"kid\":\"bad\",\"crv\":\"P-256\",\"x\":\"" P256_X
        "\",\"y\":\"" P256_Y_OFF "\"}," EC256(",\"kid\":\"e1\""));
    static const char none_left[] = SET(
        "{\"kty\":\"EC\",\"kid\":\"bad\",\"crv\":\"P-256\",\"x\":\"" P256_X
        "\",\"y\":\"" P256_Y_OFF "\"}");
    char lines[1024] = "";
    struct errbuf e = {.buf = lines, .len = sizeof(lines)};
    struct jws_header h = {.alg = "ES256", .kid = "e1", .has_kid = true};
    const unsigned char *pem;
    const char *why;
    struct jwks *set;
    size_t len;

    set = jwks_new(good, strlen(good), &e);
    ck_assert_msg(set != NULL, "%s", lines);
    ck_assert_uint_eq(jwks_count(set), 3);
    ck_assert_int_eq(jwks_pick(set, &h, &pem, &len, &why), JWKS_KEY);
    ck_assert_ptr_nonnull(strstr((const char *)pem, "BEGIN PUBLIC KEY"));
    ck_assert_uint_eq(len, strlen((const char *)pem));
    memcpy(h.alg, "RS256", 6);
    ck_assert_int_eq(jwks_pick(set, &h, &pem, &len, &why), JWKS_REFUSED);
    memcpy(h.kid, "r1", 3);
    ck_assert_int_eq(jwks_pick(set, &h, &pem, &len, &why), JWKS_KEY);
    memcpy(h.kid, "zz", 3);
    ck_assert_int_eq(jwks_pick(set, &h, &pem, &len, &why),
                     JWKS_UNKNOWN_KID);
    h.has_kid = false;
    ck_assert_int_eq(jwks_pick(set, &h, &pem, &len, &why), JWKS_REFUSED);
    jwks_free(set);

    /* OpenSSL refuses a point off the curve: that key is left out */
    lines[0] = '\0';
    e.pos = 0;
    set = jwks_new(off_curve, strlen(off_curve), &e);
    ck_assert_ptr_nonnull(set);
    ck_assert_uint_eq(jwks_count(set), 1);
    ck_assert_msg(strstr(lines, "\"bad\": left out: OpenSSL"), "%s", lines);
    jwks_free(set);
    lines[0] = '\0';
    e.pos = 0;
    ck_assert_ptr_null(jwks_new(none_left, strlen(none_left), &e));
    ck_assert_msg(strstr(lines, "no usable key"), "%s", lines);
}
END_TEST

static Suite *jwk_suite(void)
{
    Suite *s = suite_create("jwk");
    TCase *tc = tcase_create("jwk");

    tcase_add_loop_test(tc, test_base64url, 0,
                        (int)(sizeof b64url_rows / sizeof b64url_rows[0]));
    tcase_add_loop_test(tc, test_jws, 0,
                        (int)(sizeof jws_rows / sizeof jws_rows[0]));
    tcase_add_loop_test(tc, test_set, 0,
                        (int)(sizeof set_rows / sizeof set_rows[0]));
    tcase_add_test(tc, test_set_many);
    tcase_add_loop_test(tc, test_agrees, 0,
                        (int)(sizeof agree_rows / sizeof agree_rows[0]));
    tcase_add_test(tc, test_find);
    tcase_add_test(tc, test_jwks_openssl);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(jwk_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
