/* Session authentication (protocol.md § Authentication): the hello, the
 * handshake token, auth requests, token expiry. Service thread. */
#ifndef MQG_AUTH_H
#define MQG_AUTH_H

#include <stddef.h>

struct lws;
struct session;
struct request;
struct config;

/* Prepares the methods of cfg (the JWT key, the hello) and puts them in:
 * at start. Returns 0 or -1 (logged). */
int auth_init(const struct config *cfg);
void auth_destroy(void);

/* SIGHUP, as a transaction with the other parts of a reload:
 * auth_prepare() builds what cfg's methods need aside, returning 0, or -1
 * (logged) keeping nothing; then auth_commit() puts it in, or auth_abort()
 * drops it (nothing when nothing is prepared). */
int auth_prepare(const struct config *cfg);
void auth_commit(void);
void auth_abort(void);

/* Before the libwebsockets context goes: logs the counts of failed
 * authentications still held back and stops the timer that logs them. */
void auth_shutdown(void);

/* Sends the hello frame; with "user" and "roles" when the handshake
 * authenticated s, and "allow" when s is authenticated or anonymous. */
void auth_send_hello(struct session *s);

/* Authenticates s from its handshake (Authorization: Bearer, cookie, query
 * token when allowed). Returns 0 when s now has an identity, -1 when the
 * handshake carried no valid token. */
int auth_handshake(struct session *s);

/* The token the handshake on wsi carries: Authorization: Bearer, the
 * cookie (auth.cookie), or (when allowed) ?token=, into buf[0..len).
 * Returns 0, or -1 when it carries none. */
int auth_handshake_token(struct lws *wsi, char *buf, size_t len);

/* Authenticates s with the JWT token (the handshake's, or an HTTP
 * request's): 0 when s now has its identity (and its expiry is armed),
 * -1 with why[0..len) for the client when the token is refused. */
int auth_token(struct session *s, const char *token, char *why, size_t len);

/* Handles an auth request: ok, or error auth_failed then close 4401, or
 * forbidden for another user's token on an authenticated session. */
void auth_request(struct session *s, const struct request *r);

/* A password check of the worker finished (MB_AUTHDONE). */
void auth_password_done(void *job);

#endif
