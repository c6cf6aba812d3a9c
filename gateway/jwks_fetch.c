#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "clock.h"
#include "http_client.h"
#include "jwks.h"
#include "jwks_fetch.h"
#include "log.h"

/* A fetch may take this long, whatever the intervals. */
#define FETCH_TIMEOUT_MS 10000
#define WARN_MAX 2048

static struct {
    struct lws_context *ctx;
    jwks_fetched_fn *fetched;
    char *url, *ca_file;        /* NULL: not configured */
    int refresh_s, floor_s;
    struct jwks *set;
    struct http_call *call;     /* under way */
    uint64_t last_start_ms;     /* 0: never */
    lws_sorted_usec_list_t timer;
    bool timer_armed;
    struct jwks_fetch_stats st;
} F;

static void fetch(void);

/* After a failed fetch: the next one in this many seconds. */
#define RETRY_S 60

static int retry_s(void)
{
    int s = F.refresh_s < RETRY_S ? F.refresh_s : RETRY_S;

    return s < F.floor_s ? F.floor_s : s;
}

static void on_timer(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    F.timer_armed = false;
    fetch();
}

static void arm(int seconds)
{
    if (!F.ctx)
        return;
    F.timer_armed = true;
    lws_sul_schedule(F.ctx, 0, &F.timer, on_timer,
                     (lws_usec_t)seconds * LWS_US_PER_SEC);
}

/* Logs each line of text at warn, prefixed. */
static void log_lines(const char *text)
{
    const char *line = text, *nl;

    while (*line) {
        nl = strchr(line, '\n');
        log_warn("auth.jwt.jwks_url: %s: %.*s", F.url,
                 (int)(nl ? (size_t)(nl - line) : strlen(line)), line);
        if (!nl)
            break;
        line = nl + 1;
    }
}

static void install(struct jwks *set)
{
    struct jwks *old = F.set;

    F.set = set;
    if (F.fetched)
        F.fetched(set);
    jwks_free(old);
}

static void done(struct http_call *c, void *owner)
{
    char warn[WARN_MAX] = "";
    struct errbuf e = {.buf = warn, .len = sizeof(warn)};
    const char *body, *err = http_call_error(c);
    long status = http_call_status(c);
    struct jwks *set = NULL;
    size_t len;

    (void)owner;
    F.call = NULL;
    body = http_call_body(c, &len);
    if (!err && status != 200)
        errbuf_printf(&e, "HTTP status %ld\n", status);
    else if (err)
        errbuf_printf(&e, "%s\n", err);
    else
        set = jwks_new(body, len, &e);
    if (set) {
        if (warn[0])
            log_lines(warn);
        F.st.ok++;
        F.st.last_ok_unix = (uint64_t)time(NULL);
        log_info("auth.jwt.jwks_url: %s: %zu key%s", F.url, jwks_count(set),
                 jwks_count(set) == 1 ? "" : "s");
        install(set);
        arm(F.refresh_s);
        return;
    }
    F.st.failed++;
    log_lines(warn);
    log_warn("auth.jwt.jwks_url: %s: fetch failed: %s", F.url,
             F.set ? "the last good keys stay" : "no keys yet");
    if (F.fetched)
        F.fetched(F.set);
    /* again within a minute (or the refresh interval, when shorter):
     * a provider back up is seen soon, also by the tokens that ask for a
     * fetch once the floor has passed */
    arm(retry_s());
}

static void fetch(void)
{
    struct http_request r = {
        .url = F.url, .ca_file = F.ca_file,
        .timeout_ms = FETCH_TIMEOUT_MS, .max_bytes = JWKS_DOC_MAX,
    };

    if (!F.url || !F.ctx || F.call)
        return;
    if (F.timer_armed) {
        lws_sul_cancel(&F.timer);
        F.timer_armed = false;
    }
    F.last_start_ms = clock_now_ms();
    if (!(F.call = http_call_start(&r, done, NULL))) {
        F.st.failed++;
        log_warn("auth.jwt.jwks_url: %s: cannot start a fetch", F.url);
        arm(retry_s());
        return;
    }
    log_debug("auth.jwt.jwks_url: %s: fetching", F.url);
}

void jwks_fetch_start(struct lws_context *ctx, jwks_fetched_fn *fetched)
{
    F.ctx = ctx;
    F.fetched = fetched;
    fetch();
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void forget(void)
{
    if (F.call)
        http_call_disown(F.call);
    F.call = NULL;
    if (F.timer_armed)
        lws_sul_cancel(&F.timer);
    F.timer_armed = false;
    install(NULL);
    free(F.url);
    free(F.ca_file);
    F.url = F.ca_file = NULL;
    F.last_start_ms = 0;
}

void jwks_fetch_configure(const struct cfg_jwt *c)
{
    const char *url = c ? c->jwks_url : NULL;
    const char *ca = c ? c->jwks_ca_file : NULL;

    if (url && same(url, F.url) && same(ca, F.ca_file)) {
        F.refresh_s = c->jwks_refresh_s;
        F.floor_s = c->jwks_min_refresh_s;
        return;
    }
    forget();
    F.st.configured = url != NULL;
    if (!url)
        return;
    F.url = strdup(url);
    F.ca_file = ca ? strdup(ca) : NULL;
    if (!F.url || (ca && !F.ca_file)) {
        log_error("auth.jwt.jwks_url: out of memory");
        free(F.url);
        free(F.ca_file);
        F.url = F.ca_file = NULL;
        return;
    }
    F.refresh_s = c->jwks_refresh_s;
    F.floor_s = c->jwks_min_refresh_s;
    fetch();
}

void jwks_fetch_destroy(void)
{
    F.fetched = NULL;
    forget();
    F.ctx = NULL;
}

const struct jwks *jwks_fetch_set(void)
{
    return F.set;
}

bool jwks_fetch_ask(void)
{
    if (F.call)
        return true;
    if (!F.url || !F.ctx)
        return false;
    if (F.last_start_ms &&
        clock_now_ms() - F.last_start_ms < (uint64_t)F.floor_s * 1000) {
        F.st.floored++;
        return false;
    }
    fetch();
    return F.call != NULL;
}

void jwks_fetch_stats(struct jwks_fetch_stats *st)
{
    *st = F.st;
    st->keys = jwks_count(F.set);
}
