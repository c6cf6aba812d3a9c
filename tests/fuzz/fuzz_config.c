/* libFuzzer target: config_parse() on arbitrary text.
 *
 * Each input is parsed three times:
 *   1. with a large error buffer; the allocations are counted;
 *   2. with a buffer of 1..64 bytes (from the input's length), which must
 *      give the same answer and a NUL-terminated, truncated message;
 *   3. with the k-th allocation failing (k derived from the input, past
 *      those jansson makes while loading), which must fail cleanly or
 *      succeed, never crash or leak (LeakSanitizer checks every input).
 * A configuration that parses must be a JSON text (payload.c's RFC 8259
 * scanner agrees) and keep the promises of config.h and
 * config.md: at least one listener with a port in range and a path that
 * starts with '/', roles whose patterns expand to valid filters and whose
 * mounts expand to names ending in '/', named roles that exist, limits
 * within their bounds. A failure must say why, each complete line naming
 * the file. */
#include <stdbool.h>

#include <jansson.h>

#include "acl.h"
#include "config.h"
#include "fuzz.h"
#include "payload.h"
#include "topic.h"

#define NAME "fuzz.json"

static size_t n_allocs, fail_at;

static void *counting_malloc(size_t n)
{
    n_allocs++;
    if (fail_at && n_allocs == fail_at)
        return NULL;
    return malloc(n);
}

/* The loader checks patterns with %u replaced by "u"; any safe user name
 * must then give a valid filter (or mount). Long patterns keep "u" so the
 * expansion stays within a topic's length. */
static void check_pattern(const char *pat, bool mount)
{
    static char buf[TOPIC_MAX_LEN + 1];
    const char *user = strlen(pat) < 8192 ? "alice" : "u";
    long n = acl_expand(pat, user, buf, sizeof buf);

    FUZZ_CHECK(n > 0);
    if (mount) {
        FUZZ_CHECK(buf[n - 1] == '/');
        FUZZ_CHECK(topic_name_check(buf, (size_t)n) == 0);
    } else {
        FUZZ_CHECK(topic_filter_check(buf, (size_t)n) == 0);
    }
}

static void check_config(const struct config *cfg)
{
    const struct cfg_limits *l = &cfg->limits;
    size_t i, j;

    FUZZ_CHECK(cfg->n_listeners >= 1);
    for (i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *li = &cfg->listeners[i];

        FUZZ_CHECK(li->bind && li->path && li->path[0] == '/');
        FUZZ_CHECK(li->port >= 1 && li->port <= 65535);
        if (li->tls)
            FUZZ_CHECK(li->tls->cert_file && li->tls->key_file);
    }
    FUZZ_CHECK(cfg->broker.n_uris >= 1);
    for (i = 0; i < cfg->broker.n_uris; i++)
        FUZZ_CHECK(strncmp(cfg->broker.uris[i], "tcp://", 6) == 0 ||
                   strncmp(cfg->broker.uris[i], "ssl://", 6) == 0);
    FUZZ_CHECK(cfg->broker.mqtt_version == 4 ||
               cfg->broker.mqtt_version == 5);
    FUZZ_CHECK(cfg->broker.reconnect_min_s >= 1 &&
               cfg->broker.reconnect_max_s >= cfg->broker.reconnect_min_s);
    FUZZ_CHECK(cfg->broker.client_id != NULL);
    FUZZ_CHECK(cfg->auth.cookie && cfg->auth.cookie[0]);
    FUZZ_CHECK(cfg->auth.timeout_s >= 1);
    FUZZ_CHECK(cfg->auth.password_workers >= 0 &&
               cfg->auth.password_workers <= CONFIG_PASSWORD_WORKERS_MAX);

    for (i = 0; i < cfg->n_roles; i++) {
        const struct cfg_role *r = &cfg->roles[i];

        FUZZ_CHECK(r->name && r->name[0]);
        FUZZ_CHECK(config_role(cfg, r->name) == r);
        FUZZ_CHECK(r->max_qos >= 0 && r->max_qos <= 2);
        for (j = 0; j < r->n_subscribe; j++)
            check_pattern(r->subscribe[j], false);
        for (j = 0; j < r->n_publish; j++)
            check_pattern(r->publish[j], false);
        if (r->mount)
            check_pattern(r->mount, true);
    }
    if (cfg->auth.anonymous_role)
        FUZZ_CHECK(config_role(cfg, cfg->auth.anonymous_role) != NULL);
    if (cfg->auth.jwt) {
        const struct cfg_jwt *jwt = cfg->auth.jwt;

        FUZZ_CHECK(jwt->alg != NULL);
        if (jwt->alg[0] == 'H')
            FUZZ_CHECK(jwt->secret_file != NULL);
        else
            FUZZ_CHECK(jwt->public_key_file != NULL);
        for (i = 0; i < jwt->n_default_roles; i++)
            FUZZ_CHECK(config_role(cfg, jwt->default_roles[i]) != NULL);
    }

    FUZZ_CHECK(l->max_connections >= 1 && l->max_connections_per_ip >= 1);
    FUZZ_CHECK(l->max_message_bytes >= 64 &&
               l->max_message_bytes <= 16777216);
    FUZZ_CHECK(l->max_subscriptions >= 1 && l->max_queue_bytes >= 1024);
    FUZZ_CHECK(l->publish_rate >= 1 && l->publish_burst >= 1);
    FUZZ_CHECK(l->max_errors >= 1);
    FUZZ_CHECK(l->ping_interval_s >= 1 && l->ping_interval_s <= 3600);
    FUZZ_CHECK(cfg->log_level >= LOG_LVL_ERROR &&
               cfg->log_level <= LOG_LVL_DEBUG);
}

/* Every complete line of a failure names the file. */
static void check_errors(const char *err, size_t errlen)
{
    const char *line = err;

    FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
    FUZZ_CHECK(err[0] != '\0');
    for (;;) {
        const char *nl = strchr(line, '\n');

        if (!nl)
            break;
        FUZZ_CHECK(strncmp(line, NAME ":", sizeof NAME) == 0);
        line = nl + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char err[16384];
    char small[64];
    size_t small_len = 1 + size % sizeof small, total;
    struct config *cfg = NULL;
    char *text = fuzz_dup(data, size, 0);
    int rc, rc2;

    json_set_alloc_funcs(counting_malloc, free);
    n_allocs = 0;
    fail_at = 0;
    rc = config_parse(NAME, text, size, &cfg, err, sizeof err);
    total = n_allocs;
    if (rc == 0) {
        FUZZ_CHECK(cfg != NULL);
        /* Only a JSON text (RFC 8259) is a configuration. */
        FUZZ_CHECK(json_text_valid(text, size));
        check_config(cfg);
        config_free(cfg);
    } else {
        FUZZ_CHECK(rc == -1 && cfg == NULL);
        check_errors(err, sizeof err);
    }

    memset(small, 0x55, sizeof small);
    fail_at = 0;
    rc2 = config_parse(NAME, text, size, &cfg, small, small_len);
    FUZZ_CHECK(rc2 == rc);
    FUZZ_CHECK(memchr(small, '\0', small_len) != NULL);
    FUZZ_CHECK(small_len == sizeof small || small[small_len] == 0x55);
    config_free(cfg);

    /* jansson 2.14 mishandles its own failed allocations inside
     * json_loadb() (akheron/jansson#362: the lexer ignores a failed token
     * buffer growth); those are skipped, as tests/unit/check_config.c
     * does. config_parse() allocates nothing before it calls json_loadb(). */
    n_allocs = 0;
    fail_at = 0;
    {
        json_error_t je;

        json_decref(json_loadb(text, size, JSON_REJECT_DUPLICATES, &je));
    }
    size_t in_jansson = n_allocs;
    if (total > in_jansson) {
        n_allocs = 0;
        fail_at = in_jansson + 1 +
                  (size * 2654435761u + (size ? data[size / 2] : 0)) %
                      (total - in_jansson);
        cfg = NULL;
        rc2 = config_parse(NAME, text, size, &cfg, err, sizeof err);
        FUZZ_CHECK(rc2 == 0 || rc2 == -1);
        FUZZ_CHECK((rc2 == 0) == (cfg != NULL));
        /* A failed allocation never makes a bad file good. */
        if (rc != 0)
            FUZZ_CHECK(rc2 != 0);
        if (rc2 == 0)
            check_config(cfg);
        config_free(cfg);
    }

    json_set_alloc_funcs(malloc, free);
    free(text);
    return 0;
}
