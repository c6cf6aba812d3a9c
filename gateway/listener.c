/* Listeners (listener.h): the vhosts with their TLS, and the HTTP side of
 * each (handshake checks, /healthz, /metrics, static files with their
 * security headers). Over 500 lines because the handshake checks, the
 * static files and TLS reload share the vhost's state; the HTTP API is
 * http_api.c's. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "conf.h"
#include "gateway.h"
#include "http_api.h"
#include "ipcount.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "origin.h"
#include "reuseport.h"
#include "session.h"
#include "worker.h"
#include "ws.h"


/* Shutting down: no new sessions. */
static bool refusing;

static struct listener *listeners;
static size_t n_listeners;

/* No libwebsockets validity timers (its default pings after 300 s): the
 * gateway's keepalive does it with one timer for all sessions
 * (session_keepalive()); lws keeps those per-connection timers in a sorted
 * list, which makes every insertion walk all connections. */
static const lws_retry_bo_t no_validity_timers = {
    .secs_since_valid_ping = 0,
    .secs_since_valid_hangup = 0,
};

static const struct lws_extension deflate_ext[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_no_context_takeover; "
     "client_max_window_bits"},
    {NULL, NULL, NULL},
};

/* Sent with every HTTP answer of a listener, libwebsockets' own included;
 * the Content-Security-Policy names the request's host, so it is added per
 * answer (add_csp()). */
static const struct lws_protocol_vhost_options policy_headers[] = {
    {&policy_headers[1], NULL, "x-content-type-options:", "nosniff"},
    {&policy_headers[2], NULL, "referrer-policy:", "no-referrer"},
    {NULL, NULL, "x-frame-options:", "DENY"},
};

int listener_start_all(const struct config *cfg, struct lws_context *ctx)
{
    listeners = calloc(cfg->n_listeners, sizeof(*listeners));
    if (!listeners)
        return -1;
    n_listeners = cfg->n_listeners;

    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *lc = &cfg->listeners[i];
        struct lws_context_creation_info info;
        struct listener *l = &listeners[i];
        char name[32];

        memset(&info, 0, sizeof(info));
        l->compression = lc->compression;
        l->http_api = lc->http_api;
        l->tls = lc->tls != NULL;
        if (!(l->path = strdup(lc->path)))
            return -1;
        snprintf(name, sizeof(name), "listener%zu", i);
        info.vhost_name = name;
        info.port = lc->port;
        info.protocols = ws_protocols;
        info.user = l;
        info.retry_and_idle_policy = &no_validity_timers;
        /* Not lws' "best practices" headers: their policy lets a page
         * connect to any ws: or wss: URL. */
        info.headers = &policy_headers[0];
        /* lws 4.1 binds every interface when IPv6 is on, whatever the
         * address: an IPv4 bind address turns IPv6 off for the vhost. */
        if (strchr(lc->bind, ':') == NULL) {
            info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
            if (strcmp(lc->bind, "0.0.0.0") != 0)
                info.iface = lc->bind;
        } else if (strcmp(lc->bind, "::") != 0) {
            info.iface = lc->bind;
        }
        if (lc->compression)
            info.extensions = deflate_ext;
        if (lc->tls) {
            info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
            info.ssl_cert_filepath = lc->tls->cert_file;
            info.ssl_private_key_filepath = lc->tls->key_file;
            info.ssl_ca_filepath = lc->tls->ca_file;
            if (lc->tls->verify_client)
                info.options |=
                    LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
            /* WebSocket over HTTP/2 is unreliable in lws 4.1 */
            info.alpn = "http/1.1";
        }
        if (lc->static_dir) {
            char real[PATH_MAX];

            if (!realpath(lc->static_dir, real)) {
                log_error("listeners[%zu].static_dir %s: not found", i,
                          lc->static_dir);
                return -1;
            }
            if (!(l->static_real = strdup(real)))
                return -1;
        }
        /* a worker serves its own end of the shared socket */
        if (worker_listen_fd(i) >= 0) {
            info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
            info.protocols = reuseport_protocols();
        }
        if (!(l->vh = lws_create_vhost(ctx, &info))) {
            log_error("cannot listen on %s:%d", lc->bind, lc->port);
            return -1;
        }
        if (worker_listen_fd(i) >= 0 &&
            reuseport_adopt(l->vh, worker_listen_fd(i)) < 0)
            return -1;
        log_info("listening on %s://%s:%d%s", lc->tls ? "wss" : "ws",
                 lc->bind, lc->port, lc->path);
    }
    return 0;
}

void listener_free_all(void)
{
    listener_tls_abort();
    for (size_t i = 0; i < n_listeners; i++) {
        free(listeners[i].path);
        free(listeners[i].static_real);
    }
    free(listeners);
    listeners = NULL;
    n_listeners = 0;
}

/* A context holding the certificate chain and key of t, to check them
 * before they replace anything; NULL (logged) when they do not load. */
static SSL_CTX *load_pair(const struct cfg_tls *t)
{
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());

    if (c && SSL_CTX_use_certificate_chain_file(c, t->cert_file) == 1 &&
        SSL_CTX_use_PrivateKey_file(c, t->key_file, SSL_FILETYPE_PEM) == 1 &&
        SSL_CTX_check_private_key(c) == 1)
        return c;
    log_error("reload: %s / %s: %s", t->cert_file, t->key_file,
              ERR_reason_error_string(ERR_peek_last_error()));
    ERR_clear_error();
    SSL_CTX_free(c);
    return NULL;
}

/* What listener_tls_prepare() loaded, by listener, until the commit or
 * the abort: a checked context holding the new chain and key, and the
 * name of its certificate file (in the cfg given to the prepare, which
 * outlives both). */
static struct tls_pending {
    SSL_CTX *ctx;
    const char *cert_file;
} *tls_next;

void listener_tls_abort(void)
{
    for (size_t i = 0; tls_next && i < n_listeners; i++)
        SSL_CTX_free(tls_next[i].ctx);
    free(tls_next);
    tls_next = NULL;
}

int listener_tls_prepare(const struct config *cfg)
{
    size_t n = cfg->n_listeners < n_listeners ? cfg->n_listeners : n_listeners;

    listener_tls_abort();
    if (!(tls_next = calloc(n_listeners ? n_listeners : 1,
                            sizeof(*tls_next)))) {
        log_error("reload: out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct cfg_tls *t = cfg->listeners[i].tls;
        SSL_CTX *c;

        if (!listeners[i].ssl_ctx || !t)
            continue;
        if (!(c = load_pair(t)))
            goto fail;
        tls_next[i].ctx = c;
        tls_next[i].cert_file = t->cert_file;
        /* An SSL_CTX holds one certificate per key type: a new RSA
         * certificate would sit beside the old ECDSA one, which clients
         * would still be offered. */
        if (EVP_PKEY_get_base_id(SSL_CTX_get0_privatekey(c)) !=
            EVP_PKEY_get_base_id(SSL_CTX_get0_privatekey(listeners[i].ssl_ctx))) {
            log_error("reload: listeners[%zu]: %s has another key type than "
                      "the running certificate; that change needs a restart",
                      i, t->cert_file);
            goto fail;
        }
    }
    return 0;
fail:
    listener_tls_abort();
    return -1;
}

void listener_tls_commit(void)
{
    for (size_t i = 0; tls_next && i < n_listeners; i++) {
        SSL_CTX *c = tls_next[i].ctx;
        STACK_OF(X509) *chain = NULL;

        if (!c)
            continue;
        /* What was checked, not the files again: they may have changed
         * since. Either all of it replaces the running pair or, short of
         * memory, nothing does. */
        SSL_CTX_get0_chain_certs(c, &chain);
        if (SSL_CTX_use_cert_and_key(listeners[i].ssl_ctx,
                                     SSL_CTX_get0_certificate(c),
                                     SSL_CTX_get0_privatekey(c), chain,
                                     1) != 1) {
            log_error("reload: listeners[%zu]: cannot put %s in (%s): it "
                      "keeps its certificate",
                      i, tls_next[i].cert_file,
                      ERR_reason_error_string(ERR_get_error()));
            ERR_clear_error();
            continue;
        }
        log_info("listeners[%zu]: certificate %s loaded", i,
                 tls_next[i].cert_file);
    }
    listener_tls_abort();
}

/* A host name, an IPv4 address or a bracketed IPv6 one, with an optional
 * port: nothing that could end a CSP source or a header line. */
static bool plain_host(const char *h, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)h[i]) && !strchr(".-:[]", h[i]))
            return false;
    return true;
}

/* Adds the Content-Security-Policy of the dashboard: its own scripts,
 * styles and images only, no frames, and connections only to this
 * gateway. 'self' does not cover ws: and wss: URLs in every browser, so
 * the WebSocket origin is named: the request's Host, with wss: on a TLS
 * listener and both schemes on a plain one (a TLS proxy may stand in
 * front of it). A Host that is not a plain host[:port] gets 'self' only.
 * Returns 0, or 1 when the headers do not fit. */
static int add_csp(struct lws *wsi, const struct listener *l, uint8_t **p,
                   uint8_t *end)
{
    char host[256 + 1], csp[1024];
    int hl = lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST);
    bool tls = l && l->tls;
    int n;

    if (hl <= 0 || !plain_host(host, (size_t)hl))
        hl = 0;
    n = snprintf(csp, sizeof(csp),
                 "default-src 'none'; script-src 'self'; style-src 'self'; "
                 "img-src 'self' data:; font-src 'self'; manifest-src 'self'; "
                 "connect-src 'self'%s%.*s%s%.*s; frame-ancestors 'none'; "
                 "base-uri 'none'; form-action 'self'",
                 hl && !tls ? " ws://" : "", hl && !tls ? hl : 0, host,
                 hl ? " wss://" : "", hl, host);
    if (n < 0 || (size_t)n >= sizeof(csp))
        return 1;
    return lws_add_http_header_by_name(
        wsi, (const unsigned char *)"content-security-policy:",
        (const unsigned char *)csp, n, p, end);
}

/* Writes a whole response. Returns what the callback should return. */
int listener_finish_answer(struct lws *wsi, unsigned char *start,
                           unsigned char *p, unsigned char *end,
                           const char *body, size_t len)
{
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (len) {
        if ((size_t)(end - p) < len)
            return -1;
        memcpy(p, body, len);
        if (lws_write(wsi, p, len, LWS_WRITE_HTTP_FINAL) != (int)len)
            return -1;
    }
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int respond(struct lws *wsi, unsigned status, const char *ctype,
                   const char *body, size_t len)
{
    const struct listener *l = lws_vhost_user(lws_get_vhost(wsi));
    size_t cap = LWS_PRE + 2048 + len;
    uint8_t *buf = malloc(cap), *start, *p, *end;
    int rc = -1;

    if (!buf)
        return -1;
    start = p = buf + LWS_PRE;
    end = buf + cap;
    if (lws_add_http_common_headers(wsi, status, ctype, len, &p, end) ||
        lws_add_http_header_by_token(
            wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (const unsigned char *)"no-store",
            8, &p, end) ||
        add_csp(wsi, l, &p, end))
        goto out;
    rc = listener_finish_answer(wsi, start, p, end, body, len);
out:
    free(buf);
    return rc;
}

static int respond_text(struct lws *wsi, unsigned status, const char *text)
{
    return respond(wsi, status, "text/plain; charset=utf-8", text,
                   strlen(text));
}

static const char *mime_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".ts", "text/plain; charset=utf-8"},
        {".map", "application/json"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(path, '.');

    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* Whether a path relative to static_dir may be served: segments separated
 * by single slashes, none empty (a trailing slash aside) and none starting
 * with a dot, which refuses "..", "." and hidden files and directories
 * (.git/, .env), and no backslash. */
static bool static_path_ok(const char *rel)
{
    for (const char *seg = rel;; ) {
        size_t n = strcspn(seg, "/");

        if (seg[0] == '.' || memchr(seg, '\\', n) || (n == 0 && seg[n]))
            return false;
        if (!seg[n])
            return true;
        seg += n + 1;
    }
}

/* Serves uri from the listener's static_dir. The URI has been decoded by
 * libwebsockets (%2e is a dot by now); anything that could step outside
 * the directory or reach a hidden file (see static_path_ok()), also
 * through a symlink, is refused with 404. */
static int serve_static(struct lws *wsi, const struct listener *l,
                        const char *uri)
{
    char path[PATH_MAX], real[PATH_MAX];
    uint8_t hdrs[1200], *p = hdrs;
    size_t rl = strlen(l->static_real);
    int n;

    if (uri[0] != '/' || !static_path_ok(uri + 1))
        return respond_text(wsi, HTTP_STATUS_NOT_FOUND, "not found\n");
    n = snprintf(path, sizeof(path), "%s%s%s", l->static_real, uri,
                 uri[strlen(uri) - 1] == '/' ? "index.html" : "");
    if (n < 0 || (size_t)n >= sizeof(path) || !realpath(path, real) ||
        strncmp(real, l->static_real, rl) != 0 || real[rl] != '/' ||
        !static_path_ok(real + rl + 1))
        return respond_text(wsi, HTTP_STATUS_NOT_FOUND, "not found\n");
    /* room for the terminator: libwebsockets looks for a cache-control
     * header in them with strstr() */
    if (add_csp(wsi, l, &p, hdrs + sizeof(hdrs) - 1))
        return -1;
    *p = '\0';
    n = lws_serve_http_file(wsi, real, mime_of(real), (const char *)hdrs,
                            (int)(p - hdrs));
    if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
        return -1;
    return 0;
}

/* Refuses a WebSocket upgrade with a plain HTTP answer. libwebsockets has
 * not read the request's HTTP version at this point (its status line would
 * say HTTP/1.0), so the answer is written whole; the connection closes
 * after it. Returns 1: answered. */
static int refuse_upgrade(struct lws *wsi, unsigned status, const char *why,
                          const char *text)
{
    char buf[LWS_PRE + 512];
    int n = snprintf(buf + LWS_PRE, sizeof(buf) - LWS_PRE,
                     "HTTP/1.1 %u %s\r\n"
                     "content-type: text/plain; charset=utf-8\r\n"
                     "content-length: %zu\r\n"
                     "connection: close\r\n\r\n%s",
                     status, why, strlen(text), text);

    lws_write(wsi, (unsigned char *)buf + LWS_PRE, (size_t)n,
              LWS_WRITE_HTTP_HEADERS);
    return 1;
}

static bool protocol_offered(struct lws *wsi)
{
    char buf[256], *tok, *save;
    int n = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_PROTOCOL);

    if (n <= 0)
        return true; /* none offered: accepted as v1 */
    for (tok = strtok_r(buf, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save))
        if (strcmp(tok, WS_PROTOCOL) == 0)
            return true;
    return false;
}

bool listener_origin_ok(struct lws *wsi, const struct listener *l,
                        char *origin, size_t len)
{
    const struct config *cfg = conf();
    char host[512];

    origin[0] = '\0';
    /* A browser always sends Origin; a client without one is not a
     * browser and cannot be driven by another site. */
    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0)
        return true;
    return lws_hdr_copy(wsi, origin, (int)len, WSI_TOKEN_ORIGIN) > 0 &&
           origin_allowed(origin,
                          lws_hdr_copy(wsi, host, sizeof(host),
                                       WSI_TOKEN_HOST) > 0
                              ? host
                              : NULL,
                          l->tls, cfg->origins, cfg->n_origins,
                          cfg->origins_set);
}

bool listener_full(const char *ip)
{
    const struct config *cfg = conf();

    return session_count() >= cfg->limits.max_connections ||
           session_count_ip(ip) >= (uint32_t)cfg->limits.max_connections_per_ip;
}

bool listener_refusing(void)
{
    return refusing;
}

static int confirm_upgrade(struct lws *wsi, const struct listener *l)
{
    char uri[1024], origin[512], ip[IPCOUNT_KEY_MAX];
    int n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);

    if (n <= 0 || strcmp(uri, l->path) != 0)
        return refuse_upgrade(wsi, 404, "Not Found", "not found\n");
    if (!listener_origin_ok(wsi, l, origin, sizeof(origin)))
        return refuse_upgrade(wsi, 403, "Forbidden", "origin not allowed\n");
    if (!protocol_offered(wsi))
        return refuse_upgrade(wsi, 400, "Bad Request",
                              "subprotocol " WS_PROTOCOL " required\n");
    lws_get_peer_simple(wsi, ip, sizeof(ip));
    if (refusing)
        return refuse_upgrade(wsi, 503, "Service Unavailable",
                              "shutting down\n");
    if (listener_full(ip))
        return refuse_upgrade(wsi, 503, "Service Unavailable",
                              "too many connections\n");
    return 0;
}

void listener_refuse_new(void)
{
    refusing = true;
}

int listener_http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                           void *user, void *in, size_t len)
{
    const struct listener *l;

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        l = lws_vhost_user(lws_get_vhost(wsi));
        if (strcasecmp(in, "websocket") != 0)
            return refuse_upgrade(wsi, 400, "Bad Request", "bad upgrade\n");
        return confirm_upgrade(wsi, l);
    case LWS_CALLBACK_HTTP: {
        const char *uri = in;

        l = lws_vhost_user(lws_get_vhost(wsi));
        if (conf()->metrics && strcmp(uri, "/healthz") == 0)
            return session_broker_up()
                       ? respond_text(wsi, HTTP_STATUS_OK, "ok\n")
                       : respond_text(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE,
                                      "broker down\n");
        if (conf()->metrics && strcmp(uri, "/metrics") == 0) {
            char *text = NULL;
            size_t tlen = 0;
            int rc;

            if (worker_metrics(&text, &tlen) < 0)
                return respond_text(wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR,
                                    "out of memory\n");
            rc = respond(wsi, HTTP_STATUS_OK,
                         "text/plain; version=0.0.4; charset=utf-8", text,
                         tlen);
            free(text);
            return rc;
        }
        if (http_api_route(l, uri))
            return http_api_request(wsi, user, l, uri);
        if (l && l->static_real)
            return serve_static(wsi, l, uri);
        return respond_text(wsi, HTTP_STATUS_NOT_FOUND, "not found\n");
    }
    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
        /* libwebsockets asks whether to accept a client certificate and
         * takes 0 for yes, whatever OpenSSL found: len is OpenSSL's
         * verdict (preverify_ok), which must stand. */
        return len ? 0 : 1;
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS: {
        /* user is the vhost's SSL_CTX, in the vhost: kept for reloads */
        struct listener *tl = lws_vhost_user((struct lws_vhost *)in);

        if (tl)
            tl->ssl_ctx = user;
        return 0;
    }
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;
    default:
        if (http_api_owns(reason, user))
            return http_api_callback(wsi, reason, user, in, len);
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}
