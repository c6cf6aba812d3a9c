/* MQTT 5 properties: the records, their JSON, a pub's "props" (props.h).
 *
 * A record is its kind (one byte), then for PROPS_EXPIRY four bytes of
 * seconds, for PROPS_USER two strings, for the others one, each string
 * two bytes of length (big-endian, as MQTT) and its bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "payload.h"
#include "props.h"
#include "topic.h"
#include "utf8.h"

size_t props_record_len(const struct props_item *it)
{
    switch (it->kind) {
    case PROPS_EXPIRY:
        return 1 + 4;
    case PROPS_USER:
        return 1 + 2 + it->a_len + 2 + it->b_len;
    default:
        return 1 + 2 + it->a_len;
    }
}

static size_t put_str(uint8_t *out, const char *s, size_t n)
{
    out[0] = (uint8_t)(n >> 8);
    out[1] = (uint8_t)n;
    if (n)
        memcpy(out + 2, s, n);
    return 2 + n;
}

size_t props_put(uint8_t *out, const struct props_item *it)
{
    size_t o = 1;

    out[0] = (uint8_t)it->kind;
    if (it->kind == PROPS_EXPIRY) {
        for (int i = 3; i >= 0; i--)
            out[o++] = (uint8_t)(it->n >> (8 * i));
        return o;
    }
    o += put_str(out + o, it->a, it->a_len);
    if (it->kind == PROPS_USER)
        o += put_str(out + o, it->b, it->b_len);
    return o;
}

int props_append(uint8_t **meta, size_t *len, const struct props_item *it)
{
    size_t n = props_record_len(it);
    uint8_t *m = realloc(*meta, *len + n);

    if (!m)
        return -1;
    props_put(m + *len, it);
    *meta = m;
    *len += n;
    return 0;
}

static bool get_str(const uint8_t *meta, size_t len, size_t *off,
                    const char **s, size_t *n)
{
    size_t l;

    if (len - *off < 2)
        return false;
    l = (size_t)meta[*off] << 8 | meta[*off + 1];
    if (len - *off - 2 < l)
        return false;
    *s = (const char *)meta + *off + 2;
    *n = l;
    *off += 2 + l;
    return true;
}

int props_next(const uint8_t *meta, size_t len, size_t *off,
               struct props_item *it)
{
    size_t o = *off;

    if (o >= len)
        return 0;
    memset(it, 0, sizeof(*it));
    it->kind = (enum props_kind)meta[o++];
    switch (it->kind) {
    case PROPS_EXPIRY:
        if (len - o < 4)
            goto bad;
        it->n = (uint32_t)meta[o] << 24 | (uint32_t)meta[o + 1] << 16 |
                (uint32_t)meta[o + 2] << 8 | meta[o + 3];
        o += 4;
        break;
    case PROPS_USER:
        if (!get_str(meta, len, &o, &it->a, &it->a_len) ||
            !get_str(meta, len, &o, &it->b, &it->b_len))
            goto bad;
        break;
    case PROPS_CONTENT_TYPE:
    case PROPS_RESPONSE_TOPIC:
    case PROPS_CORRELATION:
        if (!get_str(meta, len, &o, &it->a, &it->a_len))
            goto bad;
        break;
    default:
        goto bad;
    }
    *off = o;
    return 1;
bad:
    *off = len;
    return -1;
}

/* ---- JSON --------------------------------------------------------------- */

/* Writes into out, or only counts when out is NULL. */
struct jw {
    char *out;
    size_t n;
};

static void jw_raw(struct jw *w, const char *s, size_t n)
{
    if (w->out)
        memcpy(w->out + w->n, s, n);
    w->n += n;
}

static void jw_lit(struct jw *w, const char *s)
{
    jw_raw(w, s, strlen(s));
}

static void jw_str(struct jw *w, const char *s, size_t n)
{
    jw_raw(w, "\"", 1);
    w->n += w->out ? json_escape(s, n, w->out + w->n)
                   : json_escaped_len(s, n);
    jw_raw(w, "\"", 1);
}

/* The member that opens the object or follows another. */
static void jw_key(struct jw *w, bool *first, const char *key)
{
    jw_lit(w, *first ? ",\"props\":{\"" : ",\"");
    *first = false;
    jw_lit(w, key);
    jw_raw(w, "\":", 2);
}

size_t props_json(const uint8_t *meta, size_t len, const char *mount,
                  size_t mlen, unsigned flags, char *out)
{
    struct jw w = {out, 0};
    struct props_item it;
    bool first = true, users = false;
    size_t off = 0;

    /* the user properties first, together, as one array */
    while (props_next(meta, len, &off, &it) > 0) {
        if (it.kind != PROPS_USER)
            continue;
        if (!users)
            jw_key(&w, &first, "user");
        jw_raw(&w, users ? ",[" : "[[", 2);
        users = true;
        jw_str(&w, it.a, it.a_len);
        jw_raw(&w, ",", 1);
        jw_str(&w, it.b, it.b_len);
        jw_raw(&w, "]", 1);
    }
    if (users)
        jw_raw(&w, "]", 1);
    off = 0;
    while (props_next(meta, len, &off, &it) > 0) {
        switch (it.kind) {
        case PROPS_CONTENT_TYPE:
            jw_key(&w, &first, "content_type");
            jw_str(&w, it.a, it.a_len);
            break;
        case PROPS_RESPONSE_TOPIC:
            if (mlen && (it.a_len <= mlen || memcmp(it.a, mount, mlen)))
                break;
            jw_key(&w, &first, "response_topic");
            jw_str(&w, it.a + mlen, it.a_len - mlen);
            break;
        case PROPS_CORRELATION:
            if (flags & PROPS_JSON_NO_CORRELATION)
                break;
            jw_key(&w, &first, "correlation");
            jw_raw(&w, "\"", 1);
            w.n += out ? base64_encode(it.a, it.a_len, out + w.n)
                       : base64_encoded_len(it.a_len);
            jw_raw(&w, "\"", 1);
            break;
        case PROPS_EXPIRY: {
            char num[16];

            jw_key(&w, &first, "expiry");
            jw_raw(&w, num, (size_t)snprintf(num, sizeof(num), "%lu",
                                             (unsigned long)it.n));
            break;
        }
        default:
            break;
        }
    }
    if (!first)
        jw_raw(&w, "}", 1);
    return w.n;
}

/* ---- a pub's "props" ------------------------------------------------------ */

static int bad(char *msg, size_t msglen, const char *what)
{
    snprintf(msg, msglen, "props.%s", what);
    return -1;
}

/* A string member that an MQTT broker takes: 0 and its bytes, -1 when it
 * is not. */
static int mqtt_string(const json_t *v, const char **s, size_t *n)
{
    if (!json_is_string(v))
        return -1;
    *s = json_string_value(v);
    *n = json_string_length(v);
    return *n <= PROPS_STR_MAX && utf8_mqtt_valid(*s, *n) ? 0 : -1;
}

static const char str_rule[] =
    "a string of at most 65535 bytes without control characters or "
    "Unicode noncharacters";

static int user_props(const json_t *u, uint8_t **meta, size_t *len,
                      char *msg, size_t msglen)
{
    size_t i;
    json_t *pair;

    if (!json_is_array(u))
        goto bad;
    json_array_foreach(u, i, pair) {
        struct props_item it = {.kind = PROPS_USER};

        if (!json_is_array(pair) || json_array_size(pair) != 2 ||
            mqtt_string(json_array_get(pair, 0), &it.a, &it.a_len) < 0 ||
            mqtt_string(json_array_get(pair, 1), &it.b, &it.b_len) < 0)
            goto bad;
        if (props_append(meta, len, &it) < 0)
            return bad(msg, msglen, "user: out of memory");
    }
    return 0;
bad:
    snprintf(msg, msglen, "props.user: expected an array of [name, value] "
                          "pairs, each %s", str_rule);
    return -1;
}

int props_from_json(const json_t *v, bool request, uint8_t **meta,
                    size_t *meta_len, const char **rt, size_t *rt_len,
                    char *msg, size_t msglen)
{
    const json_t *m;
    struct props_item it;

    *meta = NULL;
    *meta_len = 0;
    *rt = NULL;
    *rt_len = 0;
    if (!json_is_object(v)) {
        snprintf(msg, msglen, "props: expected an object");
        return -1;
    }
    if ((m = json_object_get(v, "user")) &&
        user_props(m, meta, meta_len, msg, msglen) < 0)
        goto fail;
    if ((m = json_object_get(v, "content_type"))) {
        it = (struct props_item){.kind = PROPS_CONTENT_TYPE};
        if (mqtt_string(m, &it.a, &it.a_len) < 0) {
            snprintf(msg, msglen, "props.content_type: expected %s",
                     str_rule);
            goto fail;
        }
        if (props_append(meta, meta_len, &it) < 0)
            goto oom;
    }
    if ((m = json_object_get(v, "response_topic"))) {
        if (request) {
            bad(msg, msglen, "response_topic: a request's is the gateway's");
            goto fail;
        }
        if (mqtt_string(m, rt, rt_len) < 0 ||
            topic_name_check(*rt, *rt_len) < 0) {
            bad(msg, msglen, "response_topic: expected a topic name");
            goto fail;
        }
    }
    if ((m = json_object_get(v, "correlation"))) {
        const char *s = json_is_string(m) ? json_string_value(m) : NULL;
        size_t n = s ? json_string_length(m) : 0, dlen;
        char *d;

        if (request) {
            bad(msg, msglen, "correlation: a request's is the gateway's");
            goto fail;
        }
        if (!s || n > base64_encoded_len(PROPS_STR_MAX)) {
            bad(msg, msglen, "correlation: expected base64 of at most "
                             "65535 bytes");
            goto fail;
        }
        if (!(d = malloc(n / 4 * 3 + 1)))
            goto oom;
        if (base64_decode(s, n, d, &dlen) < 0 || dlen > PROPS_STR_MAX) {
            free(d);
            bad(msg, msglen, "correlation: expected base64 of at most "
                             "65535 bytes");
            goto fail;
        }
        it = (struct props_item){.kind = PROPS_CORRELATION, .a = d,
                                 .a_len = dlen};
        if (props_append(meta, meta_len, &it) < 0) {
            free(d);
            goto oom;
        }
        free(d);
    }
    if ((m = json_object_get(v, "expiry"))) {
        json_int_t e = json_is_integer(m) ? json_integer_value(m) : 0;

        if (e < 1 || e > (json_int_t)UINT32_MAX) {
            bad(msg, msglen, "expiry: expected an integer 1..4294967295");
            goto fail;
        }
        it = (struct props_item){.kind = PROPS_EXPIRY, .n = (uint32_t)e};
        if (props_append(meta, meta_len, &it) < 0)
            goto oom;
    }
    return 0;
oom:
    snprintf(msg, msglen, "props: out of memory");
fail:
    free(*meta);
    *meta = NULL;
    *meta_len = 0;
    *rt = NULL;
    *rt_len = 0;
    return -1;
}
