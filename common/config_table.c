/* The key tables of the config file (config.md): one table per JSON
 * object, one row per key with its type, flags, bounds, default and check
 * (redis' createIntConfig idea; nginx's reload flags). The loader, the
 * freeing and the restart comparison all walk these tables.
 *
 * Bounds (the ones config.md leaves open are chosen here):
 *
 *   listeners[i].port             1..65535        [8080]
 *   listeners[i].path             starts with '/' ["/ws"]
 *   listeners                     1 or more       [one plain listener]
 *   broker.uris                   1 or more, tcp:// or ssl://
 *   broker.mqtt_version           4..5 or "auto"  [5] ("auto": stored as 0;
 *                                                  MQTT 5, then 3.1.1 when
 *                                                  the broker refuses 5)
 *   broker.keepalive_s            0..65535        [30]  (0: no keepalive)
 *   broker.reconnect_min_s        1..3600         [1]
 *   broker.reconnect_max_s        1..86400        [30]  >= reconnect_min_s
 *   broker.buffer_messages        0..1000000      [10000]
 *   broker.reply_prefix           ends with '/', no wildcards
 *                                                 ["mqgate/reply/%c/"]
 *   auth.timeout_s                1..3600         [10]
 *   auth.password_workers         1..64           [0: the number of CPUs,
 *                                                  which the gateway reads]
 *   auth.jwt.jwks_refresh_s       1..86400        [300]
 *   auth.jwt.jwks_min_refresh_s   1..3600         [10]  <= jwks_refresh_s
 *   auth.http.timeout_s           1..60           [5]
 *   auth.http.cache_s             0..3600         [0]
 *   auth.http.max_in_flight       1..10000        [64]
 *   roles.X.max_qos               0..2            [2]
 *   limits.max_connections        1..10000000     [100000]
 *   limits.max_connections_per_ip 1..10000000     [1000]
 *   limits.max_message_bytes      64..16777216    [65536]
 *   limits.max_subscriptions      1..100000       [64]
 *   limits.max_queue_bytes        1024..1073741824 [1048576]
 *   limits.publish_rate           1..1000000      [100]
 *   limits.publish_burst          1..10000000     [200]
 *   limits.subscribe_rate         1..1000000      [10]
 *   limits.subscribe_burst        1..10000000     [100]
 *   limits.max_errors             1..100000       [20]
 *   limits.ping_interval_s        1..3600         [30]
 *   limits.max_requests           1..10000        [16]
 *   history.messages              1..100000       [100]
 *   history.max_age_s             1..31536000     [3600]
 *   history.max_bytes             65536..2147483647 [67108864]
 *   workers                       1..64 or "auto" [1] ("auto": stored as
 *                                                  0, the number of CPUs,
 *                                                  which the gateway reads)
 *
 * KF_RESTART marks what the gateway reads at start only: the listeners
 * (but for their certificate and key, which a reload replaces), the
 * broker connection and the history. */
#include <stdint.h>

#include "config_int.h"

#define NKEYS(k) (sizeof(k) / sizeof((k)[0]))
#define TABLE(k, st) { k, NKEYS(k), sizeof(st) }
#define R KF_RESTART

/* The field's C type picks K_INT or K_LONG; any other type fails to
 * compile. */
#define NUM(n, st, f, fl, lo, hi, d) \
    { .name = n, .kind = _Generic(((st *)0)->f, int: K_INT, long: K_LONG), \
      .flags = fl, .off = offsetof(st, f), .min = lo, .max = hi, .dflt = d }
#define BOOL(n, st, f, fl, d) \
    { .name = n, .kind = K_BOOL, .flags = fl, .off = offsetof(st, f), \
      .dflt = d }
#define STR(n, st, f, fl, d, chk) \
    { .name = n, .kind = K_STR, .flags = fl, .off = offsetof(st, f), \
      .dstr = d, .check = chk }
#define STRV(n, st, f, fn, fl, lo, d, chk) \
    { .name = n, .kind = K_STRV, .flags = fl, .off = offsetof(st, f), \
      .off_n = offsetof(st, fn), .min = lo, .dstrv = d, .check = chk }
#define OBJ(n, o, t) { .name = n, .kind = K_OBJ, .off = o, .sub = &t }
#define OBJP(n, st, f, fl, t) \
    { .name = n, .kind = K_OBJP, .flags = fl, .off = offsetof(st, f), \
      .sub = &t }

static const struct key listener_tls_keys[] = {
    STR("cert_file", struct cfg_tls, cert_file, KF_REQUIRED, NULL,
        config_value_nonempty),
    STR("key_file", struct cfg_tls, key_file, KF_REQUIRED, NULL,
        config_value_nonempty),
    STR("ca_file", struct cfg_tls, ca_file, R, NULL, config_value_nonempty),
    BOOL("verify_client", struct cfg_tls, verify_client, R, false),
};
static const struct table listener_tls_table =
    TABLE(listener_tls_keys, struct cfg_tls);

static const struct key listener_keys[] = {
    STR("bind", struct cfg_listener, bind, R, "127.0.0.1", config_value_bind),
    NUM("port", struct cfg_listener, port, R, 1, 65535, 8080),
    STR("path", struct cfg_listener, path, R, "/ws", config_value_url_path),
    OBJP("tls", struct cfg_listener, tls, R, listener_tls_table),
    STR("static_dir", struct cfg_listener, static_dir, R, NULL,
        config_value_nonempty),
    BOOL("compression", struct cfg_listener, compression, R, false),
    BOOL("http_api", struct cfg_listener, http_api, R, false),
};
static const struct table listener_table =
    TABLE(listener_keys, struct cfg_listener);

static const struct key broker_tls_keys[] = {
    STR("ca_file", struct cfg_broker_tls, ca_file, R, NULL,
        config_value_nonempty),
    STR("cert_file", struct cfg_broker_tls, cert_file, R, NULL,
        config_value_nonempty),
    STR("key_file", struct cfg_broker_tls, key_file, R, NULL,
        config_value_nonempty),
    BOOL("verify", struct cfg_broker_tls, verify, R, true),
};
static const struct table broker_tls_table =
    TABLE(broker_tls_keys, struct cfg_broker_tls);

static const char *const default_uris[] = { "tcp://127.0.0.1:1883", NULL };

static const struct key broker_keys[] = {
    STRV("uris", struct cfg_broker, uris, n_uris, R, 1, default_uris,
         config_value_uri),
    STR("client_id", struct cfg_broker, client_id, R, "mqgate-%h-%p",
        config_value_nonempty),
    STR("username", struct cfg_broker, username, R, NULL,
        config_value_nonempty),
    STR("password_file", struct cfg_broker, password_file, R, NULL,
        config_value_nonempty),
    NUM("mqtt_version", struct cfg_broker, mqtt_version, R | KF_AUTO, 4, 5, 5),
    NUM("keepalive_s", struct cfg_broker, keepalive_s, R, 0, 65535, 30),
    OBJP("tls", struct cfg_broker, tls, R, broker_tls_table),
    NUM("reconnect_min_s", struct cfg_broker, reconnect_min_s, R, 1, 3600, 1),
    NUM("reconnect_max_s", struct cfg_broker, reconnect_max_s, R, 1, 86400,
        30),
    NUM("buffer_messages", struct cfg_broker, buffer_messages, R, 0, 1000000,
        10000),
    STR("reply_prefix", struct cfg_broker, reply_prefix, R,
        "mqgate/reply/%c/", config_value_reply_prefix),
};
static const struct table broker_table =
    TABLE(broker_keys, struct cfg_broker);

static const struct key jwt_keys[] = {
    STR("alg", struct cfg_jwt, alg, 0, NULL, config_value_alg),
    STRV("algs", struct cfg_jwt, algs, n_algs, 0, 1, NULL, config_value_alg),
    STR("secret_file", struct cfg_jwt, secret_file, 0, NULL,
        config_value_nonempty),
    STR("public_key_file", struct cfg_jwt, public_key_file, 0, NULL,
        config_value_nonempty),
    STR("jwks_file", struct cfg_jwt, jwks_file, 0, NULL,
        config_value_nonempty),
    STR("jwks_url", struct cfg_jwt, jwks_url, 0, NULL, config_value_http_url),
    STR("jwks_ca_file", struct cfg_jwt, jwks_ca_file, 0, NULL,
        config_value_nonempty),
    NUM("jwks_refresh_s", struct cfg_jwt, jwks_refresh_s, 0, 1, 86400, 300),
    NUM("jwks_min_refresh_s", struct cfg_jwt, jwks_min_refresh_s, 0, 1, 3600,
        10),
    STR("issuer", struct cfg_jwt, issuer, 0, NULL, config_value_nonempty),
    STR("audience", struct cfg_jwt, audience, 0, NULL, config_value_nonempty),
    STR("user_claim", struct cfg_jwt, user_claim, 0, "sub",
        config_value_nonempty),
    STR("roles_claim", struct cfg_jwt, roles_claim, 0, "roles",
        config_value_nonempty),
    STRV("default_roles", struct cfg_jwt, default_roles, n_default_roles, 0,
         0, NULL, config_value_role),
};
static const struct table jwt_table = TABLE(jwt_keys, struct cfg_jwt);

static const struct key auth_http_keys[] = {
    STR("url", struct cfg_auth_http, url, KF_REQUIRED, NULL,
        config_value_http_url),
    NUM("timeout_s", struct cfg_auth_http, timeout_s, 0, 1, 60, 5),
    STR("ca_file", struct cfg_auth_http, ca_file, 0, NULL,
        config_value_nonempty),
    STR("secret_file", struct cfg_auth_http, secret_file, 0, NULL,
        config_value_nonempty),
    NUM("cache_s", struct cfg_auth_http, cache_s, 0, 0, 3600, 0),
    NUM("max_in_flight", struct cfg_auth_http, max_in_flight, 0, 1, 10000,
        64),
};
static const struct table auth_http_table =
    TABLE(auth_http_keys, struct cfg_auth_http);

static const struct key auth_keys[] = {
    STR("users_file", struct cfg_auth, users_file, 0, NULL,
        config_value_nonempty),
    OBJP("jwt", struct cfg_auth, jwt, 0, jwt_table),
    OBJP("http", struct cfg_auth, http, 0, auth_http_table),
    STR("anonymous_role", struct cfg_auth, anonymous_role, KF_NULL, NULL,
        config_value_role),
    NUM("timeout_s", struct cfg_auth, timeout_s, 0, 1, 3600, 10),
    STR("cookie", struct cfg_auth, cookie, 0, "mqgate_token",
        config_value_cookie),
    BOOL("allow_query_token", struct cfg_auth, allow_query_token, 0, false),
    NUM("password_workers", struct cfg_auth, password_workers, 0,
        1, CONFIG_PASSWORD_WORKERS_MAX, 0),
};
static const struct table auth_table = TABLE(auth_keys, struct cfg_auth);

static const struct key role_keys[] = {
    STRV("subscribe", struct cfg_role, subscribe, n_subscribe, 0, 0, NULL,
         config_value_filter),
    STRV("publish", struct cfg_role, publish, n_publish, 0, 0, NULL,
         config_value_filter),
    NUM("max_qos", struct cfg_role, max_qos, 0, 0, 2, 2),
    STR("mount", struct cfg_role, mount, 0, NULL, config_value_mount),
};
static const struct table role_table = TABLE(role_keys, struct cfg_role);

/* In the order of SLOW_CLOSE, SLOW_CONFLATE. */
static const char *const slow_consumers[] = { "close", "conflate", NULL };

static const struct key limits_keys[] = {
    NUM("max_connections", struct cfg_limits, max_connections, 0,
        1, 10000000, 100000),
    NUM("max_connections_per_ip", struct cfg_limits, max_connections_per_ip,
        0, 1, 10000000, 1000),
    NUM("max_message_bytes", struct cfg_limits, max_message_bytes, 0,
        64, 16777216, 65536),
    NUM("max_subscriptions", struct cfg_limits, max_subscriptions, 0,
        1, 100000, 64),
    NUM("max_queue_bytes", struct cfg_limits, max_queue_bytes, 0,
        1024, 1073741824, 1048576),
    NUM("publish_rate", struct cfg_limits, publish_rate, 0, 1, 1000000, 100),
    NUM("publish_burst", struct cfg_limits, publish_burst, 0,
        1, 10000000, 200),
    NUM("subscribe_rate", struct cfg_limits, subscribe_rate, 0,
        1, 1000000, 10),
    NUM("subscribe_burst", struct cfg_limits, subscribe_burst, 0,
        1, 10000000, 100),
    NUM("max_errors", struct cfg_limits, max_errors, 0, 1, 100000, 20),
    NUM("ping_interval_s", struct cfg_limits, ping_interval_s, 0, 1, 3600,
        30),
    NUM("max_requests", struct cfg_limits, max_requests, 0, 1, 10000, 16),
    { .name = "slow_consumer", .kind = K_ENUM,
      .off = offsetof(struct cfg_limits, slow_consumer), .dflt = SLOW_CLOSE,
      .names = slow_consumers, .expect = "expected \"close\" or \"conflate\"" },
};
static const struct table limits_table =
    TABLE(limits_keys, struct cfg_limits);

static const struct key history_keys[] = {
    STRV("filters", struct cfg_history, filters, n_filters,
         KF_REQUIRED | R, 1, NULL, config_value_filter),
    NUM("qos", struct cfg_history, qos, R, 0, 2, 1),
    NUM("messages", struct cfg_history, messages, R, 1, 100000, 100),
    NUM("max_age_s", struct cfg_history, max_age_s, R, 1, 31536000, 3600),
    NUM("max_bytes", struct cfg_history, max_bytes, R, 65536, 2147483647,
        67108864),
};
static const struct table history_table =
    TABLE(history_keys, struct cfg_history);

/* In the order of enum log_level. */
static const char *const log_levels[] = {
    "error", "warn", "info", "debug", NULL
};

/* "log" is an object in the file but its one key lives in struct config. */
static const struct key log_keys[] = {
    { .name = "level", .kind = K_ENUM,
      .off = offsetof(struct config, log_level), .dflt = LOG_LVL_INFO,
      .names = log_levels,
      .expect = "expected one of error, warn, info, debug" },
};
static const struct table log_table = TABLE(log_keys, struct config);

static const struct key root_keys[] = {
    { .name = "listeners", .kind = K_OBJV, .flags = R,
      .off = offsetof(struct config, listeners),
      .off_n = offsetof(struct config, n_listeners),
      .min = 1, .dflt = 1, .sub = &listener_table },
    STRV("origins", struct config, origins, n_origins, 0, 0, NULL,
         config_value_origin),
    OBJ("broker", offsetof(struct config, broker), broker_table),
    OBJ("auth", offsetof(struct config, auth), auth_table),
    { .name = "roles", .kind = K_OBJMAP,
      .off = offsetof(struct config, roles),
      .off_n = offsetof(struct config, n_roles),
      .name_off = offsetof(struct cfg_role, name), .check = config_value_role,
      .sub = &role_table },
    OBJ("limits", offsetof(struct config, limits), limits_table),
    OBJP("history", struct config, history, R, history_table),
    BOOL("metrics", struct config, metrics, 0, true),
    OBJ("log", 0, log_table),
    NUM("workers", struct config, workers, R | KF_AUTO, 1,
        CONFIG_WORKERS_MAX, 1),
};
const struct table config_table_root = TABLE(root_keys, struct config);

/* The walker marks seen keys in a 64-bit mask. */
_Static_assert(NKEYS(broker_keys) <= 64 && NKEYS(root_keys) <= 64 &&
               NKEYS(limits_keys) <= 64 && NKEYS(jwt_keys) <= 64,
               "a table has more keys than the walker can track");
