#include "reply.h"

#include <string.h>

#include "acl.h"
#include "utf8.h"

void reply_begin(struct jbuf *b, const char *op, const char *id,
                 size_t id_len)
{
    jbuf_lit(b, "{\"op\":");
    jbuf_str(b, op, strlen(op));
    if (id_len) {
        jbuf_lit(b, ",\"id\":");
        jbuf_raw(b, id, id_len);
    }
}

void reply_end(struct jbuf *b)
{
    jbuf_raw(b, "}", 1);
}

void reply_error(struct jbuf *b, const char *id, size_t id_len,
                 const char *code, const char *msg, size_t msg_len)
{
    if (msg_len > REPLY_MESSAGE_MAX)
        msg_len = REPLY_MESSAGE_MAX;
    while (msg_len > 0 && !utf8_valid(msg, msg_len))
        msg_len--;
    reply_begin(b, "error", id, id_len);
    jbuf_lit(b, ",\"code\":");
    jbuf_str(b, code, strlen(code));
    jbuf_lit(b, ",\"message\":");
    jbuf_str(b, msg, msg_len);
    reply_end(b);
}

void reply_identity(struct jbuf *b, const char *user,
                    const struct cfg_role *const *roles, size_t n)
{
    jbuf_lit(b, ",\"user\":");
    jbuf_str(b, user, strlen(user));
    jbuf_lit(b, ",\"roles\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            jbuf_raw(b, ",", 1);
        jbuf_str(b, roles[i]->name, strlen(roles[i]->name));
    }
    jbuf_raw(b, "]", 1);
}

struct list_state {
    struct jbuf *b;
    size_t n;
};

static void list_add(void *arg, const char *pat, size_t len)
{
    struct list_state *ls = arg;

    if (ls->n++)
        jbuf_raw(ls->b, ",", 1);
    jbuf_str(ls->b, pat, len);
}

void reply_allow(struct jbuf *b, const struct cfg_role *const *roles,
                 size_t n, const char *user)
{
    struct list_state ls = { b, 0 };

    jbuf_lit(b, ",\"allow\":{\"subscribe\":[");
    if (acl_each_pattern(roles, n, user, false, list_add, &ls) < 0)
        b->failed = true;
    jbuf_lit(b, "],\"publish\":[");
    ls.n = 0;
    if (acl_each_pattern(roles, n, user, true, list_add, &ls) < 0)
        b->failed = true;
    jbuf_lit(b, "]}");
}
