/* Session authentication (protocol.md § Authentication). The methods
 * themselves (JWT, users file with TOTP) plug in here. Service thread. */
#ifndef MQG_AUTH_H
#define MQG_AUTH_H

struct session;
struct request;
struct config;

/* Prepares the methods of cfg (keys, users). Returns 0 or -1 (logged). */
int auth_init(const struct config *cfg);
void auth_destroy(void);

/* The hello frame for this configuration. */
const char *auth_hello(void);

/* Authenticates s from its handshake (cookie, Authorization header, query
 * token) when it carries credentials. Returns 0 when s is authenticated,
 * -1 otherwise. */
int auth_handshake(struct session *s);

/* Handles an auth request: replies ok or error (auth_failed, then close
 * 4401; forbidden for another user's token). */
void auth_request(struct session *s, const struct request *r);

#endif
