/* The credentials of an HTTP API request (protocol.md, "Authentication
 * and origins for HTTP"): Authorization: Bearer, the cookie, ?token= when
 * allowed (a JWT, or the webhook's for a token it is not: auth.http),
 * Authorization: Basic against the users file (on the password workers,
 * never here), else the anonymous role. Service thread only. */
#ifndef MQG_HTTP_AUTH_H
#define MQG_HTTP_AUTH_H

#include <stddef.h>

#include <libwebsockets.h>

struct session;

enum http_auth_rc {
    HA_OK,        /* s has its identity */
    HA_PENDING,   /* a check that waits (a password on the workers, a
                     token for the key set or the webhook):
                     s->tp->auth_done() follows */
    HA_REFUSED,   /* *code (auth_failed, unauthenticated) and msg */
};

enum http_auth_rc http_auth(struct session *s, const char **code, char *msg,
                            size_t len);

/* The WWW-Authenticate challenge of a 401 to the request on wsi: the
 * schemes configured, but Basic only for a request that is not a page's
 * fetch() (Sec-Fetch-Mode), where a browser would show its own dialog. */
const char *http_auth_challenge(struct lws *wsi);

#endif
