/* The credentials of an HTTP API request (protocol.md, "Authentication
 * and origins for HTTP"): Authorization: Bearer, the cookie, ?token= when
 * allowed, Authorization: Basic against the users file (on the password
 * workers, never here), else the anonymous role. Service thread only. */
#ifndef MQG_HTTP_AUTH_H
#define MQG_HTTP_AUTH_H

#include <stddef.h>

struct session;

enum http_auth_rc {
    HA_OK,        /* s has its identity */
    HA_PENDING,   /* a password check: s->tp->password_done() follows */
    HA_REFUSED,   /* *code (auth_failed, unauthenticated) and msg */
};

enum http_auth_rc http_auth(struct session *s, const char **code, char *msg,
                            size_t len);

/* The WWW-Authenticate challenge of a 401: the schemes configured. */
const char *http_auth_challenge(void);

#endif
