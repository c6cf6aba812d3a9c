/* The operator's configuration file (mqgate.json): types, defaults, bounds
 * and cross-key rules. I/O-free apart from reading the file itself; errors
 * are written to the caller's buffer, one per line, each as
 *   FILE:LINE: KEY: message
 * e.g. "mqgate.json:12: limits.max_message_bytes: expected integer
 * 64..16777216, got \"big\"". Types and bounds are checked first (all
 * errors reported); the rules across keys only when those pass. Memory
 * comes from jansson's allocator (json_set_alloc_funcs). */
#ifndef MQG_CONFIG_H
#define MQG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

struct cfg_tls {
    char *cert_file, *key_file, *ca_file; /* ca_file may be NULL */
    bool verify_client;
};

struct cfg_listener {
    char *bind;           /* ["127.0.0.1"] */
    int port;             /* [8080] 1..65535 */
    char *path;           /* ["/ws"], starts with '/' */
    struct cfg_tls *tls;  /* NULL: plain */
    char *static_dir;     /* NULL: none */
    bool compression;     /* [false] */
    bool http_api;        /* [false]: GET /api/events, POST /api/publish */
};

struct cfg_role {
    char *name;
    char **subscribe; size_t n_subscribe; /* patterns, may contain %u */
    char **publish; size_t n_publish;
    int max_qos;          /* [2] 0..2 */
    char *mount;          /* NULL or ends with '/', may contain %u */
};

struct cfg_broker_tls {
    char *ca_file, *cert_file, *key_file; /* each may be NULL */
    bool verify;          /* [true] */
};

struct cfg_broker {
    char **uris; size_t n_uris;   /* [tcp://127.0.0.1:1883] tcp:// or ssl:// */
    char *client_id;              /* ["mqgate-%h-%p"], not yet expanded */
    char *username;               /* NULL: none */
    char *password_file;          /* NULL: none */
    int mqtt_version;             /* [5] 4 or 5; 0: "auto" */
    int keepalive_s;              /* [30] */
    struct cfg_broker_tls *tls;   /* NULL: none */
    int reconnect_min_s, reconnect_max_s; /* [1] [30] */
    int buffer_messages;          /* [10000] */
    char *reply_prefix;           /* ["mqgate/reply/%c/"], %c: client id */
};

/* The algorithms libjwt 1.10 verifies (config_value.c's list). */
struct cfg_jwt {
    char *alg;                    /* NULL: algs only */
    char **algs; size_t n_algs;   /* [alg]; HS* RS* ES* */
    /* the key source, exactly one of: */
    char *secret_file;            /* HS* */
    char *public_key_file;        /* RS* ES* */
    char *jwks_file;              /* a local JWKS (RFC 7517) */
    char *jwks_url;               /* https://, or http:// to loopback */
    char *jwks_ca_file;           /* NULL: the system's CAs */
    int jwks_refresh_s;           /* [300] 1..86400 */
    int jwks_min_refresh_s;       /* [10] 1..3600, <= jwks_refresh_s */
    char *issuer, *audience;      /* NULL: not checked */
    char *user_claim;             /* ["sub"] */
    char *roles_claim;            /* ["roles"] */
    char **default_roles; size_t n_default_roles;
};

/* auth.http: the authentication webhook. */
struct cfg_auth_http {
    char *url;                    /* https://, or http:// to loopback */
    int timeout_s;                /* [5] 1..60 */
    char *ca_file;                /* NULL: the system's CAs */
    char *secret_file;            /* NULL: no Authorization header */
    int cache_s;                  /* [0: no cache] 0..3600 */
    int max_in_flight;            /* [64] 1..10000 */
};

struct cfg_auth {
    char *users_file;             /* NULL: none */
    struct cfg_jwt *jwt;          /* NULL: none */
    struct cfg_auth_http *http;   /* NULL: none */
    char *anonymous_role;         /* NULL: none */
    int timeout_s;                /* [10] */
    char *cookie;                 /* ["mqgate_token"] */
    bool allow_query_token;       /* [false] */
    int password_workers;         /* [0: the number of CPUs] 1..64 */
};

/* The bound of auth.password_workers (and of the number of CPUs it
 * defaults to). */
#define CONFIG_PASSWORD_WORKERS_MAX 64

struct cfg_limits {
    long max_connections;         /* [100000] */
    long max_connections_per_ip;  /* [1000] */
    long max_message_bytes;       /* [65536] */
    long max_subscriptions;       /* [64] */
    long max_queue_bytes;         /* [1048576] */
    long publish_rate;            /* [100] per second */
    long publish_burst;           /* [200] */
    long subscribe_rate;          /* [10] sub and unsub per second */
    long subscribe_burst;         /* [100] */
    long max_errors;              /* [20] in 10 s */
    long ping_interval_s;         /* [30] */
    int slow_consumer;            /* [SLOW_CLOSE] */
    long max_requests;            /* [16] waiting, per session */
};

enum { SLOW_CLOSE, SLOW_CONFLATE };

/* history (config.md, "Keys added to version 1"): absent, no history. */
struct cfg_history {
    char **filters; size_t n_filters; /* 1 or more, the $ rule as for subs */
    int qos;                      /* [1] 0..2 */
    long messages;                /* [100] 1..100000, per topic */
    long max_age_s;               /* [3600] 1..31536000 */
    long max_bytes;               /* [67108864] 65536..2147483647 */
};

struct config {
    char *path;                   /* as given to config_load() */
    struct cfg_listener *listeners; size_t n_listeners;
    char **origins; size_t n_origins; /* origins_set false: same-origin */
    bool origins_set;
    struct cfg_broker broker;
    struct cfg_auth auth;
    struct cfg_role *roles; size_t n_roles;
    struct cfg_limits limits;
    struct cfg_history *history;  /* NULL: no history */
    bool metrics;                 /* [true] */
    enum log_level log_level;     /* [info] */
    int workers;                  /* [1] 1..64; 0: "auto", the CPUs */
};

/* The bound of workers (service processes sharing the listeners). */
#define CONFIG_WORKERS_MAX 64

/* Reads and validates the file at path. On success returns 0 and sets *out
 * (free with config_free()). On failure returns -1 and writes every error
 * found, one per line, into err (always NUL-terminated, truncated to
 * errlen). Files the config names are not opened here. */
int config_load(const char *path, struct config **out, char *err,
                size_t errlen);

/* As config_load(), from text[0..len); name is used in messages. */
int config_parse(const char *name, const char *text, size_t len,
                 struct config **out, char *err, size_t errlen);

/* A configuration with every default (as an empty object would give). */
struct config *config_default(void);

void config_free(struct config *cfg);

/* The keys that take effect only at a restart (the listeners, the broker
 * connection) whose values differ from o to n, by key path in table order
 * ("listeners[0].port, broker.uris"), into buf (always NUL-terminated,
 * truncated to buflen; buf may be NULL). A list of another length is named
 * as a whole ("listeners"), its elements then not compared. Returns how
 * many keys differ: 0 when a reload changes none of them. */
size_t config_restart_changes(const struct config *o, const struct config *n,
                              char *buf, size_t buflen);

/* The role named name, or NULL. */
const struct cfg_role *config_role(const struct config *cfg,
                                   const char *name);

#endif
