/* Unit tests for common/config*.c: the example of config.md, the defaults,
 * the shipped configs, the bad configs of tests/data/bad (each NAME.json
 * with the exact error lines in NAME.err), the restart-only keys two
 * configurations differ in, and every allocation failing in turn. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* By path: the build's own config.h (autoconf) sits earlier on the include
 * path than common/. */
#include "../../common/config.h"

#ifndef TEST_DATA_DIR
#error "TEST_DATA_DIR must name tests/data"
#endif

#define BAD_DIR TEST_DATA_DIR "/bad"
#define CONFIG_DIR TEST_DATA_DIR "/../../config"

/* config.md's example, verbatim. */
static const char example[] =
    "{\n"
    "  \"listeners\": [\n"
    "    {\"bind\": \"127.0.0.1\", \"port\": 8080, \"path\": \"/ws\"},\n"
    "    {\"bind\": \"0.0.0.0\", \"port\": 8443, \"path\": \"/ws\",\n"
    "     \"tls\": {\"cert_file\": \"/etc/mqgate/cert.pem\", \"key_file\": \"/etc/mqgate/key.pem\"},\n"
    "     \"static_dir\": \"/usr/share/mqgate/www\", \"compression\": false}\n"
    "  ],\n"
    "  \"origins\": [\"https://dash.example.com\"],\n"
    "  \"broker\": {\n"
    "    \"uris\": [\"tcp://127.0.0.1:1883\", \"tcp://10.0.0.2:1883\"],\n"
    "    \"client_id\": \"mqgate-%h\",\n"
    "    \"username\": \"mqgate\", \"password_file\": \"/etc/mqgate/broker.pass\",\n"
    "    \"mqtt_version\": 5, \"keepalive_s\": 30,\n"
    "    \"tls\": {\"ca_file\": \"/etc/ssl/certs/ca-certificates.crt\"},\n"
    "    \"reconnect_min_s\": 1, \"reconnect_max_s\": 30,\n"
    "    \"buffer_messages\": 10000\n"
    "  },\n"
    "  \"auth\": {\n"
    "    \"users_file\": \"/etc/mqgate/users\",\n"
    "    \"jwt\": {\"alg\": \"HS256\", \"secret_file\": \"/etc/mqgate/jwt.secret\",\n"
    "            \"issuer\": \"https://id.example.com\", \"audience\": \"mqgate\",\n"
    "            \"user_claim\": \"sub\", \"roles_claim\": \"roles\", \"default_roles\": []},\n"
    "    \"anonymous_role\": null,\n"
    "    \"timeout_s\": 10,\n"
    "    \"cookie\": \"mqgate_token\",\n"
    "    \"allow_query_token\": false\n"
    "  },\n"
    "  \"roles\": {\n"
    "    \"viewer\":   {\"subscribe\": [\"sensor/#\"]},\n"
    "    \"operator\": {\"subscribe\": [\"sensor/#\", \"device/+/status\"],\n"
    "                 \"publish\": [\"device/+/cmd\"], \"max_qos\": 2},\n"
    "    \"tenant\":   {\"mount\": \"tenants/%u/\", \"subscribe\": [\"#\"], \"publish\": [\"cmd/#\"]}\n"
    "  },\n"
    "  \"limits\": {\n"
    "    \"max_connections\": 100000, \"max_connections_per_ip\": 1000,\n"
    "    \"max_message_bytes\": 65536, \"max_subscriptions\": 64,\n"
    "    \"max_queue_bytes\": 1048576, \"publish_rate\": 100, \"publish_burst\": 200,\n"
    "    \"max_errors\": 20, \"ping_interval_s\": 30\n"
    "  },\n"
    "  \"metrics\": true,\n"
    "  \"log\": {\"level\": \"info\"}\n"
    "}\n";

/* Reads a whole file (tests only); NULL when it cannot. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (!f)
        return NULL;
    for (;;) {
        size_t r;

        if (n + 1 >= cap) {
            char *nb;

            cap = cap ? cap * 2 : 4096;
            nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static void parse_ok(const char *text, struct config **cfg)
{
    char err[4096];
    int rc = config_parse("test.json", text, strlen(text), cfg, err,
                          sizeof err);

    ck_assert_msg(rc == 0, "unexpected errors:\n%s", err);
    ck_assert_ptr_nonnull(*cfg);
    ck_assert_str_eq(err, "");
}

static void check_default_listener(const struct cfg_listener *l)
{
    ck_assert_str_eq(l->bind, "127.0.0.1");
    ck_assert_int_eq(l->port, 8080);
    ck_assert_str_eq(l->path, "/ws");
    ck_assert_ptr_null(l->tls);
    ck_assert_ptr_null(l->static_dir);
    ck_assert(!l->compression);
}

static void check_default_limits(const struct cfg_limits *lim)
{
    ck_assert_int_eq(lim->max_connections, 100000);
    ck_assert_int_eq(lim->max_connections_per_ip, 1000);
    ck_assert_int_eq(lim->max_message_bytes, 65536);
    ck_assert_int_eq(lim->max_subscriptions, 64);
    ck_assert_int_eq(lim->max_queue_bytes, 1048576);
    ck_assert_int_eq(lim->publish_rate, 100);
    ck_assert_int_eq(lim->publish_burst, 200);
    ck_assert_int_eq(lim->max_errors, 20);
    ck_assert_int_eq(lim->ping_interval_s, 30);
    ck_assert_int_eq(lim->max_requests, 16);
}

/* Every default of config.md. */
static void check_defaults(const struct config *cfg)
{
    ck_assert_uint_eq(cfg->n_listeners, 1);
    check_default_listener(&cfg->listeners[0]);
    ck_assert(!cfg->origins_set);
    ck_assert_uint_eq(cfg->n_origins, 0);
    ck_assert_ptr_null(cfg->origins);

    ck_assert_uint_eq(cfg->broker.n_uris, 1);
    ck_assert_str_eq(cfg->broker.uris[0], "tcp://127.0.0.1:1883");
    ck_assert_str_eq(cfg->broker.client_id, "mqgate-%h-%p");
    ck_assert_ptr_null(cfg->broker.username);
    ck_assert_ptr_null(cfg->broker.password_file);
    ck_assert_int_eq(cfg->broker.mqtt_version, 5);
    ck_assert_int_eq(cfg->broker.keepalive_s, 30);
    ck_assert_ptr_null(cfg->broker.tls);
    ck_assert_int_eq(cfg->broker.reconnect_min_s, 1);
    ck_assert_int_eq(cfg->broker.reconnect_max_s, 30);
    ck_assert_int_eq(cfg->broker.buffer_messages, 10000);
    ck_assert_str_eq(cfg->broker.reply_prefix, "mqgate/reply/%c/");

    ck_assert_ptr_null(cfg->auth.users_file);
    ck_assert_ptr_null(cfg->auth.jwt);
    ck_assert_ptr_null(cfg->auth.anonymous_role);
    ck_assert_int_eq(cfg->auth.timeout_s, 10);
    ck_assert_str_eq(cfg->auth.cookie, "mqgate_token");
    ck_assert(!cfg->auth.allow_query_token);
    ck_assert_int_eq(cfg->auth.password_workers, 0); /* the CPUs */

    ck_assert_uint_eq(cfg->n_roles, 0);
    ck_assert_ptr_null(cfg->roles);
    check_default_limits(&cfg->limits);
    ck_assert(cfg->metrics);
    ck_assert_int_eq(cfg->log_level, LOG_LVL_INFO);
    ck_assert_int_eq(cfg->workers, 1);
}

START_TEST(example_full)
{
    struct config *cfg;
    const struct cfg_listener *l;
    const struct cfg_role *r;
    const struct cfg_jwt *jwt;

    parse_ok(example, &cfg);
    ck_assert_str_eq(cfg->path, "test.json");

    ck_assert_uint_eq(cfg->n_listeners, 2);
    check_default_listener(&cfg->listeners[0]);
    l = &cfg->listeners[1];
    ck_assert_str_eq(l->bind, "0.0.0.0");
    ck_assert_int_eq(l->port, 8443);
    ck_assert_str_eq(l->path, "/ws");
    ck_assert_ptr_nonnull(l->tls);
    ck_assert_str_eq(l->tls->cert_file, "/etc/mqgate/cert.pem");
    ck_assert_str_eq(l->tls->key_file, "/etc/mqgate/key.pem");
    ck_assert_ptr_null(l->tls->ca_file);
    ck_assert(!l->tls->verify_client);
    ck_assert_str_eq(l->static_dir, "/usr/share/mqgate/www");
    ck_assert(!l->compression);

    ck_assert(cfg->origins_set);
    ck_assert_uint_eq(cfg->n_origins, 1);
    ck_assert_str_eq(cfg->origins[0], "https://dash.example.com");

    ck_assert_uint_eq(cfg->broker.n_uris, 2);
    ck_assert_str_eq(cfg->broker.uris[0], "tcp://127.0.0.1:1883");
    ck_assert_str_eq(cfg->broker.uris[1], "tcp://10.0.0.2:1883");
    ck_assert_str_eq(cfg->broker.client_id, "mqgate-%h");
    ck_assert_str_eq(cfg->broker.username, "mqgate");
    ck_assert_str_eq(cfg->broker.password_file, "/etc/mqgate/broker.pass");
    ck_assert_int_eq(cfg->broker.mqtt_version, 5);
    ck_assert_int_eq(cfg->broker.keepalive_s, 30);
    ck_assert_ptr_nonnull(cfg->broker.tls);
    ck_assert_str_eq(cfg->broker.tls->ca_file,
                     "/etc/ssl/certs/ca-certificates.crt");
    ck_assert_ptr_null(cfg->broker.tls->cert_file);
    ck_assert_ptr_null(cfg->broker.tls->key_file);
    ck_assert(cfg->broker.tls->verify);
    ck_assert_int_eq(cfg->broker.reconnect_min_s, 1);
    ck_assert_int_eq(cfg->broker.reconnect_max_s, 30);
    ck_assert_int_eq(cfg->broker.buffer_messages, 10000);

    ck_assert_str_eq(cfg->auth.users_file, "/etc/mqgate/users");
    jwt = cfg->auth.jwt;
    ck_assert_ptr_nonnull(jwt);
    ck_assert_str_eq(jwt->alg, "HS256");
    ck_assert_str_eq(jwt->secret_file, "/etc/mqgate/jwt.secret");
    ck_assert_ptr_null(jwt->public_key_file);
    ck_assert_str_eq(jwt->issuer, "https://id.example.com");
    ck_assert_str_eq(jwt->audience, "mqgate");
    ck_assert_str_eq(jwt->user_claim, "sub");
    ck_assert_str_eq(jwt->roles_claim, "roles");
    ck_assert_uint_eq(jwt->n_default_roles, 0);
    ck_assert_ptr_null(cfg->auth.anonymous_role);
    ck_assert_int_eq(cfg->auth.timeout_s, 10);
    ck_assert_str_eq(cfg->auth.cookie, "mqgate_token");
    ck_assert(!cfg->auth.allow_query_token);

    ck_assert_uint_eq(cfg->n_roles, 3);
    ck_assert_str_eq(cfg->roles[0].name, "viewer");
    ck_assert_str_eq(cfg->roles[1].name, "operator");
    ck_assert_str_eq(cfg->roles[2].name, "tenant");
    r = config_role(cfg, "viewer");
    ck_assert_ptr_eq(r, &cfg->roles[0]);
    ck_assert_uint_eq(r->n_subscribe, 1);
    ck_assert_str_eq(r->subscribe[0], "sensor/#");
    ck_assert_uint_eq(r->n_publish, 0);
    ck_assert_ptr_null(r->publish);
    ck_assert_int_eq(r->max_qos, 2);
    ck_assert_ptr_null(r->mount);
    r = config_role(cfg, "operator");
    ck_assert_uint_eq(r->n_subscribe, 2);
    ck_assert_str_eq(r->subscribe[0], "sensor/#");
    ck_assert_str_eq(r->subscribe[1], "device/+/status");
    ck_assert_uint_eq(r->n_publish, 1);
    ck_assert_str_eq(r->publish[0], "device/+/cmd");
    ck_assert_int_eq(r->max_qos, 2);
    ck_assert_ptr_null(r->mount);
    r = config_role(cfg, "tenant");
    ck_assert_str_eq(r->mount, "tenants/%u/");
    ck_assert_uint_eq(r->n_subscribe, 1);
    ck_assert_str_eq(r->subscribe[0], "#");
    ck_assert_uint_eq(r->n_publish, 1);
    ck_assert_str_eq(r->publish[0], "cmd/#");
    ck_assert_int_eq(r->max_qos, 2);
    ck_assert_ptr_null(config_role(cfg, "admin"));
    ck_assert_ptr_null(config_role(cfg, ""));
    ck_assert_ptr_null(config_role(cfg, NULL));

    check_default_limits(&cfg->limits);
    ck_assert(cfg->metrics);
    ck_assert_int_eq(cfg->log_level, LOG_LVL_INFO);
    config_free(cfg);
}
END_TEST

START_TEST(empty_object_defaults)
{
    struct config *cfg;

    parse_ok("{}", &cfg);
    check_defaults(cfg);
    config_free(cfg);

    parse_ok(" \n{ }\n", &cfg);
    check_defaults(cfg);
    config_free(cfg);

    /* Empty sub-objects give their defaults too. */
    parse_ok("{\"broker\": {}, \"auth\": {}, \"limits\": {}, \"log\": {},"
             " \"roles\": {}, \"listeners\": [{}]}", &cfg);
    check_defaults(cfg);
    config_free(cfg);
}
END_TEST

START_TEST(config_default_all)
{
    struct config *cfg = config_default();

    ck_assert_ptr_nonnull(cfg);
    check_defaults(cfg);
    config_free(cfg);
    config_free(NULL);
}
END_TEST

START_TEST(other_values)
{
    static const char text[] =
        "{\"listeners\": [{\"bind\": \"::1\", \"port\": 1, \"path\": \"/\","
        "   \"tls\": {\"cert_file\": \"c\", \"key_file\": \"k\","
        "             \"ca_file\": \"ca\", \"verify_client\": true},"
        "   \"compression\": true},"
        "  {\"bind\": \"127.0.0.1\", \"port\": 65535}],"
        " \"origins\": [\"*\", \"http://a.example:8080\", \"https://[::1]:1\"],"
        " \"broker\": {\"uris\": [\"ssl://b:8883\"], \"mqtt_version\": 4,"
        "   \"keepalive_s\": 0, \"reconnect_min_s\": 3600,"
        "   \"reconnect_max_s\": 3600, \"buffer_messages\": 0,"
        "   \"tls\": {\"cert_file\": \"c\", \"key_file\": \"k\","
        "             \"verify\": false}},"
        " \"auth\": {\"jwt\": {\"alg\": \"ES256\", \"public_key_file\": \"p\","
        "   \"default_roles\": [\"r\"]}, \"anonymous_role\": \"r\","
        "   \"cookie\": \"a!#$%&'*+-.^_`|~1\", \"allow_query_token\": true,"
        "   \"timeout_s\": 3600, \"password_workers\": 64},"
        " \"roles\": {\"r\": {\"max_qos\": 0, \"mount\": \"t/%u/x%u/\","
        "   \"subscribe\": [\"$share/g/%u/#\", \"+/+\"],"
        "   \"publish\": [\"a/%u\"]}},"
        " \"limits\": {\"max_connections\": 1, \"max_connections_per_ip\": 10000000,"
        "   \"max_message_bytes\": 64, \"max_subscriptions\": 100000,"
        "   \"max_queue_bytes\": 1073741824, \"publish_rate\": 1000000,"
        "   \"publish_burst\": 1, \"max_errors\": 100000,"
        "   \"ping_interval_s\": 3600},"
        " \"metrics\": false, \"log\": {\"level\": \"debug\"},"
        " \"workers\": 64}";
    struct config *cfg;

    parse_ok(text, &cfg);
    ck_assert_int_eq(cfg->workers, 64);
    ck_assert_str_eq(cfg->listeners[0].bind, "::1");
    ck_assert_int_eq(cfg->listeners[0].port, 1);
    ck_assert_str_eq(cfg->listeners[0].path, "/");
    ck_assert_str_eq(cfg->listeners[0].tls->ca_file, "ca");
    ck_assert(cfg->listeners[0].tls->verify_client);
    ck_assert(cfg->listeners[0].compression);
    ck_assert_int_eq(cfg->listeners[1].port, 65535);
    ck_assert_str_eq(cfg->listeners[1].path, "/ws");
    ck_assert_uint_eq(cfg->n_origins, 3);
    ck_assert_str_eq(cfg->origins[2], "https://[::1]:1");
    ck_assert_str_eq(cfg->broker.uris[0], "ssl://b:8883");
    ck_assert_int_eq(cfg->broker.mqtt_version, 4);
    ck_assert_int_eq(cfg->broker.keepalive_s, 0);
    ck_assert_int_eq(cfg->broker.reconnect_min_s, 3600);
    ck_assert_int_eq(cfg->broker.buffer_messages, 0);
    ck_assert(!cfg->broker.tls->verify);
    ck_assert_ptr_null(cfg->broker.tls->ca_file);
    ck_assert_str_eq(cfg->auth.jwt->alg, "ES256");
    ck_assert_str_eq(cfg->auth.jwt->public_key_file, "p");
    ck_assert_ptr_null(cfg->auth.jwt->secret_file);
    ck_assert_str_eq(cfg->auth.jwt->user_claim, "sub");
    ck_assert_str_eq(cfg->auth.jwt->roles_claim, "roles");
    ck_assert_uint_eq(cfg->auth.jwt->n_default_roles, 1);
    ck_assert_str_eq(cfg->auth.jwt->default_roles[0], "r");
    ck_assert_str_eq(cfg->auth.anonymous_role, "r");
    ck_assert_str_eq(cfg->auth.cookie, "a!#$%&'*+-.^_`|~1");
    ck_assert(cfg->auth.allow_query_token);
    ck_assert_int_eq(cfg->auth.password_workers, 64);
    ck_assert_int_eq(cfg->roles[0].max_qos, 0);
    ck_assert_str_eq(cfg->roles[0].mount, "t/%u/x%u/");
    ck_assert_str_eq(cfg->roles[0].subscribe[0], "$share/g/%u/#");
    ck_assert_int_eq(cfg->limits.max_connections, 1);
    ck_assert_int_eq(cfg->limits.max_queue_bytes, 1073741824);
    ck_assert(!cfg->metrics);
    ck_assert_int_eq(cfg->log_level, LOG_LVL_DEBUG);
    config_free(cfg);
}
END_TEST

/* Each listed level maps to its enum value. */
/* auth.jwt's key sets and auth.http: values and defaults (config.md). */
START_TEST(identity_providers)
{
    static const char set[] =
        "{\"auth\": {\"jwt\": {\"algs\": [\"RS256\", \"ES384\"],"
        "   \"jwks_url\": \"https://sso.example.com/certs\"},"
        "  \"http\": {\"url\": \"http://127.0.0.5:9/auth\"}}}";
    static const char all[] =
        "{\"auth\": {\"jwt\": {\"alg\": \"ES512\", \"algs\": [\"ES512\", \"RS512\"],"
        "   \"jwks_url\": \"http://[::1]:8/c\", \"jwks_ca_file\": \"ca\","
        "   \"jwks_refresh_s\": 86400, \"jwks_min_refresh_s\": 3600},"
        "  \"http\": {\"url\": \"https://hook.example.com/a?b=c\","
        "   \"timeout_s\": 60, \"ca_file\": \"c\", \"secret_file\": \"s\","
        "   \"cache_s\": 3600, \"max_in_flight\": 10000}}}";
    static const char file[] =
        "{\"auth\": {\"jwt\": {\"alg\": \"RS384\", \"jwks_file\": \"j\"},"
        "  \"http\": {\"url\": \"http://localhost/auth\"}}}";
    struct config *cfg;

    parse_ok(set, &cfg);
    ck_assert_ptr_null(cfg->auth.jwt->alg);
    ck_assert_uint_eq(cfg->auth.jwt->n_algs, 2);
    ck_assert_str_eq(cfg->auth.jwt->algs[1], "ES384");
    ck_assert_str_eq(cfg->auth.jwt->jwks_url, "https://sso.example.com/certs");
    ck_assert_ptr_null(cfg->auth.jwt->jwks_ca_file);
    ck_assert_int_eq(cfg->auth.jwt->jwks_refresh_s, 300);
    ck_assert_int_eq(cfg->auth.jwt->jwks_min_refresh_s, 10);
    ck_assert_str_eq(cfg->auth.http->url, "http://127.0.0.5:9/auth");
    ck_assert_int_eq(cfg->auth.http->timeout_s, 5);
    ck_assert_ptr_null(cfg->auth.http->ca_file);
    ck_assert_ptr_null(cfg->auth.http->secret_file);
    ck_assert_int_eq(cfg->auth.http->cache_s, 0);
    ck_assert_int_eq(cfg->auth.http->max_in_flight, 64);
    config_free(cfg);
    parse_ok(all, &cfg);
    ck_assert_str_eq(cfg->auth.jwt->alg, "ES512");
    ck_assert_str_eq(cfg->auth.jwt->jwks_ca_file, "ca");
    ck_assert_int_eq(cfg->auth.jwt->jwks_refresh_s, 86400);
    ck_assert_int_eq(cfg->auth.jwt->jwks_min_refresh_s, 3600);
    ck_assert_int_eq(cfg->auth.http->timeout_s, 60);
    ck_assert_str_eq(cfg->auth.http->secret_file, "s");
    ck_assert_int_eq(cfg->auth.http->cache_s, 3600);
    ck_assert_int_eq(cfg->auth.http->max_in_flight, 10000);
    config_free(cfg);
    parse_ok(file, &cfg);
    ck_assert_str_eq(cfg->auth.jwt->jwks_file, "j");
    ck_assert_uint_eq(cfg->auth.jwt->n_algs, 0);
    config_free(cfg);
}
END_TEST

START_TEST(workers_auto)
{
    struct config *cfg;

    parse_ok("{\"workers\": \"auto\"}", &cfg);
    ck_assert_int_eq(cfg->workers, 0); /* the CPUs */
    config_free(cfg);
    parse_ok("{\"workers\": 1}", &cfg);
    ck_assert_int_eq(cfg->workers, 1);
    config_free(cfg);
}
END_TEST

START_TEST(log_levels)
{
    static const struct { const char *name; enum log_level lvl; } t[] = {
        { "error", LOG_LVL_ERROR }, { "warn", LOG_LVL_WARN },
        { "info", LOG_LVL_INFO }, { "debug", LOG_LVL_DEBUG },
    };
    char text[64];
    struct config *cfg;
    size_t i;

    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        snprintf(text, sizeof text, "{\"log\": {\"level\": \"%s\"}}",
                 t[i].name);
        parse_ok(text, &cfg);
        ck_assert_int_eq(cfg->log_level, t[i].lvl);
        config_free(cfg);
    }
}
END_TEST

/* Patterns and mounts longer than the loader's stack buffer. */
START_TEST(long_patterns)
{
    char *text = malloc(8192), *pat = malloc(3000);
    struct config *cfg;
    size_t i;

    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(pat);
    for (i = 0; i < 2000; i++)
        pat[i] = i % 100 == 99 ? '/' : 'a';
    memcpy(pat + 2000, "%u/", 4);
    snprintf(text, 8192,
             "{\"roles\": {\"r\": {\"subscribe\": [\"%s#\"],"
             " \"mount\": \"%s\"}}}", pat, pat);
    parse_ok(text, &cfg);
    ck_assert_uint_eq(strlen(cfg->roles[0].mount), 2003);
    config_free(cfg);
    free(text);
    free(pat);
}
END_TEST

START_TEST(shipped_configs)
{
    struct config *cfg;
    const struct cfg_role *r;
    char err[4096];
    int rc;

    rc = config_load(CONFIG_DIR "/demo.json", &cfg, err, sizeof err);
    ck_assert_msg(rc == 0, "demo.json:\n%s", err);
    ck_assert_str_eq(cfg->path, CONFIG_DIR "/demo.json");
    ck_assert_uint_eq(cfg->n_listeners, 1);
    check_default_listener(&cfg->listeners[0]);
    ck_assert_uint_eq(cfg->broker.n_uris, 1);
    ck_assert_str_eq(cfg->broker.uris[0], "tcp://127.0.0.1:1883");
    ck_assert_int_eq(cfg->broker.mqtt_version, 5);
    ck_assert_str_eq(cfg->auth.anonymous_role, "viewer");
    ck_assert_uint_eq(cfg->n_roles, 3);
    r = config_role(cfg, "viewer");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->max_qos, 1);
    ck_assert_str_eq(r->subscribe[0], "sensor/#");
    r = config_role(cfg, "operator");
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->n_subscribe, 2);
    ck_assert_str_eq(r->subscribe[1], "device/+/status");
    ck_assert_str_eq(r->publish[0], "device/+/cmd");
    r = config_role(cfg, "tenant");
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->mount, "tenants/%u/");
    ck_assert_str_eq(r->subscribe[0], "#");
    ck_assert_str_eq(r->publish[0], "cmd/#");
    ck_assert_int_eq(cfg->log_level, LOG_LVL_INFO);
    config_free(cfg);

    rc = config_load(CONFIG_DIR "/mqgate.json", &cfg, err, sizeof err);
    ck_assert_msg(rc == 0, "mqgate.json:\n%s", err);
    ck_assert_uint_eq(cfg->n_listeners, 1);
    check_default_listener(&cfg->listeners[0]);
    ck_assert_ptr_null(cfg->auth.anonymous_role);
    ck_assert_ptr_null(cfg->auth.users_file);
    ck_assert_ptr_null(cfg->auth.jwt);
    ck_assert_ptr_null(cfg->broker.password_file);
    ck_assert_str_eq(cfg->broker.client_id, "mqgate-%h-%p");
    check_default_limits(&cfg->limits);
    config_free(cfg);
}
END_TEST

START_TEST(load_errors)
{
    struct config *cfg = (struct config *)&cfg;
    char err[512], path[] = "/tmp/check_config_XXXXXX";
    int fd;

    ck_assert_int_eq(config_load("/nonexistent/mqgate.json", &cfg, err,
                                 sizeof err), -1);
    ck_assert_ptr_null(cfg);
    ck_assert_str_eq(err, "/nonexistent/mqgate.json: cannot read: "
                          "No such file or directory\n");

    ck_assert_int_eq(config_load("/", &cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "/: cannot read: Is a directory\n");

    /* 16 MiB is the cap; one byte more is refused before parsing. */
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 16L * 1024 * 1024 + 1), 0);
    close(fd);
    ck_assert_int_eq(config_load(path, &cfg, err, sizeof err), -1);
    ck_assert_ptr_null(cfg);
    ck_assert(strstr(err, ": cannot read: larger than 16777216 bytes\n"));
    ck_assert(strncmp(err, path, strlen(path)) == 0);

    /* At the cap it is read, and then the parser has its say. */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "{}", 2), 2);
    ck_assert_int_eq(ftruncate(fd, 16L * 1024 * 1024), 0);
    close(fd);
    ck_assert_int_eq(config_load(path, &cfg, err, sizeof err), -1);
    ck_assert(strstr(err, ":1: syntax error: "));
    unlink(path);
}
END_TEST

/* The caller's buffer: always terminated, never overrun, may be absent. */
START_TEST(error_buffer)
{
    static const char bad[] = "{\"a\": 1, \"b\": 2, \"c\": 3}";
    static const char full[] = "x.json:1: a: unknown key\n"
                               "x.json:1: b: unknown key\n"
                               "x.json:1: c: unknown key\n";
    struct config *cfg;
    char err[64];
    size_t n;

    for (n = 1; n <= sizeof err; n++) {
        memset(err, 'Z', sizeof err);
        ck_assert_int_eq(config_parse("x.json", bad, strlen(bad), &cfg, err,
                                      n), -1);
        ck_assert_uint_eq(strlen(err), n - 1 < strlen(full) ? n - 1
                                                            : strlen(full));
        ck_assert(strncmp(err, full, strlen(err)) == 0);
        if (n < sizeof err)
            ck_assert_int_eq(err[n], 'Z');
    }
    ck_assert_int_eq(config_parse("x.json", bad, strlen(bad), &cfg, NULL,
                                  0), -1);
    ck_assert_ptr_null(cfg);
    ck_assert_int_eq(config_parse("x.json", NULL, 0, &cfg, err, sizeof err),
                     -1);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* tests/data/bad: NAME.json is refused with exactly the lines of NAME.err */

#define MAX_BAD 256
static char *bad_names[MAX_BAD];
static int n_bad;

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the *.json of the bad directory (at start-up, so each is its own
 * loop iteration). */
static void list_bad(void)
{
    DIR *d = opendir(BAD_DIR);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL && n_bad < MAX_BAD) {
        size_t n = strlen(e->d_name);

        if (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0)
            bad_names[n_bad++] = strndup(e->d_name, n - 5);
    }
    closedir(d);
    qsort(bad_names, (size_t)n_bad, sizeof bad_names[0], cmp_names);
}

START_TEST(bad_config)
{
    char path[1024], name[300], err[8192], *text, *want;
    struct config *cfg = (struct config *)&cfg;
    size_t len;
    int rc;

    snprintf(path, sizeof path, "%s/%s.json", BAD_DIR, bad_names[_i]);
    snprintf(name, sizeof name, "%s.json", bad_names[_i]);
    text = slurp(path, &len);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    snprintf(path, sizeof path, "%s/%s.err", BAD_DIR, bad_names[_i]);
    want = slurp(path, NULL);
    ck_assert_msg(want != NULL, "%s.json has no %s.err", bad_names[_i],
                  bad_names[_i]);
    rc = config_parse(name, text, len, &cfg, err, sizeof err);
    ck_assert_msg(rc == -1, "%s was accepted", name);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strcmp(err, want) == 0, "%s:\nwant:\n%sgot:\n%s", name,
                  want, err);
    free(text);
    free(want);
}
END_TEST

START_TEST(bad_dir_complete)
{
    DIR *d = opendir(BAD_DIR);
    struct dirent *e;
    char path[1024];

    ck_assert_ptr_nonnull(d);
    ck_assert_int_ge(n_bad, 30);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);

        if (n > 4 && strcmp(e->d_name + n - 4, ".err") == 0) {
            snprintf(path, sizeof path, "%s/%.*s.json", BAD_DIR,
                     (int)(n - 4), e->d_name);
            ck_assert_msg(access(path, R_OK) == 0, "%s has no .json",
                          e->d_name);
        }
    }
    closedir(d);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* config_restart_changes(): pairs of configurations and the restart-only
 * keys a reload from the first to the second changes. */

#define TLS_A "{\"cert_file\": \"a.pem\", \"key_file\": \"a.key\"}"
#define TLS_B "{\"cert_file\": \"b.pem\", \"key_file\": \"b.key\"}"
#define TWO(a, b) "{\"listeners\": [" a ", " b "]}"

static const struct {
    const char *old, *new, *want;
    size_t n;
} restart_rows[] = {
    { "{}", "{}", "", 0 },
    /* Defaults spelt out are no change. */
    { "{}", "{\"listeners\": [{\"port\": 8080, \"bind\": \"127.0.0.1\"}],"
            " \"broker\": {\"uris\": [\"tcp://127.0.0.1:1883\"],"
            " \"keepalive_s\": 30}}", "", 0 },
    /* What a reload applies: no restart needed. */
    { "{}", "{\"limits\": {\"max_subscriptions\": 5}, \"log\": {\"level\":"
            " \"debug\"}, \"origins\": [\"*\"], \"metrics\": false,"
            " \"auth\": {\"timeout_s\": 3, \"password_workers\": 2},"
            " \"roles\": {\"r\": {\"subscribe\": [\"#\"]}}}", "", 0 },
    { "{\"listeners\": [{\"tls\": " TLS_A "}]}",
      "{\"listeners\": [{\"tls\": " TLS_B "}]}", "", 0 },
    /* Listeners */
    { "{}", "{\"listeners\": [{\"port\": 9000}]}", "listeners[0].port", 1 },
    { "{}", "{\"listeners\": [{\"bind\": \"::1\"}]}", "listeners[0].bind",
      1 },
    { "{}", "{\"listeners\": [{\"path\": \"/mq\"}]}", "listeners[0].path",
      1 },
    { "{}", "{\"listeners\": [{\"static_dir\": \"www\"}]}",
      "listeners[0].static_dir", 1 },
    { "{}", "{\"listeners\": [{\"compression\": true}]}",
      "listeners[0].compression", 1 },
    { "{}", "{\"listeners\": [{\"tls\": " TLS_A "}]}", "listeners[0].tls",
      1 },
    { "{\"listeners\": [{\"tls\": " TLS_A "}]}", "{}", "listeners[0].tls",
      1 },
    { "{\"listeners\": [{\"tls\": " TLS_A "}]}",
      "{\"listeners\": [{\"tls\": {\"cert_file\": \"a.pem\", \"key_file\":"
      " \"a.key\", \"ca_file\": \"ca.pem\", \"verify_client\": true}}]}",
      "listeners[0].tls.ca_file, listeners[0].tls.verify_client", 2 },
    { TWO("{\"port\": 1}", "{\"port\": 2}"),
      TWO("{\"port\": 1}", "{\"port\": 3, \"compression\": true}"),
      "listeners[1].port, listeners[1].compression", 2 },
    /* A list of another length is named as a whole. */
    { "{}", TWO("{\"port\": 1}", "{\"port\": 2}"), "listeners", 1 },
    { TWO("{\"port\": 1}", "{\"port\": 2}"), "{\"listeners\": [{\"port\":"
      " 1, \"path\": \"/x\"}]}", "listeners", 1 },
    /* Broker */
    { "{}", "{\"broker\": {\"uris\": [\"tcp://b:1883\"]}}", "broker.uris",
      1 },
    { "{}", "{\"broker\": {\"uris\": [\"tcp://127.0.0.1:1883\","
            " \"tcp://b:1883\"]}}", "broker.uris", 1 },
    { "{}", "{\"broker\": {\"client_id\": \"x\", \"username\": \"u\","
            " \"password_file\": \"p\"}}",
      "broker.client_id, broker.username, broker.password_file", 3 },
    { "{}", "{\"broker\": {\"mqtt_version\": 4, \"keepalive_s\": 17}}",
      "broker.mqtt_version, broker.keepalive_s", 2 },
    { "{}", "{\"broker\": {\"reconnect_min_s\": 2, \"reconnect_max_s\": 9,"
            " \"buffer_messages\": 5}}",
      "broker.reconnect_min_s, broker.reconnect_max_s,"
      " broker.buffer_messages", 3 },
    { "{}", "{\"broker\": {\"tls\": {}}}", "broker.tls", 1 },
    { "{\"broker\": {\"tls\": {}}}", "{\"broker\": {\"tls\": {\"ca_file\":"
      " \"c\", \"cert_file\": \"a\", \"key_file\": \"k\", \"verify\":"
      " false}}}", "broker.tls.ca_file, broker.tls.cert_file,"
      " broker.tls.key_file, broker.tls.verify", 4 },
    /* Both at once, in table order. */
    { "{}", "{\"broker\": {\"uris\": [\"tcp://b:1\"]}, \"limits\":"
            " {\"max_errors\": 3}, \"listeners\": [{\"port\": 1}]}",
      "listeners[0].port, broker.uris", 2 },
};

START_TEST(restart_changes)
{
    struct config *o, *n;
    char buf[512];
    size_t k;

    parse_ok(restart_rows[_i].old, &o);
    parse_ok(restart_rows[_i].new, &n);
    memset(buf, 'x', sizeof buf);
    k = config_restart_changes(o, n, buf, sizeof buf);
    ck_assert_msg(k == restart_rows[_i].n && strcmp(buf,
                      restart_rows[_i].want) == 0,
                  "row %d: %zu \"%s\", want %zu \"%s\"", _i, k, buf,
                  restart_rows[_i].n, restart_rows[_i].want);
    /* The other way round names the same keys. */
    k = config_restart_changes(n, o, buf, sizeof buf);
    ck_assert_uint_eq(k, restart_rows[_i].n);
    ck_assert_str_eq(buf, restart_rows[_i].want);
    config_free(o);
    config_free(n);
}
END_TEST

START_TEST(restart_changes_buffer)
{
    struct config *o, *n;
    char buf[12];

    parse_ok("{}", &o);
    parse_ok("{\"listeners\": [{\"port\": 9000}], \"broker\": {\"uris\":"
             " [\"tcp://b:1883\"]}}", &n);
    memset(buf, 'x', sizeof buf);
    ck_assert_uint_eq(config_restart_changes(o, n, buf, sizeof buf), 2);
    ck_assert_str_eq(buf, "listeners[0");
    ck_assert_uint_eq(config_restart_changes(o, n, NULL, 0), 2);
    buf[0] = 'x';
    ck_assert_uint_eq(config_restart_changes(o, n, buf, 1), 2);
    ck_assert_int_eq(buf[0], '\0');
    ck_assert_uint_eq(config_restart_changes(o, o, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "");
    config_free(o);
    config_free(n);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Allocation failures: fail the 1st, 2nd, ... allocation until a run makes
 * fewer; every failing run returns -1, says so, and frees all it took.
 *
 * Allocations made inside json_loadb() are skipped: jansson 2.14's lexer
 * ignores a failed growth of its token buffer (lex_save(), upstream
 * akheron/jansson#362) and then truncates strings or overruns the buffer.
 * That is jansson's bug to fix; everything before and after it is ours. */

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

/* How many allocations json_loadb() makes for text. */
static unsigned long jansson_allocs(const char *text)
{
    json_error_t je;
    json_t *j;

    alloc_calls = 0;
    alloc_fail_at = 0;
    json_set_alloc_funcs(chaos_malloc, chaos_free);
    j = json_loadb(text, strlen(text), JSON_REJECT_DUPLICATES, &je);
    json_decref(j);
    json_set_alloc_funcs(malloc, free);
    return alloc_calls;
}

enum chaos_kind { CHAOS_PARSE, CHAOS_LOAD, CHAOS_DEFAULT };

static void chaos(enum chaos_kind kind, const char *arg, int want_rc)
{
    /* config_load() reads a small file into one buffer before parsing. */
    unsigned long pre = kind == CHAOS_LOAD ? 1 : 0, n_json, k, tested = 0;
    char *file = kind == CHAOS_LOAD ? slurp(arg, NULL) : NULL;

    if (kind == CHAOS_LOAD)
        ck_assert_ptr_nonnull(file);
    n_json = jansson_allocs(kind == CHAOS_PARSE ? arg
                            : kind == CHAOS_LOAD ? file : "{}");
    free(file);
    for (k = 1;; k++) {
        struct config *cfg = NULL;
        char err[4096] = "";
        int rc;

        if (k > pre && k <= pre + n_json)
            continue;
        alloc_calls = 0;
        alloc_fail_at = k;
        alloc_live = 0;
        json_set_alloc_funcs(chaos_malloc, chaos_free);
        if (kind == CHAOS_PARSE) {
            rc = config_parse("c.json", arg, strlen(arg), &cfg, err,
                              sizeof err);
        } else if (kind == CHAOS_LOAD) {
            rc = config_load(arg, &cfg, err, sizeof err);
        } else {
            cfg = config_default();
            rc = cfg ? 0 : -1;
        }
        if (rc == 0 && kind == CHAOS_DEFAULT && alloc_calls >= k)
            ck_abort_msg("config_default() survived allocation %lu", k);
        config_free(cfg);
        json_set_alloc_funcs(malloc, free);
        ck_assert_msg(alloc_live == 0, "allocation %lu failing: %ld leaked",
                      k, alloc_live);
        if (alloc_calls < k) {
            ck_assert_msg(rc == want_rc, "without failures: rc %d: %s", rc,
                          err);
            break;
        }
        tested++;
        ck_assert_msg(rc == -1, "allocation %lu failed, rc %d", k, rc);
        if (kind == CHAOS_DEFAULT)
            continue;
        ck_assert_ptr_null(cfg);
        ck_assert_msg(strstr(err, "out of memory\n") != NULL,
                      "allocation %lu: %s", k, err);
    }
    ck_assert_uint_gt(tested, 0);
}

START_TEST(alloc_fail_example)
{
    chaos(CHAOS_PARSE, example, 0);
}
END_TEST

START_TEST(alloc_fail_long_pattern)
{
    char text[2048], pat[1100];

    memset(pat, 'a', sizeof pat - 1);
    pat[sizeof pat - 1] = '\0';
    memcpy(pat + 500, "/%u/", 4);
    snprintf(text, sizeof text,
             "{\"roles\": {\"r\": {\"publish\": [\"%s\"]}}}", pat);
    chaos(CHAOS_PARSE, text, 0);
}
END_TEST

START_TEST(alloc_fail_bad)
{
    chaos(CHAOS_PARSE,
          "{\"listeners\": [{\"port\": \"x\", \"tls\": {}}], \"x\": 1,"
          " \"roles\": {\"a\": {\"subscribe\": [\"#/a\", \"b\"]}},"
          " \"auth\": {\"anonymous_role\": \"b\"}}", -1);
    chaos(CHAOS_PARSE, "{\"auth\": {\"anonymous_role\": \"b\"}}", -1);
}
END_TEST

START_TEST(alloc_fail_load)
{
    chaos(CHAOS_LOAD, CONFIG_DIR "/demo.json", 0);
}
END_TEST

START_TEST(alloc_fail_default)
{
    chaos(CHAOS_DEFAULT, NULL, 0);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("good");

    tcase_add_test(tc, example_full);
    tcase_add_test(tc, empty_object_defaults);
    tcase_add_test(tc, config_default_all);
    tcase_add_test(tc, other_values);
    tcase_add_test(tc, identity_providers);
    tcase_add_test(tc, log_levels);
    tcase_add_test(tc, workers_auto);
    tcase_add_test(tc, long_patterns);
    tcase_add_test(tc, shipped_configs);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad");
    tcase_add_test(tc, load_errors);
    tcase_add_test(tc, error_buffer);
    tcase_add_test(tc, bad_dir_complete);
    tcase_add_loop_test(tc, bad_config, 0, n_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("restart");
    tcase_add_loop_test(tc, restart_changes, 0,
                        (int)(sizeof restart_rows / sizeof restart_rows[0]));
    tcase_add_test(tc, restart_changes_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, alloc_fail_example);
    tcase_add_test(tc, alloc_fail_long_pattern);
    tcase_add_test(tc, alloc_fail_bad);
    tcase_add_test(tc, alloc_fail_load);
    tcase_add_test(tc, alloc_fail_default);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed, i;

    list_bad();
    sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (i = 0; i < n_bad; i++)
        free(bad_names[i]);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
