/* Unit tests for common/acl.c: %u expansion and user safety, subscribe
 * coverage and publish matching with the roles' max_qos, "$share/", and
 * mounts. Table driven. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* By path: the build's own config.h (autoconf) sits earlier on the include
 * path than common/. */
#include "../../common/acl.h"

/* ------------------------------------------------------------------------ */
/* Roles */

#define LIST(...) (char *[]){ __VA_ARGS__ }, \
    sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *)
#define NONE NULL, 0

static const struct cfg_role viewer = {
    "viewer", LIST("sensor/#"), NONE, 1, NULL
};
static const struct cfg_role operator_ = {
    "operator", LIST("sensor/#", "device/+/status"), LIST("device/+/cmd"),
    2, NULL
};
static const struct cfg_role tenant = {
    "tenant", LIST("#"), LIST("cmd/#"), 2, "tenants/%u/"
};
static const struct cfg_role tenant2 = {
    "tenant2", LIST("x/#"), NONE, 0, "tenants/%u/"
};
static const struct cfg_role alice_site = {
    "alice_site", NONE, NONE, 2, "tenants/alice/"
};
static const struct cfg_role site = {
    "site", NONE, NONE, 2, "site/"
};
static const struct cfg_role self = {
    "self", LIST("users/%u/#", "pair/%u/%u"), LIST("users/%u/out"), 0, NULL
};
static const struct cfg_role shared = {
    "shared", LIST("$share/g/sensor/#", "plain/#"), NONE, 1, NULL
};
static const struct cfg_role shared_all = {
    "shared_all", LIST("$share/g/#", "$share/u/%u/#", "$share/%u/x"), NONE,
    2, NULL
};
static const struct cfg_role shared_sys = {
    "shared_sys", LIST("$share/g/$SYS/#"), NONE, 0, NULL
};
static const struct cfg_role top_user = {
    "top_user", LIST("%u/#"), LIST("%u/x"), 2, "%u/"
};
static const struct cfg_role writer = {
    "writer", NONE, LIST("a/#"), 1, NULL
};
static const struct cfg_role writer_b = {
    "writer_b", NONE, LIST("a/b", "+/+/c"), 2, NULL
};
static const struct cfg_role sys = {
    "sys", LIST("$SYS/broker/#"), LIST("$SYS/x"), 0, NULL
};
static const struct cfg_role empty = {
    "empty", NONE, NONE, 2, NULL
};

#define ROLES(...) { __VA_ARGS__ }, \
    sizeof((const struct cfg_role *[]){ __VA_ARGS__ }) / \
    sizeof(const struct cfg_role *)

/* A user name longer than acl.c's stack buffer, and the matching topics. */
static char long_user[700];
static char long_topic[800];
static char long_mount[800];

static void setup_long(void)
{
    memset(long_user, 'u', sizeof long_user - 1);
    long_user[sizeof long_user - 1] = '\0';
    snprintf(long_topic, sizeof long_topic, "users/%s/x", long_user);
    snprintf(long_mount, sizeof long_mount, "tenants/%s/", long_user);
}

/* ------------------------------------------------------------------------ */
/* acl_user_safe */

static const struct {
    const char *user;
    size_t len;
    int safe;
} safe_cases[] = {
    { "alice", 5, 1 },
    { "anonymous", 9, 1 },
    { "a b", 3, 1 },
    { "a.b-c_d@example.com", 19, 1 },
    { "\xc3\xbc" "ber", 5, 1 },                 /* "über" */
    { "$alice", 6, 1 },
    { "", 0, 0 },
    { "a/b", 3, 0 },
    { "/", 1, 0 },
    { "a+", 2, 0 },
    { "+", 1, 0 },
    { "#", 1, 0 },
    { "x#y", 3, 0 },
    { "a\0b", 3, 0 },
    { "\0", 1, 0 },
    { "\xff", 1, 0 },                           /* not UTF-8 */
    { "\xc3", 1, 0 },                           /* truncated */
    { "\xed\xa0\x80", 3, 0 },                   /* surrogate */
    { NULL, 0, 0 },
    { NULL, 3, 0 },
};

START_TEST(user_safe)
{
    ck_assert_msg(acl_user_safe(safe_cases[_i].user, safe_cases[_i].len) ==
                  safe_cases[_i].safe, "case %d", _i);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* acl_expand */

static const struct {
    const char *pattern, *user;
    size_t outlen;
    long rc;
    const char *out;
} expand_cases[] = {
    { "a/%u/b", "bob", 64, 7, "a/bob/b" },
    { "%u", "x", 64, 1, "x" },
    { "%u%u", "ab", 64, 4, "abab" },
    { "pair/%u/%u", "z", 64, 8, "pair/z/z" },
    { "tenants/%u/", "alice", 64, 14, "tenants/alice/" },
    { "sensor/#", NULL, 64, 8, "sensor/#" },    /* no %u: no user needed */
    { "sensor/#", "a/b", 64, 8, "sensor/#" },   /* nor a safe one */
    { "%", "x", 64, 1, "%" },
    { "a%", "x", 64, 2, "a%" },
    { "%%u", "x", 64, 2, "%x" },
    { "%U", "x", 64, 2, "%U" },
    { "%uu", "x", 64, 2, "xu" },
    { "", "x", 64, 0, "" },
    { "a/%u", NULL, 64, -1, NULL },
    { "a/%u", "", 64, -1, NULL },
    { "a/%u", "a/b", 64, -1, NULL },
    { "a/%u", "+", 64, -1, NULL },
    { "a/%u", "#", 64, -1, NULL },
    { "a/%u", "\xff", 64, -1, NULL },
    /* Room: the NUL counts. */
    { "abc", NULL, 4, 3, "abc" },
    { "abc", NULL, 3, -1, NULL },
    { "abc", NULL, 0, -1, NULL },
    { "", NULL, 1, 0, "" },
    { "a/%u", "bob", 6, 5, "a/bob" },
    { "a/%u", "bob", 5, -1, NULL },
    { "%u", "bob", 3, -1, NULL },
};

START_TEST(expand)
{
    char out[64];
    long rc;

    memset(out, 'Z', sizeof out);
    rc = acl_expand(expand_cases[_i].pattern, expand_cases[_i].user, out,
                    expand_cases[_i].outlen);
    ck_assert_msg(rc == expand_cases[_i].rc, "case %d: rc %ld", _i, rc);
    if (rc >= 0) {
        ck_assert_str_eq(out, expand_cases[_i].out);
        ck_assert_uint_eq(strlen(out), (size_t)rc);
    }
    /* Never a byte beyond outlen. */
    if (expand_cases[_i].outlen < sizeof out)
        ck_assert_int_eq(out[expand_cases[_i].outlen], 'Z');
}
END_TEST

START_TEST(expand_long)
{
    char out[1024];

    ck_assert_int_eq(acl_expand("users/%u/x", long_user, out, sizeof out),
                     (long)strlen(long_topic));
    ck_assert_str_eq(out, long_topic);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* acl_subscribe_qos and acl_publish_qos */

struct qos_case {
    const struct cfg_role *roles[4];
    size_t n;
    const char *user, *topic;
    int qos;
};

static const struct qos_case sub_cases[] = {
    /* Coverage, as protocol.md § sub. */
    { ROLES(&viewer), "alice", "sensor/1/temp", 1 },
    { ROLES(&viewer), "alice", "sensor/+/temp", 1 },
    { ROLES(&viewer), "alice", "sensor/#", 1 },
    { ROLES(&viewer), "alice", "sensor", 1 },
    { ROLES(&viewer), "alice", "#", -1 },
    { ROLES(&viewer), "alice", "+/temp", -1 },
    { ROLES(&viewer), "alice", "sensorx/1", -1 },
    { ROLES(&viewer), "alice", "+", -1 },
    { ROLES(&viewer), "alice", "device/7/status", -1 },
    /* The highest max_qos among the roles that cover. */
    { ROLES(&viewer, &operator_), "alice", "sensor/+/temp", 2 },
    { ROLES(&operator_, &viewer), "alice", "sensor/+/temp", 2 },
    { ROLES(&viewer, &operator_), "alice", "device/7/status", 2 },
    { ROLES(&viewer, &operator_), "alice", "device/+/status", 2 },
    { ROLES(&viewer, &operator_), "alice", "device/#", -1 },
    { ROLES(&viewer, &operator_), "alice", "device/7/cmd", -1 },
    { ROLES(&viewer, &self), "alice", "sensor/1", 1 },
    { ROLES(&viewer, &self), "alice", "users/alice/x", 0 },
    { ROLES(&empty), "alice", "sensor/1", -1 },
    { ROLES(&empty, &viewer), "alice", "sensor/1", 1 },
    { { NULL }, 0, "alice", "sensor/1", -1 },
    /* A mounted role's patterns are relative to its mount. */
    { ROLES(&tenant), "alice", "anything/at/all", 2 },
    { ROLES(&tenant), "alice", "#", 2 },
    { ROLES(&tenant), "alice", "$SYS/x", -1 },
    { ROLES(&tenant), "alice", "$SYS/#", -1 },
    /* %u */
    { ROLES(&self), "alice", "users/alice/#", 0 },
    { ROLES(&self), "alice", "users/alice/in/+", 0 },
    { ROLES(&self), "alice", "users/alice", 0 },
    { ROLES(&self), "alice", "users/bob/x", -1 },
    { ROLES(&self), "alice", "users/+/x", -1 },
    { ROLES(&self), "alice", "users/#", -1 },
    { ROLES(&self), "alice", "pair/alice/alice", 0 },
    { ROLES(&self), "alice", "pair/alice/bob", -1 },
    { ROLES(&self), "a/b", "users/a/b/x", -1 },
    { ROLES(&self), "+", "users/+/x", -1 },
    { ROLES(&self), "#", "users/#", -1 },
    { ROLES(&self), "", "users//x", -1 },
    { ROLES(&self), NULL, "users//x", -1 },
    { ROLES(&self), "\xff", "users/\xff/x", -1 },
    { ROLES(&self), long_user, long_topic, 0 },
    /* An unsafe user keeps the patterns without %u. */
    { ROLES(&self, &viewer), "a/b", "sensor/1", 1 },
    /* %u does not open the broker's '$' topics. */
    { ROLES(&top_user), "alice", "alice/x", 2 },
    { ROLES(&top_user), "$SYS", "$SYS/broker/load", -1 },
    { ROLES(&top_user), "$SYS", "$SYS/#", -1 },
    { ROLES(&top_user), "$share", "$share/g/x", -1 },
    { ROLES(&self), "$alice", "users/$alice/x", 0 },
    /* A literal '$' pattern does. */
    { ROLES(&sys), "alice", "$SYS/broker/load", 0 },
    { ROLES(&sys), "alice", "$SYS/broker/#", 0 },
    { ROLES(&sys), "alice", "$SYS/#", -1 },
    /* $share: only by a pattern that starts with "$share/" itself. */
    { ROLES(&viewer), "alice", "$share/g/sensor/1", -1 },
    { ROLES(&tenant), "alice", "$share/g/sensor/1", -1 },
    { ROLES(&tenant), "alice", "$share/g/#", -1 },
    { ROLES(&shared), "alice", "$share/g/sensor/1", 1 },
    { ROLES(&shared), "alice", "$share/g/sensor/#", 1 },
    { ROLES(&shared), "alice", "$share/h/sensor/1", -1 },
    { ROLES(&shared), "alice", "$share/+/sensor/1", -1 },
    { ROLES(&shared), "alice", "$share/g/plain/1", -1 },
    { ROLES(&shared), "alice", "sensor/1", -1 },
    { ROLES(&shared), "alice", "plain/1", 1 },
    { ROLES(&shared, &tenant), "alice", "$share/g/sensor/1", 1 },
    /* The '$' rule applies after "$share/NAME/", also through %u. */
    { ROLES(&shared_all), "alice", "$share/g/sensor/1", 2 },
    { ROLES(&shared_all), "alice", "$share/g/#", 2 },
    { ROLES(&shared_all), "alice", "$share/g/$SYS/#", -1 },
    { ROLES(&shared_all), "alice", "$share/g/$SYS/broker/uptime", -1 },
    { ROLES(&shared_all), "alice", "$share/g/$foo", -1 },
    { ROLES(&shared_all), "alice", "$share/h/a", -1 },
    { ROLES(&shared_all), "alice", "$share/u/alice/x", 2 },
    { ROLES(&shared_all), "$SYS", "$share/u/$SYS/x", -1 },
    { ROLES(&shared_all), "alice", "$share/alice/x", 2 },
    { ROLES(&shared_all), "$a", "$share/$a/x", 2 },
    { ROLES(&shared_all), "alice", "$SYS/#", -1 },
    { ROLES(&shared_sys), "alice", "$share/g/$SYS/#", 0 },
    { ROLES(&shared_sys), "alice", "$share/g/$SYS/broker/uptime", 0 },
    { ROLES(&shared_sys), "alice", "$share/g/#", -1 },
    { ROLES(&shared_sys, &shared_all), "alice", "$share/g/$SYS/#", 0 },
};

START_TEST(subscribe_qos)
{
    const struct qos_case *c = &sub_cases[_i];
    int qos = acl_subscribe_qos(c->roles, c->n, c->user, c->topic,
                                strlen(c->topic));

    ck_assert_msg(qos == c->qos, "case %d (%s): qos %d, want %d", _i,
                  c->topic, qos, c->qos);
}
END_TEST

static const struct qos_case pub_cases[] = {
    { ROLES(&operator_), "alice", "device/7/cmd", 2 },
    { ROLES(&operator_), "alice", "device/7/status", -1 },
    { ROLES(&operator_), "alice", "device/7/cmd/x", -1 },
    { ROLES(&operator_), "alice", "device/cmd", -1 },
    { ROLES(&viewer), "alice", "device/7/cmd", -1 },
    { ROLES(&viewer), "alice", "sensor/1", -1 },
    { ROLES(&viewer, &operator_), "alice", "device/7/cmd", 2 },
    { { NULL }, 0, "alice", "device/7/cmd", -1 },
    /* The highest max_qos among the roles that match. */
    { ROLES(&writer), "alice", "a/b", 1 },
    { ROLES(&writer, &writer_b), "alice", "a/b", 2 },
    { ROLES(&writer_b, &writer), "alice", "a/b", 2 },
    { ROLES(&writer, &writer_b), "alice", "a/c", 1 },
    { ROLES(&writer, &writer_b), "alice", "a/x/c", 2 },
    { ROLES(&writer, &writer_b), "alice", "b/x/c", 2 },
    { ROLES(&writer, &writer_b), "alice", "b/c", -1 },
    { ROLES(&writer), "alice", "a", 1 },
    /* Mount-relative. */
    { ROLES(&tenant), "alice", "cmd/x", 2 },
    { ROLES(&tenant), "alice", "cmd", 2 },
    { ROLES(&tenant), "alice", "other", -1 },
    /* %u */
    { ROLES(&self), "alice", "users/alice/out", 0 },
    { ROLES(&self), "alice", "users/bob/out", -1 },
    { ROLES(&self), "a/b", "users/a/b/out", -1 },
    { ROLES(&self), "", "users//out", -1 },
    { ROLES(&self), NULL, "users//out", -1 },
    { ROLES(&top_user), "alice", "alice/x", 2 },
    { ROLES(&top_user), "$SYS", "$SYS/x", -1 },
    /* '$' topics only by a literal '$' pattern. */
    { ROLES(&writer, &tenant), "alice", "$SYS/x", -1 },
    { ROLES(&sys), "alice", "$SYS/x", 0 },
};

START_TEST(publish_qos)
{
    const struct qos_case *c = &pub_cases[_i];
    int qos = acl_publish_qos(c->roles, c->n, c->user, c->topic,
                              strlen(c->topic));

    ck_assert_msg(qos == c->qos, "case %d (%s): qos %d, want %d", _i,
                  c->topic, qos, c->qos);
}
END_TEST

/* The filter and topic are (pointer, length): no NUL needed after them. */
START_TEST(lengths)
{
    const struct cfg_role *roles[] = { &viewer, &operator_ };
    const char buf[] = "device/7/cmdXXXX";

    ck_assert_int_eq(acl_publish_qos(roles, 2, "alice", buf, 12), 2);
    ck_assert_int_eq(acl_publish_qos(roles, 2, "alice", buf, 13), -1);
    ck_assert_int_eq(acl_subscribe_qos(roles, 2, "alice", "sensor/#!", 8), 2);
    ck_assert_int_eq(acl_subscribe_qos(roles, 2, "alice", "$share/", 7), -1);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* acl_mount */

struct mount_case {
    const struct cfg_role *roles[4];
    size_t n;
    const char *user;
    int rc;
    const char *mount;          /* NULL: none */
};

static const struct mount_case mount_cases[] = {
    { { NULL }, 0, "alice", 0, NULL },
    { ROLES(&viewer), "alice", 0, NULL },
    { ROLES(&viewer, &operator_), "alice", 0, NULL },
    { ROLES(&viewer), "a/b", 0, NULL },
    { ROLES(&tenant), "alice", 0, "tenants/alice/" },
    { ROLES(&tenant, &tenant2), "alice", 0, "tenants/alice/" },
    /* Different text, same expansion. */
    { ROLES(&tenant, &alice_site), "alice", 0, "tenants/alice/" },
    { ROLES(&alice_site, &tenant), "alice", 0, "tenants/alice/" },
    { ROLES(&tenant, &alice_site), "bob", -1, NULL },
    { ROLES(&tenant, &alice_site), "alic", -1, NULL },
    { ROLES(&tenant, &alice_site), "alicee", -1, NULL },
    /* A role without mount counts as "". */
    { ROLES(&tenant, &viewer), "alice", -1, NULL },
    { ROLES(&viewer, &tenant), "alice", -1, NULL },
    { ROLES(&site, &tenant), "alice", -1, NULL },
    { ROLES(&site), "alice", 0, "site/" },
    { ROLES(&site, &site), "alice", 0, "site/" },
    /* Unsafe users. */
    { ROLES(&tenant), "a/b", -1, NULL },
    { ROLES(&tenant), "+", -1, NULL },
    { ROLES(&tenant), "#", -1, NULL },
    { ROLES(&tenant), "", -1, NULL },
    { ROLES(&tenant), NULL, -1, NULL },
    { ROLES(&tenant), "\xff", -1, NULL },
    { ROLES(&viewer, &tenant), "a/b", -1, NULL },
    /* A mount without %u does not care. */
    { ROLES(&site), "a/b", 0, "site/" },
    { ROLES(&site), NULL, 0, "site/" },
    /* Long user: beyond any stack buffer. */
    { ROLES(&tenant), long_user, 0, long_mount },
    { ROLES(&tenant, &tenant2), long_user, 0, long_mount },
    /* %u does not make a '$' mount. */
    { ROLES(&top_user), "alice", 0, "alice/" },
    { ROLES(&top_user), "$SYS", -1, NULL },
};

START_TEST(mount)
{
    const struct mount_case *c = &mount_cases[_i];
    char *m = (char *)&m;
    int rc = acl_mount(c->roles, c->n, c->user, &m);

    ck_assert_msg(rc == c->rc, "case %d: rc %d", _i, rc);
    if (c->mount)
        ck_assert_str_eq(m, c->mount);
    else
        ck_assert_ptr_null(m);
    free(m);
}
END_TEST

static Suite *acl_suite(void)
{
    Suite *s = suite_create("acl");
    TCase *tc = tcase_create("expand");

    tcase_add_unchecked_fixture(tc, setup_long, NULL);
    tcase_add_loop_test(tc, user_safe, 0,
                        sizeof safe_cases / sizeof safe_cases[0]);
    tcase_add_loop_test(tc, expand, 0,
                        sizeof expand_cases / sizeof expand_cases[0]);
    tcase_add_test(tc, expand_long);
    suite_add_tcase(s, tc);

    tc = tcase_create("qos");
    tcase_add_unchecked_fixture(tc, setup_long, NULL);
    tcase_add_loop_test(tc, subscribe_qos, 0,
                        sizeof sub_cases / sizeof sub_cases[0]);
    tcase_add_loop_test(tc, publish_qos, 0,
                        sizeof pub_cases / sizeof pub_cases[0]);
    tcase_add_test(tc, lengths);
    suite_add_tcase(s, tc);

    tc = tcase_create("mount");
    tcase_add_unchecked_fixture(tc, setup_long, NULL);
    tcase_add_loop_test(tc, mount, 0,
                        sizeof mount_cases / sizeof mount_cases[0]);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(acl_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
