#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "utf8.h"
#include "webhook.h"

static void member(struct jbuf *b, const char *name, const char *v)
{
    jbuf_lit(b, ",\"");
    jbuf_lit(b, name);
    jbuf_lit(b, "\":");
    jbuf_str(b, v, strlen(v));
}

/* address and origin, then the closing brace. */
static void finish(struct jbuf *b, const char *address, const char *origin)
{
    member(b, "address", address ? address : "");
    if (origin && utf8_valid(origin, strlen(origin)))
        member(b, "origin", origin);
    jbuf_lit(b, "}");
}

void webhook_request_password(struct jbuf *b, const char *user,
                              const char *password, const char *otp,
                              const char *address, const char *origin)
{
    jbuf_lit(b, "{\"method\":\"password\"");
    member(b, "user", user);
    member(b, "password", password);
    if (otp)
        member(b, "otp", otp);
    finish(b, address, origin);
}

void webhook_request_token(struct jbuf *b, const char *token,
                           const char *address, const char *origin)
{
    jbuf_lit(b, "{\"method\":\"token\"");
    member(b, "token", token);
    finish(b, address, origin);
}

void webhook_answer_clear(struct webhook_answer *a)
{
    free(a->user);
    for (size_t i = 0; i < a->n_roles; i++)
        free(a->roles[i]);
    free(a->roles);
    memset(a, 0, sizeof(*a));
}

static bool plain_string(json_t *v)
{
    return json_is_string(v) &&
           strlen(json_string_value(v)) == json_string_length(v);
}

int webhook_answer_parse(const char *body, size_t len, int64_t now,
                         struct webhook_answer *a, const char **why)
{
    json_t *doc, *user, *roles, *exp, *r;
    size_t i;

    memset(a, 0, sizeof(*a));
    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                     NULL);
    if (!json_is_object(doc)) {
        *why = "answer not a JSON object";
        goto fail;
    }
    user = json_object_get(doc, "user");
    if (!json_is_string(user) || json_string_length(user) == 0 ||
        json_string_length(user) > WEBHOOK_USER_MAX) {
        *why = "answer has no user (a string of 1 to 256 bytes)";
        goto fail;
    }
    if (!plain_string(user)) {
        *why = "answer user holds U+0000";
        goto fail;
    }
    roles = json_object_get(doc, "roles");
    if (!json_is_array(roles) || json_array_size(roles) > WEBHOOK_ROLES_MAX) {
        *why = "answer has no roles (an array of at most 256 strings)";
        goto fail;
    }
    json_array_foreach(roles, i, r)
        if (!json_is_string(r)) {
            *why = "answer roles not all strings";
            goto fail;
        }
    exp = json_object_get(doc, "expires_at");
    if (exp && !json_is_integer(exp)) {
        *why = "answer expires_at not an integer";
        goto fail;
    }
    if (exp && json_integer_value(exp) <= now) {
        *why = "answer expires_at already past";
        goto fail;
    }
    if (!(a->user = strdup(json_string_value(user))) ||
        !(a->roles = calloc(json_array_size(roles) + 1, sizeof(*a->roles)))) {
        *why = "out of memory";
        goto fail;
    }
    json_array_foreach(roles, i, r) {
        if (!plain_string(r))
            continue; /* no role's name */
        if (!(a->roles[a->n_roles] = strdup(json_string_value(r)))) {
            *why = "out of memory";
            goto fail;
        }
        a->n_roles++;
    }
    if (exp) {
        a->has_expiry = true;
        a->expires_at = json_integer_value(exp);
    }
    json_decref(doc);
    return 0;
fail:
    json_decref(doc);
    webhook_answer_clear(a);
    return -1;
}
