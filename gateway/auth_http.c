/* The webhook (auth_http.h).
 *
 * Decisions:
 *   - A positive answer is cached under an HMAC-SHA-256 (a key drawn at
 *     start) of the whole request body: the same credentials from the
 *     same address and origin. Only that digest, the user and the role
 *     names are kept, never a password or token. An attempt carrying an
 *     OTP is never answered from the cache: that would accept the code
 *     again. An entry lasts cache_s seconds, and never past its answer's
 *     expires_at.
 *   - The in-flight bound counts calls from their start to their answer,
 *     also those whose session went away meanwhile: they still hold a
 *     connection to the webhook. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth_http.h"
#include "clock.h"
#include "conf.h"
#include "http_client.h"
#include "jbuf.h"
#include "log.h"
#include "readfile.h"
#include "webhook.h"

#define ANSWER_MAX (64 * 1024)
#define SECRET_MAX 4096
#define CACHE_MAX 4096
#define DIGEST_LEN 32

/* What the client is told (auth_failed); the log has the detail. */
#define SAY_NO_ANSWER "the authentication service did not answer"
#define SAY_REFUSED "the authentication service refused"
#define SAY_MALFORMED "the authentication service's answer is malformed"
#define SAY_BUSY "too many authentications under way: try again"
#define SAY_OOM "the gateway is short of memory"

struct cache_entry {
    bool used;
    unsigned char digest[DIGEST_LEN];
    uint64_t until_ms;          /* monotonic */
    struct webhook_answer ans;
};

/* What a call carries back to done(). */
struct ask {
    auth_http_done_fn *done;    /* NULL: the owner went away */
    void *owner;
    bool cacheable;
    unsigned char digest[DIGEST_LEN];
};

static struct {
    char *url, *ca_file, *secret; /* of the running config */
    int timeout_s, cache_s, max_in_flight;
    unsigned char key[32];      /* the cache's HMAC key */
    bool keyed;
    struct cache_entry *cache;  /* CACHE_MAX, a ring */
    size_t cache_next;
    uint64_t in_flight;
    struct auth_http_stats st;
} W;

static struct {
    bool ready;
    char *secret;               /* read by prepare */
    const struct cfg_auth_http *c;
} pending;

static void wipe_free(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
    free(s);
}

static void cache_clear(void)
{
    for (size_t i = 0; W.cache && i < CACHE_MAX; i++)
        if (W.cache[i].used) {
            webhook_answer_clear(&W.cache[i].ans);
            W.cache[i].used = false;
        }
}

void auth_http_abort(void)
{
    wipe_free(pending.secret);
    memset(&pending, 0, sizeof(pending));
}

static void *plain_alloc(size_t n)
{
    return malloc(n);
}

/* The secret file less one trailing newline, or NULL (logged). */
static char *read_secret(const char *path)
{
    static const struct readfile_alloc a = {plain_alloc, free};
    char *buf, *s;
    size_t len;

    if (readfile(path, SECRET_MAX, &a, &buf, &len) < 0) {
        log_error("auth.http.secret_file: %s: %s", path,
                  errno == EFBIG ? "larger than 4096 bytes" : strerror(errno));
        return NULL;
    }
    if (len && buf[len - 1] == '\n')
        len--;
    if (len == 0 || memchr(buf, '\n', len) || memchr(buf, '\r', len) ||
        memchr(buf, '\0', len)) {
        log_error("auth.http.secret_file: %s: %s", path,
                  len ? "holds a line break or NUL, which no header can "
                        "carry"
                      : "empty");
        explicit_bzero(buf, len);
        free(buf);
        return NULL;
    }
    if (!(s = malloc(len + 1))) {
        log_error("auth.http.secret_file: out of memory");
        explicit_bzero(buf, len);
        free(buf);
        return NULL;
    }
    memcpy(s, buf, len);
    s[len] = '\0';
    explicit_bzero(buf, len);
    free(buf);
    return s;
}

int auth_http_prepare(const struct config *cfg)
{
    auth_http_abort();
    pending.c = cfg->auth.http;
    if (pending.c && pending.c->secret_file &&
        !(pending.secret = read_secret(pending.c->secret_file)))
        return -1;
    pending.ready = true;
    return 0;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

void auth_http_commit(void)
{
    const struct cfg_auth_http *c = pending.c;
    bool changed;

    if (!pending.ready)
        return;
    changed = !c || !same(c->url, W.url) || !same(pending.secret, W.secret) ||
              (W.cache_s && c->cache_s < W.cache_s);
    if (changed)
        cache_clear();
    wipe_free(W.secret);
    free(W.url);
    free(W.ca_file);
    W.url = W.ca_file = W.secret = NULL;
    if (c) {
        W.url = strdup(c->url);
        W.ca_file = c->ca_file ? strdup(c->ca_file) : NULL;
        W.timeout_s = c->timeout_s;
        W.cache_s = c->cache_s;
        W.max_in_flight = c->max_in_flight;
        W.secret = pending.secret;
        pending.secret = NULL;
        if (!W.url || (c->ca_file && !W.ca_file))
            log_error("auth.http: out of memory: the webhook is off");
        if (W.cache_s && !W.cache &&
            !(W.cache = calloc(CACHE_MAX, sizeof(*W.cache))))
            log_warn("auth.http.cache_s: out of memory: no cache");
        if (!W.keyed && RAND_bytes(W.key, sizeof(W.key)) == 1)
            W.keyed = true;
    }
    auth_http_abort();
}

void auth_http_destroy(void)
{
    auth_http_abort();
    cache_clear();
    free(W.cache);
    wipe_free(W.secret);
    free(W.url);
    free(W.ca_file);
    explicit_bzero(W.key, sizeof(W.key));
    memset(&W, 0, sizeof(W));
}

bool auth_http_enabled(void)
{
    return W.url != NULL;
}

void auth_http_result_clear(struct auth_http_result *res)
{
    free(res->user);
    free(res->roles);
    memset(res, 0, sizeof(*res));
}

/* res from a verified answer: the user and the roles the running config
 * knows. 0, or -1 when memory is short. */
static int fill(struct auth_http_result *res, const struct webhook_answer *a)
{
    const struct config *cfg = conf();

    memset(res, 0, sizeof(*res));
    if (!(res->user = strdup(a->user)) ||
        !(res->roles = calloc(a->n_roles + 1, sizeof(*res->roles)))) {
        auth_http_result_clear(res);
        res->reason = SAY_OOM;
        res->detail = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < a->n_roles; i++) {
        const struct cfg_role *r = config_role(cfg, a->roles[i]);
        size_t k;

        for (k = 0; r && k < res->n_roles && res->roles[k] != r; k++)
            ;
        if (r && k == res->n_roles)
            res->roles[res->n_roles++] = r;
    }
    res->ok = true;
    res->has_expiry = a->has_expiry;
    res->expires_at = (time_t)a->expires_at;
    return 0;
}

static struct cache_entry *cache_find(const unsigned char *digest)
{
    uint64_t now = clock_now_ms();

    for (size_t i = 0; W.cache && i < CACHE_MAX; i++) {
        struct cache_entry *e = &W.cache[i];

        if (!e->used || memcmp(e->digest, digest, DIGEST_LEN) != 0)
            continue;
        if (e->until_ms <= now ||
            (e->ans.has_expiry && e->ans.expires_at <= (int64_t)time(NULL))) {
            webhook_answer_clear(&e->ans);
            e->used = false;
            return NULL;
        }
        return e;
    }
    return NULL;
}

/* Keeps a (taken over) under digest for cache_s seconds. */
static void cache_put(const unsigned char *digest, struct webhook_answer *a)
{
    struct cache_entry *e = cache_find(digest);

    if (!W.cache || !W.cache_s) {
        webhook_answer_clear(a);
        return;
    }
    if (!e) {
        e = &W.cache[W.cache_next];
        W.cache_next = (W.cache_next + 1) % CACHE_MAX;
    }
    if (e->used)
        webhook_answer_clear(&e->ans);
    e->used = true;
    memcpy(e->digest, digest, DIGEST_LEN);
    e->until_ms = clock_now_ms() + (uint64_t)W.cache_s * 1000;
    e->ans = *a;
    memset(a, 0, sizeof(*a));
}

static void on_answer(struct http_call *c, void *owner)
{
    struct ask *ask = owner;
    struct auth_http_result res = {0};
    struct webhook_answer a;
    const char *body, *why, *err = http_call_error(c);
    long status = http_call_status(c);
    char detail[64];
    size_t len;

    W.in_flight--;
    body = http_call_body(c, &len);
    if (err) {
        W.st.failed++;
        res.reason = SAY_NO_ANSWER;
        res.detail = err;
    } else if (status != 200) {
        W.st.refused++;
        res.reason = SAY_REFUSED;
        snprintf(detail, sizeof(detail), "the webhook answered HTTP %ld",
                 status);
        res.detail = detail;
    } else if (webhook_answer_parse(body, len, (int64_t)time(NULL), &a,
                                    &why) < 0) {
        W.st.malformed++;
        res.reason = SAY_MALFORMED;
        res.detail = why;
    } else {
        W.st.ok++;
        if (fill(&res, &a) == 0 && ask->cacheable)
            cache_put(ask->digest, &a);
        webhook_answer_clear(&a);
    }
    if (ask->done)
        ask->done(ask->owner, &res);
    auth_http_result_clear(&res);
    free(ask);
}

enum auth_http_ask auth_http_ask(const struct auth_http_query *q,
                                 void *owner, auth_http_done_fn *done,
                                 struct http_call **call,
                                 struct auth_http_result *res)
{
    struct http_request r = {0};
    struct cache_entry *e;
    struct ask *ask = NULL;
    struct jbuf b;
    unsigned int dlen = 0;

    memset(res, 0, sizeof(*res));
    *call = NULL;
    jbuf_init(&b);
    if (q->token)
        webhook_request_token(&b, q->token, q->address, q->origin);
    else
        webhook_request_password(&b, q->user ? q->user : "",
                                 q->password ? q->password : "", q->otp,
                                 q->address, q->origin);
    if (b.failed || !(ask = calloc(1, sizeof(*ask)))) {
        res->reason = SAY_OOM;
        res->detail = "out of memory";
        goto busy;
    }
    ask->cacheable = W.cache_s && W.keyed && !q->otp &&
                     HMAC(EVP_sha256(), W.key, sizeof(W.key),
                          (const unsigned char *)b.p, b.len, ask->digest,
                          &dlen) && dlen == DIGEST_LEN;
    if (ask->cacheable && (e = cache_find(ask->digest))) {
        W.st.cached++;
        explicit_bzero(b.p, b.len);
        jbuf_free(&b);
        free(ask);
        if (fill(res, &e->ans) < 0)
            return AUTH_HTTP_BUSY;
        return AUTH_HTTP_CACHED;
    }
    if (W.in_flight >= (uint64_t)W.max_in_flight) {
        res->reason = SAY_BUSY;
        res->detail = "more than auth.http.max_in_flight calls waiting";
        goto busy;
    }
    ask->done = done;
    ask->owner = owner;
    r.url = W.url;
    r.body = b.p;
    r.body_len = b.len;
    r.bearer = W.secret;
    r.ca_file = W.ca_file;
    r.timeout_ms = (long)W.timeout_s * 1000;
    r.max_bytes = ANSWER_MAX;
    if (!(*call = http_call_start(&r, on_answer, ask))) {
        res->reason = SAY_BUSY;
        res->detail = "the webhook call cannot start";
        goto busy;
    }
    W.in_flight++;
    explicit_bzero(b.p, b.len);
    jbuf_free(&b);
    return AUTH_HTTP_ASKED;
busy:
    W.st.busy++;
    if (b.p)
        explicit_bzero(b.p, b.len);
    jbuf_free(&b);
    free(ask);
    return AUTH_HTTP_BUSY;
}

void auth_http_forget(struct http_call *call)
{
    struct ask *ask = call ? http_call_owner(call) : NULL;

    if (ask)
        ask->done = NULL;
}

void auth_http_stats(struct auth_http_stats *st)
{
    size_t n = 0;

    for (size_t i = 0; W.cache && i < CACHE_MAX; i++)
        n += W.cache[i].used;
    *st = W.st;
    st->in_flight = W.in_flight;
    st->cache_entries = n;
}
