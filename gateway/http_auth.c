#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "auth_int.h"
#include "auth_users.h"
#include "base64.h"
#include "conf.h"
#include "http_auth.h"
#include "log.h"
#include "metrics.h"
#include "session.h"
#include "session_int.h"
#include "utf8.h"

#define AUTHZ_MAX 8192

/* Whether the request is a page's fetch() or XMLHttpRequest
 * (Sec-Fetch-Mode other than navigate): a Basic challenge would make the
 * browser open its own sign-in dialog over the page (and hang a headless
 * one), so such a request is not offered Basic. */
static bool from_script(struct lws *wsi)
{
    char mode[32];
    int n = lws_hdr_custom_copy(wsi, mode, sizeof(mode), "sec-fetch-mode:",
                                15);

    return n > 0 && strcmp(mode, "navigate") != 0;
}

const char *http_auth_challenge(struct lws *wsi)
{
    const struct config *cfg = conf();
    bool basic = cfg->auth.users_file && !from_script(wsi);

    if (cfg->auth.jwt && basic)
        return "Bearer realm=\"mqgate\", Basic realm=\"mqgate\", "
               "charset=\"UTF-8\"";
    if (basic)
        return "Basic realm=\"mqgate\", charset=\"UTF-8\"";
    return "Bearer realm=\"mqgate\"";
}

static enum http_auth_rc refused(const char **code, const char *c, char *msg,
                                 size_t len, const char *why)
{
    *code = c;
    snprintf(msg, len, "%s", why);
    return HA_REFUSED;
}

/* Authorization: Basic: user and password onto the password workers. */
static enum http_auth_rc basic(struct session *s, const char *b64,
                               const char **code, char *msg, size_t len)
{
    size_t n = strlen(b64), dlen = 0;
    char *dec = malloc(n + 1), *colon;
    const char *why;
    enum http_auth_rc rc;

    if (!dec)
        return refused(code, "auth_failed", msg, len, "out of memory");
    if (base64_decode(b64, n, dec, &dlen) < 0 ||
        !(colon = memchr(dec, ':', dlen)) || colon == dec ||
        memchr(dec, '\0', dlen) || !utf8_valid(dec, dlen)) {
        rc = refused(code, "auth_failed", msg, len,
                     "Basic credentials: expected base64 of user:password");
        goto out;
    }
    dec[dlen] = '\0';
    *colon = '\0';
    if (!auth_users_enabled()) {
        rc = refused(code, "auth_failed", msg, len,
                     "password authentication is not configured");
        goto out;
    }
    if (strlen(colon + 1) > AUTH_USERS_PASSWORD_MAX) {
        rc = refused(code, "auth_failed", msg, len, "password too long");
        goto out;
    }
    /* no one-time code: a user with a TOTP secret is refused */
    if (!(s->auth_job = auth_users_submit(dec, colon + 1, NULL, s->ip, s,
                                          &why))) {
        metrics_auth(AUTH_PASSWORD, false);
        log_failure(auth_busy_log, s,
                    "password authentication refused at once: %s", why);
        rc = refused(code, "auth_failed", msg, len,
                     "too many authentications under way: try again");
        goto out;
    }
    rc = HA_PENDING;
out:
    explicit_bzero(dec, n + 1);
    free(dec);
    return rc;
}

enum http_auth_rc http_auth(struct session *s, const char **code, char *msg,
                            size_t len)
{
    char *buf = malloc(AUTHZ_MAX);
    enum http_auth_rc rc;
    int n;

    if (!buf)
        return refused(code, "auth_failed", msg, len, "out of memory");
    n = lws_hdr_copy(s->wsi, buf, AUTHZ_MAX, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 6 && strncasecmp(buf, "Basic ", 6) == 0) {
        rc = basic(s, buf + 6, code, msg, len);
    } else if (auth_handshake_token(s->wsi, buf, AUTHZ_MAX) == 0) {
        switch (auth_token(s, buf, msg, len)) {
        case 0:
            rc = HA_OK;
            break;
        case 1:
            rc = HA_PENDING;
            break;
        default:
            *code = "auth_failed";    /* msg says why */
            rc = HA_REFUSED;
            break;
        }
    } else if (n > 0) {
        rc = refused(code, "auth_failed", msg, len,
                     "Authorization: expected Bearer or Basic");
    } else if (session_set_anonymous(s) == 0) {
        rc = HA_OK;
    } else {
        rc = refused(code, "unauthenticated", msg, len,
                     "credentials are needed");
    }
    explicit_bzero(buf, AUTHZ_MAX);
    free(buf);
    return rc;
}
