/* Unit tests for gateway/auth_jwt.c below libjwt: the claims rules on
 * claims that libjwt has verified (user names holding U+0000, roles
 * claims that are not arrays of strings, exact iss and aud) and the check
 * of a public key file against the configured alg. The file is included
 * to reach its statics; logging is stubbed. Table driven. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../gateway/auth_jwt.c"

enum log_level log_threshold = LOG_LVL_ERROR;

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    (void)lvl;
    (void)fmt;
}

#define NOW 1700000000
#define AUD "\"iss\":\"https://id\",\"aud\":\"mqgate\",\"exp\":1800000000"

static const char cfg_text[] =
    "{\"roles\": {\"viewer\": {}, \"operator\": {}},\n"
    " \"auth\": {\"jwt\": {\"alg\": \"HS256\", \"secret_file\": \"s\",\n"
    "   \"issuer\": \"https://id\", \"audience\": \"mqgate\",\n"
    "   \"default_roles\": [\"viewer\"]}}}\n";

static struct config *load_cfg(void)
{
    struct config *cfg = NULL;
    char err[512];

    ck_assert_msg(config_parse("t.json", cfg_text, sizeof(cfg_text) - 1,
                               &cfg, err, sizeof(err)) == 0,
                  "%s", err);
    return cfg;
}

/* ------------------------------------------------------------------------ */
/* check_claims */

static const struct {
    const char *claims;           /* JSON, "\u0000" allowed */
    const char *user;             /* NULL: refused */
    const char *roles;            /* the roles granted, comma-separated */
    const char *why;              /* part of the reason when refused */
} claim_rows[] = {
    { "{\"sub\":\"alice\",\"roles\":[\"operator\"]," AUD "}", "alice",
      "operator", NULL },
    /* the user name: all of it or nothing */
    { "{\"sub\":\"alice\\u0000x\",\"roles\":[\"operator\"]," AUD "}", NULL,
      NULL, "U+0000" },
    { "{\"sub\":\"alice\\u0000\"," AUD "}", NULL, NULL, "U+0000" },
    { "{\"sub\":\"\\u0000\"," AUD "}", NULL, NULL, "U+0000" },
    { "{\"sub\":\"\"," AUD "}", NULL, NULL, "no user name" },
    { "{\"sub\":5," AUD "}", NULL, NULL, "no user name" },
    { "{" AUD "}", NULL, NULL, "no user name" },
    /* a roles claim that is not an array of strings: default_roles */
    { "{\"sub\":\"a\"," AUD "}", "a", "viewer", NULL },
    { "{\"sub\":\"a\",\"roles\":null," AUD "}", "a", "viewer", NULL },
    { "{\"sub\":\"a\",\"roles\":5," AUD "}", "a", "viewer", NULL },
    { "{\"sub\":\"a\",\"roles\":true," AUD "}", "a", "viewer", NULL },
    { "{\"sub\":\"a\",\"roles\":\"operator\"," AUD "}", "a", "viewer", NULL },
    { "{\"sub\":\"a\",\"roles\":{\"operator\":1}," AUD "}", "a", "viewer",
      NULL },
    { "{\"sub\":\"a\",\"roles\":[1,\"operator\"]," AUD "}", "a", "viewer",
      NULL },
    { "{\"sub\":\"a\",\"roles\":[\"operator\",null]," AUD "}", "a", "viewer",
      NULL },
    { "{\"sub\":\"a\",\"roles\":[[\"operator\"]]," AUD "}", "a", "viewer",
      NULL },
    { "{\"sub\":\"a\",\"roles\":[\"operator\",{}]," AUD "}", "a", "viewer",
      NULL },
    /* an array of strings: those that name roles, once each */
    { "{\"sub\":\"a\",\"roles\":[]," AUD "}", "a", "", NULL },
    { "{\"sub\":\"a\",\"roles\":[\"nosuch\"]," AUD "}", "a", "", NULL },
    { "{\"sub\":\"a\",\"roles\":[\"operator\",\"viewer\",\"operator\"],"
      AUD "}", "a", "operator,viewer", NULL },
    { "{\"sub\":\"a\",\"roles\":[\"viewer\\u0000x\"]," AUD "}", "a", "", NULL },
    { "{\"sub\":\"a\",\"roles\":[\"operator\",\"viewer\\u0000\"]," AUD "}",
      "a", "operator", NULL },
    /* iss and aud: the whole string */
    { "{\"sub\":\"a\",\"iss\":\"https://id\\u0000x\",\"aud\":\"mqgate\","
      "\"exp\":1800000000}", NULL, NULL, "issuer" },
    { "{\"sub\":\"a\",\"iss\":\"https://i\",\"aud\":\"mqgate\","
      "\"exp\":1800000000}", NULL, NULL, "issuer" },
    { "{\"sub\":\"a\",\"iss\":\"https://id\",\"aud\":\"mqgate\\u0000\","
      "\"exp\":1800000000}", NULL, NULL, "audience" },
    { "{\"sub\":\"a\",\"iss\":\"https://id\",\"aud\":[\"x\",\"mqgate\\u0000\"],"
      "\"exp\":1800000000}", NULL, NULL, "audience" },
    { "{\"sub\":\"a\",\"iss\":\"https://id\",\"aud\":[\"x\",\"mqgate\"],"
      "\"exp\":1800000000}", "a", "viewer", NULL },
    /* time */
    { "{\"sub\":\"a\",\"iss\":\"https://id\",\"aud\":\"mqgate\"}", NULL, NULL,
      "no exp" },
    { "{\"sub\":\"a\",\"iss\":\"https://id\",\"aud\":\"mqgate\","
      "\"exp\":1600000000}", NULL, NULL, "expired" },
    { "{\"sub\":\"a\",\"nbf\":1750000000," AUD "}", NULL, NULL, "nbf" },
    { "[1]", NULL, NULL, "not readable" },
};

START_TEST(test_claims)
{
    struct config *cfg = load_cfg();
    struct jwt_identity id;
    json_t *claims = json_loads(claim_rows[_i].claims, JSON_ALLOW_NUL, NULL);
    char why[128] = "", roles[256] = "";
    int rc;

    ck_assert_msg(claims != NULL, "row %d: bad JSON", _i);
    memset(&id, 0, sizeof(id));
    rc = check_claims(cfg, claims, NOW, &id, why, sizeof(why));
    if (!claim_rows[_i].user) {
        ck_assert_msg(rc == -1, "row %d: accepted as user \"%s\"", _i,
                      id.user ? id.user : "(none)");
        ck_assert_msg(strstr(why, claim_rows[_i].why) != NULL,
                      "row %d: reason \"%s\", want \"%s\"", _i, why,
                      claim_rows[_i].why);
    } else {
        ck_assert_msg(rc == 0, "row %d: refused: %s", _i, why);
        ck_assert_str_eq(id.user, claim_rows[_i].user);
        for (size_t i = 0; i < id.n_roles; i++)
            snprintf(roles + strlen(roles), sizeof(roles) - strlen(roles),
                     "%s%s", i ? "," : "", id.roles[i]->name);
        ck_assert_msg(strcmp(roles, claim_rows[_i].roles) == 0,
                      "row %d: roles \"%s\", want \"%s\"", _i, roles,
                      claim_rows[_i].roles);
    }
    jwt_identity_clear(&id);
    json_decref(claims);
    config_free(cfg);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* the public key file */

enum pem_kind { PEM_PUBLIC, PEM_PRIVATE };

/* A new key of type (e.g. "RSA") with one parameter (bits or curve), as
 * PEM text (free it). */
static char *key_pem(const char *type, const char *curve, size_t bits,
                     enum pem_kind kind)
{
    EVP_PKEY *k = curve ? EVP_PKEY_Q_keygen(NULL, NULL, type, curve)
                : bits ? EVP_PKEY_Q_keygen(NULL, NULL, type, bits)
                       : EVP_PKEY_Q_keygen(NULL, NULL, type);
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;

    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(kind == PEM_PUBLIC
                         ? PEM_write_bio_PUBKEY(b, k)
                         : PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0,
                                                    NULL, NULL),
                     1);
    n = BIO_get_mem_data(b, &data);
    out = strndup(data, (size_t)n);
    ck_assert_ptr_nonnull(out);
    BIO_free(b);
    EVP_PKEY_free(k);
    return out;
}

static const struct {
    const char *type, *curve;
    size_t bits;
    enum pem_kind kind;
    const char *rs256, *es256;    /* NULL: fit, else part of the reason */
} key_rows[] = {
    { "RSA", NULL, 2048, PEM_PUBLIC, NULL, "EC P-256" },
    { "EC", "P-256", 0, PEM_PUBLIC, "RSA", NULL },
    { "EC", "P-384", 0, PEM_PUBLIC, "RSA", "EC P-256" },
    { "ED25519", NULL, 0, PEM_PUBLIC, "RSA", "EC P-256" },
    { "EC", "P-256", 0, PEM_PRIVATE, "PEM public key", "PEM public key" },
    { "RSA", NULL, 2048, PEM_PRIVATE, "PEM public key", "PEM public key" },
};

/* Writes text into a new temporary file; returns its path (free it). */
static char *write_tmp(const char *text, size_t len)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *path;
    int fd;

    ck_assert_int_ge(asprintf(&path, "%s/check_auth_jwt.XXXXXX", dir), 0);
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

/* jwt_verifier_load() on a public_key_file holding pem: NULL or the
 * reason it gave. */
static void expect_load(const char *alg, const char *pem, size_t len,
                        const char *want, int row)
{
    char *path = write_tmp(pem, len);
    struct cfg_jwt c = { .alg = (char *)alg, .public_key_file = path };
    char why[256] = "";
    struct jwt_verifier *v = jwt_verifier_load(&c, why, sizeof(why));

    if (want) {
        ck_assert_msg(v == NULL, "row %d: %s key accepted", row, alg);
        ck_assert_msg(strstr(why, want) != NULL,
                      "row %d, %s: reason \"%s\", want \"%s\"", row, alg,
                      why, want);
    } else {
        ck_assert_msg(v != NULL, "row %d, %s: refused: %s", row, alg, why);
    }
    jwt_verifier_free(v);
    unlink(path);
    free(path);
}

START_TEST(test_public_key)
{
    char *pem = key_pem(key_rows[_i].type, key_rows[_i].curve,
                        key_rows[_i].bits, key_rows[_i].kind);

    expect_load("RS256", pem, strlen(pem), key_rows[_i].rs256, _i);
    expect_load("ES256", pem, strlen(pem), key_rows[_i].es256, _i);
    free(pem);
}
END_TEST

START_TEST(test_public_key_garbage)
{
    static const char bad_body[] =
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n";
    char big[KEY_MAX + 2];

    expect_load("ES256", "not a key\n", 10, "PEM public key", 0);
    expect_load("RS256", bad_body, sizeof(bad_body) - 1, "PEM public key",
                1);
    expect_load("ES256", "", 0, "empty", 2);
    memset(big, 'x', sizeof(big));
    expect_load("ES256", big, sizeof(big), "larger than", 3);
}
END_TEST

START_TEST(test_secret_file)
{
    char *path = write_tmp("s3cret\n", 7);
    struct cfg_jwt c = { .alg = "HS256", .secret_file = path };
    char why[256] = "";
    struct jwt_verifier *v = jwt_verifier_load(&c, why, sizeof(why));

    ck_assert_msg(v != NULL, "%s", why);
    ck_assert_uint_eq(v->key_len, 6);
    ck_assert_str_eq(jwt_key_key(&c), "auth.jwt.secret_file");
    ck_assert_str_eq(jwt_key_file(&c), path);
    jwt_verifier_free(v);
    unlink(path);
    c.secret_file = path;
    ck_assert_ptr_null(jwt_verifier_load(&c, why, sizeof(why)));
    ck_assert_ptr_nonnull(strstr(why, "No such file"));
    free(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth_jwt");
    TCase *tc = tcase_create("claims");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, test_claims, 0,
                        (int)(sizeof(claim_rows) / sizeof(claim_rows[0])));
    suite_add_tcase(s, tc);
    tc = tcase_create("keys");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_public_key, 0,
                        (int)(sizeof(key_rows) / sizeof(key_rows[0])));
    tcase_add_test(tc, test_public_key_garbage);
    tcase_add_test(tc, test_secret_file);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
