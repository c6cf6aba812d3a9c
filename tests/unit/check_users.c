/* Unit tests for common/users.c: good files, every kind of bad line with
 * the exact error line expected (and never the hash or the secret in it),
 * duplicates, comments, CRLF, base32, lookups, caps, users_load(), and
 * every allocation failing in turn. */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "users.h"

/* Real hashes of "secret" (mkpasswd), in pieces, and one 20-byte TOTP
 * secret (the RFC 6238 seed "12345678901234567890"). */
#define Y_SALT "GShq010JGHNH0Ib7Fx051."
#define Y_SUM42 "PsI/zaiTHDRBzmB8TqvYB44gDYhl7zmbWCb.GfKp9d"
#define Y_SUM Y_SUM42 "2"
#define YES "$y$j9T$" Y_SALT "$" Y_SUM
#define S_SALT "iNOX9efNcvWYWF62"
#define S_SUM85 "yNsl2g.iSV6j3HGwROdIWg2rUeUYsgQpF1SoDeD5T/sA8iQ7xEUW.lT3wD3" \
                "/YVjSx9Lx25yiFu7k55B3LexYC"
#define S_SUM S_SUM85 "0"
#define SHA "$6$" S_SALT "$" S_SUM
#define R_REST "mT.pmlocW2zOBMaq$WE58fX/znE1deZ/GzqubR7hNsCWXgEJf4PNdTNc" \
               "BhFJd3XkPXflsu45aRcHGApn.G5wps0OpemnmHSp.l/7b00"
#define SHA_R "$6$rounds=10000$" R_REST
#define B_REST52 "NTPRk/9ggko4D9yxD0rXp.7R7I/EjLRstwqC/dLI7ATtKvazg0rd"
#define B_REST B_REST52 "C"
#define BCB "$2b$05$" B_REST
#define BCA "$2a$05$j68ReJr6FwliwZZvz.firemqlJg4yMiPXQbprQ90SB4BckPHNOFjm"
#define BCY "$2y$05$" B_REST
#define SEED_B32 "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
#define SEED "12345678901234567890"

#define PLAIN "plaintext or unsupported hash (use mqgate-passwd or mkpasswd -m yescrypt)"
#define FORMAT "expected name:hash:roles[:totp_base32]"
#define UA "user \"alice\": "
#define B32_BAD UA "TOTP secret is not valid base32"

/* A 257-byte and a 256-byte name. */
#define N64 "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
#define N256 N64 N64 N64 N64
#define N257 N256 "n"
/* A role name one byte over USERS_ROLE_MAX. */
#define R65 "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"

static int parse(const char *text, size_t len, struct users **u, char *err,
                 size_t errlen)
{
    return users_parse("users", text, len, u, err, errlen);
}

static struct users *parse_ok(const char *text)
{
    struct users *u = NULL;
    char err[4096];
    int rc = parse(text, strlen(text), &u, err, sizeof err);

    ck_assert_msg(rc == 0, "unexpected errors:\n%s", err);
    ck_assert_ptr_nonnull(u);
    ck_assert_str_eq(err, "");
    return u;
}

static void parse_bad(const char *text, size_t len, const char *want)
{
    struct users *u = (struct users *)&u;
    char err[8192];
    int rc = parse(text, len, &u, err, sizeof err);

    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_null(u);
    ck_assert_str_eq(err, want);
}

static void assert_roles(const struct user_entry *e, size_t n, ...)
{
    va_list ap;

    ck_assert_uint_eq(e->n_roles, n);
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(e->roles[i], va_arg(ap, const char *));
    va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* Good files */

START_TEST(good_file)
{
    struct users *u = parse_ok(
        "# mqgate users\n"
        "\n"
        "alice:" YES ":operator,viewer\n"
        "   \t \n"
        "  # indented comment\n"
        "bob:" SHA ":\n"
        "carol:" SHA_R ":viewer:" SEED_B32 "\n"
        "dave:" BCB "::" SEED_B32 "\n"
        "erin:" BCA ":tenant\n"
        "frank:" BCY ":viewer,viewer\n"
        "Zoë Smith:" YES ":viewer\n"
        "a#b:" YES ":x\n"
        " lead space:" YES ":x\n"
        N256 ":" YES ":x");
    const struct user_entry *e;

    ck_assert_uint_eq(users_count(u), 10);

    e = users_find(u, "alice");
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->name, "alice");
    ck_assert_str_eq(e->hash, YES);
    ck_assert_int_eq(e->method, USERS_YESCRYPT);
    assert_roles(e, 2, "operator", "viewer");
    ck_assert_ptr_null(e->totp_key);
    ck_assert_uint_eq(e->totp_key_len, 0);
    ck_assert_uint_eq(e->index, 0);
    ck_assert_uint_eq(e->line, 3);
    ck_assert_ptr_eq(users_get(u, 0), e);

    e = users_find(u, "bob");
    ck_assert_str_eq(e->hash, SHA);
    ck_assert_int_eq(e->method, USERS_SHA512);
    assert_roles(e, 0);
    ck_assert_uint_eq(e->line, 6);

    e = users_find(u, "carol");
    ck_assert_str_eq(e->hash, SHA_R);
    ck_assert_int_eq(e->method, USERS_SHA512);
    assert_roles(e, 1, "viewer");
    ck_assert_uint_eq(e->totp_key_len, 20);
    ck_assert_mem_eq(e->totp_key, SEED, 20);
    ck_assert_uint_eq(e->line, 7);

    e = users_find(u, "dave");
    ck_assert_int_eq(e->method, USERS_BCRYPT);
    assert_roles(e, 0);
    ck_assert_mem_eq(e->totp_key, SEED, 20);

    ck_assert_int_eq(users_find(u, "erin")->method, USERS_BCRYPT);
    assert_roles(users_find(u, "frank"), 2, "viewer", "viewer");
    ck_assert_str_eq(users_find(u, "frank")->hash, BCY);
    ck_assert_uint_eq(users_find(u, "Zoë Smith")->index, 6);
    ck_assert_ptr_nonnull(users_find(u, "a#b"));
    ck_assert_ptr_nonnull(users_find(u, " lead space"));
    e = users_find(u, N256);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->line, 14);
    ck_assert_uint_eq(e->index, 9);
    ck_assert_ptr_eq(users_get(u, 9), e);
    ck_assert_ptr_null(users_get(u, 10));
    users_free(u);
}
END_TEST

START_TEST(empty_files)
{
    static const char *const texts[] = {
        "", "\n", "\n\n\n", "# only a comment", "#\n#\n", "  \t\n\t#x\n",
        "\r\n", "\xef\xbb\xbf", "\xef\xbb\xbf# c\r\n",
    };

    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        struct users *u = parse_ok(texts[i]);

        ck_assert_uint_eq(users_count(u), 0);
        ck_assert_ptr_null(users_find(u, "alice"));
        ck_assert_ptr_null(users_find(u, ""));
        ck_assert_ptr_null(users_get(u, 0));
        users_free(u);
    }
    /* NULL text is an empty file */
    {
        struct users *u;
        char err[64];

        ck_assert_int_eq(users_parse(NULL, NULL, 5, &u, err, sizeof err), 0);
        ck_assert_uint_eq(users_count(u), 0);
        users_free(u);
    }
}
END_TEST

START_TEST(crlf_and_bom)
{
    struct users *u = parse_ok("\xef\xbb\xbf"
                               "# users\r\n"
                               "alice:" YES ":a,b\r\n"
                               "\r\n"
                               "bob:" SHA "::" SEED_B32 "\r\n"
                               "carol:" BCB ":c\r");
    const struct user_entry *e = users_find(u, "alice");

    ck_assert_uint_eq(users_count(u), 3);
    assert_roles(e, 2, "a", "b");
    ck_assert_uint_eq(e->line, 2);
    e = users_find(u, "bob");
    ck_assert_uint_eq(e->totp_key_len, 20);
    ck_assert_uint_eq(e->line, 4);
    assert_roles(users_find(u, "carol"), 1, "c");
    users_free(u);
    /* only the BOM at the very start is skipped: elsewhere it is U+FEFF,
     * a character like any other */
    u = parse_ok("\n\xef\xbb\xbf" "a:" YES ":\n");
    ck_assert_ptr_null(users_find(u, "a"));
    ck_assert_ptr_nonnull(users_find(u, "\xef\xbb\xbf" "a"));
    users_free(u);
}
END_TEST

/* The role name syntax as users.h gives it, also for the config. */
START_TEST(role_names)
{
    static const char *const ok[] = {
        "viewer", "op-1", "A.b_9", "-", ".", R65 + 1, /* 64 bytes */
    };
    static const char *const bad[] = {
        "", "a b", "a\"b", "a\\b", "a,b", "a:b", "caf\xc3\xa9", "\xff", "a/b",
        "a+b", "#", "%u", "R65", "a\x7f",
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(users_role_name_check(ok[i], strlen(ok[i])) == NULL,
                      "\"%s\" refused", ok[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *s = strcmp(bad[i], "R65") ? bad[i] : R65;

        ck_assert_msg(users_role_name_check(s, strlen(s)) != NULL,
                      "\"%s\" accepted", s);
    }
    ck_assert_ptr_nonnull(users_role_name_check("a\0b", 3));
    ck_assert_ptr_null(users_role_name_check("ab!", 2));
}
END_TEST

/* Functions, not tables, where a NUL must sit inside a line. */
START_TEST(nul_bytes)
{
    static const char name_nul[] = "al\0ce:" YES ":x\n";
    static const char role_nul[] = "alice:" YES ":x\0y\n";
    static const char comment_nul[] = "# a\0b\nalice:" YES ":x\n";
    struct users *u;
    char err[512];

    parse_bad(name_nul, sizeof name_nul - 1,
              "users:1: user name contains a control character\n");
    parse_bad(role_nul, sizeof role_nul - 1,
              "users:1: user \"alice\": role name with a space or control "
              "character\n");
    ck_assert_int_eq(parse(comment_nul, sizeof comment_nul - 1, &u, err,
                           sizeof err),
                     0);
    ck_assert_uint_eq(users_count(u), 1);
    users_free(u);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Bad lines: each one after a comment line, so on line 2. "hidden" must
 * not appear in the error (a hash or a secret). */

static const struct {
    const char *line;
    const char *msg;
    const char *hidden;
} bad[] = {
    /* shape: nothing quoted */
    { "alice", FORMAT, "alice" },
    { "hunter2", FORMAT, "hunter2" },
    { "alice:" YES, FORMAT, Y_SALT },
    { "alice:" YES ":viewer:" SEED_B32 ":x", FORMAT, SEED_B32 },
    { "alice:pass:word:with:colons", FORMAT, "word" },
    { ":::::", FORMAT, NULL },
    /* name */
    { ":" YES ":viewer", "empty user name", Y_SALT },
    { N257 ":" YES ":viewer", "user name longer than 256 bytes", N64 },
    { "al\xff" "ice:" YES ":", "user name is not valid UTF-8", Y_SALT },
    { "al\xc3" "ice:" YES ":", "user name is not valid UTF-8", Y_SALT },
    { "\xed\xa0\x80:" YES ":", "user name is not valid UTF-8", Y_SALT },
    { "al\tice:" YES ":", "user name contains a control character", Y_SALT },
    { "al\x7f" "ice:" YES ":", "user name contains a control character",
      Y_SALT },
    { "al\xc2\x85" "ice:" YES ":", "user name contains a control character",
      Y_SALT },
    { "al\rice:" YES ":", "user name contains a control character", Y_SALT },
    { "\x1b[31m:" YES ":", "user name contains a control character", Y_SALT },
    /* hash: unsupported */
    { "alice:hunter2:viewer", UA PLAIN, "hunter2" },
    { "alice::viewer", UA PLAIN, NULL },
    { "alice:secret$6$:viewer", UA PLAIN, "secret" },
    { "alice:$1$abcdefgh$0123456789012345678901:x", UA PLAIN, "abcdefgh" },
    { "alice:$5$saltsalt$" Y_SUM ":x", UA PLAIN, "saltsalt" },
    { "alice:$gy$j9T$" Y_SALT "$" Y_SUM ":x", UA PLAIN, Y_SALT },
    { "alice:$2x$05$" B_REST ":x", UA PLAIN, B_REST52 },
    { "alice:$2$05$" B_REST ":x", UA PLAIN, B_REST52 },
    { "alice:!" YES ":x", UA PLAIN, Y_SALT },
    { "alice:*:x", UA PLAIN, NULL },
    { "alice:$Y$j9T$" Y_SALT "$" Y_SUM ":x", UA PLAIN, Y_SALT },
    { "alice:0123456789abcdef0123456789abcdef:x", UA PLAIN, "0123456789a" },
    /* hash: yescrypt damaged */
    { "alice:$y$:x", UA "malformed yescrypt hash", NULL },
    { "alice:$y$j9T$" Y_SALT "$" Y_SUM42 ":x", UA "malformed yescrypt hash",
      Y_SALT },
    { "alice:" YES "2:x", UA "malformed yescrypt hash", Y_SALT },
    { "alice:$y$j9T$$" Y_SUM ":x", UA "malformed yescrypt hash", Y_SUM },
    { "alice:$y$$" Y_SALT "$" Y_SUM ":x", UA "malformed yescrypt hash",
      Y_SALT },
    { "alice:$y$j9T$" Y_SALT "$" Y_SUM42 "$:x", UA "malformed yescrypt hash",
      Y_SALT },
    { "alice:$y$j9T$" Y_SALT "$" Y_SUM42 "!:x", UA "malformed yescrypt hash",
      Y_SALT },
    { "alice:$y$j9T$" Y_SALT ":x", UA "malformed yescrypt hash", Y_SALT },
    { "alice:" YES "$x:x", UA "malformed yescrypt hash", Y_SALT },
    { "alice:$y$j 9T$" Y_SALT "$" Y_SUM ":x", UA "malformed yescrypt hash",
      Y_SALT },
    /* hash: SHA-512 damaged */
    { "alice:$6$" S_SALT "$" S_SUM85 ":x", UA "malformed SHA-512 hash",
      S_SALT },
    { "alice:" SHA "0:x", UA "malformed SHA-512 hash", S_SALT },
    { "alice:$6$" S_SALT "a$" S_SUM ":x", UA "malformed SHA-512 hash",
      S_SALT },
    { "alice:$6$$" S_SUM ":x", UA "malformed SHA-512 hash", S_SUM85 },
    { "alice:$6$rounds=$" R_REST ":x", UA "malformed SHA-512 hash",
      "mT.pml" },
    { "alice:$6$rounds=0100$" R_REST ":x", UA "malformed SHA-512 hash",
      "mT.pml" },
    { "alice:$6$rounds=1000000000$" R_REST ":x", UA "malformed SHA-512 hash",
      "mT.pml" },
    { "alice:$6$rounds=10k$" R_REST ":x", UA "malformed SHA-512 hash",
      "mT.pml" },
    { "alice:$6$rounds=10000:x", UA "malformed SHA-512 hash", NULL },
    { "alice:$6$:x", UA "malformed SHA-512 hash", NULL },
    { "alice:$6$salt salt$" S_SUM ":x", UA "malformed SHA-512 hash",
      S_SUM85 },
    /* hash: bcrypt damaged */
    { "alice:$2b$05$" B_REST52 ":x", UA "malformed bcrypt hash", B_REST52 },
    { "alice:" BCB "C:x", UA "malformed bcrypt hash", B_REST52 },
    { "alice:$2b$03$" B_REST ":x", UA "malformed bcrypt hash", B_REST52 },
    { "alice:$2b$32$" B_REST ":x", UA "malformed bcrypt hash", B_REST52 },
    { "alice:$2b$5a$" B_REST ":x", UA "malformed bcrypt hash", B_REST52 },
    { "alice:$2b$05." B_REST ":x", UA "malformed bcrypt hash", B_REST52 },
    { "alice:$2b$05$" B_REST52 "$:x", UA "malformed bcrypt hash", B_REST52 },
    { "alice:$2a$:x", UA "malformed bcrypt hash", NULL },
    /* roles: never quoted either */
    { "alice:" YES ":viewer,,operator", UA "empty role name", Y_SALT },
    { "alice:" YES ":viewer,", UA "empty role name", Y_SALT },
    { "alice:" YES ":,viewer", UA "empty role name", Y_SALT },
    { "alice:" YES ":,", UA "empty role name", Y_SALT },
    { "alice:" YES ":view er",
      UA "role name with a space or control character", "view er" },
    { "alice:" YES ":viewer ",
      UA "role name with a space or control character", "viewer" },
    { "alice:" YES ": viewer",
      UA "role name with a space or control character", "viewer" },
    { "alice:" YES ":viewer, operator",
      UA "role name with a space or control character", "viewer" },
    { "alice:" YES ":vi\tewer",
      UA "role name with a space or control character", Y_SALT },
    { "alice:" YES ":vi\x7f" "ewer",
      UA "role name with a space or control character", Y_SALT },
    { "alice:" YES ":vi\xc3" "ewer", UA "role name is not valid UTF-8",
      Y_SALT },
    { "alice:" YES ":" SEED_B32 ",x y",
      UA "role name with a space or control character", SEED_B32 },
    /* roles: the role name syntax of the config (users.h) */
#define OTHER "role name with a character other than A-Z a-z 0-9 _ . -"
    { "alice:" YES ":viewer,a\"b", UA OTHER, Y_SALT },
    { "alice:" YES ":a\\b", UA OTHER, Y_SALT },
    { "alice:" YES ":caf\xc3\xa9", UA OTHER, Y_SALT },
    { "alice:" YES ":a/b", UA OTHER, Y_SALT },
    { "alice:" YES ":a+b,viewer", UA OTHER, Y_SALT },
    { "alice:" YES ":<script>", UA OTHER, Y_SALT },
    { "alice:" YES ":viewer," R65, UA "role name longer than 64 bytes",
      Y_SALT },
#undef OTHER
    /* TOTP */
    { "alice:" YES ":viewer:", UA "empty TOTP secret", Y_SALT },
    { "alice:" YES ":viewer:GEZDGNBV GY3TQOJQ", B32_BAD, "GEZDGNBV" },
    { "alice:" YES ":viewer: " SEED_B32, B32_BAD, "GEZDGNBV" },
    { "alice:" YES ":viewer:" SEED_B32 " ", B32_BAD, "GEZDGNBV" },
    { "alice:" YES ":viewer:" SEED_B32 "\t", B32_BAD, "GEZDGNBV" },
    { "alice:" YES ":viewer:GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1", B32_BAD,
      "GEZDGNBV" },
    { "alice:" YES ":viewer:GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ0", B32_BAD,
      "GEZDGNBV" },
    { "alice:" YES ":viewer:GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ8", B32_BAD,
      "GEZDGNBV" },
    { "alice:" YES ":viewer:" SEED_B32 "=", B32_BAD, "GEZDGNBV" },
    { "alice:" YES ":viewer:GEZDGNBVGY3TQOJQ========", B32_BAD, "GEZDGNBV" },
    { "alice:" YES ":viewer:GEZDGNBVGY3T=QOJQGEZDGNBVGY3TQOJQ", B32_BAD,
      "GEZDGNBV" },
    { "alice:" YES ":viewer:GEZDGNBVGY3TQOJQG", B32_BAD, "GEZDGNBV" },
    { "alice:" YES ":viewer:GEZDGNBVGY3TQOJQGEZ", B32_BAD, "GEZDGNBV" },
    { "alice:" YES ":viewer:GEZDGNBVGY3TQOJQGEZDGN", B32_BAD, "GEZDGNBV" },
    { "alice:" YES ":viewer:GEZDGNBVGY3TQOJQGE=====", B32_BAD, "GEZDGNBV" },
    { "alice:" YES ":viewer:GEZDGNBVGY3TQOJQGE=======", B32_BAD,
      "GEZDGNBV" },
    { "alice:" YES ":viewer:========", B32_BAD, Y_SALT },
    { "alice:" YES ":viewer:=", B32_BAD, Y_SALT },
    { "alice:" YES ":viewer:GEZDGNBVGY3TQOJQ\xc3\xa9", B32_BAD, "GEZDGNBV" },
    /* 9 bytes: 15 characters (data % 8 == 7) */
    { "alice:" YES ":viewer:GEZDGNBVGY3TQOJ",
      UA "TOTP secret is 9 bytes, expected 10..64", "GEZDGNBV" },
    { "alice:" YES ":viewer:GEZDGNBVGY3TQOJ=",
      UA "TOTP secret is 9 bytes, expected 10..64", "GEZDGNBV" },
    { "alice:" YES ":viewer:MZXW6YTBOI======",
      UA "TOTP secret is 6 bytes, expected 10..64", "MZXW6YTBOI" },
    /* 65 bytes: 104 characters */
    { "alice:" YES ":viewer:" SEED_B32 SEED_B32 SEED_B32 "GEZDGNBV",
      UA "TOTP secret is 65 bytes, expected 10..64", "GEZDGNBV" },
    /* the name is quoted, escaped */
    { "a\"b\\c:hunter2:x", "user \"a\\\"b\\\\c\": " PLAIN, "hunter2" },
    { "Zoë:hunter2:x", "user \"Zoë\": " PLAIN, "hunter2" },
};

START_TEST(bad_line)
{
    char text[8192], want[1024], err[4096];
    struct users *u = (struct users *)&u;
    int rc;

    snprintf(text, sizeof text, "# header\n%s\n", bad[_i].line);
    snprintf(want, sizeof want, "users:2: %s\n", bad[_i].msg);
    rc = parse(text, strlen(text), &u, err, sizeof err);
    ck_assert_msg(rc == -1, "row %d accepted", _i);
    ck_assert_ptr_null(u);
    ck_assert_str_eq(err, want);
    if (bad[_i].hidden)
        ck_assert_msg(!strstr(err, bad[_i].hidden),
                      "row %d quotes what it must not: %s", _i, err);
    /* the same with CRLF and with no final newline: the same error */
    snprintf(text, sizeof text, "# header\r\n%s\r\n", bad[_i].line);
    rc = parse(text, strlen(text), &u, err, sizeof err);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, want);
    snprintf(text, sizeof text, "# header\n%s", bad[_i].line);
    rc = parse(text, strlen(text), &u, err, sizeof err);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(all_errors_in_order)
{
    static const char text[] =
        "alice:" YES ":viewer\n"
        "bob:hunter2:viewer\n"
        "# fine\n"
        "alice:" SHA ":operator\n"
        "carol:" YES ":viewer:" SEED_B32 "\n"
        "dave\n"
        "carol:" BCB ":\n"
        "alice:" BCB ":\n"
        "erin:" YES ":a,,b\n";

    parse_bad(text, sizeof text - 1,
              "users:2: user \"bob\": " PLAIN "\n"
              "users:4: user \"alice\": duplicate user (first on line 1)\n"
              "users:6: " FORMAT "\n"
              "users:7: user \"carol\": duplicate user (first on line 5)\n"
              "users:8: user \"alice\": duplicate user (first on line 1)\n"
              "users:9: user \"erin\": empty role name\n");
}
END_TEST

START_TEST(duplicates)
{
    /* a bad line is not a user: its name does not count as taken */
    static const char t1[] = "bob:plain:x\nbob:" YES ":x\n";
    /* names are compared byte for byte */
    static const char t2[] = "bob:" YES ":x\nBob:" YES ":x\nbob :" YES
                             ":x\n";
    static const char t3[] = "bob:" YES ":x\r\nbob:" YES ":x\n";
    struct users *u;

    parse_bad(t1, sizeof t1 - 1, "users:1: user \"bob\": " PLAIN "\n");
    u = parse_ok(t2);
    ck_assert_uint_eq(users_count(u), 3);
    ck_assert_uint_eq(users_find(u, "Bob")->line, 2);
    ck_assert_uint_eq(users_find(u, "bob ")->line, 3);
    users_free(u);
    parse_bad(t3, sizeof t3 - 1,
              "users:2: user \"bob\": duplicate user (first on line 1)\n");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Caps */

START_TEST(line_cap)
{
    size_t cap = USERS_LINE_MAX, n;
    char *text = malloc(cap + 64);
    struct users *u;
    char err[256];

    /* a valid line of exactly the cap: pad the role list (names of at
     * most USERS_ROLE_MAX bytes: "r...r,r...r,...") */
    n = (size_t)snprintf(text, cap + 64, "alice:%s:", YES);
    memset(text + n, 'r', cap - n);
    for (size_t i = n + USERS_ROLE_MAX; i < cap - 1; i += USERS_ROLE_MAX + 1)
        text[i] = ',';
    text[cap] = '\0';
    ck_assert_uint_eq(strlen(text), cap);
    ck_assert_int_eq(parse(text, cap, &u, err, sizeof err), 0);
    ck_assert_uint_eq(users_find(u, "alice")->n_roles,
                      (cap - n + USERS_ROLE_MAX) / (USERS_ROLE_MAX + 1));
    users_free(u);
    /* the '\r' of a CRLF does not count */
    memcpy(text + cap, "\r\n", 2);
    ck_assert_int_eq(parse(text, cap + 2, &u, err, sizeof err), 0);
    users_free(u);
    /* one more byte */
    text[cap] = 'r';
    parse_bad(text, cap + 1, "users:1: line longer than 4096 bytes\n");
    /* comments too */
    memset(text, '#', cap + 1);
    parse_bad(text, cap + 1, "users:1: line longer than 4096 bytes\n");
    free(text);
}
END_TEST

START_TEST(file_cap)
{
    size_t max = USERS_MAX_BYTES;
    char *text = malloc(max + 1);
    struct users *u;
    char err[256];

    /* exactly the cap, all comment lines of 63 bytes and blank ones */
    for (size_t i = 0; i < max; i++)
        text[i] = i % 64 == 63 ? '\n' : '#';
    ck_assert_int_eq(parse(text, max, &u, err, sizeof err), 0);
    ck_assert_uint_eq(users_count(u), 0);
    users_free(u);
    text[max] = '\n';
    parse_bad(text, max + 1, "users: larger than 1048576 bytes\n");
    free(text);
}
END_TEST

START_TEST(error_buffer)
{
    static const char text[] = "a:b:c\nd:e:f\n";
    struct users *u;
    char err[16];

    memset(err, 'x', sizeof err);
    ck_assert_int_eq(parse(text, sizeof text - 1, &u, err, sizeof err), -1);
    ck_assert_uint_eq(strlen(err), sizeof err - 1);
    ck_assert_int_eq(strncmp(err, "users:1: user \"", sizeof err - 1), 0);
    ck_assert_int_eq(parse(text, sizeof text - 1, &u, NULL, 0), -1);
    ck_assert_ptr_null(u);
    err[0] = 'x';
    ck_assert_int_eq(parse(text, sizeof text - 1, &u, err, 1), -1);
    ck_assert_int_eq(err[0], '\0');
    /* control characters in the file name are escaped */
    ck_assert_int_eq(users_parse("a\nb", "x\n", 2, &u, err, sizeof err), -1);
    ck_assert_str_eq(err, "a\\u000ab:1: exp");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Base32: every length 10..64 round trips through a reference encoder, in
 * both cases, with and without padding; unused low bits are ignored. */

static size_t b32_encode(const unsigned char *in, size_t n, char *out,
                         bool pad, bool lower)
{
    const char *abc = lower ? "abcdefghijklmnopqrstuvwxyz234567"
                            : "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = abc[(acc >> bits) & 31];
        }
    }
    if (bits)
        out[o++] = abc[(acc << (5 - bits)) & 31];
    while (pad && o % 8)
        out[o++] = '=';
    out[o] = '\0';
    return o;
}

START_TEST(base32_round_trip)
{
    unsigned char key[USERS_TOTP_MAX];
    char b32[128], text[512];
    int len = _i / 4 + USERS_TOTP_MIN;
    bool pad = _i & 1, lower = _i & 2;
    struct users *u;
    const struct user_entry *e;

    for (int i = 0; i < len; i++)
        key[i] = (unsigned char)(i * 37 + len * 11 + 0x80);
    b32_encode(key, (size_t)len, b32, pad, lower);
    snprintf(text, sizeof text, "alice:%s:x:%s\n", YES, b32);
    u = parse_ok(text);
    e = users_find(u, "alice");
    ck_assert_uint_eq(e->totp_key_len, (size_t)len);
    ck_assert_mem_eq(e->totp_key, key, (size_t)len);
    users_free(u);
}
END_TEST

START_TEST(base32_vectors)
{
    static const struct {
        const char *b32;
        const char *key;
        size_t len;
    } rows[] = {
        /* RFC 4648 section 10: "foobar" is too short, so doubled */
        { "MZXW6YTBOJTG633CMFZA====", "foobarfoobar", 12 },
        { "MZXW6YTBOJTG633CMFZA", "foobarfoobar", 12 },
        { "mzxw6ytbojtg633cmfza", "foobarfoobar", 12 },
        { "MzXw6YtBoJtG633cMfZa===", NULL, 0 },
        { "GEZDGNBVGY3TQOJQ", "1234567890", 10 },
        { SEED_B32, SEED, 20 },
        /* the last character's unused bits set: ignored */
        { "MZXW6YTBOJTG633CMFZB", "foobarfoobar", 12 },
        { "MZXW6YTBOJTG633CMFZH", "foobarfoobar", 12 },
        { "MZXW6YTBOJTG633CMFZH====", "foobarfoobar", 12 },
    };

    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char text[512], err[512];
        struct users *u;
        int rc;

        snprintf(text, sizeof text, "alice:%s:x:%s\n", YES, rows[i].b32);
        rc = parse(text, strlen(text), &u, err, sizeof err);
        if (!rows[i].key) {
            ck_assert_int_eq(rc, -1);
            ck_assert_str_eq(err, "users:1: user \"alice\": TOTP secret is "
                                  "not valid base32\n");
            continue;
        }
        ck_assert_msg(rc == 0, "%s: %s", rows[i].b32, err);
        ck_assert_uint_eq(users_find(u, "alice")->totp_key_len, rows[i].len);
        ck_assert_mem_eq(users_find(u, "alice")->totp_key, rows[i].key,
                         rows[i].len);
        users_free(u);
    }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Lookups */

START_TEST(lookups)
{
    struct users *u = parse_ok("alice:" YES ":a\nalicia:" YES ":b\n"
                               "al:" YES ":c\n");

    ck_assert_str_eq(users_find(u, "alice")->roles[0], "a");
    ck_assert_str_eq(users_find(u, "alicia")->roles[0], "b");
    ck_assert_str_eq(users_find(u, "al")->roles[0], "c");
    ck_assert_ptr_null(users_find(u, "ali"));
    ck_assert_ptr_null(users_find(u, "alice "));
    ck_assert_ptr_null(users_find(u, "Alice"));
    ck_assert_ptr_null(users_find(u, "a"));
    ck_assert_ptr_null(users_find(u, ""));
    ck_assert_ptr_null(users_find(u, NULL));
    ck_assert_ptr_null(users_find(u, N257));
    ck_assert_ptr_null(users_find(NULL, "alice"));
    ck_assert_uint_eq(users_count(NULL), 0);
    ck_assert_ptr_null(users_get(NULL, 0));
    users_free(u);
    users_free(NULL);
}
END_TEST

START_TEST(many_users)
{
    size_t n = 5000, cap = n * 120, o = 0;
    char *text = malloc(cap), name[32];
    struct users *u;

    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(text + o, cap - o, "user%zu:%s:r%zu\n", i, YES,
                              i % 7);
    u = parse_ok(text);
    ck_assert_uint_eq(users_count(u), n);
    for (size_t i = 0; i < n; i++) {
        const struct user_entry *e;
        char role[8];

        snprintf(name, sizeof name, "user%zu", i);
        snprintf(role, sizeof role, "r%zu", i % 7);
        e = users_find(u, name);
        ck_assert_ptr_nonnull(e);
        ck_assert_str_eq(e->name, name);
        ck_assert_str_eq(e->roles[0], role);
        ck_assert_uint_eq(e->index, i);
        ck_assert_uint_eq(e->line, i + 1);
        ck_assert_ptr_eq(users_get(u, i), e);
        snprintf(name, sizeof name, "user%zux", i);
        ck_assert_ptr_null(users_find(u, name));
    }
    users_free(u);
    /* the same file with one duplicate near the end */
    snprintf(text + o, cap - o, "user17:%s:\n", YES);
    parse_bad(text, strlen(text),
              "users:5001: user \"user17\": duplicate user (first on line "
              "18)\n");
    free(text);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* users_load() */

static char tmpdir[] = "/tmp/check_users.XXXXXX";

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(load)
{
    char path[256], want[512], err[512];
    struct users *u;
    char *big;

    snprintf(path, sizeof path, "%s/users", tmpdir);
    write_file(path, "alice:" YES ":a\n", strlen("alice:" YES ":a\n"));
    ck_assert_int_eq(users_load(path, &u, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_ptr_nonnull(users_find(u, "alice"));
    users_free(u);

    write_file(path, "alice:x:a\n", 10);
    snprintf(want, sizeof want, "%s:1: user \"alice\": " PLAIN "\n", path);
    ck_assert_int_eq(users_load(path, &u, err, sizeof err), -1);
    ck_assert_ptr_null(u);
    ck_assert_str_eq(err, want);

    /* larger than the first read buffer, and exactly the cap */
    big = malloc(USERS_MAX_BYTES + 1);
    for (size_t i = 0; i < USERS_MAX_BYTES; i++)
        big[i] = i % 100 == 99 ? '\n' : '#';
    memcpy(big + (USERS_MAX_BYTES / 100 - 1) * 100, "bob:" YES ":\n",
           strlen("bob:" YES ":\n"));
    write_file(path, big, USERS_MAX_BYTES);
    ck_assert_int_eq(users_load(path, &u, err, sizeof err), 0);
    ck_assert_uint_eq(users_find(u, "bob")->line, 10485);
    users_free(u);
    big[USERS_MAX_BYTES] = '\n';
    write_file(path, big, USERS_MAX_BYTES + 1);
    snprintf(want, sizeof want, "%s: larger than 1048576 bytes\n", path);
    ck_assert_int_eq(users_load(path, &u, err, sizeof err), -1);
    ck_assert_str_eq(err, want);
    free(big);
    unlink(path);

    snprintf(want, sizeof want, "%s: cannot read: %s\n", path,
             strerror(ENOENT));
    ck_assert_int_eq(users_load(path, &u, err, sizeof err), -1);
    ck_assert_ptr_null(u);
    ck_assert_str_eq(err, want);

    snprintf(want, sizeof want, "%s: cannot read: %s\n", tmpdir,
             strerror(EISDIR));
    ck_assert_int_eq(users_load(tmpdir, &u, err, sizeof err), -1);
    ck_assert_str_eq(err, want);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Allocation failures: fail the 1st, 2nd, ... allocation until a run makes
 * fewer; every failing run returns -1, says "out of memory", and frees all
 * it took. */

static unsigned long alloc_calls, alloc_fail_at;
static long alloc_live;

static void *chaos_malloc(size_t n)
{
    void *p;

    if (++alloc_calls == alloc_fail_at)
        return NULL;
    p = malloc(n);
    if (p)
        alloc_live++;
    return p;
}

static void chaos_free(void *p)
{
    if (p)
        alloc_live--;
    free(p);
}

static void chaos(const char *path, const char *text, int want_rc)
{
    unsigned long k, tested = 0;

    for (k = 1;; k++) {
        struct users *u = NULL;
        char err[4096] = "";
        int rc;

        alloc_calls = 0;
        alloc_fail_at = k;
        alloc_live = 0;
        users_set_alloc_funcs(chaos_malloc, chaos_free);
        if (path)
            rc = users_load(path, &u, err, sizeof err);
        else
            rc = parse(text, strlen(text), &u, err, sizeof err);
        users_free(u);
        users_set_alloc_funcs(NULL, NULL);
        ck_assert_msg(alloc_live == 0, "allocation %lu failing: %ld leaked",
                      k, alloc_live);
        if (alloc_calls < k) {
            ck_assert_msg(rc == want_rc, "without failures: rc %d: %s", rc,
                          err);
            break;
        }
        tested++;
        ck_assert_msg(rc == -1, "allocation %lu failed, rc %d", k, rc);
        ck_assert_ptr_null(u);
        ck_assert_msg(strstr(err, "out of memory\n") != NULL,
                      "allocation %lu: %s", k, err);
    }
    ck_assert_uint_gt(tested, 0);
}

static char *many_text(size_t n)
{
    size_t cap = n * 200, o = 0;
    char *text = malloc(cap);

    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(text + o, cap - o, "u%zu:%s:a,b:%s\n", i, SHA,
                              SEED_B32);
    return text;
}

START_TEST(alloc_fail_parse)
{
    char *text = many_text(40);

    chaos(NULL, "# c\nalice:" YES ":a,b\nbob:" SHA "::" SEED_B32 "\n", 0);
    chaos(NULL, text, 0);
    chaos(NULL, "alice:" YES ":a\nbob:x:\nalice:" YES ":\n", -1);
    free(text);
}
END_TEST

START_TEST(alloc_fail_load)
{
    char path[256];
    char *text = many_text(200);

    snprintf(path, sizeof path, "%s/users", tmpdir);
    ck_assert_uint_gt(strlen(text), 16384);
    write_file(path, text, strlen(text));
    chaos(path, NULL, 0);
    unlink(path);
    free(text);
}
END_TEST

static Suite *users_suite(void)
{
    Suite *s = suite_create("users");
    TCase *tc = tcase_create("good");

    tcase_add_test(tc, good_file);
    tcase_add_test(tc, empty_files);
    tcase_add_test(tc, crlf_and_bom);
    tcase_add_test(tc, nul_bytes);
    tcase_add_test(tc, role_names);
    tcase_add_test(tc, lookups);
    tcase_add_test(tc, many_users);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad");
    tcase_add_loop_test(tc, bad_line, 0, (int)(sizeof bad / sizeof *bad));
    tcase_add_test(tc, all_errors_in_order);
    tcase_add_test(tc, duplicates);
    tcase_add_test(tc, line_cap);
    tcase_add_test(tc, file_cap);
    tcase_add_test(tc, error_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("base32");
    tcase_add_loop_test(tc, base32_round_trip, 0,
                        (USERS_TOTP_MAX - USERS_TOTP_MIN + 1) * 4);
    tcase_add_test(tc, base32_vectors);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_add_test(tc, load);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, alloc_fail_parse);
    tcase_add_test(tc, alloc_fail_load);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    sr = srunner_create(users_suite());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    rmdir(tmpdir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
