/* libFuzzer target: a session's request path end to end, without the
 * network: decode one frame (request_decode), judge it with the ACL of an
 * arbitrary identity (acl_subscribe_qos, acl_publish_qos, acl_mount and the
 * mount length rule), and build every reply the gateway would send for it
 * with the reply builder (reply.c): ok, ok with qos, pong, the error with
 * its human message quoting roles and topic, and the identity with allow.
 *
 * Input: NUL-separated fields USER, MOUNT, ROLES, SUBSCRIBE, PUBLISH,
 * FRAME. ROLES are comma-separated names (any bytes: JSON must escape
 * them), SUBSCRIBE and PUBLISH newline-separated patterns (those the config
 * would refuse are left out), MOUNT empty for none (else used when it is a
 * valid mount). The first role holds every pattern and the mount; the
 * others none.
 *
 * Invariants on every frame built: it is one JSON object (jansson, strict:
 * no duplicate keys), its op is the expected one, its id is exactly
 * the request's (compared with jansson's reading of the frame), an error's
 * message is valid UTF-8 of at most REPLY_MESSAGE_MAX bytes, the identity
 * carries the user and every role name exactly, and allow holds only
 * valid filters. */
#include <jansson.h>
#include <stdbool.h>

#include "acl.h"
#include "fuzz.h"
#include "jbuf.h"
#include "reply.h"
#include "request.h"
#include "topic.h"
#include "utf8.h"

#define MAX_ITEMS 16

struct list {
    char *v[MAX_ITEMS];
    size_t n;
};

/* Splits f at sep into l (exact-size NUL-terminated copies), keeping only
 * the items keep() accepts. */
static void split(struct field f, char sep, struct list *l,
                  bool (*keep)(const char *, size_t))
{
    size_t start = 0;

    l->n = 0;
    for (size_t i = 0; i <= f.len && l->n < MAX_ITEMS; i++) {
        if (i < f.len && f.p[i] != sep)
            continue;
        if (!keep || keep(f.p + start, i - start))
            l->v[l->n++] = fuzz_dup(f.p + start, i - start, 1);
        start = i + 1;
    }
}

static void list_free(struct list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
}

/* What config.c accepts as a role name: non-empty text without NUL. */
static bool name_ok(const char *s, size_t n)
{
    return n > 0 && !memchr(s, '\0', n) && utf8_valid(s, n);
}

/* What config.c accepts as a pattern: a valid filter. */
static bool pattern_ok(const char *s, size_t n)
{
    return topic_filter_check(s, n) == 0;
}

/* The frame b holds, parsed strictly; checks op and that the id is the
 * request's (id_json: jansson's reading of the frame's id, or NULL). */
static json_t *check_frame(struct jbuf *b, const char *op, json_t *id_json)
{
    json_error_t e;
    json_t *j, *id;

    FUZZ_CHECK(!b->failed);
    FUZZ_CHECK(utf8_valid(b->p, b->len));
    j = json_loadb(b->p, b->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                   &e);
    if (!j)
        fprintf(stderr, "not JSON (%s): %.*s\n", e.text, (int)b->len, b->p);
    FUZZ_CHECK(j != NULL && json_is_object(j));
    FUZZ_CHECK(json_is_string(json_object_get(j, "op")));
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(j, "op")), op) == 0);
    id = json_object_get(j, "id");
    FUZZ_CHECK((id == NULL) == (id_json == NULL));
    if (id)
        FUZZ_CHECK(json_equal(id, id_json));
    return j;
}

static void error_frame(const struct request *r, json_t *id_json,
                        const char *code, const char *msg, size_t mlen)
{
    struct jbuf b;
    json_t *j;
    const char *m;

    jbuf_init(&b);
    reply_error(&b, r->id, r->id_len, code, msg, mlen);
    j = check_frame(&b, "error", id_json);
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(j, "code")), code) ==
               0);
    m = json_string_value(json_object_get(j, "message"));
    FUZZ_CHECK(m && strlen(m) <= REPLY_MESSAGE_MAX);
    json_decref(j);
    jbuf_free(&b);
}

/* The session's "role A,B may not VERB TOPIC" message, as session.c
 * formats it: raw bytes, cut anywhere. */
static void forbidden(const struct request *r, json_t *id_json,
                      const struct list *names, const char *verb)
{
    char msg[REPLY_MESSAGE_MAX + 1], roles[128];
    size_t o = 0;
    int n;

    roles[0] = '\0';
    for (size_t i = 0; i < names->n && o + 1 < sizeof(roles); i++)
        o += (size_t)snprintf(roles + o, sizeof(roles) - o, "%s%s",
                              i ? "," : "", names->v[i]);
    n = snprintf(msg, sizeof(msg), "role %s may not %s %.*s",
                 names->n ? roles : "(none)", verb,
                 (int)(r->topic_len > 128 ? 128 : r->topic_len), r->topic);
    FUZZ_CHECK(n >= 0);
    error_frame(r, id_json, "forbidden", msg, strnlen(msg, sizeof(msg)));
}

static void simple(const struct request *r, json_t *id_json, const char *op,
                   int qos)
{
    struct jbuf b;
    json_t *j;

    jbuf_init(&b);
    reply_begin(&b, op, r->id, r->id_len);
    if (qos >= 0) {
        jbuf_lit(&b, ",\"qos\":");
        jbuf_int(&b, qos);
    }
    reply_end(&b);
    j = check_frame(&b, op, id_json);
    if (qos >= 0)
        FUZZ_CHECK(json_integer_value(json_object_get(j, "qos")) == qos);
    json_decref(j);
    jbuf_free(&b);
}

static void check_allow_list(json_t *a)
{
    size_t i;
    json_t *v;

    FUZZ_CHECK(json_is_array(a));
    json_array_foreach(a, i, v) {
        FUZZ_CHECK(json_is_string(v));
        FUZZ_CHECK(topic_filter_check(json_string_value(v),
                                      json_string_length(v)) == 0);
    }
}

static void identity(const struct request *r, json_t *id_json,
                     const char *user, const struct cfg_role *const *rp,
                     size_t n, const struct list *names)
{
    struct jbuf b;
    json_t *j, *roles, *allow;

    jbuf_init(&b);
    reply_begin(&b, "ok", r->id, r->id_len);
    reply_identity(&b, user, rp, n);
    reply_allow(&b, rp, n, user);
    reply_end(&b);
    j = check_frame(&b, "ok", id_json);
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(j, "user")), user) ==
               0);
    roles = json_object_get(j, "roles");
    FUZZ_CHECK(json_array_size(roles) == names->n);
    for (size_t i = 0; i < names->n; i++)
        FUZZ_CHECK(strcmp(json_string_value(json_array_get(roles, i)),
                          names->v[i]) == 0);
    allow = json_object_get(j, "allow");
    check_allow_list(json_object_get(allow, "subscribe"));
    check_allow_list(json_object_get(allow, "publish"));
    json_decref(j);
    jbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct field f[6] = { { "", 0 }, { "", 0 }, { "", 0 },
                          { "", 0 }, { "", 0 }, { "", 0 } };
    struct list names, subs, pubs;
    struct cfg_role roles[MAX_ITEMS];
    const struct cfg_role *rp[MAX_ITEMS];
    struct request r;
    char msg[256], *user, *mount_in, *frame, *mount = NULL;
    json_t *whole, *id_json = NULL;
    enum req_err e;

    fuzz_split(data, size, f, 6);
    /* users are valid UTF-8 without NUL (users.c, jansson) */
    if (!name_ok(f[0].p, f[0].len))
        return 0;
    user = fuzz_dup(f[0].p, f[0].len, 1);
    mount_in = fuzz_dup(f[1].p, f[1].len, 1);
    split(f[2], ',', &names, name_ok);
    split(f[3], '\n', &subs, pattern_ok);
    split(f[4], '\n', &pubs, pattern_ok);
    for (size_t i = 0; i < names.n; i++) {
        memset(&roles[i], 0, sizeof(roles[i]));
        roles[i].name = names.v[i];
        roles[i].max_qos = 2;
        if (i == 0) {
            roles[i].subscribe = subs.v;
            roles[i].n_subscribe = subs.n;
            roles[i].publish = pubs.v;
            roles[i].n_publish = pubs.n;
            if (f[1].len && mount_in[f[1].len - 1] == '/' &&
                utf8_valid(mount_in, f[1].len) &&
                !memchr(mount_in, '\0', f[1].len))
                roles[i].mount = mount_in;
        }
        rp[i] = &roles[i];
    }
    frame = fuzz_dup(f[5].p, f[5].len, 0);
    if (!utf8_valid(frame, f[5].len))
        goto out_frame;
    e = request_decode(frame, f[5].len, &r, msg, sizeof msg);
    whole = json_loadb(frame, f[5].len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                       NULL);
    if (r.id_len) {
        id_json = json_object_get(whole, "id");
        FUZZ_CHECK(id_json != NULL);
    }
    if (e != RQ_OK) {
        error_frame(&r, id_json, request_err_code(e), msg, strlen(msg));
        goto out;
    }
    switch (r.op) {
    case OP_PING:
        simple(&r, id_json, "pong", -1);
        break;
    case OP_AUTH:
        if (acl_mount(rp, names.n, user, &mount) == 0)
            identity(&r, id_json, user, rp, names.n, &names);
        else
            error_frame(&r, id_json, "auth_failed",
                        "the roles of this user cannot be combined", 41);
        break;
    case OP_SUB:
    case OP_PUB: {
        bool sub = r.op == OP_SUB;
        int q = sub ? acl_subscribe_qos(rp, names.n, user, r.topic,
                                        r.topic_len)
                    : acl_publish_qos(rp, names.n, user, r.topic,
                                      r.topic_len);

        if (q < 0) {
            forbidden(&r, id_json, &names,
                      sub ? "subscribe to" : "publish to");
            break;
        }
        FUZZ_CHECK(q <= 2);
        if (acl_mount(rp, names.n, user, &mount) < 0)
            break; /* such a session never authenticated */
        if ((mount ? strlen(mount) : 0) + r.topic_len > TOPIC_MAX_LEN)
            error_frame(&r, id_json, "bad_topic",
                        "the mount and the topic together are too long", 45);
        else if (r.id_len)
            simple(&r, id_json, "ok", sub ? (r.qos < q ? r.qos : q) : -1);
        break;
    }
    case OP_UNSUB:
        if (r.id_len)
            simple(&r, id_json, "ok", -1);
        break;
    }
out:
    free(mount);
    json_decref(whole);
    request_clear(&r);
out_frame:
    free(frame);
    list_free(&names);
    list_free(&subs);
    list_free(&pubs);
    free(mount_in);
    free(user);
    return 0;
}
