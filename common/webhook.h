/* The authentication webhook's messages (config.md § auth.http): the
 * JSON the gateway POSTs for a password or a token, and the answer it
 * takes. I/O-free; the call is gateway/auth_http.c's. */
#ifndef MQG_WEBHOOK_H
#define MQG_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jbuf.h"

#define WEBHOOK_USER_MAX 256
#define WEBHOOK_ROLES_MAX 256

/* {"method":"password","user":…,"password":…,"otp":…,"address":…,
 *  "origin":…} into b: otp and origin left out when NULL (or, origin, not
 * UTF-8); the other strings must be UTF-8 (the request decoder's). */
void webhook_request_password(struct jbuf *b, const char *user,
                              const char *password, const char *otp,
                              const char *address, const char *origin);

/* {"method":"token","token":…,"address":…,"origin":…} into b. */
void webhook_request_token(struct jbuf *b, const char *token,
                           const char *address, const char *origin);

struct webhook_answer {
    char *user;                 /* malloc'd */
    char **roles;               /* malloc'd, each malloc'd */
    size_t n_roles;
    bool has_expiry;
    int64_t expires_at;         /* seconds since the Unix epoch */
};

/* Reads a 200 answer body[0..len): an object (no duplicate names) with
 * "user" a string of 1 to WEBHOOK_USER_MAX bytes without U+0000, "roles"
 * an array of at most WEBHOOK_ROLES_MAX strings (names holding U+0000 are
 * left out as unknown), and optionally "expires_at" an integer after now.
 * Other members are ignored. Returns 0 and fills a (release with
 * webhook_answer_clear()), or -1 with a static reason in *why. */
int webhook_answer_parse(const char *body, size_t len, int64_t now,
                         struct webhook_answer *a, const char **why);

void webhook_answer_clear(struct webhook_answer *a);

#endif
